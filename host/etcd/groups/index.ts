/**
 * `EtcdGroupNode`: thousands of shard groups per node on ONE etcd lease (`lease-core/etcd`,
 * docs/etcd.md "Many groups on one lease" derives every rule; read it first). Wiring only: the
 * concerns live in one file each:
 *
 * - assign.ts: which group owns a key, which live node should lead a group (pure);
 * - options.ts: the options and their check (the single-leader node's, plus groupCount,
 *   maxTxnOps, and the core's lease capacity);
 * - state.ts: the group table and the local copy of membership and group keys, on top of the
 *   single-leader node's NodeState (client, lease, keepalive stream, local copy, clock faults);
 * - confirm.ts: the node round (one keepalive + one keys-only quorum read) and the node proof;
 * - campaign.ts: batched campaigns, catch-up, takeover hold, handoff with resign markers;
 * - table.ts: each group's LeaseEngine, read by `reader` (the core's ShardedLeaseReader).
 *
 * Keys under `prefix`: `n/<id>` membership, `g/<5-digit group>` leader keys (create revision =
 * the group's epoch and fencing token), `r/<5-digit group>` resign markers, `d/<key>` data; all
 * but the data bound to the node's lease. One watch on `<prefix>/` keeps the local copy.
 * @module
 */
import type { ITxnResponse, KVClient } from "etcd3";
import { InvalidOptionError, LeadershipLostError, UnknownGroupError } from "../../core/errors.js";
import type { LeaseEngine } from "../../core/reader.js";
import type { ShardedLeaseReader } from "../../core/sharded-reader.js";
import { readVersions } from "../election.js";
import { EtcdNodeError, EtcdUnknownOutcomeError, etcdError, writeError } from "../errors.js";
import { grant } from "../keepalive.js";
import { apply, metaRevisionOf, readTxn, waitApplied, watchData } from "../replica.js";
import type { EtcdReadResult, EtcdWriteResult } from "../types.js";
import { checkText, endStream, prefixEnd, sleep } from "../util.js";
import { desiredGroups, groupOfKey } from "./assign.js";
import { campaignLoop, liveNodes, resignGroups } from "./campaign.js";
import { register, roundLoop } from "./confirm.js";
import { NotGroupLeaderError } from "./errors.js";
import { checkGroupOptions, type EtcdGroupNodeOptions } from "./options.js";
import { fire, GroupState } from "./state.js";
import { GroupEngine } from "./table.js";
import type { EtcdGroupNodeStatus } from "./types.js";

export { groupOfKey } from "./assign.js";
export { NotGroupLeaderError } from "./errors.js";
export type { EtcdGroupNodeOptions } from "./options.js";
export type { EtcdGroupNodeStatus } from "./types.js";

/** A node leading many groups on one etcd lease. Create with `createEtcdGroupNode`, then
 *  `await node.start()` and `await node.waitForAssignment()`. */
export class EtcdGroupNode {
  /** This node's id (its membership key, and the value of every group key it holds). */
  readonly id: string;
  /** G. */
  readonly groupCount: number;
  /** Lease reads over every group (`leaseReadForKey`, `leaseReadAllGroups`...). */
  readonly reader: ShardedLeaseReader;
  /** Counts: etcdRequests (every RPC and keepalive message sent), rounds, roundsConfirmed,
   *  campaigns, campaignTxns, handoffs, groupsLost, localReads, etcdReads, writes, ... */
  readonly counters: Record<string, number>;
  readonly #gs: GroupState;
  readonly #engines: GroupEngine[];
  #lastReason = "";

