// The Bun host (build/bun.js) in the real Bun binary from node_modules: the conformance vectors,
// and the clock it reports — raw and suspend-aware through bun:ffi — plus the honest
// performance.now() fallback where bun:ffi is missing (the same bundle run by Node).
// test/runtimes/bun-conformance.ts does the work inside Bun and prints one JSON line; this file
// checks that line. The conversion of timespecs to ns and the sleep-offset arithmetic, which a
// real clock exercises only at today's values, run here against a simulated libc.
// Needs the build (`node scripts/build.mjs --skip-native`, part of `npm test`).
// No spawn here is retried: the "Bun has crashed" runs (about 1 in 20 of the runner) were the
// runner's own use after free through a bun:ffi raw pointer, not Bun's (bun-conformance.ts; the
// runner now reports a collected buffer as a problem), and a crash is what such a bug looks like.
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { runtimeBinary } from "../scripts/runtimes.mjs";
import { SPAWN_TIMEOUT_MS, at, cases, prepareRuntime, spawnJson, warnings, type ClockReport, type RunnerReport } from "./support/runtime-runner.js";
import { buildInterposer } from "./support/clock-interposer.js";

const BUN = runtimeBinary("bun");

const RUNNER = at("test", "runtimes", "bun-conformance.ts");

let vectorsUrl: string;
let cleanup = () => {};

beforeAll(async () => {
  ({ vectorsUrl, cleanup } = await prepareRuntime(BUN, "bun.js"));
});

afterAll(() => cleanup());

describe("Bun: libc clock_gettime through bun:ffi", () => {
  let run: ReturnType<typeof spawnJson<RunnerReport>>;
  beforeAll(() => {
    run = spawnJson<RunnerReport>(BUN, [RUNNER, vectorsUrl]);
  }, SPAWN_TIMEOUT_MS + 5_000);

  test("every conformance vector passes and the runner found no problem", () => {
    expect(run.report.problems).toEqual([]);
    expect(run.report.vectors).toMatchObject({ passed: cases.length, failed: 0, failures: [] });
    expect(run.status).toBe(0);
    expect(run.report.runtime).toBe("bun");
  });

  test("the default clock is CLOCK_MONOTONIC_RAW plus the sleep offset: raw and suspend-aware, no warning", () => {
    const { clock } = run.report;
    expect(clock.source).toContain("CLOCK_MONOTONIC_RAW");
    expect(clock).toMatchObject({ raw: true, suspendAware: true, mayFreeze: false });
    expect(BigInt(clock.resolutionNs)).toBeGreaterThan(0n);
    expect(BigInt(clock.resolutionNs)).toBeLessThanOrEqual(1_000_000n);
    expect(warnings(run.stderr)).toBe(0);
  });

  test("each policy reads the clock it names, with clock_gettime interposed so that no two clocks read alike (MONOTONIC +300 s, BOOTTIME +1000 s): a bracket of BOOTTIME reads then excludes MONOTONIC", () => {
    // Without a suspend BOOTTIME and MONOTONIC differ by a constant well inside the bracket's
    // slack, so the bracket below cannot tell them apart; interposed (test/support/clock-interposer.ts,
    // which also proves the interposition takes in bun: test/native-suspend.test.ts), it can.
    const interposer = buildInterposer();
    const interposed = spawnJson<RunnerReport>(BUN, [RUNNER, vectorsUrl], { LD_PRELOAD: interposer.library, LC_FAKE_MONO_ADD_NS: "300000000000", LC_FAKE_BOOT_ADD_NS: "1000000000000" });
    expect(interposed.report.problems).toEqual([]);
    const { policies } = interposed.report;
    expect(policies["raw+sleep"]).toMatchObject({ source: "CLOCK_MONOTONIC_RAW+sleep-offset", monotone: true, bracketed: true });
    expect(policies.boottime).toMatchObject({ source: "CLOCK_BOOTTIME", monotone: true, bracketed: true });
    expect(policies.raw).toMatchObject({ source: "CLOCK_MONOTONIC_RAW", monotone: true, bracketed: true });
    interposer.dispose();
  }, SPAWN_TIMEOUT_MS + 5_000);

  test("each policy reads the clock it names: core.now() lies between two native reads of it", () => {
    const { policies } = run.report;
    expect(policies["raw+sleep"]).toMatchObject({ source: "CLOCK_MONOTONIC_RAW+sleep-offset", raw: true, suspendAware: true, monotone: true, bracketed: true });
    expect(policies.boottime).toMatchObject({ source: "CLOCK_BOOTTIME", raw: false, suspendAware: true, monotone: true, bracketed: true });
    expect(policies.raw).toMatchObject({ source: "CLOCK_MONOTONIC_RAW", raw: true, suspendAware: false, monotone: true, bracketed: true });
  });

  test("time is ns and real: a lease to now+50ms is valid at once and not 100 ms later", () => {
    expect(run.report.lease.validAtOnce).toBe(true);
    expect(run.report.lease.validAfter100ms).toBe(false);
    expect(run.report.lease.elapsedRatio).toBeGreaterThan(0.9);
    expect(run.report.lease.elapsedRatio).toBeLessThan(1.1);
    expect(run.report.fillNs).toBeGreaterThan(0);
    expect(run.report.bareReadNs).toBeGreaterThan(0);
  });
});

