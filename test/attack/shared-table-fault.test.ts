// Attack on the shared-table fixes of review finding 2 (host/core/shared.ts Z3, docs/shared-lease.md
// §6 "One history"): a clock step back that a thread's CORE saw does not reach the shared table
// until that thread next reads the table, and SharedLease.extend does not check the thread's
// last clock fault. Each test here FAILS on main (7e3fbd2): another thread serves a shared lease
// whose true age is past its duration.
//
// The thread that extends (the "Raft loop") samples its own core with `core.now()`, the pattern
// of docs/shared-lease.md and test/review-findings.test.ts ("A ... extends a 700 ms lease on its
// own sample"); its reader also reads its core (LeaseReader samples `core.now()`). Neither goes
// through the table, so neither feeds the high-water mark nor tells the table of the fault its
// core recorded (`core.lastClockFaultNs()` > 0). The table hears of a core's fault only when that
// core's clockFaults() count changes between two of ITS OWN default-clock table reads
// (SharedLeaseTable.sample): not on extend, not on a check with an explicit nowNs, not for a
// fault the core saw before it attached.
import { describe, expect, test } from "vitest";
import { attachSharedLeaseTable, createLeaseCore, createSharedLeaseTable } from "lease-core";
import { ShimClock } from "../support/fakes.js";

const MS = 1_000_000n;
const S = 1_000n * MS;
const LEASE_NS = 700n * MS;

