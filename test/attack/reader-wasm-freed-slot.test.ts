// Attack on the raw reader exports a WASI or other non-JS host drives (docs/abi.md, "Readers":
// "Every other reader* export traps on a slot not opened"). The reader record of a slot is set
// by readerOpen and never cleared: leaseFree leaves it open, so a slot freed and handed out
// again by leaseAlloc as a plain lease passes every reader assert with the previous reader's
// state (its transfer, its re-arm instant, its closed flag), and a host that mixes up its slots
// gets decisions instead of the promised trap. Through the raw ABI only: the JS host reaches a
// slot through its Lease object, which throws DisposedError once disposed.
import { describe, expect, test } from "vitest";
import { createLeaseCore, CoreInvariantError } from "lease-core";
import { ANSWER_CAPABLE, ANSWER_LEADER } from "../../host/generated/constants.js";
import { ManualClock, MS } from "../support/fakes.js";

describe("attack: a freed reader slot re-allocated as a plain lease", () => {
  test("control: a slot never opened traps", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const ex = core.exports;
    const plain = ex.leaseAlloc();
    expect(() => ex.readerDecide(plain, clock.ns, ANSWER_CAPABLE | ANSWER_LEADER, 700n * MS, clock.ns - MS, 0n, 0n, 0n)).toThrow(CoreInvariantError);
  });

  test("readerDecide on a slot freed and allocated again, never re-opened, traps as the ABI says", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const ex = core.exports;
    const slot = ex.leaseAlloc();
    ex.readerOpen(slot);
    ex.readerBeginTransfer(slot); // the old reader's state: a transfer in progress
    ex.leaseFree(slot);
    const again = ex.leaseAlloc();
    expect(again).toBe(slot); // the free list hands the slot out again, as a plain lease
    let outcome: number | Error;
    try {
      outcome = ex.readerDecide(again, clock.ns, ANSWER_CAPABLE | ANSWER_LEADER, 700n * MS, clock.ns - MS, 0n, 0n, 0n);
    } catch (err) {
      outcome = err as Error;
    }
    expect(outcome instanceof CoreInvariantError ? "trap" : `decided ${String(outcome)} with the previous reader's transfer state`).toBe("trap");
  });
});
