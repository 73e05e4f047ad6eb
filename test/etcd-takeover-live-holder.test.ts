// The live-holder check of a takeover without a resign marker (lease-core/etcd, both engines;
// docs/etcd.md §5 and "Many groups on one lease" case (d)), on a real 3-member etcd, with
// takeoverHold "never" (the hold off: the same holdNs = 0 as "auto" on an etcd with the
// early-revoke fix). Complements test/etcd-attack-groups2-deleted-*.test.ts, where the successor
// never saw the deleted key's holder (an unknown lease: the fail-closed hold); here it did.
//
// Inputs: two nodes, ttlS 4; "a" reaches etcd through one FaultProxy per member and renews every
// 2.5 s; "b" reaches etcd directly and starts while a holds (it sees a's key and its lease).
// Right after one of a's confirmation rounds a's answers stall (its watches hear nothing, as
// behind a lagging member); then either
//   - "deleted": an operator deletes a's key(s) (one txn) while a's lease is alive: b must hold (the
//     lease's granted TTL + the frozen-clock budget) and never serve while a still serves
//     locally; a batch of a's groups costs ONE LeaseTimeToLive (one previous lease);
//   - "expired": a's requests stall too (its renewals no longer reach etcd): its etcd lease expires and its key(s) go with it: b must take
//     over WITHOUT a hold (liveness: a lapsed lease needs no wait beyond what etcd waited).
import { Etcd3, KVClient } from "etcd3";
import { afterEach, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createEtcdGroupNode, createEtcdLeaseNode, type EtcdGroupNode, type EtcdLeaseNode, type EtcdNodeEvent } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { rendezvousOwner } from "../host/etcd/groups/assign.js";
import { sleep, until } from "./etcd/support.js";

let cluster: EtcdCluster | undefined;
const proxies: FaultProxy[] = [];
const nodes: (EtcdLeaseNode | EtcdGroupNode)[] = [];
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
async function tryRead(n: EtcdLeaseNode | EtcdGroupNode, key: string): Promise<{ value: string | null; served: string }> {
  try {
    const r = await n.read(key);
    return { value: r.value, served: r.served };
  } catch (err) {
    return { value: null, served: (err as Error).name };
  }
}

/** The cluster, a's proxies (healthy) and an admin client. */
async function setup(): Promise<{ direct: string[]; aEndpoints: string[]; aProx: FaultProxy[]; admin: Etcd3 }> {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  const aProx = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
  proxies.push(...aProx);
  const admin = new Etcd3({ hosts: cluster.clientEndpoints });
  admins.push(admin);
  return { direct: cluster.clientEndpoints, aEndpoints: aProx.map((p) => `127.0.0.1:${p.port}`), aProx, admin };
}

/** For 4 s: once b serves `key` locally it writes v2 (acknowledged); every read of a served
 *  locally after that is an overlap (a stale read of v1). */
async function overlapsFor4s(a: EtcdLeaseNode | EtcdGroupNode, b: EtcdLeaseNode | EtcdGroupNode, key: string): Promise<string[]> {
  const fromMs = performance.now();
  const overlaps: string[] = [];
  let acknowledged = false;
  while (performance.now() - fromMs < 4000) {
    if (!acknowledged && (await tryRead(b, key)).served === "local") {
      await b.write(key, "v2");
      acknowledged = true;
    }
    const aRead = await tryRead(a, key);
    if (acknowledged && aRead.served === "local") overlaps.push(`+${(performance.now() - fromMs).toFixed(0)} ms: a reads ${aRead.value} locally after b acknowledged v2`);
    await sleep(20);
  }
  return overlaps;
}

/** a's answers stall: it hears nothing (its watches lag). "deleted": only that, so its
 *  keepalive requests still reach etcd and its lease stays alive (as the attack tests). "expired":
 *  its requests stall too, so its renewals (a read it cannot serve locally sends one too) no
 *  longer reach etcd and its lease runs out. */
function stall(list: FaultProxy[], how: "deleted" | "expired"): void {
  for (const p of list) {
    p.set("down", { kind: "stall" });
    if (how === "expired") p.set("up", { kind: "stall" });
  }
}

