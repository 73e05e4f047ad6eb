/**
 * The runtime-independent half of every host: the public `LeaseCore`, `Lease` and
 * `QuorumAckTracker` over one instance of the wasm core. A runtime host (node.ts, ...) only
 * obtains the compiled module and a `HostClock`, then calls `createCoreWith`.
 *
 * Every argument is checked here, before the wasm sees it: a bad one throws a typed error and
 * changes nothing. BigInt → i64 conversion wraps silently (2^63 becomes negative), so the range
 * check is not optional.
 * @module
 */
import { REASONS, instantiateCore, type ClockHooks, type CoreExports, type Reason } from "./abi.js";
import {
  CapacityError,
  CheckQuorumRequiredError,
  DisposedError,
  DriftNegativeError,
  DriftTooLargeError,
  ElectionTimeoutNotPositiveError,
  InvalidDurationError,
  InvalidGenerationError,
  InvalidInstantError,
  InvalidOptionError,
  InvalidPeerIdError,
  InvalidQuorumError,
  InvalidTermError,
  InvalidVoterConfigError,
  LeaseDurationNotPositiveError,
  SafetyMarginTooSmallError,
  TickNotPositiveError,
  TooManyPeersError,
} from "./errors.js";
import {
  ACK_OK, ACK_TOO_MANY_PEERS, CONFIG_CHECK_QUORUM_REQUIRED, CONFIG_DRIFT_NEGATIVE, CONFIG_DRIFT_TOO_LARGE,
  CONFIG_DURATION_NOT_POSITIVE, CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE, CONFIG_MARGIN_TOO_SMALL, CONFIG_OK,
  CONFIG_TICK_NOT_POSITIVE, DRIFT_PPM_LIMIT, MAX_PEERS,
} from "./generated/constants.js";
import { LeaseReader, ShardedLeaseReader, type LeaseEngine, type LeaseReaderOptions, type ShardedLeaseReaderOptions } from "./reader.js";

/** What the clock behind a core is, reported by every host (contract §1.1). Nothing is silent. */
export interface ClockInfo {
  /** The clock read, e.g. `CLOCK_MONOTONIC_RAW+sleep-offset`, `process.hrtime.bigint`, `performance.now`. */
  source: string;
  /** Immune to NTP slew (the kernel's raw oscillator count). */
  raw: boolean;
  /** Counts time the machine spent suspended (or detects it and invalidates every lease). */
  suspendAware: boolean;
  /** Smallest step of the clock, in ns. */
  resolutionNs: bigint;
  /** Whether the clock may stand still while code runs (edge runtimes: time moves only at I/O). */
  mayFreeze: boolean;
  /** For a clock that may freeze: how far a check may lag the true time, in ns. Every lease a
   *  reader of this core keeps or proves is shortened by it (docs/edge-clocks.md). */
  freezeBudgetNs?: bigint;
}

/** A custom clock, e.g. a simulation's: `now()` returns ns on a monotonic clock, 0n for "no reading". */
export interface ClockSource {
  /** One reading in ns on a monotonic clock; 0n (or anything but a bigint in (0, 2^63)) is "no reading". */
  now(): bigint;
  /** The time slept so far in ns (Linux: CLOCK_BOOTTIME - CLOCK_MONOTONIC), for a clock that can
   *  tell; its growth is a suspend (contract §1.2). A simulation uses it to inject suspends. */
  sleepOffsetNs?(): bigint;
  /** What the clock is (reported as `core.clock`); defaults: `custom`, not raw, 1 ns. */
  info?: Partial<ClockInfo>;
}

/** What a runtime host hands to the common core: its clock, bound to the core's clock cell. */
export interface HostClock {
  info: ClockInfo;
  /** Binds to the clock cell ([i64 rawNs, i64 sleepOffsetNs] at `byteOffset` of `memory`);
   *  returns the function that writes one fresh reading into it. Called once per core. */
  bind(memory: WebAssembly.Memory, byteOffset: number): () => void;
  /** How many readings to prime the sleep-offset baseline with (0: the host has no offset). */
  primeReadings?: number;
  /** What proves two cores read the same clock (compared when a shared lease table is attached):
   *  a process-wide clock's name (default: `info.source`), or a token unique to one custom
   *  `ClockSource` object (two custom clocks are never proven to agree). */
  identity?: string;
  /** Set when the fill writes `struct timespec`s into the core's timespec area instead of ns
   *  into the clock cell (1: the clock alone; 3: the clock, BOOTTIME, MONOTONIC). `bind` then
   *  gets the area's offset, and the core converts in wasm: cheaper than JS arithmetic where
   *  BigInt math is slow (Bun). */
  timespecs?: 1 | 3;
}

/** Sizes of one core. */
export interface CoreOptions {
  /** Leases one core can hold at once (default 4096; 16 bytes each). */
  maxLeases?: number;
  /** Quorum-ack trackers one core can hold at once (default 64; ~1 KiB each). */
  maxTrackers?: number;
}

