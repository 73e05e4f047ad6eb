/**
 * Reading and writing through the lease (contract §4): `LeaseReader` around one engine, and
 * `ShardedLeaseReader` around one engine per group. The decision itself is the wasm core's
 * `decideRead`, on one clock sample taken at entry; this file does the I/O around it.
 * @module
 */
import { READ_ACK_TERM, READ_OWN_TERM, READ_SUSPECT, REASONS, REASON_DISABLED, SERVE_LOCAL, type CoreExports, type Reason } from "./abi.js";
import { checkDuration, checkInstant, checkTerm, type Lease, type LeaseCore } from "./core.js";
import {
  DisposedError,
  InvalidCommitResultError,
  InvalidEngineAnswerError,
  InvalidOptionError,
  NotLeaderError,
  PartialLeaseCapabilityError,
  ReaderClosedError,
  UnknownGroupError,
  UnroutableKeyError,
  isLeadershipLossError,
} from "./errors.js";

/** The role an engine reports. Only `leader` may serve lease reads or commit. */
export type EngineState = "leader" | "follower" | "candidate" | "shutdown" | "unknown";

/**
 * What lease-core needs from a replication engine (a Raft node, an etcd-elected service...).
 * The lease capability is the three optional methods together; an engine without them gets
 * linearizable reads only.
 */
export interface LeaseEngine {
  /** The engine's current role. */
  state(): EngineState;
  /** The index of the last entry applied to local state (the fence a local read returns). */
  appliedIndex(): bigint;
  /** A linearizable read barrier (ReadIndex or equivalent); resolves to the index to read at. */
  linearizableRead(signal?: AbortSignal): Promise<bigint>;
  /** The lease duration in ns; <= 0 disables lease reads (reported once, never silent). */
  leaseDurationNs?(): bigint;
  /** The engine's published quorum-ack instant (0n: none), sampled with `core.now()` of the
   *  core this reader runs on: another core's instants are on another zero and outside this
   *  core's clock-fault record. An ack at or before `core.lastClockFaultNs()` never serves. */
  lastQuorumAck?(): bigint;
  /** Registers a callback run when leadership is lost; returns a deregister function. */
  onLeaderLoss?(callback: () => void): () => void;

  // Guards (docs/guards.md). Each is optional; an engine without it keeps the behaviour above
  // and `reader.guards()` says the guard is off.
  /** The engine's current term. With `appliedTerm`: the own-term guard; with `quorumAckTerm`: the ack-term guard. */
  currentTerm?(): bigint;
  /** The term of the entry at `appliedIndex()`. A leader serves no lease read until it equals `currentTerm()`. */
  appliedTerm?(): bigint;
  /** The term `lastQuorumAck()` was proved in (the term of the acks it counts). Only an ack of the current term serves. */
  quorumAckTerm?(): bigint;
  /** Whether a leadership transfer is in progress (the lease is suspect; `reader.beginTransfer()` is the push form). */
  transferInProgress?(): boolean;
}

/** Which guards a reader applies for its engine (for `doctor` and metrics). */
export interface ActiveGuards {
  /** No lease read before the leader applied an entry of its own term (engine: currentTerm + appliedTerm). */
  ownTerm: boolean;
  /** The engine's quorum ack serves only in the term it was proved in (engine: currentTerm + quorumAckTerm). */
  ackTerm: boolean;
  /** A leadership transfer makes the lease suspect (engine: transferInProgress, or reader.beginTransfer() used). */
  transfer: boolean;
}

/** One decision of contract §4 on one sample, with what the pause-safe re-check compares. */
interface Decision {
  outcome: number;
  reason: Reason;
  generation: bigint;
  leaseDurationNs: bigint;
  isLeader: boolean;
  term: bigint | undefined;
  suspect: boolean;
}

/** Hooks called with a reason for every read: `onHit("valid")` when served locally, `onMiss(reason)` otherwise. */
export interface LeaseObserver {
  /** A read served locally; `reason` is `valid`. Called synchronously: count, do not block. */
  onHit?(reason: Reason): void;
  /** A read that went linearizable, and why (`expired`, `not-leader`, `disabled`, ...). */
  onMiss?(reason: Reason): void;
}

/** Options of `createLeaseReader`. */
export interface LeaseReaderOptions {
  /** Hooks told the outcome of every read (e.g. `createLeaseMetrics(core).observer`). */
  observer?: LeaseObserver;
  /** Where the one-time "lease reads disabled" notice goes (default `console.warn`). */
  onWarning?: (message: string) => void;
}

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

