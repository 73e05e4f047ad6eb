/**
 * OpenTelemetry adapter (`lease-core/metrics/opentelemetry`): observes a `LeaseMetrics` through
 * an `@opentelemetry/api` Meter. Counters are ObservableCounters and gauges ObservableGauges,
 * all fed by ONE batch callback, so every instrument of one collection comes from the same
 * reading; nothing runs on the read path.
 *
 * Names and units follow the OpenTelemetry semantic conventions for metrics
 * (opentelemetry.io/docs/specs/semconv/general/metrics): dot-namespaced names without a unit or
 * `_total` in them, UCUM units (`s`), annotations in braces for counts (`{read}`, `{event}`),
 * namespaced attribute keys. `@opentelemetry/api` is an optional peer dependency, imported only
 * here (and only its types: the Meter comes from the caller).
 * @module
 */
import type { Attributes, BatchObservableCallback, Meter, Observable } from "@opentelemetry/api";
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

const NS_PER_S = 1e9;

/**
 * Registers the lease instruments on `meter` (e.g. `metrics.getMeter("lease-core")`); returns
 * the function that removes the callback again (the instruments stop following the metrics).
 *
 * | instrument | kind | unit | attributes |
 * |---|---|---|---|
 * | `lease_core.reads` | ObservableCounter | `{read}` | `lease_core.read.outcome` (`hit`, `miss`), `lease_core.read.reason` |
 * | `lease_core.lease.remaining` | ObservableGauge | `s` | `lease_core.group` |
 * | `lease_core.quorum_ack.age` | ObservableGauge (absent while a group has no ack) | `s` | `lease_core.group` |
 * | `lease_core.clock.events` | ObservableCounter | `{event}` | `lease_core.clock.event` (`zero_reading`, `regression`, `suspend`) |
 * | `lease_core.clock.suspend.time` | ObservableCounter | `s` | |
 * | `lease_core.clock.freeze_budget` | ObservableGauge (absent when unknown) | `s` | |
 * | `lease_core.clock.resolution` | ObservableGauge | `s` | `lease_core.clock.source`, `.raw`, `.suspend_aware`, `.may_freeze` |
 * @example
 * import { metrics as otel } from "@opentelemetry/api";
 * observeLeaseMetrics(metrics, otel.getMeter("lease-core"));
 * @throws InvalidOptionError unless `metrics` is a LeaseMetrics and `meter` a Meter.
 */