/** Configuration of contract §5, all times in ns. */
export interface LeaseConfig {
  /** The engine's election timeout: a follower that hears nothing for this long may campaign. */
  electionTimeoutNs: bigint;
  /** The engine's tick: timers fire on tick boundaries, so up to one tick early. */
  tickNs: bigint;
  /** How much shorter than the election timeout the lease is (must cover drift and a tick). */
  safetyMarginNs: bigint;
  /** The bound on clock rate difference between any two hosts, in ppm (reference store: 50). */
  driftPpmMax: bigint;
  /** The engine steps down when it loses contact with a quorum (required for lease reads). */
  checkQuorum: boolean;
}

/** Clock events the core has counted since it was created. */
export interface ClockEvents {
  /** Readings refused because the clock gave no reading (0, negative, or an error). */
  zeroReadings: bigint;
  /** Readings refused because they went backwards; each one invalidated every lease. */
  regressions: bigint;
  /** Suspends detected by the sleep offset; each one invalidated every lease. */
  suspends: bigint;
  /** Total time slept, as measured by the sleep offset, in ns. */
  suspendedNs: bigint;
}

export const I64_MAX = (1n << 63n) - 1n;
const I32_MAX = 2 ** 31 - 1;
const DEFAULT_MAX_LEASES = 4096;
const DEFAULT_MAX_TRACKERS = 64;

/** @internal Throws InvalidInstantError unless `value` is a bigint in [0, 2^63-1]. */
export function checkInstant(value: unknown, argument: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > I64_MAX) throw new InvalidInstantError(argument, value);
  return value;
}

/** @internal Throws InvalidDurationError unless `value` is a bigint in [0, 2^63-1]. */
export function checkDuration(value: unknown, argument: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > I64_MAX) throw new InvalidDurationError(argument, value);
  return value;
}

/** @internal Throws InvalidTermError unless `value` is a bigint in [0, 2^63-1]. */
export function checkTerm(value: unknown, argument: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > I64_MAX) throw new InvalidTermError(argument, value);
  return value;
}

function checkQuorum(value: unknown, maxPeers: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > maxPeers) {
    throw new InvalidQuorumError("followerQuorum", value, maxPeers);
  }
  return value;
}

function checkPeerId(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > I32_MAX) throw new InvalidPeerIdError(value);
  return value;
}

function checkCapacity(option: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidOptionError(option, `an integer in [1, ${max}]`, value);
  }
  return value;
}

/**
 * The follower quorum `q = floor(N/2)` for `voters` (N, self included): how many follower acks
 * prove a majority. 1→0, 2→1, 3→1, 4→2, 5→2, 6→3, 7→3.
 * @throws InvalidQuorumError unless voters is an integer >= 1.
 */
export function followerQuorum(voters: number): number {
  if (typeof voters !== "number" || !Number.isInteger(voters) || voters < 1 || voters > I32_MAX) {
    throw new InvalidQuorumError("voters", voters, I32_MAX, 1);
  }
  return Math.floor(voters / 2);
}

const ENGINE_STATES: ReadonlySet<unknown> = new Set(["leader", "follower", "candidate", "shutdown", "unknown"]);

/** A role as a LeaseEngine reports it (host/reader.ts EngineState): anything else (`true`, 1,
 *  "LEADER", undefined) is a typed error, not a silent "not the leader". */
function checkEngineState(state: unknown): string {
  if (!ENGINE_STATES.has(state)) throw new InvalidOptionError("state", '"leader", "follower", "candidate", "shutdown" or "unknown"', state);
  return state as string;
}

/**
 * The engine-side lease check of contract §3:
 * `leader && now != 0 && ack != 0 && ack <= now && now - ack < leaseDuration`.
 * (The same rule as the wasm core's `engineAckValid`; a property test keeps them equal.)
 * A pure function: it does not know the core's clock faults. A reader applies them for you;
 * code that calls this directly must also require `ackNs > core.lastClockFaultNs()`.
 */
export function engineLeaseAckValid(state: string, ackNs: bigint, nowNs: bigint, leaseDurationNs: bigint): boolean {
  checkEngineState(state);
  checkInstant(ackNs, "ackNs");
  checkInstant(nowNs, "nowNs");
  checkDuration(leaseDurationNs, "leaseDurationNs");
  return state === "leader" && nowNs !== 0n && ackNs !== 0n && ackNs <= nowNs && nowNs - ackNs < leaseDurationNs;
}

/** One loaded lease core: a lease table, quorum trackers and the clock rules, on one clock. */
export class LeaseCore {
  /** The clock this core reads, and what it does and does not count. */
  readonly clock: ClockInfo;
  /** @internal */ readonly exports: CoreExports;
  /** @internal One fresh reading into the clock cell. */ readonly fill: () => void;
  /** @internal The host's own fill (into the timespec area when `timespecs` is not 0). */ readonly hostFill: () => void;
  /** @internal 0, or how many timespecs the host's fill writes. */ readonly timespecs: number;
  /** @internal What proves two cores read the same clock (HostClock.identity). */ readonly clockIdentity: string;
  readonly #maxPeers: number;
  /** The frozen-clock budget the readers take off every lease, in ns (0n: the clock does not freeze). */
  readonly freezeBudgetNs: bigint;
  // Slots of leases and trackers the program dropped without dispose() go back to the table.
  // workerd has FinalizationRegistry only from compatibility date 2025-05-05: without it, a
  // dropped lease keeps its slot until dispose() (sizing the table covers that).
  readonly #leases = typeof FinalizationRegistry === "function" ? new FinalizationRegistry<number>((slot) => this.exports.leaseFree(slot)) : undefined;
  readonly #trackers = typeof FinalizationRegistry === "function" ? new FinalizationRegistry<number>((t) => this.exports.trackerFree(t)) : undefined;

