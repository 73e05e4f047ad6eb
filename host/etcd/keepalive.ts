/**
 * The keepalive of `lease-core/etcd` and the renewal's confirmation (docs/etcd.md §2, §3, §6):
 * the node's own LeaseKeepAlive stream, one request at a time, each answered only on its own
 * stream for its own lease; a renewal (keepalive, then a quorum operation whose raft term must
 * match) that sets the anchor `sentAt` with the duration `TTL - margin`; the renew loop.
 * @module
 */
import type { IResponseHeader } from "etcd3";
import { LeadershipLostError } from "../core/errors.js";
import { etcdError, EtcdNodeError } from "./errors.js";
import { etcdLeaseTiming, S } from "./margin.js";
import { metaRevisionOf, readTxn } from "./replica.js";
import type { KeepAliveAnswer, NodeState } from "./state.js";
import { endStream, sleep, type Duplex } from "./util.js";

/** Sets the lease from a confirmed keepalive: `sentAt + TTL - margin` as an anchor `sentAt`
 *  with duration `TTL - margin`, iff nothing invalidated since the sample (generation). */
export function confirm(s: NodeState, answer: KeepAliveAnswer, quorumHeader: IResponseHeader, generation: bigint, sentAtNs: bigint, keyChecked: boolean, invalidateOnMismatch = true): boolean {
  const quorumTerm = BigInt(quorumHeader.raft_term);
  s.lastTerm = quorumTerm;
  if (!s.unsafe.skipConfirmation && (answer.term !== quorumTerm || !keyChecked)) {
    s.counters.termMismatch!++;
    // After a linearizable read the reader extends its own lease from its sample: bumping the
    // generation here voids that extend (its generation check fails).
    if (invalidateOnMismatch) s.invalidate(keyChecked ? "term-mismatch" : "key-missing", `keepalive term ${answer.term}, quorum term ${quorumTerm}`);
    else s.event("term-mismatch", `keepalive term ${answer.term}, quorum term ${quorumTerm}`);
    return false;
  }
  // A clock fault since the sample (seen by a fresh reading) bumps the generation: an ack
  // sampled before a fault never proves a lease after it (docs/etcd.md §3).
  s.core.now();
  s.checkClockFaults();
  if (generation !== s.generation || s.state !== "leader") return false;
  const anchorNs = s.unsafe.anchorOnReceive ? answer.receivedAtNs : sentAtNs;
  if (anchorNs === 0n) return false; // no clock reading: fail closed
  setTtl(s, answer.ttlS);
  if (anchorNs > s.ackNs) s.ackNs = anchorNs;
  s.ackTerm = s.createRevision;
  s.counters.confirmed!++;
  return true;
}

/** Takes the TTL etcd granted (or answered a keepalive with): the margin and the lease
 *  duration follow from it (docs/etcd.md §3). */
export function setTtl(s: NodeState, ttlS: bigint): void {
  const ttlNs = ttlS * S;
  if (ttlNs === s.ttlNs) return;
  s.ttlNs = ttlNs;
  const timing = etcdLeaseTiming(s.core, ttlNs, s.electionTimeoutNs, s.driftPpmMax);
  s.marginNs = s.unsafe.marginNs ?? timing.marginNs;
  s.durationNs = s.unsafe.marginNs === undefined ? timing.durationNs : ttlNs - s.marginNs;
  if (s.durationNs <= 0n) {
    throw new EtcdNodeError(`lease duration ${s.durationNs} ns <= 0: TTL ${ttlS} s is too short for margin ${s.marginNs} ns (raise ttlS)`, "ERR_LEASE_ETCD_TTL_TOO_SHORT");
  }
}

/** One renewal round as leader: keepalive (sample first), then a linearizable read-only txn
 *  confirming the term and our key. Returns the meta revision the txn saw. */
export async function renew(s: NodeState, why: "loop" | "read"): Promise<bigint> {
  const sentAtNs = s.core.now();
  s.checkClockFaults(); // a fault this very reading saw must not void the renewal it starts
  const generation = s.generation;
  const createRevision = s.createRevision;
  s.counters.renewals!++;
  const answer = await keepAlive(s);
  if (s.unsafe.skipConfirmation && why === "loop") {
    confirm(s, answer, { raft_term: answer.term.toString() } as IResponseHeader, generation, sentAtNs, true);
    return 0n;
  }
  const txn = await readTxn(s);
  const leader = txn.responses[0]?.response_range.kvs[0];
  const ours = leader !== undefined && BigInt(leader.create_revision) === createRevision && leader.lease === s.leaseId;
  if (!ours && createRevision !== 0n && s.createRevision === createRevision) {
    s.loseLeadership("key-missing");
    throw new LeadershipLostError("our leader key is gone");
  }
  confirm(s, answer, txn.header, generation, sentAtNs, ours);
  return metaRevisionOf(txn);
}

/** Renews every `renewIntervalMs` (default TTL/4) until closed: as leader a full renewal, else a
 *  bare keepalive that keeps the etcd lease for the next campaign. */
