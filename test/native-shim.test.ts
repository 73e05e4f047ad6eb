// The N-API clock shim (native/lease_clock.c) never writes through a stale pointer and never
// fails silently: a bound buffer detached by a transfer, by memory.grow() or by posting it to a
// worker makes the fill throw ERR_LEASE_CLOCK_STALE_BINDING and write nothing; names with an
// embedded NUL are refused; a reading whose ns count does not fit an int64 is "no reading" (0n);
// every N-API failure throws. The same cases (test/support/native-shim-cases.mjs) run in-process
// on the shipped shim (build/lease_clock.node) and in a child node on an AddressSanitizer +
// UndefinedBehaviorSanitizer build of the same source with fault injection, which must report no
// error. Needs a C compiler and libasan (scripts/setup.sh installs them).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildInterposer } from "./support/clock-interposer.js";
// @ts-expect-error: a plain .mjs helper, shared with the sanitizer child (no types)
import { runAll } from "./support/native-shim-cases.mjs";
import { at } from "./support/runtime-runner.js";

const SHIPPED = at("build", "lease_clock.node");
const STALE = { threw: true, name: "Error", code: "ERR_LEASE_CLOCK_STALE_BINDING" };
const FINE = { threw: false, type: "undefined" };

type Outcome = { threw: boolean; type?: string; name?: string; code?: string };
interface Report {
  transferred: Record<"bindFill" | "bindCell", { before: Outcome; after: Outcome; detached: boolean; copyUntouched: boolean }>;
  collected: { collected: boolean; after: Outcome };
  grown: { before: Outcome; after: Outcome; grownUntouched: boolean; rebound: Outcome; reboundReading: boolean };
  worker: { before: Outcome; after: Outcome; workerUntouched: boolean; workerOwnReading: boolean };
  names: Record<string, Outcome>;
  faults: { injected: number; bad: string[] } | null;
}

/** What both builds must show. */
function expectSafe(r: Report): void {
  for (const how of ["bindFill", "bindCell"] as const) {
    const t = r.transferred[how];
    expect(t.before, how).toEqual(FINE);
    expect(t.detached, how).toBe(true);
    expect(t.after, how).toEqual(STALE);
    expect(t.copyUntouched, `${how}: the transferred bytes were written`).toBe(true);
  }
  expect(r.collected).toEqual({ collected: true, after: STALE });
  expect(r.grown).toEqual({ before: FINE, after: STALE, grownUntouched: true, rebound: FINE, reboundReading: true });
  expect(r.worker).toEqual({ before: FINE, after: STALE, workerUntouched: true, workerOwnReading: true });
  expect(r.names).toEqual({
    resolutionRaw: { threw: false, type: "bigint" },
    resolutionNul: { threw: true, name: "TypeError" },
    resolutionLong: { threw: true, name: "TypeError" },
    bindFillNul: { threw: true, name: "TypeError" },
    bindFillNulSleep: { threw: true, name: "TypeError" },
    bindFillRaw: { threw: false, type: "function" },
  });
}

describe("the shipped shim", () => {
  test("stale bindings throw and write nothing; names must match exactly", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const clock = createRequire(import.meta.url)(SHIPPED);
    const report = (await runAll(clock, SHIPPED, gc)) as Report;
    expectSafe(report);
    expect(report.faults).toBeNull(); // no fault injection in the shipped build
  });

  test("a reading beyond int64 ns is no reading (0n), never a wrapped value", () => {
    const interposer = buildInterposer();
    const script = `
      const c = require(${JSON.stringify(SHIPPED)});
      const cell = new ArrayBuffer(16);
      c.bindFill(cell, 0, "raw+sleep")();
      const w = new BigInt64Array(cell);
      console.log(JSON.stringify([c.readRaw(), c.readMonotonic(), c.readBoottime(), c.readSleepOffset(), w[0], w[1]].map(String)));`;
    const read = (huge: number) => {
      const out = execFileSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, LD_PRELOAD: interposer.library, LC_FAKE_HUGE: String(huge), LC_FAKE_BOOT_ADD_NS: "5000000000" } }); // a 5 s offset: never 0
      return (JSON.parse(out) as string[]).map(BigInt);
    };
    // RAW and MONOTONIC overflow: no reading from either, so no sleep offset and a zero cell.
    const [raw, mono, boot, offset, cell0, cell1] = read(1 | 2);
    expect([raw, mono, offset, cell0, cell1]).toEqual([0n, 0n, 0n, 0n, 0n]);
    expect(boot).toBeGreaterThan(0n);
    // RAW alone: the offset still reads, but a sample is all or nothing (+0 = 0 and +8 = 0).
    const [raw1, , , offset1, cell4, cell5] = read(1);
    expect(raw1).toBe(0n);
    expect(offset1 > 4_000_000_000n).toBe(true);
    expect([cell4, cell5]).toEqual([0n, 0n]);
    // BOOTTIME alone: RAW still reads, but the sample is all or nothing.
    const [raw2, , boot2, offset2, cell2, cell3] = read(4);
    expect(raw2).toBeGreaterThan(0n);
    expect([boot2, offset2, cell2, cell3]).toEqual([0n, 0n, 0n, 0n]);
    // Control: the interposer without the overflow changes nothing.
    expect(read(0).every((v) => v > 0n)).toBe(true);
    interposer.dispose();
  }, 120_000);
});

describe("AddressSanitizer + UBSan build, with every N-API call failing in turn", () => {
  let shim: string;
  let asanRuntime: string;
  beforeAll(() => {
    asanRuntime = execFileSync("cc", ["-print-file-name=libasan.so"], { encoding: "utf8" }).trim();
    if (!existsSync(asanRuntime)) throw new Error(`libasan not found (cc -print-file-name=libasan.so: ${asanRuntime}); install it (scripts/setup.sh)`);
    const headers = [join(dirname(process.execPath), "..", "include", "node"), "/usr/include/node"].find((d) => existsSync(join(d, "node_api.h")));
    if (headers === undefined) throw new Error("node_api.h not found");
    shim = join(mkdtempSync(join(tmpdir(), "lease-asan-")), "lease_clock.node");
    execFileSync("cc", [
      "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-g", "-O1", "-fno-omit-frame-pointer",
      "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-DLC_TEST_FAULTS",
      `-I${headers}`, at("native", "lease_clock.c"), "-o", shim,
    ], { stdio: "pipe" });
  }, 60_000);
  afterAll(() => {
    if (shim !== undefined) rmSync(dirname(shim), { recursive: true, force: true });
  });

  test("detach, grow, workers, names and every failure path: no sanitizer error, same behaviour", () => {
    const run = spawnSync(process.execPath, ["--expose-gc", at("test", "support", "native-shim-cases.mjs"), shim], {
      encoding: "utf8",
      timeout: 180_000, // a budget for a loaded 2-core machine, not a speed assertion
      // libasan must be the first library loaded; node itself leaks by design at exit.
      env: { ...process.env, LD_PRELOAD: asanRuntime, ASAN_OPTIONS: "detect_leaks=0:abort_on_error=0:exitcode=66", UBSAN_OPTIONS: "print_stacktrace=1:halt_on_error=1:exitcode=67" },
    });
    expect(run.stderr).not.toMatch(/AddressSanitizer|runtime error|UndefinedBehaviorSanitizer/);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as Report;
    expectSafe(report);
    // Fault injection reached the failure paths, and each one threw ERR_LEASE_CLOCK_NATIVE.
    expect(report.faults!.bad).toEqual([]);
    expect(report.faults!.injected).toBeGreaterThanOrEqual(25);
  }, 185_000);
});
