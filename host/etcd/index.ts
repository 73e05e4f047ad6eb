/**
 * `lease-core/etcd`: a service elected through etcd that serves reads from local state while a
 * lease it can prove holds (docs/etcd.md derives every rule below; read it first).
 *
 * - Election: one key `<prefix>/leader`, created with a txn `create_revision == 0` and bound to
 *   this node's own etcd lease. Its create revision is the fencing token of every write.
 * - Timing is ours, not etcd3's: the node keeps its etcd lease alive itself over a raw
 *   LeaseKeepAlive stream (never etcd3's Campaign/Election helpers nor its lease `lost` event,
 *   which fires up to 2×TTL late and reads the wall clock).
 * - The lease: a keepalive sent at `sentAt` (clock sample and generation taken BEFORE sending)
 *   counts only once *confirmed*: its response's raft_term equals the raft_term of a later
 *   quorum operation (a linearizable read-only txn, or the node's own fenced write txn) that
 *   still shows our leader key. A keepalive alone proves nothing in etcd 3.4: renewals are not
 *   replicated, and a stalled or isolated old etcd leader keeps answering them (etcd-io/etcd
 *   #15247, #12528). The lease then runs to `sentAt + TTL - margin`, margin = etcd's election
 *   timeout + 2·drift·TTL + 1 ms.
 * - State: the data prefix replicated by a watch; the applied index is the etcd revision of the
 *   last applied event. A read the lease cannot cover is a linearizable etcd read, then a wait
 *   until the local state reaches the revision it returned.
 * - The own leader key is watched: deleted or overwritten → every lease is invalidated at once.
 * - Every path to leadership (a won campaign, our own key found again) waits until the local
 *   state holds every acknowledged write (the campaign txn's meta revision), then, unless the
 *   last holder resigned or etcd has the early-revoke fix, until any previous holder's lease
 *   must have lapsed (the takeover hold: a stuck old etcd leader can revoke a live lease,
 *   etcd-io/etcd #15247). Only then does it serve.
 * - A clock fault (regression, suspend) drops the anchor; close() fails every wait in flight.
 *
 * It implements `LeaseEngine`, so `core.createLeaseReader(node)` works on it unchanged; `read`
 * and `write` are the same path through an internal reader, pause-safe (see `read`).
 *
 * The files, one concern each: options.ts (the options and their check), errors.ts (EtcdNodeError
 * and the one classification of etcd failures), margin.ts (§3's margin, checked by the core's
 * rules), state.ts (what the concerns share), keepalive.ts (the keepalive stream, the renewal
 * and its confirmation, §2), replica.ts (the local copy, its watch and waits, §4), election.ts
 * (campaign, takeover hold, resign, §1, §5), types.ts (the public shapes), util.ts (stateless
 * helpers). This file wires them into the public class; no other file imports it.
 * @module
 */
import type { ITxnResponse, KVClient } from "etcd3";
import { LeadershipLostError } from "../core/errors.js";
import type { EngineState, LeaseEngine } from "../core/reader.js";
import { campaignLoop, readVersions, resign } from "./election.js";
import { EtcdNodeError, EtcdUnknownOutcomeError, etcdError, writeError } from "./errors.js";
import { confirm, grant, keepAlive, renew, renewLoop } from "./keepalive.js";
import { checkOptions, type EtcdLeaseNodeOptions } from "./options.js";
import { apply, metaRevisionOf, readTxn, waitApplied, watchData } from "./replica.js";
import { NodeState } from "./state.js";
import type { EtcdNodeStatus, EtcdReadResult, EtcdWriteResult } from "./types.js";
import { checkText, endStream, prefixEnd, sleep } from "./util.js";

export { etcdHasRevokeFix } from "./election.js";
export { createEtcdGroupNode, EtcdGroupNode, groupOfKey, NotGroupLeaderError } from "./groups/index.js";
export type { EtcdGroupNodeOptions, EtcdGroupNodeStatus } from "./groups/index.js";
export { EtcdNodeError, EtcdUnknownOutcomeError } from "./errors.js";
export type { EtcdAuthOptions, EtcdLeaseNodeOptions, EtcdTlsOptions, EtcdUnsafeSwitches } from "./options.js";
export type { EtcdEventReason, EtcdNodeEvent, EtcdNodeStatus, EtcdReadResult, EtcdWriteResult, RevokeGuard } from "./types.js";

