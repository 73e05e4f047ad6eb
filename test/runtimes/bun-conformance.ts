// Conformance of the Bun host (build/bun.js) inside Bun: the contract vectors on cores made by
// createLeaseCore({ clock }), then the clock Bun reports by default, checked against libc
// clock_gettime read here through bun:ffi, independently of the host. Prints ONE JSON line and
// exits 1 on any failure. test/bun.test.ts runs it.
//
// Usage: bun test/runtimes/bun-conformance.ts [vectors.js URL]
// The runner of vectors/core.json (host/vectors.ts) is not in the public API; the test bundles
// it and passes its URL (default: build/vectors.js).
import { dlopen, ptr } from "bun:ffi";
import { createLeaseCore } from "../../build/bun.js";
import cases from "../../vectors/core.json" with { type: "json" };

declare const Bun: { version: string };

const MS = 1_000_000n;
const POLICIES = ["raw+sleep", "boottime", "raw"] as const;
const CLOCK_ID: Record<string, number> = { "raw+sleep": 4, raw: 4, boottime: 7 }; // CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME
const problems: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) problems.push(what);
  return ok;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** ns per call of `fn`: the median of 5 timed runs. */
function nsPerCall(fn: () => unknown, iterations = 300_000): number {
  for (let i = 0; i < iterations / 4; i++) fn();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    runs.push(((performance.now() - start) * 1e6) / iterations);
  }
  return runs.sort((a, b) => a - b)[2]!;
}

// The reference clock: libc read directly through bun:ffi (BigInt math: slow in JSC, but exact).
const libc = dlopen("libc.so.6", { clock_gettime: { args: ["i32", "buffer"], returns: "i32" } }).symbols;
const timespec = new BigInt64Array(new ArrayBuffer(16));
const nativeNs = (id: number): bigint => {
  if (libc.clock_gettime(id, timespec) !== 0) throw new Error(`clock_gettime(${id}) failed`);
  return timespec[0]! * 1_000_000_000n + timespec[1]!;
};

const vectorsUrl = process.argv[2] ?? new URL("../../build/vectors.js", import.meta.url).href;
const { runVectors } = await import(vectorsUrl);
const report = await runVectors((clock: unknown) => createLeaseCore({ clock }), cases);
check(report.failed === 0 && report.passed === cases.length, `vectors: ${report.passed}/${cases.length} passed`);

// Each policy: monotone, non-zero, and inside [before, after] of the clock it names.
const policies: Record<string, unknown> = {};
for (const clockPolicy of POLICIES) {
  const core = await createLeaseCore({ clockPolicy });
  let monotone = true;
  let prev = core.now();
  for (let i = 0; i < 100_000; i++) {
    const now = core.now();
    if (now === 0n || now < prev) monotone = false;
    prev = now;
  }
  check(monotone, `${clockPolicy}: core.now() not monotone or zero`);
  let bracketed: boolean | null = null;
  if (core.clock.source !== "performance.now") {
    // raw+sleep adds sleep-offset growth since the core started: none here, bar a few µs of
    // baseline jitter, hence 100 µs of slack above; CLOCK_MONOTONIC differs from RAW by far more.
    bracketed = true;
    for (let i = 0; i < 1000; i++) {
      const before = nativeNs(CLOCK_ID[clockPolicy]!);
      const now = core.now();
      const after = nativeNs(CLOCK_ID[clockPolicy]!);
      if (now < before || now > after + 100_000n) bracketed = false;
    }
    check(bracketed, `${clockPolicy}: core.now() outside the native clock's reads`);
  }
  policies[clockPolicy] = { ...core.clock, resolutionNs: String(core.clock.resolutionNs), monotone, bracketed };
}

// The default core: counts ns (elapsed agrees with Date.now) and a lease expires in real time.
const core = await createLeaseCore();
await createLeaseCore(); // a second default core must not warn again
const lease = core.createLease();
const date0 = Date.now();
const now0 = core.now();
check(lease.extend(now0 + 50n * MS, lease.generation()), "extend to now+50ms refused");
const validAtOnce = lease.valid();
check(validAtOnce, "lease extended to now+50ms not valid at once");
await sleep(100);
const elapsedNs = core.now() - now0;
const elapsedRatio = Number(elapsedNs) / 1e6 / (Date.now() - date0);
check(elapsedRatio > 0.9 && elapsedRatio < 1.1, `elapsed ${elapsedNs} ns vs Date.now ${Date.now() - date0} ms`);
const validAfter100ms = lease.valid();
check(!validAfter100ms, "lease still valid 100 ms after now+50ms");
check(lease.reason() === "expired", `reason after expiry: ${lease.reason()}`);
const events = core.clockEvents();
check(events.zeroReadings === 0n && events.regressions === 0n && events.suspends === 0n, "clock events on a quiet clock");

// Cost, this run: the core's fill, lease.valid() with and without a reading, a bare read.
const long = core.createLease();
long.extend(core.now() + 3_600_000n * MS, long.generation());
const at = core.now();
const bare = dlopen("libc.so.6", { clock_gettime: { args: ["i32", "ptr"], returns: "i32" } }).symbols.clock_gettime;
const scratch = new Float64Array(new ArrayBuffer(16));
const scratchPtr = ptr(scratch);
const cost = {
  fillNs: nsPerCall(core.fill),
  validNs: nsPerCall(() => long.valid()),
  validAtNs: nsPerCall(() => long.valid(at)),
  bareReadNs: nsPerCall(() => bare(4, scratchPtr)),
  performanceNowNs: nsPerCall(() => performance.now()),
};
check(long.valid(), "a lease an hour long is not valid");

console.log(JSON.stringify({
  runtime: "bun",
  version: Bun.version,
  clock: { ...core.clock, resolutionNs: String(core.clock.resolutionNs) },
  policies,
  lease: { validAtOnce, validAfter100ms, elapsedRatio },
  vectors: { passed: report.passed, failed: report.failed, steps: report.steps, failures: report.failures },
  ...cost,
  problems,
}));
process.exit(problems.length > 0 ? 1 : 0);
