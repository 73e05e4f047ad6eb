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
    ["bun", ["node_modules/@oven/bun-linux-x64/bin/bun", "bin/lease-core.js"], /raw\s+yes/],
    ["deno", ["node_modules/@deno/linux-x64-glibc/deno", "run", "--allow-read", "--allow-ffi", "--allow-env", "bin/lease-core.js"], /raw\s+yes/],
    ["deno", ["node_modules/@deno/linux-x64-glibc/deno", "run", "--allow-read", "--allow-env", "bin/lease-core.js"], /source\s+performance\.now\s+raw\s+no/],
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

