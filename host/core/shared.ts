/**
 * Leases shared across threads: a lease table in a shared `WebAssembly.Memory`, created on one
 * thread and attached from others (worker_threads, Deno/Bun/Web Workers) by passing the memory.
 * Readers do one atomic load and never block; writers may race from any thread and keep every
 * guarantee of contract §2 (docs/shared-lease.md, model-checked in spec/shared-lease.pml).
 *
 * Each thread instantiates `lease-core.shared.wasm` over the same memory and reads the clock of
 * its own `LeaseCore`. Every thread must read the same clock with the same zero
 * (docs/shared-lease.md §6):
 *   Z1. the table records its creator's clock identity and refuses to attach a core whose clock
 *       is not proven to be the same: another process-wide clock, or a custom `ClockSource`
 *       other than the creator's own object (SharedTableClockError); clocks whose origin is
 *       per thread (`performance.now`) are refused at creation;
 *   Z2. the table records its creator's zero (the sleep-offset baseline the core primed:
 *       assembly/instant.ts), and every thread translates its instants into the creator's frame
 *       by the exact difference of the two zeros, so a core created after a suspend reads the
 *       same instant as one created before it;
 *   Z3. the table keeps a high-water mark, the latest instant any attached core handed out
 *       (each core feeds it through its clockInstant hook, at least once per ms of its clock,
 *       whatever read it: core.now(), a reader, Lease.valid): a thread whose table sample falls
 *       more than 1 ms below it saw the clock step back although its own core never read past
 *       it (a core created after the step, or idle), and raises the fault floor to the mark;
 *   Z4. the table keeps a fault floor, the largest instant any attached core had handed out when
 *       it saw a clock fault: the core's clockFault hook raises it synchronously (before that
 *       core hands out anything after the fault), a fault seen before attaching is pushed at
 *       attach, and every raise invalidates every lease. No instant at or below it is a reading
 *       (default or explicit nowNs) and no sample at or below it extends (extendFrom); a thread
 *       whose sample falls at or below it tells its own core (clockReportFault: its leases,
 *       trackers and acks before it are retired), and an attaching core takes it too.
 * @module
 */
import type { ClockHooks } from "./abi.js";
import { I64_MAX, checkDuration, checkInstant } from "./checks.js";
import { LeaseCore } from "./core.js";
import { CoreInvariantError, InvalidGenerationError, InvalidOptionError, LeaseCoreError } from "./errors.js";
import {
  SHARED_FAULT_FLOOR_OFFSET, SHARED_HEADER_BYTES, SHARED_SLOT_BYTES, SHARED_SOURCE_BYTES, SHARED_SOURCE_OFFSET, SHARED_TABLE_BASE, SHARED_ZERO_OFFSET,
} from "../generated/constants.js";

/** The memory is not a lease table, or was made for another clock. */
export class SharedTableError extends LeaseCoreError {
  constructor(message: string) {
    super(message, "ERR_LEASE_SHARED_TABLE");
  }
}

/** The core's clock is not proven to be the table's: another clock, or a custom `ClockSource`
 *  other than the creator's own object (threads would disagree on every lease's validity). */
export class SharedTableClockError extends SharedTableError {
  constructor(message: string) {
    super(message);
    (this as { code: string }).code = "ERR_LEASE_SHARED_TABLE_CLOCK"; // its own code; still a SharedTableError
  }
}

/** A lease index outside [0, capacity). */
export class InvalidLeaseIndexError extends LeaseCoreError {
  constructor(index: unknown, capacity: number) {
    super(`lease index must be an integer in [0, ${capacity}), got ${String(index)}`, "ERR_LEASE_INVALID_INDEX");
  }
}

interface SharedExports {
  SHARED_TABLE_BASE: WebAssembly.Global;
  sharedTableBytes(slots: number): number;
  sharedCreate(slots: number, epochNs: bigint): void;
  sharedAttach(): number;
  sharedEpoch(): bigint;
  sharedValid(slot: number, nowNs: bigint): number;
  sharedExpiry(slot: number): bigint;
  sharedGeneration(slot: number): bigint;
  sharedExtend(slot: number, untilNs: bigint, expectedGen: bigint): number;
  sharedInvalidate(slot: number): void;
  sharedInvalidateAll(): void;
  sharedCountValid(first: number, count: number, nowNs: bigint): number;
  sharedLoadHighWater(): void;
  sharedCheckSample(nowNs: bigint): number;
  sharedFirstInvalid(first: number, count: number, nowNs: bigint): number;
  sharedFaultFloor(): bigint;
  sharedRaiseFaultFloor(floorNs: bigint): number;
  sharedPublish(nowNs: bigint): void;
  sharedExtendFrom(slot: number, sampleNs: bigint, leaseDurationNs: bigint, expectedGen: bigint): number;
}

