// `npm start` (lease-core doctor): the report a person reads, and its exit status.
import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";

const bin = new URL("../bin/lease-core.js", import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000 });

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
    expect(out).toMatch(/Slew of CLOCK_MONOTONIC against CLOCK_MONOTONIC_RAW over 200 ms: [+-][\d.]+ ppm/);
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
});