/** The etcd-elected lease node. Create with `createEtcdLeaseNode`, then `await node.start()`. */
export class EtcdLeaseNode implements LeaseEngine {
  /** This node's id (stored in the election key while it leads). */
  readonly id: string;
  /** Event counts by reason, for the dashboard and tests. */
  readonly counters: Record<string, number>;
  /** What the concerns share (state.ts); never handed out. */
  readonly #s: NodeState;

  /** @internal Use `createEtcdLeaseNode`. */
  constructor(options: EtcdLeaseNodeOptions) {
    const s = new NodeState(checkOptions(options));
    this.#s = s;
    this.id = s.id;
    this.counters = s.counters;
  }

  // ---- LeaseEngine -------------------------------------------------------------------------

  state(): EngineState {
    return this.#s.state;
  }

  appliedIndex(): bigint {
    return this.#s.applied;
  }

  /**
   * A linearizable read barrier. As leader it is also a renewal (a keepalive sent after the
   * reader's clock sample, confirmed by the read's own term), so the reader may warm its lease
   * from that sample; an unconfirmed renewal invalidates first (the reader's extend then fails
   * its generation check). Resolves once the local state has reached the revision read.
   */
  async linearizableRead(signal?: AbortSignal): Promise<bigint> {
    this.#s.checkOpen();
    const unknownSeq = this.#s.ownWriteUnknownSeq;
    let metaRevision: bigint;
    if (this.#s.state === "leader") {
      metaRevision = await renew(this.#s, "read");
    } else {
      const txn = await readTxn(this.#s);
      metaRevision = metaRevisionOf(txn);
    }
    await waitApplied(this.#s, metaRevision, signal);
    // Begun after every write of unknown outcome so far: whatever of them had committed when it
    // read is now applied locally, so local reads may resume.
    if (this.#s.ownWriteUnknown && unknownSeq === this.#s.ownWriteUnknownSeq) this.#s.ownWriteUnknown = false;
    return this.#s.applied;
  }

  leaseDurationNs(): bigint {
    return this.#s.durationNs > 0n ? this.#s.durationNs : 0n;
  }

  lastQuorumAck(): bigint {
    // The reader asks right after its own clock reading: a fault that reading saw drops the anchor.
    this.#s.checkClockFaults();
    // No anchor serves while the local state may be behind a write of ours (its catch-up timed
    // out, or its txn failed without an answer): the failure invalidated the reader's lease, and
    // until the local state has caught up a read goes through etcd and waits for it (docs/etcd.md
    // §4). The lease is not disabled: the next linearizable read (or successful write) warms it.
    if (this.#s.applied < this.#s.ownWriteFloor || this.#s.ownWriteUnknown) return 0n;
    return this.#s.state === "leader" ? this.#s.ackNs : 0n;
  }

  /** The leadership epoch: our leader key's create revision (0n when not leading). Each
   *  election creates the key anew, so a new epoch is a new "term" for the reader's guards. */
  currentTerm(): bigint {
    return this.#s.state === "leader" ? this.#s.createRevision : 0n;
  }

  /** The epoch the anchor was confirmed in: an anchor from an earlier leadership never serves. */
  quorumAckTerm(): bigint {
    return this.#s.ackTerm;
  }

  onLeaderLoss(callback: () => void): () => void {
    const wrapped = () => callback();
    this.#s.listeners.add(wrapped);
    return () => this.#s.listeners.delete(wrapped);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Grants the etcd lease, loads the data, and starts the keepalive, watch and campaign loops.
   * Resolves once the state is loaded, NOT once elected: `await node.waitForLeader()` before
   * writing on the node meant to lead (a candidate refuses writes with NotLeaderError).
   * @throws EtcdNodeError with `ERR_LEASE_ETCD_UNAVAILABLE`, `_TIMEOUT` or `_AUTH` when etcd
   *   cannot be reached or refuses the credentials (the node can be started again).
   */
  async start(): Promise<void> {
    this.#s.checkOpen();
    if (this.#s.started) return;
    this.#s.started = true;
    this.#s.reader = this.#s.core.createLeaseReader(this, {
      observer: {
        onHit: (reason) => {
          this.#s.lastReason = reason;
        },
        onMiss: (reason) => {
          this.#s.lastReason = reason;
        },
      },
      onWarning: () => {},
    });
    let snapshot: Awaited<ReturnType<KVClient["range"]>>;
    try {
      await grant(this.#s);
      this.#s.faultsSeen = this.#s.clockFaults();
      await readVersions(this.#s);
      snapshot = await this.#s.kv.range({ key: this.#s.dataPrefix, range_end: prefixEnd(this.#s.dataPrefix) }, this.#s.callOptions());
    } catch (err) {
      this.#s.started = false; // nothing runs yet: a later start() may try again
      this.#s.reader.close();
      this.#s.reader = undefined;
      throw etcdError("start", this.#s.endpoints, err);
    }
    for (const kv of snapshot.kvs) apply(this.#s, kv, "PUT");
    this.#s.applied = BigInt(snapshot.header.revision);
    void watchData(this.#s, this.#s.applied + 1n);
    void renewLoop(this.#s);
    void campaignLoop(this.#s);
  }

  /** Resolves when this node leads (or rejects on close / timeout). */
  async waitForLeader(timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.#s.state !== "leader") {
      this.#s.checkOpen();
      if (performance.now() > deadline) throw new EtcdNodeError(`not leader after ${timeoutMs} ms`, "ERR_LEASE_ETCD_TIMEOUT");
      await sleep(10, this.#s.stop.signal);
    }
  }

  /**
   * Stops promptly, in this order: cancel the observers (watches, keepalive stream, loops),
   * resign (delete our leader key if it is still ours), revoke the etcd lease, close the client.
   * Each etcd call is bounded by a short deadline, so close() returns even with etcd gone.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#s.closing ??= (async () => {
      const createRevision = this.#s.createRevision;
      this.#s.closed = true;
      this.#s.invalidate("closed");
      this.#s.state = "shutdown";
      this.#s.stop.abort();
      this.#s.stepDown?.();
      this.#s.reader?.close();
      for (const stream of this.#s.streams) endStream(stream);
      this.#s.streams.clear();
      this.#s.kaPending?.settle(new EtcdNodeError("closed", "ERR_LEASE_ETCD_CLOSED"));
      // A wait in flight (a linearizable read, a write, a catch-up) must never be answered with
      // state older than the revision it waits for: it fails by name (docs/etcd.md §4).
      for (const w of this.#s.waiters.splice(0)) {
        if (__UNSAFE_CLOSE_ANSWERS_PENDING__) w.resolve();
        else w.reject(new EtcdNodeError(`closed before the local state reached revision ${w.revision}`, "ERR_LEASE_ETCD_CLOSED"));
      }
      const short = { deadline: new Date(Date.now() + 300) };
      // Resign (with the marker of docs/etcd.md §5 when this holder may vouch for it).
      if (createRevision > 0n) await resign(this.#s, createRevision, short);
      if (this.#s.leaseId !== null) await this.#s.leases.leaseRevoke({ ID: this.#s.leaseId }, short).catch(() => undefined);
      this.#s.client.close();
    })();
    return this.#s.closing;
  }

  // ---- reads and writes --------------------------------------------------------------------

  /**
   * A read of `key`. Served locally when the lease holds, else through a linearizable etcd read.
   * Pause-safe (contract §4): the value is taken first and the lease is checked again on a clock
   * sample taken after it, so a pause (SIGSTOP, GC) between the lease decision and the read
   * cannot return a value older than the lease covers; if the second check fails the read goes
   * to etcd. Followers refuse with NotLeaderError (naming the leader).
   */
  async read(key: string): Promise<EtcdReadResult> {
    this.#s.checkOpen();
    checkText("key", key);
    if (this.#s.state !== "leader") throw this.#s.notLeader();
    let calls = 0;
    const pending = this.#s.reader!.leaseReadThen(() => {
      calls++;
      return { value: this.#s.data.get(key) ?? null, revision: this.#s.applied };
    });
    // Both decisions at entry run synchronously inside leaseReadThen: a local decision has
    // already called fn; a miss has already told the observer why.
    const localAtEntry = calls === 1;
    const entryReason = this.#s.lastReason;
    const result = await pending;
    const local = localAtEntry && calls === 1;
    if (local) this.#s.counters.localReads!++;
    else this.#s.counters.etcdReads!++;
    if (localAtEntry && !local) this.#s.counters.postCheckMisses!++;
    return { ...result, served: local ? "local" : "etcd", reason: local ? "valid" : localAtEntry ? this.#s.lastReason : entryReason };
  }

  /** A read of `key` that always goes through etcd (a linearizable read, then the local state
   *  at or past its revision): the baseline a lease read is measured against. Leader only. */
  async readLinearizable(key: string): Promise<EtcdReadResult> {
    this.#s.checkOpen();
    checkText("key", key);
    if (this.#s.state !== "leader") throw this.#s.notLeader();
    const txn = await readTxn(this.#s);
    await waitApplied(this.#s, metaRevisionOf(txn));
    this.#s.counters.etcdReads!++;
    return { value: this.#s.data.get(key) ?? null, revision: this.#s.applied, served: "etcd", reason: "linearizable" };
  }

  /**
   * Writes `key = value` with a txn fenced on our leader key's create revision, through the
   * reader's `dispatch` (clock and generation sampled before; the lease extended only after a
   * local, fenced, successful commit). A put does not renew an etcd lease, so the write carries
   * its own renewal: a keepalive, then the txn, whose raft_term must match the keepalive's.
   * Resolves once the local state has applied the write.
   * @throws NotLeaderError before sending anything; LeadershipLostError when the fence fails;
   *   EtcdNodeError `ERR_LEASE_ETCD_AUTH` when etcd refused the permission (nothing applied);
   *   EtcdUnknownOutcomeError when the txn failed otherwise (it may have applied).
   */
  async write(key: string, value: string): Promise<EtcdWriteResult> {
    this.#s.checkOpen();
    checkText("key", key);
    checkText("value", value);
    if (this.#s.state !== "leader") throw this.#s.notLeader(); // before dispatch: its refusal names no leader
    const reader = this.#s.reader!;
    const result = await reader.dispatch(async () => {
      if (this.#s.state !== "leader") throw this.#s.notLeader();
      const createRevision = this.#s.createRevision;
      const sentAtNs = this.#s.core.now();
      this.#s.checkClockFaults();
      const generation = this.#s.generation;
      const answer = await keepAlive(this.#s); // throws before the txn: a definite failure
      let txn: ITxnResponse;
      try {
        txn = await this.#s.kv.txn(
          {
            compare: [{ key: this.#s.leaderKey, target: "Create", result: "Equal", create_revision: createRevision.toString() }],
            success: [
              { request_put: { key: Buffer.concat([this.#s.dataPrefix, Buffer.from(key)]), value: Buffer.from(value) } },
              { request_put: { key: this.#s.metaKey, value: Buffer.from(this.id) } },
            ],
            failure: [],
          },
          this.#s.callOptions(),
        );
      } catch (err) {
        const failure = writeError(this.#s.endpoints, err);
        if (failure instanceof EtcdUnknownOutcomeError) {
          // It may have committed: no local read until a linearizable read begun after this
          // failure has caught the local state up (test/etcd-attack-round4-txn-timeout).
          this.#s.ownWriteUnknown = true;
          this.#s.ownWriteUnknownSeq++;
          this.#s.invalidate("behind-own-write", "a write's txn failed without an answer; it may have committed");
        }
        throw failure;
      }
      if (!txn.succeeded) {
        this.#s.loseLeadership("fence-failed");
        throw new LeadershipLostError("the write's fence failed: our leader key is gone");
      }
      const revision = BigInt(txn.header.revision);
      // Unconfirmed (the terms differ): the write stands, but it proves no lease, so the reader
      // must not extend from it (`local: false`).
      const confirmed = confirm(this.#s, answer, txn.header, generation, sentAtNs, true, false);
      this.#s.counters.writes!++;
      try {
        await waitApplied(this.#s, revision);
      } catch (err) {
        // Closed while waiting: the write did commit, so it is answered as committed, and
        // extends nothing (no read follows on a closed node).
        if ((err as { code?: string }).code === "ERR_LEASE_ETCD_CLOSED") return { commitIndex: revision, local: false };
        // Any other failure here (the local state did not reach the revision in time) comes
        // after etcd applied the txn: the write stands, so its outcome is unknown to a client
        // that sees only this error, never a timeout it may retry (a re-applied put is not
        // linearizable, docs/etcd.md §1).
        // Until the local state reaches it, no read is served locally: the reader's lease goes
        // now, and lastQuorumAck() answers 0 until then (test/etcd-attack-round3-read-after-unknown).
        if (revision > this.#s.ownWriteFloor) this.#s.ownWriteFloor = revision;
        this.#s.invalidate("behind-own-write", `the local state is behind revision ${revision}, which a write of ours committed`);
        throw new EtcdUnknownOutcomeError(err, `the write committed at revision ${revision}, but the local state did not reach it: read before retrying`);
      }
      return { commitIndex: revision, local: confirmed };
    });
    return { revision: result.commitIndex };
  }

  /** The local value of `key` with no lease check (for followers' displays only). */
  peek(key: string): string | null {
    return this.#s.data.get(key) ?? null;
  }

  /** A snapshot for logs and dashboards. */
  status(): EtcdNodeStatus {
    const nowNs = this.#s.core.now();
    return {
      id: this.id,
      state: this.#s.state,
      leaderId: this.#s.leaderId,
      leaseId: this.#s.leaseId,
      leaderCreateRevision: this.#s.createRevision,
      appliedRevision: this.#s.applied,
      ttlNs: this.#s.ttlNs,
      marginNs: this.#s.marginNs,
      leaseDurationNs: this.#s.durationNs,
      anchorNs: this.#s.ackNs,
      remainingNs: this.#remaining(nowNs),
      nowNs,
      lastTerm: this.#s.lastTerm,
      counters: { ...this.#s.counters },
      etcdVersions: { ...this.#s.etcdVersions },
      revokeGuard: this.#s.revokeGuard,
      holdUntilNs: this.#s.holdFor !== 0n && this.#s.holdLengthNs > 0n && this.#s.holdStartNs > 0n && this.#s.holdStartNs + this.#s.holdLengthNs > nowNs ? this.#s.holdStartNs + this.#s.holdLengthNs : 0n,
    };
  }

  // ---- the lease ---------------------------------------------------------------------------

  #remaining(nowNs: bigint): bigint {
    this.#s.checkClockFaults();
    // Behind a write of ours (lastQuorumAck's rule): no read is served locally, whatever the
    // anchor a renewal set since, so none is reported.
    if (this.#s.applied < this.#s.ownWriteFloor || this.#s.ownWriteUnknown) return 0n;
    const reader = this.#s.reader;
    let best = 0n;
    if (this.#s.state === "leader" && this.#s.ackNs !== 0n && nowNs !== 0n && this.#s.ackNs <= nowNs) {
      const left = this.#s.ackNs + this.#s.durationNs - nowNs;
      if (left > best) best = left;
    }
    if (this.#s.state === "leader" && reader !== undefined && nowNs !== 0n) {
      const expiry = reader.lease.expiry();
      if (expiry > nowNs && expiry - nowNs > best) best = expiry - nowNs;
    }
    return best;
  }
}

/** A node campaigning for `<prefix>/leader`; call `await node.start()`. */
export function createEtcdLeaseNode(options: EtcdLeaseNodeOptions): EtcdLeaseNode {
  return new EtcdLeaseNode(options);
}
