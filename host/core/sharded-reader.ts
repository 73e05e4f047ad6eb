/**
 * Lease reads over several groups (shards): `ShardedLeaseReader` holds one `LeaseReader` per
 * group (reader.ts), each with its own engine, lease and leader-loss hook, and routes each key to
 * its group. `leaseReadAllGroups` decides every group on one clock sample.
 * @module
 */
import { LeaseReader, askFor, readAt, type CommitResult, type LeaseEngine, type LeaseObserver, type ReaderCore } from "./reader.js";
import { InvalidOptionError, ReaderClosedError, UnknownGroupError, UnroutableKeyError } from "./errors.js";

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
  #closed = false;

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

