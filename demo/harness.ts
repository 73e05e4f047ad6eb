/**
 * The demo's moving parts, shared by `npm start` (demo/start.ts) and the fault tests: an etcd
 * cluster (demo/cluster.ts), N KV service processes (demo/kv-service.ts), a load generator that
 * records every operation into a history on ONE clock (this process's performance.now(), ms),
 * and the linearizability verdict of that history (checkKvHistory, lease-core/testing).
 *
 * Recording rules (what the checker may assume): a read that failed is dropped (it had no
 * effect); a write refused before anything was sent (503 not-leader, connection refused) is
 * dropped; a write whose answer never came, or came as "unknown", is kept with
 * returnAt = Infinity: it may have applied, at any time after its call.
 *
 * Sharded mode (`groups: G`, `npm start -- --groups G`): every instance is a multi-group node
 * (demo/kv-groups.ts) answering only for the keys of groups it serves; the others redirect
 * (503 naming the group's leader). The load generator keeps a hint per key (the instance that
 * answered it, or the one a redirect named) and sends each op there; "the leader" of the faults
 * is the instance serving the most groups; ready means every group served.
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { checkKvHistory, type KvOp } from "../host/testing/index.js"; // → lease-core/testing when bundled
import { startEtcdCluster, type EtcdCluster, type EtcdClusterOptions } from "./cluster.js";

export type { KvOp };

export interface ServiceHandle {
  index: number;
  /** The uid the process runs as when this process is root (lets iptables cut it from etcd). */
  uid: number | undefined;
  id: string;
  port: number;
  pid: number;
  child: ChildProcess;
  alive: boolean;
  paused: boolean;
  unsafe: string;
}

export interface ServiceStatus {
  id: string;
  state: string;
  leaderId: string | null;
  leaderCreateRevision: string;
  appliedRevision: string;
  ttlNs: string;
  marginNs: string;
  leaseDurationNs: string;
  remainingNs: string;
  nowNs: string;
  lastTerm: string;
  counters: Record<string, number>;
  etcdVersions: Record<string, string>;
  revokeGuard: string;
  holdUntilNs: string;
  pid: number;
  clock: { source: string; raw: boolean; suspendAware: boolean; resolutionNs: string; mayFreeze: boolean };
  latency: Record<"local" | "etcd" | "write", { p50Us: number; p99Us: number; count: number }>;
  /** Sharded mode only (demo/kv-groups.ts): "groups", how many groups it holds the key of, how
   *  many of them it serves, G, and the live nodes it sees. */
  mode?: "groups";
  leading?: number;
  serving?: number;
  groupCount?: number;
  liveNodes?: string[];
}

/** One recorded op, with which instance answered (for failover measurements). */
export interface RecordedOp extends KvOp {
  servedBy: string | null;
  served?: "local" | "etcd";
}

export interface DemoOptions {
  instances?: number;
  ttlS?: number;
  etcd?: EtcdClusterOptions;
  /** KV_UNSAFE per instance index (test-only negative controls). */
  unsafe?: (index: number) => string;
  prefix?: string;
  /** Extra env per instance. */
  env?: (index: number) => Record<string, string>;
  /** Keep every recorded op in `history` (default true: the fault tests read it). The long
   *  running demo passes false and takes each op from `opListeners`, so memory stays bounded. */
  keepHistory?: boolean;
  /** Which KV service bundle to run: the published build/demo/kv-service.js (default), or the
   *  test build build/unsafe/kv-service.js, whose `__UNSAFE_*__` switches read `LEASE_CORE_UNSAFE`
   *  (set it with `unsafeSwitches`). Negative controls only. */
  serviceBuild?: "published" | "unsafe";
  /** LEASE_CORE_UNSAFE for the test build's processes (kebab-case names, comma separated). */
  unsafeSwitches?: string;
  /** Sharded mode: G shard groups (KV_GROUPS), each instance a multi-group node; 0 (default): one leader. */
  groups?: number;
}

/** Where the load generator takes each op's key from, and tells when that op is over (recorded
 *  or dropped). The demo's windows (demo/windows.ts) rotate keys through it. */
export interface KeySource {
  take(): string;
  done(key: string, op: RecordedOp | null): void;
}

export interface LoadOptions {
  clients?: number;
  /** How many keys (k0..k{n-1}, default 4), or a source of keys (rotating windows). */
  keys?: number | KeySource;
  readRatio?: number;
  /** Share of reads forced through etcd (to compare both kinds; default 0.1). */
  linearizableRatio?: number;
  /** Pause between ops per client (ms). */
  thinkMs?: number;
  /** Offered load, ops/s over all clients (paced, no catch-up bursts); default: as fast as
   *  answers come. A fixed rate keeps the demo's own CPU flat whatever else the machine runs. */
  ratePerS?: number;
  requestTimeoutMs?: number;
}

