/**
 * Deno host. Module: `lease-core.wasm` beside this bundle (build/deno.js), read with
 * `Deno.readFile` (needs `--allow-read`; `fetch` for a remote URL) and compiled once per process.
 * Clock (contract §1.1): libc `clock_gettime(2)` through `Deno.dlopen` (needs `--allow-ffi`),
 * writing the timespec straight into the core's clock cell; by policy, as on Node:
 *
 * - `raw+sleep` (default): CLOCK_MONOTONIC_RAW, which NTP cannot slew, plus the growth of the
 *   sleep offset CLOCK_BOOTTIME - CLOCK_MONOTONIC, which only grows across a suspend. The offset
 *   is read BOOTTIME first, so preemption between the reads can only shrink it, and the core's
 *   running-maximum baseline never reports a suspend that did not happen.
 * - `boottime`: CLOCK_BOOTTIME, one read, counts suspend, but NTP-slewed.
 * - `raw`: CLOCK_MONOTONIC_RAW alone, one read, blind to suspend.
 *
 * macOS maps these as native/lease_clock.c does: raw = CLOCK_UPTIME_RAW, boottime =
 * CLOCK_MONOTONIC_RAW (which counts sleep there). Without `--allow-ffi` (or on another OS) it
 * reads `performance.now()` (CLOCK_MONOTONIC from process start: slewed, stops in suspend),
 * reports `raw: false, suspendAware: false`, and warns once. It never asks for a permission.
 * @module
 */
import { cachedPerProcess, checkNativeOptions, performanceFallback, PLATFORM_CLOCKS, policySource, type ClockPolicy, type NativeLeaseCoreOptions, type PlatformClocks } from "./common.js";
import { customHostClock, type HostClock } from "../core/clock.js";
import { createCoreWith, type LeaseCore } from "../core/core.js";
import { WasmLoadError } from "../core/errors.js";

export * from "../core/api.js";
export type { ClockPolicy, NativeLeaseCoreOptions } from "./common.js";
import { sharedTableApi } from "../core/shared.js";

/** The parts of the Deno namespace this host uses (the package builds with Node's types). */
interface DenoFfiLibrary {
  symbols: {
    clock_gettime(clockId: number, timespec: unknown): number;
    clock_getres(clockId: number, timespec: unknown): number;
  };
}
declare const Deno: {
  build: { os: string };
  permissions: { querySync(descriptor: { name: "ffi"; path?: string }): { state: "granted" | "denied" | "prompt" } };
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): DenoFfiLibrary;
  UnsafePointer: { of(view: ArrayBufferView): unknown };
  readFile(path: URL): Promise<Uint8Array<ArrayBuffer>>;
};

/** The Deno clock policies; see the module comment. */
export type DenoClockPolicy = ClockPolicy;

/** Options of the Deno host's `createLeaseCore`. */
export type DenoLeaseCoreOptions = NativeLeaseCoreOptions;

const NS_PER_S = 1_000_000_000n;

interface Libc {
  symbols: DenoFfiLibrary["symbols"];
  clocks: PlatformClocks;
}
let libc: Libc | string | undefined; // opened once per process; a string says why not

/** Compiles a module beside this bundle (`--allow-read`; `fetch` for a remote URL). */
async function compileBeside(file: string): Promise<WebAssembly.Module> {
  const url = new URL(`./${file}`, import.meta.url);
  let bytes: Uint8Array<ArrayBuffer> | ArrayBuffer;
  try {
    bytes = url.protocol === "file:" ? await Deno.readFile(url) : await (await fetch(url)).arrayBuffer();
  } catch (err) {
    // Deno's own message names the permission but not why lease-core needs it, nor the other flag.
    const permission = (err as { name?: unknown } | null)?.name === "NotCapable" || (err as { name?: unknown } | null)?.name === "PermissionDenied";
    throw new WasmLoadError(
      url.href,
      permission
        ? `lease-core: reading ${file} needs --allow-read (run: deno run --allow-read --allow-ffi ...; --allow-ffi reads the raw clock)`
        : `lease-core: loading ${url.href} failed (${String(err)})`,
      { cause: err },
    );
  }
  return WebAssembly.compile(bytes);
}

/** The compiled core, cached per process; a failed compile is retried on the next call. */
const compileCore = cachedPerProcess(() => compileBeside("lease-core.wasm"));

/** Leases shared across Web Workers (host/core/shared.ts): create on one, attach on others by memory. */
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
 * Attaches to a table another thread created (Web Workers), on this thread's `core`, which must read
 * the same clock source. @throws SharedTableError when the memory holds no table or another clock's.
 */
