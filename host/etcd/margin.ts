/**
 * The margin of `lease-core/etcd` (docs/etcd.md §3): how much shorter than etcd's TTL the lease
 * a confirmed keepalive proves is, and the lease duration that leaves. The margin is one
 * function (`etcdMarginNs`); the rules on the result are the core's own (`leaseDurationFor`,
 * docs/contract.md §5), asked of the core rather than written again here.
 * @module
 */
import type { LeaseCore } from "../core/core.js";

export const MS = 1_000_000n;
export const S = 1_000_000_000n;

/**
 * docs/etcd.md §3: `margin = etcdElectionTimeout + ceil(2 · TTL · driftPpmMax / 1e6) + 1 ms`.
 * The election timeout covers the promotion and step-down windows, twice the drift over one
 * TTL covers either clock being the fast one (etcd times leases on CLOCK_MONOTONIC, which NTP
 * may slew, adjtimex(2)), and 1 ms covers timer and clock granularity. The formula is the
 * core's (`configTtlMarginNs` in assembly/config.ts, docs/contract.md §5), written once there.
 */
export function etcdMarginNs(core: LeaseCore, ttlNs: bigint, electionTimeoutNs: bigint, driftPpmMax: bigint): bigint {
  return core.ttlSafetyMarginNs(electionTimeoutNs, ttlNs, driftPpmMax);
}

/**
 * The etcd lease in the core's terms, checked by the core: the TTL is the time after which
 * another holder may take over (the core's `electionTimeoutNs`), the margin above is its
 * `safetyMarginNs`, 1 ms its tick, and etcd always runs raft with CheckQuorum (etcdserver
 * raft.go). So the drift is refused by the core's rule, with the core's typed error
 * (`DriftTooLargeError`, or `InvalidDurationError` for a negative one), and the duration is the
 * core's `TTL - margin`. The core's margin rule (`>= TTL · drift / 1e6 + tick`) always holds for
 * §3's margin, which takes twice the drift plus the election timeout (>= 1 ms).
 *
 * `durationNs <= 0n` means no lease: the caller names the TTL that is too short. Throws only
 * the core's refusals of the drift (or of a TTL beyond 2^63 - 1 ns).
 */
export function etcdLeaseTiming(core: LeaseCore, ttlNs: bigint, electionTimeoutNs: bigint, driftPpmMax: bigint): { marginNs: bigint; durationNs: bigint } {
  // A negative drift is the core's to refuse: its margin is taken at 0 ppm so that the core
  // names the drift, not a margin it would make negative.
  const marginNs = etcdMarginNs(core, ttlNs, electionTimeoutNs, driftPpmMax < 0n ? 0n : driftPpmMax);
  try {
    // A margin of the whole TTL or more leaves no lease whatever its size: the core is asked
    // with the TTL itself, so a huge margin cannot pass 2^63 before the core sees the drift.
    const durationNs = core.leaseDurationFor({ electionTimeoutNs: ttlNs, tickNs: MS, safetyMarginNs: marginNs < ttlNs ? marginNs : ttlNs, driftPpmMax, checkQuorum: true });
    return { marginNs, durationNs };
  } catch (err) {
    // By code: the etcd bundle and the core may carry different copies of the error classes.
    if ((err as { code?: unknown } | null)?.code === "ERR_LEASE_CONFIG_DURATION") return { marginNs, durationNs: ttlNs - marginNs };
    throw err;
  }
}
