/**
 * One instance of the demo's key-value service: its own process, an `EtcdLeaseNode` from
 * `lease-core/etcd`, and a small HTTP API on 127.0.0.1. Only the leader answers; followers
 * refuse with 503 and name the leader (the load generator follows).
 *
 *   GET  /kv?key=K          → 200 {value, served: "local"|"etcd", reason, revision}
 *   POST /kv?key=K&value=V  → 200 {revision} | 503 {error: "not-leader"} (nothing was sent)
 *                             | 500 {error, unknown: true} (the outcome is unknown)
 *   GET  /status            → the node's status, its clock, and latency percentiles per kind
 *
 * Configured by environment (the demo and the tests spawn it): KV_ID, KV_ENDPOINTS (comma
 * separated), KV_PREFIX, KV_PORT (0: any), KV_TTL_S, KV_ETCD_ELECTION_MS, and the test-only
 * KV_UNSAFE (comma separated: skip-confirmation, anchor-receive, ignore-own-key,
 * margin=<ns>). In the test build (build/unsafe/kv-service.js) only, LEASE_CORE_UNSAFE=demo-stale-read
 * answers some reads with an overwritten value (the demo's negative control). Prints one JSON
 * line `{"ready":true,"port":N,"pid":P}` on stdout when listening.
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createLeaseCore } from "lease-core";
import { createEtcdLeaseNode, type EtcdUnsafeSwitches } from "../host/etcd/index.js"; // → lease-core/etcd when bundled

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

const core = await createLeaseCore();
const node = createEtcdLeaseNode({
  core,
  id,
  endpoints: (env.KV_ENDPOINTS ?? "").split(",").filter(Boolean),
  prefix: env.KV_PREFIX ?? "/lease-core-demo",
  ttlS: Number(env.KV_TTL_S ?? "2"),
  etcdElectionTimeoutMs: Number(env.KV_ETCD_ELECTION_MS ?? "300"),
  requestTimeoutMs: 500,
  unsafe,
  onEvent: (e) => {
    if (env.KV_LOG_EVENTS) process.stderr.write(`${id} ${e.reason}${e.detail ? ` ${e.detail}` : ""}\n`);
  },
});

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
      ...node.status(),
      pid: process.pid,
      clock: core.clock,
      latency: { local: latency.local.percentiles(), etcd: latency.etcd.percentiles(), write: latency.write.percentiles() },
    });
  }
  if (url.pathname !== "/kv" || key.length === 0) return send(res, 404, { error: "not-found" });
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

const server = createServer((req, res) => {
  handle(req, res).catch((err) => send(res, 500, { error: "failed", unknown: true, message: String(err) }));
});
server.keepAliveTimeout = 30_000;

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections();
  await node.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown());
process.on("SIGINT", () => void shutdown());
// The parent's death closes our stdin: exit with it rather than linger as an orphan.
process.stdin.on("end", () => void shutdown());
process.stdin.resume();

await node.start();
server.listen(Number(env.KV_PORT ?? "0"), "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ ready: true, port, pid: process.pid, id })}\n`);
});
