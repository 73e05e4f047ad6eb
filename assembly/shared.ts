// The shared lease table: leases in a shared WebAssembly.Memory, read and written from any
// thread (docs/shared-lease.md; the protocol is model-checked in spec/shared-lease.pml).
// A separate build (build/lease-core.shared.wasm, --enable threads --sharedMemory
// --importMemory): a module has one memory, and the core's own is private to one thread.
//
// Per lease, two words, every access atomic (plain i64 loads are neither untorn nor ordered
// across wasm threads):
//   W = (q << 20) | (gen & 0xFFFFF)   q: expiry in 4096 ns units after the table's epoch; 0 = none
//   H = the full 64-bit generation, bumped right AFTER an invalidate's cmpxchg on W
// Invariants:
//   S1. every change of W is one cmpxchg: extend installs a later q under the same generation;
//       invalidate installs q = 0 and gen + 1 in one step (clear-then-bump is atomic, so no
//       reader sees the new generation next to the old expiry);
//   S2. no writer ever rolls back: a stale extender fails its generation check or its cmpxchg,
//       so it can neither erase a fresh lease (clock tie) nor resurrect an invalidated one;
//   S3. expiries are rounded DOWN to the 4096 ns grid: quantization only shortens a lease.
// A stale extend can only succeed if 2^20 invalidations of one lease happen between two
// adjacent instructions of one call (docs/shared-lease.md §4).
//
// Memory layout (all offsets from the table's base, fixed by the creator, page 1 and up, so
// nothing AssemblyScript places in low memory can overlap it):
//   +0  u32 magic, +4 u32 version, +8 u32 capacity, +16 i64 epochNs, [+24, +64) the creator's clock
//   identity (UTF-8, 0-padded), +64 i64 the creator's clock zero, +72 i64 the high-water mark
//   (the latest instant any thread sampled, table frame; the hosts keep both: host/core/shared.ts),
//   +80 i64 the fault floor (table frame): the largest instant any attached core had handed out
//   when it saw a clock fault; no instant at or below it is a reading, no sample at or below it
//   extends. Invariant S4: the floor never decreases, and every raise is followed by an
//   invalidation of every lease (raise first: a reader that loads the old floor finds the
//   leases not yet invalidated only if it read before the fault was known anywhere),
//   +128 W[capacity], then H[capacity]

const MAGIC: u32 = 0x4c534554; // "LSET"
const VERSION: u32 = 3; // 2: the creator's clock zero and the high-water mark; 3: the fault floor
// The header layout, exported: the hosts read and write the creator's identity and zero
// (host/core/shared.ts) at these offsets; host/generated/constants.ts is made from them.
export const SHARED_HEADER_BYTES: usize = 128;
export const SHARED_SOURCE_OFFSET: usize = 24;
export const SHARED_SOURCE_BYTES: usize = 40;
export const SHARED_ZERO_OFFSET: usize = 64;
export const SHARED_HIGH_WATER_OFFSET: usize = 72;
export const SHARED_FAULT_FLOOR_OFFSET: usize = 80;
/** Bytes per lease: W and H, one i64 each. */
export const SHARED_SLOT_BYTES: usize = 16;
const HEADER_BYTES: usize = SHARED_HEADER_BYTES;
const GEN_BITS: u64 = 20;
const GEN_MASK: u64 = 0xfffff;
const UNIT_SHIFT: u64 = 12;
const Q_MAX: u64 = (<u64>1 << 44) - 1;

const HIGH_WATER_OFFSET: usize = SHARED_HIGH_WATER_OFFSET;
const FAULT_FLOOR_OFFSET: usize = SHARED_FAULT_FLOOR_OFFSET;
/** Z3 of host/core/shared.ts: a sample more than this below the high-water mark is a step back; the
 *  mark is published in steps of it. The core's suspend tolerance (assembly/instant.ts). */
const HIGH_WATER_SLACK_NS: i64 = 1_000_000;

export const SHARED_TABLE_BASE: usize = 65536;
export const SHARED_ERR_BAD_TABLE: i32 = -1;

let base: usize = 0;
let capacity: i32 = 0;
let epochNs: i64 = 0;
let highSeenNs: i64 = 0; // this thread's (this instance's) last load of the high-water mark

@inline function wAt(slot: i32): usize { return base + HEADER_BYTES + (<usize>slot << 3); }
@inline function hAt(slot: i32): usize { return base + HEADER_BYTES + (<usize>capacity << 3) + (<usize>slot << 3); }

/** The bytes a table of `slots` leases needs from its base. */
export function sharedTableBytes(slots: i32): usize {
  return HEADER_BYTES + <usize>slots * SHARED_SLOT_BYTES;
}

