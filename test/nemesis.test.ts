// The nemesis's pure parts (demo/nemesis.ts, demo/fault-clock.ts): the seeded schedule replays,
// the history adapter and the lost-write check give the verdicts a hand-written history calls
// for, and the fault clock produces exactly the clock events lease-core's core detects.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { ClockFaultError, FaultClock, MAX_FREEZE_MS } from "../demo/fault-clock.js";
import { checkHistory, checkUnsafeNames, FAULT_KINDS, lostWrites, parseFaultKinds, planSchedule, runSeed, type NemesisOp } from "../demo/nemesis.js";

test("a negative control's switch must exist in the test build, or the run refuses to start", () => {
  expect(() => checkUnsafeNames("no-such-switch")).toThrow(/no switch no-such-switch/);
  expect(() => checkUnsafeNames("Retake_Without")).toThrow(/kebab-case/);
  expect(() => checkUnsafeNames("")).toThrow(/kebab-case/);
});

describe("the seeded schedule", () => {
  test("a seed gives the same schedule every time; seeds differ; run 0 of a batch is the seed itself", () => {
    expect(planSchedule(42, 20)).toEqual(planSchedule(42, 20));
    expect(planSchedule(42, 20)).not.toEqual(planSchedule(43, 20));
    expect(runSeed(12345, 0)).toBe(12345);
    expect(runSeed(12345, 1)).not.toBe(runSeed(12345, 2));
    expect(runSeed(12345, 3)).toBe(runSeed(12345, 3));
  });

  test("--faults draws only the kinds named, and leaves the default schedule as it was", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const aimed = planSchedule(seed, 20, ["lagging-close", "clock-step-cut"]);
      expect(aimed.length).toBeGreaterThan(5);
      expect(new Set(aimed.map((f) => f.kind))).toEqual(new Set(["lagging-close", "clock-step-cut"]));
      expect(planSchedule(seed, 20, FAULT_KINDS)).toEqual(planSchedule(seed, 20));
    }
    expect(planSchedule(7, 20, ["clock-step-cut"]).every((f) => f.kind === "clock-step-cut")).toBe(true);
    expect(parseFaultKinds("lagging-close, clock-step-cut")).toEqual(["lagging-close", "clock-step-cut"]);
    expect(() => parseFaultKinds("lagging-close,no-such-fault")).toThrow(/unknown fault kind "no-such-fault"/);
    expect(() => parseFaultKinds("")).toThrow(/at least one/);
    expect(() => parseFaultKinds("clock,clock")).toThrow(/twice/);
    expect(() => planSchedule(7, 20, [])).toThrow(/no fault kind/);
  });

  test("every fault kind is drawn, several overlap, all inside the run", () => {
    const seen = new Set<string>();
    let overlapping = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const s = planSchedule(seed, 20);
      for (const f of s) {
        seen.add(f.kind);
        expect(f.atMs).toBeGreaterThan(0);
        expect(f.atMs).toBeLessThan(20_000);
        expect(f.durMs).toBeGreaterThan(0);
        if (f.link?.kind === "delay") expect(f.link.delayMs).toBeGreaterThan(0);
      }
      for (let i = 1; i < s.length; i++) if (s[i]!.atMs < s[i - 1]!.atMs + s[i - 1]!.durMs) overlapping++;
    }
    expect([...seen].sort()).toEqual([...FAULT_KINDS].sort());
    expect(overlapping).toBeGreaterThan(100);
  });
});

const op = (o: Partial<NemesisOp> & Pick<NemesisOp, "kind" | "value" | "callAt" | "returnAt">): NemesisOp => ({ client: 0, key: "k", by: "kv-0", ...o });

