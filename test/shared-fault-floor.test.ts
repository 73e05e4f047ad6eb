// The shared table's fault floor and high-water mark fed by every attached core (docs/shared-lease.md
// §6, Z3 and Z4; host/core/shared.ts): what the attack tests in test/attack/ do not already pin.
// One process-wide clock modelled as in test/review-findings.test.ts; each "thread" is a core.
import { describe, expect, test } from "vitest";
import { InvalidDurationError, InvalidInstantError, attachSharedLeaseTable, createLeaseCore, createSharedLeaseTable } from "lease-core";
import { ShimClock } from "./support/fakes.js";

const MS = 1_000_000n;
const S = 1_000n * MS;
const LEASE_NS = 700n * MS;

async function twoThreads() {
  const clock = new ShimClock();
  const a = await createLeaseCore({ clock });
  const table = await createSharedLeaseTable(a, { capacity: 2 });
  const b = await createLeaseCore({ clock });
  const tb = await attachSharedLeaseTable(b, table.memory);
  return { clock, a, table, b, tb };
}

describe("the high-water mark hears every attached core's instants, not only the table's reads", () => {
  test("A's core reads past a point, the clock steps back, B reads before A reads again: refused", async () => {
    const { clock, a, table, b, tb } = await twoThreads();
    const lease = table.lease(0);
    expect(lease.extend(a.now() + LEASE_NS, lease.generation())).toBe(true);
    clock.rawNs += 500n * MS;
    expect(a.now()).toBeGreaterThan(0n); // A's reader, on its core: never through the table
    clock.rawNs -= 400n * MS; // the clock steps back; no core has read it yet
    clock.rawNs += 300n * MS; // it reads 400 ms after the extend; 800 ms really passed
    expect(tb.lease(0).valid(), "B serves a lease whose true age is 800 ms").toBe(false);
    expect(tb.countValid()).toBe(0);
    // B's core learned of the fault through the table: it retires its own acks from before it.
    expect(b.lastClockFaultNs()).toBeGreaterThan(0n);
    expect(b.clockEvents().regressions).toBeGreaterThanOrEqual(1n); // (each reading below the floor counts, as on A)
    // And A's core learns of it at its next table read.
    expect(lease.valid()).toBe(false);
    expect(a.lastClockFaultNs()).toBe(b.lastClockFaultNs());
  });

  test("no step back: the cores' instants raise no fault, and B serves A's fresh lease", async () => {
    const { clock, a, table, b, tb } = await twoThreads();
    const lease = table.lease(0);
    for (let i = 0; i < 20; i++) {
      clock.rawNs += 3n * MS;
      a.now();
      b.now();
    }
    expect(lease.extend(a.now() + LEASE_NS, lease.generation())).toBe(true);
    clock.rawNs += 100n * MS;
    expect(tb.lease(0).valid()).toBe(true);
    expect(lease.valid()).toBe(true);
    expect({ a: a.lastClockFaultNs(), b: b.lastClockFaultNs() }).toEqual({ a: 0n, b: 0n });
  });
});

describe("the fault floor: no instant at or below it is a reading, no sample at or below it extends", () => {
  async function afterFault() {
    const t = await twoThreads();
    const { clock, a } = t;
    clock.rawNs += 500n * MS;
    a.now();
    clock.rawNs -= 400n * MS;
    expect(a.now()).toBe(0n); // A's core sees the step back: the table's floor rises
    return t;
  }

  test("extendFrom refuses a sample from before the fault, even with a generation read after it", async () => {
    const { clock, a, table, tb } = await afterFault();
    const lease = table.lease(0);
    const floorNs = a.lastClockFaultNs();
    const generation = lease.generation(); // read AFTER the fault (the protocol reads it first)
    const preFaultSampleNs = floorNs - 450n * MS; // a sample the engine took before the step
    expect(lease.extendFrom(preFaultSampleNs, LEASE_NS, generation)).toBe(false);
    expect(lease.extendFrom(floorNs, LEASE_NS, generation)).toBe(false); // at the floor: still before
    clock.rawNs += 450n * MS; // past the floor again
    const sampleNs = a.now();
    expect(sampleNs).toBeGreaterThan(floorNs);
    expect(lease.extendFrom(sampleNs, LEASE_NS, generation)).toBe(true);
    expect(tb.lease(0).valid()).toBe(true);
  });

  test("an explicit nowNs at or below the floor is no reading, on every thread and every check", async () => {
    const { clock, a, table, tb } = await afterFault();
    const floorNs = a.lastClockFaultNs();
    clock.rawNs += 450n * MS;
    const lease = table.lease(0);
    expect(lease.extendFrom(a.now(), LEASE_NS, lease.generation())).toBe(true);
    for (const nowNs of [floorNs - 1n, floorNs]) {
      expect(lease.valid(nowNs)).toBe(false);
      expect(tb.lease(0).valid(nowNs)).toBe(false);
      expect(table.countValid(nowNs)).toBe(0);
      expect(table.firstInvalid(nowNs)).toBe(0);
    }
    expect(lease.valid(floorNs + 1n)).toBe(true);
  });

  test("a fault the table knows becomes the core's when it attaches (its acks from before retire)", async () => {
    const { clock, a, table } = await afterFault();
    clock.rawNs += 400n * MS;
    const c = await createLeaseCore({ clock }); // a worker created after the step
    const tracker = c.createQuorumAckTracker();
    clock.rawNs += 1n * MS;
    expect(tracker.recordAck(2, 1, c.now())).toBe(true); // an ack it sampled before it attached
    await attachSharedLeaseTable(c, table.memory);
    expect(c.lastClockFaultNs()).toBe(a.lastClockFaultNs());
    expect(tracker.quorumAck()).toBe(0n);
  });

  test("extendFrom: bad input is a typed error and changes nothing", async () => {
    const { table } = await twoThreads();
    const lease = table.lease(0);
    expect(() => lease.extendFrom(-1n, LEASE_NS, 0n)).toThrow(InvalidInstantError);
    expect(() => lease.extendFrom(1n, -1n, 0n)).toThrow(InvalidDurationError);
    expect(() => lease.extendFrom(1n << 63n, LEASE_NS, 0n)).toThrow(InvalidInstantError);
    expect(lease.expiry()).toBe(0n);
    expect(lease.generation()).toBe(0n);
  });
});
