/**
 * `npm start`: the demo. A local 3-member etcd cluster on loopback, 3 KV service processes using
 * `lease-core/etcd`, a load generator recording every operation, and a dashboard on
 * http://127.0.0.1:<port>/ showing who leads, each lease's remaining time, each instance's
 * clock, reads served locally vs through etcd with p50/p99, the linearizability verdict of the
 * history so far, and buttons that inject faults. Runs until Ctrl-C, then stops every process
 * it started and removes its temp dir.
 *
 * Bounded mode (CI): `DEMO_DURATION_S=N` (or `--duration N`) runs N seconds of load with one
 * leader pause in the middle, prints a summary and exits 0 iff the history is linearizable.
 * `DEMO_PORT` (or `--port`) fixes the dashboard port (default: any free port).
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { EtcdMissingError, canIsolate } from "./cluster.js";
import { Demo, percentile, type RecordedOp } from "./harness.js";
import { DASHBOARD_HTML } from "./page.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const durationS = Number(arg("duration") ?? process.env.DEMO_DURATION_S ?? "0");
const port = Number(arg("port") ?? process.env.DEMO_PORT ?? "0");
const PAUSE_MS = 3000;

interface FaultLog {
  atMs: number;
  kind: string;
  target: string;
  /** For a leader pause/kill: ms until another instance acknowledged a write. */
  failoverMs?: number;
}