export async function renewLoop(s: NodeState): Promise<void> {
  const signal = s.stop.signal;
  while (!signal.aborted) {
    const intervalMs = s.renewIntervalMs ?? Math.max(50, (s.ttlAskedS * 1000) / 4);
    if (s.state === "leader") {
      try {
        await renew(s, "loop");
      } catch {
        // counted where it happened; the anchor simply ages out
      }
    } else if (s.leaseId !== null) {
      // Keep the etcd lease alive while campaigning, so a recampaign can reuse it.
      await keepAlive(s).catch(() => undefined);
    }
    await sleep(intervalMs, signal);
  }
}

/** Grants this node's etcd lease (TTL `ttlS` asked; etcd may grant more). */
export async function grant(s: NodeState): Promise<void> {
  const granted = await s.leases.leaseGrant({ TTL: s.ttlAskedS }, s.callOptions());
  s.leaseId = granted.ID;
  setTtl(s, BigInt(granted.TTL));
}

/** Sends one keepalive on our own stream and waits for its answer. One at a time: the stream
 *  answers in order, so the answer is ours. */
export function keepAlive(s: NodeState): Promise<KeepAliveAnswer> {
  const run = s.kaChain.then(() => keepAliveNow(s));
  s.kaChain = run.catch(() => undefined);
  return run;
}

async function keepAliveNow(s: NodeState): Promise<KeepAliveAnswer> {
  s.checkOpen();
  const leaseId = s.leaseId;
  if (leaseId === null) throw new EtcdNodeError("no etcd lease", "ERR_LEASE_ETCD_NO_LEASE");
  const stream = await keepAliveStream(s);
  const answer = await new Promise<KeepAliveAnswer | Error>((resolve) => {
    const pending = {
      stream,
      leaseId,
      settle: (a: KeepAliveAnswer | Error) => {
        clearTimeout(timer);
        if (s.kaPending === pending) s.kaPending = undefined;
        resolve(a);
      },
    };
    const timer = setTimeout(() => pending.settle(new EtcdNodeError(`keepalive timed out (no answer in ${s.timeoutMs} ms)`, "ERR_LEASE_ETCD_TIMEOUT")), s.timeoutMs);
    s.kaPending = pending;
    stream.write({ ID: leaseId });
  });
  if (answer instanceof Error) {
    s.counters.keepaliveFailures!++;
    // A stream that missed an answer is out of step: never reuse it (a late answer would be
    // taken for the next request's); its handlers go with it.
    dropKeepAliveStream(s, stream);
    s.event(keepAliveFailureReason(answer), answer.message);
    throw answer;
  }
  if (answer.ttlS <= 0n) {
    // etcd says the lease is gone: its keys (our leader key) are deleted.
    s.leaseId = null;
    s.loseLeadership("etcd-lease-expired");
    void grant(s).catch(() => undefined);
    throw new LeadershipLostError("our etcd lease expired");
  }
  return answer;
}

/** The event a failed keepalive reports: a timeout by its code (its own deadline, or etcd's
 *  classified by errors.ts), never by its text. */
export function keepAliveFailureReason(err: Error): "keepalive-timeout" | "keepalive-error" {
  return (err as { code?: unknown }).code === "ERR_LEASE_ETCD_TIMEOUT" ? "keepalive-timeout" : "keepalive-error";
}

/** The open keepalive stream, or a new one with its handlers. */
async function keepAliveStream(s: NodeState): Promise<Duplex> {
  if (s.ka !== undefined) return s.ka;
  const stream = (await s.leases.leaseKeepAlive().catch((err: unknown) => {
    throw etcdError("keepalive", s.endpoints, err);
  })) as unknown as Duplex;
  s.ka = stream;
  s.streams.add(stream);
  // Each handler answers only the keepalive sent on its own stream for the same lease.
  const onData = (res: { ID: string; TTL: string; header: IResponseHeader }) => {
    const receivedAtNs = s.core.now();
    const pending = s.kaPending;
    if (pending === undefined || pending.stream !== stream || String(res.ID) !== pending.leaseId) return;
    pending.settle({ ttlS: BigInt(res.TTL), term: BigInt(res.header.raft_term), receivedAtNs });
  };
  const fail = (err?: Error) => {
    const pending = s.kaPending;
    dropKeepAliveStream(s, stream);
    if (pending !== undefined && pending.stream === stream) {
      pending.settle(err instanceof Error ? etcdError("keepalive", s.endpoints, err) : new EtcdNodeError("keepalive stream ended", "ERR_LEASE_ETCD_STREAM"));
    }
  };
  const onEnd = () => fail();
  stream.on("data", onData);
  stream.on("error", fail);
  stream.on("end", onEnd);
  s.kaHandlers.set(stream, () => {
    stream.removeListener("data", onData);
    stream.removeListener("error", fail);
    stream.removeListener("end", onEnd);
    // Cancelling emits a late CANCELLED error: swallow it rather than crash on an unhandled 'error'.
    stream.on("error", () => {});
  });
  return stream;
}

function dropKeepAliveStream(s: NodeState, stream: Duplex): void {
  if (s.ka === stream) s.ka = undefined;
  s.streams.delete(stream);
  const detach = s.kaHandlers.get(stream);
  s.kaHandlers.delete(stream);
  detach?.();
  endStream(stream);
}
