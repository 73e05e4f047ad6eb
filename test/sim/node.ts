// One simulated server: a minimal Raft (pre-vote, check-quorum with in-lease vote rejection,
// heartbeats, appends, commits, ReadIndex, leadership transfer, joint configuration) over a
// replicated KV, with a lease-core reader wired to it exactly as a real engine would be. A test
// harness, not a product: it exists to drive the real wasm core through faults.
//
// Each guard has a switch (`Guards`) that a negative control turns off. With every switch on
// the node is what docs/guards.md prescribes; the simulator then must find no stale read.
import {
  LeadershipLostError,
  LeadershipTransferInProgressError,
  NotLeaderError,
  type EngineState,
  type JointQuorumAckTracker,
  type LeaseCore,
  type LeaseEngine,
  type LeaseReader,
} from "lease-core";
import type { SimClock } from "./clock.js";
import type { World } from "./world.js";

export const MS = 1_000_000;

/** Protocol timings, in ns of each node's own clock. */
export interface Timing {
  electionTimeoutNs: number;
  tickNs: number;
  heartbeatNs: number;
  safetyMarginNs: number;
  driftPpmMax: number;
}

export const DEFAULT_TIMING: Timing = {
  electionTimeoutNs: 100 * MS,
  tickNs: 5 * MS,
  heartbeatNs: 20 * MS,
  safetyMarginNs: 20 * MS,
  driftPpmMax: 10_000, // 1%: large, so that drift within the bound is exercised hard
};

/** Guard switches. All true: the node as docs/guards.md prescribes. */
export interface Guards {
  /** Acks anchored on the send time of the message answered (false: on processing time). */
  sendTime: boolean;
  /** Acks carry their term; the tracker refuses another term (false: no term, counted anyway). */
  ackTerm: boolean;
  /** The engine reports currentTerm/appliedTerm (own-term guard). */
  ownTerm: boolean;
  /** The engine calls reader.beginTransfer() before TimeoutNow can leave. */
  transfer: boolean;
  /** Marks the transfer suspect only this long after TimeoutNow was sent (TiKV #8034); 0 = at once. */
  transferLateNs: number;
  /** Clients read with leaseReadThen (pause-safe); false: leaseRead, then the read. */
  pauseSafe: boolean;
  /** A restarted node counts as having just heard from a leader (TiKV #15035). */
  restartInLease: boolean;
  /** The lease duration comes from core.leaseDurationFor (false: `leaseOverrideNs`, unvalidated). */
  validatedDuration: boolean;
  leaseOverrideNs: number;
  /** The lease clock reports the sleep offset (suspend-aware). */
  suspendAware: boolean;
  /** Forced (transfer) votes carry the leader's transfer epoch; voters refuse a stale one. */
  transferEpoch: boolean;
  /** Protocol bug for the ack-term control: higher-term replies to heartbeats do not step the leader down. */
  lazyStepDown: boolean;
  /** The engine reports transfers through transferInProgress() (polled) instead of calling beginTransfer/endTransfer. */
  transferPoll: boolean;
  /** Check-quorum as etcd raft: once per election timeout, over the responses since the last check
   *  (a deposed leader may believe it leads for up to two election timeouts: etcd-raft #166). */
  periodicCheckQuorum: boolean;
  /** A replica removed from the configuration deletes its data (TiKV destroys the peer). Off in
   *  the random runs: a removed replica there stays a learner and may be re-added. */
  destroyOnRemoval: boolean;
}

export const ALL_GUARDS: Guards = {
  sendTime: true,
  ackTerm: true,
  ownTerm: true,
  transfer: true,
  transferLateNs: 0,
  pauseSafe: true,
  restartInLease: true,
  validatedDuration: true,
  leaseOverrideNs: 0,
  suspendAware: true,
  transferEpoch: true,
  lazyStepDown: false,
  transferPoll: false,
  periodicCheckQuorum: false,
  destroyOnRemoval: false,
};

export interface Config {
  voters: number[];
  outgoing?: number[];
}