export const attachSharedLeaseTable = shared.attachSharedLeaseTable;
export { SharedLeaseTable, SharedLease, SharedTableError, SharedTableClockError, InvalidLeaseIndexError } from "../core/shared.js";

/** libc's clock functions, or why not. Asks `Deno.permissions` first: `dlopen` without the
 *  permission would prompt on a terminal or throw `NotCapable`, and the host must do neither. */
function openLibc(): Libc | string {
  if (libc !== undefined) return libc;
  const clocks = PLATFORM_CLOCKS[Deno.build.os];
  if (clocks === undefined) return (libc = `no clock_gettime binding for ${Deno.build.os}`);
  if (Deno.permissions.querySync({ name: "ffi", path: clocks.library }).state !== "granted") return (libc = "no FFI permission (run with --allow-ffi)");
  try {
    const { symbols } = Deno.dlopen(clocks.library, {
      clock_gettime: { parameters: ["i32", "pointer"], result: "i32" },
      clock_getres: { parameters: ["i32", "pointer"], result: "i32" },
    });
    return (libc = { symbols, clocks });
  } catch (err) {
    return (libc = `Deno.dlopen(${clocks.library}) failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }
}

function ffiHostClock({ symbols, clocks }: Libc, policy: DenoClockPolicy): HostClock {
  const first = policy === "boottime" ? clocks.boottime : clocks.raw;
  const withOffset = policy === "raw+sleep";
  // Memory outside the V8 heap (an explicit ArrayBuffer), so the pointer cannot move.
  const timespec = new BigInt64Array(new ArrayBuffer(16));
  const resolutionNs = symbols.clock_getres(first, Deno.UnsafePointer.of(timespec)) === 0 ? timespec[0]! * NS_PER_S + timespec[1]! : 0n;
  const source = policySource(clocks, policy);
  return {
    info: { source, raw: policy !== "boottime", suspendAware: policy !== "raw", resolutionNs, mayFreeze: false },
    primeReadings: withOffset ? 5 : 0,
    bind(memory, byteOffset) {
      // The core never grows its memory after init (assembly/index.ts), so this pointer into it
      // stays valid for the life of the core (docs/runtime-notes.md trap 7). A 16-byte timespec
      // {tv_sec, tv_nsec} fits the cell exactly: libc writes it there, and it becomes ns in place.
      // BigInt math on a BigInt64Array element compiles to plain i64 ops in V8 (no allocation):
      // measured ~56 ns per raw+sleep fill (three ~20 ns reads) against ~79 ns in Number words.
      const cell = new BigInt64Array(memory.buffer, byteOffset, 2);
      const cellPtr = Deno.UnsafePointer.of(cell);
      const gettime = symbols.clock_gettime;
      if (!withOffset) {
        return () => {
          if (gettime(first, cellPtr) !== 0) {
            cell[0] = 0n;
          } else {
            cell[0] = cell[0]! * NS_PER_S + cell[1]!;
          }
          cell[1] = 0n;
        };
      }
      const offset = new BigInt64Array(new ArrayBuffer(32)); // BOOTTIME's timespec, then MONOTONIC's
      const bootPtr = Deno.UnsafePointer.of(offset);
      const monoPtr = Deno.UnsafePointer.of(offset.subarray(2));
      return () => {
        if (gettime(first, cellPtr) !== 0 || gettime(clocks.boottime, bootPtr) !== 0 || gettime(clocks.monotonic, monoPtr) !== 0) {
          cell[0] = 0n;
          cell[1] = 0n;
          return;
        }
        cell[0] = cell[0]! * NS_PER_S + cell[1]!;
        cell[1] = (offset[0]! - offset[2]!) * NS_PER_S + (offset[1]! - offset[3]!);
      };
    },
  };
}

/**
 * Loads a lease core on Deno. Retryable: a failure leaves nothing cached but the error.
 * @throws InvalidOptionError for an unknown `clockPolicy` or bad sizes.
 */
export async function createLeaseCore(options: DenoLeaseCoreOptions = {}): Promise<LeaseCore> {
  const policy = checkNativeOptions(options);
  let clock: HostClock;
  if (options.clock !== undefined) {
    clock = customHostClock(options.clock);
  } else {
    const lib = openLibc();
    clock = typeof lib === "string" ? performanceFallback(lib) : ffiHostClock(lib, policy);
  }
  return createCoreWith(await compileCore(), clock, options);
}
