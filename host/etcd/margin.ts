/**
 * The margin of `lease-core/etcd` (docs/etcd.md §3): how much shorter than etcd's TTL the lease
 * a confirmed keepalive proves is. One function, used both by the option check at creation
 * (the TTL asked for) and whenever etcd grants a TTL.
 * @module
 */

export const MS = 1_000_000n;
export const S = 1_000_000_000n;

/**
 * docs/etcd.md §3: `margin = etcdElectionTimeout + ceil(2 · TTL · driftPpmMax / 1e6) + 1 ms`.
 * The election timeout covers the promotion and step-down windows, twice the drift over one
 * TTL covers either clock being the fast one (etcd times leases on CLOCK_MONOTONIC, which NTP
 * may slew, adjtimex(2)), and 1 ms covers timer and clock granularity.
 */
export function etcdMarginNs(ttlNs: bigint, electionTimeoutNs: bigint, driftPpmMax: bigint): bigint {
  const driftNs = (2n * ttlNs * driftPpmMax + 999_999n) / 1_000_000n;
  return electionTimeoutNs + driftNs + MS;
}
