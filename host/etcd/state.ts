/**
 * The state one etcd lease node shares between the engine's files (`lease-core/etcd`,
 * docs/etcd.md): the etcd client, the keys, the checked options, the lease (§2, §3), the
 * leadership (§1), the local copy (§4), the keepalive stream (§6) and the takeover hold (§5),
 * plus the few steps every concern takes on it (invalidate, step down, notice a clock fault,
 * report an event). Internal: index.ts holds one per node and never exports it; each concern
 * file is a set of functions over it.
 *
 * Invariants, kept by the functions that write these fields:
 * - every invalidation (a lost leadership, a term mismatch, a clock fault, close) clears `ackNs`
 *   and `ackTerm` and bumps `generation`, so a keepalive sampled before it proves nothing (§2, §3);
 * - a waiter waits for a revision above `applied`, and is removed once `applied` reaches it or
 *   the node closes (§4).
 * @module
 */
import { Etcd3, KVClient, LeaseClient, WatchClient, type IKeyValue, type IOptions } from "etcd3";
import type { LeaseCore } from "../core/core.js";
import { NotLeaderError } from "../core/errors.js";
import type { EngineState, LeaseReader } from "../core/reader.js";
import { EtcdNodeError } from "./errors.js";
import { MS } from "./margin.js";
import type { CheckedOptions, EtcdUnsafeSwitches } from "./options.js";
import type { EtcdEventReason, EtcdNodeEvent, RevokeGuard } from "./types.js";
import { NOOP_POLICY, type Duplex } from "./util.js";

/** A wait until the local state reaches `revision` (replica.ts). */
export interface Waiter {
  revision: bigint;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A keepalive's answer (keepalive.ts). */
export interface KeepAliveAnswer {
  ttlS: bigint;
  term: bigint;
  receivedAtNs: bigint;
}

export class NodeState {
  // ---- fixed at creation ---------------------------------------------------------------------
  readonly id: string;
  readonly core: LeaseCore;
  readonly client: Etcd3;
  readonly kv: KVClient;
  readonly leases: LeaseClient;
  readonly watches: WatchClient;
  readonly leaderKey: Buffer;
  readonly dataPrefix: Buffer;
  /** What the data watch follows: the data prefix (the single-leader node), or the whole
   *  service prefix (the group node, which also keeps its membership and group keys). */
  watchPrefix: Buffer;
  /** Told every watched key outside the data prefix (the group node's n/, g/, r/ keys), before
   *  the applied revision moves past it. */
  otherKey: ((kv: IKeyValue, type: string) => void) | undefined;
  readonly metaKey: Buffer;
  readonly resignedKey: Buffer;
  readonly endpoints: string[];
  /** The options of an etcd client to `hosts` with this node's TLS and credentials (the node's
   *  own client, and the one-member clients that read each member's version). */
  readonly clientOptions: (hosts: string | string[]) => IOptions;
  readonly takeoverHold: "auto" | "always" | "never";
  readonly ttlAskedS: number;
  readonly electionTimeoutNs: bigint;
  readonly driftPpmMax: bigint;
  readonly renewIntervalMs: number | undefined;
  readonly timeoutMs: number;
  readonly unsafe: EtcdUnsafeSwitches;
  readonly onEvent: ((event: EtcdNodeEvent) => void) | undefined;
  readonly stop = new AbortController();
  readonly listeners = new Set<() => void>();
  /** Event counts by reason, for the dashboard and tests (the node's public `counters`). */
  readonly counters: Record<string, number> = {
    renewals: 0,
    confirmed: 0,
    termMismatch: 0,
    keepaliveFailures: 0,
    stepDowns: 0,
    localReads: 0,
    etcdReads: 0,
    postCheckMisses: 0,
    writes: 0,
    clockFaults: 0,
    takeovers: 0,
    holds: 0,
    watchReloads: 0,
    /** LeaseTimeToLive calls of takeovers without a marker (election.ts liveHolderHoldNs). */
    liveHolderLookups: 0,
  };

