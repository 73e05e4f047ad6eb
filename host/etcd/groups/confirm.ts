/**
 * The node round of the group engine (`lease-core/etcd`, docs/etcd.md "Many groups on one
 * lease"): ONE keepalive on the node's lease (clock sample and generation taken before it is
 * sent), then ONE linearizable read-only txn (keys only) of `<prefix>/g/`, our membership key and
 * the meta key. Confirmed iff the keepalive's raft term equals the txn's (docs/etcd.md §2: a
 * keepalive alone proves nothing in etcd 3.4, etcd-io/etcd #15247) and nothing invalidated since
 * the sample; then the anchor `s.ackNs = sentAtNs` serves every group whose key the read saw with
 * our lease and its epoch: O(1) per renewal, nothing rewritten per group. A group whose key the
 * read did not see as ours is lost alone; a term mismatch or a keepalive failure invalidates the
 * whole node. Rounds are single-flight: `joinRound` shares the one in flight, `freshRound` waits
 * for one that starts after the call (a reader extends from its own sample, taken before the
 * call: the proof must be sampled after it).
 * @module
 */
import type { ITxnResponse } from "etcd3";
import { LeadershipLostError } from "../../core/errors.js";
import { etcdError } from "../errors.js";
import { grant, keepAlive, keepAliveFailureReason, setTtl } from "../keepalive.js";
import { prefixEnd, sleep } from "../util.js";
import { S } from "../margin.js";
import type { GroupState } from "./state.js";

/** A round's outcome. */
export interface RoundResult {
  /** Its sequence number. */
  seq: number;
  /** Whether it set the node proof. */
  confirmed: boolean;
  /** The meta key's mod revision it read: every acknowledged write put it (docs/etcd.md §4). */
  metaRevision: bigint;
  /** The groups it found lost (not ours any more). */
  lost: Set<number>;
}

const inflight = new WeakMap<GroupState, Promise<RoundResult>>();
const queued = new WeakMap<GroupState, Promise<RoundResult>>();

/** The round in flight, or a new one. */
export function joinRound(gs: GroupState): Promise<RoundResult> {
  return inflight.get(gs) ?? startRound(gs);
}

/** A round that starts after this call: the next one (shared by every caller until it starts). */
export function freshRound(gs: GroupState): Promise<RoundResult> {
  const current = inflight.get(gs);
  if (current === undefined) return startRound(gs);
  let next = queued.get(gs);
  if (next === undefined) {
    next = current.then(
      () => startRound(gs),
      () => startRound(gs),
    );
    queued.set(gs, next);
  }
  return next;
}

function startRound(gs: GroupState): Promise<RoundResult> {
  queued.delete(gs);
  const run = round(gs).finally(() => {
    if (inflight.get(gs) === run) inflight.delete(gs);
  });
  inflight.set(gs, run);
  return run;
}

