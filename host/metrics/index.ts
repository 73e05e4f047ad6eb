/**
 * Metrics without dependencies (docs/metrics.md): what an operator judges a lease by, kept in
 * preallocated typed arrays so that counting a read never allocates.
 *
 * - **Reads**: one counter per reason code (the `REASONS` tuple) for hits and one for misses,
 *   fed by `metrics.observer`, a `LeaseObserver` to pass to `createLeaseReader` /
 *   `createShardedLeaseReader`. TiKV exports its reject reasons; the Raft store this design
 *   comes from exports only hit/miss. Here every outcome already carries its reason.
 * - **Gauges**, computed when read (on scrape), never on the read path: per watched reader, the
 *   lease remaining and the age of the engine's quorum ack; per core, the clock events the core
 *   counted (zero readings, regressions, suspends, time suspended) and the frozen-clock budget
 *   the workerd host applies to every lease.
 *
 * Numbers, not bigints: a metric is a float in every exporter, and a Float64Array counts
 * exactly up to 2^53 (28 years at 10M reads/s). Times stay in ns here; the adapters
 * (metrics/prometheus.ts, metrics/opentelemetry.ts) convert to seconds.
 * @module
 */
import { REASONS, type Reason } from "../core/abi.js";
import { checkDuration } from "../core/checks.js";
import { type ClockInfo } from "../core/clock.js";
import { type LeaseCore } from "../core/core.js";
import { type Lease } from "../core/lease.js";
import { InvalidOptionError } from "../core/errors.js";
import type { LeaseEngine, LeaseObserver } from "../core/reader.js";

/** Index of the lease remaining (ns) in a group's slice of `readGroups`. */
export const GROUP_REMAINING_NS = 0;
/** Index of the quorum-ack age (ns; NaN: no ack to age) in a group's slice of `readGroups`. */
export const GROUP_ACK_AGE_NS = 1;
/** Numbers per group written by `readGroups`. */
export const GROUP_FIELDS = 2;

/** Index in `readClock`: readings refused because the clock gave none. */
export const CLOCK_ZERO_READINGS = 0;
/** Index in `readClock`: readings refused because they went backwards (each invalidated every lease). */
export const CLOCK_REGRESSIONS = 1;
/** Index in `readClock`: suspends detected by the sleep offset (each invalidated every lease). */
export const CLOCK_SUSPENDS = 2;
/** Index in `readClock`: total time suspended, in ns. */
export const CLOCK_SUSPENDED_NS = 3;
/** Index in `readClock`: the frozen-clock budget taken off every lease, in ns (0: none; NaN: the clock may freeze and the budget is unknown). */
export const CLOCK_FREEZE_BUDGET_NS = 4;
/** Numbers written by `readClock`. */
export const CLOCK_FIELDS = 5;

/** What `watch` reads of a reader: its caller-side lease and whether a transfer makes it suspect. */
export interface WatchedReader {
  /** The reader's caller-side lease. */
  readonly lease: Lease;
  /** True while a leadership transfer makes the reader refuse lease reads. */
  readonly suspect: boolean;
}

/** One watched group: its reader and, for the ack gauges, the engine behind it. */
export interface WatchTarget {
  /** The reader whose lease is watched (a LeaseReader, or a sharded reader's group reader). */
  reader: WatchedReader;
  /** The engine the reader serves through (the lease served by its quorum ack, and the ack's age). */
  engine?: LeaseEngine;
}

/** A plain copy of everything, for logs, JSON and tests (allocates; scrapes use the `read*` methods). */
export interface LeaseMetricsSnapshot {
  /** Reads served locally, by reason (always `valid` today). */
  hits: Partial<Record<Reason, number>>;
  /** Reads that went linearizable, by reason. */
  misses: Partial<Record<Reason, number>>;
  /** Per watched group: the lease remaining and the quorum-ack age, in ns (ack age `null`: no ack). */
  groups: Record<string, GroupGauges>;
  /** The core's clock events and the frozen-clock budget. */
  clock: ClockGauges;
}