export interface Entry {
  term: number;
  kind: "noop" | "put" | "config";
  key?: string;
  value?: string;
  config?: Config;
}

export type Msg =
  | { t: "prevote"; from: number; to: number; term: number; lastIndex: number; lastTerm: number }
  | { t: "prevoteResp"; from: number; to: number; term: number; granted: boolean }
  | { t: "vote"; from: number; to: number; term: number; lastIndex: number; lastTerm: number; force: boolean; epochTerm: number; epoch: number }
  | { t: "voteResp"; from: number; to: number; term: number; granted: boolean }
  | { t: "append"; from: number; to: number; term: number; prevIndex: number; prevTerm: number; entries: Entry[]; commit: number; sentAt: bigint; epoch: number }
  | { t: "appendResp"; from: number; to: number; term: number; success: boolean; match: number; sentAt: bigint }
  | { t: "hb"; from: number; to: number; term: number; commit: number; sentAt: bigint; epoch: number; ctx: number }
  | { t: "hbResp"; from: number; to: number; term: number; sentAt: bigint; ctx: number }
  | { t: "timeoutNow"; from: number; to: number; term: number; epoch: number };

/** What a node needs from the cluster: the network, and the universe of node ids. */
export interface Net {
  send(m: Msg): void;
  ids: readonly number[];
}

type Role = "follower" | "precandidate" | "candidate" | "leader";

interface PendingRead {
  ctx: number;
  index: number;
  acks: Set<number>;
  resolve: (index: bigint) => void;
  reject: (err: unknown) => void;
}

interface PendingWrite {
  index: number;
  term: number;
  resolve: (r: { commitIndex: bigint }) => void;
  reject: (err: unknown) => void;
}

export class SimNode implements LeaseEngine {
  readonly id: number;
  readonly clock: SimClock;
  readonly core: LeaseCore;
  readonly reader: LeaseReader;
  readonly tracker: JointQuorumAckTracker;
  readonly #world: World;
  readonly #net: Net;
  readonly #timing: Timing;
  readonly guards: Guards;
  readonly #leaseDurationNs: bigint;
  readonly #random: () => number;
  readonly #onApply: ((node: number, index: number, entry: Entry) => void) | undefined;
  readonly #onLeader: ((node: number, term: number) => void) | undefined;

  // Persistent state (survives a restart).
  term = 0;
  votedFor: number | null = null;
  log: Entry[];
  // Volatile.
  role: Role = "follower";
  leaderId: number | null = null; // -2: "as if just heard from one" after a restart
  commit = 0;
  applied = 0;
  kv = new Map<string, string>();
  config: Config;
  #lastHeardLeaderLocal = -Infinity;
  #electionDeadlineLocal = 0;
  #votes = new Set<number>();
  // Leader state.
  #next = new Map<number, number>();
  #match = new Map<number, number>();
  #lastRespLocal = new Map<number, number>();
  #leaderSinceLocal = 0;
  #checkedLocal = 0;
  #hbDueLocal = 0;
  #epoch = 0;
  #epochSeen = 0;
  #transfer: { target: number; deadlineLocal: number; sent: boolean } | undefined;
  #ctxSeq = 0;
  #reads: PendingRead[] = [];
  #writes: PendingWrite[] = [];
  #listeners = new Set<() => void>();
  /** Frozen (paused or suspended) until this true time. */
  frozenUntil = 0;
  down = false;
  /** Counts crashes. A crash kills the process and every request in it: work begun in an
   *  earlier incarnation never runs on (or answers from) the restarted node's state. */
  incarnation = 0;
  #incarnationEnd = deferred();
  /** Refused acks (summed over leaderships); reads that reached this node's reader; its decisions. */
  stats = { ticks: 0, elections: 0, refusedAcks: 0, destroyed: 0, localReads: 0, readsReached: 0, misses: {} as Record<string, number> };

