// The local copy after a compaction above its applied revision (docs/etcd.md §4, attack finding
// 5: test/etcd-attack-groups-compacted-watch.test.ts found it on the group node), on a real
// 3-member etcd, for both engines (host/etcd/replica.ts watchData is shared).
//
// etcd cancels a watch whose start revision was compacted, with `compact_revision` set (etcd
// api/etcdserverpb/rpc.proto WatchResponse). Before the fix the watch re-opened from applied + 1,
// below the compaction, and was cancelled again, forever: the node stayed blind.
// - single leader, the attack's recipe: other tenants write outside the prefix, an operator
//   compacts, every connection is reset once; within 15 s a write is acknowledged and read back
//   (before: every write ERR_LEASE_ETCD_UNKNOWN_OUTCOME, applied stuck below the compaction);
// - single leader, the reload replaces the copy whole: while the node's answers are cut, a key
//   is deleted, another overwritten (by a client writing the data prefix directly), and the
//   keyspace compacted; once healed the node's copy shows etcd's state (the deleted key gone);
//   its negative control `watch-ignores-compaction` (build/unsafe/) shows the copy left blind;
// - group node: a membership key that vanished while the watch was blind leaves the live set
//   (the reload tells the group handler, as a watch deletion would).
import { Etcd3 } from "etcd3";
import { afterEach, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createEtcdGroupNode, createEtcdLeaseNode, type EtcdGroupNode, type EtcdLeaseNode, type EtcdNodeEvent } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { sleep, until } from "./etcd/support.js";

let cluster: EtcdCluster | undefined;
const proxies: FaultProxy[] = [];
const nodes: (EtcdLeaseNode | EtcdGroupNode)[] = [];
const admins: Etcd3[] = [];

interface Impl {
  createLeaseCore: typeof createLeaseCore;
  createEtcdLeaseNode: typeof createEtcdLeaseNode;
}
const safe: Impl = { createLeaseCore, createEtcdLeaseNode };
const unsafeGlobal = globalThis as { __leaseCoreUnsafe?: Record<string, boolean> };

/** build/unsafe/ (host/unsafe.d.ts) with `__UNSAFE_<name>__` on until the test ends. */
async function unsafeImpl(name: string): Promise<Impl> {
  unsafeGlobal.__leaseCoreUnsafe = { ...unsafeGlobal.__leaseCoreUnsafe, [name]: true };
  const [core, etcd] = await Promise.all([import("../build/unsafe/node.js"), import("../build/unsafe/etcd.js")]);
  return { createLeaseCore: core.createLeaseCore, createEtcdLeaseNode: etcd.createEtcdLeaseNode } as unknown as Impl;
}

afterEach(async () => {
  for (const key of Object.keys(unsafeGlobal.__leaseCoreUnsafe ?? {})) unsafeGlobal.__leaseCoreUnsafe![key] = false;
  await Promise.all(nodes.splice(0).map((n) => n.close().catch(() => undefined)));
  for (const a of admins.splice(0)) a.close();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await cluster?.stop();
  cluster = undefined;
});

async function setup(): Promise<{ admin: Etcd3; prox: FaultProxy[]; prefix: string; endpoints: string[] }> {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  const prox = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
  proxies.push(...prox);
  const admin = new Etcd3({ hosts: cluster.clientEndpoints });
  admins.push(admin);
  const prefix = `/cw-${Math.random().toString(36).slice(2)}`;
  return { admin, prox, prefix, endpoints: prox.map((p) => `127.0.0.1:${p.port}`) };
}

/** Other tenants write outside `prefix`, then the keyspace is compacted at the current revision
 *  (`etcdctl compact`); returns that revision. */
async function compactAbove(admin: Etcd3): Promise<bigint> {
  for (let i = 0; i < 20; i++) await admin.put(`/cw-other/${i}`).value("x");
  const revision = (await admin.get("/cw-other/0").exec()).header.revision;
  await (admin as unknown as { kv: { compact(req: { revision: string; physical: boolean }): Promise<unknown> } }).kv.compact({ revision, physical: true });
  return BigInt(revision);
}

