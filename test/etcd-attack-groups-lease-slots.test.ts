// Attack on the group node's use of the core's lease table (lease-core/etcd createEtcdGroupNode:
// "the core must have been created with maxLeases >= groupCount ... checked at creation",
// docs/etcd.md "Many groups on one lease"), on a real 3-member etcd.
//
// Inputs: a core created with maxLeases 16 (16 lease slots), group nodes of G = 16 on it:
//   1. node x starts, leads its 16 groups, closes; then node y (G = 16) is created on the same
//      core, as a restarted service would;
//   2. on a second such core holding one lease of the application's (15 slots free), a node of
//      G = 16 is refused; then the application's lease is disposed (16 free) and 15 leases
//      are asked of the core.
// Contract: close() stops the node and gives back what it took (a closed node's groups hold no
// lease slot: nothing can use them again); a refused creation leaves the core as it was
// (standards: bad input gets a typed, named error and leaves state unchanged, never a
// half-applied change); both y and the 15 leases fit.
// What happened: (1) y's creation threw CapacityError: close() closes each group's reader but
// never disposes its lease (LeaseReader.close leaves that to the caller), so x's 16 slots stay
// taken for the life of the core; (2) the refusal was a CapacityError thrown half-way, after 15
// readers had taken 15 slots that were never given back: the first lease asked afterwards
// threw CapacityError too (and the refused node's etcd client was built).
import { afterEach, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";

let cluster: EtcdCluster | undefined;
const nodes: EtcdGroupNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close().catch(() => undefined)));
  await cluster?.stop();
  cluster = undefined;
});

/** What a call did: "ok", or the error's name. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (err) {
    return (err as Error).name;
  }
}

describe("attack: the core's lease slots of a group node", () => {
  test("a closed node gives its groups' lease slots back: a node of the same G fits on the core again", async () => {
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const core = await createLeaseCore({ maxLeases: 16 });
    const options = { core, endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: 16 } as const;
    const x = createEtcdGroupNode({ ...options, id: "x", prefix: `/atk-gs-${Math.random().toString(36).slice(2)}` });
    nodes.push(x);
    await x.start();
    await x.waitForAssignment(20_000);
    expect(x.ledGroups()).toHaveLength(16);
    await x.close();
    const created = outcome(() => nodes.push(createEtcdGroupNode({ ...options, id: "y", prefix: `/atk-gs-${Math.random().toString(36).slice(2)}` })));
    expect(created).toBe("ok");
  }, 60_000);

  test("a node refused for want of lease slots leaves the core's slots as they were", async () => {
    const core = await createLeaseCore({ maxLeases: 16 });
    const mine = core.createLease(); // the application's own lease: 15 slots left
    const refused = outcome(() => nodes.push(createEtcdGroupNode({ core, id: "z", prefix: "/atk-gs-z", endpoints: ["127.0.0.1:1"], ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: 16 })));
    expect(refused).not.toBe("ok");
    mine.dispose(); // 16 free again, if the refusal took nothing
    const leases: string[] = [];
    for (let i = 0; i < 15; i++) leases.push(outcome(() => core.createLease()));
    // Refused by a typed error (InvalidOptionError before anything is built, or CapacityError),
    // and every slot it may have taken given back.
    expect(["InvalidOptionError", "CapacityError"]).toContain(refused);
    expect(leases.filter((o) => o !== "ok")).toEqual([]);
  }, 30_000);
});