/** What a commit passed to `dispatch` resolves to. */
export interface CommitResult {
  /** The index the write committed at; 0n means nothing was committed (no extend). */
  commitIndex: bigint;
  /** True when the write was forwarded to another leader: it proves nothing of this node's lease. */
  forwarded?: boolean;
  /** False when the commit did not happen on this node's own quorum round (no extend). */
  local?: boolean;
}

const readAt = Symbol("readAt");

const ENGINE_STATES: ReadonlySet<unknown> = new Set<EngineState>(["leader", "follower", "candidate", "shutdown", "unknown"]);

/** `engine.state()`, checked: a value outside EngineState ("LEADER", a boolean...) would
 *  otherwise read as "not the leader" without a word. */
function stateOf(engine: LeaseEngine): EngineState {
  const state: unknown = engine.state();
  if (!ENGINE_STATES.has(state)) throw new InvalidEngineAnswerError("state", state, '"leader", "follower", "candidate", "shutdown" or "unknown"');
  return state as EngineState;
}

const READER_OPTIONS = new Set(["observer", "onWarning"]);

function checkIndex(value: unknown, method: string): bigint {
  if (typeof value !== "bigint" || value < 0n) throw new InvalidEngineAnswerError(method, value);
  return value;
}

/** Lease reads and lease-extending writes through one engine (contract §4). */
export class LeaseReader {
  /** This reader's caller-side lease (warmed by linearizable reads and local commits). */
  readonly lease: Lease;
  readonly #core: LeaseCore;
  readonly #ex: CoreExports;
  readonly #engine: LeaseEngine;
  readonly #capable: boolean;
  readonly #observer: LeaseObserver | undefined;
  readonly #onWarning: (message: string) => void;
  #deregister: (() => void) | undefined;
  #closed = false;
  #warned = false;
  // Transfer guard: suspect from beginTransfer() (or the engine saying so) until endTransfer();
  // after it, the engine's ack must be later than #rearmAfterNs (a proof taken after the end).
  #transferring = false;
  #engineTransferring = false;
  #transferUsed = false;
  #rearmAfterNs = 0n;
  #rearmAtNextSample = false;

