// Property tests: random command sequences through the wasm core agree with a naive TypeScript
// model of the contract (a deliberately simple reference, as etcd-raft does). A failing run
// prints its seed; replay with FC_SEED=<seed>.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createLeaseCore, engineLeaseAckValid } from "lease-core";
import { ManualClock } from "./support/fakes.js";

const seed = process.env["FC_SEED"] === undefined ? undefined : Number(process.env["FC_SEED"]);
const params = { numRuns: 300, ...(seed === undefined ? {} : { seed }) };

/** Contract §2, written as plainly as possible. */
class LeaseModel {
  expiry = 0n;
  generation = 0n;
  valid(now: bigint) {
    return now !== 0n && this.expiry !== 0n && now < this.expiry;
  }
  extend(until: bigint, gen: bigint) {
    if (until === 0n || gen !== this.generation) return false;
    if (this.expiry !== 0n && until <= this.expiry) return false;
    this.expiry = until;
    return true;
  }
  invalidate() {
    this.expiry = 0n;
    this.generation += 1n;
  }
}

/** Contract §3 by sorting: the q-th newest ack, 0 when fewer than q. */
class TrackerModel {
  acks = new Map<number, bigint>();
  published = 0n;
  q = -1; // the follower quorum last given; a new one is a configuration change (forgets every ack)
  #republish(q: number) {
    if (q === 0) return;
    const sorted = [...this.acks.values()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    this.published = sorted.length < q ? 0n : sorted[q - 1]!;
  }
  record(peer: number, q: number, t: bigint) {
    if (q !== this.q) {
      // A new q is a configuration change, applied before the ack is looked at (even a zero one).
      if (this.q !== -1) this.reset();
      this.q = q;
      this.#republish(q);
    }
    if (t === 0n) return;
    if (q === 0) return; // one voter: a peer's ack is recorded nowhere
    this.acks.set(peer, (this.acks.get(peer) ?? 0n) > t ? this.acks.get(peer)! : t);
    this.#republish(q);
  }
  remove(peer: number, q: number) {
    this.acks.delete(peer);
    this.q = q;
    this.#republish(q);
  }
  reset() {
    this.acks.clear();
    this.published = 0n;
  }
}

// Small ranges so ties, exact expiries and zeroes happen often.
const instant = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 40n }));
const leaseCommand = fc.oneof(
  fc.record({ op: fc.constant("extend" as const), until: instant, gen: fc.oneof(fc.constant(-1), fc.nat(4)) }),
  fc.record({ op: fc.constant("invalidate" as const) }),
  fc.record({ op: fc.constant("valid" as const), now: instant }),
);

describe("model-based: the wasm core against the naive model", () => {
  test("leases: every answer, expiry and generation agree", async () => {
    const core = await createLeaseCore({ clock: new ManualClock(), maxLeases: 4096 });
    let commands = 0;
    fc.assert(
      fc.property(fc.array(leaseCommand, { minLength: 10, maxLength: 80, size: "max" }), (script) => {
        const lease = core.createLease();
        const model = new LeaseModel();
        model.generation = lease.generation(); // a reused slot starts past 0
        try {
          for (const c of script) {
            commands++;
            if (c.op === "extend") {
              const gen = c.gen === -1 ? model.generation : model.generation - BigInt(c.gen);
              if (gen < 0n) continue;
              expect(lease.extend(c.until, gen)).toBe(model.extend(c.until, gen));
            } else if (c.op === "invalidate") {
              lease.invalidate();
              model.invalidate();
            } else {
              expect(lease.valid(c.now)).toBe(model.valid(c.now));
            }
            expect(lease.expiry()).toBe(model.expiry);
            expect(lease.generation()).toBe(model.generation);
          }
        } finally {
          lease.dispose();
        }
      }),
      params,
    );
    expect(commands).toBeGreaterThan(10_000);
  });

  test("quorum trackers: selection agrees with sorting", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    const command = fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant("ack" as const), peer: fc.nat(7), q: fc.nat(4), t: instant }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant("remove" as const), peer: fc.nat(7), q: fc.nat(4) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("reset" as const) }) },
    );
    fc.assert(
      fc.property(fc.array(command, { minLength: 10, maxLength: 80, size: "max" }), (script) => {
        const tracker = core.createQuorumAckTracker();
        const model = new TrackerModel();
        try {
          for (const c of script) {
            if (c.op === "ack") {
              tracker.recordAck(c.peer, c.q, c.t);
              model.record(c.peer, c.q, c.t);
            } else if (c.op === "remove") {
              tracker.removePeer(c.peer, c.q);
              model.remove(c.peer, c.q);
            } else {
              tracker.reset();
              model.reset();
            }
            expect(tracker.quorumAck()).toBe(model.published);
            expect(tracker.peerCount()).toBe(model.acks.size);
          }
        } finally {
          tracker.dispose();
        }
      }),
      params,
    );
  });

  test("the engine check: TypeScript and wasm give the same answer", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    fc.assert(
      fc.property(fc.boolean(), instant, instant, fc.bigInt({ min: 0n, max: 40n }), (leader, ack, now, duration) => {
        const wasm = core.exports.engineAckValid(leader ? 1 : 0, ack, now, duration) !== 0;
        expect(engineLeaseAckValid(leader ? "leader" : "follower", ack, now, duration)).toBe(wasm);
      }),
      params,
    );
  });
});
