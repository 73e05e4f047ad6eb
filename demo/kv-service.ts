/**
 * One instance of the demo's key-value service: its own process, an `EtcdLeaseNode` from
 * `lease-core/etcd`, and a small HTTP API on 127.0.0.1. Only the leader answers; followers
 * refuse with 503 and name the leader (the load generator follows).
 *
 *   GET  /kv?key=K          → 200 {value, served: "local"|"etcd", reason, revision}
 *   POST /kv?key=K&value=V  → 200 {revision} | 503 {error: "not-leader"} (nothing was sent)
 *                             | 500 {error, unknown: true} (the outcome is unknown)
 *   POST /kv?key=K&value=V&expected=E (or &absent=1: expect no value)
 *                           → compare-and-set: 200 {ok: true, revision} (applied) |
 *                             200 {ok: false, value} (not applied: the value was `value`) |
 *                             503 (not leader, or its read failed: not applied) | 500 {unknown: true}
 *   GET  /status            → the node's status, its clock, and latency percentiles per kind
 *
 * For the nemesis (demo/nemesis.ts), when KV_CLOCK_FAULTS=1 (the lease clock is then a
 * FaultClock, demo/fault-clock.ts):
 *   POST /clock?fault=step-back|jump-forward|freeze|suspend&ms=N → 200 {nowNs} | 400 {error}
 *   POST /resign            → a leader resigning: the node is closed (it stops serving, then
 *                             deletes its leader key: `close()`), with the requests in flight
 *                             still answered, and a new node is started in its place, which
 *                             campaigns like any other → 200 {resigned}
 *
 * Compare-and-set is the service's, over the engine's public API: the value is read the engine's
 * way (a lease read, or its linearizable fallback); if it differs, the answer is that value (the
 * read is the cas's linearization point). If it matches, one etcd txn applies the new value,
 * fenced like the engine's writes on our leader key's create revision and guarded by the key's
 * mod revision not being past the revision the read saw (so nothing, not even a late write of
 * ours, came between); it also bumps the engine's revision marker `<prefix>/d/` as every engine
 * write does. Either answer waits until the local state has applied the txn's revision, and a
 * cas that found the key changed answers with the local value then, never with etcd's (a value
 * etcd holds before the leader applied it is not yet visible to any read of the service).
 *
 * Sharded mode (`KV_GROUPS=G`, or `--groups G` on the command line; docs/etcd.md "Many groups on
 * one lease"): the service runs an `EtcdGroupNode` leading some of G shard groups, and a key's
 * read, write or compare-and-set is answered only by the node that leads and serves the key's
 * group (`groupOfKey`). Any other node answers 503 {error: "not-leader", leader, group} without
 * sending anything: a REDIRECT the client follows (it knows every service's address; the
 * services know only each other's node ids). Not a forward, because: the answer must come from
 * the one node whose own lease proof covers the group at the instant of the read, and a relay
 * adds nothing to that but a second hop whose loss turns a definite refusal (nothing sent) into
 * an unknown outcome. `GET /groups` lists the groups this node serves and who the local copy
 * says leads each group; /status adds `mode: "groups"` and `state` "leader" iff it serves any.
 *
 * Configured by environment (the demo and the tests spawn it): KV_ID, KV_ENDPOINTS (comma
 * separated), KV_PREFIX, KV_PORT (0: any), KV_TTL_S, KV_ETCD_ELECTION_MS, KV_CLOCK_FAULTS, KV_GROUPS, and
 * the test-only KV_UNSAFE (comma separated: skip-confirmation, anchor-receive, ignore-own-key,
 * margin=<ns>). In the test build (build/unsafe/kv-service.js) only, LEASE_CORE_UNSAFE=demo-stale-read
 * answers some reads with an overwritten value (the demo's negative control). Prints one JSON line `{"ready":true,"port":N,"pid":P}` on stdout when listening.
 * SIGTERM (or stdin closing) shuts down gracefully: no new requests, the node closed while the
 * requests in flight are still answered (as a rolling restart does), then exit.
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Etcd3 } from "etcd3";
import { createLeaseCore } from "lease-core";
import { ClockFaultError, FaultClock, type ClockFaultKind } from "./fault-clock.js";
import { createEtcdLeaseNode, type EtcdLeaseNode, type EtcdUnsafeSwitches } from "../host/etcd/index.js"; // → lease-core/etcd when bundled
import { GroupService } from "./kv-groups.js";

const env = process.env;
const id = env.KV_ID ?? `kv-${process.pid}`;
const unsafe: EtcdUnsafeSwitches = {};
for (const item of (env.KV_UNSAFE ?? "").split(",").filter(Boolean)) {
  if (item === "skip-confirmation") unsafe.skipConfirmation = true;
  else if (item === "anchor-receive") unsafe.anchorOnReceive = true;
  else if (item === "ignore-own-key") unsafe.ignoreOwnKeyWatch = true;
  else if (item.startsWith("margin=")) unsafe.marginNs = BigInt(item.slice(7));
  else throw new Error(`KV_UNSAFE: unknown switch ${item}`);
}

// Sharded mode: G groups (KV_GROUPS or --groups), 0 = the single-leader engine.
const groupsArg = process.argv.indexOf("--groups");
const groupCount = Number(groupsArg >= 0 ? process.argv[groupsArg + 1] : (env.KV_GROUPS ?? "0"));
if (!Number.isInteger(groupCount) || groupCount < 0 || groupCount > 65536) throw new Error(`KV_GROUPS / --groups: an integer in [0, 65536], got ${String(groupCount)}`);
const sharded = groupCount > 0;

// The fault clock reads a default core's lease clock as its true time (raw+sleep on Node).
const clockFaults = env.KV_CLOCK_FAULTS === "1";
const trueCore = clockFaults ? await createLeaseCore() : undefined;
const faultClock = trueCore === undefined ? undefined : new FaultClock(() => trueCore.now(), trueCore.clock);
// A group node needs one lease slot per group (docs/etcd.md "Many groups on one lease").
const core = await createLeaseCore({ ...(faultClock === undefined ? {} : { clock: faultClock }), ...(sharded ? { maxLeases: Math.max(4096, groupCount) } : {}) });
const endpoints = (env.KV_ENDPOINTS ?? "").split(",").filter(Boolean);
const prefix = env.KV_PREFIX ?? "/lease-core-demo";
const makeNode = () => createEtcdLeaseNode({
  core,
  id,
  endpoints,
  prefix,
  ttlS: Number(env.KV_TTL_S ?? "2"),
  etcdElectionTimeoutMs: Number(env.KV_ETCD_ELECTION_MS ?? "300"),
  requestTimeoutMs: 500,
  unsafe,
  onEvent: (e) => {
    if (env.KV_LOG_EVENTS) process.stderr.write(`${id} ${e.reason}${e.detail ? ` ${e.detail}` : ""}\n`);
  },
});
/** The node serving now; /resign replaces it (the old one closed, a new one started). Unused
 *  (never started) in sharded mode, where `groups` serves. */