// The fallback path never runs in Bun on Linux; Node has no bun:ffi, so the same bundle takes it.
const FALLBACK_SCRIPT = `
const { createLeaseCore } = await import(process.argv[1]);
const core = await createLeaseCore();
await createLeaseCore();
const lease = core.createLease();
const t0 = core.now();
lease.extend(t0 + 50_000_000n, lease.generation());
const validAtOnce = lease.valid();
await new Promise((r) => setTimeout(r, 100));
const elapsedMs = Number(core.now() - t0) / 1e6;
console.log(JSON.stringify({ clock: { ...core.clock, resolutionNs: String(core.clock.resolutionNs) }, validAtOnce, validAfter100ms: lease.valid(), elapsedMs }));
`;

describe("where bun:ffi is missing: performance.now(), reported as such", () => {
  let run: ReturnType<typeof spawnJson<{ clock: ClockReport; validAtOnce: boolean; validAfter100ms: boolean; elapsedMs: number }>>;
  beforeAll(() => {
    run = spawnJson(process.execPath, ["--input-type=module", "-e", FALLBACK_SCRIPT, pathToFileURL(at("build", "bun.js")).href]);
  }, SPAWN_TIMEOUT_MS + 5_000);

  test("no crash; the clock says performance.now, not raw, not suspend-aware; one warning", () => {
    expect(run.status).toBe(0);
    expect(run.report.clock).toMatchObject({ source: "performance.now", raw: false, suspendAware: false, mayFreeze: false });
    expect(BigInt(run.report.clock.resolutionNs)).toBeGreaterThan(0n);
    expect(warnings(run.stderr)).toBe(1);
  });

  test("the fallback counts ns in real time", () => {
    expect(run.report).toMatchObject({ validAtOnce: true, validAfter100ms: false });
    expect(run.report.elapsedMs).toBeGreaterThan(90);
    expect(run.report.elapsedMs).toBeLessThan(1_000);
  });
});

// A simulated libc behind `bun:ffi`, for the in-process tests below: clock_gettime writes the
// timespec the test set for that clock id. A pointer is (buffer index) * 2^32 + byte offset, so
// the host's pointer arithmetic works on it as on a real address.
const sim = vi.hoisted(() => {
  const buffers: ArrayBuffer[] = [];
  const clocks = new Map<number, readonly [bigint, bigint]>(); // clock id → [tv_sec, tv_nsec]
  const state = { failing: false, calls: [] as number[] };
  const view = (p: number) => new DataView(buffers[Math.floor(p / 2 ** 32)]!, p % 2 ** 32, 16);
  const writeTimespec = (p: number, sec: bigint, nsec: bigint) => {
    view(p).setBigInt64(0, sec, true);
    view(p).setBigInt64(8, nsec, true);
  };
  return {
    clocks,
    state,
    ptr(target: ArrayBuffer | ArrayBufferView, byteOffset = 0): number {
      const buffer = target instanceof ArrayBuffer ? target : (target.buffer as ArrayBuffer);
      buffers.push(buffer);
      return (buffers.length - 1) * 2 ** 32 + (target instanceof ArrayBuffer ? 0 : target.byteOffset) + byteOffset;
    },
    dlopen() {
      return {
        symbols: {
          clock_gettime(id: number, p: number): number {
            state.calls.push(id);
            const ts = clocks.get(id);
            if (state.failing || ts === undefined) return -1;
            writeTimespec(p, ts[0], ts[1]);
            return 0;
          },
          clock_getres(_id: number, p: number): number {
            writeTimespec(p, 0n, 1n);
            return 0;
          },
        },
      };
    },
  };
});
vi.mock("bun:ffi", () => ({ ptr: sim.ptr, dlopen: sim.dlopen }));

const RAW = 4;
const BOOTTIME = 7;
const MONOTONIC = 1;
const NS = 1_000_000_000n;

async function simulatedHost() {
  // @ts-expect-error: a built bundle, untyped here (its types are build/types/host/runtime/bun.d.ts).
  return (await import("../build/bun.js")) as typeof import("../host/runtime/bun.js");
}

