/**
 * Campaigns and handoffs of the group engine (`lease-core/etcd`, docs/etcd.md "Many groups on
 * one lease"): which groups to take (absent key, rendezvous owner = us) and which to hand off
 * (held, rendezvous owner = another live node), each batch ONE txn of at most `maxTxnOps`
 * nested txns (etcd `--max-txn-ops`, default 128; etcd checks the limit per txn level:
 * server/etcdserver/api/v3rpc/key.go checkTxnRequest recurses into each request_txn), one per
 * group, each with its own compare: a group whose key exists fails alone. Every won group
 * serves only after the local copy has applied the campaign's revision (every acknowledged
 * write of the group is older, etcd revisions being global: §4) and after its takeover hold
 * (§5), unless its resign marker names the last holder this node saw. A handoff stops serving
 * locally first, then deletes the key and writes the marker in one txn.
 *
 * The batch size: etcd 3.4 measures a txn as the longest of its compare, success and failure
 * lists, and checks each nested txn against what the outer one left (`checkRequestOp(u,
 * maxTxnOps - opc)` in api/v3rpc/key.go checkTxnRequest): n nested txns of k ops each fit iff
 * n + k <= maxTxnOps. Measured on etcd 3.4.23 at the default 128: 125 campaigns (k = 3) pass,
 * 126 are refused ("too many operations in txn request").
 * @module
 */

/** The longest list of a group's nested campaign txn (put, read marker, delete marker). */
const CAMPAIGN_OPS = 3;
/** The longest list of a group's nested handoff txn (delete key, put marker). */
const HANDOFF_OPS = 2;
import type { ITxnResponse } from "etcd3";
import { holdNs, liveHolderHoldNs, noteHolder, raiseHold, waitHold } from "../election.js";
import { etcdError } from "../errors.js";
import { waitApplied } from "../replica.js";
import { sleep } from "../util.js";
import { chunk, desiredGroups } from "./assign.js";
import type { GroupRecord, GroupState } from "./state.js";

/** Starts the takeover hold of `rec` from `fromNs` (a clock reading after the previous holder's
 *  key was gone), or none when the last holder resigned (`undefined`). As election.ts startHold. */
function startHold(gs: GroupState, rec: GroupRecord, fromNs: bigint | undefined): void {
  const s = gs.s;
  rec.holdProtected = fromNs === undefined || s.revokeGuard !== "unprotected";
  rec.holdStartNs = fromNs ?? 0n;
  rec.holdLengthNs = fromNs === undefined ? 0n : holdNs(s);
  rec.holdFaults = s.clockFaults();
}

/** Catch-up, then the hold; then `rec` serves, if it still holds `epoch`. */
async function becomeServing(gs: GroupState, rec: GroupRecord, epoch: bigint, catchUpRevision: bigint): Promise<void> {
  const s = gs.s;
  const signal = s.stop.signal;
  try {
    await waitApplied(s, catchUpRevision, signal);
    // After the catch-up, so the copy has applied every key of the group before our campaign:
    // the last holder is then the one whose key went last, even one that lived and was deleted
    // while the copy lagged (it would otherwise look up an older, lapsed lease).
    if (rec.epoch === epoch && rec.holdLookupFor !== undefined) {
      const lookupFor = rec.holdLookupFor;
      rec.holdLookupFor = undefined;
      rec.holdLookup = lookupFor(rec.lastHolderLease).then((ns) => raiseHold(rec, ns));
    }
    await rec.holdLookup;
    await waitHold(s, signal, rec);
  } catch {
    // Closed, or the local copy did not catch up in time: the round loop's next rebalance
    // finds the key ours and not serving, and retries (retake).
    if (rec.epoch === epoch) pendingServe.delete(rec);
    return;
  }
  pendingServe.delete(rec);
  if (signal.aborted || rec.epoch !== epoch) return;
  rec.serving = true;
  rec.servedEpoch = epoch;
  s.event("elected", `group ${rec.id} epoch ${epoch}, applied ${s.applied}`);
}

/** Groups whose catch-up/hold is running (a retake must not start a second one). */
const pendingServe = new WeakSet<GroupRecord>();