const PAGE_BYTES = 65536;
const MAX_PAGES = 16384; // the build's --maximumMemory
// The header layout is the shared module's (assembly/shared.ts, generated constants):
// [SOURCE_OFFSET, +SOURCE_BYTES) the creator's clock identity, UTF-8, 0-padded; ZERO_OFFSET the
// creator's clock zero (Z2, i64); FAULT_FLOOR_OFFSET the fault floor (Z4, i64, atomic).
const HEADER_BYTES = SHARED_HEADER_BYTES;
const SOURCE_OFFSET = SHARED_SOURCE_OFFSET;
const SOURCE_BYTES = SHARED_SOURCE_BYTES;
const ZERO_OFFSET = SHARED_ZERO_OFFSET;
const FAULT_FLOOR_OFFSET = SHARED_FAULT_FLOOR_OFFSET;
// +72 i64, atomic: the high-water mark (Z3), kept by the shared module (sharedLoadHighWater,
// sharedCheckSample: wasm atomics, no BigInt per read). Its 1 ms slack, the core's suspend
// tolerance, is far above the few ns by which two cores' zeros can differ (each is the largest
// of a few offset readings).
const PER_THREAD_ORIGIN = /^performance\.now/;

async function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<SharedExports> {
  const imports = {
    env: {
      memory,
      abort(_message: number, _file: number, line: number, column: number): never {
        throw new CoreInvariantError(`shared lease table assert at ${line}:${column}`);
      },
    },
  };
  return (await WebAssembly.instantiate(module, imports)).exports as unknown as SharedExports;
}

/** Every entry point takes a core of this realm's lease-core (not a look-alike): typed, not a TypeError. */
function checkCore(core: unknown): asserts core is LeaseCore {
  if (!(core instanceof LeaseCore)) throw new InvalidOptionError("core", "a LeaseCore (createLeaseCore())", core);
}

/** Z1: what the table records of a core's clock (the old per-source name under the negative control). */
function identityOf(core: LeaseCore): string {
  return __UNSAFE_SHARED_TABLE_PER_CORE_ZERO__ ? core.clock.source : core.clockIdentity;
}

function sourceBytes(source: string): Uint8Array {
  const bytes = new Uint8Array(SOURCE_BYTES);
  bytes.set(new TextEncoder().encode(source).subarray(0, SOURCE_BYTES));
  return bytes;
}

/** A table of leases in shared memory, as one thread sees it. */
export class SharedLeaseTable {
  /** The shared memory: pass it to another thread and `attachSharedLeaseTable` there. */
  readonly memory: WebAssembly.Memory;
  /** How many leases the table holds (indexes 0 .. capacity-1). */
  readonly capacity: number;
  /** The instant expiries are counted from, in ns; expiries are kept on a 4096 ns grid after it. */
  readonly epochNs: bigint;
  readonly #core: LeaseCore;
  readonly #ex: SharedExports;
  readonly #leases: SharedLease[] = [];
  /** @internal Z2: this thread's zero less the table's; a table instant is a core instant plus it. */
  readonly deltaNs: bigint;
  #poisoned = false;

  /** @internal Use `createSharedLeaseTable` / `attachSharedLeaseTable`. */
  constructor(core: LeaseCore, exports: SharedExports, memory: WebAssembly.Memory, capacity: number, deltaNs: bigint) {
    this.#core = core;
    this.#ex = exports;
    this.memory = memory;
    this.capacity = capacity;
    this.deltaNs = deltaNs;
    this.epochNs = exports.sharedEpoch() - deltaNs;
  }

