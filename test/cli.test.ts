// `npm start` (lease-core doctor): the report a person reads, and its exit status.
import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { judgeFitness, type DoctorReport } from "../host/cli/doctor.js";
import { runtimeBinary } from "../scripts/runtimes.mjs";

const bin = new URL("../bin/lease-core.js", import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000 });
const root = new URL("..", import.meta.url).pathname;
const deno = runtimeBinary("deno");
const bun = runtimeBinary("bun");
const failed = (report: DoctorReport) => report.verdict.checks.filter((c) => !c.ok).map((c) => c.name);

describe("lease-core doctor", () => {
  test("reports the clock, the cost side by side, the slew, and a passing self-test", () => {
    const result = run("doctor", "--slew-ms", "200");
    expect(result.status, result.stderr).toBe(0);
    const out = result.stdout;
    expect(out).toMatch(/source\s+CLOCK_MONOTONIC_RAW\+sleep-offset/);
    expect(out).toMatch(/raw\s+yes/);
    expect(out).toMatch(/suspend-aware\s+yes/);
    expect(out).toMatch(/bare read of CLOCK_MONOTONIC_RAW\+sleep-offset\s+[\d.]+ ns/);
    expect(out).toMatch(/lease\.valid\(\) \(clock read \+ check\)\s+[\d.]+ ns\s+[\d.]+× the bare read/);
    expect(out).toMatch(/Slew of process\.hrtime\.bigint\(\) against CLOCK_MONOTONIC_RAW\+sleep-offset over 200 ms: [+-][\d.]+ ppm/);
    expect(out).toMatch(/^lease-core doctor \(node \d+\.\d+\.\d+\)/);
    expect(out).toMatch(/Self-test: (\d+)\/\1 contract cases pass/);
    expect(out).toMatch(/Verdict: this host's lease clock is raw and suspend-aware/);
  });

  test("--policy raw says it is blind to suspend", () => {
    const result = run("doctor", "--slew-ms", "50", "--policy", "raw");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/suspend-aware\s+no/);
    expect(result.stdout).toMatch(/Verdict: usable, but the clock is weaker/);
  });

  test("bad arguments exit 2 with the usage", () => {
    expect(run("doctor", "--policy", "wall").status).toBe(2);
    expect(run("frobnicate").status).toBe(2);
    expect(run("frobnicate").stderr).toMatch(/usage: lease-core doctor/);
  });

  test.each([
    ["bun", [bun, "bin/lease-core.js"], /raw\s+yes/],
    ["deno", [deno, "run", "--allow-read", "--allow-ffi", "--allow-env", "bin/lease-core.js"], /raw\s+yes/],
    ["deno", [deno, "run", "--allow-read", "--allow-env", "bin/lease-core.js"], /source\s+performance\.now\s+raw\s+no/],
  ])("runs on %s and reports that runtime's clock honestly", (runtime, command, clockLine) => {
    const result = spawnSync(command[0]!, [...command.slice(1), "doctor", "--slew-ms", "100"], {
      cwd: new URL("..", import.meta.url).pathname,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^lease-core doctor \\(${runtime} `));
    expect(result.stdout.replace(/\n\s*/g, " ")).toMatch(clockLine);
    expect(result.stdout).toMatch(/Self-test: (\d+)\/\1 contract cases pass/);
  });
});


describe("lease-core doctor --json (docs/metrics.md)", () => {
  test("prints one JSON object with everything the report says, bigints as strings; fit: exit 0", () => {
    const result = run("doctor", "--json", "--slew-ms", "100");
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as DoctorReport; // nothing else on stdout
    expect(report.schema).toBe("lease-core-doctor/1");
    expect(report.runtime).toMatch(/^node \d+\.\d+\.\d+$/);
    expect(report.clock).toEqual({
      source: "CLOCK_MONOTONIC_RAW+sleep-offset",
      raw: true,
      suspendAware: true,
      resolutionNs: "1",
      mayFreeze: false,
      freezeBudgetNs: "0",
    });
    for (const ns of Object.values(report.costNs)) expect(ns).toBeGreaterThan(0);
    expect(report.ordinaryMonotonicClock).toBe("process.hrtime.bigint()");
    expect(report.slew.overMs).toBe(100);
    expect(Math.abs(report.slew.ppm!)).toBeLessThan(1000);
    expect(report.selfTest.failed).toBe(0);
    expect(report.selfTest.passed).toBeGreaterThan(10);
    expect(report.clockEvents).toEqual({ zeroReadings: "0", regressions: "0", suspends: "0", suspendedNs: "0" });
    expect(report.verdict).toMatchObject({ fit: true, leaseMs: 700, driftPpm: 50 });
    expect(report.verdict.checks.map((c) => c.name)).toEqual(["contract", "lease", "readings", "monotonic", "suspend", "rate", "resolution", "freeze", "cost"]);
  });

  test("a 0 ms lease is not fit: exit 1, the failing checks named", () => {
    const result = run("doctor", "--json", "--slew-ms", "20", "--lease-ms", "0");
    expect(result.status, result.stderr).toBe(1);
    expect(failed(JSON.parse(result.stdout))).toEqual(["lease", "resolution"]);
  });

  test("--policy raw (blind to suspend) is not fit", () => {
    const result = run("doctor", "--json", "--slew-ms", "20", "--policy", "raw");
    expect(result.status, result.stderr).toBe(1);
    expect(failed(JSON.parse(result.stdout))).toEqual(["suspend"]);
  });

  test("the readable report judges too when given --lease-ms or --drift-ppm, and says why not", () => {
    const result = run("doctor", "--slew-ms", "20", "--lease-ms", "0");
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/Verdict: this host's lease clock is raw and suspend-aware/);
    expect(result.stdout).toMatch(/^Fit for 0 ms leases at ±50 ppm: NO\n  lease: a lease of 0 ms serves no read$/m);
    const fit = run("doctor", "--slew-ms", "20", "--drift-ppm", "50");
    expect(fit.status).toBe(0);
    expect(fit.stdout).toMatch(/^Fit for 700 ms leases at ±50 ppm: yes$/m);
  });

  test("bad fitness arguments exit 2", () => {
    expect(run("doctor", "--lease-ms", "-5").status).toBe(2);
    expect(run("doctor", "--lease-ms", "0.5").status).toBe(2);
    expect(run("doctor", "--drift-ppm", "1000001").status).toBe(2);
    expect(run("doctor", "--drift-ppm").status).toBe(2);
  });

  test.each([
    ["bun (bun:ffi, raw)", [bun, "bin/lease-core.js"], 0, []],
    ["deno (FFI, raw)", [deno, "run", "--allow-read", "--allow-ffi", "--allow-env", "bin/lease-core.js"], 0, []],
    // Without --allow-ffi Deno reads performance.now(): slewed and blind to suspend.
    ["deno (no FFI)", [deno, "run", "--allow-read", "--allow-env", "bin/lease-core.js"], 1, ["suspend", "rate"]],
  ])("portable: %s", (_name, command, status, failing) => {
    const result = spawnSync(command[0]!, [...command.slice(1), "doctor", "--json", "--slew-ms", "20"], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(result.status, result.stderr).toBe(status);
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(failed(report)).toEqual(failing);
    expect(report.selfTest.failed).toBe(0);
  });
});

describe("judgeFitness: each closed path (docs/metrics.md \"Fit for leases\")", () => {
  // A fit host: Linux raw+sleep clock, 1 ns steps, ~90 ns a check.
  const facts = (over: { clock?: Partial<DoctorReport["clock"]>; check?: number; ppm?: number; failed?: number; zero?: string; regressions?: string; readingsOk?: boolean } = {}) => ({
    clock: { source: "CLOCK_MONOTONIC_RAW+sleep-offset", raw: true, suspendAware: true, resolutionNs: "1", mayFreeze: false, freezeBudgetNs: "0", ...over.clock },
    costNs: { bareRead: 70, ordinaryMonotonic: 50, check: over.check ?? 90, checkAt: 8 },
    slew: { overMs: 2000, ppm: over.ppm ?? 0.5, reason: null },
    selfTest: { passed: 16 - (over.failed ?? 0), failed: over.failed ?? 0, steps: 200, failures: [] },
    clockEvents: { zeroReadings: over.zero ?? "0", regressions: over.regressions ?? "0", suspends: "0", suspendedNs: "0" },
    readingsOk: over.readingsOk ?? true,
  });
  const failing = (f: ReturnType<typeof facts>, leaseMs = 700, driftPpm = 50) =>
    judgeFitness(f, leaseMs, driftPpm).checks.filter((c) => !c.ok).map((c) => c.name);

  test.each([
    ["a fit host", facts(), 700, 50, []],
    ["the contract fails", facts({ failed: 1 }), 700, 50, ["contract"]],
    ["the clock gave no reading", facts({ zero: "3" }), 700, 50, ["readings"]],
    ["no reading in the slew pairs", facts({ readingsOk: false }), 700, 50, ["readings"]],
    ["a reading went backwards", facts({ regressions: "1" }), 700, 50, ["monotonic"]],
    ["blind to suspend", facts({ clock: { suspendAware: false } }), 700, 50, ["suspend"]],
    ["slewed clock, 50 ppm bound", facts({ clock: { raw: false } }), 700, 50, ["rate"]],
    ["slewed clock, 500 ppm bound", facts({ clock: { raw: false } }), 700, 500, []],
    // A 1 ms clock (workerd's) is fit for 100 ms leases and up, not for 99 ms.
    ["1 ms steps, 100 ms lease", facts({ clock: { resolutionNs: "1000000" } }), 100, 50, []],
    ["1 ms steps, 99 ms lease", facts({ clock: { resolutionNs: "1000000" } }), 99, 50, ["resolution"]],
    ["may freeze, budget 50 ms", facts({ clock: { mayFreeze: true, freezeBudgetNs: "50000000" } }), 700, 50, []],
    ["may freeze, budget unknown", facts({ clock: { mayFreeze: true, freezeBudgetNs: null } }), 700, 50, ["freeze"]],
    ["may freeze, budget 0", facts({ clock: { mayFreeze: true, freezeBudgetNs: "0" } }), 700, 50, ["freeze"]],
    ["may freeze, budget = lease", facts({ clock: { mayFreeze: true, freezeBudgetNs: "700000000" } }), 700, 50, ["freeze"]],
    ["a check costs 20 µs", facts({ check: 20_000 }), 700, 50, ["cost"]],
  ] as const)("%s", (_name, f, leaseMs, driftPpm, expected) => {
    expect(failing(f, leaseMs, driftPpm)).toEqual(expected);
    expect(judgeFitness(f, leaseMs, driftPpm).fit).toBe(expected.length === 0);
  });

  test("a raw clock's large NTP correction is a warning, never a failure", () => {
    const verdict = judgeFitness(facts({ ppm: -120 }), 700, 50);
    expect(verdict.fit).toBe(true);
    expect(verdict.warnings).toEqual([expect.stringMatching(/NTP corrects the ordinary clock by -120\.00 ppm, more than --drift-ppm 50/)]);
    expect(judgeFitness(facts({ ppm: -20 }), 700, 50).warnings).toEqual([]);
  });
});
