// The dependency-free metrics (host/metrics/index.ts, docs/metrics.md): read counters per reason fed by
// the observer, the lease-remaining and ack-age gauges, the clock events, and the claim that
// counting a read allocates nothing (measured in a child process with the GC under control).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { describe, expect, test } from "vitest";
import { createLeaseCore, REASONS } from "lease-core";
import {
  CLOCK_FIELDS,
  CLOCK_FREEZE_BUDGET_NS,
  CLOCK_REGRESSIONS,
  CLOCK_SUSPENDED_NS,
  CLOCK_SUSPENDS,
  CLOCK_ZERO_READINGS,
  GROUP_ACK_AGE_NS,
  GROUP_FIELDS,
  GROUP_REMAINING_NS,
  createLeaseMetrics,
  freezeBudgetNsOf,
  type LeaseMetrics,
} from "../host/metrics/index.js";
import { FakeEngine, ManualClock, MS, T0 } from "./support/fakes.js";

const root = new URL("..", import.meta.url).pathname;
const at = (reason: string) => REASONS.indexOf(reason as (typeof REASONS)[number]);

async function setup(clock = new ManualClock()) {
  const core = await createLeaseCore({ clock });
  const metrics = createLeaseMetrics(core);
  const engine = new FakeEngine();
  const reader = core.createLeaseReader(engine, { observer: metrics.observer, onWarning: () => {} });
  metrics.watch("main", { reader, engine });
  return { clock, core, metrics, engine, reader };
}

/** The gauges of every watched group: [remainingNs, ackAgeNs] per group. */
function gauges(metrics: LeaseMetrics): number[] {
  const into = new Float64Array(metrics.groups.length * GROUP_FIELDS);
  metrics.readGroups(into);
  return [...into];
}

describe("read counters (fed by metrics.observer)", () => {
  test("scenario 7: 100 reads in one lease window count 1 miss `expired` and 99 hits `valid`", async () => {
    const { clock, metrics, reader } = await setup();
    for (let i = 0; i < 100; i++) {
      await reader.leaseRead();
      clock.advance(1n * MS);
    }
    expect(metrics.hits[at("valid")]).toBe(99);
    expect(metrics.misses[at("expired")]).toBe(1);
    expect(metrics.hits.reduce((a, b) => a + b)).toBe(99);
    expect(metrics.misses.reduce((a, b) => a + b)).toBe(1);
    expect(metrics.snapshot()).toMatchObject({ hits: { valid: 99 }, misses: { expired: 1 } });
  });

  test("each miss lands on its own reason: not-leader, disabled, suspect", async () => {
    const { metrics, engine, reader } = await setup();
    engine.role = "follower";
    await reader.leaseRead();
    engine.role = "leader";
    reader.beginTransfer();
    await reader.leaseRead();
    await reader.leaseRead();
    reader.endTransfer();
    engine.durationNs = 0n;
    await reader.leaseRead();
    expect(metrics.snapshot().misses).toEqual({ "not-leader": 1, suspect: 2, disabled: 1 });
    expect(metrics.snapshot().hits).toEqual({});
  });

  test("one observer over a sharded reader counts every group's reads; gauges per group via watchGroups", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const metrics = createLeaseMetrics(core);
    const groups = new Map([[1, new FakeEngine()], [2, new FakeEngine()]]);
    groups.get(2)!.ackNs = clock.ns - 100n * MS;
    const sharded = core.createShardedLeaseReader({ groups, route: () => 1, observer: metrics.observer });
    const stop = metrics.watchGroups(sharded, groups, (id) => `g${id}`);
    await sharded.leaseReadAllGroups();
    expect(metrics.snapshot().hits).toEqual({ valid: 1 }); // group 2: by its engine's ack
    expect(metrics.snapshot().misses).toEqual({ expired: 1 }); // group 1: cold
    expect(metrics.groups).toEqual(["g1", "g2"]);
    expect(metrics.snapshot().groups).toEqual({
      g1: { remainingNs: 700e6, ackAgeNs: null }, // warmed by its linearizable read
      g2: { remainingNs: 600e6, ackAgeNs: 100e6 }, // 700 ms from an ack 100 ms old
    });
    stop();
    expect(metrics.groups).toEqual([]);
  });

  test("a reason outside REASONS is ignored, not thrown into the read path", async () => {
    const { metrics } = await setup();
    expect(() => metrics.observer.onMiss!("bogus" as never)).not.toThrow();
    expect(metrics.misses.reduce((a, b) => a + b)).toBe(0);
  });
});

