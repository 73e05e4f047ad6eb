/**
 * Bun host. Module: `lease-core.wasm` beside this bundle (build/bun.js), read with node:fs and
 * compiled once per process. Clock (contract §1.1): libc `clock_gettime(2)` through `bun:ffi`,
 * writing the timespec straight into the core's clock cell; by policy, as on Node:
 *
 * - `raw+sleep` (default): CLOCK_MONOTONIC_RAW, which NTP cannot slew, plus the growth of the
 *   sleep offset CLOCK_BOOTTIME - CLOCK_MONOTONIC, which only grows across a suspend. The offset
 *   is read BOOTTIME first, so preemption between the reads can only shrink it, and the core's
 *   running-maximum baseline never reports a suspend that did not happen.
 * - `boottime`: CLOCK_BOOTTIME, one read, counts suspend, but NTP-slewed.
 * - `raw`: CLOCK_MONOTONIC_RAW alone, one read, blind to suspend.
 *
 * Why `bun:ffi` and not the N-API shim Node uses: measured here (Bun 1.4.4), a raw+sleep fill
 * costs ~70 ns through `bun:ffi` (three ~19 ns calls plus Number math) against ~87 ns through
 * N-API, and a raw fill ~30 ns against ~53 ns. macOS maps the clocks as native/lease_clock.c does. If `bun:ffi` or
 * libc cannot be loaded it reads `performance.now()` (CLOCK_MONOTONIC from process start:
 * slewed, stops in suspend), reports `raw: false, suspendAware: false`, and warns once.
 * @module
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { cachedPerProcess, checkNativeOptions, performanceFallback, PLATFORM_CLOCKS, policySource, type ClockPolicy, type NativeLeaseCoreOptions, type PlatformClocks } from "./common.js";
import { createCoreWith, customHostClock, type HostClock, type LeaseCore } from "./core.js";

export * from "./api.js";
export type { ClockPolicy, NativeLeaseCoreOptions } from "./common.js";
import { sharedTableApi } from "./shared.js";

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
const TWO23 = 8_388_608;
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

/** Leases shared across workers (host/shared.ts): create on one thread, attach on others by memory. */
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
export { SharedLeaseTable, SharedLease, SharedTableError, InvalidLeaseIndexError } from "./shared.js";

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

/**
 * Stores `sec * 1e9 + nsec` as a little-endian i64 into words `w[i]`, `w[i + 1]`, in Number math
 * (JSC's BigInt arithmetic costs ~110 ns more per fill; runtimes.md). A store into a Uint32Array
 * wraps mod 2^32, so `w[i] = n` is the low word of any integer n, negative ones included.
 * - |sec| < 9e6 (104 days): n < 2^53 is exact as a Number; the fast path.
 * - otherwise, up to |sec| < 2^53 / 1953125 (146 years): 1e9 = 1953125 * 2^9, so `sec * 1953125`
 *   is split at bit 23 before anything exceeds 2^53 (~14 ns more per fill).
 * |nsec| < 1e9, either sign.
 */
function storeNs(w: Uint32Array, i: number, sec: number, nsec: number): void {
  if (sec < 9e6 && sec > -9e6) {
    const n = sec * 1e9 + nsec;
    w[i] = n;
    w[i + 1] = Math.floor(n / TWO32);
    return;
  }
  const m = sec * 1_953_125;
  const high = Math.floor(m / TWO23);
  const low = (m - high * TWO23) * 512 + nsec;
  w[i] = low;
  w[i + 1] = high + Math.floor(low / TWO32);
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
    bind(memory, byteOffset) {
      // The core never grows its memory after init (assembly/index.ts), so this pointer into it
      // stays valid for the life of the core (runtimes.md trap 7). A 16-byte timespec
      // {tv_sec, tv_nsec} fits the cell exactly: libc writes it there, and it becomes ns in place.
      const cell = new Uint32Array(memory.buffer, byteOffset, 4);
      const cellPtr = ptr(memory.buffer, byteOffset);
      const gettime = symbols.clock_gettime;
      if (!withOffset) {
        return () => {
          if (gettime(first, cellPtr) !== 0) {
            cell.fill(0);
            return;
          }
          storeNs(cell, 0, cell[1]! * TWO32 + cell[0]!, cell[2]!);
          cell[2] = 0;
          cell[3] = 0;
        };
      }
      const offset = new Uint32Array(new ArrayBuffer(32)); // BOOTTIME's timespec, then MONOTONIC's
      const bootPtr = ptr(offset);
      const monoPtr = bootPtr + 16;
      return () => {
        if (gettime(first, cellPtr) !== 0 || gettime(clocks.boottime, bootPtr) !== 0 || gettime(clocks.monotonic, monoPtr) !== 0) {
          cell.fill(0);
          return;
        }
        storeNs(cell, 0, cell[1]! * TWO32 + cell[0]!, cell[2]!);
        storeNs(cell, 2, (offset[1]! - offset[5]!) * TWO32 + (offset[0]! - offset[4]!), offset[2]! - offset[6]!);
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
