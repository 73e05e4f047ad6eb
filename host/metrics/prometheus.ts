/**
 * Prometheus adapter (`lease-core/metrics/prometheus`): registers a `LeaseMetrics` in a
 * `prom-client` Registry. Every value is computed on scrape, in the metrics' `collect()`
 * callbacks (prom-client calls them from `registry.metrics()`): the read path only increments
 * the typed arrays of host/metrics/index.ts.
 *
 * Names follow the Prometheus naming guide (prometheus.io/docs/practices/naming): a
 * `lease_core_` namespace, base units (seconds), `_total` on counters, an `_info` metric for
 * the clock's constant facts. `prom-client` is an optional peer dependency, imported only here.
 * @module
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { InvalidOptionError } from "../core/errors.js";
import {
  CLOCK_FIELDS,
  CLOCK_FREEZE_BUDGET_NS,
  CLOCK_REGRESSIONS,
  CLOCK_SUSPENDED_NS,
  CLOCK_SUSPENDS,
  CLOCK_ZERO_READINGS,
  GROUP_ACK_AGE_NS,
  GROUP_FIELDS,
  GROUP_REMAINING_NS,
  type LeaseMetrics,
} from "./index.js";

/** Options of `registerLeaseMetrics`. */
export interface PrometheusOptions {
  /** The metric name prefix (default `lease_core_`); e.g. `myapp_lease_core_`. */
  prefix?: string;
}

const NS_PER_S = 1e9;

/**
 * Registers the lease metrics in `registry` (pass prom-client's `register` for the default
 * one); returns the function that removes them again.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `lease_core_reads_total` | counter | `outcome` (`hit`, `miss`), `reason` (a `REASONS` code) |
 * | `lease_core_lease_remaining_seconds` | gauge | `group` |
 * | `lease_core_quorum_ack_age_seconds` | gauge (absent while a group has no ack) | `group` |
 * | `lease_core_clock_events_total` | counter | `event` (`zero_reading`, `regression`, `suspend`) |
 * | `lease_core_clock_suspended_seconds_total` | counter | |
 * | `lease_core_clock_freeze_budget_seconds` | gauge (absent when unknown) | |
 * | `lease_core_clock_resolution_seconds` | gauge | |
 * | `lease_core_clock_info` | gauge, always 1 | `source`, `raw`, `suspend_aware`, `may_freeze` |
 * @example
 * import { Registry } from "prom-client";
 * const registry = new Registry();
 * registerLeaseMetrics(metrics, registry);
 * // GET /metrics: res.end(await registry.metrics())
 * @throws InvalidOptionError unless `metrics` is a LeaseMetrics and `registry` a Registry;
 *   prom-client's own error when a name is already registered.
 */
