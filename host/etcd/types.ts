/**
 * The public shapes of `lease-core/etcd` that are not options (docs/etcd.md): the events a node
 * reports, a read's and a write's outcome, and the status snapshot (§3's margin, §5's revoke
 * guard and takeover hold). Re-exported by index.ts.
 * @module
 */
import type { EngineState } from "../core/reader.js";

/** Why something happened to the lease or the leadership (reason-coded, never a bare string). */
export type EtcdEventReason =
  | "elected"
  | "confirmed"
  | "term-mismatch"
  | "key-missing"
  | "own-key-deleted"
  | "own-key-overwritten"
  | "etcd-lease-expired"
  | "fence-failed"
  | "keepalive-timeout"
  | "keepalive-error"
  | "watch-error"
  | "watch-compacted"
  | "watch-reload"
  | "clock-fault"
  | "etcd-versions"
  | "etcd-unprotected"
  | "takeover-live-holder"
  | "behind-own-write"
  | "closed";

/** Something the node did or saw (an election won, a lease lost, an own-key deletion...). */
export interface EtcdNodeEvent {
  /** What happened. */
  reason: EtcdEventReason;
  /** When, on the core's lease clock, in ns. */
  atNs: bigint;
  /** Free text for logs (a term, a revision, an error message). */
  detail?: string;
}

/** A write's outcome. */
export interface EtcdWriteResult {
  /** The etcd revision the fenced transaction committed at. */
  revision: bigint;
}

/** Where a read was answered from, and why. */
export interface EtcdReadResult {
  /** The value, or null when the key is absent. */
  value: string | null;
  /** The etcd revision the local state had when the value was taken. */
  revision: bigint;
  /** `local`: from the replicated state under a valid lease; `etcd`: after a linearizable etcd read. */
  served: "local" | "etcd";
  /** The reader's reason (`valid` when local; `expired`, `not-leader`... otherwise), or
   *  `expired` when the post-read check found the lease gone (a pause in between). */
  reason: string;
}

/** A snapshot for logs and the dashboard. */
export interface EtcdNodeStatus {
  /** This node's id. */
  id: string;
  /** Its role: `leader` while it holds the election key. */
  state: EngineState;
  /** The id stored in the election key, or null when nobody leads. */
  leaderId: string | null;
  /** This node's etcd lease id (hex), or null before it has one. */
  leaseId: string | null;
  /** The election key's create revision while this node leads (its fencing token), else 0n. */
  leaderCreateRevision: bigint;
  /** The etcd revision the local replicated state has reached. */
  appliedRevision: bigint;
  /** The etcd lease TTL, in ns. */
  ttlNs: bigint;
  /** The safety margin taken off the TTL (docs/etcd.md §3), in ns. */
  marginNs: bigint;
  /** TTL - margin: how long a confirmed keepalive proves the lease, in ns. */
  leaseDurationNs: bigint;
  /** The confirmed anchor (send time of the last confirmed keepalive), 0n for none. */
  anchorNs: bigint;
  /** Time left on the engine-side lease at `nowNs` (0n when not valid). */
  remainingNs: bigint;
  /** The lease-clock instant this status was taken at, in ns. */
  nowNs: bigint;
  /** The etcd raft term of the last confirmed keepalive. */
  lastTerm: bigint;
  /** Event counts by reason (elections, confirmations, term mismatches, ...). */
  counters: Record<string, number>;
  /** The etcd server version each member (etcd's member list, plus the endpoints given)
   *  reported at start, by client address (`unknown` when it did not answer). */
  etcdVersions: Record<string, string>;
  /**
   * What keeps an early revoke by a stuck old etcd leader (etcd-io/etcd #15247 part 1, #12528)
   * from ending a previous holder's key while its lease still serves: `etcd` (every member
   * runs a fixed version: 3.4.31+, 3.5.13+, 3.6.0+), `takeover-hold` (a new leader serves
   * nothing until any previous holder's lease must have lapsed), or `unprotected`
   * (`takeoverHold: "never"` on a cluster without the fix). `pending` before start() read it.
   */
  revokeGuard: RevokeGuard;
  /** While this node waits out a previous holder's lease: the lease-clock instant it may serve
   *  from, in ns; 0n otherwise. */
  holdUntilNs: bigint;
}

/** See `EtcdNodeStatus.revokeGuard`. */
export type RevokeGuard = "pending" | "etcd" | "takeover-hold" | "unprotected";