  /** @internal How many trackers the core holds (createCoreWith sets it; -1: not known). */
  trackerCapacity = -1;
  /** @internal The shared lease tables attached on this core (host/shared.ts): each learns of
   *  this core's clock faults and instants through the core's clock hooks. */
  readonly #watchers = new Set<ClockHooks>();

  /** @internal Use a host's `createLeaseCore()`. */
  constructor(exports: CoreExports, clock: ClockInfo, fill: () => void, hostFill: () => void = fill, timespecs = 0, clockIdentity = clock.source) {
    this.exports = exports;
    this.clockIdentity = clockIdentity;
    this.clock = Object.freeze({ ...clock });
    this.freezeBudgetNs = clock.freezeBudgetNs ?? 0n;
    this.fill = fill;
    this.hostFill = hostFill;
    this.timespecs = timespecs;
    this.#maxPeers = MAX_PEERS;
    // Every reader of this core takes the budget off its engine's lease (assembly/reader.ts R5).
    // Type-checked before the wasm boundary: a Number there is a bare TypeError, and `true` or
    // "50" would be coerced to 1n or 50n (attack reader-wasm-bad-input).
    const budgetNs: unknown = this.freezeBudgetNs;
    if (typeof budgetNs !== "bigint" || budgetNs < 0n || budgetNs > I64_MAX) throw new InvalidDurationError("clock.freezeBudgetNs", budgetNs);
    exports.configSetFreezeBudgetNs(this.freezeBudgetNs);
  }