  /** @internal One fresh reading of this thread's clock, in the table's frame (Z2); 0n for no
   *  reading. A reading at or below the table's fault floor (Z4) is none; a step back seen through
   *  the high-water mark (Z3) raises the floor (every shared lease invalidated) first. Either
   *  way this thread's core learns of the fault it did not see. */
  sample(): bigint {
    // The mark is loaded BEFORE the clock is read: every instant in it was read before this
    // reading, so on one monotone clock this reading cannot be smaller, bar the zeros' noise.
    this.#ex.sharedLoadHighWater();
    const coreNs = this.#core.now();
    if (coreNs === 0n || this.#poisoned) return 0n;
    const nowNs = this.toTable(coreNs);
    if (nowNs === 0n) return 0n;
    if (__UNSAFE_SHARED_TABLE_PER_CORE_ZERO__) return nowNs; // negative control: the table as before Z2-Z4
    if (this.#ex.sharedCheckSample(nowNs) !== 0) return nowNs;
    // Z3/Z4: the clock is at or below an instant some thread handed out before a fault (every
    // shared lease was invalidated when the floor rose). It is this thread's clock too: its core
    // retires every lease and ack it holds and refuses readings until they pass the floor, so an
    // engine's ack from before the fault never proves a lease after it.
    this.#tellCore();
    return 0n;
  }

  /** @internal The core this thread's view reads its clock from. */
  get core(): LeaseCore {
    return this.#core;
  }

  /** @internal Z4: the table's fault floor, in this core's frame, becomes the core's (a no-op
   *  when the core's floor is already there). */
  tellCore(): void {
    this.#tellCore();
  }

  #tellCore(): void {
    const floorNs = this.#ex.sharedFaultFloor();
    if (floorNs === 0n) return;
    const coreFloorNs = floorNs - this.deltaNs;
    if (coreFloorNs > 0n) this.#core.exports.clockReportFault(coreFloorNs > I64_MAX ? I64_MAX : coreFloorNs);
  }

  /** @internal The core's clock hooks (LeaseCore.watchClock): its faults raise the table's
   *  floor (Z4), its instants feed the high-water mark (Z3). Never throws (called from inside
   *  the core): a table that cannot be told is poisoned and serves nothing on this thread. */
  readonly hooks: ClockHooks = {
    fault: (floorNs) => {
      try {
        if (!__UNSAFE_SHARED_TABLE_PER_CORE_ZERO__) this.#ex.sharedRaiseFaultFloor(this.toTable(floorNs) || 1n);
      } catch {
        this.#poisoned = true;
      }
    },
    instant: (instantNs) => {
      try {
        if (!__UNSAFE_SHARED_TABLE_PER_CORE_ZERO__) this.#ex.sharedPublish(this.toTable(instantNs));
      } catch {
        this.#poisoned = true;
      }
    },
  };

  /** @internal An instant of this thread's clock in the table's frame (0n stays "no reading"). */
  toTable(ns: bigint): bigint {
    const deltaNs = this.deltaNs;
    if (deltaNs === 0n || ns === 0n) return ns; // the creator's thread, and every core with its zero: no BigInt math
    const t = ns + deltaNs;
    return t <= 0n ? 0n : t > I64_MAX ? I64_MAX : t;
  }

  /** The lease at `index` (the same lease on every thread). */
  lease(index: number): SharedLease {
    if (!Number.isInteger(index) || index < 0 || index >= this.capacity) throw new InvalidLeaseIndexError(index, this.capacity);
    return (this.#leases[index] ??= new SharedLease(this, this.#ex, index));
  }

  /** How many of `count` leases from `first` (default: all) are valid at one instant. */
  countValid(nowNs?: bigint, first = 0, count = this.capacity - first): number {
    this.#range(first, count);
    return this.#ex.sharedCountValid(first, count, nowNs === undefined ? this.sample() : this.toTable(checkInstant(nowNs, "nowNs")));
  }

  /** The first lease of the range not valid at one instant, or -1 when all are (fail closed on it). */
  firstInvalid(nowNs?: bigint, first = 0, count = this.capacity - first): number {
    this.#range(first, count);
    return this.#ex.sharedFirstInvalid(first, count, nowNs === undefined ? this.sample() : this.toTable(checkInstant(nowNs, "nowNs")));
  }

  /** Invalidates every lease of the table. */
  invalidateAll(): void {
    this.#ex.sharedInvalidateAll();
  }

  #range(first: number, count: number): void {
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > this.capacity) {
      throw new InvalidLeaseIndexError(`[${first}, ${first + count})`, this.capacity);
    }
  }
}

/** One lease of a shared table: the `Lease` contract, safe to call from any thread at once. */
export class SharedLease {
  /** The lease's index in its table. */
  readonly index: number;
  readonly #table: SharedLeaseTable;
  readonly #ex: SharedExports;

