// The workerd host (host/runtime/workerd.ts → build/workerd.js) inside a real workerd, driven through
// miniflare (pointed at the project's own workerd binary): the conformance vectors, the clock
// it reports, the frozen-clock budget, and that the module is imported (CompiledWasm), never
// compiled from bytes, which workerd forbids.
// Needs `node scripts/build.mjs --skip-native` first (npm test does it).
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import cases from "../vectors/core.json" with { type: "json" };
import { runtimeBinary } from "../scripts/runtimes.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const MS = 1_000_000n;

let mf: Miniflare | undefined;
let tempDir: string | undefined;

/** GET a route of the test worker; its JSON carries bigints as decimal strings. */
async function route<T = any>(path: string): Promise<T> {
  if (!mf) throw new Error("miniflare did not start");
  const response = await mf.dispatchFetch(`http://worker.test${path}`);
  const body = (await response.json()) as T & { error?: string; stack?: string };
  if (response.status !== 200) throw new Error(`worker ${path}: HTTP ${response.status}: ${body.error}\n${body.stack}`);
  return body;
}

// Run the workerd the project pins (package.json devDependency "workerd"), not the older copy
// miniflare nests for itself: that is the binary CI installs and the README names.
const workerdBinary = runtimeBinary("workerd");
const previousWorkerdPath = process.env["MINIFLARE_WORKERD_PATH"];

