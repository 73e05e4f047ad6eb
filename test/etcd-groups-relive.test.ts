// Liveness of the group engine (lease-core/etcd createEtcdGroupNode, docs/etcd.md "Many groups on
// one lease") after its etcd lease expired, on a real 3-member etcd (issue 17, the sharded
// nemesis's seed 8: "no progress after healing"). A node whose lease is gone re-grants and
// re-registers `<prefix>/n/<id>`; its watch, lagging, then delivers the DELETE of the OLD
// membership key (etcd deleted it with the old lease) after the new one was put. That late
// event must not make the node forget its new registration: the other nodes count it live (its
// new key stands), so it stays the rendezvous owner of its groups, and if it never campaigns
// again nobody leads them.
import { Etcd3, KVClient, LeaseClient } from "etcd3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLeaseCore, type LeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode, type EtcdGroupNodeOptions } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { rendezvousOwner } from "../host/etcd/groups/assign.js";
import { dataWatchProxy, sleep, until } from "./etcd/support.js";

const G = 8;
let cluster: EtcdCluster;
let core: LeaseCore;
let admin: Etcd3;
const nodes: EtcdGroupNode[] = [];

beforeAll(async () => {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  core = await createLeaseCore();
  admin = new Etcd3({ hosts: cluster.clientEndpoints });
}, 30_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  admin?.close();
  await cluster?.stop();
});

function node(id: string, prefix: string, extra: Partial<EtcdGroupNodeOptions> = {}): EtcdGroupNode {
  const n = createEtcdGroupNode({ core, id, prefix, endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: G, ...extra });
  nodes.push(n);
  return n;
}

describe("group node liveness after its etcd lease expired", () => {
  test("re-registered while its watch lags, the node leads its groups again once the late DELETE of its old membership key arrives", async () => {
    const proxies = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
    try {
      const prefix = `/grl-${Math.random().toString(36).slice(2)}`;
      const events: string[] = [];
      const x = node("x", prefix, { endpoints: proxies.map((p) => `127.0.0.1:${p.port}`), requestTimeoutMs: 300, onEvent: (e) => events.push(e.reason) });
      const y = node("y", prefix);
      await Promise.all([x.start(), y.start()]);
      await Promise.all([x.waitForAssignment(20_000), y.waitForAssignment(20_000)]);
      const xGroups = [...Array(G).keys()].filter((g) => rendezvousOwner(g, ["x", "y"]) === "x");
      expect(xGroups.length).toBeGreaterThan(0); // the split this test stands on
      expect(x.ledGroups()).toEqual(xGroups);

      // x's watch lags 6 s; x's etcd lease is revoked (as after a pause past its TTL): etcd
      // deletes n/x and x's group keys at once, x learns it from its next keepalive (TTL 0).
      const slow = await dataWatchProxy(x as never, admin, prefix, proxies);
      proxies[slow]!.set("down", { kind: "delay", delayMs: 6000 });
      const oldLease = x.status().leaseId!;
      const registrations = x.counters.registrations!;
      const pool = (admin as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
      await new LeaseClient(pool).leaseRevoke({ ID: oldLease });
      // x re-grants and puts n/x again with the new lease, all before its watch shows the
      // deletion of the old n/x (the precondition of the finding: checked, not assumed).
      const memberLease = async () => String((await new KVClient(pool).range({ key: Buffer.from(`${prefix}/n/x`) })).kvs[0]?.lease);
      await until("x re-registered with a new lease", async () => x.counters.registrations! > registrations && (await memberLease()) === x.status().leaseId, 5000, 50);
      expect(events).toContain("etcd-lease-expired");
      expect(x.status().leaseId).not.toBe(oldLease);
      // The watch catches up: the old key's DELETE, then the new key's PUT, in revision order.
      proxies[slow]!.heal();

      // y counts x live all along (n/x stands), so x's groups are x's to campaign for: within a
      // few TTLs every group is led again, x's by x.
      let led: number[] = [];
      await until(
        "every group led again",
        () => {
          led = [...x.ledGroups(), ...y.ledGroups()].sort((a, b) => a - b);
          return led.length === G;
        },
        10_000,
      ).catch(() => undefined);
      expect({ led, x: x.ledGroups(), yLive: y.status().liveNodes }).toEqual({ led: [...Array(G).keys()], x: xGroups, yLive: ["x", "y"] });
      // The groups serve on a confirmed proof again (the node's rounds confirm under the new lease).
      await until("x's groups on a confirmed proof", () => xGroups.every((g) => (x.group(g).lastQuorumAck?.() ?? 0n) !== 0n), 10_000);
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  }, 60_000);

  test("a membership key deleted from outside is put again by the next round's quorum read, not only once the lagging watch shows the deletion", async () => {
    const proxies = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
    try {
      const prefix = `/grl2-${Math.random().toString(36).slice(2)}`;
      const x = node("x", prefix, { endpoints: proxies.map((p) => `127.0.0.1:${p.port}`), requestTimeoutMs: 300 });
      await x.start();
      await x.waitForAssignment(20_000);
      const slow = await dataWatchProxy(x as never, admin, prefix, proxies);
      proxies[slow]!.set("down", { kind: "delay", delayMs: 8000 });
      const registrations = x.counters.registrations!;
      const lease = x.status().leaseId!;
      await admin.delete().key(`${prefix}/n/x`);
      const deletedAt = performance.now();
      // Rounds every TTL/4 = 500 ms: well within 4 s, while the watch holds the DELETE 8 s.
      let putBackMs: number | null = null;
      await until("n/x put back", () => x.counters.registrations! > registrations, 4000).then(
        () => (putBackMs = performance.now() - deletedAt),
        () => undefined,
      );
      const member = await admin.get(`${prefix}/n/x`).exec();
      proxies[slow]!.heal();
      // Let the watch deliver the (older) DELETE: it must not void the newer put.
      await sleep(2000);
      expect({ putBack: putBackMs !== null && putBackMs < 4000, lease: String(member.kvs[0]?.lease) }).toEqual({ putBack: true, lease });
      // Put once, not once per round.
      expect(x.counters.registrations).toBe(registrations + 1);
      expect(x.ledGroups()).toEqual([...Array(G).keys()]);
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  }, 60_000);
});