describe("attack: a clock fault seen by one thread's core, not by the shared table", () => {
  test("A's core sees a 400 ms step back; B (attached before it) still finds A's lease valid at true age 800 ms", async () => {
    const clock = new ShimClock();
    const a = await createLeaseCore({ clock }); // the Raft loop's thread
    const table = await createSharedLeaseTable(a, { capacity: 1 });
    const b = await createLeaseCore({ clock }); // a request thread, attached from the start
    const tb = await attachSharedLeaseTable(b, table.memory);
    let trueNs = 0n; // true time since the extend

    const lease = table.lease(0);
    const fromNs = a.now();
    expect(lease.extend(fromNs + LEASE_NS, lease.generation())).toBe(true);

    clock.rawNs += 500n * MS;
    trueNs += 500n * MS;
    expect(a.now()).toBeGreaterThan(0n); // A reads its clock (its reader, its engine's heartbeats)
    clock.rawNs -= 400n * MS; // the clock steps back
    expect(a.now()).toBe(0n); // ... and A's core sees it: a regression, recorded
    expect(a.lastClockFaultNs()).toBe(fromNs + 500n * MS);
    expect(a.clockEvents().regressions).toBe(1n);

    clock.rawNs += 300n * MS;
    trueNs += 300n * MS; // the clock reads 400 ms after the extend; 800 ms really passed
    expect(trueNs).toBeGreaterThan(LEASE_NS);
    // B's core never read past the step, and the high-water mark is still the epoch: nothing on
    // the table says a fault happened, although a core on this clock and this table recorded one.
    expect(tb.lease(0).valid(), "B serves a lease whose true age is 800 ms (700 ms lease)").toBe(false);
  });

  test("a thread created after the step, while the core that saw it has not read the table since", async () => {
    const clock = new ShimClock();
    const a = await createLeaseCore({ clock });
    const table = await createSharedLeaseTable(a, { capacity: 1 });
    const lease = table.lease(0);
    expect(lease.extend(a.now() + LEASE_NS, lease.generation())).toBe(true);
    clock.rawNs += 500n * MS;
    a.now();
    clock.rawNs -= 400n * MS;
    expect(a.now()).toBe(0n); // A's core saw the step back
    const b = await createLeaseCore({ clock }); // a worker started lazily, after it
    const tb = await attachSharedLeaseTable(b, table.memory);
    clock.rawNs += 300n * MS; // true age 800 ms
    expect(tb.lease(0).valid(), "a new worker serves a lease whose true age is 800 ms").toBe(false);
  });

  test("SharedLease.extend accepts a sample from before a fault its thread's core recorded", async () => {
    const clock = new ShimClock();
    const a = await createLeaseCore({ clock });
    const table = await createSharedLeaseTable(a, { capacity: 1 });
    const b = await createLeaseCore({ clock });
    const tb = await attachSharedLeaseTable(b, table.memory);
    const lease = table.lease(0);
    // The Raft loop: generation, then a sample, then the quorum round (docs/shared-lease.md §2).
    const generation = lease.generation();
    const own = a.createLease(); // a core lease driven the same way, for comparison
    const ownGeneration = own.generation();
    const sampleNs = a.now();
    // During the round the clock reads 500 ms on, then steps back 400 ms: A's core sees it.
    clock.rawNs += 500n * MS;
    a.now();
    clock.rawNs -= 400n * MS;
    expect(a.now()).toBe(0n);
    expect(sampleNs).toBeLessThanOrEqual(a.lastClockFaultNs()); // the sample predates the fault
    // The core's own lease refuses this extend (the fault bumped its generation: every lease of
    // the core is invalidated); the shared lease's generation was never bumped by the fault.
    expect(own.extend(sampleNs + LEASE_NS, ownGeneration)).toBe(false);
    const extended = lease.extend(sampleNs + LEASE_NS, generation);
    clock.rawNs += 300n * MS; // true age of the sample: 800 ms
    expect({ extended, validOnB: tb.lease(0).valid() }).toEqual({ extended: false, validOnB: false });
  });
  test("one thread: checks with an explicit nowNs from its own core never tell the table of the fault that core saw", async () => {
    const clock = new ShimClock();
    const a = await createLeaseCore({ clock });
    const table = await createSharedLeaseTable(a, { capacity: 1 });
    const lease = table.lease(0);
    const own = a.createLease(); // the same lease kept in the core, for comparison
    const fromNs = a.now();
    expect(lease.extend(fromNs + LEASE_NS, lease.generation())).toBe(true);
    expect(own.extend(fromNs + LEASE_NS, own.generation())).toBe(true);
    clock.rawNs += 500n * MS;
    expect(table.countValid(a.now())).toBe(1); // a batch check on one sample (valid(nowNs) alike)
    clock.rawNs -= 400n * MS;
    expect(a.now()).toBe(0n); // the core sees the step back
    clock.rawNs += 450n * MS; // past the last good instant again: true age 950 ms, the clock says 550
    const nowNs = a.now();
    expect(nowNs).toBeGreaterThan(0n);
    expect(own.valid(nowNs)).toBe(false); // the core's lease was invalidated by the fault
    expect({ countValid: table.countValid(nowNs), valid: lease.valid(nowNs) }, "the shared lease serves at true age 950 ms").toEqual({ countValid: 0, valid: false });
  });
  test("a core that saw a step back BEFORE it attached: the table never hears of it", async () => {
    const clock = new ShimClock();
    const a = await createLeaseCore({ clock });
    const table = await createSharedLeaseTable(a, { capacity: 1 });
    const b = await createLeaseCore({ clock }); // a worker, created early, not yet attached
    const lease = table.lease(0);
    expect(lease.extend(a.now() + LEASE_NS, lease.generation())).toBe(true);
    clock.rawNs += 500n * MS;
    b.now(); // the worker reads its clock (its own reader)
    clock.rawNs -= 400n * MS;
    expect(b.now()).toBe(0n); // the worker's core sees the step back
    clock.rawNs += 450n * MS; // the clock reads 550 ms after the extend; 950 ms really passed
    const tb = await attachSharedLeaseTable(b, table.memory); // (attach needs a reading past the last good one)
    expect(b.lastClockFaultNs()).toBeGreaterThan(0n);
    expect(tb.lease(0).valid(), "the worker serves a lease whose true age is 950 ms").toBe(false);
  });
});
