// Model-based tests of the guards: random command sequences (extends, invalidations, terms,
// acks in and out of term, removals, read decisions with every guard input) through the wasm
// core, against a naive TypeScript model of contract §2-§4 written as plainly as possible.
// At least 100,000 commands per run. A failure prints its seed; replay with FC_SEED=<seed>.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { ManualClock } from "./support/fakes.js";

const seed = process.env["FC_SEED"] === undefined ? undefined : Number(process.env["FC_SEED"]);
const params = { numRuns: 1200, ...(seed === undefined ? {} : { seed }) };

const R = { valid: 0, expired: 1, notLeader: 2, clockUnknown: 3, termMismatch: 4, suspend: 5, suspect: 6, disabled: 7 };
const SERVE_LOCAL = 0x100;
const BY_ENGINE = 0x200;

/** The lease, the term-checked tracker and decideRead2, naively. */
class Model {
  expiry = 0n;
  generation = 0n;
  term = 0n;
  acks = new Map<number, bigint>();
  published = 0n;
  refused = 0n;
  q = -1; // the follower quorum last given; a new one is a configuration change (forgets every ack)
  extend(until: bigint, gen: bigint): boolean {
    if (until <= 0n || gen !== this.generation || (this.expiry !== 0n && until <= this.expiry)) return false;
    this.expiry = until;
    return true;
  }
  invalidate(): void {
    this.expiry = 0n;
    this.generation++;
  }
  #republish(q: number): void {
    if (q === 0) return;
    const sorted = [...this.acks.values()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    this.published = sorted.length < q ? 0n : sorted[q - 1]!;
  }
  setTerm(term: bigint): boolean {
    if (term === this.term) return false;
    this.term = term;
    this.acks.clear();
    this.published = 0n;
    return true;
  }
  ack(peer: number, q: number, at: bigint, term: bigint | undefined): boolean {
    if (q !== this.q) {
      // A new q is a configuration change, applied before the ack is looked at (refused or not).
      if (this.q !== -1) this.reset();
      this.q = q;
      this.#republish(q);
    }
    if (term !== undefined && term !== this.term) {
      this.refused++;
      return false;
    }
    if (at === 0n) return true;
    if (q === 0) return true; // one voter: a peer's ack is recorded nowhere
    const old = this.acks.get(peer) ?? 0n;
    this.acks.set(peer, at > old ? at : old);
    this.#republish(q);
    return true;
  }
  remove(peer: number, q: number): void {
    this.acks.delete(peer);
    this.q = q;
    this.#republish(q);
  }
  reset(): void {
    this.acks.clear();
    this.published = 0n;
  }
  decide(d: Decide): number {
    if (!d.capable || d.durationNs <= 0n) return R.disabled;
    if (d.nowNs === 0n) return R.clockUnknown;
    if (!d.leader) return R.notLeader;
    if (d.suspect) return R.suspect;
    if (d.ownTerm && d.appliedTerm !== d.currentTerm) return R.termMismatch;
    const ackInTerm = !d.ackTerm || d.quorumAckTerm === d.currentTerm;
    const ack = d.ackNs;
    if (ackInTerm && ack > d.rearmAfterNs && ack !== 0n && ack <= d.nowNs && d.nowNs - ack < d.durationNs) return R.valid | SERVE_LOCAL | BY_ENGINE;
    if (this.expiry !== 0n && d.nowNs < this.expiry) return R.valid | SERVE_LOCAL;
    return ackInTerm ? R.expired : R.termMismatch;
  }
}

interface Decide {
  nowNs: bigint;
  capable: boolean;
  durationNs: bigint;
  leader: boolean;
  ackNs: bigint;
  suspect: boolean;
  ownTerm: boolean;
  ackTerm: boolean;
  currentTerm: bigint;
  appliedTerm: bigint;
  quorumAckTerm: bigint;
  rearmAfterNs: bigint;
}

// Small ranges, so that ties, exact expiries, equal terms and zeroes are common.
const instant = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 30n }));
const term = fc.bigInt({ min: 0n, max: 3n });
const decide = fc.record({
  nowNs: instant,
  capable: fc.boolean(),
  durationNs: fc.bigInt({ min: 0n, max: 12n }),
  leader: fc.boolean(),
  ackNs: instant,
  useTrackerAck: fc.boolean(),
  suspect: fc.boolean(),
  ownTerm: fc.boolean(),
  ackTerm: fc.boolean(),
  currentTerm: term,
  appliedTerm: term,
  quorumAckTerm: term,
  rearmAfterNs: fc.oneof(fc.constant(0n), instant),
});
const command = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("extend" as const), until: instant, stale: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("invalidate" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("setTerm" as const), term }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("ack" as const), peer: fc.nat(5), q: fc.nat(3), at: instant, term: fc.option(term, { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("remove" as const), peer: fc.nat(5), q: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reset" as const) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("decide" as const), d: decide }) },
);

describe("model-based: the guards in the wasm core against the naive model", () => {
  test("leases, term-checked trackers and decideRead2 agree on >= 100k commands", async () => {
    const core = await createLeaseCore({ clock: new ManualClock(), maxLeases: 4096, maxTrackers: 4 });
    const ex = core.exports;
    let commands = 0;
    fc.assert(
      fc.property(fc.array(command, { minLength: 60, maxLength: 140, size: "max" }), (script) => {
        const lease = core.createLease();
        const tracker = core.createQuorumAckTracker();
        const m = new Model();
        m.generation = lease.generation();
        try {
          for (const c of script) {
            commands++;
            switch (c.op) {
              case "extend": {
                const gen = c.stale ? m.generation - 1n : m.generation;
                if (gen < 0n) break;
                expect(lease.extend(c.until, gen)).toBe(m.extend(c.until, gen));
                break;
              }
              case "invalidate":
                lease.invalidate();
                m.invalidate();
                break;
              case "setTerm":
                expect(tracker.setTerm(c.term)).toBe(m.setTerm(c.term));
                break;
              case "ack":
                expect(tracker.recordAck(c.peer, c.q, c.at, c.term)).toBe(m.ack(c.peer, c.q, c.at, c.term));
                break;
              case "remove":
                tracker.removePeer(c.peer, c.q);
                m.remove(c.peer, c.q);
                break;
              case "reset":
                tracker.reset();
                m.reset();
                break;
              case "decide": {
                const d = { ...c.d, ackNs: c.d.useTrackerAck ? tracker.quorumAck() : c.d.ackNs };
                const guards = (d.suspect ? 1 : 0) | (d.ownTerm ? 2 : 0) | (d.ackTerm ? 4 : 0);
                const got = ex.decideRead2(lease.slot, d.nowNs, d.capable ? 1 : 0, d.durationNs, d.leader ? 1 : 0, d.ackNs, guards, d.currentTerm, d.appliedTerm, d.quorumAckTerm, d.rearmAfterNs);
                expect(got).toBe(m.decide(d));
                break;
              }
            }
            expect(lease.expiry()).toBe(m.expiry);
            expect(lease.generation()).toBe(m.generation);
            expect(tracker.quorumAck()).toBe(m.published);
            expect(tracker.term()).toBe(m.term);
            expect(tracker.refusedAcks()).toBe(m.refused);
          }
        } finally {
          lease.dispose();
          tracker.dispose();
        }
      }),
      params,
    );
    expect(commands).toBeGreaterThanOrEqual(100_000);
  }, 120_000);
});