/** Takes `rec` at `epoch` (won, or our own key found again) and starts its way to serving. */
function take(gs: GroupState, rec: GroupRecord, epoch: bigint, catchUpRevision: bigint, holdFrom: bigint | undefined, holdLookupFor?: (lease: string | undefined) => Promise<bigint>): void {
  rec.epoch = epoch;
  rec.serving = false;
  rec.confirmedRound = 0;
  startHold(gs, rec, holdFrom);
  rec.holdLookup = undefined;
  rec.holdLookupFor = holdLookupFor;
  pendingServe.add(rec);
  void becomeServing(gs, rec, epoch, catchUpRevision);
}

/** The live node ids (membership keys in the local copy), sorted. */
export function liveNodes(gs: GroupState): string[] {
  return [...gs.live.keys()].sort();
}

/** One pass: hand off what another live node should lead, retake our own keys found again,
 *  campaign for what we should lead and nobody holds. */
export async function rebalance(gs: GroupState): Promise<void> {
  const s = gs.s;
  if (s.closed || s.leaseId === null || !gs.live.has(s.id) || !gs.registered()) return;
  const live = liveNodes(gs);
  const mine = new Set(desiredGroups(s.id, live, gs.groupCount));
  const handoff: GroupRecord[] = [];
  const campaign: GroupRecord[] = [];
  for (const rec of gs.groups) {
    if (rec.epoch !== 0n) {
      if (!mine.has(rec.id)) handoff.push(rec);
      else if (!rec.serving && !pendingServe.has(rec)) {
        // Its catch-up timed out: wait again (the hold, if any, resumes where it was).
        pendingServe.add(rec);
        void becomeServing(gs, rec, rec.epoch, rec.epoch);
      }
      continue;
    }
    const holder = rec.holder;
    if (holder !== undefined && holder.nodeId === s.id && holder.lease === s.leaseId) {
      // Our own key from before (a campaign whose answer was lost, a catch-up that timed out):
      // the same two waits as a won campaign, the hold from now (unknown whether its creation
      // found a marker).
      if (!pendingServe.has(rec)) {
        s.counters.retakes!++;
        take(gs, rec, holder.createRevision, holder.createRevision, s.core.now());
      }
      continue;
    }
    if (holder !== undefined) {
      noteHolderOf(gs, rec);
      continue;
    }
    if (mine.has(rec.id)) campaign.push(rec);
  }
  if (handoff.length > 0) await resignGroups(gs, handoff, s.callOptions());
  for (const batch of chunk(campaign, gs.maxTxnOps - CAMPAIGN_OPS)) {
    if (s.closed || s.leaseId === null) return;
    await campaignBatch(gs, batch);
  }
}

function noteHolderOf(gs: GroupState, rec: GroupRecord): void {
  // The hold must cover the longest TTL another holder's lease may have had (election.ts):
  // every holder's lease, once per LEASE (a group held by a, then d, notes both: attack
  // groups-hold-ttl). The membership key's value already told it (state.ts); this lookup covers
  // a holder whose membership key this node never saw.
  const holder = rec.holder!;
  if (gs.s.holdersNoted.has(holder.lease)) return;
  gs.req(); // noteHolder asks etcd once per lease
  noteHolder(gs.s, { lease: holder.lease } as never);
}

/** One campaign txn for `batch` (each group's own nested txn: compare its key absent; put it
 *  bound to our lease, read and clear its resign marker). */
