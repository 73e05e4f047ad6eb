// Attack on the group engine's local reads while one of its own writes is in flight
// (lease-core/etcd createEtcdGroupNode, docs/etcd.md §4 and "Many groups on one lease" rule 5),
// on a real 3-member etcd.
//
// Inputs: G = 1, two nodes, "b" (leads group 0 by rendezvous) reaching etcd through one
// FaultProxy per member, and "a" connected directly. b writes k = v0 and serves it locally; the
// member carrying b's watch then answers b 3 s late (its watch lags; the link stays up). b
// writes k = vN (the txn commits at once; b's write waits for its watch to apply it). a's
// `readLinearizable(k)` (docs/etcd.md: "on any node") returns vN. Then b.read(k).
// Contract (docs/etcd.md §4: "Through the node the history stays linearizable"): a read that
// starts after another read RETURNED vN returns vN (or a later value): b.read(k) must not
// answer v(N-1), whether it is served locally or through etcd.
// What happened: b's group lease still held and its local copy had not applied its own
// committed write: b.read(k) was served "local" with the previous value, after a's linearizable
// read had returned the new one (a stale read; the write was still in flight, so the history
// has no linearization). b knows the commit revision from the txn's answer, but the own-write
// floor (rec.ownWriteFloor) is set only when the wait for it FAILS, not while it waits.
import { Etcd3 } from "etcd3";
import { afterEach, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { rendezvousOwner } from "../host/etcd/groups/assign.js";
import { dataWatchProxy, until } from "./etcd/support.js";

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

describe("attack: a group leader's local read while its own write is in flight", () => {
  test("after another node's linearizable read returned the new value, the leader never reads the old one", async () => {
    expect(rendezvousOwner(0, ["a", "b"])).toBe("b");
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const bProx = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
    proxies.push(...bProx);
    const admin = new Etcd3({ hosts: cluster.clientEndpoints });
    admins.push(admin);
    const prefix = `/atk-gw-${Math.random().toString(36).slice(2)}`;
    const common = { prefix, ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: 1 } as const;
    const b = createEtcdGroupNode({ core: await createLeaseCore(), id: "b", endpoints: bProx.map((p) => `127.0.0.1:${p.port}`), ...common });
    const a = createEtcdGroupNode({ core: await createLeaseCore(), id: "a", endpoints: cluster.clientEndpoints, ...common });
    nodes.push(b, a);
    await b.start();
    await a.start();
    await b.waitForAssignment(20_000);
    await a.waitForAssignment(20_000);
    expect(b.ledGroups()).toEqual([0]);
    const key = "k";
    await b.write(key, "v0");
    const slow = await dataWatchProxy(b as never, admin, prefix, bProx);

    // A few attempts: one where b's read is decided on its lease is the case in question (b's
    // keepalive stream may share the slow member's connection; then its lease lapses and the
    // read goes through etcd, which is correct and inconclusive).
    const reads: { attempt: number; expected: string; value: string | null; served: string }[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      await until("b serves k locally", async () => (await b.read(key)).served === "local", 10_000);
      bProx[slow]!.set("down", { kind: "delay", delayMs: 3000 });
      const value = `v${attempt}`;
      const write = b.write(key, value).catch((err: Error) => err);
      const seen = await until(`a's linearizable read returns ${value}`, async () => (await a.readLinearizable(key)).value === value, 2000, 5).then(
        () => true,
        () => false, // the write did not commit (b's calls rode the slow member): try again
      );
      if (!seen) {
        bProx[slow]!.heal();
        await write;
        continue;
      }
      // Failing closed is allowed (the read needs a round, whose keepalive may ride the slow
      // member and time out); a value older than the one a's read returned is not.
      const r = await b.read(key).catch((err: { code?: string }) => ({ value: value, served: `error ${err.code ?? String(err)}` }));
      reads.push({ attempt, expected: value, value: r.value, served: r.served });
      bProx[slow]!.heal();
      await write;
      break; // the case in question happened: b read after a's read returned the new value
    }
    expect(reads.length, "b never read after a's linearizable read returned its write").toBe(1);
    expect(reads.filter((r) => r.value !== r.expected)).toEqual([]);
    // And none of them was served locally: the write was in flight or not yet applied (the
    // own-term guard, GroupEngine.appliedTerm), whatever lease the reader held.
    expect(reads.filter((r) => r.served === "local")).toEqual([]);
  }, 120_000);

  test("while its write is in flight (not answered yet), a warm reader lease serves no local read of the group", async () => {
    // The floor set when the txn answers does not cover the time before the answer: the txn may
    // have committed (and been read by another node) while its answer is still on the way. The
    // own-term guard (GroupEngine.appliedTerm) refuses a local read then, before the reader's
    // own lease is looked at; this test warms that lease directly so only the guard stands.
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const bProx = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
    proxies.push(...bProx);
    const prefix = `/atk-gw2-${Math.random().toString(36).slice(2)}`;
    const b = createEtcdGroupNode({ core: await createLeaseCore(), id: "b", endpoints: bProx.map((p) => `127.0.0.1:${p.port}`), prefix, ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: 1 });
    nodes.push(b);
    await b.start();
    await b.waitForAssignment(20_000);
    await b.write("k", "v0");
    const reader = b.reader.reader(0);
    await until("b serves group 0 locally", () => reader.localRead() !== undefined, 10_000);
    // Every answer to b is late from here: its next write's txn is in flight for 1.5 s.
    for (const p of bProx) p.set("down", { kind: "delay", delayMs: 1500 });
    const write = b.write("k", "v1").catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 200));
    const lease = reader.lease;
    expect(lease.extend(b.status().nowNs + 10_000_000_000n, lease.generation())).toBe(true);
    expect(lease.valid()).toBe(true);
    const during = { appliedTerm: (b.group(0) as { appliedTerm(): bigint }).appliedTerm(), localRead: reader.localRead() };
    for (const p of bProx) p.heal();
    await write;
    expect(during).toEqual({ appliedTerm: 0n, localRead: undefined });
  }, 60_000);
});
