/**
 * One group's `LeaseEngine` (`lease-core/etcd`, docs/etcd.md "Many groups on one lease"): what
 * the core's reader asks of group g, answered from the group's record and the node proof.
 * Nothing per group is written on a renewal: `lastQuorumAck()` points at the node's anchor.
 *
 * - `state()` is "leader" iff the node holds g's key, caught up and out of its takeover hold;
 * - `lastQuorumAck()` = the node's anchor iff leader and the anchor's round is at or after the
 *   first round whose read saw g's key (`confirmedRound`), and the local copy is not behind a
 *   write of ours (docs/etcd.md §4); else 0n;
 * - `currentTerm()` = g's epoch (its key's create revision); `quorumAckTerm()` = the epoch
 *   once confirmed, so an anchor from an earlier leadership of g never serves (guards.md).
 * @module
 */
import { LeadershipLostError } from "../../core/errors.js";
import type { EngineState, LeaseEngine } from "../../core/reader.js";
import { metaRevisionOf, readTxn, waitApplied } from "../replica.js";
import { freshRound } from "./confirm.js";
import type { GroupRecord, GroupState } from "./state.js";

export class GroupEngine implements LeaseEngine {
  readonly #gs: GroupState;
  readonly #rec: GroupRecord;

  constructor(gs: GroupState, rec: GroupRecord) {
    this.#gs = gs;
    this.#rec = rec;
  }

  state(): EngineState {
    if (this.#gs.s.closed) return "shutdown";
    return this.#gs.leads(this.#rec) ? "leader" : "follower";
  }

  appliedIndex(): bigint {
    return this.#gs.s.applied;
  }

  /** Whether the node's anchor covers this group: set by a round at or after the first round
   *  that saw the group's key as ours. */
  #confirmed(): boolean {
    const rec = this.#rec;
    if (__UNSAFE_SKIP_GROUP_CONFIRMATION__) return rec.epoch !== 0n;
    return rec.confirmedRound !== 0 && this.#gs.ackRound >= rec.confirmedRound;
  }

  lastQuorumAck(): bigint {
    const s = this.#gs.s;
    // The reader asks right after its own clock reading: a fault that reading saw drops the anchor.
    s.checkClockFaults();
    const rec = this.#rec;
    if (!this.#gs.leads(rec) || !this.#confirmed()) return 0n;
    if (s.applied < rec.ownWriteFloor || rec.ownWriteUnknown) return 0n;
    return s.ackNs;
  }

  leaseDurationNs(): bigint {
    const s = this.#gs.s;
    return s.durationNs > 0n ? s.durationNs : 0n;
  }

  currentTerm(): bigint {
    return this.#gs.leads(this.#rec) ? this.#rec.epoch : 0n;
  }

  quorumAckTerm(): bigint {
    return this.#gs.leads(this.#rec) && this.#confirmed() ? this.#rec.epoch : 0n;
  }

  onLeaderLoss(callback: () => void): () => void {
    const wrapped = () => callback();
    this.#rec.listeners.add(wrapped);
    return () => this.#rec.listeners.delete(wrapped);
  }

  /**
   * A linearizable read barrier. As leader: the node round that starts after this call (shared
   * by every group asking meanwhile, never one per group), which must still see this group's
   * key; otherwise a linearizable read-only txn. Then the local copy reaches the meta key's
   * revision the read saw (every acknowledged write put it).
   */
  async linearizableRead(signal?: AbortSignal): Promise<bigint> {
    const gs = this.#gs;
    const s = gs.s;
    const rec = this.#rec;
    s.checkOpen();
    const unknownSeq = rec.ownWriteUnknownSeq;
    let metaRevision: bigint;
    if (gs.leads(rec)) {
      const epoch = rec.epoch;
      const result = await freshRound(gs);
      if (result.lost.has(rec.id) || rec.epoch !== epoch) throw new LeadershipLostError(`group ${rec.id}: our leader key is gone`);
      metaRevision = result.metaRevision;
    } else {
      gs.req();
      metaRevision = metaRevisionOf(await readTxn(s));
    }
    await waitApplied(s, metaRevision, signal);
    if (rec.ownWriteUnknown && unknownSeq === rec.ownWriteUnknownSeq) rec.ownWriteUnknown = false;
    return s.applied;
  }
}