const here = dirname(fileURLToPath(import.meta.url));
// Bundled next to this file (build/demo/), or, when imported from source (the tests), there.
const SERVICE_JS = existsSync(join(here, "kv-service.js")) ? join(here, "kv-service.js") : join(here, "..", "build", "demo", "kv-service.js");
// The test build (scripts/build.mjs): build/unsafe/ beside build/demo/, or from source, build/unsafe/.
const UNSAFE_SERVICE_JS = existsSync(join(here, "..", "unsafe", "kv-service.js")) ? join(here, "..", "unsafe", "kv-service.js") : join(here, "..", "build", "unsafe", "kv-service.js");

/** One keep-alive pool for every request to the KV instances (load, status polls). */
const AGENT = new HttpAgent({ keepAlive: true, maxSockets: 64 });

/**
 * One HTTP request and its JSON body under one timeout (node:http with a keep-alive agent:
 * the demo sends hundreds a second, and fetch() allocates several times more per request).
 * Rejects on a timeout or a body that is not JSON; the caller then records no answer (a read is
 * dropped, a write counted as of unknown outcome), never one that was not seen. A refused
 * connection rejects with code ECONNREFUSED: nothing was sent.
 */
function fetchJson<T>(url: string, method: "GET" | "POST", timeoutMs: number): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    const req = httpRequest(url, { method, agent: AGENT }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", fail);
      res.on("end", () => {
        clearTimeout(timer);
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as T });
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { name: "TimeoutError" })), timeoutMs);
    req.on("error", fail);
    req.end();
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class Demo {
  readonly cluster: EtcdCluster;
  readonly services: ServiceHandle[] = [];
  readonly history: RecordedOp[] = [];
  /** Called with every recorded op (whether or not `history` keeps it). */
  readonly opListeners = new Set<(op: RecordedOp) => void>();
  readonly options: DemoOptions;
  readonly prefix: string;
  readonly startedAtMs = performance.now();
  lastStatuses: (ServiceStatus | null)[] = [];
  leaderHint = -1;
  /** Sharded mode: per key, the instance that answered it or that a redirect named. */
  readonly keyHint = new Map<string, number>();
  #load: Promise<void>[] = [];
  #loadRunning = false;
  #seq = 0;
  #stopped = false;
  #poller: ReturnType<typeof setInterval> | undefined;

  private constructor(cluster: EtcdCluster, options: DemoOptions) {
    this.cluster = cluster;
    this.options = options;
    this.prefix = options.prefix ?? `/lease-core-demo-${process.pid}`;
  }

  /** Starts the cluster and every instance; resolves once one instance leads. */
  static async start(options: DemoOptions = {}): Promise<Demo> {
    const cluster = await startEtcdCluster(options.etcd ?? {});
    const demo = new Demo(cluster, options);
    try {
      const n = options.instances ?? 3;
      await Promise.all(Array.from({ length: n }, (_, i) => demo.spawnService(i)));
      demo.#poller = setInterval(() => void demo.refresh().catch(() => undefined), 100);
      await demo.waitForLeader((options.groups ?? 0) > 0 ? 60_000 : 15_000);
    } catch (err) {
      await demo.stop();
      throw err;
    }
    return demo;
  }

  /** Starts (or restarts) instance `index` and waits until it listens. */
  async spawnService(index: number): Promise<ServiceHandle> {
    const id = `kv-${index}`;
    const unsafe = this.options.unsafe?.(index) ?? "";
    const uid = process.getuid?.() === 0 ? 63000 + (process.pid % 500) * 8 + index : undefined;
    const unsafeBuild = this.options.serviceBuild === "unsafe";
    const child = spawn(process.execPath, [unsafeBuild ? UNSAFE_SERVICE_JS : SERVICE_JS], {
      stdio: ["pipe", "pipe", "inherit"],
      ...(uid !== undefined ? { uid, gid: uid } : {}),
      env: {
        ...process.env,
        KV_ID: id,
        KV_ENDPOINTS: this.cluster.clientEndpoints.join(","),
        KV_PREFIX: this.prefix,
        KV_TTL_S: String(this.options.ttlS ?? 2),
        KV_ETCD_ELECTION_MS: String(this.cluster.electionTimeoutMs),
        KV_UNSAFE: unsafe,
        LEASE_CORE_UNSAFE: unsafeBuild ? (this.options.unsafeSwitches ?? "") : "",
        KV_GROUPS: String(this.options.groups ?? 0),
        ...this.options.env?.(index),
      },
    });
    const ready = await new Promise<{ port: number; pid: number }>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      const timer = setTimeout(() => reject(new Error(`${id}: not ready in 15 s`)), 15_000);
      lines.once("line", (line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { port: number; pid: number });
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${id} exited (${code}) before it was ready`));
      });
    });
    const handle: ServiceHandle = { index, uid, id, port: ready.port, pid: ready.pid, child, alive: true, paused: false, unsafe };
    child.once("exit", () => {
      handle.alive = false;
    });
    this.services[index] = handle;
    return handle;
  }

  /** GET /status of every instance (null: no answer within 300 ms). */
  async refresh(): Promise<(ServiceStatus | null)[]> {
    const statuses = await Promise.all(
      this.services.map(async (s) => {
        if (!s.alive || s.paused) return null;
        try {
          return await fetchJson<ServiceStatus>(`http://127.0.0.1:${s.port}/status`, "GET", 300).then((r) => r.body);
        } catch {
          return null;
        }
      }),
    );
    this.lastStatuses = statuses;
    const best = Demo.#leaderOf(statuses);
    if (best >= 0) this.leaderHint = best;
    return statuses;
  }

  /** The instance leading (by its own status; the newest leader key wins a tie), -1 if none.
   *  Sharded: the one serving the most groups. */
  static #leaderOf(statuses: readonly (ServiceStatus | null)[]): number {
    let best = -1;
    let bestRev = -1n;
    statuses.forEach((st, i) => {
      if (st?.state !== "leader") return;
      const rank = st.mode === "groups" ? BigInt(st.serving ?? 0) : BigInt(st.leaderCreateRevision);
      if (rank > bestRev) {
        best = i;
        bestRev = rank;
      }
    });
    return best;
  }

  /** The instance leading now (by its own status), -1 if none answers as leader. */
  async leaderIndex(): Promise<number> {
    return Demo.#leaderOf(await this.refresh());
  }

  /** Sharded: how many groups the instances that answer serve, summed. */
  groupsServed(statuses: readonly (ServiceStatus | null)[] = this.lastStatuses): number {
    return statuses.reduce((n, st) => n + (st?.serving ?? 0), 0);
  }

  /** A leader other than `notIndex` (sharded: every group served, and the instance serving the most). */
  async waitForLeader(timeoutMs = 10_000, notIndex = -1): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    const groups = this.options.groups ?? 0;
    while (performance.now() < deadline) {
      const statuses = await this.refresh();
      const i = Demo.#leaderOf(statuses);
      if (i >= 0 && i !== notIndex && (groups === 0 || this.groupsServed(statuses) >= groups)) return i;
      await sleep(50);
    }
    throw new Error(groups > 0 ? `not every one of ${groups} groups served within ${timeoutMs} ms (${this.groupsServed()})` : `no KV leader within ${timeoutMs} ms`);
  }

  pauseService(index: number): void {
    const s = this.services[index]!;
    s.child.kill("SIGSTOP");
    s.paused = true;
  }

  resumeService(index: number): void {
    const s = this.services[index]!;
    s.child.kill("SIGCONT");
    s.paused = false;
  }

  killService(index: number): void {
    const s = this.services[index]!;
    if (s.paused) s.child.kill("SIGCONT");
    s.child.kill("SIGKILL");
    s.alive = false;
    s.paused = false;
  }

  /** Cuts instance `index` off from every etcd member (iptables, by its uid): its keepalive
   *  stream, watches and reads all stall, as in a network partition. */
  cutFromEtcd(index: number): void {
    const uid = this.services[index]?.uid;
    if (uid === undefined) throw new Error("cutting an instance from etcd needs root (it runs as its own uid)");
    this.cluster.dropClientTraffic(uid);
  }

  /** One op against one instance, recorded. `linearizable` forces an etcd read (measurements). */
  async op(client: number, kind: "read" | "write", key: string, target: number, timeoutMs = 1000, linearizable = false): Promise<RecordedOp | null> {
    const s = this.services[target];
    if (s === undefined || !s.alive) return null;
    const value = kind === "write" ? `c${client}-${++this.#seq}` : null;
    const url = `http://127.0.0.1:${s.port}/kv?key=${encodeURIComponent(key)}${value === null ? "" : `&value=${encodeURIComponent(value)}`}${linearizable ? "&consistency=linearizable" : ""}`;
    const callAt = performance.now();
    let status = 0;
    let body: { value?: string | null; served?: "local" | "etcd"; leader?: string | null; unknown?: boolean } = {};
    let sent = true;
    try {
      const res = await fetchJson<typeof body>(url, kind === "read" ? "GET" : "POST", timeoutMs);
      status = res.status;
      body = res.body;
    } catch (err) {
      if ((err as { code?: string }).code === "ECONNREFUSED") sent = false;
    }
    const returnAt = performance.now();
    if ((this.options.groups ?? 0) > 0) {
      // The redirect (503 naming the group's leader) and who answered: the key's next target.
      // A linearizable read is answered by any node: it says nothing about the leader.
      const named = status === 503 && typeof body.leader === "string" ? this.services.findIndex((x) => x?.id === body.leader) : -1;
      if (named >= 0) this.keyHint.set(key, named);
      else if (status === 503) this.keyHint.delete(key);
      else if (status === 200 && !linearizable) this.keyHint.set(key, target);
    } else if (status === 503 && typeof body.leader === "string") {
      const i = this.services.findIndex((x) => x?.id === body.leader);
      if (i >= 0) this.leaderHint = i;
    }
    let op: RecordedOp | null = null;
    if (kind === "read") {
      if (status === 200) op = { client, kind, key, value: body.value ?? null, callAt, returnAt, servedBy: s.id, served: body.served! };
    } else if (status === 200) {
      op = { client, kind, key, value, callAt, returnAt, servedBy: s.id };
    } else if (status !== 503 && sent) {
      op = { client, kind, key, value, callAt, returnAt: Infinity, servedBy: null };
    }
    if (op !== null) {
      if (this.options.keepHistory !== false) this.history.push(op);
      for (const listener of this.opListeners) listener(op);
    }
    return op;
  }

  /** Starts the load generator: `clients` loops sending to the instance believed to lead. */
  startLoad(options: LoadOptions = {}): void {
    if (this.#loadRunning) return;
    this.#loadRunning = true;
    const clients = options.clients ?? 4;
    const keys = options.keys ?? 4;
    const intervalMs = options.ratePerS === undefined ? 0 : (clients * 1000) / options.ratePerS;
    if (!(intervalMs >= 0) || !Number.isFinite(intervalMs)) throw new RangeError(`ratePerS must be a positive number, got ${options.ratePerS}`);
    const source: KeySource = typeof keys === "number" ? { take: () => `k${Math.floor(Math.random() * keys)}`, done: () => undefined } : keys;
    const readRatio = options.readRatio ?? 0.8;
    for (let c = 0; c < clients; c++) {
      this.#load.push(
        (async () => {
          let nextAtMs = performance.now() + (intervalMs * c) / clients;
          while (this.#loadRunning) {
            if (intervalMs > 0) {
              const now = performance.now();
              if (nextAtMs > now) await sleep(nextAtMs - now);
              nextAtMs = Math.max(nextAtMs, performance.now()) + intervalMs;
              if (!this.#loadRunning) break;
            }
            const key = source.take();
            const kind = Math.random() < readRatio ? "read" : "write";
            let target = (this.options.groups ?? 0) > 0 ? (this.keyHint.get(key) ?? -1) : this.leaderHint;
            if (target < 0 || !this.services[target]?.alive || this.services[target]?.paused) {
              target = Math.floor(Math.random() * this.services.length);
            }
            const linearizable = kind === "read" && Math.random() < (options.linearizableRatio ?? 0.1);
            let op: RecordedOp | null = null;
            try {
              op = await this.op(c, kind, key, target, options.requestTimeoutMs ?? 1000, linearizable);
            } finally {
              source.done(key, op);
            }
            if (op === null) await sleep(20);
            else if (options.thinkMs) await sleep(options.thinkMs);
          }
        })(),
      );
    }
  }

  async stopLoad(): Promise<void> {
    this.#loadRunning = false;
    await Promise.all(this.#load);
    this.#load = [];
  }

  /** The verdict on the history so far. */
  check(maxStates = 2_000_000): ReturnType<typeof checkKvHistory> {
    return checkKvHistory(this.history, { maxStates });
  }

  /** Stops the load, every instance (SIGTERM, then SIGKILL after 2 s) and the cluster. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#poller !== undefined) clearInterval(this.#poller);
    this.#loadRunning = false;
    await Promise.race([Promise.all(this.#load), sleep(3000)]);
    await Promise.all(
      this.services.map((s) => {
        if (s === undefined || s.child.exitCode !== null || s.child.signalCode !== null) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const timer = setTimeout(() => s.child.kill("SIGKILL"), 2000);
          s.child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          if (s.paused) s.child.kill("SIGCONT");
          s.child.kill("SIGTERM");
        });
      }),
    );
    await this.cluster.stop();
  }
}

/** p-th percentile of numbers (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