  /** @internal Called by the core's clock hooks (createCoreWith). A watcher must not throw. */
  clockHooks(): ClockHooks {
    return {
      fault: (floorNs) => {
        for (const w of this.#watchers) w.fault(floorNs);
      },
      instant: (instantNs) => {
        for (const w of this.#watchers) w.instant(instantNs);
      },
    };
  }

  /** @internal A shared table attached on this core: from now on it hears of every clock fault
   *  this core sees and of its instants (one per ms of clock progress). */
  watchClock(watcher: ClockHooks): void {
    this.#watchers.add(watcher);
    this.exports.clockWatch();
  }

  /**
   * The engine-side lease check of contract §3, by the wasm core (assembly/decision.ts
   * engineAckValid): `leader && now != 0 && ack != 0 && ack <= now && now - ack < leaseDuration`.
   * Pure: it does not apply the core's clock faults (a reader does; see `lastClockFaultNs`).
   */
  engineAckValid(state: string, ackNs: bigint, nowNs: bigint, leaseDurationNs: bigint): boolean {
    checkEngineState(state);
    checkInstant(ackNs, "ackNs");
    checkInstant(nowNs, "nowNs");
    checkDuration(leaseDurationNs, "leaseDurationNs");
    return this.exports.engineAckValid(state === "leader" ? 1 : 0, ackNs, nowNs, leaseDurationNs) !== 0;
  }

  /** One reading of the lease clock in ns, after the clock rules; 0n means no reading. */
  now(): bigint {
    this.fill();
    return this.exports.clockObserveCell();
  }

  /**
   * The last instant this core handed out before its latest clock fault (a regression or a
   * suspend); 0n when there was none. No ack sampled at or before it proves a lease after the
   * fault: readers refuse an engine's `lastQuorumAck()` at or before it, trackers refuse to
   * record one, and an extend from such a sample fails. An engine that keeps its own ack
   * instant should drop it when it is not later than this (docs/safety.md, clock faults).
   */
  lastClockFaultNs(): bigint {
    return this.exports.clockLastFaultNs();
  }

  /** Clock events counted so far (zero readings, regressions, suspends). */
  clockEvents(): ClockEvents {
    const ex = this.exports;
    return {
      zeroReadings: ex.clockZeroReadings(),
      regressions: ex.clockRegressions(),
      suspends: ex.clockSuspends(),
      suspendedNs: ex.clockSuspendedNs(),
    };
  }

  /** A new lease (expiry 0, generation 0 for a fresh slot). */
  createLease(): Lease {
    const slot = this.exports.leaseAlloc();
    if (slot < 0) throw new CapacityError("lease", this.exports.leaseCapacity());
    const lease = new Lease(this, slot);
    this.#leases?.register(lease, slot, lease);
    return lease;
  }

  /** @internal */
  releaseLease(lease: Lease, slot: number): void {
    this.#leases?.unregister(lease);
    this.exports.leaseFree(slot);
  }

  /** A new quorum-ack tracker. */
  createQuorumAckTracker(): QuorumAckTracker {
    const t = this.exports.trackerAlloc();
    if (t < 0) throw new CapacityError("quorum-ack tracker", this.trackerCapacity);
    const tracker = new QuorumAckTracker(this, t, this.#maxPeers);
    this.#trackers?.register(tracker, t, tracker);
    return tracker;
  }

  /**
   * A quorum-ack tracker for a configuration that may be joint (Raft §6: C_old,new): the
   * published instant is the minimum over both voter sets (contract §3 [beyond]).
   */
  createJointQuorumAckTracker(config: VoterConfig): JointQuorumAckTracker {
    return new JointQuorumAckTracker(this, config);
  }

  /** @internal */
  releaseTracker(tracker: QuorumAckTracker, t: number): void {
    this.#trackers?.unregister(tracker);
    this.exports.trackerFree(t);
  }

  /**
   * Counts every valid lease of this core at one instant (`nowNs`, or one fresh reading): one
   * clock read and one SIMD pass over the table (~0.2 ns per lease), for checking thousands of
   * group leases at once.
   */
  countValidAll(nowNs?: bigint): number {
    if (nowNs === undefined) {
      this.fill();
      return this.exports.leaseCountValidAllCell();
    }
    return this.exports.leaseCountValidAll(checkInstant(nowNs, "nowNs"));
  }

  /** Counts the leases valid at one instant (`nowNs`, or one fresh reading), reading the clock once. */
  countValid(leases: readonly Lease[], nowNs?: bigint): number {
    const now = nowNs === undefined ? this.now() : checkInstant(nowNs, "nowNs");
    let valid = 0;
    for (const lease of leases) valid += this.exports.leaseValid(lease.slot, now);
    return valid;
  }

  /** A reader that serves `leaseRead`/`dispatch` through `engine` with its own lease (contract §4). */
  createLeaseReader(engine: LeaseEngine, options?: LeaseReaderOptions): LeaseReader {
    return new LeaseReader(this, engine, options);
  }

  /** A reader over several groups, each with its own engine, lease and leader-loss hook. */
  createShardedLeaseReader(options: ShardedLeaseReaderOptions): ShardedLeaseReader {
    return new ShardedLeaseReader(this, options);
  }

  /**
   * Checks a configuration against contract §5 and returns `leaseDurationNs =
   * electionTimeoutNs - safetyMarginNs`. Each broken rule throws its own `LeaseConfigError`.
   */
  leaseDurationFor(config: LeaseConfig): bigint {
    const electionTimeoutNs = checkDuration(config.electionTimeoutNs, "electionTimeoutNs");
    const tickNs = checkDuration(config.tickNs, "tickNs");
    const safetyMarginNs = checkDuration(config.safetyMarginNs, "safetyMarginNs");
    const driftPpmMax = checkDuration(config.driftPpmMax, "driftPpmMax");
    if (typeof config.checkQuorum !== "boolean") throw new InvalidOptionError("checkQuorum", "a boolean", config.checkQuorum);
    const ex = this.exports;
    switch (ex.configValidate(electionTimeoutNs, tickNs, safetyMarginNs, driftPpmMax, config.checkQuorum ? 1 : 0)) {
      case CONFIG_OK: return electionTimeoutNs - safetyMarginNs;
      case CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE: throw new ElectionTimeoutNotPositiveError();
      case CONFIG_TICK_NOT_POSITIVE: throw new TickNotPositiveError();
      case CONFIG_DRIFT_NEGATIVE: throw new DriftNegativeError();
      case CONFIG_MARGIN_TOO_SMALL: throw new SafetyMarginTooSmallError(safetyMarginNs, ex.configMinSafetyMarginNs(electionTimeoutNs, driftPpmMax, tickNs));
      case CONFIG_DURATION_NOT_POSITIVE: throw new LeaseDurationNotPositiveError(electionTimeoutNs - safetyMarginNs);
      case CONFIG_CHECK_QUORUM_REQUIRED: throw new CheckQuorumRequiredError();
      case CONFIG_DRIFT_TOO_LARGE: throw new DriftTooLargeError();
      default: throw new Error("unreachable: unknown config code");
    }
  }

  /**
   * The safety margin of a lease timed on another node's TTL, as the etcd engine takes it
   * (docs/etcd.md §3): `electionTimeoutNs + ceil(2 * ttlNs * driftPpmMax / 1e6) + 1 ms`: that
   * cluster's election timeout (a new leader there may revoke on its own clock), both clocks'
   * drift over the TTL, and 1 ms of rounding. Computed by the wasm core (assembly/config.ts).
   * @throws InvalidDurationError unless electionTimeoutNs and ttlNs are positive bigints below 2^63;
   *   DriftNegativeError / DriftTooLargeError unless driftPpmMax is in [0, 1e6]. Nothing changes.
   */
  ttlSafetyMarginNs(electionTimeoutNs: bigint, ttlNs: bigint, driftPpmMax: bigint): bigint {
    checkDuration(electionTimeoutNs, "electionTimeoutNs");
    checkDuration(ttlNs, "ttlNs");
    if (electionTimeoutNs === 0n) throw new InvalidDurationError("electionTimeoutNs", electionTimeoutNs);
    if (ttlNs === 0n) throw new InvalidDurationError("ttlNs", ttlNs);
    if (typeof driftPpmMax !== "bigint") throw new InvalidDurationError("driftPpmMax", driftPpmMax);
    if (driftPpmMax < 0n) throw new DriftNegativeError();
    if (driftPpmMax > DRIFT_PPM_LIMIT) throw new DriftTooLargeError();
    return this.exports.configTtlMarginNs(electionTimeoutNs, ttlNs, driftPpmMax);
  }
}

/**
 * A lease `{ expiry, generation }` (contract §2). Valid at `now` iff now != 0, expiry != 0 and
 * now < expiry. Extends are monotone and guarded by the generation; invalidate clears the
 * expiry, then bumps the generation.
 */
export class Lease {
  readonly #core: LeaseCore;
  readonly #ex: CoreExports;
  readonly #hostFill: () => void;
  readonly #timespecs: number;
  #slot: number;

  /** @internal */
  constructor(core: LeaseCore, slot: number) {
    this.#core = core;
    this.#ex = core.exports;
    this.#hostFill = core.hostFill;
    this.#timespecs = core.timespecs;
    this.#slot = slot;
  }

  /** @internal The slot in the core's lease table. */
  get slot(): number {
    if (this.#slot < 0) throw new DisposedError("lease");
    return this.#slot;
  }

  /** Whether the lease holds at `nowNs` (default: one fresh reading of the core's clock). */
  valid(nowNs?: bigint): boolean {
    const slot = this.#slot;
    if (slot < 0) throw new DisposedError("lease");
    if (nowNs === undefined) {
      // One host read, one wasm call: the hot path of every lease read.
      this.#hostFill();
      const timespecs = this.#timespecs;
      return (timespecs === 0 ? this.#ex.leaseValidCell(slot) : this.#ex.leaseValidTimespecs(slot, timespecs)) !== 0;
    }
    return this.#ex.leaseValid(slot, checkInstant(nowNs, "nowNs")) !== 0;
  }

  /** Why the lease does or does not hold at `nowNs` (default: one fresh reading): `valid`,
   *  `expired`, `clock-unknown` (no reading, or invalidated by a clock regression) or
   *  `suspend-detected` (invalidated by a suspend). */
  reason(nowNs?: bigint): Reason {
    const slot = this.slot;
    const now = nowNs === undefined ? this.#core.now() : checkInstant(nowNs, "nowNs");
    return REASONS[this.#ex.leaseReason(slot, now)]!;
  }

  /** The invalidation counter: starts at 0, never decreases. */
  generation(): bigint {
    return this.#ex.leaseGeneration(this.slot);
  }

  /** The expiry instant in ns (0n: no lease). */
  expiry(): bigint {
    return this.#ex.leaseExpiry(this.slot);
  }

  /**
   * Extends to `untilNs` iff untilNs != 0, `expectedGen` is the current generation, and untilNs
   * is later than the current expiry (or there is none). Returns whether it took effect.
   */
  extend(untilNs: bigint, expectedGen: bigint): boolean {
    const slot = this.slot;
    checkInstant(untilNs, "untilNs");
    if (typeof expectedGen !== "bigint" || expectedGen < 0n || expectedGen > I64_MAX) {
      throw new InvalidGenerationError("expectedGen", expectedGen);
    }
    return this.#ex.leaseExtend(slot, untilNs, expectedGen) !== 0;
  }

  /** Clears the expiry, then bumps the generation by one. Never throws on a live lease. */
  invalidate(): void {
    this.#ex.leaseInvalidate(this.slot);
  }

  /** Returns the slot to the core. Any later call throws DisposedError. Idempotent. */
  dispose(): void {
    const slot = this.#slot;
    if (slot < 0) return;
    this.#slot = -1;
    this.#core.releaseLease(this, slot);
  }
}

/** Per-follower ack instants and the published quorum instant (contract §3). */
export class QuorumAckTracker {
  readonly #core: LeaseCore;
  readonly #ex: CoreExports;
  readonly #maxPeers: number;
  #t: number;

  /** @internal */
  constructor(core: LeaseCore, t: number, maxPeers: number) {
    this.#core = core;
    this.#ex = core.exports;
    this.#t = t;
    this.#maxPeers = maxPeers;
  }

  #index(): number {
    if (this.#t < 0) throw new DisposedError("quorum-ack tracker");
    return this.#t;
  }

  /** @internal The tracker's index in the core (DisposedError once disposed). */
  index(): number {
    return this.#index();
  }

  /**
   * Records that `peerId` answered a message the leader sent at `sentAtNs` (the SEND time,
   * echoed back: queueing delay never stretches the lease), and republishes the
   * `followerQuorum`-th newest ack. A zero sample is ignored; a peer's ack never moves back.
   * With `term` (the term the reply carries) the ack is term-checked: unless it is this
   * tracker's term (`setTerm`) it is refused, counted in `refusedAcks()`, and `false` is
   * returned: a reply with a higher term is never an ack (contract §3). An ack sent at or
   * before the core's last clock fault (`core.lastClockFaultNs()`) is refused too: a reply to a
   * message sent before a regression or a suspend never proves a lease after it. With
   * `followerQuorum` 0 (one voter) nothing is recorded; a `followerQuorum` other than the
   * tracker's is a configuration change (see `setQuorum`) and forgets every ack first.
   * @returns false when refused for its term or for a clock fault, true otherwise.
   * @throws TooManyPeersError when a new peer would exceed MAX_PEERS (nothing recorded).
   */
  recordAck(peerId: number, followerQuorum: number, sentAtNs: bigint, term?: bigint): boolean {
    const t = this.#index();
    checkPeerId(peerId);
    checkQuorum(followerQuorum, this.#maxPeers);
    checkInstant(sentAtNs, "sentAtNs");
    const code = term === undefined
      ? this.#ex.trackerRecordAck(t, peerId, followerQuorum, sentAtNs)
      : this.#ex.trackerRecordAckInTerm(t, peerId, followerQuorum, sentAtNs, checkTerm(term, "term"));
    if (code === ACK_TOO_MANY_PEERS) throw new TooManyPeersError(peerId, this.#maxPeers);
    return code === ACK_OK;
  }

  /**
   * The voter set changed: enters follower quorum `followerQuorum` (`followerQuorum(voters)`)
   * and republishes at once. A quorum other than the tracker's forgets every ack, as the joint
   * tracker does on a configuration change: the published instant is 0n until a new quorum of
   * acks arrives (a single voter, q = 0, publishes through `recordSelfAck`). An engine calls it
   * when a configuration change that adds or removes voters is applied, BEFORE the next read
   * (docs/guards.md): otherwise an instant proved by the old, smaller quorum stays published.
   * @returns whether the quorum changed.
   * @throws InvalidQuorumError unless an integer in [0, MAX_PEERS] (nothing changes).
   */
  setQuorum(followerQuorum: number): boolean {
    const t = this.#index();
    checkQuorum(followerQuorum, this.#maxPeers);
    return this.#ex.trackerSetQuorum(t, followerQuorum) !== 0;
  }

  /** The follower quorum the tracker was last given (by setQuorum, recordAck or removePeer); -1 before any. */
  followerQuorum(): number {
    return this.#ex.trackerQuorum(this.#index());
  }

  /**
   * Enters `term` (the leader's current term): a term other than the tracker's forgets every
   * ack, so acks of an earlier leadership never prove this one. Returns whether it changed.
   * A new tracker is in term 0n.
   */
  setTerm(term: bigint): boolean {
    const t = this.#index();
    return this.#ex.trackerSetTerm(t, checkTerm(term, "term")) !== 0;
  }

  /** The tracker's term (0n until `setTerm`). */
  term(): bigint {
    return this.#ex.trackerTerm(this.#index());
  }

  /** How many acks were refused because their term was not the tracker's. */
  refusedAcks(): bigint {
    return this.#ex.trackerRefusedAcks(this.#index());
  }

  /** A single-voter leader is its own quorum: publish a fresh sample each tick (0n clears). */
  recordSelfAck(sampleNs: bigint): void {
    const t = this.#index();
    this.#ex.trackerRecordSelfAck(t, checkInstant(sampleNs, "sampleNs"));
  }

  /** Deletes the peer's ack and recomputes with the new quorum, keeping the other acks: the
   *  removal half of a configuration change (`followerQuorum` 0 keeps the published instant). */
  removePeer(peerId: number, followerQuorum: number): void {
    const t = this.#index();
    checkPeerId(peerId);
    checkQuorum(followerQuorum, this.#maxPeers);
    this.#ex.trackerRemovePeer(t, peerId, followerQuorum);
  }

  /** Forgets every ack (leadership exit, shrink to one voter). */
  reset(): void {
    this.#ex.trackerReset(this.#index());
  }

  /** The published quorum instant; 0n = none. */
  quorumAck(): bigint {
    return this.#ex.trackerQuorumAck(this.#index());
  }

  /** The recorded ack of one peer (0n: none). */
  ackOf(peerId: number): bigint {
    return this.#ex.trackerAckOf(this.#index(), checkPeerId(peerId));
  }

  /** How many peers have a recorded ack. */
  peerCount(): number {
    return this.#ex.trackerPeerCount(this.#index());
  }

  /** Returns the tracker to the core. Idempotent. */
  dispose(): void {
    const t = this.#t;
    if (t < 0) return;
    this.#t = -1;
    this.#core.releaseTracker(this, t);
  }
}

/** The voters of a configuration, seen from the leader `selfId`; `outgoingVoters` while joint. */
export interface VoterConfig {
  /** The leader's own peer id (its own ack is implied, never recorded). */
  selfId: number;
  /** The (incoming) voter set; may or may not contain `selfId`. */
  voters: readonly number[];
  /** The outgoing voter set during a joint configuration (C_old of C_old,new). */
  outgoingVoters?: readonly number[];
}

function checkVoters(value: unknown, option: string): number[] {
  if (!Array.isArray(value)) throw new InvalidVoterConfigError(`${option} must be an array of peer ids`);
  const ids = value.map((id) => checkPeerId(id));
  if (new Set(ids).size !== ids.length) throw new InvalidVoterConfigError(`${option} repeats a peer id`);
  if (ids.length === 0) throw new InvalidVoterConfigError(`${option} is empty`);
  return ids;
}

/**
 * The quorum-ack tracker of a configuration that may be joint. Each voter set has its own
 * tracker; a set that contains the leader needs floor(n/2) follower acks, one that does not
 * (the leader is being removed) needs a majority, floor(n/2) + 1. The published instant is the
 * minimum over the sets that need any follower (0 while either has none); with no such set
 * (one voter: the leader) it is the leader's own sample (`recordSelfAck`). Learners (ids in no
 * set) never count. A configuration change forgets every ack: conservative, and rare.
 */
export class JointQuorumAckTracker {
  readonly #core: LeaseCore;
  readonly #incoming: QuorumAckTracker;
  readonly #outgoing: QuorumAckTracker;
  readonly #maxPeers: number;
  #self = 0;
  #voters: number[] = [];
  #outgoingVoters: number[] = [];
  #qIn = 0;
  #qOut = 0;

  /** @internal Use `core.createJointQuorumAckTracker(config)`. */
  constructor(core: LeaseCore, config: VoterConfig) {
    this.#core = core;
    this.#maxPeers = MAX_PEERS;
    this.#incoming = core.createQuorumAckTracker();
    try {
      this.#outgoing = core.createQuorumAckTracker();
    } catch (err) {
      this.#incoming.dispose();
      throw err;
    }
    try {
      this.setConfig(config);
    } catch (err) {
      // A refused configuration leaves the core as it was: both trackers go back at once
      // (not whenever a GC runs the finalizer).
      this.dispose();
      throw err;
    }
  }

  /** Enters a configuration (joint while `outgoingVoters` is given). Forgets every ack and
   *  republishes at once: call it when the configuration change is applied, before the next
   *  read (docs/guards.md). */
  setConfig(config: VoterConfig): void {
    if (typeof config !== "object" || config === null) throw new InvalidOptionError("config", "a VoterConfig", config);
    const self = checkPeerId(config.selfId);
    const voters = checkVoters(config.voters, "voters");
    const outgoing = config.outgoingVoters === undefined ? [] : checkVoters(config.outgoingVoters, "outgoingVoters");
    // The need rule is the core's (assembly/quorum.ts Q7).
    const need = (set: number[]) => this.#core.exports.quorumNeed(set.length, set.includes(self) ? 1 : 0);
    for (const [name, set] of [["voters", voters], ["outgoingVoters", outgoing]] as const) {
      if (need(set) > this.#maxPeers) throw new InvalidVoterConfigError(`${name} needs ${need(set)} follower acks; a tracker holds ${this.#maxPeers} peers`);
    }
    this.#self = self;
    this.#voters = voters;
    this.#outgoingVoters = outgoing;
    this.#qIn = need(voters);
    this.#qOut = need(outgoing);
    // The counterpart of QuorumAckTracker.setQuorum: both sets enter their new quorum and
    // republish at once (an engine calls setConfig when a configuration change is applied).
    this.#incoming.setQuorum(this.#qIn);
    this.#outgoing.setQuorum(this.#qOut);
    this.reset();
  }

  /** Whether the configuration is joint. */
  get joint(): boolean {
    return this.#outgoingVoters.length !== 0;
  }

  /** Enters `term` on both sets (a new term forgets every ack). Returns whether it changed. */
  setTerm(term: bigint): boolean {
    checkTerm(term, "term");
    const changed = this.#incoming.setTerm(term); // a new term forgets the self-ack too
    this.#outgoing.setTerm(term);
    return changed;
  }

  /** The term the acks belong to. */
  term(): bigint {
    return this.#incoming.term();
  }

  /**
   * Records an ack (see QuorumAckTracker.recordAck) in every voter set that holds `peerId`.
   * @returns false when the peer votes in no set (a learner, or unknown) or the term is refused.
   */
  recordAck(peerId: number, sentAtNs: bigint, term?: bigint): boolean {
    checkPeerId(peerId);
    if (peerId === this.#self) return false;
    checkInstant(sentAtNs, "sentAtNs");
    if (term !== undefined) checkTerm(term, "term");
    const inIncoming = this.#voters.includes(peerId);
    const inOutgoing = this.#outgoingVoters.includes(peerId);
    // Both sets are checked for room BEFORE either records (no half-applied change): a set
    // full without this peer would throw after the other set had already moved the joint
    // instant. A peer with an ack (ackOf > 0n) has an entry; a new one needs a free one.
    for (const [holds, tracker] of [[inIncoming, this.#incoming], [inOutgoing, this.#outgoing]] as const) {
      if (holds && tracker.ackOf(peerId) === 0n && tracker.peerCount() >= this.#maxPeers) throw new TooManyPeersError(peerId, this.#maxPeers);
    }
    let counted = false;
    if (inIncoming) counted = this.#incoming.recordAck(peerId, this.#qIn, sentAtNs, term);
    if (inOutgoing) counted = this.#outgoing.recordAck(peerId, this.#qOut, sentAtNs, term) || counted;
    return counted;
  }

  /** A configuration whose only voter is the leader: publish one fresh sample per tick (0n, or
   *  a sample at or before the core's last clock fault, clears). */
  recordSelfAck(sampleNs: bigint): void {
    // Kept by the incoming tracker, which ignores it unless its set needs no follower (the
    // core's recordSelfAck), and forgets it on a clock fault, a new term or a reset.
    this.#incoming.recordSelfAck(sampleNs);
  }

  /** The published instant: the minimum over the voter sets that need follower acks (the
   *  core's trackerJointQuorumAck, assembly/quorum.ts Q7). */
  quorumAck(): bigint {
    return this.#core.exports.trackerJointQuorumAck(this.#incoming.index(), this.#outgoing.index());
  }

  /** Acks refused for their term, over both sets. */
  refusedAcks(): bigint {
    return this.#incoming.refusedAcks() + this.#outgoing.refusedAcks();
  }

  /** Forgets every ack (leadership exit). */
  reset(): void {
    this.#incoming.reset();
    this.#outgoing.reset();
  }

  /** Returns both trackers to the core. Idempotent. */
  dispose(): void {
    this.#incoming.dispose();
    this.#outgoing.dispose();
  }
}

/**
 * Builds a core from a compiled module and a host clock. Hosts call this; users call their
 * runtime's `createLeaseCore()`.
 */
export async function createCoreWith(module: WebAssembly.Module, clock: HostClock, options: CoreOptions = {}): Promise<LeaseCore> {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
  const maxLeases = checkCapacity("maxLeases", options.maxLeases, DEFAULT_MAX_LEASES, 1 << 22);
  const maxTrackers = checkCapacity("maxTrackers", options.maxTrackers, DEFAULT_MAX_TRACKERS, 1 << 16);
  let fill: () => void = () => {};
  let hooks: ClockHooks | undefined; // the core's, once it exists (no hook fires before: no reading yet)
  const exports = await instantiateCore(module, () => fill(), {
    fault: (floorNs) => hooks?.fault(floorNs),
    instant: (instantNs) => hooks?.instant(instantNs),
  });
  exports.init(maxLeases, maxTrackers);
  const timespecs = clock.timespecs ?? 0;
  const hostFill = clock.bind(exports.memory, timespecs === 0 ? exports.clockCell() : exports.clockTimespecArea());
  // `fill` always leaves a reading in the clock cell; the lease fast path (Lease.valid) calls
  // the host's fill and converts inside the same wasm call instead.
  fill = timespecs === 0 ? hostFill : () => {
    hostFill();
    exports.clockTimespecsToCell(timespecs);
  };
  for (let i = 0; i < (clock.primeReadings ?? 0); i++) {
    fill();
    exports.clockPrimeCell();
  }
  const core = new LeaseCore(exports, clock.info, fill, hostFill, timespecs, clock.identity ?? clock.info.source);
  core.trackerCapacity = maxTrackers;
  hooks = core.clockHooks();
  return core;
}

/**
 * A HostClock over a JS function returning bigint ns (a custom `ClockSource`, `hrtime`, ...):
 * each reading is stored into the cell through a BigInt64Array view. Anything but a bigint in
 * (0, 2^63) is stored as 0: a clock that throws or misbehaves reads as "no reading".
 */
export function jsHostClock(read: () => bigint, info: ClockInfo, readSleepOffset?: () => bigint): HostClock {
  return {
    info,
    bind(memory, byteOffset) {
      const cell = new BigInt64Array(memory.buffer, byteOffset, 2);
      return () => {
        let ns: unknown = 0n;
        let offsetNs: unknown = 0n;
        try {
          ns = read();
          if (readSleepOffset) offsetNs = readSleepOffset();
        } catch {
          ns = 0n;
        }
        const ok = typeof ns === "bigint" && ns > 0n && ns <= I64_MAX && typeof offsetNs === "bigint" && offsetNs >= -I64_MAX && offsetNs <= I64_MAX;
        cell[0] = ok ? (ns as bigint) : 0n;
        cell[1] = ok ? (offsetNs as bigint) : 0n;
      };
    },
  };
}

/** The HostClock for a user's `ClockSource`. */
export function customHostClock(source: ClockSource): HostClock {
  if (typeof source !== "object" || source === null || typeof source.now !== "function") {
    throw new InvalidOptionError("clock", "an object with now(): bigint", source);
  }
  const sleepOffsetNs = source.sleepOffsetNs;
  const info: ClockInfo = {
    source: "custom",
    raw: false,
    suspendAware: typeof sleepOffsetNs === "function",
    resolutionNs: 1n,
    mayFreeze: false,
    ...source.info,
  };
  const clock = jsHostClock(() => source.now(), info, typeof sleepOffsetNs === "function" ? () => sleepOffsetNs.call(source) : undefined);
  return { ...clock, identity: customClockIdentity(source) };
}

// One token per custom ClockSource object in this realm: cores made from the same object read
// the same function, so they agree; anything else (another object, another thread's copy) is
// never proven to, and a shared table refuses to attach it (host/shared.ts).
// Not a secret, only unique: a random prefix per realm (another thread never draws the same
// one in practice), then a counter per object. At most 31 bytes, which the table header holds.
const customIdentities = new WeakMap<object, string>();
const realmToken = Math.floor(Math.random() * 2 ** 52).toString(36);
let customCount = 0;

function customClockIdentity(source: ClockSource): string {
  let identity = customIdentities.get(source);
  if (identity === undefined) {
    identity = `custom#${realmToken}.${(customCount++).toString(36)}`;
    customIdentities.set(source, identity);
  }
  return identity;
}
