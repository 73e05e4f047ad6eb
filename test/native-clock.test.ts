// The N-API clock shim (native/lease_clock.c through host/runtime/node-clock.ts), against the real
// clocks. Needs build/lease_clock.node: `node scripts/build-native.mjs`.
import { spawnSync } from "node:child_process";
import { setFlagsFromString } from "node:v8";
import { fileURLToPath } from "node:url";
import { runInNewContext } from "node:vm";
import { afterEach, beforeAll, describe, expect, test, vi } from "vitest";
import { loadNativeClock, type NativeClock } from "../host/runtime/node-clock.js";

const MS = 1_000_000n;

let clock: NativeClock;

beforeAll(() => {
  const loaded = loadNativeClock();
  if (loaded.clock === null) throw new Error(`native clock shim unavailable: ${loaded.error}`);
  clock = loaded.clock;
});

afterEach(() => {
  vi.unstubAllEnvs();
});

/** An ArrayBuffer filled with a sentinel, so stray writes outside the cell show. */
function sentinelBuffer(bytes: number): { buffer: ArrayBuffer; words: BigInt64Array } {
  const buffer = new ArrayBuffer(bytes);
  const words = new BigInt64Array(buffer);
  words.fill(-0x5a5a5a5a5a5a5a5an);
  return { buffer, words };
}

describe("direct reads", () => {
  test("raw is positive and never goes backwards over many reads", () => {
    let prev = clock.readRaw();
    expect(prev).toBeGreaterThan(0n);
    for (let i = 0; i < 200_000; i++) {
      const now = clock.readRaw();
      if (now < prev) expect.fail(`raw went backwards at read ${i}: ${prev} -> ${now}`);
      prev = now;
    }
  });

  test("boottime and monotonic are positive and nondecreasing", () => {
    for (const read of [() => clock.readBoottime(), () => clock.readMonotonic()]) {
      const a = read();
      const b = read();
      expect(a).toBeGreaterThan(0n);
      expect(b).toBeGreaterThanOrEqual(a);
    }
  });

  test("raw counts nanoseconds: it advances like hrtime across a 50 ms sleep", async () => {
    // Slew is bounded (POSIX: 500 ppm), so the two clocks agree on elapsed time to well under 2%.
    const raw0 = clock.readRaw();
    const mono0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, 50));
    const rawNs = clock.readRaw() - raw0;
    const monoNs = process.hrtime.bigint() - mono0;
    expect(rawNs).toBeGreaterThanOrEqual(45n * MS);
    const ratio = Number(rawNs) / Number(monoNs);
    expect(ratio).toBeGreaterThan(0.98);
    expect(ratio).toBeLessThan(1.02);
  });

  test("readMonotonic is the clock process.hrtime.bigint() reads", () => {
    const before = process.hrtime.bigint();
    const mono = clock.readMonotonic();
    const after = process.hrtime.bigint();
    expect(mono).toBeGreaterThanOrEqual(before);
    expect(mono).toBeLessThanOrEqual(after);
  });

  test("sleep offset is >= -1 ms, stable without a suspend, and equals boottime - monotonic", () => {
    const a = clock.readSleepOffset();
    const boot = clock.readBoottime();
    const mono = clock.readMonotonic();
    const b = clock.readSleepOffset();
    expect(a).toBeGreaterThanOrEqual(-MS);
    const drift = b > a ? b - a : a - b;
    expect(drift).toBeLessThan(MS);
    const composed = boot - mono;
    expect(composed > a ? composed - a : a - composed).toBeLessThan(MS);
  });

  test("resolutionNs reports each clock's resolution and rejects unknown names", () => {
    for (const name of ["raw", "boottime", "monotonic"] as const) {
      const ns = clock.resolutionNs(name);
      expect(ns, name).toBeGreaterThan(0n);
      expect(ns, name).toBeLessThanOrEqual(MS);
    }
    expect(() => clock.resolutionNs("realtime" as "raw")).toThrow(TypeError);
    expect(() => (clock.resolutionNs as (n: unknown) => bigint)(1)).toThrow(TypeError);
  });
});