/** Writes a fresh table (creator only, before the memory is shared): every lease empty, gen 0. */
export function sharedCreate(slots: i32, tableEpochNs: i64): void {
  assert(slots > 0 && tableEpochNs > 0);
  base = SHARED_TABLE_BASE;
  memory.fill(base, 0, sharedTableBytes(slots));
  store<i64>(base, tableEpochNs, 16);
  store<i64>(base, tableEpochNs, HIGH_WATER_OFFSET); // the mark starts at the epoch
  store<u32>(base, <u32>slots, 8);
  store<u32>(base, VERSION, 4);
  atomic.store<u32>(base, MAGIC); // last: a table is usable once the magic is seen
  capacity = slots;
  epochNs = tableEpochNs;
}

/** Binds this instance to a table another thread created; returns its capacity or an error. */
export function sharedAttach(): i32 {
  const b = SHARED_TABLE_BASE;
  if (atomic.load<u32>(b) != MAGIC || load<u32>(b, 4) != VERSION) return SHARED_ERR_BAD_TABLE;
  base = b;
  capacity = <i32>load<u32>(b, 8);
  epochNs = load<i64>(b, 16);
  assert(capacity > 0 && epochNs > 0);
  return capacity;
}

export function sharedCapacity(): i32 { return capacity; }

/** Loads the high-water mark (the latest instant any thread published) for the next
 *  `sharedCheckSample`. Call it BEFORE reading the clock: every instant in the mark was then
 *  read before this thread's reading, so on one monotone clock the reading is not smaller. */
export function sharedLoadHighWater(): void {
  highSeenNs = atomic.load<i64>(base, HIGH_WATER_OFFSET);
}

/** Checks a sample (table frame) against the mark loaded before it was read: more than 1 ms
 *  below it, the clock stepped back past what another thread read, so every lease is
 *  invalidated and false returned (treat it as no reading); otherwise true, and the sample is
 *  published as the new mark when it is at least 1 ms past it (one compare-and-swap per ms,
 *  not per read). */
export function sharedCheckSample(nowNs: i64): bool {
  if (nowNs <= 0) return false;
  if (nowNs <= sharedFaultFloor()) return false; // S4: the fault is known; leases were invalidated
  const highNs = highSeenNs;
  if (nowNs < highNs - HIGH_WATER_SLACK_NS) {
    sharedRaiseFaultFloor(highNs); // the step back, for every thread (and every lease invalidated)
    return false;
  }
  if (nowNs >= highNs + HIGH_WATER_SLACK_NS) {
    let seen = highNs;
    while (seen < nowNs) {
      const prev = atomic.cmpxchg<i64>(base, seen, nowNs, HIGH_WATER_OFFSET);
      if (prev == seen) break;
      seen = prev; // another thread published; keep the larger
    }
  }
  return true;
}
export function sharedEpoch(): i64 { return epochNs; }

/** The fault floor (table frame; 0: no fault known). */
export function sharedFaultFloor(): i64 {
  return atomic.load<i64>(base, FAULT_FLOOR_OFFSET);
}

/** A core attached to this table saw a clock fault when `floorNs` (table frame) was the largest
 *  instant it had handed out, or a thread saw the clock below the high-water mark `floorNs`.
 *  Raises the floor (S4), then invalidates every lease; returns whether the floor rose (false:
 *  it was known, and the leases were invalidated when it was raised). */
export function sharedRaiseFaultFloor(floorNs: i64): bool {
  let seen = atomic.load<i64>(base, FAULT_FLOOR_OFFSET);
  while (true) {
    if (floorNs <= seen) return false;
    const prev = atomic.cmpxchg<i64>(base, seen, floorNs, FAULT_FLOOR_OFFSET);
    if (prev == seen) break;
    seen = prev;
  }
  sharedInvalidateAll();
  return true;
}

/** Publishes an instant a core handed out (table frame) into the high-water mark (a running
 *  maximum), so that a thread whose clock later reads more than 1 ms below it sees the step
 *  back (sharedCheckSample). Hosts call it at most once per ms of each core's clock. */
export function sharedPublish(nowNs: i64): void {
  let seen = atomic.load<i64>(base, HIGH_WATER_OFFSET);
  while (seen < nowNs) {
    const prev = atomic.cmpxchg<i64>(base, seen, nowNs, HIGH_WATER_OFFSET);
    if (prev == seen) break;
    seen = prev;
  }
}