  // ---- leadership (§1) and lifecycle ---------------------------------------------------------
  state: EngineState = "candidate";
  leaderId: string | null = null;
  leaseId: string | null = null;
  createRevision = 0n; // of our leader key while we lead; 0n otherwise
  stepDown: (() => void) | undefined;
  reader: LeaseReader | undefined;
  lastReason = "";
  started = false;
  closed = false;
  closing: Promise<void> | undefined;
  /** Every stream open (keepalive, watches): close() ends them all. */
  streams = new Set<Duplex>();

  // ---- the lease (§2, §3) --------------------------------------------------------------------
  ttlNs = 0n;
  marginNs = 0n;
  durationNs = 0n;
  ackNs = 0n; // the confirmed anchor; 0n = none
  ackTerm = 0n; // the leadership (leader key create revision) the anchor was confirmed in
  generation = 0n; // bumped by every invalidation; captured before each keepalive is sent
  lastTerm = 0n;
  /** Clock faults (regressions + suspends) the core had counted when last looked at. */
  faultsSeen = 0;

  // ---- the keepalive stream (§6) -------------------------------------------------------------
  ka: Duplex | undefined;
  /** The keepalive waiting for its answer: only an answer on the same stream, for the same
   *  lease, settles it (a late answer on a dropped stream is never taken for a newer request). */
  kaPending: { stream: Duplex; leaseId: string; settle: (answer: KeepAliveAnswer | Error) => void } | undefined;
  kaChain: Promise<unknown> = Promise.resolve();
  readonly kaHandlers = new Map<Duplex, () => void>();

  // ---- the local copy (§4) -------------------------------------------------------------------
  readonly data = new Map<string, string>();
  readonly waiters: Waiter[] = [];
  applied = 0n;
  /** The watched keys outside the data prefix the local copy holds (hex of the key → the key),
   *  kept only when `otherKey` is set: a reload tells `otherKey` which of them vanished. */
  readonly otherKeys = new Map<string, Buffer>();
  /** The highest revision this node's own write committed at while its local state had not
   *  applied it (the catch-up timed out): no local read until `applied` reaches it (docs/etcd.md
   *  §4), or a read after "read before retrying" would miss the write etcd already holds. */
  ownWriteFloor = 0n;
  /** A write of ours whose txn failed with no answer (it may have committed, at a revision we do
   *  not know): no local read until a linearizable read begun after it has caught up
   *  (`ownWriteUnknownSeq` tells which reads began after). */
  ownWriteUnknown = false;
  ownWriteUnknownSeq = 0;

  // ---- the takeover hold (§5) ----------------------------------------------------------------
  revokeGuard: RevokeGuard = "pending";
  etcdVersions: Record<string, string> = {};
  /** The takeover hold: the leader key it is for, when it started (0n: at the next clock
   *  reading), how long; the clock-fault count at its start. */
  holdFor = 0n;
  holdStartNs = 0n;
  holdLengthNs = 0n;
  holdProtected = false;
  holdFaults = 0;
  /** The leader key this node last served under (caught up, hold done): a resign of it may tell
   *  the next leader that no hold is needed. */
  servedCreateRevision = 0n;
  /** The create revision of the last other holder's key this node saw (0n: none). */
  lastHolderCreateRevision = 0n;
  /** The etcd lease id (decimal) that key was bound to (undefined: none seen), for the
   *  live-holder check of a takeover without a marker (election.ts liveHolderHoldNs). */
  lastHolderLease: string | undefined = undefined;
  /** The live-holder lookup of the current takeover (`holdFor`), awaited before its hold on
   *  every path, a retake included (election.ts campaignLoop). Never rejects. */
  holdLookup: Promise<void> | undefined = undefined;
  /** The longest TTL etcd granted another holder's lease that this node saw (0n: none seen). */
  holderTtlNs = 0n;
  readonly holdersNoted = new Set<string>();