/** Deletes `keys` in ONE txn (one revision: b's watch sees them in one response). */
async function deleteAll(admin: Etcd3, keys: string[]): Promise<void> {
  const pool = (admin as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
  await new KVClient(pool).txn({ compare: [], success: keys.map((key) => ({ request_delete_range: { key: Buffer.from(key) } })), failure: [] });
}

const common = { etcdElectionTimeoutMs: 300, ttlS: 4, takeoverHold: "never" } as const;

describe("single-leader node: a takeover without a marker looks up the previous holder's lease", () => {
  for (const how of ["deleted", "expired"] as const) {
    test(`leader key ${how} while a's watches lag: b ${how === "deleted" ? "holds (a's lease is alive)" : "does not hold (a's lease is gone)"}`, async () => {
      const { direct, aEndpoints, aProx, admin } = await setup();
      const prefix = `/tlh-${how}-${Math.random().toString(36).slice(2)}`;
      const core = await createLeaseCore();
      const bEvents: EtcdNodeEvent[] = [];
      const a = createEtcdLeaseNode({ core, id: "a", prefix, endpoints: aEndpoints, renewIntervalMs: 2500, ...common });
      nodes.push(a);
      await a.start();
      await a.waitForLeader(20_000);
      await a.write("k", "v1");
      const b = createEtcdLeaseNode({ core, id: "b", prefix, endpoints: direct, renewIntervalMs: 200, ...common, onEvent: (e) => bEvents.push(e) });
      nodes.push(b);
      await b.start();
      await until("b follows a", () => b.status().leaderId === "a", 10_000);
      await until("a serves locally", async () => (await tryRead(a, "k")).served === "local", 10_000);
      const confirmed = a.counters.confirmed!;
      await until("a renewal of a", () => a.counters.confirmed! > confirmed, 10_000, 2);
      stall(aProx, how);
      if (how === "deleted") await admin.delete().key(`${prefix}/leader`).exec();
      const overlaps = await overlapsFor4s(a, b, "k");
      await until("b leads", () => b.state() === "leader", 20_000);
      const live = bEvents.filter((e) => e.reason === "takeover-live-holder").map((e) => e.detail);
      console.log(`${how}: overlaps ${overlaps.length}${overlaps[0] ? ` (first ${overlaps[0]})` : ""}; b holds ${b.counters.holds}, lookups ${b.counters.liveHolderLookups}; ${live.join("; ")}`);
      expect(overlaps).toEqual([]);
      // One lookup of a's lease either way (b saw a's key and its lease).
      expect(b.counters.liveHolderLookups).toBe(1);
      if (how === "deleted") {
        expect(b.counters.holds).toBe(1);
        expect(live).toEqual([expect.stringMatching(/alive \(TTL \d+ s of 4 s\)/)]);
      } else {
        expect(b.counters.holds).toBe(0);
        expect(live).toEqual([]);
      }
    }, 90_000);
  }
});

describe("group node: a batch of groups taken from one holder looks up its lease once", () => {
  for (const how of ["deleted", "expired"] as const) {
    test(`group keys ${how} while a's watches lag: b ${how === "deleted" ? "holds (a's lease is alive)" : "does not hold (a's lease is gone)"}`, async () => {
      const { direct, aEndpoints, aProx, admin } = await setup();
      const prefix = `/tlhg-${how}-${Math.random().toString(36).slice(2)}`;
      const groupCount = 8;
      const bOwns = [...Array(groupCount).keys()].filter((g) => rendezvousOwner(g, ["a", "b"]) === "b");
      expect(bOwns.length).toBeGreaterThanOrEqual(2);
      const bEvents: EtcdNodeEvent[] = [];
      const a = createEtcdGroupNode({ core: await createLeaseCore(), id: "a", prefix, endpoints: aEndpoints, groupCount, renewIntervalMs: 2500, ...common });
      nodes.push(a);
      await a.start();
      await a.waitForAssignment(20_000);
      expect(a.ledGroups()).toHaveLength(groupCount);
      const key = [...Array(200).keys()].map((i) => `k${i}`).find((k) => a.groupOf(k) === bOwns[0])!;
      await a.write(key, "v1");
      await until("a serves locally", async () => (await tryRead(a, key)).served === "local", 10_000);
      // b starts while a's answers stall (a cannot hand b's groups off): b's copy shows a's keys.
      const confirmed = a.counters.roundsConfirmed!;
      await until("a loop round of a", () => a.counters.roundsConfirmed! > confirmed, 10_000, 2);
      stall(aProx, how);
      const b = createEtcdGroupNode({ core: await createLeaseCore(), id: "b", prefix, endpoints: direct, groupCount, renewIntervalMs: 200, ...common, onEvent: (e) => bEvents.push(e) });
      nodes.push(b);
      await b.start();
      await until("b sees a's keys", () => bOwns.every((g) => b.leaderOf(g) === "a"), 10_000);
      if (how === "deleted") await deleteAll(admin, bOwns.map((g) => `${prefix}/g/${String(g).padStart(5, "0")}`));
      const overlaps = await overlapsFor4s(a, b, key);
      await until("b serves its groups", () => bOwns.every((g) => b.ledGroups().includes(g)), 20_000);
      const live = bEvents.filter((e) => e.reason === "takeover-live-holder").map((e) => e.detail);
      console.log(`groups ${how}: b owns ${bOwns.join(",")}; overlaps ${overlaps.length}${overlaps[0] ? ` (first ${overlaps[0]})` : ""}; b holds ${b.counters.holds}, lookups ${b.counters.liveHolderLookups}; ${live.join("; ")}`);
      expect(overlaps).toEqual([]);
      if (how === "deleted") {
        // b's groups were deleted at once and taken in one batch: one lookup of a's lease.
        expect(b.counters.liveHolderLookups).toBe(1);
        expect(b.counters.holds).toBe(bOwns.length);
        expect(live).toEqual([expect.stringMatching(/alive \(TTL \d+ s of 4 s\)/)]);
      } else {
        // a's lease expired: b takes its groups (its own first, the rest once a's membership
        // goes), each batch looking a's lease up once, never holding.
        expect(b.counters.liveHolderLookups).toBeGreaterThanOrEqual(1);
        expect(b.counters.liveHolderLookups).toBeLessThanOrEqual(2);
        expect(b.counters.holds).toBe(0);
        expect(live).toEqual([]);
      }
    }, 90_000);
  }
});
