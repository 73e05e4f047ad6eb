/**
 * Deno and Bun: build/deno.js or build/bun.js on the host's clocks, one part per process
 * (BENCH_PART, as bench/node.ts). The floors are the same libc `clock_gettime(2)` calls the host
 * makes, through the same FFI (`Deno.dlopen` / `bun:ffi`), into a buffer of their own:
 *
 * - `clock:default`  RAW, BOOTTIME, MONOTONIC: three FFI calls (the raw+sleep policy);
 * - `clock:raw`      one FFI call, CLOCK_MONOTONIC_RAW;
 * - `clock:fallback` performance.now(), the host's fallback, through a custom clock that reads
 *   it exactly as the host's fallback does (the host picks the fallback only when FFI fails, and
 *   this process has FFI);
 * - `core`           the core cases on the default clock.
 * Linux clock ids (<linux/time.h>): MONOTONIC 1, MONOTONIC_RAW 4, BOOTTIME 7.
 * @module
 */
import type { LeaseCore } from "../host/core/core.js";
import { CORE_LEASES, clockCases, coreCases } from "./cases.js";
import { benchParams, emit, runCases, type Case } from "./harness.js";
import type { PeerClockSource } from "./peer.js";

/** The package's build/ directory as a file URL (defined by scripts/bench.mjs when bundling). */
declare const __BUILD__: string;
declare const Deno: any;
declare const Bun: any;

const RAW = 4;
const BOOT = 7;
const MONO = 1;
const isDeno = typeof Deno !== "undefined";
const runtime = isDeno ? "deno" : "bun";
const env = isDeno ? Deno.env.toObject() : process.env;
const part: string = env["BENCH_PART"] ?? "clock:default";

type Gettime = (id: number, ptr: any) => number;
let gettime: Gettime;
let ptrOf: (view: BigInt64Array) => any;
if (isDeno) {
  const lib = Deno.dlopen("libc.so.6", { clock_gettime: { parameters: ["i32", "pointer"], result: "i32" } });
  gettime = lib.symbols.clock_gettime;
  ptrOf = (view) => Deno.UnsafePointer.of(view);
} else {
  const BUN_FFI = "bun:ffi";
  const ffi = await import(BUN_FFI);
  gettime = ffi.dlopen("libc.so.6", { clock_gettime: { args: ["i32", "ptr"], returns: "i32" } }).symbols.clock_gettime;
  ptrOf = (view) => ffi.ptr(view);
}
const lc = (await import(new URL(`${runtime}.js`, __BUILD__).href)) as typeof import("../host/runtime/deno.js");

// Buffers outside the JS heap's moving space (explicit ArrayBuffers), as the hosts use.
const ts = new BigInt64Array(new ArrayBuffer(48));
const pRaw = ptrOf(ts);
const pBoot = ptrOf(ts.subarray(2));
const pMono = ptrOf(ts.subarray(4));
const NS = 1_000_000_000n;

/** The idiomatic TS read of a timespec: BigInt math on the BigInt64Array words. */
const peerRaw: PeerClockSource["readRaw"] = () => (gettime(RAW, pRaw) === 0 ? ts[0]! * NS + ts[1]! : 0n);
const peerOffset = () => (gettime(BOOT, pBoot), gettime(MONO, pMono), (ts[2]! - ts[4]!) * NS + (ts[3]! - ts[5]!));
const perfNs = () => BigInt(Math.round(performance.now() * 1e6));

async function ffiCore(policy: "raw+sleep" | "raw", maxLeases?: number): Promise<LeaseCore> {
  const core = await lc.createLeaseCore(maxLeases === undefined ? { clockPolicy: policy } : { clockPolicy: policy, maxLeases });
  if (!core.clock.source.startsWith("CLOCK_MONOTONIC_RAW")) throw new Error(`${runtime}: no FFI clock (${core.clock.source})`);
  return core;
}

let cases: Case[];
if (part === "clock:default") {
  cases = clockCases({
    key: "default",
    floorLabel: "3 × FFI clock_gettime (RAW, BOOTTIME, MONOTONIC)",
    floor: () => gettime(RAW, pRaw) + gettime(BOOT, pBoot) + gettime(MONO, pMono),
    core: await ffiCore("raw+sleep"),
    peers: [{ id: "default", label: "3 × FFI clock_gettime, BigInt math, clock rules in TS", source: { readRaw: peerRaw, readSleepOffset: peerOffset } }],
  });
} else if (part === "clock:raw") {
  cases = clockCases({
    key: "raw",
    floorLabel: "1 × FFI clock_gettime(CLOCK_MONOTONIC_RAW)",
    floor: () => gettime(RAW, pRaw),
    core: await ffiCore("raw"),
    peers: [{ id: "raw", label: "FFI clock_gettime(RAW), BigInt math", source: { readRaw: peerRaw } }],
  });
} else if (part === "clock:fallback") {
  cases = clockCases({
    key: "fallback",
    floorLabel: "performance.now()",
    floor: () => performance.now(),
    core: await lc.createLeaseCore({ clock: { now: perfNs, info: { source: "performance.now" } } }),
    peers: [{ id: "fallback", label: "BigInt(Math.round(performance.now() * 1e6))", source: { readRaw: perfNs } }],
  });
} else if (part === "core") {
  cases = coreCases(await ffiCore("raw+sleep", CORE_LEASES));
} else {
  throw new Error(`unknown BENCH_PART ${part}`);
}

const { rounds, minCpuMs } = benchParams(env);
const version = isDeno ? Deno.version.deno : Bun.version;
emit({ runtime, version, results: await runCases(cases, rounds, minCpuMs), extra: { part, engine: isDeno ? `V8 ${Deno.version.v8}` : `JavaScriptCore (Bun ${Bun.revision?.slice(0, 8) ?? ""})` } });
if (isDeno) Deno.exit(0);
