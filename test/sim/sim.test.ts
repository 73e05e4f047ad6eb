// The seeded simulator (test/sim): thousands of random runs with every guard on must produce
// no linearizability violation; then each guard's negative control and each incident replay.
// A failure prints its seed and minimal history; replay with `SIM_SEED=<seed> npm run sim`.
// SIM_SEEDS=<n> and SIM_FROM=<seed> change the random batch (default: 2,000 from a random start).
import { describe, expect, test } from "vitest";
import { describeFailure, runSeed } from "./random.js";
import { SCENARIOS, clockBoundScenario, readAcrossCrashScenario } from "./scenarios.js";

const COUNT = Number(process.env["SIM_SEEDS"] ?? 2000);
const FROM = process.env["SIM_FROM"] === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env["SIM_FROM"]);

describe("simulator: random seeds, all guards on", () => {
  test(`${COUNT} seeds from ${FROM}: no stale read, no Raft invariant broken`, async () => {
    console.log(`sim: ${COUNT} seeds from ${FROM} (replay one: SIM_SEED=<seed> npm run sim)`);
    const started = performance.now();
    const failures: string[] = [];
    const reasons: Record<string, number> = {};
    const totals = { ops: 0, localReads: 0, transfers: 0, configChanges: 0, elections: 0, events: 0, resets: 0 };
    for (let seed = FROM; seed < FROM + COUNT; seed++) {
      const r = await runSeed(seed >>> 0);
      if (r.check.ok !== true || r.violations.length > 0) failures.push(describeFailure(r));
      for (const [k, v] of Object.entries(r.stats.misses)) reasons[k] = (reasons[k] ?? 0) + v;
      totals.ops += r.stats.ops;
      totals.localReads += r.stats.localReads;
      totals.transfers += r.stats.transfers;
      totals.configChanges += r.stats.configChanges;
      totals.elections += r.stats.elections;
      totals.events += r.stats.events;
      totals.resets += r.stats.resets;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`sim: ${COUNT} seeds in ${seconds} s: ${JSON.stringify(totals)}; misses by reason ${JSON.stringify(reasons)}`);
    for (const f of failures.slice(0, 3)) console.error(f);
    expect(failures, failures[0]).toEqual([]);
    // The fault menu reaches every guard: each of these reasons was produced somewhere.
    if (COUNT >= 500) {
      for (const reason of ["expired", "not-leader", "clock-unknown", "suspend-detected", "suspect", "term-mismatch"]) {
        expect(reasons[reason] ?? 0, reason).toBeGreaterThan(0);
      }
      expect(totals.localReads).toBeGreaterThan(COUNT * 50);
      expect(totals.transfers).toBeGreaterThan(0);
      expect(totals.configChanges).toBeGreaterThan(0);
      // About one seed in 120 ends a request by a crash: 2,000 seeds see some (P(none) < 1e-6).
      if (COUNT >= 2000) expect(totals.resets, "requests ended by a crash").toBeGreaterThan(0);
    }
  }, 300_000);
});

describe("negative controls and incident replays", () => {
  for (const s of SCENARIOS) {
    test(`${s.name} (${s.incident}): passes with the guard`, async () => {
      const r = await s.run({ ...s.base });
      expect(r.violations).toEqual([]);
      expect(r.check).toEqual({ ok: true });
      expect(r.probeReads).toBeGreaterThan(0);
    });
    test(`${s.name}: control ${JSON.stringify(s.control)} serves a stale read the checker reports`, async () => {
      const r = await s.run({ ...s.base, ...s.control });
      expect(r.violations).toEqual([]);
      expect(r.check.ok).toBe(false);
      if (r.check.ok === false) {
        // The minimal history ends in the stale read: a read of a value already overwritten.
        expect(r.check.minimal.some((op) => op.kind === "read")).toBe(true);
        expect(r.check.minimal.length).toBeLessThanOrEqual(4);
      }
    });
  }

  test("a read in flight across a crash: the client sees a reset, never an answer from the restarted node (seed 784786)", async () => {
    const r = await readAcrossCrashScenario();
    expect(r.violations).toEqual([]);
    expect(r.check).toEqual({ ok: true });
    expect(r.probeReads).toBe(1);
    expect(r.misses["expired"], "the read took the linearizable branch").toBe(r.expiredBefore + 1);
    expect(r.resets).toBe(1);
    expect(r.history.filter((op) => op.kind === "read")).toEqual([]);
    // Each half of the model suffices here: a reset ends the request, and a read honouring its
    // fence waits for the restarted node to catch up (it answers "a", never the empty state).
    const fenced = await readAcrossCrashScenario({ crashResets: false });
    expect(fenced.check).toEqual({ ok: true });
    expect(fenced.history.filter((op) => op.kind === "read").map((op) => op.value)).toEqual(["a"]);
    // The old model (neither): the dead incarnation's continuation answers from the empty map.
    const old = await readAcrossCrashScenario({ crashResets: false, fence: false });
    expect(old.check.ok).toBe(false);
    expect(old.history.filter((op) => op.kind === "read").map((op) => op.value)).toEqual([null]);
  });

  test("the clock bound: drift within driftPpmMax is safe; a leader clock at half speed is not (what no local guard can see)", async () => {
    expect((await clockBoundScenario(-5_000)).check).toEqual({ ok: true });
    expect((await clockBoundScenario(-500_000)).check.ok).toBe(false);
  });
});
