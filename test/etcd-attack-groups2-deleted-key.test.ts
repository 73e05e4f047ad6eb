// Attack round 2 on the group engine (lease-core/etcd createEtcdGroupNode, docs/etcd.md "Many
// groups on one lease", "How could two nodes both believe they lead one group?" case (d)), on a
// real 3-member etcd.
//
// Inputs: G = 1 (group 0 holds every key); two nodes with the same ttlS 4 and takeoverHold
// "never"; "a" reaches etcd through one FaultProxy per member and renews every 2.5 s
// (renewIntervalMs, < its 3.7 s lease); "b" reaches etcd directly and is the rendezvous owner of
// group 0 among {a, b}.
//   1. a starts alone, leads group 0, writes k = v1 and serves it locally;
//   2. right after one of a's confirmation rounds, a's answers stall (its watch and its next
//      round hear nothing, as behind a lagging member), and an operator (or a bug) deletes the
//      group key `<prefix>/g/00000` (`etcdctl del`);
//   3. b starts, campaigns for group 0 (absent, owned by b), serves it and writes k = v2
//      (acknowledged); then a is read.
// takeoverHold "never" is the stand-in for a cluster with the early-revoke fix (etcd 3.4.31+,
// 3.5.13+, 3.6+) under the default "auto": both set the hold to 0 (election.ts holdNs: revokeGuard
// "etcd" or "unprotected"), and Debian's 3.4.23, the only etcd here, cannot report a fixed version.
// Contract (docs/etcd.md, case (d)): "Someone else deleted it (an operator, a bug): no marker, so
// the new holder holds a TTL as in (b), and the first node loses the group at its watch event or,
// if its watch lags, at its next round"; "a local read must never be stale".
// What happened: b held nothing (hold 0: only an early revoke was thought of when the hold is
// switched off by the etcd version or by "never"), served group 0 and acknowledged v2 while a,
// whose watch lagged, still served group 0 locally on its last anchor and read v1 (a stale read;
// two nodes serving group 0). Fails 3/3: 144, 157, 133 overlaps in 4 s, the first 65-682 ms
// after the deletion, the last ~3.4 s after it. With the default "auto" on 3.4.23 (hold = TTL)
// the same run holds (b serves nothing within the 4 s). The single-leader node computes its hold
// with the same holdNs (election.ts), so it likely shares this.
// Fixed (docs/etcd.md §5, "a key deleted by someone else"): a takeover without a marker looks
// up the previous holder's lease whatever takeoverHold says; here b started after the delete and
// never saw a's key (its lease unknown), so b holds (fail closed) and serves nothing within the
// 4 s. The known-lease path (alive: hold; expired: no hold) is test/etcd-takeover-live-holder.test.ts.
import { Etcd3 } from "etcd3";
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

describe("attack round 2: a group key deleted by someone else while its holder's watch lags", () => {
  test("the successor does not serve group 0 while the old holder still serves it on its anchor (no stale read)", async () => {
    expect(rendezvousOwner(0, ["a", "b"])).toBe("b");
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const direct = cluster.clientEndpoints;
    const aProx = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
    proxies.push(...aProx);
    const admin = new Etcd3({ hosts: direct });
    admins.push(admin);
    const prefix = `/atk2-dk-${Math.random().toString(36).slice(2)}`;
    const make = async (id: string, extra: Partial<EtcdGroupNodeOptions>): Promise<EtcdGroupNode> => {
      const n = createEtcdGroupNode({ core: await createLeaseCore(), id, prefix, endpoints: direct, etcdElectionTimeoutMs: 300, groupCount: 1, ttlS: 4, takeoverHold: "never", ...extra });
      nodes.push(n);
      return n;
    };
    const key = "k";

    // 1. a leads group 0 and serves v1 locally.
    const a = await make("a", { endpoints: aProx.map((p) => `127.0.0.1:${p.port}`), renewIntervalMs: 2500 });
    await a.start();
    await a.waitForAssignment(20_000);
    expect(a.ledGroups()).toEqual([0]);
    await a.write(key, "v1");
    await until("a serves group 0 locally", async () => (await tryRead(a, key)).served === "local", 10_000);

    // 2. Right after one of a's loop rounds, a's answers stall; the group key is deleted.
    const confirmed = a.counters.roundsConfirmed!;
    await until("a loop round of a", () => a.counters.roundsConfirmed! > confirmed, 10_000, 2);
    for (const p of aProx) p.set("down", { kind: "stall" });
    await admin.delete().key(`${prefix}/g/00000`).exec();
    const deletedAt = performance.now();

    // 3. b starts and takes group 0; once b serves it and v2 is acknowledged, a must not serve v1.
    const b = await make("b", { renewIntervalMs: 200 });
    await b.start();
    const overlaps: string[] = [];
    let acknowledged: string | undefined;
    while (performance.now() - deletedAt < 4000) {
      const bRead = b.ledGroups().includes(0) ? await tryRead(b, key) : { value: null, served: "not leading" };
      if (bRead.served === "local" && acknowledged === undefined) {
        await b.write(key, "v2");
        acknowledged = "v2";
      }
      const aRead = await tryRead(a, key);
      const at = (performance.now() - deletedAt).toFixed(0);
      if (acknowledged !== undefined && aRead.served === "local") overlaps.push(`+${at} ms: b serves group 0 and acknowledged ${acknowledged}; a serves it locally too and reads ${aRead.value}`);
      await sleep(20);
    }
    console.log(`b acknowledged: ${acknowledged ?? "nothing"}; overlaps: ${overlaps.length}${overlaps.length > 0 ? `, first: ${overlaps[0]}, last: ${overlaps.at(-1)}` : ""}`);
    expect({ overlaps: overlaps.length, first: overlaps[0] }).toEqual({ overlaps: 0, first: undefined });
  }, 90_000);
});
