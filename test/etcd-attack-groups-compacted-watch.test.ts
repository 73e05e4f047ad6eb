// Attack on the group node's local copy (lease-core/etcd createEtcdGroupNode; docs/etcd.md §4:
// the node loads the prefix with one range and follows it with a watch), on a real 3-member etcd.
//
// Inputs: one node "a" (G = 1) reaching etcd through one FaultProxy per member; it writes k = v1.
// Other clients of the same etcd then write 20 keys outside the prefix (the prefix stays quiet:
// the node's applied revision stays at its own last event) and an operator compacts the keyspace
// at the current revision, as routine maintenance does (`etcdctl compact`, kube-apiserver every
// 5 minutes, --auto-compaction-retention). Then every connection of the node is reset once (a
// network blip, a member restart): its watch stream ends and is re-opened.
// Contract: a transient fault leaves the node working once it heals: within 15 s a write of its
// group is acknowledged and a read returns it. (An etcd watch whose start revision was compacted
// is cancelled with `compact_revision`; a client must load the prefix again from a range, as
// client-go's reflector does with its re-list.) Otherwise the node is blind for good while its
// rounds keep its lease, and so its group keys, alive: nobody else can ever lead its groups.
// What happened: the watch was re-opened from applied + 1 (below the compaction), cancelled at
// once, re-opened, cancelled... (replica.ts watchData ignores compact_revision); applied stayed at
// its old value: every write failed with ERR_LEASE_ETCD_UNKNOWN_OUTCOME ("committed at revision
// N, but the local state did not reach it") and every read with "local state did not reach
// revision N in time", while the node still led its group (no other node could take it).
import { Etcd3 } from "etcd3";
import { afterEach, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { sleep } from "./etcd/support.js";

let cluster: EtcdCluster | undefined;
const proxies: FaultProxy[] = [];
const nodes: EtcdGroupNode[] = [];
const admins: Etcd3[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close().catch(() => undefined)));
  for (const a of admins.splice(0)) a.close();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await cluster?.stop();
  cluster = undefined;
});

describe("attack: the group node's watch after a compaction", () => {
  test("a watch re-opened below the compacted revision recovers: the node writes and reads again", async () => {
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const prox = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
    proxies.push(...prox);
    const admin = new Etcd3({ hosts: cluster.clientEndpoints });
    admins.push(admin);
    const prefix = `/atk-gc-${Math.random().toString(36).slice(2)}`;
    const a = createEtcdGroupNode({ core: await createLeaseCore(), id: "a", prefix, endpoints: prox.map((p) => `127.0.0.1:${p.port}`), ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: 1 });
    nodes.push(a);
    await a.start();
    await a.waitForAssignment(20_000);
    await a.write("k", "v1");
    // Other tenants write; the operator compacts at the current revision.
    for (let i = 0; i < 20; i++) await admin.put(`/atk-gc-other/${i}`).value("x");
    const revision = (await admin.get("/atk-gc-other/0").exec()).header.revision;
    await (admin as unknown as { kv: { compact(req: { revision: string; physical: boolean }): Promise<unknown> } }).kv.compact({ revision, physical: true });
    expect(a.status().appliedRevision < BigInt(revision)).toBe(true);
    // One network blip: every connection of the node is reset (its watch stream ends).
    for (const p of prox) p.reset();
    await sleep(1000);
    // Within 15 s, a write is acknowledged and read back.
    const deadline = performance.now() + 15_000;
    const outcomes: string[] = [];
    let value: string | null = null;
    for (let i = 2; performance.now() < deadline; i++) {
      const w = await a.write("k", `v${i}`).then(() => "acknowledged", (err: Error & { code?: string }) => `${err.name} ${err.code ?? ""}`);
      outcomes.push(w);
      if (w !== "acknowledged") continue;
      value = await a.read("k").then((r) => r.value, () => null);
      if (value === `v${i}`) break;
    }
    console.log(`after 15 s: leads ${JSON.stringify(a.ledGroups())}, applied ${a.status().appliedRevision} (compacted at ${revision}), writes: ${outcomes.length}`);
    expect({ recovered: value !== null && outcomes.at(-1) === "acknowledged", applied: a.status().appliedRevision > BigInt(revision), last: outcomes.at(-1) }).toEqual({ recovered: true, applied: true, last: "acknowledged" });
  }, 60_000);
});
