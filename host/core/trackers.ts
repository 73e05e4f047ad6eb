/**
 * Quorum-ack trackers (contract §3): `QuorumAckTracker` over one voter set and
 * `JointQuorumAckTracker` over a configuration that may be joint (Raft §6), with
 * `followerQuorum`. Each tracker is a handle on one tracker of the wasm core.
 * @module
 */
import type { CoreExports } from "./abi.js";
import { I32_MAX, checkInstant, checkPeerId, checkQuorum, checkTerm, checkVoters } from "./checks.js";
import { DisposedError, InvalidOptionError, InvalidQuorumError, InvalidVoterConfigError, TooManyPeersError } from "./errors.js";
import { ACK_OK, ACK_TOO_MANY_PEERS, MAX_PEERS } from "../generated/constants.js";

/**
 * @internal What a tracker needs of the core that owns it; `LeaseCore` satisfies it (core.ts).
 * An interface, not the class, so that this module does not import the core that creates it.
 */
export interface TrackerOwner {
  readonly exports: CoreExports;
  /** A new single-set tracker (a joint tracker holds two). */
  createQuorumAckTracker(): QuorumAckTracker;
  /** Returns a disposed tracker to the core. */
  releaseTracker(tracker: QuorumAckTracker, t: number): void;
}

/**
 * The follower quorum `q = floor(N/2)` for `voters` (N, self included): how many follower acks
 * prove a majority. 1→0, 2→1, 3→1, 4→2, 5→2, 6→3, 7→3.
 * @throws InvalidQuorumError unless voters is an integer >= 1.
 */
export function followerQuorum(voters: number): number {
  if (typeof voters !== "number" || !Number.isInteger(voters) || voters < 1 || voters > I32_MAX) {
    throw new InvalidQuorumError("voters", voters, I32_MAX, 1);
  }
  return Math.floor(voters / 2);
}

/** Per-follower ack instants and the published quorum instant (contract §3). */
export class QuorumAckTracker {
  readonly #core: TrackerOwner;
  readonly #ex: CoreExports;
  readonly #maxPeers: number;
  #t: number;

  /** @internal */
  constructor(core: TrackerOwner, t: number, maxPeers: number) {
    this.#core = core;
    this.#ex = core.exports;
    this.#t = t;
    this.#maxPeers = maxPeers;
  }

  #index(): number {
    if (this.#t < 0) throw new DisposedError("quorum-ack tracker");
    return this.#t;
  }

  /** @internal The tracker's index in the core (DisposedError once disposed). */
  index(): number {
    return this.#index();
  }

