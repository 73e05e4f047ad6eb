// The Deno host (build/deno.js) in the real Deno binary from node_modules: the conformance
// vectors, and the clock it reports — raw and suspend-aware with --allow-ffi, an honest
// performance.now() fallback without it (and no crash). test/runtimes/deno-conformance.ts does
// the work inside Deno and prints one JSON line; this file checks that line. The timespec and
// sleep-offset arithmetic, which a real clock exercises only at today's values, runs on a
// simulated libc (test/runtimes/deno-simulated-libc.ts).
// Needs the build (`node scripts/build.mjs --skip-native`, part of `npm test`).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runtimeBinary } from "../scripts/runtimes.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const at = (...parts: string[]) => join(root, ...parts);
const DENO = runtimeBinary("deno");
const RUNNER = at("test", "runtimes", "deno-conformance.ts");
const SPAWN_TIMEOUT_MS = 60_000;
const cases = JSON.parse(readFileSync(at("vectors", "core.json"), "utf8")) as unknown[];
const WARNING = "lease-core: raw clock unavailable";

interface ClockReport {
  source: string;
  raw: boolean;
  suspendAware: boolean;
  resolutionNs: string;
  mayFreeze: boolean;
  monotone?: boolean;
  bracketed?: boolean | null;
}
interface RunnerReport {
  runtime: string;
  version: string;
  clock: ClockReport;
  policies: Record<"raw+sleep" | "boottime" | "raw", ClockReport>;
  lease: { validAtOnce: boolean; validAfter100ms: boolean; elapsedRatio: number };
  vectors: { passed: number; failed: number; failures: unknown[] };
  fillNs: number;
  validNs: number;
  bareReadNs: number | null;
  problems: string[];
}

let tmp: string;
let vectorsUrl: string;

beforeAll(async () => {
  for (const file of [DENO, at("build", "deno.js"), at("build", "lease-core.wasm")]) {
    if (!existsSync(file)) throw new Error(`${file} missing (Deno is a devDependency; the bundles come from node scripts/build.mjs)`);
  }
  // host/vectors.ts is not in the public API: bundle it for the runner.
  tmp = mkdtempSync(join(tmpdir(), "lease-core-deno-"));
  await build({ entryPoints: [at("host", "vectors.ts")], bundle: true, format: "esm", platform: "neutral", outfile: join(tmp, "vectors.js"), logLevel: "warning" });
  vectorsUrl = pathToFileURL(join(tmp, "vectors.js")).href;
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Runs the runner under Deno with `permissions`; bounded, never a terminal (so never a prompt). */
function runDeno(permissions: string[], script = RUNNER): { status: number | null; report: RunnerReport; stderr: string } {
  const result = spawnSync(DENO, ["run", "--no-lock", ...permissions, script, vectorsUrl], {
    cwd: root,
    encoding: "utf8",
    timeout: SPAWN_TIMEOUT_MS,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  if (result.error) throw result.error;
  const line = result.stdout.trim().split("\n").at(-1) ?? "";
  let report: RunnerReport;
  try {
    report = JSON.parse(line) as RunnerReport;
  } catch {
    throw new Error(`deno printed no JSON line (status ${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return { status: result.status, report, stderr: result.stderr };
}

const warnings = (stderr: string) => stderr.split(WARNING).length - 1;

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