  constructor(args: { id: number; world: World; net: Net; clock: SimClock; core: LeaseCore; timing: Timing; guards: Guards; config: Config; random: () => number; onApply?: (node: number, index: number, entry: Entry) => void; onLeader?: (node: number, term: number) => void }) {
    this.#onApply = args.onApply;
    this.#onLeader = args.onLeader;
    this.id = args.id;
    this.#world = args.world;
    this.#net = args.net;
    this.clock = args.clock;
    this.core = args.core;
    this.#timing = args.timing;
    this.guards = args.guards;
    this.#random = args.random;
    this.config = args.config;
    this.log = [{ term: 0, kind: "config", config: args.config }];
    const t = args.timing;
    this.#leaseDurationNs = args.guards.validatedDuration
      ? args.core.leaseDurationFor({
          electionTimeoutNs: BigInt(t.electionTimeoutNs),
          tickNs: BigInt(t.tickNs),
          safetyMarginNs: BigInt(t.safetyMarginNs),
          driftPpmMax: BigInt(t.driftPpmMax),
          checkQuorum: true,
        })
      : BigInt(args.guards.leaseOverrideNs);
    this.tracker = args.core.createJointQuorumAckTracker({ selfId: this.id, voters: args.config.voters });
    this.reader = args.core.createLeaseReader(this.#engine(), {
      onWarning: () => {},
      observer: { onHit: () => this.stats.localReads++, onMiss: (reason) => { this.stats.misses[reason] = (this.stats.misses[reason] ?? 0) + 1; } },
    });
    this.#resetElectionTimer();
  }

  /** The engine lease-core sees: the optional guard methods only where the guard is on. */
  #engine(): LeaseEngine {
    const engine: LeaseEngine = {
      state: () => this.state(),
      appliedIndex: () => BigInt(this.applied),
      linearizableRead: () => this.linearizableRead(),
      leaseDurationNs: () => this.#leaseDurationNs,
      lastQuorumAck: () => (this.role === "leader" ? this.tracker.quorumAck() : 0n),
      onLeaderLoss: (cb) => {
        this.#listeners.add(cb);
        return () => this.#listeners.delete(cb);
      },
    };
    if (this.guards.ownTerm || this.guards.ackTerm) engine.currentTerm = () => BigInt(this.term);
    if (this.guards.ownTerm) engine.appliedTerm = () => BigInt(this.log[this.applied]!.term);
    if (this.guards.ackTerm) engine.quorumAckTerm = () => this.tracker.term();
    if (this.guards.transfer && this.guards.transferPoll) engine.transferInProgress = () => this.#transfer !== undefined && this.role === "leader";
    return engine;
  }

  state(): EngineState {
    return this.down ? "shutdown" : this.role === "leader" ? "leader" : this.role === "follower" ? "follower" : "candidate";
  }
  appliedIndex(): bigint {
    return BigInt(this.applied);
  }

  get lastIndex(): number {
    return this.log.length - 1;
  }
  #local(): number {
    return this.clock.reading();
  }
  get running(): boolean {
    return !this.down && this.#world.now >= this.frozenUntil;
  }

  // ---- quorum arithmetic (joint: a majority of each set) ----
  #quorum(ids: Set<number>): boolean {
    const maj = (set: number[]) => set.filter((v) => ids.has(v)).length * 2 > set.length;
    return maj(this.config.voters) && (this.config.outgoing === undefined || maj(this.config.outgoing));
  }
  #peers(): number[] {
    return this.#net.ids.filter((i) => i !== this.id);
  }
  #isVoter(id: number): boolean {
    return this.config.voters.includes(id) || (this.config.outgoing?.includes(id) ?? false);
  }

  #recomputeConfig(): void {
    for (let i = this.log.length - 1; i >= 0; i--) {
      const c = this.log[i]!.config;
      if (c) {
        if (c !== this.config) {
          const before = this.config;
          this.config = c;
          if (this.role === "leader") {
            this.tracker.setConfig({ selfId: this.id, voters: c.voters, outgoingVoters: c.outgoing });
            // A voter (re-)added may be a destroyed replica: what we knew of its log is void.
            for (const p of [...c.voters, ...(c.outgoing ?? [])]) {
              const was = before.voters.includes(p) || (before.outgoing?.includes(p) ?? false);
              if (!was && p !== this.id) {
                this.#match.set(p, 0);
                this.#next.set(p, this.lastIndex + 1);
              }
            }
          }
        }
        return;
      }
    }
  }

  #resetElectionTimer(): void {
    const et = this.#timing.electionTimeoutNs;
    this.#electionDeadlineLocal = this.#local() + et + Math.floor(this.#random() * et);
  }

  #inLease(): boolean {
    return this.leaderId !== null && this.#local() - this.#lastHeardLeaderLocal < this.#timing.electionTimeoutNs;
  }

  #send(m: Msg): void {
    this.#net.send(m);
  }

  // ---- lifecycle ----
  tick(): void {
    if (!this.running) return;
    this.stats.ticks++;
    const now = this.#local();
    if (this.role === "leader") {
      this.#lastHeardLeaderLocal = now;
      // Check-quorum: step down when a quorum has not answered within an election timeout.
      const et = this.#timing.electionTimeoutNs;
      if (this.guards.periodicCheckQuorum) {
        if (now - this.#checkedLocal >= et) {
          this.#checkedLocal = now;
          const active = new Set([this.id]);
          for (const [p, at] of this.#lastRespLocal) if (at >= now - et) active.add(p);
          if (!this.#quorum(active)) {
            this.#stepDown(this.term, null);
            return;
          }
        }
      } else if (now - this.#leaderSinceLocal >= et) {
        const active = new Set([this.id]);
        for (const [p, at] of this.#lastRespLocal) if (now - at < et) active.add(p);
        if (!this.#quorum(active)) {
          this.#stepDown(this.term, null);
          return;
        }
      }
      if (this.#transfer && now >= this.#transfer.deadlineLocal) this.#abortTransfer();
      if (now >= this.#hbDueLocal) this.#broadcastHeartbeat(0);
    } else if (now >= this.#electionDeadlineLocal && this.#isVoter(this.id)) {
      this.#preCampaign();
    }
  }

  /** Settles when the current incarnation ends (the process crashed). */
  get incarnationEnd(): Promise<void> {
    return this.#incarnationEnd.promise;
  }

  /** The process dies: every request of this incarnation ends with it (the caller resets). */
  endIncarnation(): void {
    this.incarnation++;
    const ended = this.#incarnationEnd;
    this.#incarnationEnd = deferred();
    ended.resolve();
  }

  restart(): void {
    // Volatile state is lost; term, vote and log survive (Raft §5).
    this.#stepDown(this.term, null);
    this.commit = 0;
    this.applied = 0;
    this.kv = new Map();
    this.role = "follower";
    this.#votes.clear();
    if (this.guards.restartInLease) {
      // TiKV #15035: a restarted node must not vote at once, as if it had never heard of a
      // leader: the old leader's lease may still stand. Count the restart as a heartbeat.
      this.leaderId = -2;
      this.#lastHeardLeaderLocal = this.#local();
    } else {
      this.leaderId = null;
      this.#lastHeardLeaderLocal = -Infinity;
    }
    this.#resetElectionTimer();
  }

  // ---- elections ----
  #lastTerm(): number {
    return this.log[this.lastIndex]!.term;
  }
  #upToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.#lastTerm() || (lastTerm === this.#lastTerm() && lastIndex >= this.lastIndex);
  }

  #preCampaign(): void {
    this.role = "precandidate";
    this.leaderId = null;
    this.#votes = new Set([this.id]);
    this.#resetElectionTimer();
    for (const p of this.#peers()) {
      this.#send({ t: "prevote", from: this.id, to: p, term: this.term + 1, lastIndex: this.lastIndex, lastTerm: this.#lastTerm() });
    }
    if (this.#quorum(this.#votes)) this.#campaign(false, 0, 0);
  }

  #campaign(force: boolean, epochTerm: number, epoch: number): void {
    this.stats.elections++;
    this.term++;
    this.role = "candidate";
    this.votedFor = this.id;
    this.leaderId = null;
    this.#votes = new Set([this.id]);
    this.#resetElectionTimer();
    for (const p of this.#peers()) {
      this.#send({ t: "vote", from: this.id, to: p, term: this.term, lastIndex: this.lastIndex, lastTerm: this.#lastTerm(), force, epochTerm, epoch });
    }
    if (this.#quorum(this.#votes)) this.#becomeLeader();
  }

  #becomeLeader(): void {
    this.#onLeader?.(this.id, this.term);
    this.role = "leader";
    this.leaderId = this.id;
    const now = this.#local();
    this.#leaderSinceLocal = now;
    this.#checkedLocal = now;
    this.#lastRespLocal.clear();
    this.#epoch = 0;
    this.#transfer = undefined;
    this.tracker.setConfig({ selfId: this.id, voters: this.config.voters, outgoingVoters: this.config.outgoing });
    if (this.guards.ackTerm) this.tracker.setTerm(BigInt(this.term));
    for (const p of this.#peers()) {
      this.#next.set(p, this.lastIndex + 1);
      this.#match.set(p, 0);
    }
    this.log.push({ term: this.term, kind: "noop" });
    this.#broadcastAppend();
    this.#hbDueLocal = now + this.#timing.heartbeatNs;
  }

  #stepDown(term: number, leaderId: number | null): void {
    const wasLeader = this.role === "leader";
    if (term > this.term) {
      this.term = term;
      this.votedFor = null;
      this.#epochSeen = 0;
    }
    this.role = "follower";
    this.leaderId = leaderId;
    if (wasLeader) {
      this.stats.refusedAcks += Number(this.tracker.refusedAcks());
      this.tracker.reset();
      this.#transfer = undefined;
      for (const cb of [...this.#listeners]) cb();
      const lost = new LeadershipLostError();
      for (const r of this.#reads.splice(0)) r.reject(lost);
      for (const w of this.#writes.splice(0)) w.reject(lost);
      this.#world.kick();
      this.#resetElectionTimer();
    }
  }

  // ---- replication ----
  #sentAt(): bigint {
    return this.core.now(); // the lease clock, through the core's clock rules
  }

  #sendAppend(p: number): void {
    const next = this.#next.get(p) ?? this.lastIndex + 1;
    const prevIndex = next - 1;
    this.#send({
      t: "append", from: this.id, to: p, term: this.term, prevIndex, prevTerm: this.log[prevIndex]!.term,
      entries: this.log.slice(next, next + 64), commit: this.commit, sentAt: this.#sentAt(), epoch: this.#epoch,
    });
  }

  #broadcastAppend(): void {
    for (const p of this.#peers()) this.#sendAppend(p);
  }

  #broadcastHeartbeat(ctx: number): void {
    this.#hbDueLocal = this.#local() + this.#timing.heartbeatNs;
    const sentAt = this.#sentAt();
    for (const p of this.#peers()) {
      const commit = Math.min(this.commit, this.#match.get(p) ?? 0);
      this.#send({ t: "hb", from: this.id, to: p, term: this.term, commit, sentAt, epoch: this.#epoch, ctx });
    }
  }

  #advanceCommit(to: number): void {
    if (to <= this.commit) return;
    this.commit = Math.min(to, this.lastIndex);
    while (this.applied < this.commit) {
      this.applied++;
      const e = this.log[this.applied]!;
      this.#onApply?.(this.id, this.applied, e);
      if (e.kind === "put") this.kv.set(e.key!, e.value!);
      // Destroyed only if no later entry (already in its log) re-adds it: a replica that acked
      // entries as a voter of a later configuration must keep them.
      if (this.guards.destroyOnRemoval && this.role !== "leader" && e.config && e.config.outgoing === undefined && !e.config.voters.includes(this.id) && !this.#isVoter(this.id) && this.#wasVoterBefore(this.applied)) {
        this.#destroy();
        return;
      }
    }
    if (this.role === "leader") {
      const done = this.#writes.filter((w) => w.index <= this.applied);
      if (done.length) {
        this.#writes = this.#writes.filter((w) => w.index > this.applied);
        for (const w of done) {
          if (this.log[w.index]!.term === w.term) w.resolve({ commitIndex: BigInt(w.index) });
          else w.reject(new LeadershipLostError("entry overwritten"));
        }
        this.#world.kick();
      }
      this.#maybeFinishConfig();
    }
  }

  #leaderMaybeCommit(): void {
    for (let n = this.lastIndex; n > this.commit; n--) {
      if (this.log[n]!.term !== this.term) break;
      const ids = new Set([this.id]);
      for (const [p, m] of this.#match) if (m >= n) ids.add(p);
      if (this.#quorum(ids)) {
        this.#advanceCommit(n);
        break;
      }
    }
  }

  #onAck(from: number, sentAt: bigint, term: number): void {
    this.#lastRespLocal.set(from, this.#local());
    const at = this.guards.sendTime ? sentAt : this.core.now(); // the control stamps processing time
    if (this.guards.ackTerm) this.tracker.recordAck(from, at, BigInt(term));
    else this.tracker.recordAck(from, at);
  }

  // ---- messages ----
  receive(m: Msg): void {
    if (this.down) return;
    const local = this.#local();
    // Responses carrying a higher term: a correct leader steps down at once. The lazy engine
    // of the ack-term control keeps leading and counts the heartbeat reply as an ack.
    if (m.t === "hbResp" && m.term > this.term && this.role === "leader" && this.guards.lazyStepDown) {
      this.#onAck(m.from, m.sentAt, m.term);
      return;
    }
    if (m.t === "prevote") return this.#onPreVote(m);
    if (m.t === "vote" && m.term > this.term) {
      const bypass = m.force && (!this.guards.transferEpoch || (m.epochTerm === this.term && m.epoch >= this.#epochSeen));
      if (this.#inLease() && !bypass) return; // check-quorum's in-lease rejection (etcd raft)
    }
    if (m.term > this.term && m.t !== "prevoteResp") {
      const leader = m.t === "append" || m.t === "hb" || m.t === "timeoutNow" ? m.from : null;
      this.#stepDown(m.term, leader);
    }
    switch (m.t) {
      case "prevoteResp":
        if (this.role === "precandidate" && m.granted && m.term === this.term + 1) {
          this.#votes.add(m.from);
          if (this.#quorum(this.#votes)) this.#campaign(false, 0, 0);
        }
        return;
      case "vote": {
        const grant = m.term === this.term && (this.votedFor === null || this.votedFor === m.from) && this.#upToDate(m.lastIndex, m.lastTerm);
        if (grant) {
          this.votedFor = m.from;
          this.#resetElectionTimer();
        }
        this.#send({ t: "voteResp", from: this.id, to: m.from, term: this.term, granted: grant });
        return;
      }
      case "voteResp":
        if (this.role === "candidate" && m.term === this.term && m.granted) {
          this.#votes.add(m.from);
          if (this.#quorum(this.#votes)) this.#becomeLeader();
        }
        return;
      case "append":
      case "hb": {
        if (m.term < this.term) {
          if (m.t === "hb") this.#send({ t: "hbResp", from: this.id, to: m.from, term: this.term, sentAt: m.sentAt, ctx: m.ctx });
          else this.#send({ t: "appendResp", from: this.id, to: m.from, term: this.term, success: false, match: 0, sentAt: m.sentAt });
          return;
        }
        this.role = "follower";
        this.leaderId = m.from;
        this.#lastHeardLeaderLocal = local;
        if (m.epoch > this.#epochSeen) this.#epochSeen = m.epoch;
        this.#resetElectionTimer();
        if (m.t === "hb") {
          this.#advanceCommit(Math.min(m.commit, this.lastIndex));
          this.#send({ t: "hbResp", from: this.id, to: m.from, term: this.term, sentAt: m.sentAt, ctx: m.ctx });
          return;
        }
        if (m.prevIndex > this.lastIndex || this.log[m.prevIndex]!.term !== m.prevTerm) {
          this.#send({ t: "appendResp", from: this.id, to: m.from, term: this.term, success: false, match: Math.min(this.lastIndex, m.prevIndex - 1), sentAt: m.sentAt });
          return;
        }
        let i = m.prevIndex + 1;
        let changedConfig = false;
        for (const e of m.entries) {
          if (i <= this.lastIndex && this.log[i]!.term !== e.term) {
            this.log.length = i; // truncate the conflict (never below commit: Raft's log matching)
            changedConfig = true;
          }
          if (i > this.lastIndex) {
            this.log.push(e);
            if (e.config) changedConfig = true;
          }
          i++;
        }
        if (changedConfig) this.#recomputeConfig();
        const match = m.prevIndex + m.entries.length;
        this.#advanceCommit(Math.min(m.commit, match));
        this.#send({ t: "appendResp", from: this.id, to: m.from, term: this.term, success: true, match, sentAt: m.sentAt });
        return;
      }
      case "appendResp":
        if (this.role !== "leader" || m.term !== this.term) return;
        this.#onAck(m.from, m.sentAt, m.term);
        if (m.success) {
          if (m.match > (this.#match.get(m.from) ?? 0)) this.#match.set(m.from, m.match);
          this.#next.set(m.from, Math.max(this.#next.get(m.from) ?? 1, m.match + 1));
          this.#leaderMaybeCommit();
          if (this.role !== "leader") return;
          if ((this.#match.get(m.from) ?? 0) < this.lastIndex) this.#sendAppend(m.from);
          this.#maybeSendTimeoutNow();
        } else {
          this.#next.set(m.from, Math.max(1, Math.min((this.#next.get(m.from) ?? 1) - 1, m.match + 1)));
          this.#sendAppend(m.from);
        }
        return;
      case "hbResp": {
        if (this.role !== "leader" || m.term !== this.term) return;
        this.#onAck(m.from, m.sentAt, m.term);
        if (m.ctx !== 0) {
          for (const r of this.#reads) if (r.ctx === m.ctx && this.#isVoter(m.from)) r.acks.add(m.from);
          const done = this.#reads.filter((r) => this.#quorum(r.acks));
          if (done.length) {
            this.#reads = this.#reads.filter((r) => !done.includes(r));
            for (const r of done) r.resolve(BigInt(r.index));
            this.#world.kick();
          }
        }
        if ((this.#match.get(m.from) ?? 0) < this.lastIndex) this.#sendAppend(m.from);
        return;
      }
      case "timeoutNow":
        if (m.term === this.term && this.role === "follower" && this.#isVoter(this.id)) this.#campaign(true, m.term, m.epoch);
        return;
    }
  }

  #onPreVote(m: Extract<Msg, { t: "prevote" }>): void {
    const grant = m.term > this.term && !this.#inLease() && this.#upToDate(m.lastIndex, m.lastTerm);
    this.#send({ t: "prevoteResp", from: this.id, to: m.from, term: m.term, granted: grant });
  }

  // ---- the engine's operations ----
  linearizableRead(): Promise<bigint> {
    if (this.down || this.role !== "leader") return Promise.reject(new NotLeaderError());
    if (this.#transfer) return Promise.reject(new LeadershipTransferInProgressError());
    // ReadIndex needs an entry of this term committed (Raft §6.4): until then the commit
    // index may lag what earlier leaders committed.
    if (this.log[this.commit]!.term !== this.term) return Promise.reject(new Error("read index: no entry of this term committed yet"));
    return new Promise((resolve, reject) => {
      const ctx = ++this.#ctxSeq;
      this.#reads.push({ ctx, index: this.commit, acks: new Set([this.id]), resolve, reject });
      this.#broadcastHeartbeat(ctx);
    });
  }

  /** Appends a put; `onAppended` runs once it is in the log (its outcome is unknown from then on). */
  propose(key: string, value: string, onAppended?: () => void): Promise<{ commitIndex: bigint }> {
    if (this.down || this.role !== "leader") return Promise.reject(new NotLeaderError());
    if (this.#transfer) return Promise.reject(new LeadershipTransferInProgressError());
    this.log.push({ term: this.term, kind: "put", key, value });
    onAppended?.();
    const index = this.lastIndex;
    const p = new Promise<{ commitIndex: bigint }>((resolve, reject) => this.#writes.push({ index, term: this.term, resolve, reject }));
    this.#broadcastAppend();
    return p;
  }

  /** Starts a joint configuration change to `voters` (Raft §6); the leader finishes it. */
  changeConfig(voters: number[]): boolean {
    if (this.role !== "leader" || this.config.outgoing !== undefined || this.#transfer) return false;
    if (this.log.slice(this.commit + 1).some((e) => e.config)) return false;
    this.log.push({ term: this.term, kind: "config", config: { voters, outgoing: this.config.voters } });
    this.#recomputeConfig();
    this.#broadcastAppend();
    return true;
  }

  /** Removed from the configuration: the replica is destroyed, its data deleted (as TiKV
   *  destroys a removed peer). Re-added later, it starts over from an empty log. */
  #destroy(): void {
    // No configuration until the leader's log says otherwise: a destroyed replica votes in nothing.
    this.log = [{ term: 0, kind: "config", config: { voters: [] } }];
    this.commit = 0;
    this.applied = 0;
    this.kv = new Map();
    this.#recomputeConfig();
    this.stats.destroyed++;
  }

  #wasVoterBefore(index: number): boolean {
    for (let i = index - 1; i >= 0; i--) {
      const c = this.log[i]!.config;
      if (c) return c.voters.includes(this.id) || (c.outgoing?.includes(this.id) ?? false);
    }
    return false;
  }

  #lastConfigIndex(): number {
    for (let i = this.log.length - 1; i >= 0; i--) if (this.log[i]!.config) return i;
    return 0;
  }

  #maybeFinishConfig(): void {
    const c = this.config;
    const index = this.#lastConfigIndex();
    if (index > this.commit) return;
    if (c.outgoing !== undefined) {
      // The joint entry committed: leave it for the new set alone (Raft §6).
      this.log.push({ term: this.term, kind: "config", config: { voters: c.voters } });
      this.#recomputeConfig();
      this.#broadcastAppend();
    } else if (!c.voters.includes(this.id)) {
      this.#stepDown(this.term, null); // removed from the configuration: stop leading
      if (this.guards.destroyOnRemoval) this.#destroy();
    }
  }

  // ---- leadership transfer ----
  transferTo(target: number): boolean {
    if (this.role !== "leader" || this.#transfer || target === this.id || !this.config.voters.includes(target)) return false;
    if (this.#pushTransfer && this.guards.transferLateNs === 0) this.reader.beginTransfer(); // before TimeoutNow can leave
    this.#epoch++;
    this.#transfer = { target, deadlineLocal: this.#local() + this.#timing.electionTimeoutNs, sent: false };
    this.#maybeSendTimeoutNow();
    if (!this.#transfer.sent) this.#sendAppend(target);
    return true;
  }

  #maybeSendTimeoutNow(): void {
    const tr = this.#transfer;
    if (!tr || tr.sent || (this.#match.get(tr.target) ?? 0) < this.lastIndex) return;
    tr.sent = true;
    this.#send({ t: "timeoutNow", from: this.id, to: tr.target, term: this.term, epoch: this.#epoch });
    if (this.#pushTransfer && this.guards.transferLateNs > 0) {
      const term = this.term;
      this.#world.after(this.guards.transferLateNs, () => {
        if (this.role === "leader" && this.term === term && this.#transfer === tr) this.reader.beginTransfer();
      });
    }
  }

  #abortTransfer(): void {
    this.#transfer = undefined;
    this.#epoch++; // voters that see the new epoch refuse the stale TimeoutNow's forced vote
    if (this.#pushTransfer) this.reader.endTransfer();
    this.#broadcastHeartbeat(0);
  }

  get #pushTransfer(): boolean {
    return this.guards.transfer && !this.guards.transferPoll;
  }

  /** Test hook: this node's election timer fires at its next tick. */
  expireElectionTimer(): void {
    this.#electionDeadlineLocal = this.#local();
  }

  get transferring(): boolean {
    return this.#transfer !== undefined;
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