let demo: Demo;
try {
  demo = await Demo.start({ instances: 3, ttlS: 2 });
} catch (err) {
  if (err instanceof EtcdMissingError) {
    console.error(`lease-core demo: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

const faults: FaultLog[] = [];
let verdict: { ok: boolean | "unknown"; key?: string; minimal?: RecordedOp[]; reason?: string; ops: number; checkedAtMs: number } = { ok: true, ops: 0, checkedAtMs: 0 };

function checkNow(): void {
  const ops = demo.history.length;
  const r = demo.check();
  verdict = { ...(r as object), ops, checkedAtMs: performance.now() } as typeof verdict;
}

/** Resolves to ms from `fromMs` to the first write acknowledged by an instance other than `oldId`. */
async function watchFailover(fault: FaultLog, oldId: string): Promise<void> {
  const deadline = fault.atMs + 30_000;
  while (performance.now() < deadline) {
    const op = demo.history.find((o) => o.kind === "write" && o.callAt >= fault.atMs && o.returnAt !== Infinity && o.servedBy !== null && o.servedBy !== oldId);
    if (op !== undefined) {
      fault.failoverMs = op.returnAt - fault.atMs;
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function inject(kind: string): Promise<FaultLog> {
  const leader = await demo.leaderIndex();
  const fault: FaultLog = { atMs: performance.now(), kind, target: "" };
  switch (kind) {
    case "pause-leader": {
      if (leader < 0) throw new Error("no leader to pause");
      const s = demo.services[leader]!;
      fault.target = s.id;
      demo.pauseService(leader);
      setTimeout(() => demo.resumeService(leader), PAUSE_MS);
      void watchFailover(fault, s.id);
      break;
    }
    case "kill-leader": {
      if (leader < 0) throw new Error("no leader to kill");
      const s = demo.services[leader]!;
      fault.target = s.id;
      demo.killService(leader);
      void watchFailover(fault, s.id);
      setTimeout(() => void demo.spawnService(leader).catch(() => undefined), 1500);
      break;
    }
    case "kill-etcd-leader": {
      const i = await demo.cluster.leaderIndex();
      if (i < 0) throw new Error("no etcd leader");
      fault.target = demo.cluster.members[i]!.name;
      demo.cluster.kill(i);
      setTimeout(() => demo.cluster.restart(i), 3000);
      break;
    }
    case "isolate-etcd-leader": {
      const i = await demo.cluster.leaderIndex();
      if (i < 0) throw new Error("no etcd leader");
      fault.target = demo.cluster.members[i]!.name;
      demo.cluster.isolate(i);
      setTimeout(() => demo.cluster.heal(), 4000);
      break;
    }
    default:
      throw new Error(`unknown fault ${kind}`);
  }
  faults.push(fault);
  return fault;
}

function stats() {
  const local = demo.history.filter((o) => o.kind === "read" && o.served === "local").map((o) => o.returnAt - o.callAt);
  const etcd = demo.history.filter((o) => o.kind === "read" && o.served === "etcd").map((o) => o.returnAt - o.callAt);
  const writes = demo.history.filter((o) => o.kind === "write" && o.returnAt !== Infinity).map((o) => o.returnAt - o.callAt);
  return {
    ops: demo.history.length,
    clientMs: {
      local: { count: local.length, p50: percentile(local, 0.5), p99: percentile(local, 0.99) },
      etcd: { count: etcd.length, p50: percentile(etcd, 0.5), p99: percentile(etcd, 0.99) },
      write: { count: writes.length, p50: percentile(writes, 0.5), p99: percentile(writes, 0.99) },
    },
  };
}

async function state() {
  const [instances, members] = await Promise.all([demo.refresh(), demo.cluster.status()]);
  return {
    uptimeMs: performance.now() - demo.startedAtMs,
    instances: demo.services.map((s, i) => ({ id: s.id, pid: s.pid, alive: s.alive, paused: s.paused, status: instances[i] })),
    members: members.map((m, i) => ({ ...m, paused: demo.cluster.members[i]!.paused, isolated: demo.cluster.members[i]!.isolated })),
    canIsolate: canIsolate(),
    verdict: { ok: verdict.ok, ops: verdict.ops, key: verdict.key, reason: verdict.reason, minimal: verdict.minimal?.slice(0, 12) },
    faults,
    ...stats(),
  };
}

function send(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(typeof body === "string" ? body : JSON.stringify(body, (_k, v) => (v === Infinity ? null : v)));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  if (url.pathname === "/") return send(res, 200, DASHBOARD_HTML, "text/html; charset=utf-8");
  if (url.pathname === "/api/state") return send(res, 200, await state());
  if (url.pathname === "/api/fault" && req.method === "POST") {
    try {
      return send(res, 200, await inject(url.searchParams.get("kind") ?? ""));
    } catch (err) {
      return send(res, 409, { error: String((err as Error).message) });
    }
  }
  return send(res, 404, { error: "not-found" });
}

const server = createServer((req, res) => void handle(req, res).catch((err) => send(res, 500, { error: String(err) })));
await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
const address = server.address();
const dashboardPort = typeof address === "object" && address !== null ? address.port : port;

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    clearInterval(checker);
    server.closeAllConnections();
    server.close();
    await demo.stop();
  }
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

demo.startLoad({ clients: 4, keys: 4, readRatio: 0.8 });
const checker = setInterval(checkNow, 2000);
console.log(`lease-core demo: dashboard on http://127.0.0.1:${dashboardPort}/  (etcd ${demo.cluster.clientEndpoints.join(", ")}; data in ${demo.cluster.dir})`);
console.log(durationS > 0 ? `bounded run: ${durationS} s, one leader pause at ${(durationS / 3).toFixed(1)} s` : "Ctrl-C to stop (every process started here is stopped)");

if (durationS > 0) {
  await new Promise((r) => setTimeout(r, (durationS * 1000) / 3));
  const pause = await inject("pause-leader");
  await new Promise((r) => setTimeout(r, (durationS * 2000) / 3));
  await demo.stopLoad();
  checkNow();
  const s = stats();
  const statuses = demo.lastStatuses;
  const summary = {
    ops: s.ops,
    verdict: verdict.ok,
    failedKey: verdict.key,
    failoverAfterPauseMs: pause.failoverMs ?? null,
    clientMs: s.clientMs,
    serviceUs: statuses.map((st) => (st === null ? null : { id: st.id, state: st.state, clock: st.clock.source, ...st.latency })),
  };
  console.log(JSON.stringify(summary, null, 2));
  if (verdict.ok !== true) console.error(`lease-core demo: history NOT linearizable (${verdict.ok === "unknown" ? verdict.reason : `key ${verdict.key}`})`);
  await stop(verdict.ok === true ? 0 : 1);
}
