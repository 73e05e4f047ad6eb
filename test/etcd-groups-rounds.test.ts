// The group engine's cost is per node, not per group (lease-core/etcd createEtcdGroupNode,
// docs/etcd.md "Many groups on one lease"), on a real 3-member etcd: over the same window, a
// node of G=16 and a node of G=512 send the same number of etcd requests (one keepalive + one
// confirmation read per round), lease reads of every group add none, and linearizable reads on
// many groups at once share rounds instead of starting one per group.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLeaseCore, type LeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { sleep, until } from "./etcd/support.js";

let cluster: EtcdCluster;
let core: LeaseCore;
const nodes: EtcdGroupNode[] = [];

beforeAll(async () => {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  core = await createLeaseCore();
}, 30_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await cluster?.stop();
});

/** A node of `groupCount` groups (alone on its prefix: it leads them all), settled and covered. */
async function settled(groupCount: number): Promise<EtcdGroupNode> {
  const n = createEtcdGroupNode({ core, id: `n${groupCount}`, prefix: `/gr-${groupCount}-${Math.random().toString(36).slice(2)}`, endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300, renewIntervalMs: 200, groupCount });
  nodes.push(n);
  await n.start();
  await n.waitForAssignment(20_000);
  await until("every group covered by the node proof", () => [...Array(groupCount).keys()].every((g) => (n.group(g).lastQuorumAck?.() ?? 0n) !== 0n), 10_000);
  return n;
}

/** etcd requests and rounds a node sends over `windowMs`, while every group is lease-read. */
async function window(n: EtcdGroupNode, windowMs: number): Promise<{ requests: number; rounds: number; local: number }> {
  const requests = n.counters.etcdRequests!;
  const rounds = n.counters.rounds!;
  const end = performance.now() + windowMs;
  let local = 0;
  while (performance.now() < end) {
    // Every group fenced on one sample; served from the node proof (no etcd request).
    const fences = await n.reader.leaseReadAllGroups();
    local += fences.size;
    await sleep(50);
  }
  return { requests: n.counters.etcdRequests! - requests, rounds: n.counters.rounds! - rounds, local };
}

describe("group node cost", () => {
  test("etcd requests per window are the same at G=16 and G=512 (one keepalive + one read per round)", async () => {
    const small = await settled(16);
    const large = await settled(512);
    // Both windows run at once, so any load slows both alike.
    const [s, l] = await Promise.all([window(small, 3000), window(large, 3000)]);
    console.log(`G=16: ${s.requests} requests, ${s.rounds} rounds; G=512: ${l.requests} requests, ${l.rounds} rounds`);
    expect(s.rounds).toBeGreaterThan(3);
    expect(s.requests).toBe(2 * s.rounds);
    expect(l.requests).toBe(2 * l.rounds);
    expect(Math.abs(l.requests - s.requests)).toBeLessThanOrEqual(4);
    expect(s.local).toBeGreaterThan(0);
    expect(l.local).toBeGreaterThan(0);
  }, 60_000);

  test("linearizable reads on every group at once share rounds (never one per group)", async () => {
    const n = await settled(256);
    const rounds = n.counters.rounds!;
    await Promise.all([...Array(256).keys()].map((g) => n.group(g).linearizableRead()));
    // At most the round in flight when they were asked, and the one after it that they share.
    expect(n.counters.rounds! - rounds).toBeLessThanOrEqual(2);
  }, 60_000);
});