async function campaignBatch(gs: GroupState, batch: GroupRecord[]): Promise<void> {
  const s = gs.s;
  const leaseId = s.leaseId!;
  const value = Buffer.from(s.id);
  gs.req();
  s.counters.campaignTxns!++;
  s.counters.campaigns! += batch.length;
  let txn: ITxnResponse;
  try {
    txn = await s.kv.txn(
      {
        compare: [],
        success: batch.map((rec) => ({
          request_txn: {
            compare: [{ key: rec.key, target: "Create", result: "Equal", create_revision: "0" }],
            success: [{ request_put: { key: rec.key, value, lease: leaseId } }, { request_range: { key: rec.resignKey } }, { request_delete_range: { key: rec.resignKey } }],
            failure: [],
          },
        })),
        failure: [],
      },
      s.callOptions(),
    );
  } catch (err) {
    // Unknown outcome: a key created anyway shows up in the local copy as ours and is retaken.
    throw etcdError("campaign", s.endpoints, err);
  }
  // After the answer, so after every previous holder's key was gone.
  const answeredAtNs = s.core.now();
  const revision = BigInt(txn.header.revision);
  // A won group without a marker may have lost its key to someone else's delete while its
  // holder still serves (docs/etcd.md case (d)): one live-holder lookup per previous LEASE, so
  // a batch of groups from one dead node costs one call (election.ts liveHolderHoldNs).
  const lookups = new Map<string | undefined, Promise<bigint>>();
  const lookupFor = (lease: string | undefined): Promise<bigint> => {
    let lookup = lookups.get(lease);
    if (lookup === undefined) {
      if (lease !== undefined && lease !== "0" && (s.revokeGuard === "etcd" || s.revokeGuard === "unprotected")) gs.req();
      lookup = liveHolderHoldNs(s, lease);
      lookups.set(lease, lookup);
    }
    return lookup;
  };
  for (let i = 0; i < batch.length; i++) {
    const rec = batch[i]!;
    const nested = txn.responses[i]?.response_txn;
    if (nested === undefined || !nested.succeeded || rec.epoch !== 0n) continue;
    // Every creation clears the marker; only a handoff writes it, naming the resigned key's
    // create revision. It counts only when it names the last holder this node saw.
    const marker = nested.responses[1]?.response_range.kvs[0];
    const resigned = marker !== undefined && rec.lastHolderCreateRevision !== 0n && marker.value.toString() === rec.lastHolderCreateRevision.toString();
    take(gs, rec, revision, revision, resigned ? undefined : answeredAtNs, resigned ? undefined : lookupFor);
  }
}

/**
 * Hands `recs` off: each stops serving here first (its listeners fire), then one txn per batch
 * deletes each key iff it is still ours and, when this node may vouch for it (it served under
 * the key after a protected takeover), writes the resign marker naming the epoch. A failure is
 * ignored: the key then lapses with the lease, and the next holder holds.
 */
export async function resignGroups(gs: GroupState, recs: GroupRecord[], callOptions: { deadline: Date }): Promise<void> {
  const s = gs.s;
  const items = recs.filter((rec) => rec.epoch !== 0n).map((rec) => ({ rec, epoch: rec.epoch, vouch: rec.servedEpoch === rec.epoch && rec.holdProtected }));
  for (const { rec } of items) gs.lose(rec, "closed", "handed off");
  s.counters.handoffs! += items.length;
  await Promise.all(
    chunk(items, gs.maxTxnOps - HANDOFF_OPS).map((batch) => {
      gs.req();
      return s.kv
        .txn(
          {
            compare: [],
            success: batch.map(({ rec, epoch, vouch }) => ({
              request_txn: {
                compare: [{ key: rec.key, target: "Create", result: "Equal", create_revision: epoch.toString() }],
                success: [{ request_delete_range: { key: rec.key } }, ...(vouch ? [{ request_put: { key: rec.resignKey, value: Buffer.from(epoch.toString()) } }] : [])],
                failure: [],
              },
            })),
            failure: [],
          },
          callOptions,
        )
        .catch(() => undefined);
    }),
  );
}

/** Rebalances whenever a membership or group key changes (the watch kicks), and at least every
 *  renew interval, until closed. */
export async function campaignLoop(gs: GroupState): Promise<void> {
  const s = gs.s;
  const signal = s.stop.signal;
  while (!signal.aborted) {
    let kicked: () => void = () => {};
    const woken = new Promise<void>((resolve) => (kicked = resolve));
    gs.kick = kicked;
    try {
      await rebalance(gs);
    } catch {
      await sleep(100, signal);
    }
    const intervalMs = s.renewIntervalMs ?? Math.max(50, (s.ttlAskedS * 1000) / 4);
    await Promise.race([woken, sleep(intervalMs, signal)]);
    // Let a burst of watch events settle into one pass.
    await sleep(5, signal);
  }
}
