// Attack on the re-arm instant after an engine-reported transfer (docs/contract.md §4.1 R2:
// "the engine's quorum ack serves only when strictly later than the re-arm instant", the end of
// the transfer). The core takes the end at the decision's sample (assembly/reader.ts decide ->
// markTransferEnd(nowNs)). leaseRead() and localRead() ask the engine FIRST and fill the clock
// after (#decideNow), so that sample is at or after the moment the engine said "ended". But
// leaseReadThen() and ShardedLeaseReader.leaseReadAllGroups() still sample the clock BEFORE
// they ask the engine (#decide(now)): the end is then dated before the engine reported it, and
// an ack the engine sent in between (during the transfer) counts as a proof taken after it.
//
// The schedule: an engine whose state another thread moves (a native Raft node: its answers
// change between any two calls). The reader saw the transfer. At T it samples; while it asks
// the engine, the engine sends a heartbeat at T+5 ms (still transferring: the target may win
// at once, TimeoutNow bypasses the voters' leader stickiness) and its transfer ends at T+10 ms.
// Through leaseRead the re-arm instant is T+10 ms and the T+5 ms ack never serves; through
// leaseReadThen / leaseReadAllGroups it is T and a later read is served on the T+5 ms ack
// (expected: linearizable). The same schedule, three paths, two answers.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

/** A FakeEngine reporting transfers, with a hook run while the reader asks for the ack (what
 *  another thread of a native engine does between the reader's sample and its questions). */
class ThreadedEngine extends FakeEngine {
  transferring = false;
  meanwhile: (() => void) | undefined;
  transferInProgress(): boolean {
    return this.transferring;
  }
  override lastQuorumAck(): bigint {
    const run = this.meanwhile;
    this.meanwhile = undefined;
    run?.();
    return this.ackNs;
  }
}

type Path = "leaseRead" | "leaseReadThen" | "leaseReadAllGroups";

async function run(path: Path) {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  const engine = new ThreadedEngine();
  const sharded = core.createShardedLeaseReader({ groups: new Map([[1, engine]]), route: () => 1 });
  const reader = sharded.reader(1);
  // No linearizable read warms the caller lease here: only the engine's ack can serve.
  engine.readError = new Error("read index timed out");
  engine.transferring = true;
  await reader.leaseRead().catch(() => {}); // a decision sees the transfer (R1: suspect)
  expect(reader.suspect).toBe(true);
  clock.advance(10n * MS);
  const startNs = clock.ns;
  let ackSentNs = 0n;
  let endNs = 0n;
  engine.meanwhile = () => {
    clock.advance(5n * MS);
    ackSentNs = clock.ns; // a heartbeat sent while the transfer is still in progress
    clock.advance(5n * MS);
    endNs = clock.ns;
    engine.transferring = false; // the transfer ends (aborted, as this node sees it)
    engine.ackNs = ackSentNs; // its reply arrives: the engine publishes the send time
  };
  if (path === "leaseRead") await reader.leaseRead().catch(() => {});
  else if (path === "leaseReadThen") await reader.leaseReadThen(() => 0).catch(() => {});
  else await sharded.leaseReadAllGroups().catch(() => {});
  expect(endNs - startNs).toBe(10n * MS);
  expect(ackSentNs < endNs, "the ack was sent before the transfer ended").toBe(true);
  clock.advance(10n * MS);
  return {
    rearmAfterNs: core.exports.readerRearmAfterNs(reader.lease.slot),
    endNs,
    ackSentNs,
    served: reader.localRead(),
  };
}

describe("attack: the end of an engine-reported transfer is dated by a sample taken before the engine's answer", () => {
  test("leaseRead (asks first, samples after): the re-arm instant covers the end, the ack sent during the transfer never serves", async () => {
    const r = await run("leaseRead");
    expect(r.rearmAfterNs >= r.endNs).toBe(true);
    expect(r.served).toBeUndefined();
  });

  for (const path of ["leaseReadThen", "leaseReadAllGroups"] as const) {
    test(`${path}: the re-arm instant is at or after the end the engine reported, and the ack sent before it never serves`, async () => {
      const r = await run(path);
      expect(r.served, "localRead served on an ack sent during the transfer").toBeUndefined();
      expect(r.rearmAfterNs - r.endNs >= 0n, `re-arm instant ${r.rearmAfterNs - r.endNs} ns from the end`).toBe(true);
    });
  }
});