async function round(gs: GroupState): Promise<RoundResult> {
  const s = gs.s;
  s.checkOpen();
  const seq = ++gs.roundSeq;
  s.counters.rounds!++;
  const startedMs = performance.now();
  const sentAtNs = s.core.now();
  s.checkClockFaults(); // a fault this very reading saw must not void the round it starts
  const generation = s.generation;
  const leaseId = s.leaseId;
  // The groups held when the round starts: only these can be confirmed by its read.
  const held = gs.groups.filter((rec) => rec.epoch !== 0n).map((rec) => [rec, rec.epoch] as const);
  gs.req();
  let answer;
  try {
    answer = await keepAlive(s);
  } catch (err) {
    if (err instanceof LeadershipLostError) {
      // etcd answered TTL 0: our lease and every key bound to it are gone (keepalive.ts has
      // invalidated the node and asked for a new lease).
      gs.loseAll("etcd-lease-expired");
      gs.registeredLease = null;
    } else if (!s.closed) {
      s.invalidate(keepAliveFailureReason(err as Error), (err as Error).message);
    }
    throw err;
  }
  gs.req();
  let txn: ITxnResponse;
  try {
    txn = await s.kv.txn(
      {
        compare: [],
        success: [
          { request_range: { key: gs.gPrefix, range_end: prefixEnd(gs.gPrefix), keys_only: true } },
          { request_range: { key: gs.memberKey, keys_only: true } },
          { request_range: { key: s.metaKey, keys_only: true } },
        ],
        failure: [],
      },
      s.callOptions(),
    );
  } catch (err) {
    // The anchor simply ages out; the next round tries again.
    throw etcdError("confirmation read", s.endpoints, err);
  }
  const quorumTerm = BigInt(txn.header.raft_term);
  s.lastTerm = quorumTerm;
  const meta = txn.responses[2]?.response_range.kvs[0];
  const metaRevision = meta === undefined ? 0n : BigInt(meta.mod_revision);
  const lost = new Set<number>();
  // Which groups the read saw as ours (our lease, the epoch we won).
  const seen = new Map<number, { lease: string; createRevision: bigint }>();
  const prefixLength = gs.gPrefix.length;
  for (const kv of txn.responses[0]?.response_range.kvs ?? []) {
    const g = Number(kv.key.subarray(prefixLength).toString());
    if (Number.isInteger(g)) seen.set(g, { lease: String(kv.lease), createRevision: BigInt(kv.create_revision) });
  }
  for (const [rec, epoch] of held) {
    if (rec.epoch !== epoch) continue; // lost (or lost and won again) while the round ran
    const key = seen.get(rec.id);
    const ours = key !== undefined && key.lease === leaseId && key.createRevision === epoch;
    if (!ours && !__UNSAFE_SKIP_GROUP_CONFIRMATION__) {
      lost.add(rec.id);
      // The read is newer than a lagging local copy that may still show our key: forget it, or
      // the campaign loop would take the missing key for ours and retake it.
      if (rec.holder !== undefined && rec.holder.createRevision === epoch) rec.holder = undefined;
      gs.lose(rec, "key-missing", "the confirmation read did not see our key");
      continue;
    }
    if (rec.confirmedRound === 0) rec.confirmedRound = seq;
  }
  const member = txn.responses[1]?.response_range.kvs[0];
  if ((member === undefined || String(member.lease) !== s.leaseId) && s.leaseId !== null && !s.closed) {
    // A quorum read newer than our last put that does not show it: gone (deleted from outside,
    // or lapsed with an old lease), whatever the watch has delivered yet.
    const readRevision = BigInt(txn.header.revision);
    if (readRevision > gs.registeredRevision && readRevision > gs.memberGoneRevision) gs.memberGoneRevision = readRevision;
    void register(gs).catch(() => undefined); // the next round tries again
  }
  if (answer.term !== quorumTerm) {
    s.counters.termMismatch!++;
    s.invalidate("term-mismatch", `keepalive term ${answer.term}, quorum term ${quorumTerm}`);
    return done(gs, startedMs, { seq, confirmed: false, metaRevision, lost });
  }
  // A clock fault since the sample (seen by a fresh reading) bumps the generation: an ack
  // sampled before a fault never proves a lease after it (docs/etcd.md §3).
  s.core.now();
  s.checkClockFaults();
  if (generation !== s.generation || sentAtNs === 0n || leaseId !== s.leaseId) return done(gs, startedMs, { seq, confirmed: false, metaRevision, lost });
  setTtl(s, answer.ttlS);
  if (sentAtNs > s.ackNs) s.ackNs = sentAtNs;
  gs.ackRound = seq;
  s.counters.roundsConfirmed!++;
  s.counters.confirmed!++;
  return done(gs, startedMs, { seq, confirmed: true, metaRevision, lost });
}

function done(gs: GroupState, startedMs: number, result: RoundResult): RoundResult {
  gs.lastRoundMs = performance.now() - startedMs;
  return result;
}

/** Puts our membership key `<prefix>/n/<id>` with the current lease (at start, and again when
 *  a round finds it gone: our lease expired and a new one was granted). */
export function register(gs: GroupState): Promise<void> {
  const s = gs.s;
  const leaseId = s.leaseId;
  if (leaseId === null || gs.registered()) return Promise.resolve();
  // One put at a time (a round and the start may both ask).
  const pending = registering.get(gs);
  if (pending !== undefined && pending.leaseId === leaseId) return pending.done;
  const done = putMember(gs, leaseId).finally(() => {
    if (registering.get(gs)?.done === done) registering.delete(gs);
  });
  registering.set(gs, { leaseId, done });
  return done;
}

const registering = new WeakMap<GroupState, { leaseId: string; done: Promise<void> }>();

async function putMember(gs: GroupState, leaseId: string): Promise<void> {
  const s = gs.s;
  gs.req();
  s.counters.registrations!++;
  let revision: bigint;
  try {
    // The value is the TTL etcd granted our lease: the others' takeover holds must cover it.
    const res = await s.kv.put({ key: gs.memberKey, value: Buffer.from(String(s.ttlNs / S)), lease: leaseId }, s.callOptions());
    revision = BigInt(res.header.revision);
  } catch (err) {
    throw etcdError("register", s.endpoints, err);
  }
  // Registered as of the put's revision: only a deletion after it voids this (state.ts).
  if (s.leaseId === leaseId && revision > gs.registeredRevision) {
    gs.registeredLease = leaseId;
    gs.registeredRevision = revision;
  }
}

/** Runs a round every `renewIntervalMs` (default TTL/4) until closed; with no lease (it
 *  expired), asks for a new one first. */
export async function roundLoop(gs: GroupState): Promise<void> {
  const s = gs.s;
  const signal = s.stop.signal;
  while (!signal.aborted) {
    const intervalMs = s.renewIntervalMs ?? Math.max(50, (s.ttlAskedS * 1000) / 4);
    try {
      if (s.leaseId === null) {
        gs.req();
        await grant(s);
      }
      await joinRound(gs);
    } catch {
      // counted and reported where it happened; the anchor ages out
    }
    await sleep(intervalMs, signal);
  }
}