// The full generation from H (loaded first) and W's low bits: exact while W.gen - H < 2^20.
@inline function fullGen(h: u64, w: u64): u64 {
  return h + (((w & GEN_MASK) - h) & GEN_MASK);
}

@inline function expiryOfWord(w: u64): i64 {
  const q = w >> GEN_BITS;
  return q == 0 ? 0 : epochNs + <i64>(q << UNIT_SHIFT);
}

/** valid(now): one atomic load (and the floor's). Half open: valid at E-1, not at E. An instant
 *  at or below the fault floor is no reading (S4). */
export function sharedValid(slot: i32, nowNs: i64): bool {
  if (nowNs <= sharedFaultFloor()) return false; // also nowNs == 0
  const q = atomic.load<u64>(wAt(slot)) >> GEN_BITS;
  return q != 0 && nowNs - epochNs < <i64>(q << UNIT_SHIFT);
}

export function sharedExpiry(slot: i32): i64 {
  return expiryOfWord(atomic.load<u64>(wAt(slot)));
}

export function sharedGeneration(slot: i32): i64 {
  const h = atomic.load<u64>(hAt(slot));
  const w = atomic.load<u64>(wAt(slot));
  return <i64>fullGen(h, w);
}

/** Takes effect iff until (rounded down to the grid) is later than the current expiry and
 *  expectedGen is the current generation. Returns whether it changed the lease. */
export function sharedExtend(slot: i32, untilNs: i64, expectedGen: i64): bool {
  if (untilNs <= 0 || untilNs - epochNs < (<i64>1 << UNIT_SHIFT)) return false;
  let q = <u64>(untilNs - epochNs) >> UNIT_SHIFT;
  if (q > Q_MAX) q = Q_MAX; // clamp DOWN: at the end of the range leases fail closed
  const wp = wAt(slot);
  const hp = hAt(slot);
  while (true) {
    const h = atomic.load<u64>(hp);
    const w = atomic.load<u64>(wp);
    if (fullGen(h, w) != <u64>expectedGen) return false;
    if ((w >> GEN_BITS) >= q) return false; // monotone; equal is a no-op
    if (atomic.cmpxchg<u64>(wp, w, (q << GEN_BITS) | (w & GEN_MASK)) == w) return true;
  }
}

/** After a quorum operation that began at `sampleNs` under `expectedGen`: extend to
 *  sampleNs + leaseDurationNs. A sample at or below the fault floor never extends (it predates a
 *  fault some attached core saw; the raise also bumped every generation, this holds without
 *  it); nor does a zero sample, or one whose sum passes i64. */
export function sharedExtendFrom(slot: i32, sampleNs: i64, leaseDurationNs: i64, expectedGen: i64): bool {
  if (sampleNs <= 0 || leaseDurationNs <= 0) return false;
  if (sampleNs <= sharedFaultFloor()) return false;
  if (sampleNs > i64.MAX_VALUE - leaseDurationNs) return false;
  return sharedExtend(slot, sampleNs + leaseDurationNs, expectedGen);
}

/** Clears the expiry and bumps the generation in one cmpxchg, then catches H up. */
export function sharedInvalidate(slot: i32): void {
  const wp = wAt(slot);
  let w = atomic.load<u64>(wp);
  while (true) {
    const seen = atomic.cmpxchg<u64>(wp, w, (w + 1) & GEN_MASK);
    if (seen == w) break;
    w = seen;
  }
  atomic.add<u64>(hAt(slot), 1);
}

export function sharedInvalidateAll(): void {
  for (let slot = 0; slot < capacity; slot++) sharedInvalidate(slot);
}

/** How many of [first, first + count) are valid at one instant. */
export function sharedCountValid(first: i32, count: i32, nowNs: i64): i32 {
  if (nowNs <= sharedFaultFloor()) return 0; // S4 (and nowNs == 0)
  const relNs = nowNs - epochNs;
  let valid = 0;
  for (let slot = first, end = first + count; slot < end; slot++) {
    const q = atomic.load<u64>(wAt(slot)) >> GEN_BITS;
    valid += <i32>(q != 0 && relNs < <i64>(q << UNIT_SHIFT));
  }
  return valid;
}

/** The first lease of [first, first + count) not valid at one instant, or -1 when all are:
 *  a read spanning groups fails closed on it. */
export function sharedFirstInvalid(first: i32, count: i32, nowNs: i64): i32 {
  if (count > 0 && nowNs <= sharedFaultFloor()) return first; // S4 (and nowNs == 0)
  for (let slot = first, end = first + count; slot < end; slot++) {
    if (!sharedValid(slot, nowNs)) return slot;
  }
  return -1;
}
