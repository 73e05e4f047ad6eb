// The Deno host (build/deno.js) in the real Deno binary from node_modules: the conformance
// vectors, and the clock it reports — raw and suspend-aware with --allow-ffi, an honest
// performance.now() fallback without it (and no crash). test/runtimes/deno-conformance.ts does
// the work inside Deno and prints one JSON line; this file checks that line. The timespec and
// sleep-offset arithmetic, which a real clock exercises only at today's values, runs on a
// simulated libc (test/runtimes/deno-simulated-libc.ts).
// Needs the build (`node scripts/build.mjs --skip-native`, part of `npm test`).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runtimeBinary } from "../scripts/runtimes.mjs";
import { SPAWN_TIMEOUT_MS, at, cases, prepareRuntime, spawnJson, warnings, type RunnerReport } from "./support/runtime-runner.js";
import { buildInterposer } from "./support/clock-interposer.js";

const DENO = runtimeBinary("deno");
const RUNNER = at("test", "runtimes", "deno-conformance.ts");

let vectorsUrl: string;
let cleanup = () => {};

beforeAll(async () => {
  ({ vectorsUrl, cleanup } = await prepareRuntime(DENO, "deno.js"));
});

afterAll(() => cleanup());

/** Runs the runner under Deno with `permissions`; bounded, never a terminal (so never a prompt). */
function runDeno(permissions: string[], script = RUNNER) {
  return spawnJson<RunnerReport>(DENO, ["run", "--no-lock", ...permissions, script, vectorsUrl], { DENO_NO_UPDATE_CHECK: "1" });
}

describe("Deno with --allow-ffi: libc clock_gettime through Deno.dlopen", () => {
  let run: ReturnType<typeof runDeno>;
  beforeAll(() => {
    run = runDeno(["--allow-read", "--allow-ffi"]);
  }, SPAWN_TIMEOUT_MS + 5_000);

  test("every conformance vector passes and the runner found no problem", () => {
    expect(run.report.problems).toEqual([]);
    expect(run.report.vectors).toMatchObject({ passed: cases.length, failed: 0, failures: [] });
    expect(run.status).toBe(0);
    expect(run.report.runtime).toBe("deno");
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
    // which also proves the interposition takes in deno: test/native-suspend.test.ts), it can.
    const interposer = buildInterposer();
    const interposed = spawnJson<RunnerReport>(DENO, ["run", "--no-lock", "--allow-read", "--allow-ffi", RUNNER, vectorsUrl], { DENO_NO_UPDATE_CHECK: "1", ...{ LD_PRELOAD: interposer.library, LC_FAKE_MONO_ADD_NS: "300000000000", LC_FAKE_BOOT_ADD_NS: "1000000000000" } });
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

describe("Deno without --allow-ffi: performance.now(), reported as such", () => {
  let run: ReturnType<typeof runDeno>;
  beforeAll(() => {
    run = runDeno(["--allow-read"]);
  }, SPAWN_TIMEOUT_MS + 5_000);

  test("no crash, and every conformance vector still passes", () => {
    expect(run.report.problems).toEqual([]);
    expect(run.report.vectors).toMatchObject({ passed: cases.length, failed: 0 });
    expect(run.status).toBe(0);
  });

  test("the clock says what it is: performance.now, not raw, not suspend-aware, measured resolution", () => {
    const { clock, policies } = run.report;
    expect(clock).toMatchObject({ source: "performance.now", raw: false, suspendAware: false, mayFreeze: false });
    expect(BigInt(clock.resolutionNs)).toBeGreaterThan(0n);
    for (const policy of Object.values(policies)) expect(policy).toMatchObject({ source: "performance.now", raw: false, monotone: true, bracketed: null });
  });

  test("it warns exactly once per process, saying why", () => {
    expect(warnings(run.stderr)).toBe(1);
    expect(run.stderr).toContain("--allow-ffi");
  });

  test("the fallback still counts ns in real time", () => {
    expect(run.report.lease).toMatchObject({ validAtOnce: true, validAfter100ms: false });
    expect(run.report.lease.elapsedRatio).toBeGreaterThan(0.9);
    expect(run.report.lease.elapsedRatio).toBeLessThan(1.1);
  });
});

describe("Deno's clock arithmetic, on a simulated libc", () => {
  test("200 days of uptime, suspends, negative offsets and failures come out exact", () => {
    const run = runDeno(["--allow-read"], at("test", "runtimes", "deno-simulated-libc.ts"));
    expect(run.report.problems).toEqual([]);
    expect((run.report as unknown as { checks: number }).checks).toBe(17);
    expect(run.status).toBe(0);
  }, SPAWN_TIMEOUT_MS + 5_000);
});