  /**
   * Records that `peerId` answered a message the leader sent at `sentAtNs` (the SEND time,
   * echoed back: queueing delay never stretches the lease), and republishes the
   * `followerQuorum`-th newest ack. A zero sample is ignored; a peer's ack never moves back.
   * With `term` (the term the reply carries) the ack is term-checked: unless it is this
   * tracker's term (`setTerm`) it is refused, counted in `refusedAcks()`, and `false` is
   * returned: a reply with a higher term is never an ack (contract §3). An ack sent at or
   * before the core's last clock fault (`core.lastClockFaultNs()`) is refused too: a reply to a
   * message sent before a regression or a suspend never proves a lease after it. With
   * `followerQuorum` 0 (one voter) nothing is recorded; a `followerQuorum` other than the
   * tracker's is a configuration change (see `setQuorum`) and forgets every ack first.
   * @returns false when refused for its term or for a clock fault, true otherwise.
   * @throws TooManyPeersError when a new peer would exceed MAX_PEERS (nothing recorded).
   */
  recordAck(peerId: number, followerQuorum: number, sentAtNs: bigint, term?: bigint): boolean {
    const t = this.#index();
    checkPeerId(peerId);
    checkQuorum(followerQuorum, this.#maxPeers);
    checkInstant(sentAtNs, "sentAtNs");
    const code = term === undefined
      ? this.#ex.trackerRecordAck(t, peerId, followerQuorum, sentAtNs)
      : this.#ex.trackerRecordAckInTerm(t, peerId, followerQuorum, sentAtNs, checkTerm(term, "term"));
    if (code === ACK_TOO_MANY_PEERS) throw new TooManyPeersError(peerId, this.#maxPeers);
    return code === ACK_OK;
  }

  /**
   * The voter set changed: enters follower quorum `followerQuorum` (`followerQuorum(voters)`)
   * and republishes at once. A quorum other than the tracker's forgets every ack, as the joint
   * tracker does on a configuration change: the published instant is 0n until a new quorum of
   * acks arrives (a single voter, q = 0, publishes through `recordSelfAck`). An engine calls it
   * when a configuration change that adds or removes voters is applied, BEFORE the next read
   * (docs/guards.md): otherwise an instant proved by the old, smaller quorum stays published.
   * @returns whether the quorum changed.
   * @throws InvalidQuorumError unless an integer in [0, MAX_PEERS] (nothing changes).
   */
  setQuorum(followerQuorum: number): boolean {
    const t = this.#index();
    checkQuorum(followerQuorum, this.#maxPeers);
    return this.#ex.trackerSetQuorum(t, followerQuorum) !== 0;
  }

  /** The follower quorum the tracker was last given (by setQuorum, recordAck or removePeer); -1 before any. */
  followerQuorum(): number {
    return this.#ex.trackerQuorum(this.#index());
  }

  /**
   * Enters `term` (the leader's current term): a term other than the tracker's forgets every
   * ack, so acks of an earlier leadership never prove this one. Returns whether it changed.
   * A new tracker is in term 0n.
   */
  setTerm(term: bigint): boolean {
    const t = this.#index();
    return this.#ex.trackerSetTerm(t, checkTerm(term, "term")) !== 0;
  }

  /** The tracker's term (0n until `setTerm`). */
  term(): bigint {
    return this.#ex.trackerTerm(this.#index());
  }

  /** How many acks were refused because their term was not the tracker's. */
  refusedAcks(): bigint {
    return this.#ex.trackerRefusedAcks(this.#index());
  }

  /** A single-voter leader is its own quorum: publish a fresh sample each tick (0n clears). */
  recordSelfAck(sampleNs: bigint): void {
    const t = this.#index();
    this.#ex.trackerRecordSelfAck(t, checkInstant(sampleNs, "sampleNs"));
  }

  /** Deletes the peer's ack and recomputes with the new quorum, keeping the other acks: the
   *  removal half of a configuration change (`followerQuorum` 0 keeps the published instant). */
  removePeer(peerId: number, followerQuorum: number): void {
    const t = this.#index();
    checkPeerId(peerId);
    checkQuorum(followerQuorum, this.#maxPeers);
    this.#ex.trackerRemovePeer(t, peerId, followerQuorum);
  }

  /** Forgets every ack (leadership exit, shrink to one voter). */
  reset(): void {
    this.#ex.trackerReset(this.#index());
  }

  /** The published quorum instant; 0n = none. */
  quorumAck(): bigint {
    return this.#ex.trackerQuorumAck(this.#index());
  }

  /** The recorded ack of one peer (0n: none). */
  ackOf(peerId: number): bigint {
    return this.#ex.trackerAckOf(this.#index(), checkPeerId(peerId));
  }

  /** How many peers have a recorded ack. */
  peerCount(): number {
    return this.#ex.trackerPeerCount(this.#index());
  }

  /** Returns the tracker to the core. Idempotent. */
  dispose(): void {
    const t = this.#t;
    if (t < 0) return;
    this.#t = -1;
    this.#core.releaseTracker(this, t);
  }
}

/** The voters of a configuration, seen from the leader `selfId`; `outgoingVoters` while joint. */
export interface VoterConfig {
  /** The leader's own peer id (its own ack is implied, never recorded). */
  selfId: number;
  /** The (incoming) voter set; may or may not contain `selfId`. */
  voters: readonly number[];
  /** The outgoing voter set during a joint configuration (C_old of C_old,new). */
  outgoingVoters?: readonly number[];
}

/**
 * The quorum-ack tracker of a configuration that may be joint. Each voter set has its own
 * tracker; a set that contains the leader needs floor(n/2) follower acks, one that does not
 * (the leader is being removed) needs a majority, floor(n/2) + 1. The published instant is the
 * minimum over the sets that need any follower (0 while either has none); with no such set
 * (one voter: the leader) it is the leader's own sample (`recordSelfAck`). Learners (ids in no
 * set) never count. A configuration change forgets every ack: conservative, and rare.
 */
export class JointQuorumAckTracker {
  readonly #core: TrackerOwner;
  readonly #incoming: QuorumAckTracker;
  readonly #outgoing: QuorumAckTracker;
  readonly #maxPeers: number;
  #self = 0;
  #voters: number[] = [];
  #outgoingVoters: number[] = [];
  #qIn = 0;
  #qOut = 0;

  /** @internal Use `core.createJointQuorumAckTracker(config)`. */
  constructor(core: TrackerOwner, config: VoterConfig) {
    this.#core = core;
    this.#maxPeers = MAX_PEERS;
    this.#incoming = core.createQuorumAckTracker();
    try {
      this.#outgoing = core.createQuorumAckTracker();
    } catch (err) {
      this.#incoming.dispose();
      throw err;
    }
    try {
      this.setConfig(config);
    } catch (err) {
      // A refused configuration leaves the core as it was: both trackers go back at once
      // (not whenever a GC runs the finalizer).
      this.dispose();
      throw err;
    }
  }

  /** Enters a configuration (joint while `outgoingVoters` is given). Forgets every ack and
   *  republishes at once: call it when the configuration change is applied, before the next
   *  read (docs/guards.md). */
  setConfig(config: VoterConfig): void {
    if (typeof config !== "object" || config === null) throw new InvalidOptionError("config", "a VoterConfig", config);
    const self = checkPeerId(config.selfId);
    const voters = checkVoters(config.voters, "voters");
    const outgoing = config.outgoingVoters === undefined ? [] : checkVoters(config.outgoingVoters, "outgoingVoters");
    // The need rule is the core's (assembly/quorum.ts Q7).
    const need = (set: number[]) => this.#core.exports.quorumNeed(set.length, set.includes(self) ? 1 : 0);
    for (const [name, set] of [["voters", voters], ["outgoingVoters", outgoing]] as const) {
      if (need(set) > this.#maxPeers) throw new InvalidVoterConfigError(`${name} needs ${need(set)} follower acks; a tracker holds ${this.#maxPeers} peers`);
    }
    this.#self = self;
    this.#voters = voters;
    this.#outgoingVoters = outgoing;
    this.#qIn = need(voters);
    this.#qOut = need(outgoing);
    // The counterpart of QuorumAckTracker.setQuorum: both sets enter their new quorum and
    // republish at once (an engine calls setConfig when a configuration change is applied).
    this.#incoming.setQuorum(this.#qIn);
    this.#outgoing.setQuorum(this.#qOut);
    this.reset();
  }

  /** Whether the configuration is joint. */
  get joint(): boolean {
    return this.#outgoingVoters.length !== 0;
  }

  /** Enters `term` on both sets (a new term forgets every ack). Returns whether it changed. */
  setTerm(term: bigint): boolean {
    checkTerm(term, "term");
    const changed = this.#incoming.setTerm(term); // a new term forgets the self-ack too
    this.#outgoing.setTerm(term);
    return changed;
  }

  /** The term the acks belong to. */
  term(): bigint {
    return this.#incoming.term();
  }

  /**
   * Records an ack (see QuorumAckTracker.recordAck) in every voter set that holds `peerId`.
   * @returns false when the peer votes in no set (a learner, or unknown) or the term is refused.
   */
  recordAck(peerId: number, sentAtNs: bigint, term?: bigint): boolean {
    checkPeerId(peerId);
    if (peerId === this.#self) return false;
    checkInstant(sentAtNs, "sentAtNs");
    if (term !== undefined) checkTerm(term, "term");
    const inIncoming = this.#voters.includes(peerId);
    const inOutgoing = this.#outgoingVoters.includes(peerId);
    // Both sets are checked for room BEFORE either records (no half-applied change): a set
    // full without this peer would throw after the other set had already moved the joint
    // instant. A peer with an ack (ackOf > 0n) has an entry; a new one needs a free one.
    for (const [holds, tracker] of [[inIncoming, this.#incoming], [inOutgoing, this.#outgoing]] as const) {
      if (holds && tracker.ackOf(peerId) === 0n && tracker.peerCount() >= this.#maxPeers) throw new TooManyPeersError(peerId, this.#maxPeers);
    }
    let counted = false;
    if (inIncoming) counted = this.#incoming.recordAck(peerId, this.#qIn, sentAtNs, term);
    if (inOutgoing) counted = this.#outgoing.recordAck(peerId, this.#qOut, sentAtNs, term) || counted;
    return counted;
  }

  /** A configuration whose only voter is the leader: publish one fresh sample per tick (0n, or
   *  a sample at or before the core's last clock fault, clears). */
  recordSelfAck(sampleNs: bigint): void {
    // Kept by the incoming tracker, which ignores it unless its set needs no follower (the
    // core's recordSelfAck), and forgets it on a clock fault, a new term or a reset.
    this.#incoming.recordSelfAck(sampleNs);
  }

  /** The published instant: the minimum over the voter sets that need follower acks (the
   *  core's trackerJointQuorumAck, assembly/quorum.ts Q7). */
  quorumAck(): bigint {
    return this.#core.exports.trackerJointQuorumAck(this.#incoming.index(), this.#outgoing.index());
  }

  /** Acks refused for their term, over both sets. */
  refusedAcks(): bigint {
    return this.#incoming.refusedAcks() + this.#outgoing.refusedAcks();
  }

  /** Forgets every ack (leadership exit). */
  reset(): void {
    this.#incoming.reset();
    this.#outgoing.reset();
  }

  /** Returns both trackers to the core. Idempotent. */
  dispose(): void {
    this.#incoming.dispose();
    this.#outgoing.dispose();
  }
}