let node = (sharded ? undefined : makeNode()) as EtcdLeaseNode;
/** Set while `node` is being closed: new requests are refused (503) without reaching it. */
let closingNode = false;

/** A ring of the last 4096 latencies (ns) per kind. */
class Latencies {
  readonly #ring = new Float64Array(4096);
  #n = 0;
  add(ns: number): void {
    this.#ring[this.#n++ % this.#ring.length] = ns;
  }
  get count(): number {
    return this.#n;
  }
  percentiles(): { p50Us: number; p99Us: number; count: number } {
    const n = Math.min(this.#n, this.#ring.length);
    if (n === 0) return { p50Us: 0, p99Us: 0, count: 0 };
    const sorted = this.#ring.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]! / 1000;
    return { p50Us: at(0.5), p99Us: at(0.99), count: this.#n };
  }
}
const latency = { local: new Latencies(), etcd: new Latencies(), write: new Latencies() };

/** Test build only (the demo's negative control): the last two values this instance wrote per
 *  key, so a read can answer the older one: a stale read the checker must catch. */
const staleWrites = new Map<string, { older: string; newer: string; ackedAtMs: number }>();
let staleReads = 0;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(text);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const key = url.searchParams.get("key") ?? "";
  if (url.pathname === "/status") {
    return send(res, 200, {
      ...(groups === undefined ? node.status() : groups.status()),
      pid: process.pid,
      clock: core.clock,
      latency: { local: latency.local.percentiles(), etcd: latency.etcd.percentiles(), write: latency.write.percentiles() },
    });
  }
  if (url.pathname === "/clock" && req.method === "POST") {
    if (faultClock === undefined) return send(res, 404, { error: "clock faults are off (KV_CLOCK_FAULTS=1)" });
    try {
      const nowNs = faultClock.inject(url.searchParams.get("fault") as ClockFaultKind, Number(url.searchParams.get("ms")));
      return send(res, 200, { nowNs, counts: faultClock.counts });
    } catch (err) {
      if (err instanceof ClockFaultError) return send(res, 400, { error: err.code, message: err.message });
      throw err;
    }
  }
  if (url.pathname === "/resign" && req.method === "POST") return send(res, 200, { resigned: groups === undefined ? await resign() : await groups.resign(() => stopping) });
  if (groups !== undefined && url.pathname === "/groups") return send(res, 200, groups.groups());
  if (url.pathname !== "/kv" || key.length === 0) return send(res, 404, { error: "not-found" });
  if (groups !== undefined) return groups.handle(req, res, url, key);
  // While the node is being closed (a resign, a shutdown), new requests are refused before they
  // reach it: nothing is sent, so a refused write is a definite failure, not an unknown one.
  if (closingNode) return send(res, 503, { error: "not-leader", message: "closing", leader: null });
  if (req.method === "POST" && (url.searchParams.has("expected") || url.searchParams.get("absent") === "1")) {
    return compareAndSet(res, key, url.searchParams.get("absent") === "1" ? null : url.searchParams.get("expected"), url.searchParams.get("value") ?? "");
  }
  if (req.method === "GET") {
    if (__UNSAFE_DEMO_STALE_READ__) {
      // Every 10th read of a key this instance overwrote more than 50 ms ago answers the value
      // before the overwrite: the write returned before this read was sent, so no order fits.
      const w = staleWrites.get(key);
      if (w !== undefined && performance.now() - w.ackedAtMs > 50 && ++staleReads % 10 === 0) return send(res, 200, { value: w.older, served: "local", reason: "unsafe-demo-stale-read" });
    }
    const t0 = process.hrtime.bigint();
    try {
      const r = url.searchParams.get("consistency") === "linearizable" ? await node.readLinearizable(key) : await node.read(key);
      latency[r.served].add(Number(process.hrtime.bigint() - t0));
      return send(res, 200, r);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const notLeader = e.code === "ERR_LEASE_NOT_LEADER" || e.code === "ERR_LEASE_LEADERSHIP_LOST";
      return send(res, notLeader ? 503 : 500, { error: notLeader ? "not-leader" : "failed", message: e.message, leader: node.status().leaderId });
    }
  }
  if (req.method === "POST") {
    const value = url.searchParams.get("value") ?? "";
    const t0 = process.hrtime.bigint();
    try {
      const r = await node.write(key, value);
      latency.write.add(Number(process.hrtime.bigint() - t0));
      if (__UNSAFE_DEMO_STALE_READ__) {
        const w = staleWrites.get(key);
        if (w !== undefined || staleWrites.size < 10_000) staleWrites.set(key, { older: w?.newer ?? value, newer: value, ackedAtMs: performance.now() });
      }
      return send(res, 200, r);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      // Not leader before anything was sent: a definite failure. Anything after the txn was
      // sent (unknown outcome, fence failure observed late...) is reported as unknown unless
      // the fence check itself answered (LeadershipLost: the txn did not apply).
      if (e.code === "ERR_LEASE_NOT_LEADER" || e.code === "ERR_LEASE_LEADERSHIP_LOST") return send(res, 503, { error: "not-leader", message: e.message, leader: node.status().leaderId });
      const unknown = e.code === "ERR_LEASE_ETCD_UNKNOWN_OUTCOME" || e.code === "ERR_LEASE_ETCD_TIMEOUT";
      return send(res, 500, { error: "failed", unknown, message: e.message });
    }
  }
  return send(res, 405, { error: "method" });
}

// The service's own etcd client, for compare-and-set (same endpoints as the node), with no
// retries and no circuit breaker, as the engine's: etcd3's default policy retries a failed call,
// and a txn retried after it applied would answer "not applied" (and a breaker opened by a
// fault would refuse calls long after it).
const NOOP_POLICY = {
  execute: <T>(fn: (context: { signal: AbortSignal }) => T | Promise<T>): Promise<T> => Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
};
const etcd = new Etcd3({ hosts: endpoints, faultHandling: { host: () => NOOP_POLICY as never, global: NOOP_POLICY as never } });
/** Sharded mode's node and its answers (demo/kv-groups.ts). */
const groups = sharded
  ? new GroupService({
    core, id, endpoints, prefix, groupCount, etcd, send, latency,
    ttlS: Number(env.KV_TTL_S ?? "2"),
    etcdElectionTimeoutMs: Number(env.KV_ETCD_ELECTION_MS ?? "300"),
    onEvent: (reason, detail) => {
      if (env.KV_LOG_EVENTS) process.stderr.write(`${id} ${reason}${detail ? ` ${detail}` : ""}\n`);
    },
  })
  : undefined;
const leaderKey = Buffer.from(`${prefix}/leader`);
const metaKey = Buffer.from(`${prefix}/d/`); // the engine's revision marker (every write bumps it)
const dataKey = (key: string) => Buffer.from(`${prefix}/d/${key}`);
const deadline = (ms: number) => ({ deadline: new Date(Date.now() + ms) });

/** Whether `n`'s local state reaches `revision` within 2 s (polled: the engine has no public wait). */
async function appliedBy(n: typeof node, revision: bigint): Promise<boolean> {
  const until = performance.now() + 2000;
  while (BigInt(n.status().appliedRevision) < revision) {
    if (performance.now() > until) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
}

async function compareAndSet(res: ServerResponse, key: string, expected: string | null, value: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  const node0 = node; // one node from the read to the answer (a resign replaces `node`)
  let read;
  try {
    read = await node0.read(key);
  } catch (err) {
    // Nothing was written yet: whatever failed, the cas did not apply.
    const e = err as { code?: string; message?: string };
    const notLeader = e.code === "ERR_LEASE_NOT_LEADER" || e.code === "ERR_LEASE_LEADERSHIP_LOST";
    return send(res, 503, { error: notLeader ? "not-leader" : "read-failed", message: e.message, leader: node0.status().leaderId });
  }
  if (read.value !== expected) return send(res, 200, { ok: false, value: read.value, served: read.served });
  const createRevision = node0.status().leaderCreateRevision;
  if (createRevision === 0n) return send(res, 503, { error: "not-leader", leader: node0.status().leaderId });
  let txn;
  try {
    txn = await etcd.kv.txn(
      {
        compare: [
          { key: leaderKey, target: "Create", result: "Equal", create_revision: createRevision.toString() },
          // Not modified since the state the read saw (an absent key compares as mod 0).
          { key: dataKey(key), target: "Mod", result: "Less", mod_revision: (read.revision + 1n).toString() },
        ],
        success: [{ request_put: { key: dataKey(key), value: Buffer.from(value) } }, { request_put: { key: metaKey, value: Buffer.from(id) } }],
        failure: [{ request_range: { key: leaderKey } }, { request_range: { key: dataKey(key) } }],
      },
      deadline(500),
    );
  } catch (err) {
    return send(res, 500, { error: "failed", unknown: true, message: String(err) });
  }
  if (!txn.succeeded) {
    const leader = txn.responses[0]?.response_range.kvs[0];
    if (leader === undefined || BigInt(leader.create_revision) !== createRevision) return send(res, 503, { error: "not-leader", leader: leader?.value.toString() ?? null });
    // The key changed after the state our read saw. Answer with the value the LOCAL state has
    // once it holds the txn's revision, never with etcd's: the engine's order is the order its
    // local state applies writes in (a write is visible once the leader applied it), and a value
    // taken from etcd ahead of that would be a view no read of this service can have yet.
    if (!(await appliedBy(node0, BigInt(txn.header.revision)))) return send(res, 503, { error: "not-applied", message: "not applied; the local state did not catch up within 2 s" });
    return send(res, 200, { ok: false, value: node0.peek(key), served: "local" });
  }
  // Answer once the local state holds it, as the engine's write does (read-your-writes).
  const revision = BigInt(txn.header.revision);
  if (!(await appliedBy(node0, revision))) return send(res, 500, { error: "failed", unknown: true, message: "applied, but not seen locally within 2 s" });
  latency.write.add(Number(process.hrtime.bigint() - t0));
  return send(res, 200, { ok: true, revision });
}

/** Resigns if this node leads: close() (which stops serving, then deletes our leader key) and
 *  a new node in its place. Deleting the key behind the node's back would not be a resign: the
 *  node would go on serving under its lease while another one takes over. */
async function resign(): Promise<boolean> {
  const old = node;
  if (old.status().state !== "leader" || stopping) return false;
  closingNode = true;
  await old.close();
  if (stopping) return true;
  node = makeNode();
  closingNode = false;
  await node.start();
  return true;
}

const inFlight = new Set<Promise<void>>();
const server = createServer((req, res) => {
  const p = handle(req, res).catch((err) => send(res, 500, { error: "failed", unknown: true, message: String(err) }));
  inFlight.add(p);
  void p.finally(() => inFlight.delete(p));
});
server.keepAliveTimeout = 30_000;

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  closingNode = true;
  server.close(); // no new connections
  server.closeIdleConnections();
  // The node closes while the requests in flight are still being answered (a rolling restart):
  // whatever they answer after close() reaches their clients.
  await (groups === undefined ? node.close() : groups.close());
  await Promise.race([Promise.all([...inFlight]), new Promise((r) => setTimeout(r, 1000))]);
  server.closeAllConnections();
  etcd.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown());
process.on("SIGINT", () => void shutdown());
// The parent's death closes our stdin: exit with it rather than linger as an orphan.
process.stdin.on("end", () => void shutdown());
process.stdin.resume();

await (groups === undefined ? node.start() : groups.start());
server.listen(Number(env.KV_PORT ?? "0"), "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ ready: true, port, pid: process.pid, id })}\n`);
});
