/**
 * Bun host. Module: `lease-core.wasm` beside this bundle (build/bun.js), read with node:fs and
 * compiled once per process. Clock (contract §1.1): libc `clock_gettime(2)` through `bun:ffi`,
 * writing the timespecs straight into the core's timespec area (the core turns them into ns in
 * wasm); by policy, as on Node:
 *
 * - `raw+sleep` (default): CLOCK_MONOTONIC_RAW, which NTP cannot slew, plus the growth of the
 *   sleep offset CLOCK_BOOTTIME - CLOCK_MONOTONIC, which only grows across a suspend. The offset
 *   is read BOOTTIME first, so preemption between the reads can only shrink it, and the core's
 *   running-maximum baseline never reports a suspend that did not happen.
 * - `boottime`: CLOCK_BOOTTIME, one read, counts suspend, but NTP-slewed.
 * - `raw`: CLOCK_MONOTONIC_RAW alone, one read, blind to suspend.
 *
 * Why `bun:ffi` and not the N-API shim Node uses: measured here (Bun 1.4.4), a raw+sleep fill
 * costs ~55 ns through `bun:ffi` (three ~19 ns calls) against ~87 ns through N-API, and a raw
 * fill ~20 ns against ~53 ns. macOS maps the clocks as native/lease_clock.c does. If `bun:ffi` or
 * libc cannot be loaded it reads `performance.now()` (CLOCK_MONOTONIC from process start:
 * slewed, stops in suspend), reports `raw: false, suspendAware: false`, and warns once.
 * @module
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { cachedPerProcess, checkNativeOptions, performanceFallback, PLATFORM_CLOCKS, policySource, type ClockPolicy, type NativeLeaseCoreOptions, type PlatformClocks } from "./common.js";
import { customHostClock, type HostClock } from "../core/clock.js";
import { createCoreWith, type LeaseCore } from "../core/core.js";

export * from "../core/api.js";
export type { ClockPolicy, NativeLeaseCoreOptions } from "./common.js";
import { sharedTableApi } from "../core/shared.js";

/** The Bun clock policies; see the module comment. */
export type BunClockPolicy = ClockPolicy;

/** Options of the Bun host's `createLeaseCore`. */
export type BunLeaseCoreOptions = NativeLeaseCoreOptions;

/** The parts of `bun:ffi` this host uses (the package builds with Node's types). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: LibcSymbols };
  ptr(view: ArrayBuffer | ArrayBufferView, byteOffset?: number): number;
}
interface LibcSymbols {
  clock_gettime(clockId: number, timespec: number): number;
  clock_getres(clockId: number, timespec: number): number;
}

// A non-literal specifier: Node's types know no `bun:ffi`, and only Bun can load it.
const BUN_FFI: string = "bun:ffi";
const TWO32 = 4_294_967_296;

interface Libc {
  ptr: BunFfi["ptr"];
  symbols: LibcSymbols;
  clocks: PlatformClocks;
}

let libc: Promise<Libc | string> | undefined; // opened once per process; a string says why not

/** Compiles a module beside this bundle in build/. */
async function compileBeside(file: string): Promise<WebAssembly.Module> {
  return WebAssembly.compile(await readFile(fileURLToPath(new URL(`./${file}`, import.meta.url))));
}

/** The compiled core, cached per process; a failed compile is retried on the next call. */
const compileCore = cachedPerProcess(() => compileBeside("lease-core.wasm"));

/** Leases shared across workers (host/core/shared.ts): create on one thread, attach on others by memory. */
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
 * Attaches to a table another thread created (workers), on this thread's `core`, which must read
 * the same clock source. @throws SharedTableError when the memory holds no table or another clock's.
 */
export const attachSharedLeaseTable = shared.attachSharedLeaseTable;
export { SharedLeaseTable, SharedLease, SharedTableError, SharedTableClockError, InvalidLeaseIndexError } from "../core/shared.js";

function openLibc(): Promise<Libc | string> {
  libc ??= (async () => {
    const clocks = PLATFORM_CLOCKS[process.platform];
    if (clocks === undefined) return `no clock_gettime binding for ${process.platform}`;
    try {
      const ffi = (await import(BUN_FFI)) as BunFfi;
      const { symbols } = ffi.dlopen(clocks.library, {
        clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
        clock_getres: { args: ["i32", "ptr"], returns: "i32" },
      });
      return { ptr: ffi.ptr, symbols, clocks };
    } catch (err) {
      return `bun:ffi clock_gettime from ${clocks.library} failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  })();
  return libc;
}

function ffiHostClock({ ptr, symbols, clocks }: Libc, policy: BunClockPolicy): HostClock {
  const first = policy === "boottime" ? clocks.boottime : clocks.raw;
  const withOffset = policy === "raw+sleep";
  // Memory outside the JS heap (an explicit ArrayBuffer), so the pointer cannot move.
  const res = new Uint32Array(new ArrayBuffer(16));
  const resolutionNs = symbols.clock_getres(first, ptr(res)) === 0 ? BigInt(res[1]! * TWO32 + res[0]!) * 1_000_000_000n + BigInt(res[2]!) : 0n;
  const source = policySource(clocks, policy);
  return {
    info: { source, raw: policy !== "boottime", suspendAware: policy !== "raw", resolutionNs, mayFreeze: false },
    primeReadings: withOffset ? 5 : 0,
    // libc writes `struct timespec`s straight into the core's timespec area, and the core turns
    // them into ns inside the same wasm call as the check: no JS arithmetic per reading, where
    // JavaScriptCore's BigInt math would cost ~110 ns and exact Number math ~15 ns.
    timespecs: withOffset ? 3 : 1,
    bind(memory, byteOffset) {
      // The core never grows its memory after init (assembly/index.ts), so these pointers into
      // it stay valid for the life of the core (docs/runtime-notes.md trap 7).
      const area = new Uint32Array(memory.buffer, byteOffset, 12);
      const rawPtr = ptr(memory.buffer, byteOffset);
      const gettime = symbols.clock_gettime;
      if (!withOffset) {
        return () => {
          if (gettime(first, rawPtr) !== 0) area.fill(0, 0, 4); // no reading
        };
      }
      const bootPtr = rawPtr + 16;
      const monoPtr = rawPtr + 32;
      // BOOTTIME before MONOTONIC: a preemption between them can only shrink the offset.
      return () => {
        if (gettime(first, rawPtr) !== 0 || gettime(clocks.boottime, bootPtr) !== 0 || gettime(clocks.monotonic, monoPtr) !== 0) area.fill(0, 0, 4);
      };
    },
  };
}

/**
 * Loads a lease core on Bun. Retryable: a failure leaves nothing cached but the error.
 * @throws InvalidOptionError for an unknown `clockPolicy` or bad sizes.
 */
export async function createLeaseCore(options: BunLeaseCoreOptions = {}): Promise<LeaseCore> {
  const policy = checkNativeOptions(options);
  let clock: HostClock;
  if (options.clock !== undefined) {
    clock = customHostClock(options.clock);
  } else {
    const lib = await openLibc();
    clock = typeof lib === "string" ? performanceFallback(lib) : ffiHostClock(lib, policy);
  }
  return createCoreWith(await compileCore(), clock, options);
}
