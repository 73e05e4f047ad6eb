/**
 * The public shapes of the group engine (`lease-core/etcd`, docs/etcd.md "Many groups on one
 * lease") that are not options: the status snapshot. Re-exported by host/etcd/index.ts.
 * @module
 */

/** A snapshot of a group node, for logs and the dashboard. */
export interface EtcdGroupNodeStatus {
  /** This node's id. */
  id: string;
  /** The node ids with a membership key `<prefix>/n/<id>` in the local copy (sorted). */
  liveNodes: string[];
  /** G. */
  groupCount: number;
  /** How many groups this node holds the key of (won, maybe still catching up or holding). */
  leading: number;
  /** How many of them serve (caught up, out of their takeover hold). */
  serving: number;
  /** The node's etcd lease id (decimal string), or null before it has one. */
  leaseId: string | null;
  /** The node proof's anchor: send time of the last confirmed keepalive (0n: none). */
  ackNs: bigint;
  /** The confirmation round that set `ackNs` (0: none). */
  ackRound: number;
  /** Bumped by every node-wide invalidation. */
  generation: bigint;
  /** TTL - margin, in ns (docs/etcd.md §3). */
  leaseDurationNs: bigint;
  /** Time the node proof has left at `nowNs`, in ns (0n when none). */
  remainingNs: bigint;
  /** The lease-clock instant of this snapshot, in ns. */
  nowNs: bigint;
  /** Confirmation rounds started. */
  rounds: number;
  /** How long the last completed round took, in ms (0 before any). */
  lastRoundMs: number;
  /** The etcd revision the local copy has reached. */
  appliedRevision: bigint;
  /** Counters (see EtcdGroupNode.counters). */
  counters: Record<string, number>;
}