describe("the Bun host's clock arithmetic, on a simulated libc (in-process, Node)", () => {
  const setClocks = (raw: readonly [bigint, bigint], boot: readonly [bigint, bigint], mono: readonly [bigint, bigint]) => {
    sim.clocks.set(RAW, raw);
    sim.clocks.set(BOOTTIME, boot);
    sim.clocks.set(MONOTONIC, mono);
  };

  test("any timespec up to 136 years becomes exactly tv_sec * 1e9 + tv_nsec (Number math, no 2^53 loss)", async () => {
    const { createLeaseCore } = await simulatedHost();
    // Both paths of the conversion: under 104 days (exact Number), and beyond it.
    const secs = fc.oneof(fc.bigInt({ min: 1n, max: 9_000_100n }), fc.bigInt({ min: 1n, max: 2n ** 32n - 1n }));
    const nsecs = fc.bigInt({ min: 0n, max: NS - 1n });
    const edges = [[1n, 0n], [1n, NS - 1n], [8_999_999n, NS - 1n], [9_000_000n, 0n], [9_007_199n, 254_740_993n], [2n ** 31n, 0n], [2n ** 32n - 1n, NS - 1n]] as const;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(secs, nsecs), { minLength: 1, maxLength: 40 }), async (readings) => {
        const core = await createLeaseCore({ clockPolicy: "raw" });
        const sorted = [...edges, ...readings].map(([s, n]) => s * NS + n).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        for (const ns of sorted) {
          sim.clocks.set(RAW, [ns / NS, ns % NS]);
          expect(core.now()).toBe(ns);
        }
      }),
      { numRuns: 150 },
    );
  });

  test("raw+sleep reads RAW, then BOOTTIME before MONOTONIC, and their difference is the sleep offset", async () => {
    const { createLeaseCore } = await simulatedHost();
    // Booted 5 s asleep already (an offset above 2^32 ns), 200 days up (tv_sec * 1e9 > 2^53).
    const up = 200n * 86_400n;
    setClocks([up, 7n], [up + 5n, 0n], [up, 0n]);
    const core = await createLeaseCore();
    expect(core.clock).toMatchObject({ source: "CLOCK_MONOTONIC_RAW+sleep-offset", raw: true, suspendAware: true, resolutionNs: 1n });
    sim.state.calls.length = 0;
    expect(core.now()).toBe(up * NS + 7n);
    expect(sim.state.calls).toEqual([RAW, BOOTTIME, MONOTONIC]);
    const lease = core.createLease();
    expect(lease.extend(up * NS + 10n * NS, lease.generation())).toBe(true);

    // A 2 s suspend: BOOTTIME runs on, MONOTONIC and RAW do not. The lease clock jumps by the
    // suspend and the lease is gone (contract §1.2).
    setClocks([up, 1_000n], [up + 7n, 1_000n], [up, 1_000n]);
    expect(core.now()).toBe(up * NS + 1_000n + 2n * NS);
    expect(core.clockEvents()).toMatchObject({ suspends: 1n, suspendedNs: 2n * NS });
    expect(lease.reason()).toBe("suspend-detected");
  });

  test("a slightly negative offset (MONOTONIC read after BOOTTIME) is stored as a negative i64", async () => {
    const { createLeaseCore } = await simulatedHost();
    setClocks([100n, 0n], [100n, NS - 200n], [101n, 100n]); // offset -300 ns, across a second boundary
    const core = await createLeaseCore();
    expect(core.now()).toBe(100n * NS);
    setClocks([100n, 10n], [102n, 500n], [102n, 0n]); // offset +500: 800 ns of growth, under the tolerance
    expect(core.now()).toBe(100n * NS + 10n + 800n);
    expect(core.clockEvents().suspends).toBe(0n);
  });

  test("any sleep offset, either sign, is stored exactly: only its growth moves the lease clock", async () => {
    const { createLeaseCore } = await simulatedHost();
    const up = 300n * NS;
    const timespec = (ns: bigint) => [ns / NS + 1_000_000n, ns % NS] as const; // a MONOTONIC of 10^6 s
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: -(2n ** 45n), max: 2n ** 45n }), fc.bigInt({ min: 0n, max: 999_999n }), async (offsetNs, growthNs) => {
        // BOOTTIME - MONOTONIC = offsetNs, so tv_nsec differences and second borrows of both signs occur.
        setClocks([up / NS, 0n], timespec(offsetNs + 123_456_789n), timespec(123_456_789n));
        const core = await createLeaseCore();
        expect(core.now()).toBe(up);
        setClocks([up / NS, 0n], timespec(offsetNs + growthNs + 987_654_321n), timespec(987_654_321n));
        expect(core.now()).toBe(up + growthNs);
      }),
      { numRuns: 150 },
    );
  });

  test("boottime reads CLOCK_BOOTTIME alone; a failing clock_gettime is no reading (0n)", async () => {
    const { createLeaseCore } = await simulatedHost();
    setClocks([50n, 0n], [60n, 5n], [50n, 0n]);
    const core = await createLeaseCore({ clockPolicy: "boottime" });
    expect(core.clock).toMatchObject({ source: "CLOCK_BOOTTIME", raw: false, suspendAware: true });
    expect(core.now()).toBe(60n * NS + 5n);
    sim.state.failing = true;
    try {
      expect(core.now()).toBe(0n);
      expect(core.clockEvents().zeroReadings).toBe(1n);
    } finally {
      sim.state.failing = false;
    }
  });
});
