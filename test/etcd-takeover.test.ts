// lease-core/etcd's paths to leadership and its waits, on a real 3-member etcd with real faults:
// a data watch delayed by a TCP proxy between one node and one member (demo/proxy.ts), a stuck
// etcd leader (strace holding its WAL fdatasync: EtcdCluster.slowDisk), a clock stepped back, a
// stalled keepalive stream. Each test is the regression test of one finding of issue #11 (and,
// where a test-only switch turns the fix off in build/unsafe/, its negative control):
//   1. a new leader (or one retaking its own key) never serves state older than an acknowledged write;
//   3. close() fails a wait in flight by name, never answers it with older local state;
//   4. a clock fault drops the engine's anchor;
//   5. a stuck old etcd leader revoking a live holder's lease early: the next leader serves
//      nothing until that holder's lease has lapsed (etcd 3.4.23 predates the upstream fix);
//   6. a timed-out keepalive's stream never fails (or answers) the next keepalive.
import { afterEach, describe, expect, test } from "vitest";
import { Etcd3, KVClient, LeaseClient } from "etcd3";
import { createLeaseCore, type LeaseCore } from "lease-core";
import { createEtcdLeaseNode, etcdHasRevokeFix, type EtcdLeaseNode, type EtcdNodeEvent } from "lease-core/etcd";
import { canSlowDisk, startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { dataWatchProxy, sleep, until } from "./etcd/support.js";

const MS = 1_000_000n;
let cluster: EtcdCluster | undefined;
const proxies: FaultProxy[] = [];
const nodes: EtcdLeaseNode[] = [];
const admins: Etcd3[] = [];

async function cleanUp(): Promise<void> {
  await Promise.all(nodes.splice(0).map((n) => n.close().catch(() => undefined)));
  for (const a of admins.splice(0)) a.close();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await cluster?.stop();
  cluster = undefined;
}
afterEach(cleanUp);

async function startCluster(): Promise<EtcdCluster> {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  return cluster;
}

function admin(endpoints: string[]): Etcd3 {
  const a = new Etcd3({ hosts: endpoints });
  admins.push(a);
  return a;
}

/** One proxy per member, in member order. */
async function proxyEach(c: EtcdCluster): Promise<FaultProxy[]> {
  const list = await Promise.all(c.members.map((m) => FaultProxy.start(m.clientPort)));
  proxies.push(...list);
  return list;
}

function poolOf(client: Etcd3): ConstructorParameters<typeof KVClient>[0] {
  return (client as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
}

function node(core: LeaseCore, id: string, prefix: string, endpoints: string[], extra: Partial<Parameters<typeof createEtcdLeaseNode>[0]> = {}, impl: Impl = safe): EtcdLeaseNode {
  const n = impl.createEtcdLeaseNode({ core, id, prefix, endpoints, ttlS: 2, etcdElectionTimeoutMs: 300, ...extra });
  nodes.push(n);
  return n;
}

/** The package as published, or the test build with one negative-control switch on. */
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

afterEach(() => {
  for (const key of Object.keys(unsafeGlobal.__leaseCoreUnsafe ?? {})) unsafeGlobal.__leaseCoreUnsafe![key] = false;
});

interface Read {
  value: string | null;
  served: string;
  revision: bigint;
  atMs: number;
}

/**
 * Finding 1's case: a leads and writes v0; b follows with every etcd call through the proxies
 * and a short request timeout (its catch-up times out after 5 × 300 ms, then its next campaign
 * finds its own key: the retake path); b's data watch is delayed 4 s; a writes v1 (acknowledged)
 * and resigns; b's reads for the next 6 s are recorded. Rounds (fresh prefixes) until one where
 * b's leader-key watch was prompt (not behind the delayed proxy too), so that b campaigns while
 * its data watch still lags: the case under test.
 */
async function takeoverWithDelayedWatch(impl: Impl): Promise<{ prompt: boolean; stale: Read[]; reads: number }> {
  const c = await startCluster();
  const list = await proxyEach(c);
  const core = await impl.createLeaseCore();
  const direct = c.clientEndpoints;
  const a0 = admin(direct);
  for (let round = 0; round < 6; round++) {
    const prefix = `/f1-${round}`;
    const a = node(core, "a", prefix, direct, {}, impl);
    await a.start();
    await a.waitForLeader(10_000);
    await a.write("k", "v0");
    const b = node(core, "b", prefix, list.map((p) => `127.0.0.1:${p.port}`), { requestTimeoutMs: 300 }, impl);
    await b.start();
    await until("b following a", () => b.status().leaderId === "a", 5000);
    const w = await dataWatchProxy(b, a0, prefix, list);
    list[w]!.set("down", { kind: "delay", delayMs: 4000 });
    const v1 = await a.write("k", "v1");
    const ackedAt = performance.now();
    await a.close(); // resign
    // Did b's leader-key watch see the resign promptly? (its campaign puts its key)
    let prompt = false;
    const deadline = performance.now() + 1000;
    while (!prompt && performance.now() < deadline) {
      prompt = (await a0.get(`${prefix}/leader`).string()) === "b";
      if (!prompt) await sleep(20);
    }
    // Reads every 10 ms, not one after the other: a read that goes through etcd waits for
    // the delayed watch, and must not keep the next ones from sampling a local decision.
    const reads: Read[] = [];
    const inFlight = new Set<Promise<unknown>>();
    while (performance.now() - ackedAt < 6000) {
      if (inFlight.size < 8) {
        const p = b.read("k").then(
          (r) => void reads.push({ ...r, atMs: performance.now() - ackedAt }),
          () => undefined,
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      await sleep(10);
    }
    await Promise.all(inFlight);
    list[w]!.heal();
    await b.close();
    const stale = reads.filter((r) => r.value !== "v1" || r.revision < v1.revision);
    if (stale.length > 0) console.log(`round ${round}: b served ${stale.length} stale reads, the first ${JSON.stringify(stale[0], (_k, v) => (typeof v === "bigint" ? v.toString() : v))} (v1 at revision ${v1.revision})`);
    if (prompt) return { prompt, stale, reads: reads.length };
    expect(stale).toEqual([]); // a round that is not the case under test must be clean too
  }
  return { prompt: false, stale: [], reads: 0 };
}

/**
 * Finding 3's case: a leads with its data watch delayed 5 s; a write it has not seen yet (a
 * txn through the meta key, as every fenced write); a linearizable read whose txn answered and
 * which waits for the local state (a txn sent through the delayed proxy would have failed its
 * 300 ms deadline by 600 ms); then close(). Returns how the read ended.
 */
async function closeDuringCatchUp(impl: Impl): Promise<{ resolved: unknown } | { rejected: string | undefined }> {
  const c = await startCluster();
  const list = await proxyEach(c);
  const core = await impl.createLeaseCore();
  const a0 = admin(c.clientEndpoints);
  const prefix = "/f3";
  const a = node(core, "a", prefix, list.map((p) => `127.0.0.1:${p.port}`), { requestTimeoutMs: 300 }, impl);
  await a.start();
  await a.waitForLeader(10_000);
  await a.write("k", "v0");
  const w = await dataWatchProxy(a, a0, prefix, list);
  list[w]!.set("down", { kind: "delay", delayMs: 5000 });
  await new KVClient(poolOf(a0)).txn({
    compare: [],
    success: [{ request_put: { key: Buffer.from(`${prefix}/d/k`), value: Buffer.from("v1") } }, { request_put: { key: Buffer.from(`${prefix}/d/`), value: Buffer.from("other") } }],
    failure: [],
  });
  let pending: Promise<unknown> | undefined;
  for (let attempt = 0; attempt < 20 && pending === undefined; attempt++) {
    let settled = false;
    const p = a.readLinearizable("k").finally(() => (settled = true));
    p.catch(() => undefined);
    await sleep(600);
    if (!settled) pending = p;
  }
  expect(pending).toBeDefined();
  await a.close();
  return pending!.then(
    (r) => ({ resolved: r }),
    (err: { code?: string }) => ({ rejected: err.code }),
  );
}

/**
 * Finding 4's case: a custom clock; a leads, renews no more after its write (the test keeps its
 * etcd lease alive itself, which anchors nothing); the clock steps back 1.5 s (a reading in
 * between is refused and counted); 1.7 s later the clock has passed its last good reading, the
 * anchor is truly older than the lease and looks 0.2 s old. Returns how the next read was served.
 */
async function readAfterClockStepBack(impl: Impl): Promise<{ served: string; clockFaults: number | undefined }> {
  const c = await startCluster();
  let offsetNs = 0n;
  const core = await impl.createLeaseCore({ clock: { now: () => process.hrtime.bigint() + offsetNs } });
  const a = node(core, "a", "/f4", c.clientEndpoints, { renewIntervalMs: 600_000 }, impl);
  await a.start();
  const keeper = await new LeaseClient(poolOf(admin(c.clientEndpoints))).leaseKeepAlive();
  keeper.on("data", () => {});
  keeper.on("error", () => {});
  const keep = setInterval(() => keeper.write({ ID: a.status().leaseId! }), 200);
  try {
    await a.waitForLeader(10_000);
    await a.write("k", "v");
    const anchorNs = a.lastQuorumAck();
    expect(anchorNs).toBeGreaterThan(0n);
    offsetNs -= 1500n * MS;
    expect(core.now()).toBe(0n);
    await sleep(1700);
    const trueAgeNs = core.now() - anchorNs + 1500n * MS;
    expect(trueAgeNs).toBeGreaterThan(a.leaseDurationNs());
    expect(a.state()).toBe("leader");
    const r = await a.read("k");
    return { served: r.served, clockFaults: a.status().counters.clockFaults };
  } finally {
    clearInterval(keep);
    keeper.end();
  }
}

describe("lease-core/etcd takeovers", () => {
  test("finding 1: with its data watch delayed, a node taking over after an acknowledged write and a resign never serves older state", async () => {
    const { prompt, stale, reads } = await takeoverWithDelayedWatch(safe);
    expect(prompt).toBe(true);
    expect(stale).toEqual([]);
    expect(reads).toBeGreaterThan(0);
  }, 150_000);

  test("finding 1, negative control (retake-without-catch-up): the same takeover serves the older value locally", async () => {
    const { prompt, stale } = await takeoverWithDelayedWatch(await unsafeImpl("RETAKE_WITHOUT_CATCH_UP"));
    expect(prompt).toBe(true);
    expect(stale.some((r) => r.served === "local" && r.value === "v0")).toBe(true);
  }, 150_000);

  test("finding 3: close() fails a linearizable read waiting for its revision by name (ERR_LEASE_ETCD_CLOSED), never answers it with older state", async () => {
    expect(await closeDuringCatchUp(safe)).toEqual({ rejected: "ERR_LEASE_ETCD_CLOSED" });
  }, 90_000);

  test("finding 3, negative control (close-answers-pending): the read is answered with the older value, labelled linearizable", async () => {
    expect(await closeDuringCatchUp(await unsafeImpl("CLOSE_ANSWERS_PENDING"))).toMatchObject({ resolved: { value: "v0", reason: "linearizable" } });
  }, 90_000);

  test("finding 3: a write that committed and waits for its revision when close() comes is answered as committed (never as failed)", async () => {
    const c = await startCluster();
    const list = await proxyEach(c);
    const core = await createLeaseCore();
    const a0 = admin(c.clientEndpoints);
    const prefix = "/f3w";
    const a = node(core, "a", prefix, list.map((p) => `127.0.0.1:${p.port}`), { requestTimeoutMs: 300 });
    await a.start();
    await a.waitForLeader(10_000);
    await a.write("k", "v0");
    const w = await dataWatchProxy(a, a0, prefix, list);
    list[w]!.set("down", { kind: "delay", delayMs: 5000 });
    // A write whose keepalive and txn answered (one sent through the delayed proxy would have
    // failed its 300 ms deadline by 600 ms) and which waits for the watch to apply it.
    let pending: Promise<{ revision: bigint }> | undefined;
    for (let attempt = 0; attempt < 20 && pending === undefined; attempt++) {
      let settled = false;
      const p = a.write("k", `v${attempt + 1}`).finally(() => (settled = true));
      p.catch(() => undefined);
      await sleep(600);
      if (!settled) pending = p;
    }
    expect(pending).toBeDefined();
    await a.close();
    const { revision } = await pending!;
    const kv = (await a0.get(`${prefix}/d/k`).exec()).kvs[0]!;
    expect(BigInt(kv.mod_revision)).toBe(revision);
  }, 90_000);

  test("finding 4: a clock stepped back drops the anchor: the first read after the clock passes its last good reading is not local", async () => {
    const { served, clockFaults } = await readAfterClockStepBack(safe);
    expect(served).not.toBe("local");
    expect(clockFaults).toBeGreaterThan(0);
  }, 30_000);

  test("finding 4, negative control (acks-survive-clock-fault): the anchor from before the step serves a local read", async () => {
    const { served } = await readAfterClockStepBack(await unsafeImpl("ACKS_SURVIVE_CLOCK_FAULT"));
    expect(served).toBe("local");
  }, 30_000);

  test("finding 6: a keepalive timed out on a stalled stream never fails the next keepalive (no late CANCELLED)", async () => {
    const c = await startCluster();
    const [p] = await Promise.all([FaultProxy.start(c.members[0]!.clientPort)]);
    proxies.push(p!);
    const core = await createLeaseCore();
    const events: EtcdNodeEvent[] = [];
    const a = node(core, "a", "/f6", [`127.0.0.1:${p!.port}`], { onEvent: (e) => events.push(e) });
    await a.start();
    await a.waitForLeader(10_000);
    await a.write("k", "v");
    p!.set("down", { kind: "stall" });
    // Keepalives queued behind each other (each linearizable read renews first).
    const reads = Array.from({ length: 4 }, () => a.linearizableRead().catch(() => undefined));
    await until("a keepalive timeout", () => events.some((e) => e.reason === "keepalive-timeout"), 5000);
    await sleep(300);
    p!.heal();
    await Promise.all(reads);
    await sleep(1500);
    const errors = events.filter((e) => e.reason === "keepalive-error");
    expect(errors.map((e) => e.detail)).toEqual([]);
    // ...and the node renews again on a fresh stream.
    const before = a.status().counters.confirmed!;
    await until("a confirmed renewal after the stall", () => a.status().counters.confirmed! > before, 5000);
  }, 60_000);

  test("finding 5: a resign lets the successor skip the hold; a key deleted without one (or under a marker naming another key) makes it hold one TTL", async () => {
    const c = await startCluster();
    const core = await createLeaseCore();
    const a0 = admin(c.clientEndpoints);
    const events: { node: string; e: EtcdNodeEvent }[] = [];
    const onEvent = (name: string) => (e: EtcdNodeEvent) => events.push({ node: name, e });
    const a = node(core, "a", "/f5r", c.clientEndpoints, { onEvent: onEvent("a") });
    await a.start();
    await a.waitForLeader(10_000);
    const b = node(core, "b", "/f5r", c.clientEndpoints, { onEvent: onEvent("b") });
    await b.start();
    await until("b following a", () => b.status().leaderId === "a", 5000);
    await a.close(); // resign, with the marker
    await b.waitForLeader(10_000);
    expect(b.status().counters.holds).toBe(0);
    // Now b's key goes without a resign, under a marker naming some other key.
    const c2 = node(core, "c", "/f5r", c.clientEndpoints, { onEvent: onEvent("c") });
    await c2.start();
    await until("c following b", () => c2.status().leaderId === "b", 5000);
    await a0.put("/f5r/resigned").value("12345");
    const before = events.length;
    const deletedAtNs = core.now();
    await a0.delete().key("/f5r/leader");
    // b (its key gone behind its back) and c both campaign: whoever wins holds one TTL.
    await until("a new leader", () => events.slice(before).some((x) => x.e.reason === "elected"), 10_000);
    const elected = events.slice(before).find((x) => x.e.reason === "elected")!;
    const winner = elected.node === "b" ? b : c2;
    expect(winner.status().counters.holds).toBe(1);
    expect(elected.e.atNs - deletedAtNs).toBeGreaterThanOrEqual(winner.status().ttlNs);
  }, 60_000);

  test("bad takeoverHold is refused by name; etcd versions are read at start and the revoke guard said", async () => {
    const c = await startCluster();
    const core = await createLeaseCore();
    expect(() => createEtcdLeaseNode({ core, id: "x", prefix: "/v", endpoints: c.clientEndpoints, takeoverHold: "sometimes" as never })).toThrow(
      expect.objectContaining({ code: "ERR_LEASE_INVALID_OPTION" }),
    );
    const events: EtcdNodeEvent[] = [];
    const auto = node(core, "auto", "/v1", c.clientEndpoints, { onEvent: (e) => events.push(e) });
    const never = node(core, "never", "/v2", c.clientEndpoints, { takeoverHold: "never", onEvent: (e) => events.push(e) });
    expect(auto.status().revokeGuard).toBe("pending");
    await Promise.all([auto.start(), never.start()]);
    const versions = Object.values(auto.status().etcdVersions);
    expect(versions).toHaveLength(3);
    const fixed = versions.every((v) => etcdHasRevokeFix(v));
    expect(auto.status().revokeGuard).toBe(fixed ? "etcd" : "takeover-hold");
    expect(never.status().revokeGuard).toBe(fixed ? "etcd" : "unprotected");
    expect(events.some((e) => e.reason === "etcd-unprotected")).toBe(!fixed);
    expect(["3.4.30", "3.4.31", "3.5.12", "3.5.13", "3.6.0", "3.4.23", "unknown", "4.0.0"].map(etcdHasRevokeFix)).toEqual([false, true, false, true, true, false, false, true]);
  }, 30_000);
});

/** One try at the stuck-leader scenario: false when the stuck member's lessor never revoked the
 *  holder's lease early (whether its revoke reaches raft before it learns of the new term is a
 *  race inside etcd), so the scenario did not happen and proves nothing either way. */
async function stuckLeaderAttempt(): Promise<boolean> {
    const c = await startCluster();
    const stuck = await c.waitForLeader();
    const others = c.members.filter((_, i) => i !== stuck).map((m) => `127.0.0.1:${m.clientPort}`);
    const core = await createLeaseCore();
    const events: { node: string; e: EtcdNodeEvent }[] = [];
    const onEvent = (name: string) => (e: EtcdNodeEvent) => { events.push({ node: name, e }); if (process.env.F5_LOG) console.log(name, e.reason, e.detail, Number(e.atNs / 1000000n)); };
    // Both nodes talk only to the other two members: the holder's renewals are real (forwarded
    // to the etcd leader of the moment), and neither waits on the stuck member.
    const n = node(core, "n", "/f5", others, { onEvent: onEvent("n") });
    await n.start();
    await n.waitForLeader(10_000);
    await n.write("k", "v0");
    // The holder's lease as it stands, sampled every 10 ms: the latest expiry it could serve to.
    let holderExpiryNs = 0n;
    const sampler = setInterval(() => {
      const s = n.status();
      if (s.state === "leader" && s.anchorNs !== 0n) {
        const expiry = s.anchorNs + s.leaseDurationNs;
        if (expiry > holderExpiryNs) holderExpiryNs = expiry;
      }
    }, 10);
    try {
      // The etcd leader's WAL syncs are held: its raft stalls at the next write (no heartbeats:
      // the others elect), its lessor runs on, still primary, and sees no more renewals.
      const heal = await c.slowDisk(stuck, 2500, "wal");
      const trigger = new Etcd3({ hosts: `127.0.0.1:${c.members[stuck]!.clientPort}` });
      admins.push(trigger);
      void trigger.put("trigger").value("1").exec().catch(() => undefined);
      await c.waitForLeader(5000, stuck);
      // The successor candidate joins now: its etcd lease, granted after the stall began, is
      // unknown to the stuck member's lessor (which revokes every lease it knew: #15247's title).
      const m = node(core, "m", "/f5", others, { onEvent: onEvent("m") });
      await m.start();
      const lossAt = events.length;
      const gone = await until("the holder's key gone", () => events.some((x) => x.node === "n" && ["own-key-deleted", "own-key-overwritten", "etcd-lease-expired"].includes(x.e.reason)), 15_000).then(
        () => true,
        () => false,
      );
      if (!gone) {
        await heal();
        return false;
      }
      const deletedAtNs = events.find((x) => x.node === "n" && ["own-key-deleted", "own-key-overwritten", "etcd-lease-expired"].includes(x.e.reason))!.e.atNs;
      await until("a new leader", () => events.slice(lossAt).some((x) => x.e.reason === "elected"), 20_000);
      const first = events.slice(lossAt).find((x) => x.e.reason === "elected")!;
      const electedAtNs = first.e.atNs;
      await heal();
      // The revoke came early: the holder's confirmed lease still ran when its key went. (It
      // never stopped renewing; only the stuck member's lessor stopped seeing the renewals.)
      console.log(`holder's key deleted ${Number(holderExpiryNs - deletedAtNs) / 1e6} ms before its lease ran out; ${first.node} served ${Number(electedAtNs - deletedAtNs) / 1e6} ms after the deletion`);
      expect(holderExpiryNs).toBeGreaterThan(deletedAtNs);
      // The next leader (m, or n again with a new lease) served nothing before that lease had lapsed.
      expect(electedAtNs).toBeGreaterThanOrEqual(holderExpiryNs);
      expect(m.status().revokeGuard).toBe("takeover-hold");
      expect(Object.values(m.status().etcdVersions).every((v) => !etcdHasRevokeFix(v))).toBe(true);
      const leader = first.node === "m" ? m : n;
      await until("the new leader serving", () => leader.state() === "leader", 10_000);
      expect((await leader.read("k")).value).toBe("v0");
      return true;
    } finally {
      clearInterval(sampler);
    }
}

describe("lease-core/etcd and a stuck etcd leader (etcd-io/etcd #15247)", () => {
  test("finding 5: a stuck old etcd leader revokes a live holder's lease early; the next leader serves nothing until that lease has lapsed", async () => {
    expect(canSlowDisk(), "strace and root are needed (scripts/setup.sh installs strace)").toBe(true);
    for (let attempt = 1; ; attempt++) {
      if (await stuckLeaderAttempt()) return;
      // Not a pass: the early revoke did not happen (here it does in roughly half of the tries; the
      // same guard is also tested with a forced early revoke, test/etcd-attack-marker.test.ts). A
      // fresh cluster tries again; eight misses fail.
      expect(attempt, "the stuck etcd leader revoked the holder's lease early in none of 8 fresh clusters").toBeLessThan(8);
      console.log(`finding 5, attempt ${attempt}: no early revoke (the scenario did not happen); again on a fresh cluster`);
      await cleanUp();
    }
  }, 400_000);
});