describe("the local copy after a compaction above its applied revision", () => {
  test("single leader: after a compaction and one connection reset, the node writes and reads again", async () => {
    const { admin, prox, prefix, endpoints } = await setup();
    const events: EtcdNodeEvent[] = [];
    const a = createEtcdLeaseNode({ core: await createLeaseCore(), id: "a", prefix, endpoints, ttlS: 2, etcdElectionTimeoutMs: 300, onEvent: (e) => events.push(e) });
    nodes.push(a);
    await a.start();
    await a.waitForLeader(20_000);
    await a.write("k", "v1");
    const compacted = await compactAbove(admin);
    expect(a.status().appliedRevision < compacted).toBe(true);
    for (const p of prox) p.reset(); // one network blip: the data watch stream ends
    await sleep(1000);
    const deadline = performance.now() + 15_000;
    const outcomes: string[] = [];
    let value: string | null = null;
    for (let i = 2; performance.now() < deadline; i++) {
      if (a.state() !== "leader") {
        await a.waitForLeader(2_000).catch(() => undefined);
        continue;
      }
      const w = await a.write("k", `v${i}`).then(
        () => "acknowledged",
        (err: Error & { code?: string }) => `${err.name} ${err.code ?? ""}`,
      );
      outcomes.push(w);
      if (w !== "acknowledged") continue;
      value = await a.read("k").then(
        (r) => r.value,
        () => null,
      );
      if (value === `v${i}`) break;
    }
    console.log(`after recovery: state ${a.state()}, applied ${a.status().appliedRevision} (compacted at ${compacted}), writes ${JSON.stringify(outcomes)}, reloads ${a.counters.watchReloads}`);
    expect({ recovered: value !== null && outcomes.at(-1) === "acknowledged", pastCompaction: a.status().appliedRevision > compacted, last: outcomes.at(-1) }).toEqual({
      recovered: true,
      pastCompaction: true,
      last: "acknowledged",
    });
    expect(a.counters.watchReloads).toBeGreaterThanOrEqual(1);
    expect(events.some((e) => e.reason === "watch-reload")).toBe(true);
  }, 60_000);

  /** Writes three keys on a leader, then, while the node hears nothing from etcd (every answer
   *  and watch event discarded), a client writes the data prefix directly (outside the node's
   *  contract: it exercises the reload's replacement) and the keyspace is compacted; heals, and
   *  gives the copy `waitMs` to reach the compaction. */
  async function blindWhileChanged(impl: Impl, waitMs: number) {
    const { admin, prox, prefix, endpoints } = await setup();
    const a = impl.createEtcdLeaseNode({ core: await impl.createLeaseCore(), id: "a", prefix, endpoints, ttlS: 2, etcdElectionTimeoutMs: 300 });
    nodes.push(a);
    await a.start();
    await a.waitForLeader(20_000);
    await a.write("gone", "v1");
    await a.write("changed", "v1");
    await a.write("kept", "v1");
    for (const p of prox) p.set("down", { kind: "cut" });
    await admin.delete().key(`${prefix}/d/gone`);
    await admin.put(`${prefix}/d/changed`).value("v2");
    await admin.put(`${prefix}/d/changed`).value("v3");
    const compacted = await compactAbove(admin);
    for (const p of prox) p.heal(); // resets every connection that lost bytes
    await until("the copy reaches etcd's state past the compaction", () => a.status().appliedRevision >= compacted, waitMs).catch(() => undefined);
    return { gone: a.peek("gone"), changed: a.peek("changed"), kept: a.peek("kept"), pastCompaction: a.status().appliedRevision >= compacted, reloads: a.counters.watchReloads! >= 1 };
  }

  test("single leader: the reload replaces the copy whole (a key deleted while the watch was blind is gone, an overwritten one shows etcd's value)", async () => {
    expect(await blindWhileChanged(safe, 15_000)).toEqual({ gone: null, changed: "v3", kept: "v1", pastCompaction: true, reloads: true });
  }, 60_000);

  test("negative control watch-ignores-compaction (build/unsafe/): the same node stays blind, its copy from before the compaction", async () => {
    expect(await blindWhileChanged(await unsafeImpl("WATCH_IGNORES_COMPACTION"), 4_000)).toEqual({ gone: "v1", changed: "v1", kept: "v1", pastCompaction: false, reloads: false });
  }, 60_000);

  test("group node: a membership key that vanished while the watch was blind leaves the live set", async () => {
    const { admin, prox, prefix, endpoints } = await setup();
    const events: EtcdNodeEvent[] = [];
    const a = createEtcdGroupNode({ core: await createLeaseCore(), id: "a", prefix, endpoints, ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: 2, onEvent: (e) => events.push(e) });
    nodes.push(a);
    await a.start();
    // A member the node sees come and go only through its watch (its rounds read only its own key).
    await admin.put(`${prefix}/n/ghost`).value("");
    await until("a sees the ghost member", () => a.status().liveNodes.includes("ghost"), 10_000);
    await a.waitForAssignment(20_000).catch(() => undefined);
    for (const p of prox) p.set("down", { kind: "cut" });
    await admin.delete().key(`${prefix}/n/ghost`);
    const compacted = await compactAbove(admin);
    for (const p of prox) p.heal();
    await until("the ghost member is gone from a's copy", () => !a.status().liveNodes.includes("ghost"), 15_000).catch(() => undefined);
    expect({ live: a.status().liveNodes, pastCompaction: a.status().appliedRevision >= compacted, reloaded: events.some((e) => e.reason === "watch-reload") }).toEqual({
      live: ["a"],
      pastCompaction: true,
      reloaded: true,
    });
  }, 60_000);
});
