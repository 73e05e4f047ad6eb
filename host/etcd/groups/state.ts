/**
 * The state a group node (`lease-core/etcd`, docs/etcd.md "Many groups on one lease") shares
 * between its files: the single-leader node's `NodeState` for everything one etcd lease needs
 * (client, lease, keepalive stream, local copy, clock faults: reused as is), plus the group
 * table (`GroupRecord` per group), the live nodes and the node proof's round counter.
 * Internal: index.ts holds one per node and never exports it.
 *
 * Invariants, kept by the functions that write these fields:
 * - the node proof is `s.ackNs` (anchor), `ackRound` (the round that set it) and `s.generation`
 *   (bumped by every node-wide invalidation, which also clears `s.ackNs`);
 * - a group serves a lease read only while `epoch !== 0n && serving` and
 *   `confirmedRound !== 0 && ackRound >= confirmedRound`: the anchor comes from a round whose
 *   quorum read saw this group's key with our lease and its epoch, in the keepalive's raft term;
 * - a group that loses its key (watch, round, fence) gets `epoch = 0n, serving = false,
 *   confirmedRound = 0` and its leader-loss listeners fire, before anything else runs.
 * @module
 */
import type { IKeyValue } from "etcd3";
import { isDelete } from "../replica.js";
import { NodeState } from "../state.js";
import { setMaxListeners } from "node:events";
import type { Hold } from "../election.js";
import type { EtcdEventReason } from "../types.js";
import { groupKeySuffix } from "./assign.js";
import type { CheckedGroupOptions } from "./options.js";
import { S } from "../margin.js";

/** What the local copy shows of a group's leader key. */
export interface GroupHolder {
  nodeId: string;
  lease: string;
  createRevision: bigint;
}

/** One group: its keys, its leadership by this node, its own-write flags, its hold. */
export class GroupRecord implements Hold {
  readonly id: number;
  /** `<prefix>/g/<id 5 digits>`: its leader key. */
  readonly key: Buffer;
  /** `<prefix>/r/<id 5 digits>`: its resign marker. */
  readonly resignKey: Buffer;
  /** Our leader key's create revision while we hold it (the fencing token and the reader's
   *  term), 0n otherwise. */
  epoch = 0n;
  /** Caught up to the campaign's revision and out of the takeover hold (docs/etcd.md §4, §5). */
  serving = false;
  /** The first confirmation round whose read saw our key (0: none yet). */
  confirmedRound = 0;
  /** As the single-leader node's (docs/etcd.md §4): a write of ours committed at a revision the
   *  local copy has not reached, or a write whose txn failed without an answer. */
  ownWriteFloor = 0n;
  ownWriteUnknown = false;
  ownWriteUnknownSeq = 0;
  /** Writes of ours to this group whose txn was sent and has not answered yet: one may have
   *  committed already (another node's linearizable read may have returned it) while the local
   *  copy lags, so no local read of the group is served meanwhile (attack groups-write-in-flight). */
  writesInFlight = 0;
  readonly listeners = new Set<() => void>();
  /** The local copy of the group's leader key (undefined: absent). */
  holder: GroupHolder | undefined;
  /** The create revision of the last other node's key this node saw for the group (0n: none). */
  lastHolderCreateRevision = 0n;
  /** The etcd lease id (decimal) that key was bound to (undefined: none seen): the live-holder
   *  check of a takeover without a marker looks it up (election.ts liveHolderHoldNs). */
  lastHolderLease: string | undefined = undefined;
  /** The live-holder lookup of the current takeover, awaited before its hold (campaign.ts):
   *  `holdLookupFor` (the campaign batch's, one call per lease) until the catch-up, then its
   *  pending answer. */
  holdLookupFor: ((lease: string | undefined) => Promise<bigint>) | undefined = undefined;
  holdLookup: Promise<void> | undefined = undefined;
  // The takeover hold of this group's current epoch (election.ts waitHold).
  holdStartNs = 0n;
  holdLengthNs = 0n;
  holdFaults = 0;
  /** Whether the takeover into `epoch` waited out every previous holder (or was handed off). */
  holdProtected = false;
  /** The epoch this node last served under: only its resign may write a marker. */
  servedEpoch = 0n;