describe("gauges (computed when read)", () => {
  test("remaining: the caller lease counts down from a linearizable read, and is 0 once it expires", async () => {
    const { clock, metrics, engine, reader } = await setup();
    expect(gauges(metrics)).toEqual([0, NaN]);
    await reader.leaseRead(); // warms the caller lease to now + 700 ms
    clock.advance(200n * MS);
    expect(gauges(metrics)[GROUP_REMAINING_NS]).toBe(500e6);
    clock.advance(500n * MS);
    expect(gauges(metrics)[GROUP_REMAINING_NS]).toBe(0);
    expect(engine.reads).toBe(1);
  });

  test("remaining: the later of the caller lease and the engine's quorum ack (contract §3)", async () => {
    const { clock, metrics, engine, reader } = await setup();
    await reader.leaseRead(); // caller lease until T0 + 700 ms
    clock.advance(300n * MS);
    engine.ackNs = clock.ns - 100n * MS; // ack lease until now + 600 ms, later than the caller's 400 ms
    expect(gauges(metrics)).toEqual([600e6, 100e6]);
    engine.ackNs = clock.ns - 650n * MS; // ack lease 50 ms: the caller lease wins
    expect(gauges(metrics)).toEqual([400e6, 650e6]);
  });

  test("remaining: 0 while a transfer makes the reader suspect, and after leader loss", async () => {
    const { clock, metrics, engine, reader } = await setup();
    engine.ackNs = clock.ns - 100n * MS;
    await reader.leaseRead();
    expect(gauges(metrics)[GROUP_REMAINING_NS]).toBe(600e6);
    reader.beginTransfer();
    expect(gauges(metrics)[GROUP_REMAINING_NS]).toBe(0);
    reader.endTransfer();
    engine.loseLeadership();
    expect(gauges(metrics)).toEqual([0, 100e6]); // the ack still has an age; a follower's ack proves nothing
  });

  test("ack age: absent (NaN) with no ack, with an ack from the future, or without a clock reading", async () => {
    const { clock, metrics, engine } = await setup();
    engine.ackNs = clock.ns + 1n;
    expect(gauges(metrics)[GROUP_ACK_AGE_NS]).toBeNaN();
    engine.ackNs = clock.ns;
    expect(gauges(metrics)[GROUP_ACK_AGE_NS]).toBe(0);
    clock.ns = 0n; // no reading: nothing holds
    expect(gauges(metrics)).toEqual([0, NaN]);
  });

  test("an engine that throws reads as remaining 0, no ack age; the other groups still read", async () => {
    const { core, metrics, engine } = await setup();
    engine.ackNs = T0 - 1n;
    const broken = new FakeEngine();
    broken.lastQuorumAck = () => {
      throw new Error("engine gone");
    };
    metrics.watch("broken", { reader: core.createLeaseReader(new FakeEngine()), engine: broken });
    expect(gauges(metrics)).toEqual([700e6 - 1, 1, 0, NaN]);
  });

  test("clock events: zero readings, regressions, suspends and time suspended, at the CLOCK_* indexes", async () => {
    const { clock, core, metrics } = await setup();
    const into = new Float64Array(CLOCK_FIELDS);
    const ns = clock.ns;
    core.now(); // the last good instant
    clock.ns = 0n;
    core.now();
    clock.ns = ns - 1n * MS;
    core.now(); // backwards: a regression
    clock.ns = ns + 1n * MS;
    clock.offsetNs = 5_000n * MS; // slept 5 s
    core.now();
    metrics.readClock(into);
    expect(into[CLOCK_ZERO_READINGS]).toBe(1);
    expect(into[CLOCK_REGRESSIONS]).toBe(1);
    expect(into[CLOCK_SUSPENDS]).toBe(1);
    expect(into[CLOCK_SUSPENDED_NS]).toBe(5e9);
    expect(into[CLOCK_FREEZE_BUDGET_NS]).toBe(0);
    const events = core.clockEvents();
    expect(metrics.snapshot().clock).toEqual({
      zeroReadings: Number(events.zeroReadings),
      regressions: Number(events.regressions),
      suspends: Number(events.suspends),
      suspendedNs: Number(events.suspendedNs),
      freezeBudgetNs: 0,
    });
  });

  test("a clock that may freeze: the workerd budget is read from the clock and taken off the engine-ack lease", async () => {
    const clock = new ManualClock();
    // What host/runtime/workerd.ts reports (pinned by test/workerd.test.ts): the budget as a field.
    Object.assign(clock, { info: { source: "performance.now (frozen-clock budget 50 ms)", mayFreeze: true, freezeBudgetNs: 50n * MS } });
    const { metrics, engine } = await setup(clock);
    engine.ackNs = clock.ns - 100n * MS;
    expect(gauges(metrics)[GROUP_REMAINING_NS]).toBe(550e6); // 700 - 100 - 50
    expect(metrics.snapshot().clock.freezeBudgetNs).toBe(50e6);
  });

  test("freezeBudgetNsOf: the field the readers apply, never the display string", () => {
    const info = { source: "", raw: false, suspendAware: false, resolutionNs: 1n, mayFreeze: true };
    expect(freezeBudgetNsOf({ ...info, source: "performance.now (frozen-clock budget 50 ms)", freezeBudgetNs: 50_000_000n })).toBe(50_000_000n);
    expect(freezeBudgetNsOf({ ...info, source: "custom", freezeBudgetNs: 7n })).toBe(7n);
    expect(freezeBudgetNsOf({ ...info, source: "custom", freezeBudgetNs: 0n })).toBe(0n);
    // A budget only in the display string is not one the readers apply: unknown, not 50 ms.
    expect(freezeBudgetNsOf({ ...info, source: "performance.now (frozen-clock budget 50 ms)" })).toBeUndefined();
    expect(freezeBudgetNsOf({ ...info, source: "custom" })).toBeUndefined();
    expect(freezeBudgetNsOf({ ...info, source: "performance.now (frozen-clock budget 50 ms)", mayFreeze: false })).toBe(0n);
  });

  test("the engine-ack gauge takes off the budget the core's readers apply: a budget only in the display string is none", async () => {
    const clock = new ManualClock();
    Object.assign(clock, { info: { source: "performance.now (frozen-clock budget 50 ms)", mayFreeze: true } });
    const { metrics, engine } = await setup(clock);
    engine.ackNs = clock.ns - 100n * MS;
    // The core's readers apply no budget here (clock.freezeBudgetNs is absent): a local read
    // is served for 600 ms more, and the gauge says so, not 550 ms.
    expect(gauges(metrics)[GROUP_REMAINING_NS]).toBe(600e6);
    expect(metrics.snapshot().clock.freezeBudgetNs).toBeNull();
  });

  test("misuse is refused with InvalidOptionError", async () => {
    const { core, metrics, reader, engine } = await setup();
    expect(() => createLeaseMetrics({} as never)).toThrow(/option core must be a LeaseCore/);
    expect(() => metrics.watch("main", { reader, engine })).toThrow(/option group must be a name not watched yet/);
    expect(() => metrics.watch("", { reader })).toThrow(/option group must be a non-empty string/);
    expect(() => metrics.watch("x", { reader: {} as never })).toThrow(/option reader must be a LeaseReader/);
    expect(() => metrics.readGroups(new Float64Array(1))).toThrow(/option into must be a Float64Array of at least 2 numbers/);
    expect(() => metrics.readClock(new Float64Array(4))).toThrow(/option into must be a Float64Array of at least 5 numbers/);
    const stop = metrics.watch("second", { reader: core.createLeaseReader(new FakeEngine()) });
    expect(metrics.groups).toEqual(["main", "second"]);
    stop();
    stop(); // idempotent
    expect(metrics.groups).toEqual(["main"]);
  });
});

