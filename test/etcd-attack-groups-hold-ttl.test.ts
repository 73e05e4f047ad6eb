// Attack on the group engine's takeover hold (lease-core/etcd createEtcdGroupNode, docs/etcd.md
// §5 "the takeover hold" and "Many groups on one lease" rule 3), on a real 3-member etcd.
//
// Inputs: G = 1 (group 0 holds every key), three nodes whose rendezvous order for group 0 is
// d > b > a: "a" and "b" with ttlS 2, "d" with ttlS 20 (every option default otherwise).
//   1. a starts and leads group 0; b starts: its local copy shows a holding group 0 (b notes
//      a's lease, TTL 2 s), then a hands group 0 off to b (marker: no hold);
//   2. d joins: b hands group 0 off to d (marker: no hold); d serves group 0 and writes k = v1;
//   3. right after one of d's confirmation rounds, d's answers stall (its watch and its next
//      round hear nothing, as behind a lagging member) and d's lease is revoked by an admin
//      LeaseRevoke: the stand-in for the early revoke of a stuck old etcd leader (etcd-io/etcd
//      #15247), as test/etcd-attack-marker.test.ts does for the single-leader node;
//   4. b (now the owner) campaigns, finds no marker, holds, serves and writes k = v2.
// Contract (docs/etcd.md §5): the hold lasts "the longest of its own granted TTL and any granted
// TTL it saw on another holder's lease (LeaseTimeToLive when it first sees a holder)": b saw d
// holding group 0, so it holds d's 20 s and never serves while d's anchor (a keepalive sent
// before the revoke, + 20 s - margin) still serves; no node reads v1 locally after v2 was
// acknowledged.
// What happened: b noted holders once per GROUP RECORD for its lifetime (campaign.ts
// noteHolderOf's `noted` WeakSet): having noted a's lease for group 0, it never looked up d's.
// It held 2 s, served group 0 about 2.5 s after the revoke and wrote v2, while d still served
// group 0 locally and read v1: two nodes serving one group, and a stale read.
import { Etcd3, KVClient, LeaseClient } from "etcd3";
import { afterEach, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode, type EtcdGroupNodeOptions } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { rendezvousOwner } from "../host/etcd/groups/assign.js";
import { sleep, until } from "./etcd/support.js";

let cluster: EtcdCluster | undefined;
const proxies: FaultProxy[] = [];
const nodes: EtcdGroupNode[] = [];
const admins: Etcd3[] = [];

afterEach(async () => {
  for (const p of proxies) p.heal();
  await Promise.all(nodes.splice(0).map((n) => n.close().catch(() => undefined)));
  for (const a of admins.splice(0)) a.close();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await cluster?.stop();
  cluster = undefined;
});

/** A read's outcome, or the error's name when it refused. */
async function tryRead(n: EtcdGroupNode, key: string): Promise<{ value: string | null; served: string }> {
  try {
    const r = await n.read(key);
    return { value: r.value, served: r.served };
  } catch (err) {
    return { value: null, served: (err as Error).name };
  }
}

describe("attack: the takeover hold of a group whose holder had a longer TTL", () => {
  test("a node that noted an earlier holder of the group still holds the TTL of the holder it replaces: no two nodes serve group 0", async () => {
    // The ids' rendezvous order for group 0 (the scenario needs it).
    expect(rendezvousOwner(0, ["a", "b"])).toBe("b");
    expect(rendezvousOwner(0, ["a", "b", "d"])).toBe("d");
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const direct = cluster.clientEndpoints;
    const dProx = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
    proxies.push(...dProx);
    const admin = new Etcd3({ hosts: direct });
    admins.push(admin);
    const prefix = `/atk-gh-${Math.random().toString(36).slice(2)}`;
    const make = async (id: string, extra: Partial<EtcdGroupNodeOptions>): Promise<EtcdGroupNode> => {
      const n = createEtcdGroupNode({ core: await createLeaseCore(), id, prefix, endpoints: direct, etcdElectionTimeoutMs: 300, groupCount: 1, ...extra });
      nodes.push(n);
      return n;
    };
    const key = "k";

    // 1. a leads group 0; b joins (its local copy shows a holding it), a hands it off to b.
    const a = await make("a", { ttlS: 2 });
    await a.start();
    await a.waitForAssignment(20_000);
    expect(a.ledGroups()).toEqual([0]);
    const b = await make("b", { ttlS: 2 });
    await b.start();
    await b.waitForAssignment(20_000);
    await a.waitForAssignment(20_000);
    expect(b.ledGroups()).toEqual([0]);

    // 2. d (TTL 20 s) joins through its proxies: b hands group 0 off to d.
    const d = await make("d", { ttlS: 20, endpoints: dProx.map((p) => `127.0.0.1:${p.port}`) });
    await d.start();
    await d.waitForAssignment(20_000);
    await until("b handed group 0 off", () => b.ledGroups().length === 0 && b.leaderOf(0) === "d", 10_000);
    await d.write(key, "v1");
    await until("d serves group 0 locally", async () => (await tryRead(d, key)).served === "local", 10_000);

    // 3. Right after one of d's loop rounds (the next is TTL/4 = 5 s away), d's answers stall
    //    and its lease is revoked early.
    const confirmed = d.counters.roundsConfirmed!;
    await until("a loop round of d", () => d.counters.roundsConfirmed! > confirmed, 10_000, 2);
    for (const p of dProx) p.set("down", { kind: "stall" });
    const pool = (admin as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
    await new LeaseClient(pool).leaseRevoke({ ID: d.status().leaseId! });
    const revokedAt = performance.now();

    // 4. For 4.5 s (before d's next round): whenever b serves group 0 locally, d must not.
    const overlaps: string[] = [];
    let acknowledged: string | undefined;
    while (performance.now() - revokedAt < 4500) {
      const bRead = b.ledGroups().includes(0) ? await tryRead(b, key) : { value: null, served: "not leading" };
      if (bRead.served === "local" && acknowledged === undefined) {
        await b.write(key, "v2");
        acknowledged = "v2";
      }
      const dRead = await tryRead(d, key);
      const at = (performance.now() - revokedAt).toFixed(0);
      if (bRead.served === "local" && dRead.served === "local") overlaps.push(`+${at} ms: b serves group 0 (${bRead.value}), d serves it too (${dRead.value}, acknowledged ${acknowledged})`);
      await sleep(20);
    }
    expect({ overlaps: overlaps.length, first: overlaps[0] }).toEqual({ overlaps: 0, first: undefined });
  }, 90_000);
});
