// The long-running demo's bounded-memory parts, without etcd: key windows (demo/windows.ts) seal
// a window only once every op on its keys is over; the checker worker (demo/check-worker.ts,
// running the built build/demo/check-worker.js) answers each window, keeps a failing one
// whole and drops passing ones; the per-second series (demo/series.ts) and its whole-run
// histogram; the fault registry and chaos mode refuse bad input (demo/faults.ts).
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import { CheckWorker } from "../demo/check-worker.js";
import { Chaos, FAULT_KINDS, FaultInjector } from "../demo/faults.js";
import type { Demo, RecordedOp } from "../demo/harness.js";
import { LogHistogram, SecondSeries } from "../demo/series.js";
import { WindowedKeys, type SealedWindow } from "../demo/windows.js";
import { buildDemo, root } from "./etcd/support.js";

beforeAll(() => buildDemo());

const op = (client: number, kind: "read" | "write", key: string, value: string | null, callAt: number, returnAt: number, served?: "local" | "etcd"): RecordedOp => ({
  client,
  kind,
  key,
  value,
  callAt,
  returnAt,
  servedBy: "kv-0",
  ...(served ? { served } : {}),
});

describe("WindowedKeys", () => {
  test("a window is sealed once, whole, only after its time is up and its last op is over", () => {
    const sealed: SealedWindow[] = [];
    const w = new WindowedKeys({ windowMs: 1000, keys: 2, onSeal: (s) => sealed.push(s) });
    const t0 = Date.now();
    const a = w.take();
    const b = w.take();
    expect(a).toMatch(/^w0-k[01]$/);
    w.done(a, op(0, "write", a, "x", 1, 2));
    w.tick(t0 + 1500); // time is up, but b is still in flight
    expect(w.currentIndex).toBe(1);
    expect(sealed).toEqual([]);
    const c = w.take();
    expect(c).toMatch(/^w1-k[01]$/);
    w.done(b, null); // dropped op: over, not recorded
    expect(sealed.map((s) => [s.index, s.ops.length])).toEqual([[0, 1]]);
    w.done(c, op(1, "read", c, null, 3, 4));
    expect(sealed.length).toBe(1); // window 1 is still current
    w.flush();
    expect(sealed.map((s) => [s.index, s.ops.length])).toEqual([[0, 1], [1, 1]]);
    expect(w.openCount).toBe(1);
    expect(w.sealedCount).toBe(2);
    expect(() => w.done(a, null)).toThrow(/not in an open window/);
  });

  test("bad options are refused", () => {
    for (const windowMs of [0, -1, Number.NaN, Infinity]) expect(() => new WindowedKeys({ windowMs, keys: 4, onSeal: () => undefined })).toThrow(RangeError);
    for (const keys of [0, 1.5, -2]) expect(() => new WindowedKeys({ windowMs: 10, keys, onSeal: () => undefined })).toThrow(RangeError);
  });
});