  constructor(prefix: string, id: number) {
    this.id = id;
    this.key = Buffer.from(`${prefix}/g/${groupKeySuffix(id)}`);
    this.resignKey = Buffer.from(`${prefix}/r/${groupKeySuffix(id)}`);
  }
}

/** The counters a group node adds to the single-leader node's. */
const GROUP_COUNTERS = ["etcdRequests", "rounds", "roundsConfirmed", "campaigns", "campaignTxns", "handoffs", "groupsLost", "retakes", "registrations"];

export class GroupState {
  readonly s: NodeState;
  readonly groupCount: number;
  readonly maxTxnOps: number;
  readonly groups: GroupRecord[];
  readonly gPrefix: Buffer;
  readonly nPrefix: Buffer;
  readonly memberKey: Buffer;
  /** Live nodes (membership keys in the local copy): node id → lease. */
  readonly live = new Map<string, string>();
  /** The round whose confirmation set `s.ackNs` (0: none). */
  ackRound = 0;
  /** Rounds started (each gets the next number). */
  roundSeq = 0;
  lastRoundMs = 0;
  /** The lease our membership key was last put with, and that put's revision (null, 0n: none). */
  registeredLease: string | null = null;
  registeredRevision = 0n;
  /** The newest revision at which our membership key was seen gone: a DELETE from the watch (its
   *  deletion revision) or a round's quorum read that did not show it with our lease (its header
   *  revision). Only a deletion NEWER than our last put voids the registration: after a lease
   *  expiry, a lagging watch delivers the DELETE of the old key after the new one was put, and
   *  taking that for ours left the node registered (live for every other node, rendezvous owner
   *  of its groups) yet never campaigning again (issue 17, nemesis seed 8). */
  memberGoneRevision = 0n;
  /** Wakes the campaign loop (a membership or group key changed). */
  kick: () => void = () => {};

  constructor(options: CheckedGroupOptions) {
    this.s = new NodeState(options);
    // Every group waiting out its catch-up or hold listens on the stop signal.
    setMaxListeners(0, this.s.stop.signal);
    const prefix = options.prefix;
    this.groupCount = options.groupCount;
    this.maxTxnOps = options.maxTxnOps;
    this.gPrefix = Buffer.from(`${prefix}/g/`);
    this.nPrefix = Buffer.from(`${prefix}/n/`);
    this.memberKey = Buffer.from(`${prefix}/n/${options.id}`);
    this.groups = Array.from({ length: options.groupCount }, (_, g) => new GroupRecord(prefix, g));
    for (const name of GROUP_COUNTERS) this.s.counters[name] = 0;
    // One watch of the whole service prefix keeps n/, g/ and d/ (replica.ts routes by prefix).
    this.s.watchPrefix = Buffer.from(`${prefix}/`);
    // A node-wide invalidation (NodeState.invalidate: term mismatch, keepalive failure, lease
    // expired, close) tells every led group's readers.
    this.s.listeners.add(() => {
      for (const rec of this.groups) if (rec.epoch !== 0n) fire(rec);
    });
  }

  /** Whether our membership key stands with the current lease: put with it, and no deletion of
   *  it seen since that put. The campaign loop campaigns only while it does. */
  registered(): boolean {
    return this.registeredLease !== null && this.registeredLease === this.s.leaseId && this.registeredRevision > this.memberGoneRevision;
  }

  /** Counts `n` etcd requests (every RPC and every keepalive message). */
  req(n = 1): void {
    this.s.counters.etcdRequests! += n;
  }

  /** Whether group `rec` may serve: held, caught up, out of its hold, the node open. */
  leads(rec: GroupRecord): boolean {
    return rec.epoch !== 0n && rec.serving && !this.s.closed;
  }

