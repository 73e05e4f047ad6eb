/**
 * Leases shared across threads: a lease table in a shared `WebAssembly.Memory`, created on one
 * thread and attached from others (worker_threads, Deno/Bun/Web Workers) by passing the memory.
 * Readers do one atomic load and never block; writers may race from any thread and keep every
 * guarantee of contract §2 (docs/shared-lease.md, model-checked in spec/shared-lease.pml).
 *
 * Each thread instantiates `lease-core.shared.wasm` over the same memory and reads the clock of
 * its own `LeaseCore`. Every thread must read the same clock with the same origin: the table
 * records the creator's clock source and refuses to attach a core on another, and refuses
 * clocks whose origin is per thread (`performance.now`).
 * @module
 */
import { I64_MAX, checkInstant, type LeaseCore } from "./core.js";
import { CoreInvariantError, InvalidGenerationError, InvalidOptionError, LeaseCoreError } from "./errors.js";

/** The memory is not a lease table, or was made for another clock. */
export class SharedTableError extends LeaseCoreError {
  constructor(message: string) {
    super(message, "ERR_LEASE_SHARED_TABLE");
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
  sharedFirstInvalid(first: number, count: number, nowNs: bigint): number;
}

const PAGE_BYTES = 65536;
const MAX_PAGES = 16384; // the build's --maximumMemory
const SOURCE_OFFSET = 24; // header bytes [24, 64): the creator's clock source, UTF-8, 0-padded
const SOURCE_BYTES = 40;
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
  #faults: number;

  /** @internal Use `createSharedLeaseTable` / `attachSharedLeaseTable`. */
  constructor(core: LeaseCore, exports: SharedExports, memory: WebAssembly.Memory, capacity: number) {
    this.#core = core;
    this.#ex = exports;
    this.memory = memory;
    this.capacity = capacity;
    this.epochNs = exports.sharedEpoch();
    this.#faults = core.exports.clockFaults();
  }

  /** @internal One fresh reading of this thread's clock; a clock fault seen by this thread's
   *  core (regression, suspend) invalidates every shared lease before anything is checked. */
  sample(): bigint {
    const nowNs = this.#core.now();
    const faults = this.#core.exports.clockFaults();
    if (faults !== this.#faults) {
      this.#faults = faults;
      this.#ex.sharedInvalidateAll();
    }
    return nowNs;
  }

  /** The lease at `index` (the same lease on every thread). */
  lease(index: number): SharedLease {
    if (!Number.isInteger(index) || index < 0 || index >= this.capacity) throw new InvalidLeaseIndexError(index, this.capacity);
    return (this.#leases[index] ??= new SharedLease(this, this.#ex, index));
  }

  /** How many of `count` leases from `first` (default: all) are valid at one instant. */
  countValid(nowNs?: bigint, first = 0, count = this.capacity - first): number {
    this.#range(first, count);
    return this.#ex.sharedCountValid(first, count, nowNs === undefined ? this.sample() : checkInstant(nowNs, "nowNs"));
  }

  /** The first lease of the range not valid at one instant, or -1 when all are (fail closed on it). */
  firstInvalid(nowNs?: bigint, first = 0, count = this.capacity - first): number {
    this.#range(first, count);
    return this.#ex.sharedFirstInvalid(first, count, nowNs === undefined ? this.sample() : checkInstant(nowNs, "nowNs"));
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
    return this.#ex.sharedValid(this.index, nowNs === undefined ? this.#table.sample() : checkInstant(nowNs, "nowNs")) !== 0;
  }

  /** The invalidation counter: starts at 0, never decreases. */
  generation(): bigint {
    return this.#ex.sharedGeneration(this.index);
  }

  /** The expiry in ns (0n: none), on the table's 4096 ns grid. */
  expiry(): bigint {
    return this.#ex.sharedExpiry(this.index);
  }

  /**
   * Extends to `untilNs` (rounded down to the 4096 ns grid: only ever shorter) iff `expectedGen`
   * is the current generation and that is later than the current expiry. Returns whether it
   * took effect. A stale extender never erases or resurrects a lease, even on an exact tie.
   */
  extend(untilNs: bigint, expectedGen: bigint): boolean {
    checkInstant(untilNs, "untilNs");
    if (typeof expectedGen !== "bigint" || expectedGen < 0n || expectedGen > I64_MAX) throw new InvalidGenerationError("expectedGen", expectedGen);
    return this.#ex.sharedExtend(this.index, untilNs, expectedGen) !== 0;
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
    const bytes = 65536 + 64 + capacity * 16;
    const pages = Math.ceil(bytes / PAGE_BYTES);
    if (pages > MAX_PAGES) throw new InvalidOptionError("capacity", "small enough for 1 GiB", capacity);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const exports = await instantiate(mod, memory);
    exports.sharedCreate(capacity, epochNs);
    new Uint8Array(memory.buffer, Number(exports.SHARED_TABLE_BASE.value) + SOURCE_OFFSET, SOURCE_BYTES).set(sourceBytes(core.clock.source));
    return new SharedLeaseTable(core, exports, memory, capacity);
  }

  /** Attaches to a table another thread created, on this thread's `core` (same clock source). */
  async function attachSharedLeaseTable(core: LeaseCore, memory: WebAssembly.Memory): Promise<SharedLeaseTable> {
    if (!(memory instanceof WebAssembly.Memory) || !(typeof SharedArrayBuffer === "function" && memory.buffer instanceof SharedArrayBuffer)) {
      throw new InvalidOptionError("memory", "the shared WebAssembly.Memory of a lease table", memory);
    }
    const exports = await instantiate(await module(), memory);
    const capacity = exports.sharedAttach();
    if (capacity < 0) throw new SharedTableError("this memory holds no lease table");
    const recorded = new Uint8Array(memory.buffer, Number(exports.SHARED_TABLE_BASE.value) + SOURCE_OFFSET, SOURCE_BYTES);
    const mine = sourceBytes(core.clock.source);
    if (!recorded.every((b, i) => b === mine[i])) {
      const theirs = new TextDecoder().decode(recorded.slice().filter((b) => b !== 0));
      throw new SharedTableError(`the table runs on ${theirs}, this core on ${core.clock.source}: one table, one clock`);
    }
    return new SharedLeaseTable(core, exports, memory, capacity);
  }

  return { createSharedLeaseTable, attachSharedLeaseTable };
}
