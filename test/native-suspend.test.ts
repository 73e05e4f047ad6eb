// Suspend detection through the real clock path of each native host, not through a custom clock:
// a test-only LD_PRELOAD library (test/support/clock-interposer.ts) interposes libc's
// clock_gettime so that CLOCK_BOOTTIME jumps ahead of CLOCK_MONOTONIC and CLOCK_MONOTONIC_RAW, as
// a suspend leaves them (clock_gettime(2)). Node reads the clocks through the N-API shim
// (native/lease_clock.c), Bun through bun:ffi, Deno through Deno.dlopen; all three call libc.
// Without a suspend a machine's sleep offset is a constant (about -30 ns to a fraction of a
// second), so "now ≈ RAW + offset" also holds for an offset of 0 and a policy that reads the
// wrong clock: constant per-clock offsets make every clock read distinctly, and the jump makes
// the sleep offset grow.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runtimeBinary } from "../scripts/runtimes.mjs";
import { buildInterposer, type Interposer } from "./support/clock-interposer.js";
import { at } from "./support/runtime-runner.js";

const SUSPEND_NS = 120_000_000_000n; // 120 s: the leases are 60 s
/** Generous: the doctor measures costs and runs the contract vectors, and a 2-core machine under a
 *  load of 30 stretched one run to 41 s. A budget, not an assertion on speed. */
const CHILD_TIMEOUT_MS = 180_000;
const OFFSETS = { LC_FAKE_MONO_ADD_NS: "300000000000", LC_FAKE_BOOT_ADD_NS: "1000000000000" }; // RAW +0

interface PolicyAfter {
  source: string;
  validBefore: boolean;
  valid: boolean[];
  reasons: string[];
  advancedS: number;
  suspends: string;
  suspendedS: number;
}
interface ChildReport {
  readsAhead: Record<"raw+sleep" | "boottime" | "raw", number>;
  after: Record<"raw+sleep" | "boottime" | "raw", PolicyAfter>;
}

let interposer: Interposer;
beforeAll(() => {
  interposer = buildInterposer();
}, 60_000);
afterAll(() => interposer?.dispose());

function spawnChild(command: string, args: string[], env: Record<string, string>) {
  const run = spawnSync(command, args, {
    cwd: at(),
    encoding: "utf8",
    timeout: CHILD_TIMEOUT_MS,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", LD_PRELOAD: interposer.library, ...env },
  });
  if (run.error) throw run.error;
  return run;
}

