/**
 * The cases every runtime measures, given that runtime's cores and bare clock reads. Ids are
 * stable: scripts/bench.mjs computes ratios from them and bench/budgets.json budgets them.
 *
 * - clock.*     the bare clock reads (the floors): what the host's fill costs without the core;
 * - valid.*     `lease.valid()` (fill + check in wasm) on each clock; `validAt`: `valid(nowNs)`;
 * - peer.*      the pure-TypeScript peer (bench/peer.ts) on the same clock;
 * - leaseRead   `reader.leaseRead()` served from the engine's fresh quorum ack (the fast path);
 * - extend, recordAck.N (N voters), batch.* (one clock read, then N leases).
 * @module
 */
import type { LeaseCore } from "../host/core/core.js";
import type { Lease } from "../host/core/lease.js";
import { FakeEngine } from "../test/support/fakes.js";
import { do_not_optimize } from "mitata";
import type { Case } from "./harness.js";
import { PeerClock, PeerLease, type PeerClockSource } from "./peer.js";

const HOUR_NS = 3_600_000_000_000n;
export const BATCH_LEASES = 100_000;
export const CORE_LEASES = BATCH_LEASES + 64;

/** One clock policy of a runtime: its bare read, a core on it, and the peer's source. */
export interface ClockUnderTest {
  /** `default` (the host's default clock), `raw`, `fallback`. */
  key: string;
  /** What is read, e.g. "N-API fillRawSleep (RAW + BOOTTIME + MONOTONIC)". */
  floorLabel: string;
  /** The bare read, as the host's fill does it, without the core. */
  floor: () => unknown;
  core: LeaseCore;
  /** Called before each measurement that uses `core` (Node: re-point the shim at its cell). */
  before?: () => void;
  peers: { id: string; label: string; source: PeerClockSource }[];
}

function leaseUntilHour(core: LeaseCore): Lease {
  const lease = core.createLease();
  if (!lease.extend(core.now() + HOUR_NS, lease.generation())) throw new Error("bench setup: extend failed");
  return lease;
}

/** Bare read, `valid()` and the peers, for one clock. */
export function clockCases(c: ClockUnderTest): Case[] {
  const lease = leaseUntilHour(c.core);
  const cases: Case[] = [
    { id: `clock.${c.key}`, label: `bare read: ${c.floorLabel}`, fn: () => do_not_optimize(c.floor()), before: c.before },
    { id: `valid.${c.key}`, label: `lease.valid() on ${c.core.clock.source}`, fn: () => do_not_optimize(lease.valid()), before: c.before },
  ];
  for (const p of c.peers) {
    const clock = new PeerClock(p.source);
    const peerLease = new PeerLease(clock);
    peerLease.extend(clock.now() + HOUR_NS, 0n);
    if (!peerLease.valid()) throw new Error(`bench setup: peer ${p.id} not valid`);
    cases.push({ id: `peer.${p.id}`, label: `TS peer: ${p.label}`, fn: () => do_not_optimize(peerLease.valid()), before: c.before });
  }
  return cases;
}

/** Everything measured on the default core: valid(now), leaseRead, extend, recordAck, batch. */
export function coreCases(core: LeaseCore, before?: () => void): Case[] {
  const lease = leaseUntilHour(core);
  const nowNs = core.now();
  const cases: Case[] = [
    { id: "noop", label: "harness: empty call (loop overhead)", fn: () => do_not_optimize(0) },
    { id: "validAt", label: "lease.valid(nowNs) (check alone, bigint argument)", fn: () => do_not_optimize(lease.valid(nowNs)), before },
    { id: "now", label: "core.now() (fill + clock rules, bigint result)", fn: () => do_not_optimize(core.now()), before },
  ];

  // leaseRead's fast path: a leader whose quorum ack is fresh (engineAckValid), served locally.
  const engine = new FakeEngine();
  engine.durationNs = HOUR_NS;
  engine.ackNs = core.now();
  const reader = core.createLeaseReader(engine);
  cases.push({ id: "leaseRead", label: "await reader.leaseRead() (fresh engine ack, served locally)", fn: () => reader.leaseRead(), before });
  // The same hit without the promise: one clock fill and one crossing (issue #14).
  cases.push({ id: "localRead", label: "reader.localRead() (leaseRead's synchronous fast path, same hit)", fn: () => do_not_optimize(reader.localRead()), before });

  // extend: a taking-effect extend while the untils last, then refused ones (same checks, no store).
  const extLease = core.createLease();
  const untils = Array.from({ length: 1 << 16 }, (_, i) => nowNs + HOUR_NS + BigInt(i));
  let u = 0;
  cases.push({ id: "extend", label: "lease.extend(untilNs, gen)", fn: () => do_not_optimize(extLease.extend(untils[u++ & 0xffff]!, 0n)) });

  // recordAck + republish: N voters = N-1 followers, quorum floor(N/2); sends move forward.
  const sentAts = Array.from({ length: 1 << 16 }, (_, i) => nowNs + BigInt(i));
  for (const voters of [3, 5, 7]) {
    const tracker = core.createQuorumAckTracker();
    const followers = voters - 1;
    const q = Math.floor(voters / 2);
    let i = 0;
    cases.push({
      id: `recordAck.${voters}`,
      label: `tracker.recordAck() + republish, ${voters} voters (q=${q})`,
      fn: () => {
        const k = i++;
        do_not_optimize(tracker.recordAck(1 + (k % followers), q, sentAts[k & 0xffff]!));
      },
    });
  }

  // Batch: BATCH_LEASES leases in slots [first, first + n), every other one valid for an hour.
  const leases: Lease[] = [];
  for (let i = 0; i < BATCH_LEASES; i++) {
    const l = core.createLease();
    if (i % 2 === 0) l.extend(nowNs + HOUR_NS, l.generation());
    leases.push(l);
  }
  const first = leases[0]!.slot;
  const ex = core.exports as unknown as Record<string, (...args: unknown[]) => number>;
  for (const n of [10_000, 100_000]) {
    const group = leases.slice(0, n);
    const tag = n === 10_000 ? "10k" : "100k";
    cases.push({
      id: `batch.countValid.${tag}`,
      label: `core.countValid(leases), ${tag} (public API: a JS loop, one wasm call per lease)`,
      fn: () => do_not_optimize(core.countValid(group)),
      before,
      per: n,
    });
    cases.push({
      id: `batch.validRange.${tag}`,
      label: `fill + leaseValidRange(first, ${tag}) export (SIMD)`,
      fn: () => {
        core.fill();
        do_not_optimize(ex["leaseValidRange"]!(first, n, core.exports.clockObserveCell(), 0));
      },
      before,
      per: n,
    });
  }
  if (typeof ex["leaseCountValidAllCell"] === "function") {
    const live = ex["leaseCountValidAll"]!(core.now());
    cases.push({
      id: "batch.countValidAll.100k",
      label: `fill + leaseCountValidAllCell() over every live lease (${BATCH_LEASES} + a few; proposed core.countValidAll())`,
      fn: () => {
        core.fill();
        do_not_optimize(ex["leaseCountValidAllCell"]!());
      },
      before,
      per: BATCH_LEASES,
    });
    if (live < BATCH_LEASES / 2) throw new Error(`bench setup: ${live} valid leases`);
  }
  return cases;
}
