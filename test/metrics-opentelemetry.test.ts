// The OpenTelemetry adapter (host/metrics/opentelemetry.ts) against the real SDK: a MeterProvider
// with a PeriodicExportingMetricReader into an InMemoryMetricExporter, flushed by hand after
// scripted reads on a manual clock; exact values, units, kinds and attributes.
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from "@opentelemetry/sdk-metrics";
import { afterEach, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createLeaseMetrics } from "../host/metrics/index.js";
import { observeLeaseMetrics } from "../host/metrics/opentelemetry.js";
import { FakeEngine, ManualClock, MS } from "./support/fakes.js";

const providers: MeterProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.shutdown()));
});

async function setup() {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  const metrics = createLeaseMetrics(core);
  const engine = new FakeEngine();
  const reader = core.createLeaseReader(engine, { observer: metrics.observer });
  metrics.watch("users", { reader, engine });
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // An interval far beyond the test: only forceFlush() exports.
  const metricReader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [metricReader] });
  providers.push(provider);
  const stop = observeLeaseMetrics(metrics, provider.getMeter("lease-core"));
  /** One collection: the instruments by name, from the latest export. */
  const collect = async (): Promise<Map<string, MetricData>> => {
    exporter.reset();
    await metricReader.forceFlush();
    const exported = exporter.getMetrics();
    expect(exported).toHaveLength(1);
    const scope = exported[0]!.scopeMetrics.find((s) => s.scope.name === "lease-core");
    return new Map((scope?.metrics ?? []).map((m) => [m.descriptor.name, m]));
  };
  return { clock, core, metrics, engine, reader, collect, stop };
}

/** The points of one instrument as [attributes, value] pairs. */
function points(metric: MetricData | undefined): [Record<string, unknown>, number][] {
  return (metric?.dataPoints ?? []).map((p) => [p.attributes, p.value as number]);
}

