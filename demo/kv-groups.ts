/**
 * The sharded mode of the demo's KV service (demo/kv-service.ts with `KV_GROUPS=G`): one
 * `EtcdGroupNode` (lease-core/etcd, docs/etcd.md "Many groups on one lease") leading some of G
 * shard groups on one etcd lease, and the HTTP answers for it.
 *
 * Routing is by REDIRECT: a read, write or compare-and-set of key k is answered by this node only
 * if it leads and serves k's group (`groupOfKey(k, G)`); otherwise 503 {error: "not-leader",
 * leader, group} before anything is sent to etcd, and the client sends the call again to the node
 * named (demo/harness.ts, demo/nemesis.ts keep a per-key hint). A forward was rejected: the only
 * node whose answer can be a local read is the one whose own confirmed round covers the group
 * (docs/etcd.md "Many groups on one lease"), so a forward could only relay that node's answer,
 * adding a hop whose timeout turns a definite refusal into an unknown outcome, and the services
 * would need each other's HTTP addresses (they share only node ids through etcd).
 *
 *   GET  /kv?key=K[&consistency=linearizable] → 200 EtcdReadResult | 503 not-leader (redirect)
 *   POST /kv?key=K&value=V                    → 200 {revision} | 503 (not applied) | 500 {unknown}
 *   POST /kv?key=K&value=V&expected=E|&absent=1 → compare-and-set, as in the unsharded mode
 *   GET  /groups → {id, groupCount, led: [gid...], leaders: {nodeId: count}} (the local copy)
 *
 * The compare-and-set is the service's: a read the engine's way (the linearization point when
 * the value differs), then one txn fenced on the group key's create revision (the group's epoch,
 * `group(g).currentTerm()`) and on the data key not being modified after the read's revision;
 * it also puts the meta key `<prefix>/d/` as every engine write does (the catch-up target of
 * linearizable reads). Its answer waits until the local state applied the txn's revision.
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Etcd3 } from "etcd3";
import type { LeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode } from "../host/etcd/index.js"; // → lease-core/etcd when bundled

/** What the service hands the group mode (its etcd client for cas, its answer writer, its latencies). */
export interface GroupServiceContext {
  core: LeaseCore;
  id: string;
  endpoints: string[];
  prefix: string;
  ttlS: number;
  etcdElectionTimeoutMs: number;
  groupCount: number;
  etcd: Etcd3;
  send(res: ServerResponse, status: number, body: unknown): void;
  latency: Record<"local" | "etcd" | "write", { add(ns: number): void }>;
  onEvent(reason: string, detail?: string): void;
}

const deadline = (ms: number) => ({ deadline: new Date(Date.now() + ms) });

/** The group key of `g` under `prefix` (5-digit zero-padded decimal, docs/etcd.md). */
export function groupKey(prefix: string, g: number): string {
  return `${prefix}/g/${String(g).padStart(5, "0")}`;
}

/** An error's code, whatever was thrown. */
function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

/** Refusals that say this node does not (or no longer) lead the group: nothing applied. */
function isNotLeader(code: string | undefined): boolean {
  return code === "ERR_LEASE_NOT_GROUP_LEADER" || code === "ERR_LEASE_NOT_LEADER" || code === "ERR_LEASE_LEADERSHIP_LOST";
}

/**
 * The service's own guard for its compare-and-set txns, which bypass the engine's write path
 * (and so its own-write floor and unknown-outcome flag, docs/etcd.md §4): per group, a read
 * that begins while one of our cas txns on the group is in flight (sent, no answer yet), after
 * one ended without an answer (it may have committed), or while the local copy is behind one
 * that committed, is not served locally: it goes through etcd (`readLinearizable`: a
 * linearizable read, then the local copy at or past it), and the first such read begun after an
 * unknown outcome clears it. Without it, the lagging local copy answers a value that a
 * committed cas already replaced (seen: nemesis --groups 64 --faults group-key-delete, seed 100,
 * a cas of unknown outcome at 7.2 s read via etcd elsewhere at 8.9 s, and the old value read
 * locally on the cas's node at 11.7 s).
 */
class CasGuard {
  readonly inflight = new Map<number, number>();
  /** Groups with a cas of unknown outcome, and the sequence number of the last one. */
  readonly unknown = new Map<number, number>();
  /** Groups whose local copy must reach this revision (a cas committed there) before a local read. */
  readonly floor = new Map<number, bigint>();
  #seq = 0;