  /** @internal */
  constructor(table: SharedLeaseTable, exports: SharedExports, index: number) {
    this.#table = table;
    this.#ex = exports;
    this.index = index;
  }

  /** Whether the lease holds at `nowNs` (default: a fresh reading of this thread's clock). One atomic load. */
  valid(nowNs?: bigint): boolean {
    return this.#ex.sharedValid(this.index, nowNs === undefined ? this.#table.sample() : this.#table.toTable(checkInstant(nowNs, "nowNs"))) !== 0;
  }

  /** The invalidation counter: starts at 0, never decreases. */
  generation(): bigint {
    return this.#ex.sharedGeneration(this.index);
  }

  /** The expiry in ns on this thread's clock (0n: none), on the table's 4096 ns grid. */
  expiry(): bigint {
    const expiryNs = this.#ex.sharedExpiry(this.index);
    return expiryNs === 0n ? 0n : expiryNs - this.#table.deltaNs;
  }

  /**
   * Extends to `untilNs` (rounded down to the 4096 ns grid: only ever shorter) iff `expectedGen`
   * is the current generation and that is later than the current expiry. Returns whether it
   * took effect. A stale extender never erases or resurrects a lease, even on an exact tie.
   */
  extend(untilNs: bigint, expectedGen: bigint): boolean {
    checkInstant(untilNs, "untilNs");
    if (typeof expectedGen !== "bigint" || expectedGen < 0n || expectedGen > I64_MAX) throw new InvalidGenerationError("expectedGen", expectedGen);
    return this.#ex.sharedExtend(this.index, this.#table.toTable(untilNs), expectedGen) !== 0;
  }

  /**
   * After a quorum operation that began at `sampleNs` (this thread's clock) under
   * `expectedGen`: `extend(sampleNs + leaseDurationNs, expectedGen)`, except that a sample at or
   * below the table's fault floor never extends (it predates a clock fault some attached core
   * saw: docs/shared-lease.md §6, Z4); nor does a zero sample. Returns whether it took effect.
   */
  extendFrom(sampleNs: bigint, leaseDurationNs: bigint, expectedGen: bigint): boolean {
    checkInstant(sampleNs, "sampleNs");
    checkDuration(leaseDurationNs, "leaseDurationNs");
    if (typeof expectedGen !== "bigint" || expectedGen < 0n || expectedGen > I64_MAX) throw new InvalidGenerationError("expectedGen", expectedGen);
    return this.#ex.sharedExtendFrom(this.index, this.#table.toTable(sampleNs), leaseDurationNs, expectedGen) !== 0;
  }

  /** Clears the expiry and bumps the generation in one atomic step. Never blocks. */
  invalidate(): void {
    this.#ex.sharedInvalidate(this.index);
  }
}

/** Options of `createSharedLeaseTable`. */
export interface SharedLeaseTableOptions {
  /** How many leases (default 1024; 16 bytes each). */
  capacity?: number;
}

/**
 * The shared-table API of one runtime host, given how that host loads
 * `lease-core.shared.wasm` (the host caches it per process).
 */
