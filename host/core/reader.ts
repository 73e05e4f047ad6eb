/**
 * Reading and writing through the lease (docs/contract.md §4): `LeaseReader` around one engine
 * (`ShardedLeaseReader`, one per group, is in sharded-reader.ts). Every decision is the wasm core's
 * (assembly/reader.ts: the guards, the transfer state and its re-arm, the clock-fault floor,
 * both extend rules); this file only asks the engine, passes its answers in, and acts on the
 * outcome. A lease-read hit is one clock fill and one wasm crossing (`readerDecideFill`).
 * @module
 */
import { REASONS, type CoreExports, type Reason } from "./abi.js";
import { checkDuration, checkInstant, checkTerm } from "./checks.js";
import type { Lease } from "./lease.js";
import {
  ANSWER_ACK_TERM, ANSWER_CAPABLE, ANSWER_LEADER, ANSWER_OWN_TERM, ANSWER_TRANSFERRING, ANSWER_TRANSFER_KNOWN,
  MAY_EXTEND, READ_ACK_TERM, READ_OWN_TERM, READ_SUSPECT, REASON_DISABLED, SERVE_LOCAL,
} from "../generated/constants.js";
import {
  DisposedError,
  InvalidCommitResultError,
  InvalidEngineAnswerError,
  InvalidOptionError,
  NotLeaderError,
  PartialLeaseCapabilityError,
  ReaderClosedError,
  isLeadershipLossError,
} from "./errors.js";

/**
 * @internal What a reader needs of its core; `LeaseCore` satisfies it (core.ts). An interface,
 * not the class: the core creates readers, so the reader must not import the core.
 */
export interface ReaderCore {
  readonly exports: CoreExports;
  /** The host's own fill (into the timespec area when `timespecs` is not 0). */
  readonly hostFill: () => void;
  /** 0, or how many timespecs the host's fill writes. */
  readonly timespecs: number;
  /** The frozen-clock budget the reader takes off every lease, in ns. */
  readonly freezeBudgetNs: bigint;
  /** One reading of the lease clock in ns, after the clock rules; 0n means no reading. */
  now(): bigint;
  /** The last instant handed out before the core's latest clock fault (0n: none). */
  lastClockFaultNs(): bigint;
  /** The reader's own lease. */
  createLease(): Lease;
  /** Bumped by every move of any reader of this core (see LeaseReader #moved) and every lease
   *  released: a batch whose own asks were the only moves skips its per-entry check. */
  readerMoves: number;
}

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

/** One decision of contract §4 on one sample (a miss, or leaseReadThen's), with what the
 *  extend after a linearizable read and the pause-safe re-check need. */