  mustAsk(g: number, applied: bigint): boolean {
    return (this.inflight.get(g) ?? 0) > 0 || this.unknown.has(g) || (this.floor.get(g) ?? 0n) > applied;
  }
  begin(g: number): void {
    this.inflight.set(g, (this.inflight.get(g) ?? 0) + 1);
  }
  end(g: number): void {
    const n = (this.inflight.get(g) ?? 1) - 1;
    if (n > 0) this.inflight.set(g, n);
    else this.inflight.delete(g);
  }
  markUnknown(g: number): void {
    this.unknown.set(g, ++this.#seq);
  }
  /** A snapshot taken before a linearizable read; `cleared` after it caught up. */
  snapshot(g: number): number | undefined {
    return this.unknown.get(g);
  }
  cleared(g: number, seenSeq: number | undefined, applied: bigint): void {
    if (seenSeq !== undefined && this.unknown.get(g) === seenSeq) this.unknown.delete(g);
    if ((this.floor.get(g) ?? 0n) <= applied) this.floor.delete(g);
  }
  raiseFloor(g: number, revision: bigint): void {
    if (revision > (this.floor.get(g) ?? 0n)) this.floor.set(g, revision);
  }
}

export class GroupService {
  node: EtcdGroupNode;
  /** Set while the node is being closed: requests are refused (503) before they reach it. */
  closing = false;
  readonly #cas = new CasGuard();

  constructor(readonly ctx: GroupServiceContext) {
    this.node = this.#make();
  }

  #make(): EtcdGroupNode {
    const c = this.ctx;
    return createEtcdGroupNode({
      core: c.core,
      id: c.id,
      endpoints: c.endpoints,
      prefix: c.prefix,
      ttlS: c.ttlS,
      etcdElectionTimeoutMs: c.etcdElectionTimeoutMs,
      requestTimeoutMs: 500,
      groupCount: c.groupCount,
      // 64 groups per campaign txn (the figure): etcd 3.4.23 refuses a txn of 126 or
      // more nested txns of 3 ops ("too many operations in txn request"), below its
      // --max-txn-ops of 128.
      maxTxnOps: 64,
      onEvent: (e) => c.onEvent(e.reason, e.detail),
    });
  }

  start(): Promise<void> {
    return this.node.start();
  }

  /** The node's status plus what the dashboard and the nemesis read: serving and led counts. */
  status(): Record<string, unknown> {
    const st = this.node.status();
    return { ...st, mode: "groups", state: st.serving > 0 ? "leader" : "follower", leaderId: null, leaderCreateRevision: "0" };
  }

  /** GET /groups: the groups this node serves, and how many groups the local copy shows each node leading. */
  groups(): Record<string, unknown> {
    const leaders: Record<string, number> = {};
    let unled = 0;
    for (let g = 0; g < this.ctx.groupCount; g++) {
      const l = this.node.leaderOf(g);
      if (l === null) unled++;
      else leaders[l] = (leaders[l] ?? 0) + 1;
    }
    return { id: this.ctx.id, groupCount: this.ctx.groupCount, led: this.node.ledGroups(), leaders, unled };
  }

