/**
 * The runtime-independent half of every host: `LeaseCore` over one instance of the wasm core
 * (its lease table, quorum trackers and clock rules), and `createCoreWith`, which a runtime host
 * (host/runtime/) calls with the compiled module and its `HostClock`. The core creates leases,
 * trackers and readers; each of those depends only on the slice of the core it needs
 * (`LeaseOwner` in lease.ts, `TrackerOwner` in trackers.ts, `ReaderCore` in reader.ts), which
 * `LeaseCore` satisfies (tsc checks it where the core passes `this`): no import cycle.
 *
 * Every argument is checked (checks.ts) before the wasm sees it: a bad one throws a typed error
 * and changes nothing.
 * @module
 */
import { instantiateCore, type ClockHooks, type CoreExports } from "./abi.js";
import { I64_MAX, checkCapacity, checkDuration, checkEngineState, checkInstant } from "./checks.js";
import type { ClockInfo, HostClock } from "./clock.js";
import {
  CapacityError,
  CheckQuorumRequiredError,
  DriftNegativeError,
  DriftTooLargeError,
  ElectionTimeoutNotPositiveError,
  InvalidDurationError,
  InvalidOptionError,
  LeaseDurationNotPositiveError,
  SafetyMarginTooSmallError,
  TickNotPositiveError,
} from "./errors.js";
import {
  CONFIG_CHECK_QUORUM_REQUIRED, CONFIG_DRIFT_NEGATIVE, CONFIG_DRIFT_TOO_LARGE,
  CONFIG_DURATION_NOT_POSITIVE, CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE, CONFIG_MARGIN_TOO_SMALL, CONFIG_OK,
  CONFIG_TICK_NOT_POSITIVE, DRIFT_PPM_LIMIT, MAX_PEERS,
} from "../generated/constants.js";
import { Lease } from "./lease.js";
import { LeaseReader, type LeaseEngine, type LeaseReaderOptions } from "./reader.js";
import { ShardedLeaseReader, type ShardedLeaseReaderOptions } from "./sharded-reader.js";
import { JointQuorumAckTracker, QuorumAckTracker, type VoterConfig } from "./trackers.js";

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

const DEFAULT_MAX_LEASES = 4096;
const DEFAULT_MAX_TRACKERS = 64;

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

  /** @internal Bumped by every move of any reader of this core and every lease released
   *  (reader.ts ReaderCore.readerMoves). */
  readerMoves = 0;
  /** @internal How many trackers the core holds (createCoreWith sets it; -1: not known). */
  trackerCapacity = -1;
  /** @internal The shared lease tables attached on this core (host/core/shared.ts): each learns of
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
    this.readerMoves++; // a batch that asked a reader on this lease must not decide its slot
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