/** One watched group's gauges, in ns. */
export interface GroupGauges {
  /** How long the group may still serve reads locally without a new quorum proof (0: it may not). */
  remainingNs: number;
  /** Age of the engine's quorum ack on the lease clock; `null` while the engine publishes none. */
  ackAgeNs: number | null;
}

/** The core's clock events since it was created, and the frozen-clock budget. */
export interface ClockGauges {
  /** Readings refused as no reading. */
  zeroReadings: number;
  /** Readings refused as going backwards (each invalidated every lease). */
  regressions: number;
  /** Suspends detected (each invalidated every lease). */
  suspends: number;
  /** Total time slept, in ns. */
  suspendedNs: number;
  /** The frozen-clock budget in ns (0: the clock does not freeze; `null`: it may, budget unknown). */
  freezeBudgetNs: number | null;
}

interface Watch {
  group: string;
  reader: WatchedReader;
  engine: LeaseEngine | undefined;
}

/**
 * The frozen-clock budget a core's host takes off every lease, in ns: 0n for a clock that
 * cannot freeze; `undefined` when it may freeze and states no budget (a custom clock reporting
 * `mayFreeze` without `freezeBudgetNs`). Read from the `freezeBudgetNs` field the host sets (the
 * workerd host does), the same field the core's readers apply; never parsed out of `source`,
 * which is for display.
 */
export function freezeBudgetNsOf(clock: ClockInfo): bigint | undefined {
  if (!clock.mayFreeze) return 0n;
  const field: unknown = clock.freezeBudgetNs;
  return typeof field === "bigint" ? field : undefined;
}

/**
 * Read counters per reason and gauges per watched reader, for one core. Create it with
 * `createLeaseMetrics(core)`, pass `metrics.observer` to the readers, `watch` them, and hand it
 * to an adapter (or read the arrays yourself).
 */
export class LeaseMetrics {
  /** The core whose clock the gauges read. */
  readonly core: LeaseCore;
  /** The reason of each counter index (`REASONS`). */
  readonly reasons: readonly Reason[] = REASONS;
  /** Reads served locally, by reason index. Live: the observer increments them in place. */
  readonly hits: Float64Array = new Float64Array(REASONS.length);
  /** Reads that went linearizable, by reason index. Live. */
  readonly misses: Float64Array = new Float64Array(REASONS.length);
  /**
   * The observer to pass as `{ observer }` to `createLeaseReader` / `createShardedLeaseReader`.
   * Each call costs one lookup in the 8-entry reason tuple and one typed-array increment, and
   * allocates nothing (test/metrics.test.ts measures it). A reason outside `REASONS` is ignored.
   */
  readonly observer: LeaseObserver;
  readonly #budgetNs: bigint | undefined;
  #watches: Watch[] = [];
  #groups: readonly string[] = Object.freeze([]);

  /** @internal Use `createLeaseMetrics(core)`. */
  constructor(core: LeaseCore) {
    if (typeof core !== "object" || core === null || typeof core.now !== "function" || typeof core.clockEvents !== "function") {
      throw new InvalidOptionError("core", "a LeaseCore", core);
    }
    this.core = core;
    this.#budgetNs = freezeBudgetNsOf(core.clock);
    const hits = this.hits;
    const misses = this.misses;
    // Closures over the arrays, not methods using `this`: a caller may pass them around unbound.
    this.observer = Object.freeze({
      onHit(reason: Reason): void {
        const i = REASONS.indexOf(reason);
        if (i >= 0) hits[i]!++;
      },
      onMiss(reason: Reason): void {
        const i = REASONS.indexOf(reason);
        if (i >= 0) misses[i]!++;
      },
    });
  }

  /** The watched groups, in the order `readGroups` writes them. */
  get groups(): readonly string[] {
    return this.#groups;
  }