interface Decision {
  /** The wasm outcome: reason | SERVE_LOCAL | BY_ENGINE | MAY_EXTEND. */
  outcome: number;
  reason: Reason;
  nowNs: bigint;
  generation: bigint;
  /** The engine's lease duration, as it answered (the core takes the frozen-clock budget off). */
  engineDurationNs: bigint;
  term: bigint | undefined;
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

/** What a commit passed to `dispatch` resolves to. */
export interface CommitResult {
  /** The index the write committed at; 0n means nothing was committed (no extend). */
  commitIndex: bigint;
  /** True when the write was forwarded to another leader: it proves nothing of this node's lease. */
  forwarded?: boolean;
  /** False when the commit did not happen on this node's own quorum round (no extend). */
  local?: boolean;
}

/** @internal A read decided at a given sample `nowNs` on answers asked before it:
 *  ShardedLeaseReader decides every group of `leaseReadAllGroups` on one sample
 *  (sharded-reader.ts). Not part of the public API. */
export const readAt = Symbol("readAt");
/** @internal Asks the engine for a read's answers (before the sample): sharded-reader.ts. */
export const askFor = Symbol("askFor");

/** @internal Asks the engine into entry `i` of a batch (ShardedLeaseReader.localReadGroups). */
export const askInto = Symbol("askInto");
/** @internal How many times this reader was asked or touched (see `#asks`): a batch withdraws
 *  an entry whose reader moved between its ask and the batch's sample. */
export const asksOf = Symbol("asksOf");
/** @internal The engine's applied index (a batch's served entry). */
export const appliedIndexOf = Symbol("appliedIndexOf");

/** @internal A batch's entries before they are copied into the core's run area
 *  (readerRunInts / readerRunValues, docs/abi.md): entry i is ints[2i] slot, ints[2i+1]
 *  answers (then the outcome), values[5i..5i+4] the engine's values, stamps[i] the ask count
 *  it was asked at (-1: withdrawn). After the decisions, values[i] is entry i's index or -1n.
 *  `serial` is the batch's own number; `repeated` is set when a reader is asked twice in it. */
export interface BatchEntries {
  ints: Int32Array;
  values: BigInt64Array;
  stamps: Float64Array;
  serial: number;
  repeated: boolean;
}

/** @internal What `[askFor]()` asked of the engine, kept for `[readAt]`. */
export interface AskedAnswers {
  answers: number;
  asks: number;
}

const ENGINE_STATES: ReadonlySet<unknown> = new Set<EngineState>(["leader", "follower", "candidate", "shutdown", "unknown"]);

/** `engine.state()`, checked: a value outside EngineState ("LEADER", a boolean...) would
 *  otherwise read as "not the leader" without a word. */
function stateOf(engine: LeaseEngine): EngineState {
  const state: unknown = engine.state();
  if (state === "leader") return state; // the lease-read hit's path: no set lookup
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
  readonly #core: ReaderCore;
  readonly #ex: CoreExports;
  readonly #engine: LeaseEngine;
  readonly #capable: boolean;
  readonly #observer: LeaseObserver | undefined;
  readonly #onWarning: (message: string) => void;
  readonly #slot: number;
  readonly #timespecs: number;
  readonly #hostFill: () => void;
  #deregister: (() => void) | undefined;
  #closed = false;
  #warned = false;
  // The engine's answers to the last #ask() (bigints passed straight to the core). The transfer
  // state, the re-arm instant and every rule over them live in the core (assembly/reader.ts).
  #engineDurationNs = 0n;
  /** How many times the engine was asked (#ask), the core's transfer state noted (dispatch) or
   *  moved by a push (begin/endTransfer, leader loss, close): [readAt] tells a re-entrant read
   *  or dispatch by it, and a batch (localReadGroups) an entry touched since its ask. */
  #asks = 0;
  #ackNs = 0n;
  #currentTerm = 0n;
  #appliedTerm = 0n;
  #ackTerm = 0n;
  /** The serial of the last batch that asked this reader (see BatchEntries). */
  #batchSerial = 0;

  /** This reader was asked or its core state moved: [readAt] and a batch (localReadGroups) tell
   *  answers asked before it (#asks, per reader; readerMoves, per core). */
  #moved(): void {
    this.#asks++;
    this.#core.readerMoves++;
  }