describe("the bound cell", () => {
  test("fill before any bindCell writes nothing and does not crash", () => {
    // A fresh process: this file's other tests bind the module's one cell.
    const script = `
      const c = require(${JSON.stringify(fileURLToPath(new URL("../build/lease_clock.node", import.meta.url)))});
      const out = [c.fillRawSleep(), c.fillRaw(), c.fillBoottime(), c.fillMonotonic()];
      process.stdout.write(JSON.stringify(out.map((v) => typeof v)));`;
    const run = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(["undefined", "undefined", "undefined", "undefined"]);
  });

  test("fillRawSleep writes raw at +0 and the sleep offset at +8, and nothing else", () => {
    const { buffer, words } = sentinelBuffer(64);
    clock.bindCell(buffer, 16);
    const before = clock.readRaw();
    expect(clock.fillRawSleep()).toBeUndefined();
    const after = clock.readRaw();
    expect(words[2]).toBeGreaterThanOrEqual(before);
    expect(words[2]).toBeLessThanOrEqual(after);
    const offset = clock.readSleepOffset();
    expect(words[3]! > offset ? words[3]! - offset : offset - words[3]!).toBeLessThan(MS);
    for (const i of [0, 1, 4, 5, 6, 7]) expect(words[i], `word ${i}`).toBe(-0x5a5a5a5a5a5a5a5an);
  });

  test("fillRawSleep is monotone across calls", () => {
    const { buffer, words } = sentinelBuffer(16);
    clock.bindCell(buffer, 0);
    clock.fillRawSleep();
    let prev = words[0]!;
    expect(prev).toBeGreaterThan(0n);
    for (let i = 0; i < 200_000; i++) {
      clock.fillRawSleep();
      const now = words[0]!;
      if (now < prev) expect.fail(`cell went backwards at call ${i}: ${prev} -> ${now}`);
      prev = now;
    }
  });

  test("fillRaw, fillBoottime and fillMonotonic write their clock at +0 and 0 at +8", () => {
    const { buffer, words } = sentinelBuffer(32);
    clock.bindCell(buffer, 8);
    const cases: Array<[string, () => void, () => bigint]> = [
      ["raw", () => clock.fillRaw(), () => clock.readRaw()],
      ["boottime", () => clock.fillBoottime(), () => clock.readBoottime()],
      ["monotonic", () => clock.fillMonotonic(), () => clock.readMonotonic()],
    ];
    for (const [name, fill, read] of cases) {
      words[2] = 7n;
      const before = read();
      fill();
      const after = read();
      expect(words[1], name).toBeGreaterThanOrEqual(before);
      expect(words[1], name).toBeLessThanOrEqual(after);
      expect(words[2], name).toBe(0n);
    }
    expect(words[0]).toBe(-0x5a5a5a5a5a5a5a5an);
    expect(words[3]).toBe(-0x5a5a5a5a5a5a5a5an);
  });

  test("bindCell rejects bad buffers and offsets, and keeps the previous binding", () => {
    const { buffer, words } = sentinelBuffer(32);
    clock.bindCell(buffer, 0);
    const bind = clock.bindCell as (buffer?: unknown, byteOffset?: unknown) => void;
    expect(() => bind(buffer, 4)).toThrow(RangeError);
    expect(() => bind(buffer, 17)).toThrow(RangeError);
    expect(() => bind(buffer, 24)).toThrow(RangeError);
    expect(() => bind(buffer, 32)).toThrow(RangeError);
    expect(() => bind(new ArrayBuffer(8), 0)).toThrow(RangeError);
    expect(() => bind(buffer, -8)).toThrow(TypeError);
    expect(() => bind(buffer, 1.5)).toThrow(TypeError);
    expect(() => bind(buffer, Number.NaN)).toThrow(TypeError);
    expect(() => bind(buffer, "0")).toThrow(TypeError);
    expect(() => bind(buffer)).toThrow(TypeError);
    expect(() => bind(new BigInt64Array(4), 0)).toThrow(TypeError);
    expect(() => bind(new SharedArrayBuffer(32), 0)).toThrow(TypeError);
    expect(() => bind({ byteLength: 32 }, 0)).toThrow(TypeError);
    expect(() => bind(buffer, 16)).not.toThrow();
    clock.bindCell(buffer, 0);
    clock.fillRaw();
    expect(words[0]).toBeGreaterThan(0n);
    expect(words[2]).toBe(-0x5a5a5a5a5a5a5a5an);
  });

  test("a cell in a WebAssembly.Memory, filled by a wasm import, is what the module reads", () => {
    // The core's path: wasm calls the fill function as its clock import, then loads the cell.
    // (module
    //   (import "e" "m" (memory 1))
    //   (import "e" "fill" (func $fill (param i32)))
    //   (func (export "load") (param i32) (result i64) local.get 0 i64.load)
    //   (func (export "sample") (param i32) (result i64) local.get 0 call $fill local.get 0 i64.load))
    const bytes = new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      0x01, 0x0a, 0x02, 0x60, 0x01, 0x7f, 0x01, 0x7e, 0x60, 0x01, 0x7f, 0x00,
      0x02, 0x11, 0x02, 0x01, 0x65, 0x01, 0x6d, 0x02, 0x00, 0x01, 0x01, 0x65, 0x04, 0x66, 0x69, 0x6c, 0x6c, 0x00, 0x01,
      0x03, 0x03, 0x02, 0x00, 0x00,
      0x07, 0x11, 0x02, 0x04, 0x6c, 0x6f, 0x61, 0x64, 0x00, 0x01, 0x06, 0x73, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x00, 0x02,
      0x0a, 0x15, 0x02,
      0x07, 0x00, 0x20, 0x00, 0x29, 0x03, 0x00, 0x0b,
      0x0b, 0x00, 0x20, 0x00, 0x10, 0x00, 0x20, 0x00, 0x29, 0x03, 0x00, 0x0b,
    ]);
    const memory = new WebAssembly.Memory({ initial: 1 });
    // Passed detached from the module object, as a host passes it: the shim must not need `this`.
    const imports = { e: { m: memory, fill: clock.fillRawSleep } };
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
    const load = instance.exports["load"] as (ptr: number) => bigint;
    const sample = instance.exports["sample"] as (ptr: number) => bigint;
    const cellPtr = 65536 - 16;
    clock.bindCell(memory.buffer, cellPtr);
    let prev = 1n;
    for (let i = 0; i < 1000; i++) {
      const before = clock.readRaw();
      const raw = sample(cellPtr);
      expect(raw).toBeGreaterThanOrEqual(before);
      expect(raw).toBeGreaterThanOrEqual(prev);
      expect(raw).toBeLessThanOrEqual(clock.readRaw());
      // The second word is the sleep offset, checked against an independent read of it (not
      // against a JS view of the same bytes, which garbage there would pass as well).
      const offset = clock.readSleepOffset();
      const seen = load(cellPtr + 8);
      expect(seen > offset ? seen - offset : offset - seen).toBeLessThan(MS);
      prev = raw;
    }
    expect(load(cellPtr - 8)).toBe(0n);
  });

  test("the bound buffer is kept alive when JS drops it", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const collected = new Set<string>();
    const registry = new FinalizationRegistry<string>((name) => collected.add(name));
    (() => {
      const bound = new ArrayBuffer(16);
      clock.bindCell(bound, 0);
      registry.register(bound, "bound");
      // The control proves this GC does collect a dropped buffer.
      registry.register(new ArrayBuffer(16), "control");
    })();
    for (let i = 0; i < 50 && !collected.has("control"); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(collected.has("control")).toBe(true);
    expect(collected.has("bound")).toBe(false);
    clock.fillRawSleep();
  });
});

describe("loadNativeClock", () => {
  test("finds the shim from the source tree", () => {
    const loaded = loadNativeClock();
    expect(loaded.clock).not.toBeNull();
  });

  test("LEASE_CORE_NO_NATIVE=1 forces the fallback, checked at call time", () => {
    vi.stubEnv("LEASE_CORE_NO_NATIVE", "1");
    const loaded = loadNativeClock();
    expect(loaded.clock).toBeNull();
    expect("error" in loaded && loaded.error).toMatch(/LEASE_CORE_NO_NATIVE/);
    vi.unstubAllEnvs();
    expect(loadNativeClock().clock).not.toBeNull();
  });
});
