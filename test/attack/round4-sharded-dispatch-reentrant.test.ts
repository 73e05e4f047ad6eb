// Attack (round 4) on the round-3 fix of leaseReadAllGroups' ask/decide split (0632dd9,
// host/core/reader.ts [askFor]/[readAt]): [readAt] re-asks only when the reader's ask counter
// moved, and only #ask() moves it. `dispatch` does not call #ask(): it asks the transfer answer
// itself, samples, and records it in the core (readerNoteTransfer) before its first await.
// Caller code run between group 2's ask and its decision (group 1's onHit observer) starts a
// write on group 2 while group 2's engine transfers: the core notes the transfer at the
// dispatch's sample. Group 2 then decides on its FIRST ask's "no transfer" bits (counter
// unchanged) at the older cut sample, which clears the transfer the dispatch had just noted
// while the engine still transfers; its end never re-arms and a later localRead is served on
// an ack sent during the transfer (docs/contract.md §4.1 R1, R2).
// The control runs the same schedule with the dispatch made on its own (not inside
// leaseReadAllGroups): the end re-arms and the ack sent during the transfer never serves.
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
  let write: Promise<unknown> | undefined;
  const duringTransfer = () => {
    // Group 2's engine starts a transfer; a heartbeat sent now (during it) is acked.
    engine2.transferring = true;
    clock.advance(5n * MS);
    ackDuringTransferNs = clock.ns;
    engine2.ackNs = ackDuringTransferNs;
    clock.advance(1n * MS);
    // A write on group 2 starts (it samples and notes the transfer before its commit's await);
    // the commit fails (no extend from it either way).
    write = sharded.reader(2).dispatch(async () => {
      throw new Error("proposal dropped");
    }).catch(() => {});
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
  await write;
  const suspectAfter = sharded.reader(2).suspect; // the engine still transfers
  // The transfer ends (aborted); later, group 2 reads locally.
  clock.advance(1n * MS);
  engine2.transferring = false;
  const endNs = clock.ns;
  clock.advance(1n * MS);
  const served = sharded.reader(2).localRead();
  return { served, suspectAfter, ackDuringTransferNs, endNs, rearmAfterNs: core.exports.readerRearmAfterNs(sharded.reader(2).lease.slot) };
}

describe("attack round 4: a dispatch re-entering between leaseReadAllGroups' ask and decide", () => {
  test("control: the same schedule without re-entry re-arms at the end; the ack sent during the transfer never serves", async () => {
    const r = await run(false);
    expect(r.ackDuringTransferNs < r.endNs).toBe(true);
    expect(r.suspectAfter).toBe(true);
    expect(r.rearmAfterNs >= r.endNs).toBe(true);
    expect(r.served).toBeUndefined();
  });

  test("re-entrant dispatch: group 2 keeps the transfer the write noted, re-arms at its end, never serves the ack sent during it", async () => {
    const r = await run(true);
    expect(r.ackDuringTransferNs < r.endNs).toBe(true);
    expect(r.served, "a local read served on an ack the engine sent during its transfer (R2)").toBeUndefined();
    expect(r.suspectAfter, "the transfer the dispatch noted was cleared by the older 'no transfer' answers").toBe(true);
    expect(r.rearmAfterNs - r.endNs >= 0n, `re-arm instant ${r.rearmAfterNs - r.endNs} ns from the end of the transfer`).toBe(true);
  });
});
