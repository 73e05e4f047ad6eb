// The conformance run of an FFI host (Deno, Bun) inside its runtime: the contract vectors on
// cores made by createLeaseCore({ clock }), then every clock policy checked against libc's
// clock_gettime read by the runtime entry itself (independently of the host), a lease in real
// time, and the cost of a check. Prints ONE JSON line; resolves to the number of problems.
// Entries: deno-conformance.ts and bun-conformance.ts (test/deno.test.ts, test/bun.test.ts).
import cases from "../../vectors/core.json" with { type: "json" };

/** What a runtime entry gives the shared run. */
export interface FfiRuntimeProbe {
  runtime: string;
  version: string;
  createLeaseCore(options?: { clock?: unknown; clockPolicy?: string }): Promise<any>;
  /** URL of the bundled vectors runner (host/cli/vectors.ts is not in the public API). */
  vectorsUrl: string | undefined;
  /** libc read directly by the entry, or null when FFI is not allowed. */
  libc: {
    readNs(clockId: number): bigint;
    bareRead(): unknown;
    /** For an entry whose bareRead hands libc a raw pointer (Bun's `ptr()`): whether the buffer
     *  behind it is still reachable. False: libc wrote into freed memory (test/bun.test.ts). */
    bareTargetAlive?(): boolean;
  } | null;
}

export async function runFfiConformance(probe: FfiRuntimeProbe): Promise<number> {
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

  const { createLeaseCore, runtime, version, vectorsUrl, libc } = probe;
  const nativeNs = (id: number): bigint => {
    const ns = libc!.readNs(id);
    if (ns === 0n) throw new Error(`clock_gettime(${id}) failed`);
    return ns;
  };

  const { runVectors } = await import(vectorsUrl ?? new URL("../../build/vectors.js", import.meta.url).href);
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
    if (libc && core.clock.source !== "performance.now") {
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
  const cost = {
    fillNs: nsPerCall(core.fill),
    validNs: nsPerCall(() => long.valid()),
    validAtNs: nsPerCall(() => long.valid(at)),
    bareReadNs: libc ? nsPerCall(libc.bareRead) : null,
    performanceNowNs: nsPerCall(() => performance.now()),
  };
  check(long.valid(), "a lease an hour long is not valid");
  if (libc?.bareTargetAlive) check(libc.bareTargetAlive(), "bareRead's buffer was collected while libc wrote into it through a raw pointer (a use after free)");

  console.log(JSON.stringify({
    runtime,
    version,
    clock: { ...core.clock, resolutionNs: String(core.clock.resolutionNs) },
    policies,
    lease: { validAtOnce, validAfter100ms, elapsedRatio },
    vectors: { passed: report.passed, failed: report.failed, steps: report.steps, failures: report.failures },
    ...cost,
    problems,
  }));
  return problems.length;
}