export function observeLeaseMetrics(metrics: LeaseMetrics, meter: Meter): () => void {
  if (typeof metrics !== "object" || metrics === null || !(metrics.hits instanceof Float64Array) || typeof metrics.readGroups !== "function") {
    throw new InvalidOptionError("metrics", "a LeaseMetrics (createLeaseMetrics(core))", metrics);
  }
  if (typeof meter !== "object" || meter === null || typeof meter.addBatchObservableCallback !== "function") {
    throw new InvalidOptionError("meter", "an @opentelemetry/api Meter", meter);
  }
  const reads = meter.createObservableCounter("lease_core.reads", {
    description: "Lease reads by outcome (hit: served locally under the lease; miss: sent through a linearizable read) and reason code.",
    unit: "{read}",
  });
  const remaining = meter.createObservableGauge("lease_core.lease.remaining", {
    description: "How long the group's reads may still be served locally without a new quorum proof (0: none holds).",
    unit: "s",
  });
  const ackAge = meter.createObservableGauge("lease_core.quorum_ack.age", {
    description: "Age of the engine's last published quorum ack, on the lease clock (absent while there is none).",
    unit: "s",
  });
  const clockEvents = meter.createObservableCounter("lease_core.clock.events", {
    description: "Clock readings the core refused or acted on: zero_reading (no reading), regression (went backwards; invalidated every lease), suspend (invalidated every lease).",
    unit: "{event}",
  });
  const suspended = meter.createObservableCounter("lease_core.clock.suspend.time", {
    description: "Time the machine spent suspended, as measured by the clock's sleep offset.",
    unit: "s",
  });
  const freezeBudget = meter.createObservableGauge("lease_core.clock.freeze_budget", {
    description: "The frozen-clock budget taken off every lease because the clock may stand still between I/O (0: the clock does not freeze).",
    unit: "s",
  });
  const resolution = meter.createObservableGauge("lease_core.clock.resolution", {
    description: "The smallest step of the lease clock, with what the clock is as attributes.",
    unit: "s",
  });
  const observables: Observable[] = [reads, remaining, ackAge, clockEvents, suspended, freezeBudget, resolution];

  // Attribute sets built once: a collection allocates no attribute objects of its own.
  const { reasons, hits, misses } = metrics;
  const hitAttributes = reasons.map((reason) => Object.freeze({ "lease_core.read.outcome": "hit", "lease_core.read.reason": reason }));
  const missAttributes = reasons.map((reason) => Object.freeze({ "lease_core.read.outcome": "miss", "lease_core.read.reason": reason }));
  const eventAttributes = (event: string): Attributes => Object.freeze({ "lease_core.clock.event": event });
  const zeroReading = eventAttributes("zero_reading");
  const regression = eventAttributes("regression");
  const suspend = eventAttributes("suspend");
  const info = metrics.core.clock;
  const clockAttributes: Attributes = Object.freeze({
    "lease_core.clock.source": info.source,
    "lease_core.clock.raw": info.raw,
    "lease_core.clock.suspend_aware": info.suspendAware,
    "lease_core.clock.may_freeze": info.mayFreeze,
  });
  const resolutionS = Number(info.resolutionNs) / NS_PER_S;
  const groupAttributes = new Map<string, Attributes>();
  const attributesOf = (group: string): Attributes => {
    let attributes = groupAttributes.get(group);
    if (attributes === undefined) groupAttributes.set(group, (attributes = Object.freeze({ "lease_core.group": group })));
    return attributes;
  };
  const clock = new Float64Array(CLOCK_FIELDS);
  let groups = new Float64Array(0);

  const callback: BatchObservableCallback = (result) => {
    for (let i = 0; i < reasons.length; i++) {
      // Every reason from the first collection on (as 0): a series that starts at 0 has a rate.
      if (reasons[i] === "valid" || hits[i] !== 0) result.observe(reads, hits[i]!, hitAttributes[i]);
      if (reasons[i] !== "valid" || misses[i] !== 0) result.observe(reads, misses[i]!, missAttributes[i]);
    }
    const needed = metrics.groups.length * GROUP_FIELDS;
    if (groups.length < needed) groups = new Float64Array(needed);
    const n = metrics.readGroups(groups);
    const names = metrics.groups;
    for (let i = 0; i < n; i++) {
      const attributes = attributesOf(names[i]!);
      result.observe(remaining, groups[i * GROUP_FIELDS + GROUP_REMAINING_NS]! / NS_PER_S, attributes);
      const ageNs = groups[i * GROUP_FIELDS + GROUP_ACK_AGE_NS]!;
      if (!Number.isNaN(ageNs)) result.observe(ackAge, ageNs / NS_PER_S, attributes);
    }
    metrics.readClock(clock);
    result.observe(clockEvents, clock[CLOCK_ZERO_READINGS]!, zeroReading);
    result.observe(clockEvents, clock[CLOCK_REGRESSIONS]!, regression);
    result.observe(clockEvents, clock[CLOCK_SUSPENDS]!, suspend);
    result.observe(suspended, clock[CLOCK_SUSPENDED_NS]! / NS_PER_S);
    const budgetNs = clock[CLOCK_FREEZE_BUDGET_NS]!;
    if (!Number.isNaN(budgetNs)) result.observe(freezeBudget, budgetNs / NS_PER_S);
    result.observe(resolution, resolutionS, clockAttributes);
  };
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
