// The WASI builds (docs/abi.md "Builds"): the reactor build/lease-core.wasi.wasm, whose only
// clock is wasi_snapshot_preview1.clock_time_get(MONOTONIC), and the self-test command
// build/lease-core.wasi-selftest.wasm, which runs vectors/core.json inside wasm. Proven under
// Node's node:wasi (in-process and spawned), Bun's and Deno's node:wasi (spawned binaries from
// node_modules), and @wasmer/wasi, a second WASI implementation independent of uvwasi.
// Needs the build (`node scripts/build-wasi.mjs`, part of `npm test`'s build).
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { WASI } from "node:wasi";
import { init as initWasmer, WASI as WasmerWASI } from "@wasmer/wasi";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { CoreExports } from "../host/core/abi.js";
import { customHostClock } from "../host/core/clock.js";
import { LeaseCore } from "../host/core/core.js";
import { runVectors, type VectorCase } from "../host/cli/vectors.js";
// @ts-expect-error: a plain .mjs helper shared with the Bun and Deno runs; untyped on purpose.
import { instantiateReactor, reactorFacts } from "./runtimes/wasi-reactor-check.mjs";
import { runtimeBinary } from "../scripts/runtimes.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const at = (...parts: string[]) => join(root, ...parts);
const REACTOR = at("build", "lease-core.wasi.wasm");
const SELFTEST = at("build", "lease-core.wasi-selftest.wasm");
const MAIN = at("build", "lease-core.wasm");
const SHARED = at("build", "lease-core.shared.wasm");
const BUN = runtimeBinary("bun");
const DENO = runtimeBinary("deno");
const MS = 1_000_000n;
const SPAWN_TIMEOUT_MS = 60_000;

const cases = JSON.parse(readFileSync(at("vectors", "core.json"), "utf8")) as { name: string; steps: unknown[] }[];
const totalSteps = cases.reduce((n, c) => n + c.steps.length, 0);

type Facts = {
  first: string; monotone: boolean; wasiElapsedNs: string; hrtimeElapsedNs: string; extended: boolean;
  validAtOnce: boolean; validAfter100ms: boolean; reasonAfter100ms: number; zeroReadings: string;
  regressions: string; suspends: string;
};

beforeAll(() => {
  for (const file of [REACTOR, SELFTEST, MAIN]) {
    if (!existsSync(file)) throw new Error(`${file} missing: run node scripts/build.mjs --skip-native`);
  }
  for (const binary of [BUN, DENO]) {
    if (!existsSync(binary)) throw new Error(`${binary} missing: the runtime is a devDependency (a missing runtime is a failure)`);
  }
});

/** Runs a runtime binary; never inherits a terminal, always bounded. */
function spawn(command: string, args: string[]) {
  const result = spawnSync(command, args, {
    cwd: root,
    encoding: "utf8",
    timeout: SPAWN_TIMEOUT_MS,
    env: { ...process.env, NODE_NO_WARNINGS: "1", DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  if (result.error) throw result.error;
  return result;
}

const importsOf = (file: string) =>
  WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(file))).map((i) => `${i.module}.${i.name}`).sort();
const exportsOf = (file: string) =>
  WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(file))).map((e) => `${e.name}:${e.kind}`).sort();

/** A reactor's facts hold for a clock in ns whose lease of 50 ms lives 50 ms (runtime-independent part). */
function expectSoundClock(facts: Facts, stepNs = 1n) {
  expect(BigInt(facts.first)).toBeGreaterThan(0n);
  expect(facts.monotone).toBe(true);
  // ns units: elapsed time over a 50 ms sleep agrees with hrtime to within a clock step + 2 ms.
  const drift = BigInt(facts.wasiElapsedNs) - BigInt(facts.hrtimeElapsedNs);
  expect(drift < 0n ? -drift : drift).toBeLessThanOrEqual(stepNs + 2n * MS);
  expect(facts.extended).toBe(true);
  expect(facts.validAtOnce).toBe(true);
  expect(facts.validAfter100ms).toBe(false);
  expect(facts.reasonAfter100ms).toBe(1); // REASON_EXPIRED
  expect([facts.zeroReadings, facts.regressions, facts.suspends]).toEqual(["0", "0", "0"]);
}

