// The Prometheus adapter (host/metrics/prometheus.ts) against the real prom-client: scripted
// reads on a manual clock, read back through the registry's exposition text and its JSON.
import { Registry } from "prom-client";
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createLeaseMetrics } from "../host/metrics/index.js";
import { registerLeaseMetrics } from "../host/metrics/prometheus.js";
import { FakeEngine, ManualClock, MS } from "./support/fakes.js";

async function setup() {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  const metrics = createLeaseMetrics(core);
  const engine = new FakeEngine();
  const reader = core.createLeaseReader(engine, { observer: metrics.observer });
  metrics.watch("users", { reader, engine });
  const registry = new Registry();
  const unregister = registerLeaseMetrics(metrics, registry);
  return { clock, core, metrics, engine, reader, registry, unregister };
}

/** The sample lines of the exposition text (no HELP/TYPE), as "name{labels} value". */
async function samples(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split("\n").filter((l) => l !== "" && !l.startsWith("#"));
}

describe("Prometheus adapter (prom-client)", () => {
  test("scrape after scripted reads: reads by outcome and reason, lease remaining, ack age, clock", async () => {
    const { clock, engine, reader, registry } = await setup();
    for (let i = 0; i < 100; i++) {
      await reader.leaseRead();
      clock.advance(1n * MS);
    }
    engine.role = "follower";
    await reader.leaseRead();
    await reader.leaseRead();
    engine.role = "leader";
    engine.ackNs = clock.ns - 50n * MS; // the ack's lease (650 ms left) outlives the caller's (600 ms left)
    expect(await samples(registry)).toEqual([
      'lease_core_reads_total{outcome="hit",reason="valid"} 99',
      'lease_core_reads_total{outcome="miss",reason="expired"} 1',
      'lease_core_reads_total{outcome="miss",reason="not-leader"} 2',
      'lease_core_reads_total{outcome="miss",reason="clock-unknown"} 0',
      'lease_core_reads_total{outcome="miss",reason="term-mismatch"} 0',
      'lease_core_reads_total{outcome="miss",reason="suspend-detected"} 0',
      'lease_core_reads_total{outcome="miss",reason="suspect"} 0',
      'lease_core_reads_total{outcome="miss",reason="disabled"} 0',
      'lease_core_lease_remaining_seconds{group="users"} 0.65',
      'lease_core_quorum_ack_age_seconds{group="users"} 0.05',
      'lease_core_clock_events_total{event="zero_reading"} 0',
      'lease_core_clock_events_total{event="regression"} 0',
      'lease_core_clock_events_total{event="suspend"} 0',
      "lease_core_clock_suspended_seconds_total 0",
      "lease_core_clock_freeze_budget_seconds 0",
      "lease_core_clock_resolution_seconds 1e-9",
      'lease_core_clock_info{source="custom",raw="false",suspend_aware="true",may_freeze="false"} 1',
    ]);
    // A 3 s suspend: counted, every lease invalidated, and the lease clock jumps by the time
    // slept, so the engine's ack (taken before) is 3.05 s old and proves nothing any more.
    clock.offsetNs = 3_000n * MS;
    const after = await samples(registry);
    expect(after).toContain('lease_core_lease_remaining_seconds{group="users"} 0');
    expect(after).toContain('lease_core_quorum_ack_age_seconds{group="users"} 3.05');
    expect(after).toContain('lease_core_clock_events_total{event="suspend"} 1');
    expect(after).toContain("lease_core_clock_suspended_seconds_total 3");
  });

  test("HELP and TYPE say what each metric is; counters are counters, gauges gauges", async () => {
    const { registry } = await setup();
    const text = await registry.metrics();
    expect(text).toMatch(/^# TYPE lease_core_reads_total counter$/m);
    expect(text).toMatch(/^# HELP lease_core_reads_total Lease reads by outcome \(hit: served locally/m);
    expect(text).toMatch(/^# TYPE lease_core_lease_remaining_seconds gauge$/m);
    expect(text).toMatch(/^# TYPE lease_core_quorum_ack_age_seconds gauge$/m);
    expect(text).toMatch(/^# TYPE lease_core_clock_events_total counter$/m);
    expect(text).toMatch(/^# TYPE lease_core_clock_suspended_seconds_total counter$/m);
    expect(text).toMatch(/^# TYPE lease_core_clock_info gauge$/m);
  });

  test("values are taken on scrape: the same registry reads the lease running down", async () => {
    const { clock, reader, registry } = await setup();
    await reader.leaseRead(); // warms the caller lease: 700 ms
    const remaining = async () => {
      const json = await registry.getMetricsAsJSON();
      return json.find((m) => m.name === "lease_core_lease_remaining_seconds")!.values;
    };
    expect(await remaining()).toEqual([{ value: 0.7, labels: { group: "users" } }]);
    clock.advance(300n * MS);
    expect(await remaining()).toEqual([{ value: 0.4, labels: { group: "users" } }]);
    clock.advance(400n * MS);
    expect(await remaining()).toEqual([{ value: 0, labels: { group: "users" } }]);
    const json = await registry.getMetricsAsJSON();
    // No ack published: the ack-age gauge has no sample rather than a made-up one.
    expect(json.find((m) => m.name === "lease_core_quorum_ack_age_seconds")!.values).toEqual([]);
    expect(json.find((m) => m.name === "lease_core_reads_total")!.values).toContainEqual({ value: 1, labels: { outcome: "miss", reason: "expired" } });
  });

  test("registry default labels apply; a prefix lets two cores share a registry; unregister removes everything", async () => {
    const { core, registry, unregister } = await setup();
    registry.setDefaultLabels({ instance: "n1" });
    const other = createLeaseMetrics(core);
    // The same names again clash (prom-client refuses) and leave nothing half-registered.
    expect(() => registerLeaseMetrics(other, registry)).toThrow(/already been registered/);
    expect(registry.getMetricsAsArray()).toHaveLength(8);
    const unregisterOther = registerLeaseMetrics(other, registry, { prefix: "shard2_lease_core_" });
    expect(registry.getMetricsAsArray()).toHaveLength(16);
    expect(await samples(registry)).toContain('shard2_lease_core_reads_total{outcome="hit",reason="valid",instance="n1"} 0');
    unregister();
    unregisterOther();
    expect(registry.getMetricsAsArray()).toHaveLength(0);
  });

  test("misuse is refused with InvalidOptionError", async () => {
    const { metrics } = await setup();
    expect(() => registerLeaseMetrics({} as never, new Registry())).toThrow(/option metrics must be a LeaseMetrics/);
    expect(() => registerLeaseMetrics(metrics, {} as never)).toThrow(/option registry must be a prom-client Registry/);
    expect(() => registerLeaseMetrics(metrics, new Registry(), { prefix: "lease-core" })).toThrow(/option prefix must be a Prometheus metric name prefix/);
  });
});