export function sharedTableApi(module: () => Promise<WebAssembly.Module>) {
  /** Creates a table on this thread, on `core`'s clock. Pass `table.memory` to other threads. */
  async function createSharedLeaseTable(core: LeaseCore, options: SharedLeaseTableOptions = {}): Promise<SharedLeaseTable> {
    checkCore(core);
    if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
    const capacity = options.capacity ?? 1024;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 24) {
      throw new InvalidOptionError("capacity", "an integer in [1, 2^24]", capacity);
    }
    if (PER_THREAD_ORIGIN.test(core.clock.source)) {
      throw new SharedTableError(`${core.clock.source} has a per-thread origin: threads would disagree on every instant`);
    }
    const epochNs = core.now();
    if (epochNs === 0n) throw new SharedTableError("the clock gives no reading: cannot fix the table's epoch");
    const mod = await module();
    const bytes = SHARED_TABLE_BASE + HEADER_BYTES + capacity * SHARED_SLOT_BYTES;
    const pages = Math.ceil(bytes / PAGE_BYTES);
    if (pages > MAX_PAGES) throw new InvalidOptionError("capacity", "small enough for 1 GiB", capacity);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const exports = await instantiate(mod, memory);
    exports.sharedCreate(capacity, epochNs);
    const base = Number(exports.SHARED_TABLE_BASE.value);
    new Uint8Array(memory.buffer, base + SOURCE_OFFSET, SOURCE_BYTES).set(sourceBytes(identityOf(core)));
    // Z2: the creator's zero defines the table's frame, written before the memory leaves this
    // thread (sharedCreate started the mark, Z3, at the epoch).
    new BigInt64Array(memory.buffer, base + ZERO_OFFSET, 1)[0] = core.exports.clockOffsetBase();
    // Z4: a fault the creator's core saw before is the table's from the start (nothing to
    // invalidate yet: every lease is empty).
    if (!__UNSAFE_SHARED_TABLE_PER_CORE_ZERO__) new BigInt64Array(memory.buffer, base + FAULT_FLOOR_OFFSET, 1)[0] = core.lastClockFaultNs();
    return watched(new SharedLeaseTable(core, exports, memory, capacity, 0n));
  }

  /** Attaches to a table another thread created, on this thread's `core` (same clock source). */
  async function attachSharedLeaseTable(core: LeaseCore, memory: WebAssembly.Memory): Promise<SharedLeaseTable> {
    checkCore(core);
    if (!(memory instanceof WebAssembly.Memory) || !(typeof SharedArrayBuffer === "function" && memory.buffer instanceof SharedArrayBuffer)) {
      throw new InvalidOptionError("memory", "the shared WebAssembly.Memory of a lease table", memory);
    }
    // The table starts at page 1 (assembly/shared.ts); a smaller memory cannot hold one, and
    // would not link (the module asks for 2 pages).
    const memoryBytes = (memory.buffer as ArrayBufferLike).byteLength;
    if (memoryBytes < PAGE_BYTES + HEADER_BYTES) throw new SharedTableError("this memory holds no lease table (too small)");
    let exports: SharedExports;
    try {
      exports = await instantiate(await module(), memory);
    } catch (err) {
      if (err instanceof WebAssembly.LinkError) throw new SharedTableError(`this memory cannot hold a lease table: ${err.message}`);
      throw err;
    }
    const capacity = exports.sharedAttach();
    if (capacity < 0) throw new SharedTableError("this memory holds no lease table");
    if (SHARED_TABLE_BASE + HEADER_BYTES + capacity * SHARED_SLOT_BYTES > memoryBytes) throw new SharedTableError(`this memory is too small for the ${capacity} leases its header claims`);
    const base = Number(exports.SHARED_TABLE_BASE.value);
    const recorded = new Uint8Array(memory.buffer, base + SOURCE_OFFSET, SOURCE_BYTES);
    const mine = sourceBytes(identityOf(core));
    if (!recorded.every((b, i) => b === mine[i])) {
      const theirs = new TextDecoder().decode(recorded.slice().filter((b) => b !== 0));
      throw new SharedTableClockError(
        `the table runs on ${theirs}, this core on ${identityOf(core)}: one table, one clock` +
          (identityOf(core).startsWith("custom#") ? " (a custom clock is proven the same only as the creator's own ClockSource object, on its thread)" : ""),
      );
    }
    // Z2: the core's zero is fixed by its first reading (priming, or the first sample).
    if (core.now() === 0n) throw new SharedTableError("the clock gives no reading: cannot fix this core's zero");
    const tableZeroNs = new BigInt64Array(memory.buffer, base + ZERO_OFFSET, 1)[0]!;
    const deltaNs = __UNSAFE_SHARED_TABLE_PER_CORE_ZERO__ ? 0n : core.exports.clockOffsetBase() - tableZeroNs;
    return watched(new SharedLeaseTable(core, exports, memory, capacity, deltaNs));
  }

  /** Z3/Z4, synchronously (no await: no reading of this core can fall between): the table hears
   *  of every later fault and instant of the core; a fault the core saw before raises the
   *  table's floor (invalidating every lease); a fault the table knows becomes the core's; the
   *  core's last instant feeds the mark. */
  function watched(table: SharedLeaseTable): SharedLeaseTable {
    const core = table.core;
    core.watchClock(table.hooks);
    if (__UNSAFE_SHARED_TABLE_PER_CORE_ZERO__) return table;
    const coreFloorNs = core.lastClockFaultNs();
    if (coreFloorNs > 0n) table.hooks.fault(coreFloorNs);
    table.tellCore();
    table.hooks.instant(core.exports.clockLastInstant());
    return table;
  }

  return { createSharedLeaseTable, attachSharedLeaseTable };
}
