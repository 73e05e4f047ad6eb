// Attack (round 3) on ShardedLeaseReader.leaseReadAllGroups' ask-all-then-sample split
// (host/core/sharded-reader.ts, merged in e99acc3). Each group's engine is asked first
// ([askFor]: the ANSWER_* bits are returned, but the VALUES — lastQuorumAck, duration, terms —
// are kept in the reader's private fields), then one sample is taken, then each group decides
// in turn ([readAt]). Group 1's decision runs caller code before group 2 decides: its observer
// (onHit/onMiss, shared by all groups) and its engine's appliedIndex()/linearizableRead(). If
// that code reads group 2 (sharded.reader(2).localRead(), a public call), group 2's fields are
// re-asked. Group 2 then decides on a MIX: the transfer bits of the first ask ("no transfer")
// with the ack of the second (sent during the transfer), and its "no transfer" bits clear the
// engine-transfer flag the re-entrant read had just set: the reader forgets a transfer the
// engine is still reporting, so when it ends nothing re-arms (docs/contract.md §4.1 R1, R2:
// "an engine ack serves only when later than the end of the transfer") and a later local read
// is served on an ack the engine sent DURING the transfer.
// The control runs the same engine schedule with the re-entrant read made on its own (not
// inside leaseReadAllGroups): the end re-arms and the ack sent during the transfer never serves.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

class TransferEngine extends FakeEngine {
  transferring = false;
  transferInProgress(): boolean {
    return this.transferring;
  }
}

async function run(reentrant: boolean) {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  const engine1 = new FakeEngine();
  const engine2 = new TransferEngine();
  engine2.readError = new Error("read index timed out"); // no linearizable read warms group 2's caller lease
  let reentered = false;
  let ackDuringTransferNs = 0n;
  const duringTransfer = () => {
    // Group 2's engine starts a transfer; a heartbeat sent now (during it) is acked.
    engine2.transferring = true;
    clock.advance(5n * MS);
    ackDuringTransferNs = clock.ns;
    engine2.ackNs = ackDuringTransferNs;
    clock.advance(1n * MS);
    // A read of group 2 sees the transfer (R1: suspect, no local serve).
    expect(sharded.reader(2).localRead()).toBeUndefined();
    expect(sharded.reader(2).suspect).toBe(true);
  };
  const sharded = core.createShardedLeaseReader({
    groups: new Map<number, FakeEngine>([[1, engine1], [2, engine2]]),
    route: (key) => (String(key) < "m" ? 1 : 2),
    observer: {
      onHit: () => {
        if (!reentrant || reentered) return;
        reentered = true;
        duringTransfer(); // caller code run by group 1's hit, before group 2 decides
      },
    },
  });
  clock.advance(100n * MS);
  engine1.ackNs = clock.ns; // group 1 serves locally: its observer hears onHit
  engine2.ackNs = 0n; // group 2 has no proof yet
  if (reentrant) {
    await sharded.leaseReadAllGroups().catch(() => {});
    expect(reentered).toBe(true);
  } else {
    await sharded.leaseReadAllGroups().catch(() => {});
    duringTransfer();
  }
  // The transfer ends (aborted); later, group 2 reads locally.
  clock.advance(1n * MS);
  engine2.transferring = false;
  const endNs = clock.ns;
  clock.advance(1n * MS);
  const served = sharded.reader(2).localRead();
  return { served, ackDuringTransferNs, endNs, rearmAfterNs: core.exports.readerRearmAfterNs(sharded.reader(2).lease.slot) };
}

describe("attack round 3: a re-entrant read between leaseReadAllGroups' ask and decide", () => {
  test("control: the same schedule without re-entry re-arms at the end; the ack sent during the transfer never serves", async () => {
    const r = await run(false);
    expect(r.ackDuringTransferNs < r.endNs).toBe(true);
    expect(r.rearmAfterNs >= r.endNs).toBe(true);
    expect(r.served).toBeUndefined();
  });

  test("re-entrant: group 2 keeps the transfer it saw, re-arms at its end, and never serves the ack sent during it", async () => {
    const r = await run(true);
    expect(r.ackDuringTransferNs < r.endNs).toBe(true);
    expect(r.served, "a local read served on an ack the engine sent during its transfer (R2)").toBeUndefined();
    expect(r.rearmAfterNs - r.endNs >= 0n, `re-arm instant ${r.rearmAfterNs - r.endNs} ns from the end of the transfer`).toBe(true);
  });
});
