/**
 * Node: build/node.js on the host's clocks, one part per process (BENCH_PART, set by
 * scripts/bench.mjs), so each process has one core on one clock as an application would:
 *
 * - `clock:default`  CLOCK_MONOTONIC_RAW + sleep offset through the N-API shim (the default);
 * - `clock:raw`      CLOCK_MONOTONIC_RAW alone through the shim;
 * - `clock:fallback` process.hrtime.bigint() (LEASE_CORE_NO_NATIVE=1);
 * - `peer:bigint`    the TS peer on the default clock read with BigInt-returning shim calls;
 * - `core`           valid(now), now(), leaseRead, extend, recordAck, batch, on the default clock;
 * - `sharded`        valid() and the batch lease-read hit per group (bench/sharded.ts), engines of
 *                    GroupEngine's shape; `sharded:object` the same with plain-object engines.
 * @module
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { LeaseCore } from "../host/core/core.js";
import type { NativeClock } from "../host/runtime/node-clock.js";
import { CORE_LEASES, clockCases, coreCases, type ClockUnderTest } from "./cases.js";
import { benchParams, emit, runCases, type Case } from "./harness.js";
import { SHARDED_LEASES, shardedCases } from "./sharded.js";

/** The package's build/ directory as a file URL (defined by scripts/bench.mjs when bundling). */
declare const __BUILD__: string;

const lc = (await import(new URL("node.js", __BUILD__).href)) as typeof import("../host/runtime/node.js");
const native = createRequire(import.meta.url)(fileURLToPath(new URL("lease_clock.node", __BUILD__))) as NativeClock;
const part = process.env["BENCH_PART"] ?? "clock:default";

async function nativeCore(policy: "raw+sleep" | "raw", maxLeases?: number): Promise<LeaseCore> {
  const core = await lc.createLeaseCore(maxLeases === undefined ? { clockPolicy: policy } : { clockPolicy: policy, maxLeases });
  if (!core.clock.source.startsWith("CLOCK_MONOTONIC_RAW")) throw new Error(`no native clock (${core.clock.source}): build/lease_clock.node missing? run node scripts/build.mjs`);
  return core;
}

let cases: Case[];
if (part === "clock:default" || part === "peer:bigint") {
  const core = await nativeCore("raw+sleep");
  // The floor is the very fill the core calls (its own cell); the peer gets a fill of its own,
  // bound to its own 16 bytes, read through a BigInt64Array.
  const peerBuffer = new ArrayBuffer(16);
  const cell = new BigInt64Array(peerBuffer);
  const peerFill = native.bindFill(peerBuffer, 0, "raw+sleep");
  const clock: ClockUnderTest = {
    key: "default",
    floorLabel: "N-API bound fill (RAW + BOOTTIME + MONOTONIC into the cell)",
    floor: core.hostFill,
    core,
    peers:
      part === "clock:default"
        ? [{ id: "default", label: "bound fill + BigInt64Array cell, clock rules in TS", source: { readRaw: () => (peerFill(), cell[0]!), readSleepOffset: () => cell[1]! } }]
        : [{ id: "default.bigint", label: "readRaw() + readSleepOffset() (two BigInt-returning N-API calls)", source: { readRaw: () => native.readRaw(), readSleepOffset: () => native.readSleepOffset() } }],
  };
  cases = clockCases(clock);
  if (part === "peer:bigint") cases = cases.filter((c) => c.id.startsWith("peer."));
} else if (part === "clock:raw") {
  const core = await nativeCore("raw");
  const peerBuffer = new ArrayBuffer(16);
  const cell = new BigInt64Array(peerBuffer);
  const peerFill = native.bindFill(peerBuffer, 0, "raw");
  cases = clockCases({
    key: "raw",
    floorLabel: "N-API bound fill (CLOCK_MONOTONIC_RAW into the cell)",
    floor: core.hostFill,
    core,
    peers: [{ id: "raw", label: "bound fill + BigInt64Array cell", source: { readRaw: () => (peerFill(), cell[0]!) } }],
  });
} else if (part === "clock:fallback") {
  process.env["LEASE_CORE_NO_NATIVE"] = "1";
  process.removeAllListeners("warning"); // the one-time fallback warning is expected here
  const core = await lc.createLeaseCore();
  cases = clockCases({
    key: "fallback",
    floorLabel: "process.hrtime.bigint()",
    floor: () => process.hrtime.bigint(),
    core,
    peers: [{ id: "fallback", label: "process.hrtime.bigint()", source: { readRaw: () => process.hrtime.bigint() } }],
  });
} else if (part === "core") {
  cases = coreCases(await nativeCore("raw+sleep", CORE_LEASES));
} else if (part === "sharded" || part === "sharded:object") {
  cases = shardedCases(await nativeCore("raw+sleep", SHARDED_LEASES), part === "sharded" ? "class" : "object");
} else {
  throw new Error(`unknown BENCH_PART ${part}`);
}

const { rounds, minCpuMs } = benchParams(process.env);
emit({ runtime: "node", version: process.version, results: await runCases(cases, rounds, minCpuMs), extra: { part, v8: process.versions.v8 } });
