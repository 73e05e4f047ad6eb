// Attack on the engine answers the reader passes into the wasm decision (host/core/reader.ts #ask,
// #transferAnswer): every answer is checked and a bad one is a typed error (stateOf,
// checkDuration, checkInstant, checkTerm), except `transferInProgress()`, which is compared
// `=== true`. An answer that means "a transfer is in progress" in any other shape (a Promise
// from an `async transferInProgress()`, `1` from a status word, the string "true") reads as
// "no transfer": the transfer guard is silently off while `reader.guards().transfer` says it is
// on, and a lease read is served locally during the transfer, on an ack the transfer made
// worthless (docs/contract.md §4.1 R1; docs/guards.md: openraft #1749, etcd-raft #99). Contract
// standard: a wrong type is a typed, named error, never a silent default. Expected: the read is
// refused with InvalidEngineAnswerError (as for state()), or at least not served locally.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS, countingObserver } from "../support/fakes.js";

/** A FakeEngine whose transferInProgress() answers `answer` while a transfer runs. */
class TransferEngine extends FakeEngine {
  transferring = false;
  constructor(readonly answer: unknown) {
    super();
  }
  transferInProgress(): boolean {
    return (this.transferring ? this.answer : false) as boolean;
  }
}

const ANSWERS: [string, () => unknown][] = [
  ["a Promise of true (async transferInProgress)", () => Promise.resolve(true)],
  ["the number 1", () => 1],
  ['the string "true"', () => "true"],
];

describe("attack: transferInProgress() answering 'yes' in another type than boolean", () => {
  for (const [what, make] of ANSWERS) {
    test(`${what}: no lease read is served locally during the transfer`, async () => {
      const clock = new ManualClock();
      const core = await createLeaseCore({ clock });
      const engine = new TransferEngine(make());
      const counts = countingObserver();
      const reader = core.createLeaseReader(engine, { observer: counts.observer });
      expect(reader.guards().transfer, "the reader reports the transfer guard on").toBe(true);
      engine.ackNs = clock.ns - 10n * MS; // a quorum ack from before the transfer
      engine.transferring = true; // TimeoutNow is on its way: the target may win at once
      clock.advance(1n * MS);

      const local = (() => {
        try {
          return reader.localRead();
        } catch (err) {
          return err as Error;
        }
      })();
      const read = await reader.leaseRead().then(
        (index) => index,
        (err: Error) => err,
      );
      expect(local instanceof Error ? local.name : local, "localRead served during the transfer").not.toBe(engine.applied);
      expect(counts.total(counts.hits), "reads served locally during the transfer").toBe(0);
      if (read instanceof Error) expect(read.name).toBe("InvalidEngineAnswerError");
      else expect(engine.reads, "a read during a transfer must be linearizable").toBe(1);
    });
  }

  test("a Promise of true: a commit during the transfer does not extend the lease (R1: no commit that began suspect extends)", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const engine = new TransferEngine(Promise.resolve(true));
    const reader = core.createLeaseReader(engine);
    engine.transferring = true;
    const outcome = await reader.dispatch(async () => ({ commitIndex: 11n })).then(
      () => "committed",
      (err: Error) => err.name,
    );
    expect(["committed", "InvalidEngineAnswerError"]).toContain(outcome);
    expect(reader.lease.expiry(), "the lease was extended by a commit that began during a transfer").toBe(0n);
  });
});
