// Configuration rules (docs/contract.md §5), each checked once with its own error code.
//
//   leaseDurationNs = electionTimeoutNs - safetyMarginNs
//
// Why the margin: followers time out on their own clocks. If the leader's clock runs slow by
// driftPpmMax relative to a follower, the follower may elect a new leader after
// electionTimeoutNs * (1 - drift) of leader time; the lease must end before that, and the
// follower's timer only fires on a tick boundary, up to one tick early in the worst case. So
//   safetyMarginNs >= electionTimeoutNs * driftPpmMax / 1e6 + tickNs.
// Reference store: 1 s election timeout, 10 ms tick, 50 ppm: needs >= 10.05 ms; it uses 300 ms.

export const CONFIG_OK: i32 = 0;
export const CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE: i32 = 1;
export const CONFIG_TICK_NOT_POSITIVE: i32 = 2;
export const CONFIG_DRIFT_NEGATIVE: i32 = 3;
export const CONFIG_MARGIN_TOO_SMALL: i32 = 4;
export const CONFIG_DURATION_NOT_POSITIVE: i32 = 5;
export const CONFIG_CHECK_QUORUM_REQUIRED: i32 = 6;
export const CONFIG_DRIFT_TOO_LARGE: i32 = 7;

/** 1e6 ppm is a clock running at twice or zero speed: beyond that no margin means anything. */
export const DRIFT_PPM_LIMIT: i64 = 1_000_000;

/** The smallest safety margin the rule allows, rounded up to the next ns. */
export function minSafetyMarginNs(electionTimeoutNs: i64, driftPpmMax: i64, tickNs: i64): i64 {
  // electionTimeoutNs * driftPpmMax may pass i64 (1e18 * 1e6): divide first, then add the
  // remainder's share, which is exact for every electionTimeoutNs < 2^63.
  // Saturates at i64.MAX_VALUE, which no margin can meet: absurd inputs fail the rule.
  const q = electionTimeoutNs / 1_000_000;
  const r = electionTimeoutNs % 1_000_000;
  if (driftPpmMax > DRIFT_PPM_LIMIT) return i64.MAX_VALUE;
  if (q > (i64.MAX_VALUE - tickNs - DRIFT_PPM_LIMIT) / (driftPpmMax | 1)) return i64.MAX_VALUE;
  const driftNs = q * driftPpmMax + (r * driftPpmMax + 999_999) / 1_000_000;
  return driftNs + tickNs;
}

/** The margin of a lease timed on another node's TTL (docs/etcd.md §3; the etcd engine): that
 *  node's election timeout (a new leader of that cluster may revoke on its own clock), the drift
 *  of both clocks over the TTL, ceil(2 * ttlNs * driftPpmMax / 1e6), and 1 ms of rounding:
 *    electionTimeoutNs + ceil(2 * ttlNs * driftPpmMax / 1e6) + 1 ms.
 *  Saturates at i64.MAX_VALUE (no lease) on overflow and on any input out of range (a
 *  non-positive timeout or TTL, a drift outside [0, DRIFT_PPM_LIMIT]): it fails closed. */
export function ttlMarginNs(electionTimeoutNs: i64, ttlNs: i64, driftPpmMax: i64): i64 {
  if (electionTimeoutNs <= 0 || ttlNs <= 0 || driftPpmMax < 0 || driftPpmMax > DRIFT_PPM_LIMIT) return i64.MAX_VALUE;
  // 2 * ttlNs * driftPpmMax may pass i64: split ttlNs = q * 1e6 + r. With q <= i64.MAX / 1e6 and
  // drift <= 1e6, 2 * q * drift <= 1.8446744073708e19 fits a u64, and the remainder's share is
  // at most 2e6: the sum is exact in u64 unless it wraps, which is checked.
  const q = ttlNs / 1_000_000;
  const r = ttlNs % 1_000_000;
  const wholeNs: u64 = <u64>(2 * q) * <u64>driftPpmMax;
  const driftNs: u64 = wholeNs + <u64>((2 * r * driftPpmMax + 999_999) / 1_000_000);
  if (driftNs < wholeNs) return i64.MAX_VALUE;
  const fixedNs = electionTimeoutNs + 1_000_000;
  if (fixedNs < electionTimeoutNs || driftNs > <u64>(i64.MAX_VALUE - fixedNs)) return i64.MAX_VALUE;
  return fixedNs + <i64>driftNs;
}

export function validateConfig(
  electionTimeoutNs: i64,
  tickNs: i64,
  safetyMarginNs: i64,
  driftPpmMax: i64,
  checkQuorum: bool,
): i32 {
  if (electionTimeoutNs <= 0) return CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE;
  if (tickNs <= 0) return CONFIG_TICK_NOT_POSITIVE;
  if (driftPpmMax < 0) return CONFIG_DRIFT_NEGATIVE;
  if (driftPpmMax > DRIFT_PPM_LIMIT) return CONFIG_DRIFT_TOO_LARGE;
  if (electionTimeoutNs - safetyMarginNs <= 0) return CONFIG_DURATION_NOT_POSITIVE;
  if (safetyMarginNs < minSafetyMarginNs(electionTimeoutNs, driftPpmMax, tickNs)) {
    return CONFIG_MARGIN_TOO_SMALL;
  }
  if (!checkQuorum) return CONFIG_CHECK_QUORUM_REQUIRED;
  return CONFIG_OK;
}