describe("OpenTelemetry adapter (@opentelemetry/sdk-metrics)", () => {
  test("after scripted reads: reads per outcome and reason, remaining lease, ack age, clock events", async () => {
    const { clock, engine, reader, collect } = await setup();
    for (let i = 0; i < 100; i++) {
      await reader.leaseRead();
      clock.advance(1n * MS);
    }
    engine.role = "follower";
    await reader.leaseRead();
    engine.role = "leader";
    engine.ackNs = clock.ns - 50n * MS; // its lease: 650 ms left, more than the caller's 600 ms
    const m = await collect();
    expect(points(m.get("lease_core.reads"))).toEqual([
      [{ "lease_core.read.outcome": "hit", "lease_core.read.reason": "valid" }, 99],
      [{ "lease_core.read.outcome": "miss", "lease_core.read.reason": "expired" }, 1],
      [{ "lease_core.read.outcome": "miss", "lease_core.read.reason": "not-leader" }, 1],
      [{ "lease_core.read.outcome": "miss", "lease_core.read.reason": "clock-unknown" }, 0],
      [{ "lease_core.read.outcome": "miss", "lease_core.read.reason": "term-mismatch" }, 0],
      [{ "lease_core.read.outcome": "miss", "lease_core.read.reason": "suspend-detected" }, 0],
      [{ "lease_core.read.outcome": "miss", "lease_core.read.reason": "suspect" }, 0],
      [{ "lease_core.read.outcome": "miss", "lease_core.read.reason": "disabled" }, 0],
    ]);
    expect(points(m.get("lease_core.lease.remaining"))).toEqual([[{ "lease_core.group": "users" }, 0.65]]);
    expect(points(m.get("lease_core.quorum_ack.age"))).toEqual([[{ "lease_core.group": "users" }, 0.05]]);
    expect(points(m.get("lease_core.clock.events"))).toEqual([
      [{ "lease_core.clock.event": "zero_reading" }, 0],
      [{ "lease_core.clock.event": "regression" }, 0],
      [{ "lease_core.clock.event": "suspend" }, 0],
    ]);
    expect(points(m.get("lease_core.clock.freeze_budget"))).toEqual([[{}, 0]]);
    expect(points(m.get("lease_core.clock.resolution"))).toEqual([
      [{ "lease_core.clock.source": "custom", "lease_core.clock.raw": false, "lease_core.clock.suspend_aware": true, "lease_core.clock.may_freeze": false }, 1e-9],
    ]);

    // A clock step backwards and a 2 s suspend: counted, and every lease is gone.
    const ns = clock.ns;
    clock.ns = ns - 1n;
    await reader.leaseRead(); // a miss: the core refuses the reading (clock-unknown)
    clock.ns = ns + 1n * MS;
    clock.offsetNs = 2_000n * MS;
    const after = await collect();
    expect(points(after.get("lease_core.clock.events"))).toEqual([
      [{ "lease_core.clock.event": "zero_reading" }, 0],
      [{ "lease_core.clock.event": "regression" }, 1],
      [{ "lease_core.clock.event": "suspend" }, 1],
    ]);
    expect(points(after.get("lease_core.clock.suspend.time"))).toEqual([[{}, 2]]);
    expect(points(after.get("lease_core.lease.remaining"))).toEqual([[{ "lease_core.group": "users" }, 0]]);
    expect(points(after.get("lease_core.reads"))).toContainEqual([{ "lease_core.read.outcome": "miss", "lease_core.read.reason": "clock-unknown" }, 1]);
  });

  test("instrument kinds and units follow the semantic conventions: counters are monotonic sums, gauges gauges", async () => {
    const { collect } = await setup();
    const m = await collect();
    const kind = (name: string) => {
      const metric = m.get(name)!;
      const monotonic = metric.dataPointType === DataPointType.SUM ? metric.isMonotonic : undefined;
      return [metric.dataPointType, monotonic, metric.descriptor.unit];
    };
    expect(kind("lease_core.reads")).toEqual([DataPointType.SUM, true, "{read}"]);
    expect(kind("lease_core.clock.events")).toEqual([DataPointType.SUM, true, "{event}"]);
    expect(kind("lease_core.clock.suspend.time")).toEqual([DataPointType.SUM, true, "s"]);
    expect(kind("lease_core.lease.remaining")).toEqual([DataPointType.GAUGE, undefined, "s"]);
    expect(kind("lease_core.clock.freeze_budget")).toEqual([DataPointType.GAUGE, undefined, "s"]);
    expect(kind("lease_core.clock.resolution")).toEqual([DataPointType.GAUGE, undefined, "s"]);
    // No ack published yet: the ack-age gauge reports no point rather than a made-up one.
    expect(points(m.get("lease_core.quorum_ack.age"))).toEqual([]);
    expect(m.get("lease_core.reads")!.descriptor.description).toMatch(/^Lease reads by outcome/);
  });

  test("values are observed at collection: the lease runs down between two collections", async () => {
    const { clock, reader, collect } = await setup();
    await reader.leaseRead();
    expect(points((await collect()).get("lease_core.lease.remaining"))).toEqual([[{ "lease_core.group": "users" }, 0.7]]);
    clock.advance(250n * MS);
    expect(points((await collect()).get("lease_core.lease.remaining"))).toEqual([[{ "lease_core.group": "users" }, 0.45]]);
  });

  test("the returned function removes the callback: the instruments stop following the reads", async () => {
    const { reader, collect, stop } = await setup();
    await reader.leaseRead();
    const miss = { "lease_core.read.outcome": "miss", "lease_core.read.reason": "expired" };
    expect(points((await collect()).get("lease_core.reads"))).toContainEqual([miss, 1]);
    stop();
    await reader.leaseRead(); // served by the warm lease: would be a hit
    await reader.leaseRead();
    // Cumulative export repeats the last observed values; nothing new is observed.
    const reads = points((await collect()).get("lease_core.reads"));
    expect(reads).toContainEqual([miss, 1]);
    expect(reads).toContainEqual([{ "lease_core.read.outcome": "hit", "lease_core.read.reason": "valid" }, 0]);
  });

  test("misuse is refused with InvalidOptionError", async () => {
    const { metrics } = await setup();
    const meter = new MeterProvider().getMeter("x");
    expect(() => observeLeaseMetrics({} as never, meter)).toThrow(/option metrics must be a LeaseMetrics/);
    expect(() => observeLeaseMetrics(metrics, {} as never)).toThrow(/option meter must be an @opentelemetry\/api Meter/);
  });
});
