// The quorum-ack tracker (docs/contract.md §3).
//
// The leader records, per follower, the instant that proves the follower heard from it: the
// *send* time of the message the follower answered, so queueing delay never stretches a lease.
// The published quorum instant is the q-th most recent follower ack, q = floor(N/2) followers
// for N voters (self included), found by selection in O(n), never by sorting.
//
// Invariants:
//   Q1. a peer's recorded ack never moves backwards (a late reply to an old message cannot
//       undo a newer proof) and is never 0;
//   Q2. with fewer than q recorded acks the published instant is 0;
//   Q3. a tracker holds at most MAX_PEERS peers, each id at most once;
//   Q4. every recorded ack belongs to the tracker's term: setTerm to a new term forgets them,
//       and an ack for another term is refused and counted, never recorded (contract §3: a
//       reply carrying a higher term is never an ack). Term 0 = the engine gives no terms.
//   Q5. every recorded ack was sent after the last clock fault (fault.ts): a reply to a message
//       sent before a regression or a suspend is refused, so it never proves a lease after it.
//   Q6. every recorded ack was recorded under the tracker's current voter set, and q > 0:
//       with q = 0 (one voter) nothing is recorded; setQuorum (the voter set changed, even to
//       one of the same size) forgets every ack, and so does a new q passed to recordAck,
//       applied before the ack is even looked at; as the joint tracker does on a configuration
//       change. Otherwise a re-election into a multi-node configuration would surface an ack
//       from when the peer was no voter. A self-ack publishes only while q <= 0 (one voter, or
//       never told).
//   Q7. a voter set that holds the leader needs floor(n/2) follower acks, one that does not (the
//       leader is being removed) floor(n/2) + 1; a joint configuration publishes the older of
//       its two sets' instants, 0 while either set that needs followers has none (Raft §6).

import { faultFloor } from "./fault";

export const MAX_PEERS: i32 = 64;

const HEADER_BYTES: usize = 40; // [count: i32, inUse: i32, publishedNs: i64, term: i64, refused: i64, quorum: i32, pad: i32]
const NO_QUORUM: i32 = -1; // a new tracker has not been given a follower quorum yet
const ENTRY_BYTES: usize = 16; // [peerId: i32, pad: i32, ackNs: i64]
const TRACKER_BYTES: usize = HEADER_BYTES + <usize>MAX_PEERS * ENTRY_BYTES;

export const ACK_OK: i32 = 0;
export const ACK_TOO_MANY_PEERS: i32 = -1;
export const ACK_TERM_MISMATCH: i32 = -2;
export const ACK_BEFORE_FAULT: i32 = -3;

let trackersPtr: usize = 0;
let trackerCapacity: i32 = 0;
const scratch: usize = memory.data(<i32>(MAX_PEERS * 8), 8);

export function initTrackers(capacity: i32): void {
  assert(trackerCapacity == 0 && capacity > 0);
  trackerCapacity = capacity;
  trackersPtr = heap.alloc(<usize>capacity * TRACKER_BYTES);
  memory.fill(trackersPtr, 0, <usize>capacity * TRACKER_BYTES);
}

@inline function trackerAt(t: i32): usize {
  return trackersPtr + <usize>t * TRACKER_BYTES;
}

@inline function entryAt(p: usize, i: i32): usize {
  return p + HEADER_BYTES + <usize>i * ENTRY_BYTES;
}

export function isTracker(t: i32): bool {
  return t >= 0 && t < trackerCapacity && load<i32>(trackerAt(t), 4) != 0;
}

/** Returns a tracker index, or -1 when none is free. */
export function allocTracker(): i32 {
  for (let t = 0; t < trackerCapacity; t++) {
    const p = trackerAt(t);
    if (load<i32>(p, 4) == 0) {
      memory.fill(p, 0, TRACKER_BYTES);
      store<i32>(p, 1, 4);
      store<i32>(p, NO_QUORUM, 32);
      return t;
    }
  }
  return -1;
}

export function freeTracker(t: i32): void {
  store<i32>(trackerAt(t), 0, 4);
}

export function published(t: i32): i64 {
  return load<i64>(trackerAt(t), 8);
}

