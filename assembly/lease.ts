// The lease table (docs/contract.md §2).
//
// A lease is { expiryNs, generation } in a slot of a table in linear memory, so that many
// leases can be checked against one clock sample.
//
// Invariants, asserted where the state is set:
//   L1. generation never decreases; invalidate bumps it by exactly one.
//   L2. expiryNs >= 0; 0 means "no lease".
//   L3. an extend never shortens a lease of the same generation (extends are monotone).
//
// `invalidate` writes the expiry before the generation, so a reader never sees the new
// generation next to the old, valid expiry. This module is single-threaded; the shared-memory
// table across threads is lease-core's later lock-free table (issue #4), not this one.

export const CAUSE_NONE: u8 = 0;
export const CAUSE_SUSPEND: u8 = 1;
export const CAUSE_REGRESSION: u8 = 2;

const SLOT_BYTES: usize = 16; // [expiryNs: i64, generation: i64]

let slotsPtr: usize = 0;
let causesPtr: usize = 0; // u8 per slot: why the lease was last invalidated by the core
let freeListPtr: usize = 0; // i32 stack of free slot indexes
let capacity: i32 = 0;
let freeCount: i32 = 0;
let highWater: i32 = 0; // slots [0, highWater) have been handed out at least once

export function initLeases(leaseCapacity: i32): void {
  assert(capacity == 0 && leaseCapacity > 0);
  capacity = leaseCapacity;
  slotsPtr = heap.alloc(<usize>leaseCapacity * SLOT_BYTES);
  causesPtr = heap.alloc(<usize>leaseCapacity);
  freeListPtr = heap.alloc(<usize>leaseCapacity << 2);
  memory.fill(slotsPtr, 0, <usize>leaseCapacity * SLOT_BYTES);
  memory.fill(causesPtr, 0, <usize>leaseCapacity);
}

export function leaseCapacity(): i32 {
  return capacity;
}

@inline function slotAt(slot: i32): usize {
  return slotsPtr + (<usize>slot) * SLOT_BYTES;
}

@inline export function isLeaseSlot(slot: i32): bool {
  return slot >= 0 && slot < highWater;
}

/** Returns a slot index, or -1 when the table is full. A reused slot keeps its generation
 *  (bumped when it was freed), so a generation sampled on an earlier owner never matches. */
export function allocLease(): i32 {
  if (freeCount > 0) {
    freeCount--;
    return load<i32>(freeListPtr + (<usize>freeCount << 2));
  }
  if (highWater == capacity) return -1;
  return highWater++;
}

export function freeLease(slot: i32): void {
  invalidate(slot);
  store<i32>(freeListPtr + (<usize>freeCount << 2), slot);
  freeCount++;
  assert(freeCount <= highWater);
}

export function expiryOf(slot: i32): i64 {
  return load<i64>(slotAt(slot));
}

export function generationOf(slot: i32): i64 {
  return load<i64>(slotAt(slot), 8);
}

export function causeOf(slot: i32): u8 {
  return load<u8>(causesPtr + <usize>slot);
}

/** valid(now): now != 0, expiry != 0, now < expiry. Half open: valid at E-1, not at E. */
@inline export function validAt(slot: i32, nowNs: i64): bool {
  const expiryNs = load<i64>(slotAt(slot));
  return (nowNs != 0) & (expiryNs != 0) & (nowNs < expiryNs);
}

/** Takes effect iff untilNs != 0, expectedGen is the current generation, and untilNs is later
 *  than the current expiry (or there is none). Returns whether it took effect. */
export function extend(slot: i32, untilNs: i64, expectedGen: i64): bool {
  const p = slotAt(slot);
  if (untilNs <= 0) return false;
  if (load<i64>(p, 8) != expectedGen) return false;
  const expiryNs = load<i64>(p);
  if (expiryNs != 0 && untilNs <= expiryNs) return false;
  store<i64>(p, untilNs);
  store<u8>(causesPtr + <usize>slot, CAUSE_NONE);
  assert(load<i64>(p) > expiryNs); // L3
  return true;
}

/** Clears the expiry, then bumps the generation by exactly one. Always bumps. */
export function invalidate(slot: i32): void {
  const p = slotAt(slot);
  const generation = load<i64>(p, 8);
  store<i64>(p, 0);
  store<i64>(p, generation + 1, 8);
  assert(load<i64>(p, 8) == generation + 1); // L1
}

export function invalidateAllLeases(cause: u8): void {
  for (let slot = 0; slot < highWater; slot++) {
    invalidate(slot);
    store<u8>(causesPtr + <usize>slot, cause);
  }
}

/** Counts the valid leases among slots [first, first + count) at one instant; writes one byte
 *  per slot (1 = valid) at outPtr when outPtr != 0. Without an output it is `countValid`. */
export function validRange(first: i32, count: i32, nowNs: i64, outPtr: usize): i32 {
  if (outPtr == 0) return countValid(first, count, nowNs);
  let valid = 0;
  const end = first + count;
  for (let slot = first; slot < end; slot++) {
    const ok = <i32>validAt(slot, nowNs);
    store<u8>(outPtr + <usize>(slot - first), <u8>ok);
    valid += ok;
  }
  return valid;
}

/** How many leases among slots [first, first + count) are valid at `nowNs`: `validAt` on each,
 *  counted with SIMD (BENCHMARKS.md, issue #6: <= 0.25 ns per lease at 100k leases).
 *
 *  For nowNs > 0 the rule `now != 0 && expiry != 0 && now < expiry` is `expiry > now` alone
 *  (expiry > now >= 1 already excludes expiry 0), one signed i64 compare per slot. Two slots'
 *  expiries are gathered into one i64x2 by a shuffle (the [expiry, generation] slot layout
 *  stays); a true compare is lane -1, so subtracting the mask counts. nowNs = 0 is "no reading":
 *  nothing is valid. A negative nowNs (never an instant; only a raw ABI caller can pass one)
 *  takes the plain rule slot by slot. */
export function countValid(first: i32, count: i32, nowNs: i64): i32 {
  if (nowNs == 0) return 0;
  if (nowNs < 0) return countValidScalar(first, count, nowNs);
  let p = slotAt(first);
  const end = p + <usize>count * SLOT_BYTES;
  const now2 = i64x2.splat(nowNs);
  let acc0 = i64x2.splat(0);
  let acc1 = i64x2.splat(0);
  while (p + 4 * SLOT_BYTES <= end) {
    acc0 = i64x2.sub(acc0, i64x2.gt_s(v128.shuffle<i64>(v128.load(p), v128.load(p, 16), 0, 2), now2));
    acc1 = i64x2.sub(acc1, i64x2.gt_s(v128.shuffle<i64>(v128.load(p, 32), v128.load(p, 48), 0, 2), now2));
    p += 4 * SLOT_BYTES;
  }
  const acc = i64x2.add(acc0, acc1);
  let valid = <i32>(i64x2.extract_lane(acc, 0) + i64x2.extract_lane(acc, 1));
  for (; p < end; p += SLOT_BYTES) valid += <i32>(load<i64>(p) > nowNs);
  return valid;
}

function countValidScalar(first: i32, count: i32, nowNs: i64): i32 {
  let valid = 0;
  for (let slot = first, end = first + count; slot < end; slot++) valid += <i32>validAt(slot, nowNs);
  return valid;
}

/** How many of the leases ever handed out (slots [0, highWater)) are valid at `nowNs`. A freed
 *  slot was invalidated (expiry 0), so it never counts: this is "every live lease of the core". */
export function countValidLive(nowNs: i64): i32 {
  return countValid(0, highWater, nowNs);
}