  /** @internal Use `core.createLeaseReader(engine)`. */
  constructor(core: LeaseCore, engine: LeaseEngine, options: LeaseReaderOptions = {}) {
    if (typeof engine !== "object" || engine === null) throw new InvalidOptionError("engine", "a LeaseEngine", engine);
    for (const method of ["state", "appliedIndex", "linearizableRead"] as const) {
      if (typeof engine[method] !== "function") throw new InvalidOptionError(`engine.${method}`, "a function", engine[method]);
    }
    const capability = ["leaseDurationNs", "lastQuorumAck", "onLeaderLoss"] as const;
    const missing = capability.filter((m) => typeof engine[m] !== "function");
    if (missing.length !== 0 && missing.length !== capability.length) throw new PartialLeaseCapabilityError(missing);
    this.#core = core;
    this.#ex = core.exports;
    this.#engine = engine;
    this.#capable = missing.length === 0;
    if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
    for (const name of Object.keys(options)) {
      if (!READER_OPTIONS.has(name)) throw new InvalidOptionError(name, "one of the reader's options (observer, onWarning)", (options as Record<string, unknown>)[name]);
    }
    if (options.observer !== undefined && (typeof options.observer !== "object" || options.observer === null)) throw new InvalidOptionError("observer", "a LeaseObserver object", options.observer);
    if (options.onWarning !== undefined && typeof options.onWarning !== "function") throw new InvalidOptionError("onWarning", "a function", options.onWarning);
    this.#observer = options.observer;
    this.#onWarning = options.onWarning ?? ((message) => console.warn(message));
    this.lease = core.createLease();
    if (this.#capable) {
      const lease = this.lease;
      const deregister: unknown = engine.onLeaderLoss!(() => {
        if (this.#closed) return;
        lease.invalidate();
        // A transfer that ended in a step-down is over; a later leadership re-arms as usual.
        if (this.#transferring) this.#endTransfer();
      });
      // close() must be able to stop the callback (an EventEmitter's `on` returns the emitter).
      if (typeof deregister !== "function") {
        this.#closed = true; // the callback stays registered with the engine: make it a no-op
        lease.dispose();
        throw new InvalidEngineAnswerError("onLeaderLoss", deregister, "a function that deregisters the callback (e.g. () => emitter.off(event, cb))");
      }
      this.#deregister = deregister as () => void;
    }
  }

  /** Which guards apply to this engine (see ActiveGuards). */
  guards(): ActiveGuards {
    const e = this.#engine;
    const has = (m: keyof LeaseEngine) => typeof e[m] === "function";
    return {
      ownTerm: has("currentTerm") && has("appliedTerm"),
      ackTerm: has("currentTerm") && has("quorumAckTerm"),
      transfer: has("transferInProgress") || this.#transferUsed,
    };
  }

  /** Whether the lease is suspect: a transfer is in progress (no lease reads until a fresh proof after it ends). */
  get suspect(): boolean {
    return this.#transferring || this.#engineTransferring;
  }

  /**
   * A leadership transfer starts: from now on no read is served by the lease (reason
   * `suspect`) and no read or commit extends it. Call it BEFORE the transfer message
   * (TimeoutNow) can leave: the target may be elected without waiting out an election timeout,
   * so every lease proved before is void (TiKV #8034: suspect set too late; openraft #1749,
   * etcd-raft #99: reads served during a transfer).
   */
  beginTransfer(): void {
    this.#transferUsed = true;
    if (this.#transferring) return;
    this.#transferring = true;
    this.lease.invalidate();
  }

  /**
   * The transfer ended (aborted, or failed). The lease stays void until a quorum proof taken
   * after this moment: the engine's ack must be sent later than now, and the caller lease is
   * invalidated again so a read or commit started during the transfer cannot extend it.
   */
  endTransfer(): void {
    if (!this.#transferring) return;
    this.#endTransfer();
  }

  #endTransfer(): void {
    this.#transferring = false;
    this.lease.invalidate();
    this.#markTransferEnd(this.#core.now());
  }

  #markTransferEnd(nowNs: bigint): void {
    if (nowNs === 0n) {
      this.#rearmAtNextSample = true; // no reading: take the end at the next real sample
    } else if (nowNs > this.#rearmAfterNs) {
      this.#rearmAfterNs = nowNs;
    }
  }

  /** Whether the engine implements the lease capability. */
  get leaseCapable(): boolean {
    return this.#capable;
  }

  /**
   * A read fence: the applied index when the lease proves leadership (served locally), else a
   * linearizable read, which warms the lease on success. Resolves to the index to read at.
   * @throws ReaderClosedError after close(); the engine's error when the linearizable read fails
   *   (a leadership-loss error also invalidates the lease).
   */
  async leaseRead(signal?: AbortSignal): Promise<bigint> {
    if (this.#closed) throw new ReaderClosedError();
    signal?.throwIfAborted();
    return this[readAt](this.#core.now(), signal);
  }

  /** @internal The decision of contract §4 on a sample taken by the caller. */
  async [readAt](nowNs: bigint, signal: AbortSignal | undefined): Promise<bigint> {
    if (this.#closed) throw new ReaderClosedError(); // as leaseRead: a group closed on its own serves nothing
    const d = this.#decide(nowNs);
    if (d.outcome & SERVE_LOCAL) {
      this.#observer?.onHit?.(d.reason);
      return checkIndex(this.#engine.appliedIndex(), "appliedIndex");
    }
    this.#miss(d);
    return this.#linearizable(nowNs, d, signal);
  }

  /**
   * The pause-safe lease read: `fn(index)` (the local read, or taking a snapshot) runs FIRST,
   * and the lease is validated on a clock sample taken AFTER it returns, with the same
   * generation and term as at entry. A pause (GC, SIGSTOP, swap) anywhere before that sample
   * therefore cannot serve stale data (TiKV #10011): the read happened inside the lease. When
   * the re-check fails, a linearizable read runs and `fn` runs again on its index. Without a
   * lease, `fn` runs once, after the linearizable read. Resolves to `fn`'s result.
   * @throws ReaderClosedError after close(); the engine's error as leaseRead; `fn`'s error.
   */
  async leaseReadThen<T>(fn: (index: bigint) => T | Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.#closed) throw new ReaderClosedError();
    if (typeof fn !== "function") throw new InvalidOptionError("fn", "a function", fn);
    signal?.throwIfAborted();
    const firstNs = this.#core.now();
    const first = this.#decide(firstNs);
    if ((first.outcome & SERVE_LOCAL) === 0) {
      this.#miss(first);
      return fn(await this.#linearizable(firstNs, first, signal));
    }
    const result = await fn(checkIndex(this.#engine.appliedIndex(), "appliedIndex"));
    if (this.#closed) throw new ReaderClosedError();
    const afterNs = this.#core.now();
    const after = this.#decide(afterNs);
    if ((after.outcome & SERVE_LOCAL) !== 0 && after.generation === first.generation && after.term === first.term) {
      this.#observer?.onHit?.(after.reason);
      return result;
    }
    // Served locally at entry, not after the read: the read may be stale; redo it linearizably.
    const reason: Reason = (after.outcome & SERVE_LOCAL) === 0 ? after.reason : after.term !== first.term ? "term-mismatch" : "expired";
    this.#miss({ ...after, reason });
    return fn(await this.#linearizable(afterNs, after, signal));
  }

  /** The engine's lease duration, less the core clock's frozen-clock budget (workerd): a check
   *  may lag the true time by up to the budget, so every lease is that much shorter
   *  (docs/edge-clocks.md). A duration at or below the budget disables lease reads. */
  #leaseDurationNs(): bigint {
    const durationNs = checkDuration(this.#engine.leaseDurationNs!(), "engine.leaseDurationNs()");
    const budgetNs = this.#core.freezeBudgetNs;
    return budgetNs === 0n ? durationNs : durationNs > budgetNs ? durationNs - budgetNs : 0n;
  }

  #decide(nowNs: bigint): Decision {
    const engine = this.#engine;
    let leaseDurationNs = 0n;
    let ackNs = 0n;
    const isLeader = stateOf(engine) === "leader";
    let guards = 0;
    let currentTerm = 0n;
    let appliedTerm = 0n;
    let ackTerm = 0n;
    let term: bigint | undefined;
    if (this.#capable) {
      leaseDurationNs = this.#leaseDurationNs();
      ackNs = checkInstant(engine.lastQuorumAck!(), "engine.lastQuorumAck()");
      if (typeof engine.currentTerm === "function") {
        term = currentTerm = checkTerm(engine.currentTerm(), "engine.currentTerm()");
        if (typeof engine.appliedTerm === "function") {
          appliedTerm = checkTerm(engine.appliedTerm(), "engine.appliedTerm()");
          guards |= READ_OWN_TERM;
        }
        if (typeof engine.quorumAckTerm === "function") {
          ackTerm = checkTerm(engine.quorumAckTerm(), "engine.quorumAckTerm()");
          guards |= READ_ACK_TERM;
        }
      }
      if (typeof engine.transferInProgress === "function") {
        const transferring = engine.transferInProgress() === true;
        if (transferring && !this.#engineTransferring) this.lease.invalidate();
        if (!transferring && this.#engineTransferring) {
          this.lease.invalidate();
          this.#markTransferEnd(nowNs);
        }
        this.#engineTransferring = transferring;
      }
      if (this.#rearmAtNextSample && nowNs !== 0n) {
        this.#rearmAtNextSample = false;
        this.#markTransferEnd(nowNs);
      }
      if (this.#transferring || this.#engineTransferring || this.#rearmAtNextSample) guards |= READ_SUSPECT;
    }
    const slot = this.lease.slot;
    const generation = this.#ex.leaseGeneration(slot); // step 3: before the quorum operation
    // The engine's ack must be later than the end of the last transfer AND than the core's last
    // clock fault: an ack sampled before a regression or a suspend never proves a lease after it,
    // whatever the engine still holds (read after nowNs, whose reading may itself be the fault).
    let rearmAfterNs = this.#rearmAfterNs;
    const faultNs = this.#ex.clockLastFaultNs();
    if (__UNSAFE_ACKS_SURVIVE_CLOCK_FAULT__) {
      // negative control: the engine's ack is not checked against the last clock fault
    } else if (faultNs > rearmAfterNs) {
      rearmAfterNs = faultNs;
    }
    const outcome = this.#ex.decideRead2(
      slot, nowNs, this.#capable ? 1 : 0, leaseDurationNs, isLeader ? 1 : 0, ackNs,
      guards, currentTerm, appliedTerm, ackTerm, rearmAfterNs,
    );
    return { outcome, reason: REASONS[outcome & 0xff]!, generation, leaseDurationNs, isLeader, term, suspect: (guards & READ_SUSPECT) !== 0 };
  }

  #miss(d: Decision): void {
    this.#observer?.onMiss?.(d.reason);
    if (d.reason === REASONS[REASON_DISABLED] && !this.#warned) {
      this.#warned = true;
      this.#onWarning(
        this.#capable
          ? `lease-core: the lease duration (engine.leaseDurationNs()${this.#core.freezeBudgetNs > 0n ? ` less the ${this.#core.freezeBudgetNs} ns frozen-clock budget` : ""}) is ${d.leaseDurationNs} <= 0: lease reads are disabled, every read is linearizable`
          : "lease-core: the engine has no lease capability (leaseDurationNs, lastQuorumAck, onLeaderLoss): every read is linearizable",
      );
    }
  }

  async #linearizable(nowNs: bigint, d: Decision, signal: AbortSignal | undefined): Promise<bigint> {
    let index: bigint;
    try {
      index = checkIndex(await this.#engine.linearizableRead(signal), "linearizableRead");
    } catch (err) {
      if (isLeadershipLossError(err) && !this.#closed) this.lease.invalidate();
      throw err;
    }
    // Only a leader that is still leader warms its lease: a follower's read proves that
    // *some* leader had a quorum, not this node. A read begun while suspect proves nothing
    // about after the transfer (and the generation guard voids one begun before it).
    // A closed reader's lease is never extended: leadership loss can no longer reach it.
    const mayExtend = d.isLeader && d.reason !== REASONS[REASON_DISABLED] && !d.suspect && !this.#closed;
    if (mayExtend && stateOf(this.#engine) === "leader") {
      this.#ex.leaseExtendFrom(this.lease.slot, nowNs, d.leaseDurationNs, d.generation);
    }
    return index;
  }

  /**
   * A write through the engine. Refuses with NotLeaderError (without calling `commit`) unless
   * leader. Samples the clock and generation before committing; extends the lease from that
   * sample only after a real, local commit (commitIndex > 0, still leader, not `forwarded`,
   * not `local: false`), and never while a transfer makes the lease suspect.
   * A leadership-loss error from `commit` invalidates the lease.
   */
  async dispatch<T extends CommitResult>(commit: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ReaderClosedError();
    if (typeof commit !== "function") throw new InvalidOptionError("commit", "a function", commit);
    const engine = this.#engine;
    if (stateOf(engine) !== "leader") throw new NotLeaderError();
    const sampleNs = this.#core.now();
    const slot = this.lease.slot;
    const generation = this.#ex.leaseGeneration(slot);
    const suspectAtStart = this.#isSuspect();
    let result: T;
    try {
      result = await commit();
    } catch (err) {
      if (isLeadershipLossError(err) && !this.#closed) this.lease.invalidate();
      throw err;
    }
    const commitIndex = (result as { commitIndex?: unknown } | null | undefined)?.commitIndex;
    if (typeof commitIndex !== "bigint" || commitIndex < 0n) throw new InvalidCommitResultError(result);
    const local = result.forwarded !== true && result.local !== false;
    if (this.#capable && !this.#closed && commitIndex > 0n && local && !suspectAtStart && !this.#isSuspect() && stateOf(engine) === "leader") {
      this.#ex.leaseExtendFrom(slot, sampleNs, this.#leaseDurationNs(), generation);
    }
    return result;
  }

  #isSuspect(): boolean {
    const e = this.#engine;
    return this.#transferring || this.#rearmAtNextSample || (typeof e.transferInProgress === "function" && e.transferInProgress() === true);
  }

  /** Deregisters the leader-loss callback, refuses further reads and invalidates the lease:
   *  once leadership loss can no longer reach it, the lease must not outlive the reader, and a
   *  read or commit still in flight never extends it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.lease.invalidate();
    } catch (err) {
      if (!(err instanceof DisposedError)) throw err; // the caller disposed the lease itself: nothing to void
    }
    const deregister = this.#deregister;
    this.#deregister = undefined;
    deregister?.();
  }
}

/**
 * Lease reads over several groups (shards): each group has its own engine, lease,
 * invalidation and leader-loss hook; an error in one group never touches another.
 */
export class ShardedLeaseReader {
  readonly #core: LeaseCore;
  readonly #readers = new Map<number, LeaseReader>();
  readonly #groupIds: number[];
  readonly #route: (key: string | Uint8Array) => number | undefined;
  #closed = false;

  /** @internal Use `core.createShardedLeaseReader(options)`. */
  constructor(core: LeaseCore, options: ShardedLeaseReaderOptions) {
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
      for (const reader of this.#readers.values()) reader.close();
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
    const nowNs = this.#core.now();
    const pending = groupIds.map((g) => this.#readers.get(g)![readAt](nowNs, signal));
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