  /** @internal Use `createEtcdGroupNode`. */
  constructor(options: EtcdGroupNodeOptions) {
    const gs = new GroupState(checkGroupOptions(options));
    this.#gs = gs;
    this.id = gs.s.id;
    this.groupCount = gs.groupCount;
    this.counters = gs.s.counters;
    this.#engines = gs.groups.map((rec) => new GroupEngine(gs, rec));
    const groups = new Map<number, LeaseEngine>(this.#engines.map((engine, g) => [g, engine]));
    const G = gs.groupCount;
    // A refusal (CapacityError: fewer free lease slots than groups) leaves nothing behind: the
    // sharded reader gives back the slots it took, and the etcd client built goes.
    let reader: ShardedLeaseReader;
    try {
      reader = gs.s.core.createShardedLeaseReader({
      groups,
      route: (key) => groupOfKey(key, G),
      observer: {
        onHit: (reason) => {
          this.#lastReason = reason;
        },
        onMiss: (reason) => {
          this.#lastReason = reason;
        },
      },
      onWarning: () => {},
      });
    } catch (err) {
      gs.s.client.close();
      throw err;
    }
    this.reader = reader;
    gs.s.otherKey = (kv, type) => gs.onKey(kv, type);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Grants the node's etcd lease, registers `<prefix>/n/<id>`, loads the local copy, and starts
   * the round, watch and campaign loops. Resolves once loaded, NOT once its groups serve:
   * `await node.waitForAssignment()`.
   * @throws EtcdNodeError `ERR_LEASE_ETCD_UNAVAILABLE`, `_TIMEOUT` or `_AUTH` (start may be retried).
   */
  async start(): Promise<void> {
    const gs = this.#gs;
    const s = gs.s;
    s.checkOpen();
    if (s.started) return;
    s.started = true;
    let snapshot: Awaited<ReturnType<KVClient["range"]>>;
    try {
      gs.req();
      await grant(s);
      s.faultsSeen = s.clockFaults();
      gs.req(1 + s.endpoints.length); // readVersions: the member list, then each member's status
      await readVersions(s);
      await register(gs);
      gs.req();
      snapshot = await s.kv.range({ key: s.watchPrefix, range_end: prefixEnd(s.watchPrefix) }, s.callOptions());
    } catch (err) {
      s.started = false;
      throw etcdError("start", s.endpoints, err);
    }
    for (const kv of snapshot.kvs) apply(s, kv, "PUT");
    s.applied = BigInt(snapshot.header.revision);
    gs.req();
    void watchData(s, s.applied + 1n);
    void roundLoop(gs);
    void campaignLoop(gs);
  }

  /** Resolves once every group this node should lead (by rendezvous among the live nodes) is
   *  serving and it holds no group another live node should lead. */
  async waitForAssignment(timeoutMs = 15_000): Promise<void> {
    if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs < 0) throw new InvalidOptionError("timeoutMs", "a finite number of ms >= 0", timeoutMs);
    const s = this.#gs.s;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      s.checkOpen();
      if (this.#assigned()) return;
      if (performance.now() > deadline) throw new EtcdNodeError(`groups not assigned after ${timeoutMs} ms`, "ERR_LEASE_ETCD_TIMEOUT");
      await sleep(10, s.stop.signal);
    }
  }

  #assigned(): boolean {
    const gs = this.#gs;
    if (!gs.live.has(this.id)) return false;
    const mine = new Set(desiredGroups(this.id, liveNodes(gs), gs.groupCount));
    for (const rec of gs.groups) {
      if (mine.has(rec.id) !== gs.leads(rec)) return false;
      if (!mine.has(rec.id) && rec.epoch !== 0n) return false;
    }
    return true;
  }

  /**
   * Stops, handing every group off: each stops serving here first (its readers invalidated),
   * then batched txns delete its keys and write the resign markers (the next holders skip
   * their takeover hold), the membership key goes, the lease is revoked. Each etcd call is
   * bounded by a short deadline. Idempotent.
   */
  close(): Promise<void> {
    const gs = this.#gs;
    const s = gs.s;
    s.closing ??= (async () => {
      const held = gs.groups.filter((rec) => rec.epoch !== 0n);
      s.closed = true;
      s.stop.abort();
      s.invalidate("closed");
      this.reader.close();
      // The groups' lease slots go back to the core: a node made again on it fits (attack
      // groups-lease-slots). Closed readers never touch a disposed lease (reader.ts).
      for (let g = 0; g < gs.groupCount; g++) this.reader.reader(g).lease.dispose();
      for (const stream of s.streams) endStream(stream);
      s.streams.clear();
      s.kaPending?.settle(new EtcdNodeError("closed", "ERR_LEASE_ETCD_CLOSED"));
      for (const w of s.waiters.splice(0)) {
        if (__UNSAFE_CLOSE_ANSWERS_PENDING__) w.resolve();
        else w.reject(new EtcdNodeError(`closed before the local state reached revision ${w.revision}`, "ERR_LEASE_ETCD_CLOSED"));
      }
      const short = { deadline: new Date(Date.now() + 500) };
      if (s.started && s.leaseId !== null) {
        await resignGroups(gs, held, short);
        gs.req();
        await s.kv.deleteRange({ key: gs.memberKey }, short).catch(() => undefined);
        gs.req();
        await s.leases.leaseRevoke({ ID: s.leaseId }, short).catch(() => undefined);
      }
      gs.loseAll("closed");
      s.client.close();
    })();
    return s.closing;
  }

