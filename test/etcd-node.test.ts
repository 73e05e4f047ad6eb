// lease-core/etcd in process, against a real 3-member etcd on loopback: the lease arithmetic
// (TTL - margin, the margin's parts), election and the LeaseEngine surface, the write fence,
// reads local vs through etcd (and the measured ratio), and a prompt close().
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLeaseCore, type LeaseCore } from "lease-core";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { createEtcdLeaseNode, type EtcdLeaseNode } from "lease-core/etcd";

const MS = 1_000_000n;
let cluster: EtcdCluster;
let core: LeaseCore;
const nodes: EtcdLeaseNode[] = [];

beforeAll(async () => {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  core = await createLeaseCore();
}, 30_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await cluster?.stop();
});

function node(id: string, prefix: string, extra: Partial<Parameters<typeof createEtcdLeaseNode>[0]> = {}): EtcdLeaseNode {
  const n = createEtcdLeaseNode({ core, id, prefix, endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300, ...extra });
  nodes.push(n);
  return n;
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

describe("lease-core/etcd node", () => {
  test("lease = TTL - (election timeout + 2·drift·TTL + 1 ms), anchored on a confirmed keepalive's send time", async () => {
    const a = node("a", "/t1");
    await a.start();
    await a.waitForLeader();
    const s = a.status();
    expect(s.ttlNs).toBe(2000n * MS);
    // 300 ms + ceil(2 · 2 s · 500 ppm) = 2 ms + 1 ms
    expect(s.marginNs).toBe(303n * MS);
    expect(s.leaseDurationNs).toBe(1697n * MS);
    expect(a.leaseDurationNs()).toBe(1697n * MS);
    // A confirmed anchor exists, it is in the past, and not older than a renew interval + RTTs.
    const deadline = performance.now() + 2000;
    while (a.lastQuorumAck() === 0n && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const now = core.now();
    expect(a.lastQuorumAck()).toBeGreaterThan(0n);
    expect(a.lastQuorumAck()).toBeLessThanOrEqual(now);
    expect(now - a.lastQuorumAck()).toBeLessThan(1000n * MS);
    expect(a.status().counters.confirmed).toBeGreaterThan(0);
    expect(a.currentTerm()).toBe(s.leaderCreateRevision);
    expect(a.quorumAckTerm()).toBe(s.leaderCreateRevision);
    await a.close();
  }, 20_000);

  test("a TTL too short for the margin is refused by name, at creation", () => {
    expect(() => node("bad", "/t2", { ttlS: 1, etcdElectionTimeoutMs: 1000 })).toThrow(
      expect.objectContaining({ name: "EtcdNodeError", code: "ERR_LEASE_ETCD_TTL_TOO_SHORT", message: expect.stringContaining("use ttlS 2 or more") }),
    );
  });

  test("one leader; the follower refuses; writes are fenced; reads are local under the lease and match etcd", async () => {
    const a = node("a", "/t3");
    const b = node("b", "/t3");
    await a.start();
    await a.waitForLeader();
    await b.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(a.state()).toBe("leader");
    expect(b.state()).toBe("follower");
    expect(b.status().leaderId).toBe("a");
    await expect(b.write("x", "1")).rejects.toMatchObject({ code: "ERR_LEASE_NOT_LEADER" });
    await expect(b.read("x")).rejects.toMatchObject({ code: "ERR_LEASE_NOT_LEADER" });
    const w = await a.write("x", "1");
    const r = await a.read("x");
    expect(r).toMatchObject({ value: "1", served: "local", reason: "valid" });
    expect(r.revision).toBeGreaterThanOrEqual(w.revision);
    const l = await a.readLinearizable("x");
    expect(l).toMatchObject({ value: "1", served: "etcd" });
    // The follower's replicated state follows too.
    await b.linearizableRead();
    expect(b.peek("x")).toBe("1");
    // Closing the leader resigns at once: b leads well before the 2 s TTL would run out.
    const t0 = performance.now();
    await a.close();
    await b.waitForLeader(5000);
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(a.state()).toBe("shutdown");
    expect((await b.read("x")).value).toBe("1");
  }, 20_000);

  test("the own leader key deleted behind the leader's back: invalidated at once", async () => {
    const a = node("a", "/t4");
    await a.start();
    await a.waitForLeader();
    await a.write("k", "v1");
    let losses = 0;
    let ackAtLoss: bigint | undefined;
    a.onLeaderLoss(() => {
      losses++;
      ackAtLoss ??= a.lastQuorumAck(); // at the loss: it may be elected again right after
    });
    const { Etcd3 } = await import("etcd3");
    const admin = new Etcd3({ hosts: cluster.clientEndpoints });
    await admin.delete().key("/t4/leader");
    admin.close();
    const deadline = performance.now() + 1000;
    while (losses === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(losses).toBeGreaterThan(0);
    expect(ackAtLoss).toBe(0n);
    await a.waitForLeader(5000); // nobody else campaigns: it is elected again, in a new epoch
  }, 20_000);

  test("a write from a deposed epoch fails its fence (own-key watch switched off to reach the txn)", async () => {
    const a = node("a", "/t4b", { unsafe: { ignoreOwnKeyWatch: true } });
    await a.start();
    await a.waitForLeader();
    const { Etcd3 } = await import("etcd3");
    const admin = new Etcd3({ hosts: cluster.clientEndpoints });
    await admin.delete().key("/t4b/leader");
    await admin.put("/t4b/leader").value("intruder"); // a new key: another create revision
    // The fenced txn refuses it (LEADERSHIP_LOST); a renewal that lands between the intrusion and
    // the write finds the key gone first and steps down (NOT_LEADER). Either way nothing is written.
    await expect(a.write("k", "stale")).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_LEASE_(LEADERSHIP_LOST|NOT_LEADER)$/) });
    expect(a.state()).toBe("follower");
    expect(await admin.get("/t4b/d/k").string()).toBeNull();
    admin.close();
  }, 20_000);

  test("measured: a local lease read vs a linearizable etcd read, p50/p99 (goal: >= 20x faster at p50)", async () => {
    const a = node("a", "/t5");
    await a.start();
    await a.waitForLeader();
    await a.write("m", "v");
    const local: number[] = [];
    const etcd: number[] = [];
    for (let i = 0; i < 1500; i++) {
      const t0 = process.hrtime.bigint();
      const r = await a.read("m");
      const t1 = process.hrtime.bigint();
      if (r.served === "local") local.push(Number(t1 - t0) / 1000);
      const t2 = process.hrtime.bigint();
      await a.readLinearizable("m");
      etcd.push(Number(process.hrtime.bigint() - t2) / 1000);
    }
    const summary = { localP50Us: pct(local, 0.5), localP99Us: pct(local, 0.99), etcdP50Us: pct(etcd, 0.5), etcdP99Us: pct(etcd, 0.99), localCount: local.length };
    console.log(`lease read vs linearizable etcd read (µs): ${JSON.stringify(summary)}; p50 ratio ${(summary.etcdP50Us / summary.localP50Us).toFixed(0)}x`);
    expect(local.length).toBeGreaterThan(1400);
    expect(summary.etcdP50Us / summary.localP50Us).toBeGreaterThanOrEqual(20);
  }, 60_000);

  test("close() returns promptly even with every etcd member gone", async () => {
    const local = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    try {
      const a = createEtcdLeaseNode({ core, id: "a", prefix: "/t6", endpoints: local.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300 });
      await a.start();
      await a.waitForLeader();
      for (let i = 0; i < local.members.length; i++) local.kill(i);
      const t0 = performance.now();
      await a.close();
      expect(performance.now() - t0).toBeLessThan(1500);
      expect(a.state()).toBe("shutdown");
    } finally {
      await local.stop();
    }
  }, 30_000);
});