describe("lease-core.wasi.wasm: the reactor", () => {
  test("imports only wasi_snapshot_preview1: no lease_host.readClock, no env.abort", () => {
    expect(importsOf(REACTOR)).toEqual(["wasi_snapshot_preview1.clock_time_get", "wasi_snapshot_preview1.fd_write"]);
  });

  test("exports exactly the ABI of lease-core.wasm, plus _initialize and clockFillCell", () => {
    expect(exportsOf(REACTOR)).toEqual([...exportsOf(MAIN), "_initialize:function", "clockFillCell:function"].sort());
  });

  test("under node:wasi, the public LeaseCore over the reactor passes every conformance vector", async () => {
    // The clock cell is the one seam: a JS fill bound to the reactor's memory drives it with the
    // runner's scripted clock, so every step runs, the TS argument checks included.
    const report = await runVectors(async (clock) => {
      const { exports } = instantiateReactor(WASI, readFileSync(REACTOR));
      exports.init(4096, 64);
      const host = customHostClock(clock);
      return new LeaseCore(exports as CoreExports, host.info, host.bind(exports.memory, exports.clockCell()));
    }, cases as unknown as VectorCase[]);
    expect(report.failures).toEqual([]);
    expect([report.passed, report.steps]).toEqual([cases.length, totalSteps]);
  });

  test("under node:wasi, a LeaseCore whose fill is clockFillCell reads WASI MONOTONIC", async () => {
    const { exports } = instantiateReactor(WASI, readFileSync(REACTOR));
    exports.init(16, 1);
    const info = { source: "wasi:clock_time_get(MONOTONIC)", raw: false, suspendAware: false, resolutionNs: 1n, mayFreeze: false };
    const core = new LeaseCore(exports as CoreExports, info, () => exports.clockFillCell());
    const before = process.hrtime.bigint();
    const now = core.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(process.hrtime.bigint());
    const lease = core.createLease();
    expect(lease.extend(now + 50n * MS, lease.generation())).toBe(true);
    expect(lease.valid()).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(lease.valid()).toBe(false);
    expect(lease.reason()).toBe("expired");
    // One observation per reading: nothing refused, nothing counted.
    expect(core.clockEvents()).toEqual({ zeroReadings: 0n, regressions: 0n, suspends: 0n, suspendedNs: 0n });
  });

  test("docs/abi.md documents every export of every build", () => {
    const doc = readFileSync(at("docs", "abi.md"), "utf8");
    const names = new Set([REACTOR, SELFTEST, MAIN, SHARED].flatMap((f) => exportsOf(f).map((e) => e.split(":")[0]!)));
    const missing = [...names].filter((name) => !doc.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  test("under node:wasi, clockSample is CLOCK_MONOTONIC in ns, the clock process.hrtime reads", () => {
    // uvwasi maps MONOTONIC to uv_hrtime() (CLOCK_MONOTONIC), as process.hrtime.bigint(): one
    // sample taken between two hrtime reads must fall between them (docs/runtime-notes.md trap 1).
    const { exports } = instantiateReactor(WASI, readFileSync(REACTOR));
    exports.init(8, 1);
    for (let i = 0; i < 100; i++) {
      const before = process.hrtime.bigint();
      const sample = exports.clockSample() as bigint;
      const after = process.hrtime.bigint();
      expect(sample).toBeGreaterThanOrEqual(before);
      expect(sample).toBeLessThanOrEqual(after);
    }
    // The clock cell holds that reading with sleep offset 0: WASI has no boottime clock.
    const cell = new BigInt64Array(exports.memory.buffer, exports.clockCell(), 2);
    exports.clockSample();
    expect(cell[0]).toBeGreaterThan(0n);
    expect(cell[1]).toBe(0n);
  });

  test("under node:wasi in-process: monotone ns, a 50 ms lease is valid at once and expired after 100 ms", async () => {
    const { exports } = instantiateReactor(WASI, readFileSync(REACTOR));
    expectSoundClock(await reactorFacts(exports));
  });

  test("under node:wasi, a broken invariant writes one line to stderr and traps (asserts stay on)", () => {
    const dir = mkdtempSync(join(tmpdir(), "lease-core-wasi-stderr-"));
    try {
      const stderrPath = join(dir, "stderr");
      const fd = openSync(stderrPath, "w");
      try {
        const { exports } = instantiateReactor(WASI, readFileSync(REACTOR), { stderr: fd });
        exports.init(8, 1);
        // Hosts never free an unallocated slot; doing so behind their back trips index.ts's assert.
        expect(() => exports.leaseFree(4000)).toThrow(WebAssembly.RuntimeError);
      } finally {
        closeSync(fd);
      }
      expect(readFileSync(stderrPath, "utf8")).toMatch(/^lease-core abort: \(no message\) at assembly\/index\.ts:\d+:\d+\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    ["bun", BUN, [] as string[]],
    ["deno", DENO, ["run", "--allow-read"]],
  ])("under %s's node:wasi: the same clock and lease facts", (_name, binary, flags) => {
    const run = spawn(binary, [...flags, at("test", "runtimes", "wasi-reactor.mjs"), REACTOR]);
    expect(run.stderr.replace(/.*ExperimentalWarning.*\n?/g, "")).toBe("");
    expect(run.status).toBe(0);
    expectSoundClock(JSON.parse(run.stdout.trim()) as Facts);
  }, SPAWN_TIMEOUT_MS);

  test("under @wasmer/wasi: sound too, but its MONOTONIC is Date.now() in whole ms since the epoch", async () => {
    await initWasmer();
    const wasi = new WasmerWASI({ args: [], env: {} });
    const instance = wasi.instantiate(await WebAssembly.compile(readFileSync(REACTOR)), {}) as WebAssembly.Instance;
    const exports = instance.exports as Record<string, CallableFunction> & { init(a: number, b: number): void };
    (exports._initialize as () => void)();
    const beforeMs = BigInt(Date.now());
    const facts = (await reactorFacts(exports)) as Facts;
    const first = BigInt(facts.first);
    expect(first % MS).toBe(0n);
    expect(first).toBeGreaterThanOrEqual(beforeMs * MS);
    expect(first).toBeLessThanOrEqual(BigInt(Date.now()) * MS);
    expectSoundClock(facts, MS);
  });
});

// --- the self-test command -------------------------------------------------------------------

const RUNTIMES = {
  node: (wasm: string) => spawn(process.execPath, [at("test", "runtimes", "wasi-selftest.mjs"), wasm]),
  bun: (wasm: string) => spawn(BUN, [at("test", "runtimes", "wasi-selftest.mjs"), wasm]),
  deno: (wasm: string) => spawn(DENO, ["run", "--allow-read", at("test", "runtimes", "wasi-selftest.mjs"), wasm]),
  wasmer: (wasm: string) => spawn(process.execPath, [at("test", "runtimes", "wasi-selftest-wasmer.mjs"), wasm]),
};
type Runtime = keyof typeof RUNTIMES;

/** The host clocks the runner read just before and after `_start` (wasi-selftest.mjs). */
function hostClocks(stderr: string, when: "before" | "after") {
  const m = new RegExp(`host-clocks ${when} hrtime=(\\d+) epochMs=(\\d+) uptimeMs=([\\d.]+)`).exec(stderr);
  if (m === null) throw new Error(`no host-clocks ${when} line in: ${stderr}`);
  return { hrtimeNs: BigInt(m[1]!), epochNs: BigInt(m[2]!) * MS, uptimeNs: BigInt(Math.ceil(Number(m[3]!) * 1e6)) };
}

// What WASI MONOTONIC really is in each runtime (measured; docs/abi.md "WASI hosts").
const CLOCK_ORIGIN: Record<Runtime, (clockNs: bigint, stderr: string) => void> = {
  // uvwasi: CLOCK_MONOTONIC, the clock of process.hrtime: between the two hrtime reads.
  node(clockNs, stderr) {
    expect(clockNs).toBeGreaterThanOrEqual(hostClocks(stderr, "before").hrtimeNs);
    expect(clockNs).toBeLessThanOrEqual(hostClocks(stderr, "after").hrtimeNs);
  },
  // Bun: counts from process start, as its hrtime and performance.now (docs/runtime-notes.md trap 1).
  // Bun ends the process inside proc_exit, so only the "before" line is printed.
  bun(clockNs, stderr) {
    expect(clockNs).toBeGreaterThanOrEqual(hostClocks(stderr, "before").hrtimeNs);
    expect(clockNs).toBeLessThan(hostClocks(stderr, "before").uptimeNs + 5_000n * MS);
  },
  // Deno: counts from the instance's first clock_time_get: the first reading is a few ns.
  deno(clockNs) {
    expect(clockNs).toBeLessThan(10n * MS);
  },
  // @wasmer/wasi: Date.now() in whole ms: a wall clock, not a monotonic one.
  wasmer(clockNs, stderr) {
    expect(clockNs % MS).toBe(0n);
    expect(clockNs).toBeGreaterThanOrEqual(hostClocks(stderr, "before").epochNs);
    expect(clockNs).toBeLessThanOrEqual(hostClocks(stderr, "after").epochNs);
  },
};

const RESULT_LINE = /^lease-core selftest: (\d+) passed, (\d+) failed$/;
const STEPS_LINE = /^lease-core selftest: (\d+) steps in wasm, (\d+) steps validated only by hosts$/;
const CLOCK_LINE = /^lease-core selftest clock: wasi monotonic (\d+) ns, resolution (\d+) ns, ok$/;

describe("lease-core.wasi-selftest.wasm: the command", () => {
  test("exports _start and memory only; imports only wasi_snapshot_preview1", () => {
    expect(exportsOf(SELFTEST)).toEqual(["_start:function", "memory:memory"]);
    expect(importsOf(SELFTEST).every((name) => name.startsWith("wasi_snapshot_preview1."))).toBe(true);
  });

  test.each(Object.keys(RUNTIMES) as Runtime[])("under %s: every conformance case passes, exit 0", (runtime) => {
    const run = RUNTIMES[runtime](SELFTEST);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines.at(-1)).toBe(`lease-core selftest: ${cases.length} passed, 0 failed`);
    expect(lines.filter((l) => l.startsWith("FAIL"))).toEqual([]);
    const steps = STEPS_LINE.exec(lines.at(-2) ?? "");
    expect(steps, lines.at(-2)).not.toBeNull();
    expect(Number(steps![1]) + Number(steps![2])).toBe(totalSteps);
    expect(Number(steps![1])).toBeGreaterThan(Number(steps![2]));
    const clock = CLOCK_LINE.exec(lines[0] ?? "");
    expect(clock, lines[0]).not.toBeNull();
    CLOCK_ORIGIN[runtime](BigInt(clock![1]!), run.stderr);
    expect(run.status).toBe(0);
  }, SPAWN_TIMEOUT_MS);

  describe("with one wrong expectation", () => {
    let dir = "";
    let broken = "";
    beforeAll(() => {
      // Scenario 1 step 3: valid at t+49ms; expecting false must fail that case, and only it.
      dir = mkdtempSync(join(tmpdir(), "lease-core-wasi-broken-"));
      const altered = structuredClone(cases) as { steps: { op: string; expect?: unknown }[] }[];
      const step = altered[0]!.steps[3]!;
      expect(step).toMatchObject({ op: "valid", expect: true });
      step.expect = false;
      writeFileSync(join(dir, "cases.json"), JSON.stringify(altered));
      broken = join(dir, "broken-selftest.wasm");
      const build = spawn(process.execPath, [at("scripts", "build-wasi.mjs"), "--selftest-vectors", join(dir, "cases.json"), "--selftest-out", broken]);
      expect(build.status, build.stderr).toBe(0);
    }, SPAWN_TIMEOUT_MS);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test.each(Object.keys(RUNTIMES) as Runtime[])("under %s: the case is printed and the exit code is 1", (runtime) => {
      const run = RUNTIMES[runtime](broken);
      const lines = run.stdout.trimEnd().split("\n");
      expect(lines.filter((l) => l.startsWith("FAIL"))).toEqual([
        `FAIL ${cases[0]!.name}: step 3: valid: expected false, got true`,
      ]);
      expect(RESULT_LINE.exec(lines.at(-1) ?? "")?.slice(1)).toEqual([String(cases.length - 1), "1"]);
      expect(run.status).toBe(1);
    }, SPAWN_TIMEOUT_MS);
  });
});