describe("allocation (node --expose-gc, in a child process)", () => {
  test("1M observer calls allocate nothing: no GC runs and the young generation does not grow", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lease-metrics-"));
    try {
      // The metrics module as it ships (one ESM bundle), driven by the real core.
      await build({ absWorkingDir: root, entryPoints: ["host/metrics/index.ts"], outfile: join(dir, "metrics.mjs"), bundle: true, format: "esm", platform: "neutral", logLevel: "warning" });
      writeFileSync(join(dir, "probe.mjs"), PROBE.replace("NODE_JS", JSON.stringify(join(root, "build/node.js"))));
      const child = spawnSync(process.execPath, ["--expose-gc", join(dir, "probe.mjs")], { encoding: "utf8", timeout: 60_000 });
      expect(child.status, child.stderr).toBe(0);
      const m = JSON.parse(child.stdout) as Record<string, number>;
      console.log(`metrics allocation: ${JSON.stringify(m)}`);
      expect(m.hits + m.misses).toBe(1_000_000); // every call counted
      expect(m.gcsDuringCalls).toBe(0); // a GC would have hidden allocation from the new-space delta
      expect(m.youngBytes).toBeLessThan(16 * 1024); // < 0.02 bytes per call: nothing per call
      expect(m.retainedBytes).toBeLessThan(64 * 1024);
      // A scrape allocates only a few BigInt temporaries per group (core.now(), expiry, ack).
      expect(m.scrapeBytesPerGroup).toBeLessThan(1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

// Runs in the child: counts with v8.GCProfiler (Node >= 18.15) whether any GC ran during the
// calls, and measures the young generation before/after; allocation with no GC in between is
// exactly the new-space growth (less what measuring itself costs: the same measure of 0 calls).
// Retained memory is heapUsed across full GCs.
const PROBE = `
import v8 from "node:v8";
import { createLeaseCore, REASONS } from NODE_JS;
import { createLeaseMetrics, GROUP_FIELDS } from "./metrics.mjs";

const core = await createLeaseCore();
const metrics = createLeaseMetrics(core);
const observer = metrics.observer;
const reasons = [...REASONS];
function calls(n) {
  for (let i = 0; i < n; i++) {
    const reason = reasons[i & 7];
    if ((i & 7) === 0) observer.onHit?.(reason);
    else observer.onMiss?.(reason);
  }
}
const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_used_size;
// Young-generation growth across calls(n), and how many GCs ran meanwhile (any GC voids the delta).
function measureWith(fn, n) {
  globalThis.gc(); globalThis.gc();
  const profiler = new v8.GCProfiler();
  profiler.start();
  const before = young();
  fn(n);
  const after = young();
  return { bytes: after - before, gcs: profiler.stop().statistics.length };
}
const measure = (n) => measureWith(calls, n);
calls(2_000_000); // warm up: let the optimizing JIT finish with the observer first
const baseline = measure(0); // what measuring costs by itself (the profiler, the statistics)
globalThis.gc(); globalThis.gc();
const heapBefore = process.memoryUsage().heapUsed;
// The quietest of 3 runs: an allocation per call shows in every run (>= 16 MB per 1M calls),
// while the runtime's own background work (a compile finishing, on a loaded machine) may land
// in any one of them.
let run;
for (let r = 0; r < 3; r++) {
  metrics.hits.fill(0);
  metrics.misses.fill(0);
  const m = measure(1_000_000);
  if (run === undefined || m.bytes < run.bytes) run = m;
}
const gcsDuringCalls = run.gcs + baseline.gcs;
globalThis.gc(); globalThis.gc();
const retainedBytes = process.memoryUsage().heapUsed - heapBefore;
const youngBytes = run.bytes - baseline.bytes;

// The scrape path, for the record: 16 groups, 10k reads of all of them.
const groups = 16;
for (let g = 0; g < groups; g++) {
  const engine = { state: () => "leader", appliedIndex: () => 1n, linearizableRead: async () => 1n, leaseDurationNs: () => 700_000_000n, lastQuorumAck: () => core.now(), onLeaderLoss: () => () => {} };
  metrics.watch("g" + g, { reader: core.createLeaseReader(engine), engine });
}
const into = new Float64Array(groups * GROUP_FIELDS);
const scrapes = (n) => {
  for (let i = 0; i < n; i++) metrics.readGroups(into);
};
scrapes(10_000); // warm up
// 50 scrapes: even at ~100 bytes per group each (BigInts not optimized away) that stays below
// the young generation's first semi-space, so no GC voids the measure.
const scrapeBase = measureWith(scrapes, 0);
const scrapeRun = measureWith(scrapes, 50);
const gcsDuringScrapes = scrapeBase.gcs + scrapeRun.gcs;
const hits = metrics.hits.reduce((a, b) => a + b);
const misses = metrics.misses.reduce((a, b) => a + b);
console.log(JSON.stringify({
  hits, misses, gcsDuringCalls, youngBytes, baselineBytes: baseline.bytes, retainedBytes,
  scrapeBytesPerGroup: gcsDuringScrapes === 0 ? (scrapeRun.bytes - scrapeBase.bytes) / 50 / groups : Infinity, gcsDuringScrapes,
}));
`;
