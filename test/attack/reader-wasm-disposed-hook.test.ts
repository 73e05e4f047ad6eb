// Attack on the reader's leader-loss hook after the caller disposed the reader's lease without
// closing the reader (host/core/reader.ts: the hook reads `lease.slot`, which throws DisposedError
// once the lease is disposed; commit 04b424a made `suspect` and `guards()` tolerate a disposed
// lease, not the hook). The throw escapes into the engine's listener loop, so every listener
// after it (another reader of the same engine) never hears of the loss and keeps its lease:
// docs/contract.md §4.1 R4 ("a leader loss ... invalidates the lease"). With a new leadership
// whose own-term guard is off (the engine reports no appliedTerm), that reader then serves a
// local read on a lease proved under the previous leadership, after a step-down the contract
// says retires it. Expected: the loss reaches every live reader; the disposed reader's hook
// does nothing (there is nothing left to void) and does not throw into the engine.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

describe("attack: a reader whose lease the caller disposed breaks the engine's leader-loss fan-out", () => {
  test("the other reader of the engine is invalidated by the leader loss, and no hook throws into the engine", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const engine = new FakeEngine();
    const a = core.createLeaseReader(engine);
    const b = core.createLeaseReader(engine);
    await b.leaseRead(); // a linearizable read warms b's lease
    expect(b.lease.valid()).toBe(true);
    const generationBefore = b.lease.generation();

    a.lease.dispose(); // the caller frees a's lease (instead of a.close())

    clock.advance(10n * MS);
    let thrown: unknown;
    try {
      engine.loseLeadership(); // FakeEngine calls its listeners in order, as an EventEmitter does
    } catch (err) {
      thrown = err;
    }
    const heard = b.lease.generation() > generationBefore;

    // The node is elected again (the engine reports no appliedTerm: the own-term guard is off).
    engine.role = "leader";
    clock.advance(10n * MS);
    const readsBefore = engine.reads;
    await b.leaseRead();
    expect({
      hookThrewIntoEngine: (thrown as Error | undefined)?.name,
      otherReaderInvalidated: heard,
      linearizableReadsAfterReElection: engine.reads - readsBefore,
    }).toEqual({ hookThrewIntoEngine: undefined, otherReaderInvalidated: true, linearizableReadsAfterReElection: 1 });
  });
});