export function registerLeaseMetrics(metrics: LeaseMetrics, registry: Registry, options: PrometheusOptions = {}): () => void {
  if (typeof metrics !== "object" || metrics === null || !(metrics.hits instanceof Float64Array) || typeof metrics.readGroups !== "function") {
    throw new InvalidOptionError("metrics", "a LeaseMetrics (createLeaseMetrics(core))", metrics);
  }
  if (typeof registry !== "object" || registry === null || typeof registry.registerMetric !== "function") {
    throw new InvalidOptionError("registry", "a prom-client Registry", registry);
  }
  const prefix = options.prefix ?? "lease_core_";
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) throw new InvalidOptionError("prefix", "a Prometheus metric name prefix", prefix);
  const registers = [registry];
  const { reasons, hits, misses } = metrics;
  const clock = new Float64Array(CLOCK_FIELDS);
  let groups = new Float64Array(0);
  // Both group gauges read all groups: one Float64Array, grown only when groups are added.
  const readGroups = (): number => {
    const needed = metrics.groups.length * GROUP_FIELDS;
    if (groups.length < needed) groups = new Float64Array(needed);
    return metrics.readGroups(groups);
  };
  const names: string[] = [];
  // Remember a name only once its metric is registered: on a clash, the name is someone else's.
  const add = <T>(name: string, make: (name: string) => T): T => {
    const metric = make(name);
    names.push(name);
    return metric;
  };

  try {
    add(`${prefix}reads_total`, (name) => new Counter({
      name,
      help: "Lease reads by outcome (hit: served locally under the lease; miss: sent through a linearizable read) and reason code.",
      labelNames: ["outcome", "reason"] as const,
      registers,
      collect() {
        this.reset();
        // Every reason is exported from the first scrape on (as 0), so rate() sees each series start.
        for (let i = 0; i < reasons.length; i++) {
          const reason = reasons[i]!;
          if (reason === "valid" || hits[i] !== 0) this.inc({ outcome: "hit", reason }, hits[i]!);
          if (reason !== "valid" || misses[i] !== 0) this.inc({ outcome: "miss", reason }, misses[i]!);
        }
      },
    }));
    add(`${prefix}lease_remaining_seconds`, (name) => new Gauge({
      name,
      help: "How long the group's reads may still be served locally without a new quorum proof (0: none holds).",
      labelNames: ["group"] as const,
      registers,
      collect() {
        this.reset();
        const n = readGroups();
        const names = metrics.groups;
        for (let i = 0; i < n; i++) this.set({ group: names[i]! }, groups[i * GROUP_FIELDS + GROUP_REMAINING_NS]! / NS_PER_S);
      },
    }));
    add(`${prefix}quorum_ack_age_seconds`, (name) => new Gauge({
      name,
      help: "Age of the engine's last published quorum ack, on the lease clock (absent while there is none).",
      labelNames: ["group"] as const,
      registers,
      collect() {
        this.reset();
        const n = readGroups();
        const names = metrics.groups;
        for (let i = 0; i < n; i++) {
          const ageNs = groups[i * GROUP_FIELDS + GROUP_ACK_AGE_NS]!;
          if (!Number.isNaN(ageNs)) this.set({ group: names[i]! }, ageNs / NS_PER_S);
        }
      },
    }));
    add(`${prefix}clock_events_total`, (name) => new Counter({
      name,
      help: "Clock readings the core refused or acted on: zero_reading (no reading), regression (went backwards; invalidated every lease), suspend (invalidated every lease).",
      labelNames: ["event"] as const,
      registers,
      collect() {
        this.reset();
        metrics.readClock(clock);
        this.inc({ event: "zero_reading" }, clock[CLOCK_ZERO_READINGS]!);
        this.inc({ event: "regression" }, clock[CLOCK_REGRESSIONS]!);
        this.inc({ event: "suspend" }, clock[CLOCK_SUSPENDS]!);
      },
    }));
    add(`${prefix}clock_suspended_seconds_total`, (name) => new Counter({
      name,
      help: "Time the machine spent suspended, as measured by the clock's sleep offset.",
      registers,
      collect() {
        this.reset();
        metrics.readClock(clock);
        this.inc(clock[CLOCK_SUSPENDED_NS]! / NS_PER_S);
      },
    }));
    add(`${prefix}clock_freeze_budget_seconds`, (name) => new Gauge({
      name,
      help: "The frozen-clock budget taken off every lease because the clock may stand still between I/O (0: the clock does not freeze).",
      registers,
      collect() {
        this.reset();
        metrics.readClock(clock);
        const budgetNs = clock[CLOCK_FREEZE_BUDGET_NS]!;
        if (!Number.isNaN(budgetNs)) this.set(budgetNs / NS_PER_S);
      },
    }));
    const info = metrics.core.clock;
    add(`${prefix}clock_resolution_seconds`, (name) => new Gauge({
      name,
      help: "The smallest step of the lease clock.",
      registers,
    })).set(Number(info.resolutionNs) / NS_PER_S);
    add(`${prefix}clock_info`, (name) => new Gauge({
      name,
      help: "The clock the core reads (always 1): its source, whether NTP cannot slew it (raw), whether it counts suspend, whether it may freeze.",
      labelNames: ["source", "raw", "suspend_aware", "may_freeze"] as const,
      registers,
    })).set({ source: info.source, raw: String(info.raw), suspend_aware: String(info.suspendAware), may_freeze: String(info.mayFreeze) }, 1);
  } catch (err) {
    // A name already taken (two cores in one registry: give one a prefix): leave nothing half-registered.
    for (const name of names) registry.removeSingleMetric(name);
    throw err;
  }

  return () => {
    for (const name of names.splice(0)) registry.removeSingleMetric(name);
  };
}