  constructor(options: CheckedOptions) {
    const { core, endpoints, prefix, id, credentials, auth } = options;
    this.id = id;
    this.core = core;
    this.ttlAskedS = options.ttlS;
    this.electionTimeoutNs = BigInt(options.etcdElectionTimeoutMs) * MS;
    this.driftPpmMax = BigInt(options.driftPpmMax);
    this.renewIntervalMs = options.renewIntervalMs;
    this.timeoutMs = options.requestTimeoutMs;
    this.endpoints = endpoints;
    this.unsafe = options.unsafe;
    this.takeoverHold = options.takeoverHold;
    this.onEvent = options.onEvent;
    this.leaderKey = Buffer.from(`${prefix}/leader`);
    this.metaKey = Buffer.from(`${prefix}/d/`);
    this.resignedKey = Buffer.from(`${prefix}/resigned`);
    this.dataPrefix = this.metaKey;
    this.watchPrefix = this.dataPrefix;
    this.clientOptions = (hosts) => ({
      hosts,
      ...(credentials === undefined ? {} : { credentials }),
      ...(auth === undefined ? {} : { auth: { username: auth.username, password: auth.password, callOptions: () => this.callOptions() } }),
      faultHandling: { host: () => NOOP_POLICY as never, global: NOOP_POLICY as never },
    });
    this.client = new Etcd3(this.clientOptions(endpoints));
    const pool = (this.client as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
    this.kv = new KVClient(pool);
    this.leases = new LeaseClient(pool);
    this.watches = new WatchClient(pool);
  }

  callOptions(): { deadline: Date } {
    // gRPC deadlines are wall-clock Dates; they bound waiting only, never a lease.
    return { deadline: new Date(Date.now() + this.timeoutMs) };
  }

  /** A follower's or candidate's refusal, naming the leader, or saying how to wait for one. */
  notLeader(): NotLeaderError {
    return new NotLeaderError(
      this.leaderId === null
        ? `not the leader (no leader yet: start() does not wait for the election; await node.waitForLeader() first)`
        : `not the leader (leader: ${this.leaderId})`,
    );
  }

  /** Clears the engine-side lease, bumps the generation, and tells every reader. */
  invalidate(reason: EtcdEventReason, detail?: string): void {
    this.ackNs = 0n;
    this.ackTerm = 0n;
    this.generation++;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch {
        // a listener's failure must not stop the others from invalidating
      }
    }
    this.event(reason, detail);
  }

  loseLeadership(reason: EtcdEventReason, detail?: string): void {
    if (this.state === "leader") this.counters.stepDowns!++;
    if (this.state !== "shutdown") this.state = "follower";
    this.createRevision = 0n;
    this.invalidate(reason, detail);
    const stepDown = this.stepDown;
    this.stepDown = undefined;
    stepDown?.();
  }

  /** Clock regressions + suspends the core has counted (each invalidated every core lease). */
  clockFaults(): number {
    const exported = (this.core as unknown as { exports?: { clockFaults?: () => number } }).exports?.clockFaults;
    if (typeof exported === "function") return exported();
    const events = this.core.clockEvents();
    return Number(events.regressions + events.suspends);
  }

  /**
   * No ack sampled before a clock fault may prove a lease after it (docs/etcd.md §3): once the
   * core has counted a regression or a suspend (on a reading just taken), the anchor is dropped
   * and the generation bumped, so a keepalive in flight, sampled before the fault, sets none.
   * The core has already invalidated its own leases (the reader's among them).
   */
  checkClockFaults(): void {
    const faults = this.clockFaults();
    if (faults === this.faultsSeen) return;
    this.faultsSeen = faults;
    if (__UNSAFE_ACKS_SURVIVE_CLOCK_FAULT__) return;
    this.counters.clockFaults!++;
    this.ackNs = 0n;
    this.ackTerm = 0n;
    this.generation++;
    this.event("clock-fault", `clock faults counted: ${faults}`);
  }

  checkOpen(): void {
    if (this.closed) throw new EtcdNodeError("the etcd lease node is closed", "ERR_LEASE_ETCD_CLOSED");
  }

  event(reason: EtcdEventReason, detail?: string): void {
    if (this.onEvent === undefined) return;
    try {
      this.onEvent({ reason, atNs: this.core.now(), ...(detail === undefined ? {} : { detail }) });
    } catch {
      // an observer's failure is not ours
    }
  }
}