  /** @internal Use `core.createLeaseReader(engine)`. */
  constructor(core: ReaderCore, engine: LeaseEngine, options: LeaseReaderOptions = {}) {
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
    this.#slot = this.lease.slot;
    this.#timespecs = core.timespecs;
    this.#hostFill = core.hostFill;
    this.#ex.readerOpen(this.#slot);
    if (this.#capable) {
      const lease = this.lease;
      const deregister: unknown = engine.onLeaderLoss!(() => {
        if (this.#closed) return;
        // Invalidates; a transfer that ended in a step-down is over (its end is this sample),
        // a later leadership re-arms as usual. Never throws into the engine: an exception here
        // would stop its listener loop and the readers after this one would never hear of the
        // loss (R4; attack reader-wasm-disposed-hook). A lease the caller disposed has nothing
        // left to void (its slot may be another lease's now): no-op.
        // (core.now() never throws: a failed clock read is a zero reading.)
        const slot = this.#liveSlot();
        if (slot < 0) return;
        this.#moved(); // answers asked before the loss decide nothing after it (a batch withdraws them)
        this.#ex.readerLeaderLost(slot, this.#ex.readerTransferPushed(slot) ? this.#core.now() : 0n);
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
      transfer: has("transferInProgress") || (this.#liveSlot() >= 0 && this.#ex.readerTransferUsed(this.#liveSlot()) !== 0),
    };
  }

  /** The lease's slot, or -1 once the caller disposed the lease (the slot may then belong to
   *  another lease: this reader's state is gone with it). */
  #liveSlot(): number {
    try {
      return this.lease.slot;
    } catch (err) {
      if (err instanceof DisposedError) return -1;
      throw err;
    }
  }

  /** Whether the lease is suspect: a transfer is in progress, or ended with no sample since (no
   *  lease reads until a fresh proof after it ends). */
  get suspect(): boolean {
    const slot = this.#liveSlot();
    return slot >= 0 && this.#ex.readerIsSuspect(slot) !== 0;
  }

  /**
   * A leadership transfer starts: from now on no read is served by the lease (reason
   * `suspect`) and no read or commit extends it. Call it BEFORE the transfer message
   * (TimeoutNow) can leave: the target may be elected without waiting out an election timeout,
   * so every lease proved before is void (TiKV #8034: suspect set too late; openraft #1749,
   * etcd-raft #99: reads served during a transfer).
   */
  beginTransfer(): void {
    this.#moved();
    this.#ex.readerBeginTransfer(this.lease.slot);
  }

  /**
   * The transfer ended (aborted, or failed). The lease stays void until a quorum proof taken
   * after this moment: the engine's ack must be sent later than now, and the caller lease is
   * invalidated again so a read or commit started during the transfer cannot extend it.
   */
  endTransfer(): void {
    const slot = this.lease.slot;
    if (this.#ex.readerTransferPushed(slot) === 0) return;
    this.#moved();
    this.#ex.readerEndTransfer(slot, this.#core.now());
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
leaseRead(signal?: AbortSignal): Promise<bigint> {
    // Not `async`: a hit resolves without an async frame. Every error still rejects.
    try {
      if (this.#closed) throw new ReaderClosedError();
      signal?.throwIfAborted();
      if (__UNSAFE_ACKS_SURVIVE_CLOCK_FAULT__) { const asked = this[askFor](); return this[readAt](asked, this.#core.now(), signal); } // #decide's negative control
      const outcome = this.#decideNow();
      if (outcome & SERVE_LOCAL) {
        // The index first: a read whose appliedIndex() fails is no hit (nothing was served).
        const index = checkIndex(this.#engine.appliedIndex(), "appliedIndex");
        this.#observer?.onHit?.(REASONS[outcome & 0xff]!);
        return Promise.resolve(index);
      }
      return this.#missed(this.#decision(outcome, this.#ex.readerSampleNs()), signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The synchronous fast path of `leaseRead`: the applied index when the lease serves this read
   * locally (the observer hears `onHit("valid")`), `undefined` otherwise, with nothing counted
   * and no linearizable read started: call `leaseRead()` then, which decides again on a fresh
   * sample and counts the miss. One clock fill and one call into the core.
   * @throws ReaderClosedError after close(); a typed error for a bad engine answer.
   */
  localRead(): bigint | undefined {
    if (this.#closed) throw new ReaderClosedError();
    const outcome = __UNSAFE_ACKS_SURVIVE_CLOCK_FAULT__ ? this.#decide(this.#ask(), this.#core.now()).outcome : this.#decideNow();
    if ((outcome & SERVE_LOCAL) === 0) return undefined;
    const index = checkIndex(this.#engine.appliedIndex(), "appliedIndex"); // before the hit is reported (as leaseRead)
    this.#observer?.onHit?.(REASONS[outcome & 0xff]!);
    return index;
  }

  /** The decision on one fresh sample: the engine's answers, one clock fill, one crossing. */
  #decideNow(): number {
    const slot = this.lease.slot;
    const answers = this.#ask();
    this.#hostFill();
    return this.#ex.readerDecideFill(slot, this.#timespecs, answers, this.#engineDurationNs, this.#ackNs, this.#currentTerm, this.#appliedTerm, this.#ackTerm);
  }

  /**
   * @internal Asks the engine (#ask, every answer checked) into entry `i` of a batch whose one
   * sample the caller takes AFTER asking every entry (see #decide). The entry's stamp is the ask
   * count after this ask, or -1 when the engine's answers re-entered this reader (another ask,
   * a dispatch, a push) while it was being asked: the fields would then mix two asks' values
   * (attack round3-sharded-reentrant), so the entry is withdrawn, never decided.
   * @throws as localRead: ReaderClosedError, DisposedError, a typed error for a bad engine answer.
   */
  [askInto](entries: BatchEntries, i: number): void {
    if (this.#closed) throw new ReaderClosedError(); // as localRead: a group closed on its own serves nothing
    const slot = this.lease.slot;
    if (this.#batchSerial === entries.serial) entries.repeated = true; // an id given twice: check every entry
    this.#batchSerial = entries.serial;
    const before = this.#asks;
    const answers = this.#ask();
    entries.ints[2 * i] = slot;
    entries.ints[2 * i + 1] = answers;
    const values = entries.values;
    const v = 5 * i;
    values[v] = this.#engineDurationNs;
    values[v + 1] = this.#ackNs;
    values[v + 2] = this.#currentTerm;
    values[v + 3] = this.#appliedTerm;
    values[v + 4] = this.#ackTerm;
    entries.stamps[i] = this.#asks === before + 1 ? this.#asks : -1;
  }

  /** @internal See `asksOf`; -1 once the caller disposed the lease (its slot may be another's). */
  [asksOf](): number {
    return this.#liveSlot() === this.#slot ? this.#asks : -1;
  }

  /** @internal The engine's applied index, unchecked (the batch checks it for its i64 out array). */
  [appliedIndexOf](): unknown {
    return this.#engine.appliedIndex();
  }

  /** @internal The engine's answers for a decision on a sample the caller takes AFTER this
   *  returns (see #decide); throws as leaseRead on a closed reader. */
  [askFor](): AskedAnswers {
    if (this.#closed) throw new ReaderClosedError(); // as leaseRead: a group closed on its own serves nothing
    const answers = this.#ask();
    // With the ask count: code the caller runs before [readAt] (an observer, another group's
    // engine) may read this reader again and overwrite the fields (attack
    // round3-sharded-reentrant: a decision on old bits with a newer ack cleared a transfer).
    return { answers, asks: this.#asks };
  }

  /** @internal The decision of contract §4 on the `answers` of `[askFor]()` and a sample the
   *  caller took after asking. */
  async [readAt](asked: AskedAnswers, nowNs: bigint, signal: AbortSignal | undefined): Promise<bigint> {
    if (this.#closed) throw new ReaderClosedError(); // as leaseRead: a group closed on its own serves nothing
    let d: Decision;
    if (this.#asks !== asked.asks) {
      // This reader was asked again since (a re-entrant read from an observer or an engine):
      // its core state may already hold a later sample than `nowNs`, and a transfer noted
      // there must not be cleared by these older answers. Ask and sample afresh (R2).
      const answers = this.#ask();
      d = this.#decide(answers, this.#core.now());
    } else {
      // Not asked since: the fields still hold exactly what [askFor] asked (only #ask writes them).
      d = this.#decide(asked.answers, nowNs);
    }
    if (d.outcome & SERVE_LOCAL) {
      const index = checkIndex(this.#engine.appliedIndex(), "appliedIndex"); // before the hit is reported (as leaseRead)
      this.#observer?.onHit?.(d.reason);
      return index;
    }
    return this.#missed(d, signal);
  }

  #missed(d: Decision, signal: AbortSignal | undefined): Promise<bigint> {
    this.#miss(d);
    return this.#linearizable(d, signal);
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
    const firstAnswers = this.#ask(); // ask, then sample (see #decide)
    const first = this.#decide(firstAnswers, this.#core.now());
    if ((first.outcome & SERVE_LOCAL) === 0) {
      this.#miss(first);
      return fn(await this.#linearizable(first, signal));
    }
    const result = await fn(checkIndex(this.#engine.appliedIndex(), "appliedIndex"));
    if (this.#closed) throw new ReaderClosedError();
    const afterAnswers = this.#ask();
    const after = this.#decide(afterAnswers, this.#core.now());
    if ((after.outcome & SERVE_LOCAL) !== 0 && after.generation === first.generation && after.term === first.term) {
      this.#observer?.onHit?.(after.reason);
      return result;
    }
    // Served locally at entry, not after the read: the read may be stale; redo it linearizably.
    const reason: Reason = (after.outcome & SERVE_LOCAL) === 0 ? after.reason : after.term !== first.term ? "term-mismatch" : "expired";
    this.#miss({ ...after, reason });
    return fn(await this.#linearizable(after, signal));
  }

  /** Asks the engine everything a decision needs; returns the ANSWER_* bits and keeps the
   *  values in fields. Each answer is checked (a bad one throws a typed error before the core
   *  sees anything: no state changes). */
  #ask(): number {
    this.#moved();
    const engine = this.#engine;
    let answers = stateOf(engine) === "leader" ? ANSWER_LEADER : 0;
    if (!this.#capable) return answers;
    answers |= ANSWER_CAPABLE;
    this.#engineDurationNs = checkDuration(engine.leaseDurationNs!(), "engine.leaseDurationNs()");
    this.#ackNs = checkInstant(engine.lastQuorumAck!(), "engine.lastQuorumAck()");
    if (typeof engine.currentTerm === "function") {
      this.#currentTerm = checkTerm(engine.currentTerm(), "engine.currentTerm()");
      if (typeof engine.appliedTerm === "function") {
        this.#appliedTerm = checkTerm(engine.appliedTerm(), "engine.appliedTerm()");
        answers |= ANSWER_OWN_TERM;
      }
      if (typeof engine.quorumAckTerm === "function") {
        this.#ackTerm = checkTerm(engine.quorumAckTerm(), "engine.quorumAckTerm()");
        answers |= ANSWER_ACK_TERM;
      }
    }
    return answers | this.#transferAnswer();
  }

  /** The engine's own transfer answer, as ANSWER_* bits (0 when it does not report transfers). */
  #transferAnswer(): number {
    const engine = this.#engine;
    if (typeof engine.transferInProgress !== "function") return 0;
    // Checked like every other answer: a Promise (an async transferInProgress), 1 or "true"
    // compared `=== true` read as "no transfer", the guard silently off (fails open).
    const transferring: unknown = engine.transferInProgress();
    if (typeof transferring !== "boolean") throw new InvalidEngineAnswerError("transferInProgress", transferring, "a boolean");
    return transferring ? ANSWER_TRANSFER_KNOWN | ANSWER_TRANSFERRING : ANSWER_TRANSFER_KNOWN;
  }

  #decision(outcome: number, nowNs: bigint): Decision {
    const engine = this.#engine;
    return {
      outcome,
      reason: REASONS[outcome & 0xff]!,
      nowNs,
      // Step 3 of contract §4: after the decision (which may have invalidated for a transfer),
      // before the quorum operation.
      generation: this.#ex.leaseGeneration(this.#slot),
      engineDurationNs: this.#engineDurationNs,
      term: this.#capable && typeof engine.currentTerm === "function" ? this.#currentTerm : undefined,
    };
  }

  /**
   * The decision on `answers` (this.#ask()) and `nowNs`, a sample taken AFTER asking, on every
   * path (as #decideNow): an end of transfer the engine reports re-arms at `nowNs` (R2), which
   * is then at or after the report, so an ack the engine sent before it said "ended" is at or
   * before the re-arm instant and never serves. Sampling first dated the end before the report
   * and let an ack sent in between, during the transfer, prove the lease (attack
   * reader-wasm-rearm-race). It also keeps every ack answered at or before the sample.
   */
  #decide(answers: number, nowNs: bigint): Decision {
    const slot = this.lease.slot;
    let outcome: number;
    if (__UNSAFE_ACKS_SURVIVE_CLOCK_FAULT__) {
      // Negative control (finding 4 back): the transfer state moves as usual, then the bare
      // decision runs with the re-arm instant alone, not raised to the last clock fault.
      const moved = this.#ex.readerDecide(slot, nowNs, answers, this.#engineDurationNs, this.#ackNs, this.#currentTerm, this.#appliedTerm, this.#ackTerm);
      const capable = (answers & ANSWER_CAPABLE) !== 0;
      const guards = (capable && this.#ex.readerIsSuspect(slot) !== 0 ? READ_SUSPECT : 0) | (answers & ANSWER_OWN_TERM ? READ_OWN_TERM : 0) | (answers & ANSWER_ACK_TERM ? READ_ACK_TERM : 0);
      outcome = this.#ex.decideRead2(
        slot, nowNs, capable ? 1 : 0, capable ? this.#ex.readerLeaseDurationNs(this.#engineDurationNs) : 0n, answers & ANSWER_LEADER ? 1 : 0, this.#ackNs,
        guards, this.#currentTerm, this.#appliedTerm, this.#ackTerm, this.#ex.readerRearmAfterNs(slot),
      ) | (moved & MAY_EXTEND);
    } else {
      outcome = this.#ex.readerDecide(slot, nowNs, answers, this.#engineDurationNs, this.#ackNs, this.#currentTerm, this.#appliedTerm, this.#ackTerm);
    }
    return this.#decision(outcome, nowNs);
  }

  #miss(d: Decision): void {
    this.#observer?.onMiss?.(d.reason);
    if ((d.outcome & 0xff) === REASON_DISABLED && !this.#warned) {
      this.#warned = true;
      this.#onWarning(
        this.#capable
          ? `lease-core: the lease duration (engine.leaseDurationNs()${this.#core.freezeBudgetNs > 0n ? ` less the ${this.#core.freezeBudgetNs} ns frozen-clock budget` : ""}) is ${this.#ex.readerLeaseDurationNs(d.engineDurationNs)} <= 0: lease reads are disabled, every read is linearizable`
          : "lease-core: the engine has no lease capability (leaseDurationNs, lastQuorumAck, onLeaderLoss): every read is linearizable",
      );
    }
  }

  async #linearizable(d: Decision, signal: AbortSignal | undefined): Promise<bigint> {
    let index: bigint;
    try {
      index = checkIndex(await this.#engine.linearizableRead(signal), "linearizableRead");
    } catch (err) {
      if (isLeadershipLossError(err) && !this.#closed) this.#ex.readerLossError(this.lease.slot);
      throw err;
    }
    // The core decides (assembly/reader.ts extendAfterRead): only a decision that allowed it
    // (MAY_EXTEND: leader, enabled, not suspect), an engine still leader, a reader not closed.
    // The engine is asked again only when the decision allowed an extend.
    if (d.outcome & MAY_EXTEND) {
      const stillLeader = stateOf(this.#engine) === "leader";
      // The duration is asked again after the read (as dispatch does after its commit): an
      // engine that shortened its lease during the read must not be extended by the longer
      // value from before it. The shorter of the two: a lengthening during the read does not
      // cover the proof taken at d.nowNs, before it.
      const afterNs = checkDuration(this.#engine.leaseDurationNs!(), "engine.leaseDurationNs()");
      const durationNs = afterNs < d.engineDurationNs ? afterNs : d.engineDurationNs;
      this.#ex.readerExtendAfterRead(this.lease.slot, d.outcome, stillLeader ? 1 : 0, d.nowNs, durationNs, d.generation);
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
    const slot = this.lease.slot;
    // Ask, then sample (an end is never dated before the engine reported it), and record the
    // answer in the core as a read does: a transfer only a commit saw must re-arm when it ends
    // (R2), or an ack sent during it serves the next read (attack reader-wasm-dispatch-transfer).
    const answersAtStart = (this.#capable ? ANSWER_CAPABLE : 0) | this.#transferAnswer();
    // The engine's lease duration at the sample: the extend takes the shorter of it and the one
    // after the commit, as after a linearizable read (a lengthening during the commit does not
    // cover the proof taken before it: attack round3-dispatch-duration).
    const durationAtStartNs = this.#capable ? checkDuration(engine.leaseDurationNs!(), "engine.leaseDurationNs()") : 0n;
    const sampleNs = this.#core.now();
    // Suspect as a read deciding on this sample would be: an end taken at this sample re-arms
    // here, and the commit's round trip starts after it (a proof after the end, R2).
    this.#moved(); // the core's transfer state moves here too: a [readAt] pending on older answers asks afresh
    const suspectAtStart = this.#ex.readerNoteTransfer(slot, sampleNs, answersAtStart);
    const generation = this.#ex.leaseGeneration(slot); // after the note, which may invalidate (R4)
    let result: T;
    try {
      result = await commit();
    } catch (err) {
      if (isLeadershipLossError(err) && !this.#closed) this.#ex.readerLossError(this.lease.slot);
      throw err;
    }
    const commitIndex = (result as { commitIndex?: unknown } | null | undefined)?.commitIndex;
    if (typeof commitIndex !== "bigint" || commitIndex < 0n) throw new InvalidCommitResultError(result);
    // The flags are checked like commitIndex: `forwarded: 1` or `local: "false"` compared
    // `!== true` / `!== false` counted another leader's write as a local commit (an extend from
    // a proof of nothing). A wrong type rejects; the lease is not extended.
    const { forwarded, local: isLocal } = result as { forwarded?: unknown; local?: unknown };
    if ((forwarded !== undefined && typeof forwarded !== "boolean") || (isLocal !== undefined && typeof isLocal !== "boolean")) throw new InvalidCommitResultError(result);
    const local = forwarded !== true && isLocal !== false;
    if (this.#capable && !this.#closed) {
      // The core decides (assembly/reader.ts extendAfterCommit) on the engine's answers now.
      const answersNow = ANSWER_CAPABLE | this.#transferAnswer() | (stateOf(engine) === "leader" ? ANSWER_LEADER : 0);
      const afterNs = checkDuration(engine.leaseDurationNs!(), "engine.leaseDurationNs()");
      const durationNs = afterNs < durationAtStartNs ? afterNs : durationAtStartNs;
      // A transfer begun during the commit invalidates; one that ended is taken at the next
      // real sample (no reading here: an extra clock read would be one more fault check).
      this.#moved();
      this.#ex.readerNoteTransfer(slot, 0n, answersNow);
      this.#ex.readerExtendAfterCommit(slot, answersNow, suspectAtStart, commitIndex > 0n ? 1 : 0, local ? 1 : 0, sampleNs, durationNs, generation);
    }
    return result;
  }

  /** Deregisters the leader-loss callback, refuses further reads and invalidates the lease:
   *  once leadership loss can no longer reach it, the lease must not outlive the reader, and a
   *  read or commit still in flight never extends it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#moved();
    try {
      this.#ex.readerClose(this.lease.slot); // invalidates; the core never extends it again
    } catch (err) {
      if (!(err instanceof DisposedError)) throw err; // the caller disposed the lease itself: nothing to void
    }
    const deregister = this.#deregister;
    this.#deregister = undefined;
    deregister?.();
  }
}