  /** Group `rec` stops being led by this node, at once (its listeners fire). */
  lose(rec: GroupRecord, reason: EtcdEventReason, detail?: string): void {
    if (rec.epoch === 0n) return;
    const epoch = rec.epoch;
    rec.epoch = 0n;
    rec.serving = false;
    rec.confirmedRound = 0;
    rec.holdLengthNs = 0n;
    this.s.counters.groupsLost!++;
    fire(rec);
    this.s.event(reason, `group ${rec.id} epoch ${epoch}${detail === undefined ? "" : `: ${detail}`}`);
  }

  /** Every group held is lost (our etcd lease is gone, or the node closes). */
  loseAll(reason: EtcdEventReason, detail?: string): void {
    for (const rec of this.groups) this.lose(rec, reason, detail);
  }

  /** The watch's keys outside the data prefix: membership and group keys (resign markers are
   *  read by the campaign txn itself). */
  onKey(kv: IKeyValue, type: string): void {
    const key = kv.key;
    if (startsWith(key, this.nPrefix)) {
      const nodeId = key.subarray(this.nPrefix.length).toString();
      if (isDelete(type)) this.live.delete(nodeId);
      else {
        this.live.set(nodeId, String(kv.lease));
        // Its value is the TTL etcd granted its lease (register(), confirm.ts): every group key
        // it will hold is bound to that lease, so a takeover from it must hold that long
        // (docs/etcd.md §5), known here before it holds any group, with no lookup to race a revoke.
        const ttlS = Number(kv.value.toString());
        if (nodeId !== this.s.id && Number.isSafeInteger(ttlS) && ttlS > 0 && BigInt(ttlS) * S > this.s.holderTtlNs) this.s.holderTtlNs = BigInt(ttlS) * S;
      }
      // Watch events come in revision order, but our own put's answer does not wait for them:
      // a deletion counts against the key it can be about (etcd sets a DELETE event's
      // mod_revision to the deletion's revision: api/mvccpb/kv.proto).
      if (nodeId === this.s.id && isDelete(type)) {
        const revision = BigInt(kv.mod_revision);
        if (revision > this.memberGoneRevision) this.memberGoneRevision = revision;
      }
      this.kick();
      return;
    }
    if (!startsWith(key, this.gPrefix)) return;
    const g = Number(key.subarray(this.gPrefix.length).toString());
    const rec = Number.isInteger(g) ? this.groups[g] : undefined;
    if (rec === undefined) return; // a group beyond our count: another G on the prefix, ignored
    // A lagging watch may deliver an event about an older key after a round or a campaign
    // learned newer facts: an event only counts against the key it can be about (a deletion
    // after its creation, a creation after ours).
    const revision = BigInt(kv.mod_revision);
    if (isDelete(type)) {
      if (rec.holder === undefined || rec.holder.createRevision < revision) rec.holder = undefined;
      if (rec.epoch !== 0n && rec.epoch < revision) this.lose(rec, "own-key-deleted");
    } else {
      const holder = { nodeId: kv.value.toString(), lease: String(kv.lease), createRevision: BigInt(kv.create_revision) };
      if (rec.holder === undefined || rec.holder.createRevision <= holder.createRevision) rec.holder = holder;
      if (rec.epoch !== 0n && holder.createRevision > rec.epoch) this.lose(rec, "own-key-overwritten");
      if (holder.nodeId !== this.s.id || holder.lease !== this.s.leaseId) {
        rec.lastHolderCreateRevision = holder.createRevision;
        rec.lastHolderLease = holder.lease;
      }
    }
    this.kick();
  }
}

/** Invalidates one group's readers (a loss, or a write of unknown outcome: docs/etcd.md §4). */
export function fire(rec: GroupRecord): void {
  for (const listener of [...rec.listeners]) {
    try {
      listener();
    } catch {
      // a listener's failure must not stop the others from invalidating
    }
  }
}

export function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}