const RUNTIMES: Array<[string, () => [string, string[]]]> = [
  ["node (N-API shim)", () => [process.execPath, [at("test", "runtimes", "suspend-child.mjs"), pathToFileURL(at("build", "node.js")).href]]],
  ["bun (bun:ffi)", () => [runtimeBinary("bun"), [at("test", "runtimes", "suspend-child.mjs"), pathToFileURL(at("build", "bun.js")).href]]],
  ["deno (Deno.dlopen)", () => [runtimeBinary("deno"), ["run", "--no-lock", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", at("test", "runtimes", "suspend-child.mjs"), pathToFileURL(at("build", "deno.js")).href]]],
];

describe.each(RUNTIMES)("%s: clock_gettime interposed", (_name, command) => {
  let report: ChildReport;
  beforeAll(() => {
    const control = interposer.control();
    const [bin, args] = command();
    const run = spawnChild(bin, [...args, String(SUSPEND_NS)], { ...control.env, ...OFFSETS });
    expect(run.stderr).not.toMatch(/raw clock unavailable|CLOCK_FALLBACK|native clock unavailable/);
    expect(run.status, run.stderr).toBe(0);
    report = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as ChildReport;
  }, 2 * CHILD_TIMEOUT_MS + 5_000);

  test("each policy reads the clock it names: boottime reads BOOTTIME (not MONOTONIC), raw+sleep and raw read RAW", () => {
    // BOOTTIME reads 1000 s ahead of RAW (plus this machine's real offset, under a second),
    // MONOTONIC 300 s: a policy mapped to the wrong clock lands hundreds of seconds off.
    expect(report.readsAhead.boottime).toBeGreaterThan(999);
    expect(report.readsAhead.boottime).toBeLessThan(1010);
    expect(Math.abs(report.readsAhead["raw+sleep"])).toBeLessThan(1);
    expect(Math.abs(report.readsAhead.raw)).toBeLessThan(1);
  });

  test("raw+sleep (the default): BOOTTIME jumping ahead invalidates every lease as a suspend, counted with its length", () => {
    const a = report.after["raw+sleep"];
    expect(a.source).toBe("CLOCK_MONOTONIC_RAW+sleep-offset");
    expect(a.validBefore).toBe(true);
    expect(a.valid).toEqual([false, false, false]);
    expect(a.reasons).toEqual(["suspend-detected", "suspend-detected", "suspend-detected"]);
    expect(a.suspends).toBe("1");
    expect(Math.abs(a.suspendedS - 120)).toBeLessThan(0.01);
    // The lease clock counts the sleep: it moved on by the suspend, not by the RAW clock's µs.
    expect(a.advancedS).toBeGreaterThanOrEqual(120);
  });

  test("boottime: the clock itself jumps by the suspend, so every lease expires (no suspend event: nothing to detect)", () => {
    const a = report.after.boottime;
    expect(a.validBefore).toBe(true);
    expect(a.reasons).toEqual(["expired", "expired", "expired"]);
    expect(a.advancedS).toBeGreaterThanOrEqual(120);
    expect(a.suspends).toBe("0");
  });

  test("raw: blind to the suspend, as documented (the policy that trades suspend-awareness for one read)", () => {
    const a = report.after.raw;
    expect(a.valid).toEqual([true, true, true]);
    expect(a.advancedS).toBeLessThan(1);
    expect(a.suspends).toBe("0");
  });
});

describe("the doctor (node) through the shim", () => {
  function doctor(jumpNs: bigint) {
    const control = interposer.control();
    // BOOTTIME jumps from its 20th reading on: after the core primed its baseline (5 readings),
    // during the doctor's own measurements.
    control.suspend(jumpNs, 20n);
    const run = spawnChild(process.execPath, [at("bin", "lease-core.js"), "doctor", "--json", "--slew-ms", "50"], control.env);
    expect(run.status, run.stderr).not.toBeNull();
    return JSON.parse(run.stdout) as { clock: { source: string }; clockEvents: { suspends: string; suspendedNs: string } };
  }

  test("reports the suspend it saw, and its length", () => {
    const report = doctor(SUSPEND_NS);
    expect(report.clock.source).toBe("CLOCK_MONOTONIC_RAW+sleep-offset");
    expect(report.clockEvents.suspends).toBe("1");
    const off = BigInt(report.clockEvents.suspendedNs) - SUSPEND_NS;
    expect(off < 0n ? -off : off).toBeLessThan(10_000_000n);
  }, CHILD_TIMEOUT_MS + 5_000);

  test("control: the same run without the jump reports none", () => {
    const report = doctor(0n);
    expect(report.clockEvents.suspends).toBe("0");
  }, CHILD_TIMEOUT_MS + 5_000);
});

test("the interposer is what moves the clocks: without LD_PRELOAD the same child sees no suspend", () => {
  const control = interposer.control();
  writeFileSync(control.path, new Uint8Array(16));
  const run = spawnSync(process.execPath, [at("test", "runtimes", "suspend-child.mjs"), pathToFileURL(at("build", "node.js")).href, String(SUSPEND_NS)], {
    cwd: at(),
    encoding: "utf8",
    timeout: CHILD_TIMEOUT_MS,
    env: { ...process.env, ...control.env, ...OFFSETS },
  });
  expect(run.status, run.stderr).toBe(0);
  const report = JSON.parse(run.stdout.trim()) as ChildReport;
  expect(report.after["raw+sleep"].suspends).toBe("0");
  expect(report.after["raw+sleep"].valid).toEqual([true, true, true]);
  expect(Math.abs(report.readsAhead.boottime)).toBeLessThan(10);
}, CHILD_TIMEOUT_MS + 5_000);