beforeAll(async () => {
  if (!existsSync(workerdBinary)) throw new Error(`workerd missing at ${workerdBinary}: npm ci installs it (package "workerd")`);
  process.env["MINIFLARE_WORKERD_PATH"] = workerdBinary;
  for (const file of ["build/workerd.js", "build/lease-core.wasm"]) {
    if (!existsSync(join(root, file))) throw new Error(`${file} missing: run node scripts/build.mjs --skip-native`);
  }
  // The portable runner (host/cli/vectors.ts) and the cases, as one ES module the worker imports.
  tempDir = await mkdtemp(join(tmpdir(), "lease-core-workerd-"));
  const runnerEntry = join(tempDir, "runner-entry.js");
  await writeFile(
    runnerEntry,
    `export { runVectors } from ${JSON.stringify(join(root, "host/cli/vectors.ts"))};\n` +
      `export { default as cases } from ${JSON.stringify(join(root, "vectors/core.json"))};\n`,
  );
  const runner = await build({ entryPoints: [runnerEntry], bundle: true, format: "esm", platform: "neutral", target: "es2022", write: false, logLevel: "warning" });
  const wasm = await readFile(join(root, "build/lease-core.wasm"));
  mf = new Miniflare({
    // FinalizationRegistry (which host/core/core.ts uses to free dropped leases) exists in workerd
    // only from compatibility date 2025-05-05 or with the enable_weak_ref flag.
    compatibilityDate: "2025-06-01",
    modulesRoot: "/",
    modules: [
      { type: "ESModule", path: "/worker.js", contents: await readFile(join(root, "test/runtimes/workerd-worker.js"), "utf8") },
      { type: "ESModule", path: "/workerd.js", contents: await readFile(join(root, "build/workerd.js"), "utf8") },
      { type: "ESModule", path: "/vectors-runner.js", contents: runner.outputFiles[0]!.text },
      // What the host imports: the module, compiled by workerd at load, as wrangler ships it.
      { type: "CompiledWasm", path: "/lease-core.wasm", contents: wasm },
      // The same bytes as plain data, only to show that compiling them at run time is refused.
      { type: "Data", path: "/lease-core-bytes.bin", contents: wasm },
    ],
  });
  await mf.ready;
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
  if (previousWorkerdPath === undefined) delete process.env["MINIFLARE_WORKERD_PATH"];
  else process.env["MINIFLARE_WORKERD_PATH"] = previousWorkerdPath;
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

describe("workerd host", () => {
  test("every conformance vector passes inside workerd", async () => {
    const report = await route<{ passed: number; failed: number; failures: unknown[] }>("/vectors");
    expect(report.failures).toEqual([]);
    expect(report.passed).toBe((cases as unknown[]).length);
  });

  test("the runtime forbids compiling wasm from bytes, so the host must (and does) import the module", async () => {
    const result = await route("/compile-from-bytes");
    expect(result.refused).toBe(true);
    expect(result.message).toMatch(/disallowed by embedder/);
    // ... and yet a core loads and reads the clock (the /clock test below), so it never did.
  });

  test("clock: performance.now as epoch ms, reported frozen-capable, 1 ms, exact ns", async () => {
    const c = await route("/clock");
    expect(c.info).toEqual({
      source: "performance.now (frozen-clock budget 50 ms)",
      raw: false,
      suspendAware: false,
      resolutionNs: String(MS),
      mayFreeze: true,
      freezeBudgetNs: String(50n * MS),
    });
    expect(BigInt(c.defaultBudgetNs)).toBe(50n * MS);
    expect(c.performanceNowEqualsDateNow).toBe(true);
    const readings = (c.readings as string[]).map(BigInt);
    for (let i = 0; i < readings.length; i++) {
      const ns = readings[i]!;
      // Epoch ms × 1e6 is past 2^53: a Number product would land on multiples of 256 ns,
      // not of 1 ms (docs/runtime-notes.md trap 2). BigInt math keeps every reading a whole ms.
      expect(ns % MS).toBe(0n);
      expect(ns).toBeGreaterThanOrEqual(BigInt(c.dateBeforeMs) * MS);
      expect(ns).toBeLessThanOrEqual(BigInt(c.dateAfterMs) * MS);
      if (i > 0) expect(ns).toBeGreaterThanOrEqual(readings[i - 1]!);
    }
    expect(c.extended).toBe(true);
    expect(c.validNow).toBe(true);
    expect(c.validAfter100ms).toBe(false);
    expect(c.clockEvents).toEqual({ zeroReadings: "0", regressions: "0", suspends: "0", suspendedNs: "0" });
  });

  test("frozen-clock budget: every reader's lease is shortened by it", async () => {
    const b = await route("/budget");
    // A fresh quorum ack with a 40 ms lease: without the budget the read is local; with a
    // 50 ms budget a check may lag by more than the whole lease, so it must go linearizable,
    // and say once that lease reads are off.
    expect(b.budget0.freshAck40ms.linearizableReads).toBe(0);
    expect(b.budget50ms.freshAck40ms.linearizableReads).toBe(1);
    expect(b.budget50ms.freshAck40ms.warnings).toHaveLength(1);
    expect(b.sharded40msLinearizableReads).toBe(1);
    // A 200 ms lease keeps 150 ms of it: still local on a fresh ack.
    expect(b.budget0.freshAck200ms.linearizableReads).toBe(0);
    expect(b.budget50ms.freshAck200ms.linearizableReads).toBe(0);
    // The caller lease extended by a linearizable read ends at sample + 200 ms - budget.
    for (const [name, keptNs] of [["budget0", 200n * MS], ["budget50ms", 150n * MS]] as const) {
      const probe = b[name].noAck200ms;
      expect(probe.linearizableReads).toBe(1);
      const spanNs = BigInt(probe.expiryMinusBeforeNs);
      expect(spanNs).toBeGreaterThanOrEqual(keptNs);
      expect(spanNs).toBeLessThanOrEqual(keptNs + BigInt(probe.elapsedNs));
    }
  });

  test("freezeBudgetNs is validated with InvalidOptionError and named in the clock source", async () => {
    const o = await route("/options");
    for (const bad of ["negative", "number", "tooLarge", "withCustomClock"]) {
      expect(o[bad], bad).toMatchObject({ ok: false, name: "InvalidOptionError", code: "ERR_LEASE_INVALID_OPTION" });
    }
    expect(o.customClockAlone).toEqual({ ok: true, source: "custom" });
    expect(o.zero).toEqual({ ok: true, source: "performance.now (frozen-clock budget 0 ms)" });
    expect(o.oneAndAHalfMs).toEqual({ ok: true, source: "performance.now (frozen-clock budget 1500000 ns)" });
    expect(o.defaultBudget).toEqual({ ok: true, source: "performance.now (frozen-clock budget 50 ms)" });
  });
});
