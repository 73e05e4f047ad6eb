/**
 * Lease reads over several groups (shards): `ShardedLeaseReader` holds one `LeaseReader` per
 * group (reader.ts), each with its own engine, lease and leader-loss hook, and routes each key to
 * its group. `leaseReadAllGroups` decides every group on one clock sample; `localReadGroups` is
 * its synchronous fast path (one sample, one crossing per RUN_CAPACITY groups).
 * @module
 */
import {
  LeaseReader, appliedIndexOf, askFor, askInto, asksOf, readAt,
  type BatchEntries, type CommitResult, type LeaseEngine, type LeaseObserver, type ReaderCore,
} from "./reader.js";
import { I64_MAX } from "./checks.js";
import { InvalidEngineAnswerError, InvalidOptionError, ReaderClosedError, UnknownGroupError, UnroutableKeyError } from "./errors.js";
import { RUN_CAPACITY, SERVE_LOCAL } from "../generated/constants.js";

/** %TypedArray%.prototype's own getters: an array's real kind and length, whatever its own
 *  properties or prototype chain say (localReadGroups' out array). */
const TYPED_ARRAY_PROTOTYPE = Object.getPrototypeOf(Int8Array.prototype) as object;
const typedArrayName = Object.getOwnPropertyDescriptor(TYPED_ARRAY_PROTOTYPE, Symbol.toStringTag)!.get as (this: unknown) => string | undefined;
const typedArrayLength = Object.getOwnPropertyDescriptor(TYPED_ARRAY_PROTOTYPE, "length")!.get as (this: unknown) => number;
/** Numbers every localReadGroups call (BatchEntries.serial): 1, 2, ... */
let batchSerial = 0;
/** Group ids below this are looked up in an array (the batch's per-group lookup), not the Map. */
const DENSE_IDS = 1 << 20;

/** Options of `createShardedLeaseReader`. */
export interface ShardedLeaseReaderOptions {
  /** The engine of each group, by group id. */
  groups: Map<number, LeaseEngine>;
  /** The group owning a key; `undefined` (or an unknown group) is an error, never a default. */
  route(key: string | Uint8Array): number | undefined;
  /** Hooks told the outcome of every read of every group. */
  observer?: LeaseObserver;
  /** Where the one-time "lease reads disabled" notice of a group goes (default `console.warn`). */
  onWarning?: (message: string) => void;
}

/**
 * Lease reads over several groups (shards): each group has its own engine, lease,
 * invalidation and leader-loss hook; an error in one group never touches another.
 */
export class ShardedLeaseReader {
  readonly #core: ReaderCore;
  readonly #readers = new Map<number, LeaseReader>();
  readonly #groupIds: number[];
  readonly #route: (key: string | Uint8Array) => number | undefined;
  readonly #observer: LeaseObserver | undefined;
  /** The readers by id when every id is an integer in [0, DENSE_IDS), else undefined (the Map). */
  readonly #dense: (LeaseReader | undefined)[] | undefined;
  #closed = false;
  /** localReadGroups calls in progress (>0: a re-entrant call gets entries of its own). */
  #batchDepth = 0;
  #entries: BatchEntries = newEntries(0);
  #batchReaders: LeaseReader[] = [];
  #runInts: Int32Array | undefined;
  #runValues: BigInt64Array | undefined;