  /**
   * Watches one reader under the name `group` (a label value: `"0"`, `"users"`); returns the
   * function that stops watching it. Watching is for gauges only: counting needs the observer.
   * @throws InvalidOptionError for an empty or already watched name, or a target without a reader.
   */
  watch(group: string, target: WatchTarget): () => void {
    if (typeof group !== "string" || group === "") throw new InvalidOptionError("group", "a non-empty string", group);
    if (this.#groups.includes(group)) throw new InvalidOptionError("group", "a name not watched yet", group);
    const reader = target?.reader;
    if (typeof reader !== "object" || reader === null || typeof reader.lease?.expiry !== "function") {
      throw new InvalidOptionError("reader", "a LeaseReader", reader);
    }
    const engine = target.engine;
    if (engine !== undefined && (typeof engine !== "object" || engine === null)) throw new InvalidOptionError("engine", "a LeaseEngine", engine);
    const watch: Watch = { group, reader, engine };
    this.#watches = [...this.#watches, watch];
    this.#groups = Object.freeze(this.#watches.map((w) => w.group));
    return () => {
      if (!this.#watches.includes(watch)) return;
      this.#watches = this.#watches.filter((w) => w !== watch);
      this.#groups = Object.freeze(this.#watches.map((w) => w.group));
    };
  }

  /**
   * Watches every group of a sharded reader: `groups` is the map given to
   * `createShardedLeaseReader`; each group is named `name(groupId)` (default `String(groupId)`).
   * Returns the function that stops watching all of them.
   */
  watchGroups(
    sharded: { reader(groupId: number): WatchedReader },
    groups: Map<number, LeaseEngine>,
    name: (groupId: number) => string = String,
  ): () => void {
    if (!(groups instanceof Map)) throw new InvalidOptionError("groups", "a Map<number, LeaseEngine>", groups);
    const stops: (() => void)[] = [];
    try {
      for (const [groupId, engine] of groups) stops.push(this.watch(name(groupId), { reader: sharded.reader(groupId), engine }));
    } catch (err) {
      for (const stop of stops) stop();
      throw err;
    }
    return () => {
      for (const stop of stops) stop();
    };
  }

  /**
   * Writes `GROUP_FIELDS` numbers per watched group into `into`, in `groups` order, all at one
   * reading of the core's clock; returns how many groups were written.
   *
   * - remaining (ns): how long reads may still be served locally without a new proof, the later
   *   of the reader's own lease (`lease.expiry() - now`) and the engine's quorum ack
   *   (`ack + leaseDuration - freezeBudget - now`, contract §3, while the engine is leader);
   *   0 when neither holds, while a transfer makes the reader suspect, or without a reading.
   *   It does not apply the term guards: an operator's gauge, not a decision.
   * - ack age (ns): `now - engine.lastQuorumAck()`; NaN when the engine publishes no ack (none
   *   yet, no lease capability, or an ack later than now).
   *
   * An engine that throws reads as remaining 0, ack age NaN: a scrape never fails a process.
   * @throws InvalidOptionError when `into` is not a Float64Array with room for every group.
   */
  readGroups(into: Float64Array): number {
    const watches = this.#watches;
    if (!(into instanceof Float64Array) || into.length < watches.length * GROUP_FIELDS) {
      throw new InvalidOptionError("into", `a Float64Array of at least ${watches.length * GROUP_FIELDS} numbers`, into);
    }
    if (watches.length === 0) return 0;
    const nowNs = this.core.now();
    for (let i = 0; i < watches.length; i++) {
      const at = i * GROUP_FIELDS;
      into[at + GROUP_REMAINING_NS] = 0;
      into[at + GROUP_ACK_AGE_NS] = NaN;
      if (nowNs === 0n) continue; // no reading: nothing holds (contract §1), no age to tell
      try {
        this.#readGroup(watches[i]!, nowNs, into, at);
      } catch {
        into[at + GROUP_REMAINING_NS] = 0;
        into[at + GROUP_ACK_AGE_NS] = NaN;
      }
    }
    return watches.length;
  }

  #readGroup(watch: Watch, nowNs: bigint, into: Float64Array, at: number): void {
    const { reader, engine } = watch;
    let remainingNs = 0n;
    const expiryNs = reader.lease.expiry();
    if (expiryNs > nowNs) remainingNs = expiryNs - nowNs;
    if (engine !== undefined && typeof engine.lastQuorumAck === "function") {
      const ackNs = engine.lastQuorumAck();
      if (typeof ackNs === "bigint" && ackNs > 0n && ackNs <= nowNs) {
        into[at + GROUP_ACK_AGE_NS] = Number(nowNs - ackNs);
        if (typeof engine.leaseDurationNs === "function" && engine.state() === "leader") {
          // The duration the core's readers use: the engine's less the frozen-clock budget
          // (assembly/reader.ts R5), from the core itself.
          const durationNs = this.core.exports.readerLeaseDurationNs(checkDuration(engine.leaseDurationNs(), "engine.leaseDurationNs()"));
          const untilNs = ackNs + durationNs;
          if (untilNs > nowNs && untilNs - nowNs > remainingNs) remainingNs = untilNs - nowNs;
        }
      }
    }
    into[at + GROUP_REMAINING_NS] = reader.suspect ? 0 : Number(remainingNs);
  }

  /**
   * Writes the core's clock events into `into` at the `CLOCK_*` indexes (zero readings,
   * regressions, suspends, time suspended in ns, frozen-clock budget in ns).
   * @throws InvalidOptionError when `into` is not a Float64Array of at least `CLOCK_FIELDS` numbers.
   */
  readClock(into: Float64Array): void {
    if (!(into instanceof Float64Array) || into.length < CLOCK_FIELDS) {
      throw new InvalidOptionError("into", `a Float64Array of at least ${CLOCK_FIELDS} numbers`, into);
    }
    const events = this.core.clockEvents();
    into[CLOCK_ZERO_READINGS] = Number(events.zeroReadings);
    into[CLOCK_REGRESSIONS] = Number(events.regressions);
    into[CLOCK_SUSPENDS] = Number(events.suspends);
    into[CLOCK_SUSPENDED_NS] = Number(events.suspendedNs);
    into[CLOCK_FREEZE_BUDGET_NS] = this.#budgetNs === undefined ? NaN : Number(this.#budgetNs);
  }

  /** Everything at once as plain data (allocates: for logs, JSON and tests, not for a hot scrape). */
  snapshot(): LeaseMetricsSnapshot {
    const hits: Partial<Record<Reason, number>> = {};
    const misses: Partial<Record<Reason, number>> = {};
    REASONS.forEach((reason, i) => {
      if (this.hits[i] !== 0) hits[reason] = this.hits[i]!;
      if (this.misses[i] !== 0) misses[reason] = this.misses[i]!;
    });
    const gauges = new Float64Array(this.#watches.length * GROUP_FIELDS);
    const n = this.readGroups(gauges);
    const names = this.#groups;
    const groups: LeaseMetricsSnapshot["groups"] = {};
    for (let i = 0; i < n; i++) {
      const ackAgeNs = gauges[i * GROUP_FIELDS + GROUP_ACK_AGE_NS]!;
      groups[names[i]!] = { remainingNs: gauges[i * GROUP_FIELDS + GROUP_REMAINING_NS]!, ackAgeNs: Number.isNaN(ackAgeNs) ? null : ackAgeNs };
    }
    const clock = new Float64Array(CLOCK_FIELDS);
    this.readClock(clock);
    const budget = clock[CLOCK_FREEZE_BUDGET_NS]!;
    return {
      hits,
      misses,
      groups,
      clock: {
        zeroReadings: clock[CLOCK_ZERO_READINGS]!,
        regressions: clock[CLOCK_REGRESSIONS]!,
        suspends: clock[CLOCK_SUSPENDS]!,
        suspendedNs: clock[CLOCK_SUSPENDED_NS]!,
        freezeBudgetNs: Number.isNaN(budget) ? null : budget,
      },
    };
  }
}

/**
 * Metrics for one core: `metrics.observer` counts every read by reason; `metrics.watch(name,
 * { reader, engine })` adds the lease-remaining and ack-age gauges of a reader.
 * @example
 * const metrics = createLeaseMetrics(core);
 * const reader = core.createLeaseReader(engine, { observer: metrics.observer });
 * metrics.watch("main", { reader, engine });
 * @throws InvalidOptionError unless `core` is a LeaseCore.
 */
export function createLeaseMetrics(core: LeaseCore): LeaseMetrics {
  return new LeaseMetrics(core);
}