  /** A 503 redirect naming the group's leader in the local copy (null: none known). */
  #redirect(res: ServerResponse, key: string, err?: unknown): void {
    const group = this.node.groupOf(key);
    const fromErr = (err as { leaderId?: string | null } | undefined)?.leaderId;
    const leader = fromErr !== undefined ? fromErr : this.node.leaderOf(group);
    this.ctx.send(res, 503, { error: "not-leader", leader, group, message: (err as Error | undefined)?.message ?? "closing" });
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, key: string): Promise<void> {
    const { send, latency } = this.ctx;
    if (this.closing) return this.#redirect(res, key);
    const node = this.node;
    if (req.method === "POST" && (url.searchParams.has("expected") || url.searchParams.get("absent") === "1")) {
      return this.#compareAndSet(res, node, key, url.searchParams.get("absent") === "1" ? null : url.searchParams.get("expected"), url.searchParams.get("value") ?? "");
    }
    if (req.method === "GET") {
      const t0 = process.hrtime.bigint();
      try {
        const r = await this.#read(node, key, url.searchParams.get("consistency") === "linearizable");
        latency[r.served].add(Number(process.hrtime.bigint() - t0));
        return send(res, 200, r);
      } catch (err) {
        if (isNotLeader(codeOf(err))) return this.#redirect(res, key, err);
        return send(res, 500, { error: "failed", message: (err as Error).message });
      }
    }
    if (req.method === "POST") {
      const t0 = process.hrtime.bigint();
      try {
        const r = await node.write(key, url.searchParams.get("value") ?? "");
        latency.write.add(Number(process.hrtime.bigint() - t0));
        return send(res, 200, r);
      } catch (err) {
        // Not leader before anything was sent, or the fence answered (the txn did not apply):
        // a definite failure. Anything else after the txn was sent is of unknown outcome.
        if (isNotLeader(codeOf(err))) return this.#redirect(res, key, err);
        return send(res, 500, { error: "failed", unknown: true, message: (err as Error).message });
      }
    }
    return send(res, 405, { error: "method" });
  }

  /** A read of `key`: the engine's (a lease read on the group's leader, NotGroupLeaderError
   *  elsewhere), or through etcd when asked or when our own cas txns say the local copy may be
   *  behind (CasGuard). A read through etcd on a node that does not lead the group redirects
   *  like a lease read would, except when the client asked for it (any node answers those). */
  async #read(node: EtcdGroupNode, key: string, linearizable: boolean) {
    const g = node.groupOf(key);
    const ask = this.#cas.mustAsk(g, BigInt(node.status().appliedRevision));
    if (!linearizable && !ask) return node.read(key);
    if (!linearizable && !node.ledGroups().includes(g)) return node.read(key); // throws NotGroupLeaderError
    const seen = this.#cas.snapshot(g);
    const r = await node.readLinearizable(key);
    this.#cas.cleared(g, seen, r.revision);
    return r;
  }

  /** Whether the node's local state reaches `revision` within 2 s (polled). */
  async #appliedBy(node: EtcdGroupNode, revision: bigint): Promise<boolean> {
    const until = performance.now() + 2000;
    while (BigInt(node.status().appliedRevision) < revision) {
      if (performance.now() > until) return false;
      await new Promise((r) => setTimeout(r, 2));
    }
    return true;
  }

  async #compareAndSet(res: ServerResponse, node: EtcdGroupNode, key: string, expected: string | null, value: string): Promise<void> {
    const { send, etcd, prefix, latency } = this.ctx;
    const t0 = process.hrtime.bigint();
    const g = node.groupOf(key);
    let read;
    try {
      read = await this.#read(node, key, false);
    } catch (err) {
      // Nothing written yet: whatever failed, the cas did not apply.
      if (isNotLeader(codeOf(err))) return this.#redirect(res, key, err);
      return send(res, 503, { error: "read-failed", message: (err as Error).message, leader: null, group: g });
    }
    if (read.value !== expected) return send(res, 200, { ok: false, value: read.value, served: read.served });
    // The group's epoch (its key's create revision) as this node won it; 0: not leading now.
    const epoch = node.group(g).currentTerm?.() ?? 0n;
    if (epoch === 0n) return this.#redirect(res, key);
    const gk = Buffer.from(groupKey(prefix, g));
    const dk = Buffer.from(`${prefix}/d/${key}`);
    let txn;
    this.#cas.begin(g);
    try {
      txn = await etcd.kv.txn(
        {
          compare: [
            { key: gk, target: "Create", result: "Equal", create_revision: epoch.toString() },
            // Not modified since the state the read saw (an absent key compares as mod 0).
            { key: dk, target: "Mod", result: "Less", mod_revision: (read.revision + 1n).toString() },
          ],
          // The meta key `<prefix>/d/` too, as every engine write: it is the catch-up target of
          // every linearizable read (docs/etcd.md §4), which must cover this write.
          success: [{ request_put: { key: dk, value: Buffer.from(value) } }, { request_put: { key: Buffer.from(`${prefix}/d/`), value: Buffer.from(this.ctx.id) } }],
          failure: [{ request_range: { key: gk } }],
        },
        deadline(500),
      );
    } catch (err) {
      this.#cas.markUnknown(g); // it may have committed: no local read of g until etcd is asked
      return send(res, 500, { error: "failed", unknown: true, message: String(err) });
    } finally {
      this.#cas.end(g);
    }
    if (!txn.succeeded) {
      const holder = txn.responses[0]?.response_range.kvs[0];
      if (holder === undefined || BigInt(holder.create_revision) !== epoch) return send(res, 503, { error: "not-leader", leader: holder?.value.toString() ?? null, group: g });
      // The key changed after our read: answer with what a read of ours sees once the local
      // state holds the txn's revision (never etcd's value: no read of the service sees it yet).
      if (!(await this.#appliedBy(node, BigInt(txn.header.revision)))) return send(res, 503, { error: "not-applied", message: "not applied; the local state did not catch up within 2 s", leader: null, group: g });
      try {
        const again = await this.#read(node, key, false);
        return send(res, 200, { ok: false, value: again.value, served: again.served });
      } catch (err) {
        if (isNotLeader(codeOf(err))) return this.#redirect(res, key, err);
        return send(res, 503, { error: "read-failed", message: (err as Error).message, leader: null, group: g });
      }
    }
    const revision = BigInt(txn.header.revision);
    this.#cas.raiseFloor(g, revision);
    if (!(await this.#appliedBy(node, revision))) return send(res, 500, { error: "failed", unknown: true, message: "applied, but not seen locally within 2 s" });
    latency.write.add(Number(process.hrtime.bigint() - t0));
    return send(res, 200, { ok: true, revision });
  }

  /** A clean leave and rejoin: close() hands every group off (resign markers), a new node
   *  registers and gets its groups back by rendezvous. True if it served any group. */
  async resign(stopping: () => boolean): Promise<boolean> {
    if (this.node.ledGroups().length === 0 || stopping()) return false;
    this.closing = true;
    await this.node.close();
    if (stopping()) return true;
    this.node = this.#make();
    this.closing = false;
    await this.node.start();
    return true;
  }

  close(): Promise<void> {
    this.closing = true;
    return this.node.close();
  }
}