describe("checking a history with compare-and-set", () => {
  test("a linearizable history with reads, writes and every cas outcome passes", () => {
    const h = [
      op({ kind: "write", value: "a", callAt: 0, returnAt: 10 }),
      op({ kind: "cas", expected: "a", value: "b", ok: true, callAt: 20, returnAt: 30 }),
      op({ kind: "cas", expected: "a", value: "c", ok: false, found: "b", callAt: 40, returnAt: 50 }),
      op({ kind: "cas", expected: "b", value: "d", callAt: 60, returnAt: Infinity }), // unknown
      op({ kind: "read", value: "d", callAt: 70, returnAt: 80 }),
      op({ kind: "cas", expected: null, value: "e", ok: true, key: "other", callAt: 0, returnAt: 5 }),
    ];
    expect(checkHistory(h)).toEqual({ ok: true });
  });

  test("a cas that applied on a value already overwritten is a violation", () => {
    const h = [
      op({ kind: "write", value: "a", callAt: 0, returnAt: 10 }),
      op({ kind: "write", value: "b", callAt: 20, returnAt: 30 }),
      op({ kind: "cas", expected: "a", value: "c", ok: true, callAt: 40, returnAt: 50 }),
    ];
    const v = checkHistory(h);
    expect(v.ok).toBe(false);
    expect(v.ok === false && v.key).toBe("k");
  });

  test("a cas that failed finding a stale value is a stale read, and a violation", () => {
    const h = [
      op({ kind: "write", value: "a", callAt: 0, returnAt: 10 }),
      op({ kind: "write", value: "b", callAt: 20, returnAt: 30 }),
      op({ kind: "cas", expected: "x", value: "c", ok: false, found: "a", callAt: 40, returnAt: 50 }),
    ];
    expect(checkHistory(h).ok).toBe(false);
  });

  test("a lost acknowledged write is named; an unknown write may or may not survive", () => {
    const h = [
      op({ kind: "write", value: "a", callAt: 0, returnAt: 10 }),
      op({ kind: "write", value: "b", callAt: 20, returnAt: 30 }),
      op({ kind: "write", value: "u", callAt: 35, returnAt: Infinity }),
    ];
    const stale = op({ kind: "read", value: "a", callAt: 100, returnAt: 110 });
    expect(lostWrites(h, new Map([["k", stale]]))).toHaveLength(1);
    expect(lostWrites(h, new Map([["k", op({ kind: "read", value: "b", callAt: 100, returnAt: 110 })]]))).toEqual([]);
    expect(lostWrites(h, new Map([["k", op({ kind: "read", value: "u", callAt: 100, returnAt: 110 })]]))).toEqual([]);
    expect(lostWrites(h, new Map([["k", op({ kind: "read", value: null, callAt: 100, returnAt: 110 })]]))).toHaveLength(1);
    expect(lostWrites(h, new Map([["k", op({ kind: "read", value: "never", callAt: 100, returnAt: 110 })]]))[0]).toMatch(/never written/);
  });
});

describe("FaultClock", () => {
  const MS = 1_000_000n;
  function fake() {
    let t = 1_000_000n * MS;
    const clock = new FaultClock(() => t, { source: "fake", raw: true, resolutionNs: 1n }, (ms) => (t += BigInt(ms) * MS));
    return { clock, advance: (ms: number) => (t += BigInt(ms) * MS), true: () => t };
  }

  test("step back, jump forward, freeze and suspend move the reading as the kernel's clocks would", () => {
    const f = fake();
    const t0 = f.clock.now();
    expect(f.clock.inject("step-back", 500)).toBe(t0 - 500n * MS);
    expect(f.clock.inject("jump-forward", 200)).toBe(t0 - 300n * MS);
    const frozen = f.clock.inject("freeze", 100);
    f.advance(60);
    expect(f.clock.now()).toBe(frozen);
    f.advance(60); // the freeze is over: back on true time
    expect(f.clock.now()).toBe(frozen + 120n * MS);
    const before = f.clock.now();
    expect(f.clock.sleepOffsetNs()).toBe(0n);
    f.clock.inject("suspend", 1000);
    expect(f.clock.now()).toBe(before); // raw did not count the suspend...
    expect(f.clock.sleepOffsetNs()).toBe(1000n * MS); // ...the sleep offset did
    expect(f.clock.counts).toEqual({ "step-back": 1, "jump-forward": 1, freeze: 1, suspend: 1 });
    expect(f.clock.info.mayFreeze).toBe(true);
    expect(f.clock.info.freezeBudgetNs).toBe(BigInt(MAX_FREEZE_MS) * MS);
  });

  test("bad faults are refused with ClockFaultError and change nothing", () => {
    const f = fake();
    const t0 = f.clock.now();
    for (const [kind, ms] of [["step-back", 0], ["step-back", -5], ["freeze", MAX_FREEZE_MS + 1], ["jump-forward", 1.5], ["suspend", Number.NaN], ["rewind", 10], ["step-back", 2_000_000]] as const) {
      expect(() => f.clock.inject(kind as never, ms)).toThrow(ClockFaultError);
    }
    expect(f.clock.now()).toBe(t0);
    expect(f.clock.sleepOffsetNs()).toBe(0n);
    expect(f.clock.counts).toEqual({ "step-back": 0, "jump-forward": 0, freeze: 0, suspend: 0 });
  });

  test("the core counts a step back as a regression and a suspend as a suspend, and drops its leases", async () => {
    const f = fake();
    const core = await createLeaseCore({ clock: f.clock });
    const lease = core.createLease();
    const extend = () => expect(lease.extend(core.now() + 10_000n * MS, lease.generation())).toBe(true);
    extend();
    expect(lease.valid()).toBe(true);
    f.clock.inject("step-back", 300);
    expect(lease.valid()).toBe(false);
    expect(core.clockEvents().regressions).toBeGreaterThan(0n);
    f.advance(400); // past the last good reading again
    extend();
    expect(lease.valid()).toBe(true);
    f.clock.inject("suspend", 2000);
    expect(lease.valid()).toBe(false);
    expect(core.clockEvents().suspends).toBe(1n);
    expect(core.clockEvents().suspendedNs).toBe(2000n * MS);
  });
});