export function peerCount(t: i32): i32 {
  return load<i32>(trackerAt(t));
}

function indexOf(p: usize, peerId: i32): i32 {
  const count = load<i32>(p);
  for (let i = 0; i < count; i++) {
    if (load<i32>(entryAt(p, i)) == peerId) return i;
  }
  return -1;
}

/** The k-th largest (1-based) of n values at `values`, by quickselect (Hoare, 1961): O(n)
 *  expected, in place on the scratch copy. */
function kthLargest(values: usize, n: i32, k: i32): i64 {
  let lo = 0;
  let hi = n - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = load<i64>(values + (<usize>((lo + hi) >>> 1) << 3));
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (load<i64>(values + (<usize>i << 3)) > pivot) i++;
      while (load<i64>(values + (<usize>j << 3)) < pivot) j--;
      if (i <= j) {
        const a = load<i64>(values + (<usize>i << 3));
        store<i64>(values + (<usize>i << 3), load<i64>(values + (<usize>j << 3)));
        store<i64>(values + (<usize>j << 3), a);
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return load<i64>(values + (<usize>target << 3));
}

function republish(p: usize, followerQuorum: i32): void {
  // q = 0: no follower is needed (one voter, or a removal that left one): keep what is
  // published; a single voter publishes its own samples through recordSelfAck.
  if (followerQuorum == 0) return;
  const count = load<i32>(p);
  if (count < followerQuorum) {
    store<i64>(p, 0, 8);
    return;
  }
  for (let i = 0; i < count; i++) {
    store<i64>(scratch + (<usize>i << 3), load<i64>(entryAt(p, i), 8));
  }
  store<i64>(p, kthLargest(scratch, count, followerQuorum), 8);
}

export function quorumOf(t: i32): i32 {
  return load<i32>(trackerAt(t), 32);
}

/** The voter set changed: enters follower quorum q, forgets every ack (Q6: even when q is the
 *  tracker's, since a same-size swap such as {1,2,3} -> {1,2,4} changes who may ack), and
 *  recomputes the published instant at once (0 with no acks; a single voter, q = 0, then
 *  publishes through recordSelfAck). Returns whether q changed. */
export function setQuorum(t: i32, followerQuorum: i32): bool {
  const p = trackerAt(t);
  const changed = load<i32>(p, 32) != followerQuorum;
  resetTracker(t);
  store<i32>(p, followerQuorum, 32);
  republish(p, followerQuorum);
  return changed;
}

/** Records an ack under follower quorum q. A q other than the tracker's is applied FIRST (Q6),
 *  whatever becomes of the ack: a refused reply (zero sample, before a fault, another term)
 *  must not leave the old voter set's instant published. */
export function recordAck(t: i32, peerId: i32, followerQuorum: i32, sentAtNs: i64): i32 {
  const p = trackerAt(t);
  if (load<i32>(p, 32) != followerQuorum) setQuorum(t, followerQuorum); // Q6: a new voter set
  if (sentAtNs <= 0) return ACK_OK; // a zero sample proves nothing: ignored (contract §1)
  if (sentAtNs <= faultFloor()) return ACK_BEFORE_FAULT; // Q5
  if (followerQuorum == 0) return ACK_OK; // Q6: one voter; a peer's ack is recorded nowhere
  let i = indexOf(p, peerId);
  if (i < 0) {
    const count = load<i32>(p);
    if (count == MAX_PEERS) return ACK_TOO_MANY_PEERS;
    i = count;
    store<i32>(entryAt(p, i), peerId);
    store<i64>(entryAt(p, i), 0, 8);
    store<i32>(p, count + 1);
  }
  const e = entryAt(p, i);
  if (sentAtNs > load<i64>(e, 8)) store<i64>(e, sentAtNs, 8); // Q1
  republish(p, followerQuorum);
  return ACK_OK;
}

export function ackOf(t: i32, peerId: i32): i64 {
  const p = trackerAt(t);
  const i = indexOf(p, peerId);
  return i < 0 ? 0 : load<i64>(entryAt(p, i), 8);
}

/** Deletes the peer's ack (if any) and recomputes with the new quorum: the removal half of a
 *  configuration change keeps the other voters' acks (q = 0 keeps the published instant). */
export function removePeer(t: i32, peerId: i32, followerQuorum: i32): void {
  const p = trackerAt(t);
  store<i32>(p, followerQuorum, 32);
  const i = indexOf(p, peerId);
  if (i >= 0) {
    const last = load<i32>(p) - 1;
    memory.copy(entryAt(p, i), entryAt(p, last), ENTRY_BYTES);
    store<i32>(p, last);
  }
  republish(p, followerQuorum);
}

/** A single voter is its own quorum: each engine tick publishes a fresh sample; 0 clears.
 *  Ignored while the tracker's follower quorum is 1 or more (the voter set needs followers: a
 *  tick that still believes it is alone proves nothing), as the joint tracker ignores it. */
export function recordSelfAck(t: i32, sampleNs: i64): void {
  const p = trackerAt(t);
  if (load<i32>(p, 32) > 0) return;
  // A sample at or before the last clock fault clears, as 0 does (Q5).
  store<i64>(p, sampleNs > faultFloor() && sampleNs > 0 ? sampleNs : 0, 8);
}

export function resetTracker(t: i32): void {
  const p = trackerAt(t);
  store<i32>(p, 0);
  store<i64>(p, 0, 8);
}

export function termOf(t: i32): i64 {
  return load<i64>(trackerAt(t), 16);
}

export function refusedAcks(t: i32): i64 {
  return load<i64>(trackerAt(t), 24);
}

/** Enters `term`: a different term forgets every ack (Q4); the same term changes nothing.
 *  Returns whether the term changed. */
export function setTerm(t: i32, term: i64): bool {
  const p = trackerAt(t);
  if (load<i64>(p, 16) == term) return false;
  resetTracker(t);
  store<i64>(p, term, 16);
  return true;
}

/** recordAck for a reply carrying `term`: refused (and counted) unless it is the tracker's
 *  term (Q4). A leader whose term moved on calls setTerm first. */
export function recordAckInTerm(t: i32, peerId: i32, followerQuorum: i32, sentAtNs: i64, term: i64): i32 {
  const p = trackerAt(t);
  if (load<i32>(p, 32) != followerQuorum) setQuorum(t, followerQuorum); // Q6 first, as recordAck
  if (term != load<i64>(p, 16)) {
    store<i64>(p, load<i64>(p, 24) + 1, 24);
    return ACK_TERM_MISMATCH;
  }
  return recordAck(t, peerId, followerQuorum, sentAtNs);
}

/** Clock faults (regression, suspend) make every recorded instant suspect: forget them all. */
export function resetAllTrackers(): void {
  for (let t = 0; t < trackerCapacity; t++) resetTracker(t);
}

/** Q7: how many follower acks a voter set of `voters` needs (0 for an empty set): floor(n/2)
 *  when the set holds the leader, floor(n/2) + 1 when it does not (the leader is being removed:
 *  a majority of the set must be others). */
export function need(voters: i32, holdsLeader: bool): i32 {
  assert(voters >= 0);
  if (voters == 0) return 0;
  return holdsLeader ? voters >> 1 : (voters >> 1) + 1;
}

/** Q7: the published instant of a joint configuration kept in two trackers, each entered with
 *  its set's need (setQuorum): the minimum over the sets that need followers, 0 while either of
 *  them has none. With no such set (the leader alone) the incoming tracker's self-ack, which
 *  recordSelfAck floors and a clock fault resets (Q5). */
export function jointPublished(tIn: i32, tOut: i32): i64 {
  const needIn = quorumOf(tIn) > 0;
  const needOut = quorumOf(tOut) > 0;
  if (!needIn && !needOut) {
    const selfNs = published(tIn);
    return selfNs > faultFloor() ? selfNs : 0;
  }
  // Which sets count is a flag, never a sentinel instant: i64.MAX_VALUE is an ack the host
  // accepts (an instant up to 2^63-1), so "needs nothing" must not be spelled as one.
  if (!needOut) return published(tIn);
  if (!needIn) return published(tOut);
  const a = published(tIn);
  const b = published(tOut);
  return a < b ? a : b;
}