  /** @internal Use `core.createShardedLeaseReader(options)`. */
  constructor(core: ReaderCore, options: ShardedLeaseReaderOptions) {
    if (typeof options !== "object" || options === null || !(options.groups instanceof Map)) {
      throw new InvalidOptionError("groups", "a Map<number, LeaseEngine>", options?.groups);
    }
    if (typeof options.route !== "function") throw new InvalidOptionError("route", "a function", options.route);
    this.#core = core;
    this.#route = options.route;
    try {
      for (const [groupId, engine] of options.groups) {
        if (typeof groupId !== "number" || !Number.isInteger(groupId)) throw new UnknownGroupError(groupId);
        this.#readers.set(groupId, new LeaseReader(core, engine, { observer: options.observer, onWarning: options.onWarning }));
      }
    } catch (err) {
      // Nothing half-built survives: each reader made so far is closed and its lease slot given
      // back (attack groups-lease-slots: a refusal kept 15 slots taken).
      for (const reader of this.#readers.values()) {
        reader.close();
        reader.lease.dispose();
      }
      throw err;
    }
    this.#groupIds = [...this.#readers.keys()].sort((a, b) => a - b);
    this.#observer = options.observer;
    const last = this.#groupIds.length === 0 ? -1 : this.#groupIds[this.#groupIds.length - 1]!;
    if (this.#groupIds.length === 0 || (this.#groupIds[0]! >= 0 && last < DENSE_IDS)) {
      // Filled first: a packed array (no holes), so a lookup never walks the prototype chain.
      const dense = new Array<LeaseReader | undefined>(last + 1).fill(undefined);
      for (const [groupId, reader] of this.#readers) dense[groupId] = reader;
      this.#dense = dense;
    }
  }

  /** The reader of one group (its lease is `reader(g).lease`). */
  reader(groupId: number): LeaseReader {
    const reader = this.#readers.get(groupId);
    if (reader === undefined) throw new UnknownGroupError(groupId);
    return reader;
  }

  /** A lease read on one group. */
  leaseReadGroup(groupId: number, signal?: AbortSignal): Promise<bigint> {
    if (this.#closed) return Promise.reject(new ReaderClosedError());
    const reader = this.#readers.get(groupId);
    if (reader === undefined) return Promise.reject(new UnknownGroupError(groupId));
    return reader.leaseRead(signal);
  }

  /** A lease read on the group owning `key`. @throws UnroutableKeyError when no group owns it. */
  leaseReadForKey(key: string | Uint8Array, signal?: AbortSignal): Promise<bigint> {
    if (this.#closed) return Promise.reject(new ReaderClosedError());
    let groupId: number | undefined;
    try {
      groupId = this.#routeKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#readers.get(groupId)!.leaseRead(signal);
  }

  /**
   * Fences every group touched by `keys` (all groups without keys). Every group is decided on
   * one clock sample; the groups that need a linearizable read run them concurrently, and the
   * call fails closed: if any group cannot be fenced it rejects with the error of the first
   * such group (lowest id). Resolves to the fence index per group.
   *
   * Engine answers are reads: an engine's answer must not change what ANOTHER group's engine
   * answers without telling that group's reader (push `reader(g).beginTransfer()`; its
   * leader-loss callback). A group whose reader moved between its ask and its decision is asked
   * again on a fresh sample; an engine changed behind its reader is not seen (docs/guards.md,
   * engine answers are reads).
   */
  async leaseReadAllGroups(keys?: Iterable<string | Uint8Array>, signal?: AbortSignal): Promise<Map<number, bigint>> {
    if (this.#closed) throw new ReaderClosedError();
    let groupIds = this.#groupIds;
    if (keys !== undefined) {
      const touched = new Set<number>();
      for (const key of keys) touched.add(this.#routeKey(key));
      groupIds = [...touched].sort((a, b) => a - b);
    }
    signal?.throwIfAborted();
    // Every group's engine is asked first, then the one sample is taken (see LeaseReader
    // #decide: an end of transfer is never dated before its engine reported it). A group whose
    // answer throws fails as its read would have: the call rejects with the lowest id's error.
    const asked = groupIds.map((g) => {
      try {
        return this.#readers.get(g)![askFor]();
      } catch (err) {
        return { err };
      }
    });
    const nowNs = this.#core.now();
    const pending = groupIds.map((g, i) => {
      const answers = asked[i]!;
      return "err" in answers ? Promise.reject(answers.err) : this.#readers.get(g)![readAt](answers, nowNs, signal);
    });
    const settled = await Promise.allSettled(pending);
    const fences = new Map<number, bigint>();
    for (let i = 0; i < groupIds.length; i++) {
      const outcome = settled[i]!;
      if (outcome.status === "rejected") throw outcome.reason;
      fences.set(groupIds[i]!, outcome.value);
    }
    return fences;
  }

  /**
   * The synchronous batch lease read: `outIndexes[i]` = the applied index of group
   * `groupIds[i]` when its lease serves the read locally, `-1n` when it does not (then nothing
   * is counted and no linearizable read is started for it: call `leaseReadGroup(groupIds[i])`,
   * which decides again on a fresh sample). Returns how many were served.
   *
   * Every group is decided by the core exactly as its `reader(g).localRead()` would be (every
   * guard of docs/guards.md: transfer and re-arm, the clock-fault floor, closed, leader loss,
   * the frozen-clock budget, the term guards) on ONE clock sample, taken after every engine was
   * asked (as leaseReadAllGroups). A group whose reader was asked or moved again between its ask
   * and that sample (an engine's answer calling back into the reader: a read, a dispatch, a
   * transfer pushed, a leader loss, a close, its lease released) is not decided: -1n; so an id
   * that appears more than once is decided at its last entry only. One that moved after the
   * sample, in another served group's `appliedIndex()`, is withdrawn likewise (-1n) before
   * anything is reported. The observer hears `onHit("valid")` per served entry, after every
   * entry was decided and `outIndexes` written.
   *
   * Engine answers are reads: an engine's answer must not change what ANOTHER group's engine
   * answers (start its polled transfer, shorten its lease duration...) without telling that
   * group's reader (`reader(g).beginTransfer()`, its leader-loss callback). The batch re-checks
   * the readers, not the engines: an answer of group A that changes group B's engine answers
   * after B was asked leaves B decided on its earlier answers at the batch's sample
   * (docs/guards.md, engine answers are reads).
   * @throws ReaderClosedError when this reader or one of the groups is closed (a group closed on
   *   its own is found while asking: the groups before it were asked, none decided); UnknownGroupError
   *   for an id that is not a group; InvalidOptionError when `groupIds` is not an array-like of
   *   numbers or `outIndexes` not a BigInt64Array at least as long (its real kind and length;
   *   checked again before it is written: an engine answer may shrink or detach it); the engine's typed error for
   *   a bad answer (InvalidEngineAnswerError, InvalidDurationError...; an applied index beyond
   *   2^63-1 included). On every throw nothing is served, no observer is called and
   *   `outIndexes` is unchanged.
   */
  localReadGroups(groupIds: ArrayLike<number>, outIndexes: BigInt64Array): number {
    if (this.#closed) throw new ReaderClosedError();
    if (typeof groupIds !== "object" || groupIds === null) throw new InvalidOptionError("groupIds", "an array of group ids", groupIds);
    const count: unknown = groupIds.length;
    if (typeof count !== "number" || !Number.isInteger(count) || count < 0 || count > 2 ** 32 - 1) throw new InvalidOptionError("groupIds", "an array of group ids", groupIds);
    // The array's real kind and extent, from the %TypedArray% getters: `instanceof` and
    // `.length` are answered by a prototype or an own property, while `outIndexes.set` writes
    // into the real extent (attack batch-out-length: a bare RangeError after every group was
    // asked and decided).
    if (!(outIndexes instanceof BigInt64Array) || typedArrayName.call(outIndexes) !== "BigInt64Array") throw new InvalidOptionError("outIndexes", "a BigInt64Array", outIndexes);
    const outLength = typedArrayLength.call(outIndexes);
    if (outLength < count) throw new InvalidOptionError("outIndexes", `a BigInt64Array of length >= ${count} (one index per group id)`, `length ${outLength}`);
    // A re-entrant call (from an engine answer, the observer, or a `groupIds` getter) gets
    // entries of its own: the outer call's entries are still in use.
    const outer = this.#batchDepth === 0;
    let entries = this.#entries;
    if (!outer || entries.stamps.length < count) entries = newEntries(outer ? Math.max(count, 2 * entries.stamps.length) : count);
    if (outer) this.#entries = entries;
    const readers = outer ? this.#batchReaders : [];
    // Raised before the id lookup: a `groupIds` element getter is caller code, and a batch it
    // starts must not fill this call's readers scratch (attack batch-nested-lookup: a follower
    // group served at another group's index).
    this.#batchDepth++;
    try {
      // Every id first: nothing is asked before the whole input is known good.
      const dense = this.#dense;
      for (let i = 0; i < count; i++) {
        const groupId = groupIds[i];
        const reader = typeof groupId !== "number" ? undefined : dense !== undefined ? dense[groupId] : this.#readers.get(groupId);
        if (reader === undefined) throw new UnknownGroupError(groupId);
        readers[i] = reader;
      }
      return this.#localReadGroups(readers, count, entries, outIndexes);
    } finally {
      this.#batchDepth--; // the scratch keeps only this reader's own readers: nothing to clear
    }
  }

  #localReadGroups(readers: LeaseReader[], count: number, entries: BatchEntries, outIndexes: BigInt64Array): number {
    const { ints, values, stamps } = entries;
    const core = this.#core;
    // Ask every engine, then take the one sample (LeaseReader #decide: an end of transfer is
    // never dated before its engine reported it, attack reader-wasm-rearm-race).
    entries.serial = ++batchSerial;
    entries.repeated = false;
    const movesBefore = core.readerMoves;
    for (let i = 0; i < count; i++) readers[i]![askInto](entries, i);
    const nowNs = core.now();
    // An entry whose reader moved since its ask (an engine answer re-entered it: attack
    // round3-sharded-reentrant, round4-sharded-dispatch-reentrant; or a lease was released) is
    // withdrawn, not decided on answers older than that move. When the core saw no move but
    // these asks, each of a different reader, no entry moved: no per-entry check. Nothing runs
    // between here and the decisions.
    // A stamp of -1 (re-entered during its own ask) is withdrawn whatever [asksOf] says: a
    // disposed lease's -1 must not match it (attack batch-disposed-reentered: pushed, then
    // disposed in its own answer, the freed or reused slot was decided).
    if (entries.repeated || core.readerMoves !== movesBefore + count) {
      for (let i = 0; i < count; i++) {
        const stamp = stamps[i]!;
        if (stamp < 0 || stamp !== readers[i]![asksOf]()) {
          stamps[i] = -1;
          ints[2 * i] = -1;
          ints[2 * i + 1] = 0;
        }
      }
    }
    // The core decides RUN_CAPACITY entries per crossing, all on `nowNs` (assembly/reader.ts
    // decideRun: decide() per entry). No host code runs between a copy in and its copy out.
    const ex = this.#core.exports;
    let runInts = this.#runInts;
    let runValues = this.#runValues;
    if (runInts === undefined || runValues === undefined || runInts.byteLength === 0) {
      // Views of the core's run area (the memory never grows after init: they stay attached;
      // re-made if it ever did).
      runInts = this.#runInts = new Int32Array(ex.memory.buffer, ex.readerRunInts(), 2 * RUN_CAPACITY);
      runValues = this.#runValues = new BigInt64Array(ex.memory.buffer, ex.readerRunValues(), 5 * RUN_CAPACITY);
    }
    let served = 0;
    for (let first = 0; first < count; first += RUN_CAPACITY) {
      const n = Math.min(RUN_CAPACITY, count - first);
      runInts.set(ints.subarray(2 * first, 2 * (first + n)));
      runValues.set(values.subarray(5 * first, 5 * (first + n)));
      served += ex.readerDecideRun(n, nowNs);
      ints.set(runInts.subarray(0, 2 * n), 2 * first);
    }
    if (served === 0) {
      checkOutExtent(outIndexes, count);
      outIndexes.fill(-1n, 0, count);
      return 0;
    }
    // The applied index of every served entry, checked, before anything is reported (as
    // localRead: a read whose appliedIndex() fails is no hit; here also one beyond i64, which
    // the out array cannot hold), into the entries' first value column, -1n for the others;
    // copied to `outIndexes` only once every one is known good. A withdrawn entry's outcome
    // word is 0: not served.
    served = 0;
    const movesDecided = core.readerMoves;
    for (let i = 0; i < count; i++) {
      if ((ints[2 * i + 1]! & SERVE_LOCAL) === 0) {
        values[i] = -1n;
        continue;
      }
      const index: unknown = readers[i]![appliedIndexOf]();
      if (typeof index !== "bigint" || index < 0n || index > I64_MAX) throw new InvalidEngineAnswerError("appliedIndex", index, "a bigint in [0, 2^63-1]");
      values[i] = index;
      served++;
    }
    // appliedIndex() is caller code: one group's may push a transfer on, deliver a leader loss
    // to, close or release another group's reader (attack batch-after-sample). An entry whose
    // reader moved since its ask is withdrawn before anything is reported, as before the sample
    // (no move but the decisions: no per-entry check).
    if (core.readerMoves !== movesDecided) {
      for (let i = 0; i < count; i++) {
        if ((ints[2 * i + 1]! & SERVE_LOCAL) !== 0 && stamps[i] !== readers[i]![asksOf]()) {
          ints[2 * i + 1] = 0;
          values[i] = -1n;
          served--;
        }
      }
    }
    checkOutExtent(outIndexes, count);
    outIndexes.set(values.subarray(0, count));
    const onHit = this.#observer?.onHit;
    // Last: an observer may call back into this reader (it gets entries of its own).
    if (onHit !== undefined) {
      for (let i = 0; i < count; i++) if ((ints[2 * i + 1]! & SERVE_LOCAL) !== 0) onHit.call(this.#observer, "valid");
    }
    return served;
  }

  /** A write on one group (see LeaseReader.dispatch). */
  dispatch<T extends CommitResult>(groupId: number, commit: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ReaderClosedError());
    const reader = this.#readers.get(groupId);
    if (reader === undefined) return Promise.reject(new UnknownGroupError(groupId));
    return reader.dispatch(commit);
  }

  /** Closes every group's reader. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const reader of this.#readers.values()) reader.close();
  }

  #routeKey(key: string | Uint8Array): number {
    if (typeof key !== "string" && !(key instanceof Uint8Array)) throw new InvalidOptionError("key", "a string or Uint8Array", key);
    const groupId = this.#route(key);
    if (groupId === undefined || !this.#readers.has(groupId)) throw new UnroutableKeyError(key, groupId);
    return groupId;
  }
}

/** The out array still holds `count` indexes at the write: the engines' answers and
 *  appliedIndex() are caller code, which may have shrunk its resizable buffer or detached it
 *  since the entry check (a bare RangeError / TypeError otherwise; attack batch-out-length). */
function checkOutExtent(outIndexes: BigInt64Array, count: number): void {
  const outLength = typedArrayLength.call(outIndexes);
  if (outLength < count) throw new InvalidOptionError("outIndexes", `a BigInt64Array of length >= ${count}, kept so until the call returns (shrunk or detached by an engine answer)`, `length ${outLength}`);
}

/** Scratch entries for a batch of `count` groups (see BatchEntries in reader.ts). */
function newEntries(count: number): BatchEntries {
  return { ints: new Int32Array(2 * count), values: new BigInt64Array(5 * count), stamps: new Float64Array(count), serial: 0, repeated: false };
}