  // ---- routing -----------------------------------------------------------------------------

  /** The group's engine. @throws UnknownGroupError when `groupId` is not in [0, G). */
  group(groupId: number): LeaseEngine {
    const engine = Number.isInteger(groupId) ? this.#engines[groupId] : undefined;
    if (engine === undefined) throw new UnknownGroupError(groupId);
    return engine;
  }

  /** The group owning `key`. */
  groupOf(key: string | Uint8Array): number {
    return groupOfKey(key, this.groupCount);
  }

  /** The node the local copy shows holding the group's key (null: none). */
  leaderOf(groupId: number): string | null {
    this.group(groupId);
    return this.#gs.groups[groupId]!.holder?.nodeId ?? null;
  }

  /** The groups this node leads and serves, sorted. */
  ledGroups(): number[] {
    return this.#gs.groups.filter((rec) => this.#gs.leads(rec)).map((rec) => rec.id);
  }

  #leading(key: string): number {
    checkText("key", key);
    const g = this.groupOf(key);
    if (!this.#gs.leads(this.#gs.groups[g]!)) throw new NotGroupLeaderError(g, this.leaderOf(g));
    return g;
  }

  // ---- reads and writes --------------------------------------------------------------------

  /**
   * A read of `key` on its group's leader: local while the group's lease holds, else through a
   * linearizable etcd read. Pause-safe like the single-leader node's (the lease is checked
   * again after the value is taken). @throws NotGroupLeaderError (naming the leader) elsewhere.
   */
  async read(key: string): Promise<EtcdReadResult> {
    this.#gs.s.checkOpen();
    const g = this.#leading(key);
    const s = this.#gs.s;
    let calls = 0;
    const pending = this.reader.reader(g).leaseReadThen(() => {
      calls++;
      return { value: s.data.get(key) ?? null, revision: s.applied };
    });
    const localAtEntry = calls === 1;
    const entryReason = this.#lastReason;
    const result = await pending;
    const local = localAtEntry && calls === 1;
    if (local) s.counters.localReads!++;
    else s.counters.etcdReads!++;
    if (localAtEntry && !local) s.counters.postCheckMisses!++;
    return { ...result, served: local ? "local" : "etcd", reason: local ? "valid" : localAtEntry ? this.#lastReason : entryReason };
  }

  /** A read of `key` through etcd (a linearizable read, then the local copy at or past it), on
   *  any node. */
  async readLinearizable(key: string): Promise<EtcdReadResult> {
    const s = this.#gs.s;
    s.checkOpen();
    checkText("key", key);
    this.#gs.req();
    const txn = await readTxn(s);
    await waitApplied(s, metaRevisionOf(txn));
    s.counters.etcdReads!++;
    return { value: s.data.get(key) ?? null, revision: s.applied, served: "etcd", reason: "linearizable" };
  }

  /**
   * Writes `key = value` on its group's leader: a txn fenced on the group key's create revision
   * (its epoch), putting the data and the meta key (the catch-up target of every read), through
   * the group reader's `dispatch`. Unknown outcomes as the single-leader node (docs/etcd.md §1,
   * §4): no local read of the group until a linearizable read has caught up.
   * @throws NotGroupLeaderError before sending anything; LeadershipLostError when the fence
   *   fails; EtcdUnknownOutcomeError when the txn failed otherwise (it may have applied).
   */
  async write(key: string, value: string): Promise<EtcdWriteResult> {
    const gs = this.#gs;
    const s = gs.s;
    s.checkOpen();
    checkText("key", key);
    checkText("value", value); // bad input is refused before the leadership is looked at
    const g = this.#leading(key);
    const rec = gs.groups[g]!;
    const result = await this.reader.dispatch(g, async () => {
      if (!gs.leads(rec)) throw new NotGroupLeaderError(g, this.leaderOf(g));
      const epoch = rec.epoch;
      gs.req();
      let txn: ITxnResponse;
      // From the send until the answer, the write may have committed: no local read of the group
      // (GroupEngine.appliedTerm); once answered, the floor below keeps that until it is applied.
      rec.writesInFlight++;
      try {
        txn = await s.kv.txn(
          {
            compare: [{ key: rec.key, target: "Create", result: "Equal", create_revision: epoch.toString() }],
            success: [{ request_put: { key: Buffer.concat([s.dataPrefix, Buffer.from(key)]), value: Buffer.from(value) } }, { request_put: { key: s.metaKey, value: Buffer.from(this.id) } }],
            failure: [],
          },
          s.callOptions(),
        );
      } catch (err) {
        const failure = writeError(s.endpoints, err);
        if (failure instanceof EtcdUnknownOutcomeError) {
          rec.ownWriteUnknown = true;
          rec.ownWriteUnknownSeq++;
          fire(rec);
        }
        throw failure;
      } finally {
        rec.writesInFlight--;
      }
      if (!txn.succeeded) {
        if (rec.epoch === epoch) gs.lose(rec, "fence-failed");
        throw new LeadershipLostError(`group ${g}: the write's fence failed: our leader key is gone`);
      }
      const revision = BigInt(txn.header.revision);
      s.counters.writes!++;
      // Committed at `revision`: until the local copy has applied it, no local read of the group
      // (appliedTerm, lastQuorumAck), whether or not this wait succeeds.
      if (revision > rec.ownWriteFloor) rec.ownWriteFloor = revision;
      try {
        await waitApplied(s, revision);
      } catch (err) {
        if ((err as { code?: string }).code === "ERR_LEASE_ETCD_CLOSED") return { commitIndex: revision, local: false };
        fire(rec);
        throw new EtcdUnknownOutcomeError(err, `the write committed at revision ${revision}, but the local state did not reach it: read before retrying`);
      }
      // The write proves no lease of ours (no keepalive rode with it): it extends nothing.
      return { commitIndex: revision, local: false };
    });
    return { revision: result.commitIndex };
  }

  /** The local value of `key` with no lease check (for displays only). */
  peek(key: string): string | null {
    return this.#gs.s.data.get(key) ?? null;
  }

  /** A snapshot for logs and dashboards. */
  status(): EtcdGroupNodeStatus {
    const gs = this.#gs;
    const s = gs.s;
    const nowNs = s.core.now();
    s.checkClockFaults();
    const remaining = s.ackNs !== 0n && nowNs >= s.ackNs ? s.ackNs + s.durationNs - nowNs : 0n;
    let leading = 0;
    let serving = 0;
    for (const rec of gs.groups) {
      if (rec.epoch !== 0n) leading++;
      if (gs.leads(rec)) serving++;
    }
    return {
      id: this.id,
      liveNodes: liveNodes(gs),
      groupCount: gs.groupCount,
      leading,
      serving,
      leaseId: s.leaseId,
      ackNs: s.ackNs,
      ackRound: gs.ackRound,
      generation: s.generation,
      leaseDurationNs: s.durationNs,
      remainingNs: remaining > 0n ? remaining : 0n,
      nowNs,
      rounds: s.counters.rounds!,
      lastRoundMs: gs.lastRoundMs,
      appliedRevision: s.applied,
      counters: { ...s.counters },
    };
  }
}

/** A node of many groups on one etcd lease; call `await node.start()`. */
export function createEtcdGroupNode(options: EtcdGroupNodeOptions): EtcdGroupNode {
  return new EtcdGroupNode(options);
}
