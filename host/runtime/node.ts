/**
 * Node host. Module: `lease-core.wasm` read from the package's build/ with node:fs and compiled
 * once per process. Clock (contract §1.1), by policy:
 *
 * - `raw+sleep` (default): CLOCK_MONOTONIC_RAW, which NTP cannot slew (clock_gettime(2)), plus
 *   the growth of the sleep offset CLOCK_BOOTTIME - CLOCK_MONOTONIC, which only grows across a
 *   suspend. The core adds that growth to the lease clock and, when it jumps, invalidates every
 *   lease. Cost: three vDSO reads per sample (~62 ns here against ~21 ns for one); the offset
 *   is read BOOTTIME first, so preemption between the reads can only shrink it, and a running
 *   maximum baseline never reports a suspend that did not happen.
 * - `boottime`: CLOCK_BOOTTIME, one read, counts suspend, but NTP-slewed.
 * - `raw`: CLOCK_MONOTONIC_RAW alone, one read, blind to suspend (the reference store's choice).
 *
 * Without the N-API shim (not built, or LEASE_CORE_NO_NATIVE=1) it falls back to
 * `process.hrtime.bigint()` (CLOCK_MONOTONIC: slewed, stops in suspend), reports
 * `raw: false, suspendAware: false`, and warns once.
 * @module
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { cachedPerProcess, checkNativeOptions, type ClockPolicy, type NativeLeaseCoreOptions } from "./common.js";
import { customHostClock, jsHostClock, type HostClock } from "../core/clock.js";
import { createCoreWith, type LeaseCore } from "../core/core.js";
import { loadNativeClock, type NativeClock } from "./node-clock.js";
import { sharedTableApi } from "../core/shared.js";

export * from "../core/api.js";
export type { ClockPolicy, NativeLeaseCoreOptions } from "./common.js";

/** The Node clock policies; see the module comment. */
export type NodeClockPolicy = ClockPolicy;

/** Options of the Node host's `createLeaseCore`. */
export type NodeLeaseCoreOptions = NativeLeaseCoreOptions;

let warnedFallback = false;

/** Compiles a module that sits beside this bundle in build/ (or in build/ when run from source, host/runtime/). */
async function compileBeside(file: string): Promise<WebAssembly.Module> {
  let lastError: unknown;
  for (const candidate of [`./${file}`, import.meta.url.endsWith("/host/runtime/node.ts") ? `../../build/${file}` : `../build/${file}`]) {
    try {
      return await WebAssembly.compile(await readFile(fileURLToPath(new URL(candidate, import.meta.url))));
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

/** The compiled core, cached per process; a failed compile is retried on the next call. */
const compileCore = cachedPerProcess(() => compileBeside("lease-core.wasm"));

/** Leases shared across worker_threads (host/core/shared.ts): create on one thread, attach on others. */
const shared = sharedTableApi(cachedPerProcess(() => compileBeside("lease-core.shared.wasm")));
/**
 * Creates a lease table in a shared `WebAssembly.Memory` on `core`'s clock; pass `table.memory`
 * to other threads. Leases are addressed by index (`table.lease(i)`).
 * @example
 * const table = await createSharedLeaseTable(core, { capacity: 64 });
 * new Worker(url, { workerData: { memory: table.memory } });
 * @throws InvalidOptionError for a bad capacity; SharedTableError for a clock with a per-thread origin.
 */
export const createSharedLeaseTable = shared.createSharedLeaseTable;
/**
 * Attaches to a table another thread created (worker_threads), on this thread's `core`, which must read
 * the same clock source. @throws SharedTableError when the memory holds no table or another clock's.
 */
export const attachSharedLeaseTable = shared.attachSharedLeaseTable;
export { SharedLeaseTable, SharedLease, SharedTableError, SharedTableClockError, InvalidLeaseIndexError } from "../core/shared.js";
export type { SharedLeaseTableOptions } from "../core/shared.js";

function nativeHostClock(native: NativeClock, policy: NodeClockPolicy): HostClock {
  // Each core gets a fill function of its own, bound to its own clock cell: the core never grows
  // its memory after init (assembly/index.ts), so the pointer the shim keeps stays valid.
  const bind = (memory: WebAssembly.Memory, byteOffset: number) => native.bindFill(memory.buffer, byteOffset, policy);
  switch (policy) {
    case "raw+sleep":
      return {
        info: { source: "CLOCK_MONOTONIC_RAW+sleep-offset", raw: true, suspendAware: true, resolutionNs: native.resolutionNs("raw"), mayFreeze: false },
        bind,
        primeReadings: 5,
      };
    case "boottime":
      return {
        info: { source: "CLOCK_BOOTTIME", raw: false, suspendAware: true, resolutionNs: native.resolutionNs("boottime"), mayFreeze: false },
        bind,
      };
    case "raw":
      return {
        info: { source: "CLOCK_MONOTONIC_RAW", raw: true, suspendAware: false, resolutionNs: native.resolutionNs("raw"), mayFreeze: false },
        bind,
      };
  }
}

function hrtimeHostClock(): HostClock {
  return jsHostClock(() => process.hrtime.bigint(), {
    source: "process.hrtime.bigint",
    raw: false,
    suspendAware: false,
    resolutionNs: 1n,
    mayFreeze: false,
  });
}

/**
 * Loads a lease core on Node. Retryable: a failure leaves nothing cached but the error.
 * @throws InvalidOptionError for an unknown `clockPolicy` or bad sizes.
 */
export async function createLeaseCore(options: NodeLeaseCoreOptions = {}): Promise<LeaseCore> {
  const policy = checkNativeOptions(options);
  let clock: HostClock;
  if (options.clock !== undefined) {
    clock = customHostClock(options.clock);
  } else {
    const native = loadNativeClock();
    if (native.clock) {
      clock = nativeHostClock(native.clock, policy);
    } else {
      if (!warnedFallback) {
        warnedFallback = true;
        process.emitWarning(`lease-core: native clock unavailable (${native.error}); using process.hrtime.bigint(), which is NTP-slewed and blind to suspend`, { code: "LEASE_CORE_CLOCK_FALLBACK" });
      }
      clock = hrtimeHostClock();
    }
  }
  return createCoreWith(await compileCore(), clock, options);
}