describe("CheckWorker (build/demo/check-worker.js in a worker thread)", () => {
  let checker: CheckWorker | undefined;
  afterEach(async () => {
    await checker?.terminate();
    checker = undefined;
  });

  test("passing windows are tallied and dropped; the first failing window is kept whole with a minimal history", async () => {
    checker = new CheckWorker(pathToFileURL(join(root, "build", "demo", "check-worker.js")));
    const good: RecordedOp[] = [op(0, "write", "w0-k0", "a", 0, 10), op(1, "read", "w0-k0", "a", 20, 30, "local"), op(1, "write", "w0-k1", "u", 0, Infinity)];
    // Window 1: "b" was acknowledged (returned at 10) before the read was sent (at 20), which
    // still answers the value before it: a stale read.
    const stale: RecordedOp[] = [
      op(0, "write", "w1-k0", "a", 0, 5),
      op(0, "write", "w1-k0", "b", 6, 10),
      op(1, "read", "w1-k0", "a", 20, 30, "local"),
      op(2, "read", "w1-k1", null, 0, 1, "etcd"),
    ];
    checker.submit({ index: 0, openedAtWallMs: 0, closedAtWallMs: 1, ops: good });
    checker.submit({ index: 1, openedAtWallMs: 1, closedAtWallMs: 2, ops: stale });
    expect(checker.tally.pending).toBe(2);
    await checker.idle();
    const t = checker.tally;
    expect(t.pending).toBe(0);
    expect(t.windowsChecked).toBe(2);
    expect(t.opsChecked).toBe(7);
    expect(t.windowsFailed).toBe(1);
    expect(t.ok).toBe(false);
    expect(t.firstFailure?.verdict.index).toBe(1);
    expect(t.firstFailure?.history).toEqual(stale); // whole, not just the failing key
    const v = t.firstFailure!.verdict;
    expect(v.ok === false && v.key).toBe("w1-k0");
    expect(v.ok === false && v.minimal.map((o) => o.value)).toEqual(["a", "b", "a"]);
    expect(t.recent.map((r) => [r.index, r.ok])).toEqual([[0, true], [1, false]]);
  });

  test("a worker that dies leaves the verdict unknown, never ok", async () => {
    checker = new CheckWorker(pathToFileURL(join(root, "build", "demo", "check-worker.js")));
    checker.submit({ index: 0, openedAtWallMs: 0, closedAtWallMs: 1, ops: [op(0, "write", "k", "a", 0, 10)] });
    await checker.idle();
    expect(checker.tally.ok).toBe(true);
    await checker.terminate();
    // A worker that dies leaves the verdict unknown.
    checker = new CheckWorker(pathToFileURL(join(root, "package.json")));
    for (let i = 0; i < 200 && checker.error === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    expect(checker.error).toBeDefined();
    expect(checker.tally.ok).toBe("unknown");
    checker.submit({ index: 1, openedAtWallMs: 0, closedAtWallMs: 1, ops: [] });
    await checker.idle(); // resolves: nothing is waited for from a dead worker
    expect(checker.tally.windowsChecked).toBe(0);
  });
});

describe("SecondSeries", () => {
  test("one row per second: p50/p99 per kind, counts, unknown writes, each instance's lease", () => {
    const s = new SecondSeries(3);
    for (let i = 1; i <= 100; i++) s.record(op(0, "read", "k", null, 0, i, "local"));
    s.record(op(0, "read", "k", null, 0, 7, "etcd"));
    s.record(op(0, "write", "k", "v", 0, 4));
    s.record(op(0, "write", "k", "u", 0, Infinity));
    const status = (remainingNs: string) => ({ remainingNs }) as Parameters<SecondSeries["sample"]>[0][number];
    const row = s.sample([status("1500000000"), null, status("0")], 10_000);
    expect(row).toEqual({ t: 10, localP50: 51, localP99: 100, etcdP50: 7, etcdP99: 7, writeP50: 4, writeP99: 4, localPerS: 100, etcdPerS: 1, writePerS: 1, unknownPerS: 1, leaseMs: [1500, null, 0] });
    const empty = s.sample([], 11_000);
    expect([empty.localP50, empty.localPerS, empty.unknownPerS]).toEqual([null, 0, 0]);
    s.sample([], 12_000);
    s.sample([], 13_000);
    expect(s.rows.map((r) => r.t)).toEqual([11, 12, 13]); // keeps the last keepS
    expect(s.since(11).map((r) => r.t)).toEqual([12, 13]);
    expect(s.total.ops).toBe(103);
    expect(s.total.unknownWrites).toBe(1);
    expect(() => new SecondSeries(0)).toThrow(RangeError);
  });

  test("the whole-run histogram is within 2% above the exact quantile", () => {
    const h = new LogHistogram();
    const values = Array.from({ length: 10_000 }, (_, i) => 0.05 + ((i * 7919) % 10_000) / 100);
    for (const v of values) h.add(v);
    h.add(Number.NaN); // ignored
    h.add(-1); // ignored
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [0.5, 0.9, 0.99]) {
      const exact = sorted[Math.floor(p * sorted.length)]!;
      expect(h.quantile(p)).toBeGreaterThanOrEqual(exact);
      expect(h.quantile(p)).toBeLessThanOrEqual(exact * 1.02 + 1e-9);
    }
    expect(h.count).toBe(10_000);
  });
});

describe("faults", () => {
  const fakeDemo = { opListeners: new Set() } as unknown as Demo;

  test("the registry has each dashboard kind once; unknown kinds are refused and nothing is logged", async () => {
    const ids = FAULT_KINDS.map((k) => k.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(["pause-leader", "kill-leader", "kill-etcd-leader", "isolate-etcd-leader"]));
    const injector = new FaultInjector(fakeDemo);
    await expect(injector.inject("unplug-the-moon", "button")).rejects.toThrow(/unknown fault/);
    expect(injector.log).toEqual([]);
    expect(injector.injected).toBe(0);
  });

  test("a fault that cannot apply now is logged with its own time and why", async () => {
    const injector = new FaultInjector(fakeDemo, [{ id: "x", label: "x", available: () => true, inject: async () => Promise.reject(new Error("no KV leader now")) }]);
    const before = Date.now();
    const r = await injector.inject("x", "chaos");
    expect(r.error).toBe("no KV leader now");
    expect(r.atWallMs).toBeGreaterThanOrEqual(before);
    expect(r.atWallMs).toBeLessThanOrEqual(Date.now());
    expect(injector.counts.x).toEqual({ injected: 0, refused: 1 });
  });

  test("chaos injects available kinds only, one at a time, until stopped", async () => {
    const injected: string[] = [];
    const kinds = [
      { id: "a", label: "a", available: () => true, inject: async () => (injected.push("a"), { target: "t", healsInMs: 0 }) },
      { id: "b", label: "b", available: () => false, inject: async () => (injected.push("b"), { target: "t", healsInMs: 0 }) },
    ];
    const chaos = new Chaos(new FaultInjector(fakeDemo, kinds), 20);
    chaos.start();
    while (injected.length < 3) await new Promise((r) => setTimeout(r, 10));
    await chaos.stop();
    const n = injected.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(injected.length).toBe(n);
    expect(new Set(injected)).toEqual(new Set(["a"]));
    for (const bad of [0, -5, Number.NaN]) expect(() => new Chaos(new FaultInjector(fakeDemo, kinds), bad)).toThrow(RangeError);
  });
});
