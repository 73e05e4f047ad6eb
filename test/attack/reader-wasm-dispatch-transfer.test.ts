// Attack on what dispatch does with the engine's transfer answer (host/core/reader.ts dispatch ->
// readerSuspectNow / readerExtendAfterCommit, assembly/reader.ts suspectNow). dispatch asks
// transferInProgress() before and after the commit and refuses to extend while it is true, but
// it never records the answer: only readerDecide sets the "engine transfer" state whose end
// re-arms the lease (R2). A transfer that only dispatch saw therefore ends with no re-arm, and
// an engine ack sent DURING it (before it ended) serves the next read locally.
//
// docs/contract.md §4.1 R1/R2 and docs/guards.md: the lease comes back after a transfer only
// with a quorum proof sent after the transfer ended, never because it failed. The control case:
// the same schedule with a leaseRead where the dispatch was (the decision records the transfer)
// refuses the ack. Expected for both: the read after the transfer is not served on that ack.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

class TransferEngine extends FakeEngine {
  transferring = false;
  transferInProgress(): boolean {
    return this.transferring;
  }
}

/** The schedule, with `observe` being the one call the reader makes while the transfer runs. */
async function run(observe: "dispatch" | "leaseRead") {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  const engine = new TransferEngine();
  engine.readError = new Error("read index timed out"); // no linearizable read warms the lease
  const reader = core.createLeaseReader(engine);
  clock.advance(10n * MS);
  engine.transferring = true; // the leader starts a transfer (TimeoutNow may elect the target at once)
  clock.advance(10n * MS);
  let committed = false;
  if (observe === "dispatch") {
    await reader.dispatch(async () => ({ commitIndex: 5n }));
    committed = true;
  } else {
    await reader.leaseRead().catch(() => {});
  }
  clock.advance(10n * MS);
  const ackSentNs = clock.ns; // a heartbeat sent during the transfer; its reply is the engine's ack
  engine.ackNs = ackSentNs;
  clock.advance(10n * MS);
  engine.transferring = false; // the transfer ends (aborted, as this node sees it)
  const endNs = clock.ns;
  clock.advance(10n * MS);
  return { committed, ackSentNs, endNs, expiry: reader.lease.expiry(), served: reader.localRead(), suspect: reader.suspect };
}

describe("attack: a transfer seen only by dispatch is forgotten", () => {
  test("control: a leaseRead during the transfer records it; after the end the ack sent during it does not serve", async () => {
    const r = await run("leaseRead");
    expect(r.ackSentNs < r.endNs).toBe(true);
    expect(r.served).toBeUndefined();
  });

  test("dispatch during the transfer: after the end, the ack sent during it must not serve a local read", async () => {
    const r = await run("dispatch");
    expect(r.committed).toBe(true);
    expect(r.expiry, "the commit during the transfer did not extend (as it should not)").toBe(0n);
    expect(r.ackSentNs < r.endNs).toBe(true);
    expect(r.served, "served locally on an ack sent before the transfer ended").toBeUndefined();
  });
});
