/**
 * The driver of `npm run bench:groups` (scripts/bench-groups.mjs bundles and starts it): shard
 * groups on one etcd lease per node (issue 17, docs/etcd.md "Many groups on one lease") measured
 * on a real 3-member etcd on loopback (demo/cluster.ts, heartbeat 50 ms, election 300 ms) with 3
 * group nodes, each in its own process (bench/groups-node.ts), TTL 2 s. For each G (groups per
 * node; groupCount = 3·G):
 *
 * 1. etcd requests per second per node in steady state: the engine's `etcdRequests` counter over
 *    a window, cross-checked with etcd's own `/metrics` summed over the members (every message a
 *    member received: `grpc_server_msg_received_total`, which counts each keepalive of a stream;
 *    and `grpc_server_started_total`, which counts a stream once), minus the same window with no
 *    node running;
 * 2. the confirmation round: the engine's own timings (`status().lastRoundMs`, one per round) and
 *    the same round measured from outside (a keepalive, then the round's read txn: linearizable
 *    keys-only ranges of `<prefix>/g/`, `n/<id>` and the meta key, on a second etcd client in
 *    each node process), p50/p99;
 * 3. failover: SIGKILL one node; per group it led, the time until another node serves it and
 *    until a fenced write to it succeeded; p50/p99/max over every group of every kill, with the
 *    takeover hold (`takeoverHold` "auto": etcd 3.4.23 has no early-revoke fix, so it holds) and
 *    without it ("never", what etcd >= 3.4.31 allows); the killed node is restarted after each
 *    kill and gets its groups back by rendezvous (a clean hand-off) before the next;
 * 4. the lease-read hit per group (mitata, in a node process, ratios to `lease.valid()` there);
 * 5. memory per group: heap + external after GC, minus a node of 1 group, divided.
 *
 * Options: --groups=100,1000,2000,5000  --quick  --kills=N  --window=S  --modes=auto,never
 *          --out=FILE (default bench/results/groups.json)
 * Output: a table on stdout, the JSON file, and `BENCH_GROUPS_JSON <json>` as the last line.
 * @module
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";

/** The repository root and the bundled node entry (defined by scripts/bench-groups.mjs). */
declare const __ROOT__: string;
declare const __NODE_ENTRY__: string;

const args = process.argv.slice(2);
const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = args.includes("--quick");
const groupsList = (flag("groups") ?? (quick ? "50" : "100,1000,2000,5000")).split(",").map((x) => Number(x));
for (const g of groupsList) if (!Number.isInteger(g) || g < 1 || 3 * g > 65536) throw new RangeError(`--groups: integers in [1, 21845], got ${g}`);
const kills = Number(flag("kills") ?? (quick ? 1 : 5));
const windowS = Number(flag("window") ?? (quick ? 3 : 12));
const modes = (flag("modes") ?? "auto,never").split(",") as ("auto" | "never")[];
const outFile = resolve(__ROOT__, flag("out") ?? "bench/results/groups.json");
const TTL_S = 2;
const NODES = 3;
const ROUND_PROBES = quick ? 10 : 200;
const MITATA = quick ? { rounds: 1, minCpuMs: 5 } : { rounds: 5, minCpuMs: 30 };

const log = (msg: string) => process.stderr.write(`bench:groups ${new Date().toISOString().slice(11, 19)} ${msg}\n`);

// ---- statistics ---------------------------------------------------------------------------

/** Nearest-rank percentile (p in [0, 1]) of a non-empty list. */
function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}
const summary = (values: number[]) => ({ count: values.length, min: values.length ? Math.min(...values) : NaN, p50: pct(values, 0.5), p99: pct(values, 0.99), max: values.length ? Math.max(...values) : NaN });

// ---- a node process -------------------------------------------------------------------------

class NodeProc {
  readonly child: ChildProcess;
  readonly id: string;
  #seq = 0;
  readonly #pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  readonly #events: ((msg: { event: string; [k: string]: unknown }) => void)[] = [];
  readonly ready: Promise<void>;
  exited = false;

  constructor(id: string) {
    this.id = id;
    this.child = fork(__NODE_ENTRY__, [], { execArgv: ["--expose-gc"], serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.ready = new Promise((res, rej) => {
      this.#events.push((m) => m.event === "ready" && res());
      this.child.once("exit", (code, signal) => rej(new Error(`node ${id} exited before ready (${code ?? signal})`)));
    });
    this.ready.catch(() => undefined);
    this.child.on("message", (msg: { id?: number; ok?: boolean; value?: unknown; error?: string; event?: string }) => {
      if (msg.event !== undefined) return this.#events.forEach((f) => f(msg as { event: string }));
      const p = this.#pending.get(msg.id!);
      if (p === undefined) return;
      this.#pending.delete(msg.id!);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new Error(`node ${id}: ${msg.error}`));
    });
    this.child.once("exit", (code, signal) => {
      this.exited = true;
      for (const p of this.#pending.values()) p.reject(new Error(`node ${id} exited (${code ?? signal})`));
      this.#pending.clear();
    });
  }

  call<T = any>(cmd: string, a: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`node ${this.id} has exited`));
    const id = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, args: a });
    });
  }

  onceEvent(name: string): Promise<void> {
    return new Promise((res) => this.#events.push((m) => m.event === name && res()));
  }

  /** Calls `fn` with every event of that name until the returned function is called. */
  onEvent(name: string, fn: (msg: { [k: string]: unknown }) => void): () => void {
    const handler = (m: { event: string; [k: string]: unknown }) => m.event === name && fn(m);
    this.#events.push(handler);
    return () => {
      const i = this.#events.indexOf(handler);
      if (i >= 0) this.#events.splice(i, 1);
    };
  }

  kill(): Promise<void> {
    if (this.exited) return Promise.resolve();
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.kill("SIGKILL");
    return gone;
  }

  /** A clean close (the node hands its groups off), then the process ends. */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    try {
      await Promise.race([this.call("close"), sleep(15_000)]);
    } catch {
      // a close that failed still ends the process below
    }
    this.child.disconnect?.();
    this.child.kill("SIGTERM");
    await Promise.race([gone, sleep(3000).then(() => this.kill())]);
  }
}

// ---- etcd's own count ---------------------------------------------------------------------

interface EtcdCounts {
  started: number;
  messages: number;
  byMethod: Record<string, number>;
}

/** Sums `grpc_server_started_total` and `grpc_server_msg_received_total` over every member
 *  (etcd's /metrics on its client URL; scraping is HTTP, so it counts itself in neither). */
async function etcdCounts(cluster: EtcdCluster): Promise<EtcdCounts> {
  const out: EtcdCounts = { started: 0, messages: 0, byMethod: {} };
  for (const m of cluster.members) {
    const text = await (await fetch(`${m.clientUrl}/metrics`)).text();
    for (const line of text.split("\n")) {
      const match = /^grpc_server_(started|msg_received)_total\{grpc_method="([^"]+)",grpc_service="([^"]+)",grpc_type="[^"]+"\} (\S+)$/.exec(line);
      if (match === null) continue;
      const value = Number(match[4]);
      if (match[1] === "started") out.started += value;
      else {
        out.messages += value;
        const key = `${match[3]!.replace("etcdserverpb.", "")}.${match[2]}`;
        out.byMethod[key] = (out.byMethod[key] ?? 0) + value;
      }
    }
  }
  return out;
}

function countsDelta(a: EtcdCounts, b: EtcdCounts, seconds: number) {
  const byMethod: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.byMethod)) {
    const d = v - (a.byMethod[k] ?? 0);
    if (d > 0) byMethod[k] = d / seconds;
  }
  return { startedPerS: (b.started - a.started) / seconds, messagesPerS: (b.messages - a.messages) / seconds, messagesPerSByMethod: byMethod };
}

// ---- the phases -----------------------------------------------------------------------------

interface Snapshot {
  id: string;
  led: number[];
  counters: Record<string, number>;
  status: Record<string, unknown>;
  cpu: { user: number; system: number };
  nowNs: bigint;
}

/** Every node process alive, so that a failure anywhere kills them all (an orphan would go on
 *  loading etcd and the CPU under the next measurement). */
const live = new Set<NodeProc>();
/** Every start() that failed and was retried (reported in the JSON). */
const startErrors: string[] = [];

async function startNodes(cluster: EtcdCluster, prefix: string, groupCount: number, takeoverHold: "auto" | "never", ids: string[]): Promise<NodeProc[]> {
  const procs = ids.map((id) => new NodeProc(id));
  procs.forEach((p) => live.add(p));
  await Promise.all(procs.map((p) => p.ready));
  const assignTimeoutMs = 30_000 + groupCount * 10;
  try {
    const started: { startErrors: string[] }[] = await Promise.all(procs.map((p) => p.call("start", { endpoints: cluster.clientEndpoints, prefix, id: p.id, groupCount, ttlS: TTL_S, etcdElectionTimeoutMs: cluster.electionTimeoutMs, takeoverHold, assignTimeoutMs })));
    for (const s of started) startErrors.push(...s.startErrors);
  } catch (err) {
    throw new Error(`${(err as Error).message}; nodes: ${await describe(procs)}`);
  }
  return procs;
}

/** What each node says of itself (for the error of a run that did not settle). */
async function describe(procs: NodeProc[]): Promise<string> {
  const parts = await Promise.all(
    procs.map(async (p) => {
      try {
        const s: Snapshot = await Promise.race([p.call("snapshot"), sleep(2000).then(() => Promise.reject(new Error("no answer")))]);
        const st = s.status as Record<string, unknown>;
        return `${p.id}: leading ${st.leading}, serving ${st.serving}, live [${st.liveNodes}], counters ${JSON.stringify(s.counters)}`;
      } catch (err) {
        return `${p.id}: ${(err as Error).message}`;
      }
    }),
  );
  return parts.join(" | ");
}

/** Waits until every node serves what rendezvous gives it and every group is led exactly once
 *  (the nodes' own view: the union of their led groups). */
async function settle(procs: NodeProc[], groupCount: number, timeoutMs: number): Promise<Snapshot[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    await Promise.all(procs.map((p) => p.call("waitForAssignment", { timeoutMs: Math.max(1000, deadline - performance.now()) })));
    const snaps: Snapshot[] = await Promise.all(procs.map((p) => p.call("snapshot")));
    const seen = new Map<number, number>();
    for (const s of snaps) for (const g of s.led) seen.set(g, (seen.get(g) ?? 0) + 1);
    const twice = [...seen.values()].filter((c) => c > 1).length;
    if (seen.size === groupCount && twice === 0) return snaps;
    if (performance.now() > deadline) throw new Error(`not settled in ${timeoutMs} ms: ${seen.size}/${groupCount} groups led, ${twice} by two nodes; nodes: ${await describe(procs)}`);
    await sleep(100);
  }
}

async function steadyState(cluster: EtcdCluster, procs: NodeProc[], baselinePerS: { startedPerS: number; messagesPerS: number }) {
  const s0: Snapshot[] = await Promise.all(procs.map((p) => p.call("snapshot")));
  const e0 = await etcdCounts(cluster);
  const t0 = performance.now();
  // The engine's own round timings, sampled over the same window (no etcd traffic of its own).
  const sampled: { samples: number[] }[] = await Promise.all(procs.map((p) => p.call("sampleRounds", { ms: windowS * 1000 })));
  const s1: Snapshot[] = await Promise.all(procs.map((p) => p.call("snapshot")));
  const e1 = await etcdCounts(cluster);
  const seconds = (performance.now() - t0) / 1000;
  const etcdSide = countsDelta(e0, e1, seconds);
  const perNode = procs.map((p, i) => {
    const a = s0[i]!;
    const b = s1[i]!;
    const d = (k: string) => ((b.counters[k] ?? NaN) - (a.counters[k] ?? NaN)) / seconds;
    const cpuMs = (b.cpu.user + b.cpu.system - a.cpu.user - a.cpu.system) / 1000;
    return {
      id: p.id,
      led: b.led.length,
      etcdRequestsPerS: d("etcdRequests"),
      roundsPerS: d("rounds"),
      roundsConfirmedPerS: d("roundsConfirmed"),
      cpuPercent: (cpuMs / (seconds * 1000)) * 100,
    };
  });
  const engineTotal = perNode.reduce((a, n) => a + n.etcdRequestsPerS, 0);
  return {
    windowS: seconds,
    perNode,
    engineEtcdRequestsPerSPerNode: engineTotal / procs.length,
    etcd: {
      ...etcdSide,
      baselineMessagesPerS: baselinePerS.messagesPerS,
      baselineStartedPerS: baselinePerS.startedPerS,
      messagesPerSPerNode: (etcdSide.messagesPerS - baselinePerS.messagesPerS) / procs.length,
      startedPerSPerNode: (etcdSide.startedPerS - baselinePerS.startedPerS) / procs.length,
    },
    engineRoundMs: summary(sampled.flatMap((s) => s.samples)),
  };
}

async function probeRounds(procs: NodeProc[]) {
  const r: { roundMs: number[]; keepaliveMs: number[]; rangeMs: number[]; keys: number }[] = await Promise.all(procs.map((p) => p.call("probeRounds", { count: ROUND_PROBES, intervalMs: 20 })));
  return {
    probes: ROUND_PROBES * procs.length,
    keysPerRange: r[0]!.keys,
    roundMs: summary(r.flatMap((x) => x.roundMs)),
    keepaliveMs: summary(r.flatMap((x) => x.keepaliveMs)),
    rangeMs: summary(r.flatMap((x) => x.rangeMs)),
  };
}

interface KillResult {
  victim: string;
  groups: number;
  servedAgain: number;
  written: number;
  servedMs: number[];
  writtenMs: number[];
  writeErrors: Record<string, number>;
  survivorCounters: Record<string, number>;
  settleAfterRestartMs: number;
}

/** One kill: the survivors arm, the victim is SIGKILLed at t0 (CLOCK_MONOTONIC, shared by every
 *  process here), each group it led is timed until a survivor serves it and until a fenced write
 *  to it succeeded; then the victim is restarted and the assignment settles again. */
async function killOnce(cluster: EtcdCluster, procs: NodeProc[], victimIndex: number, prefix: string, groupCount: number, hold: "auto" | "never"): Promise<KillResult> {
  // From a settled assignment: every group led once, each node serving all it should.
  await settle(procs, groupCount, 30_000 + groupCount * 10);
  const victim = procs[victimIndex]!;
  const survivors = procs.filter((p) => p !== victim);
  const snap: Snapshot = await victim.call("snapshot");
  const groups = snap.led;
  const before: Snapshot[] = await Promise.all(survivors.map((p) => p.call("snapshot")));
  const timeoutMs = 20_000 + groupCount * 2;
  const armed = survivors.map((p) => p.onceEvent("armed"));
  // Stop both survivors once every group took a write on one of them (or at timeoutMs).
  const done = new Set<number>();
  const unsubscribe = survivors.map((p) =>
    p.onEvent("failoverProgress", (m) => {
      for (const g of m.written as number[]) done.add(g);
      if (done.size === groups.length) for (const q of survivors) void q.call("failoverStop").catch(() => undefined);
    }),
  );
  const answers = survivors.map((p) => p.call("failover", { groups, timeoutMs, concurrency: 64 }));
  await Promise.all(armed);
  const t0 = process.hrtime.bigint();
  await victim.kill();
  const results: { perGroup: { group: number; servedAtNs: bigint; writtenAtNs: bigint | null }[]; writeErrors: Record<string, number> }[] = await Promise.all(answers);
  unsubscribe.forEach((f) => f());
  // What the survivors went through meanwhile (a group lost again, a keepalive that failed...).
  const after: Snapshot[] = await Promise.all(survivors.map((p) => p.call("snapshot")));
  const survivorCounters: Record<string, number> = {};
  for (let i = 0; i < survivors.length; i++) {
    for (const [k, v] of Object.entries(after[i]!.counters)) {
      const d = v - (before[i]!.counters[k] ?? 0);
      if (d !== 0) survivorCounters[k] = (survivorCounters[k] ?? 0) + d;
    }
  }
  const served = new Map<number, number>();
  const written = new Map<number, number>();
  const writeErrors: Record<string, number> = {};
  for (const r of results) {
    for (const g of r.perGroup) {
      const s = Number(g.servedAtNs - t0) / 1e6;
      if (!served.has(g.group) || served.get(g.group)! > s) served.set(g.group, s);
      if (g.writtenAtNs !== null) {
        const w = Number(g.writtenAtNs - t0) / 1e6;
        if (!written.has(g.group) || written.get(g.group)! > w) written.set(g.group, w);
      }
    }
    for (const [k, v] of Object.entries(r.writeErrors)) writeErrors[k] = (writeErrors[k] ?? 0) + v;
  }
  // Restart the victim under its id: it re-registers and takes its groups back by hand-off.
  const t1 = performance.now();
  const fresh = new NodeProc(victim.id);
  live.delete(victim);
  live.add(fresh);
  procs[victimIndex] = fresh;
  await fresh.ready;
  const restarted: { startErrors: string[] } = await fresh.call("start", { endpoints: cluster.clientEndpoints, prefix, id: fresh.id, groupCount, ttlS: TTL_S, etcdElectionTimeoutMs: cluster.electionTimeoutMs, takeoverHold: hold, assignTimeoutMs: 30_000 + groupCount * 10 });
  startErrors.push(...restarted.startErrors);
  await settle(procs, groupCount, 30_000 + groupCount * 10);
  return {
    victim: victim.id,
    groups: groups.length,
    servedAgain: served.size,
    written: written.size,
    servedMs: [...served.values()],
    writtenMs: [...written.values()],
    writeErrors,
    survivorCounters,
    settleAfterRestartMs: performance.now() - t1,
  };
}

async function failover(cluster: EtcdCluster, procs: NodeProc[], prefix: string, groupCount: number, hold: "auto" | "never") {
  const runs: KillResult[] = [];
  for (let k = 0; k < kills; k++) {
    const victimIndex = k % procs.length;
    log(`  kill ${k + 1}/${kills} (${procs[victimIndex]!.id}, takeoverHold ${hold})`);
    runs.push(await killOnce(cluster, procs, victimIndex, prefix, groupCount, hold));
    const r = runs[runs.length - 1]!;
    log(`    ${r.groups} groups: ${r.servedAgain} served again, ${r.written} written; written p50 ${pct(r.writtenMs, 0.5).toFixed(0)} ms, max ${Math.max(...r.writtenMs).toFixed(0)} ms`);
  }
  const groups = runs.reduce((a, r) => a + r.groups, 0);
  return {
    takeoverHold: hold,
    kills: runs.length,
    groupsOfKilledNodes: groups,
    servedAgain: runs.reduce((a, r) => a + r.servedAgain, 0),
    written: runs.reduce((a, r) => a + r.written, 0),
    servedMs: summary(runs.flatMap((r) => r.servedMs)),
    writtenMs: summary(runs.flatMap((r) => r.writtenMs)),
    perKill: runs.map((r) => ({ victim: r.victim, groups: r.groups, servedAgain: r.servedAgain, written: r.written, writtenMs: summary(r.writtenMs), writeErrors: r.writeErrors, survivorCounters: r.survivorCounters, settleAfterRestartMs: r.settleAfterRestartMs })),
  };
}

async function memoryOf(proc: NodeProc): Promise<{ heapUsed: number; external: number; arrayBuffers: number; rss: number }> {
  return proc.call("memory");
}

// ---- main ---------------------------------------------------------------------------------------

const load0 = loadavg();
const started = Date.now();
const cluster = await startEtcdCluster({ size: 3 });
const cleanup = async () => {
  await Promise.all([...live].map((p) => p.kill()));
  await cluster.stop();
};
process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));

const result: Record<string, unknown> = {};
try {
  log(`etcd: 3 members, heartbeat ${cluster.heartbeatMs} ms, election ${cluster.electionTimeoutMs} ms; load ${load0.map((x) => x.toFixed(2)).join(" ")}`);
  const run = Math.random().toString(36).slice(2, 8);

  // The node of 1 group: the memory every per-group figure is measured against.
  const [one] = (await startNodes(cluster, `/bench-groups-${run}/one`, 1, "auto", ["solo"]));
  const memoryOne = await memoryOf(one!);
  await one!.close();
  live.delete(one!);

  const perG: Record<string, unknown>[] = [];
  for (const G of groupsList) {
    const groupCount = NODES * G;
    log(`G = ${G} groups per node (groupCount ${groupCount})`);
    const entry: Record<string, unknown> = { groupsPerNode: G, groupCount };
    perG.push(entry);
    try {
      // etcd with no node of ours: what the members count on their own (and the harness's own).
      const b0 = await etcdCounts(cluster);
      const tb = performance.now();
      await sleep(quick ? 1500 : 5000);
      const baseline = countsDelta(b0, await etcdCounts(cluster), (performance.now() - tb) / 1000);

      for (const hold of modes) {
        const prefix = `/bench-groups-${run}/g${G}-${hold}`;
        const t0 = performance.now();
        const procs = await startNodes(cluster, prefix, groupCount, hold, ["n0", "n1", "n2"]);
        const snaps = await settle(procs, groupCount, 30_000 + groupCount * 10);
        const startMs = performance.now() - t0;
        log(`  ${hold}: settled in ${startMs.toFixed(0)} ms: led ${snaps.map((s) => s.led.length).join("/")}`);
        if (hold === modes[0]) {
          await sleep(1000); // the first rounds after the campaigns are not steady state
          entry.startToSettledMs = startMs;
          entry.led = snaps.map((s) => s.led.length);
          entry.steady = await steadyState(cluster, procs, baseline);
          log(`  steady: engine ${(entry.steady as { engineEtcdRequestsPerSPerNode: number }).engineEtcdRequestsPerSPerNode.toFixed(2)} req/s/node`);
          entry.probe = await probeRounds(procs);
          entry.memory = await memoryOf(procs[0]!);
          const m = entry.memory as { heapUsed: number; external: number };
          const delta = m.heapUsed + m.external - (memoryOne.heapUsed + memoryOne.external);
          entry.memoryPerGroupBytes = { perGroupOfTable: delta / (groupCount - 1), perLedGroup: delta / Math.max(1, snaps[0]!.led.length - 1) };
          entry.leaseRead = await procs[0]!.call("leaseReadBench", MITATA);
          const after: Snapshot = await procs[0]!.call("snapshot");
          entry.afterLeaseRead = { leading: after.status.leading, serving: after.status.serving, counters: after.counters };
        }
        entry[`failover.${hold}`] = await failover(cluster, procs, prefix, groupCount, hold);
        await Promise.all(procs.map((p) => p.close()));
        procs.forEach((p) => live.delete(p));
      }
    } catch (err) {
      entry.error = String((err as Error)?.stack ?? err);
      log(`G = ${G} failed: ${(err as Error)?.message}`);
      await Promise.all([...live].map((p) => p.kill()));
      live.clear();
    }
  }

  Object.assign(result, {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? "unknown", cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), loadAvgStart: load0, loadAvgEnd: loadavg() },
    versions: { node: process.version },
    params: { quick, groupsPerNode: groupsList, nodes: NODES, ttlS: TTL_S, etcdHeartbeatMs: cluster.heartbeatMs, etcdElectionTimeoutMs: cluster.electionTimeoutMs, windowS, kills, modes, roundProbesPerNode: ROUND_PROBES, mitata: MITATA },
    memoryOneGroup: memoryOne,
    startErrors,
    results: perG,
    durationS: (Date.now() - started) / 1000,
  });
} finally {
  await cleanup();
}

// ---- the table --------------------------------------------------------------------------------

const f = (x: unknown, digits = 1) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–");
const lines: string[] = [];
lines.push(`| G/node | groups | etcd req/s/node: engine · etcd | round p50/p99 ms: engine · probe | failover, hold: led p50/p99 · written p50/p99/max ms | failover, no hold: led p50/p99 · written p50/p99/max ms | hit ns/group: batch · localRead each · leaseReadAllGroups (× valid) | memory B/group |`);
lines.push(`|---:|---:|---:|---:|---:|---:|---:|---:|`);
for (const e of result.results as any[]) {
  if (e.error) {
    lines.push(`| ${e.groupsPerNode} | ${e.groupCount} | failed: ${String(e.error).split("\n")[0]!.slice(0, 300)} | | | | | |`);
    continue;
  }
  const fo = (h: string) => {
    const x = e[`failover.${h}`];
    if (!x) return "–";
    const all = x.written === x.groupsOfKilledNodes ? "" : ` (${x.written}/${x.groupsOfKilledNodes} written)`;
    return `${f(x.servedMs.p50, 0)} / ${f(x.servedMs.p99, 0)} · ${f(x.writtenMs.p50, 0)} / ${f(x.writtenMs.p99, 0)} / ${f(x.writtenMs.max, 0)}${all}`;
  };
  const hit = (id: string) => {
    const r = e.leaseRead?.results.find((x: { id: string }) => x.id === id);
    return r === undefined ? "–" : `${f(r.nsPerGroup)} (${f(r.ratioToValid, 2)}×)${r.misses > 0 ? ` ${r.misses} misses` : ""}`;
  };
  lines.push(
    `| ${e.groupsPerNode} | ${e.groupCount} | ${f(e.steady?.engineEtcdRequestsPerSPerNode, 2)} · ${f(e.steady?.etcd.messagesPerSPerNode, 2)} | ${f(e.steady?.engineRoundMs.p50, 1)} / ${f(e.steady?.engineRoundMs.p99, 1)} · ${f(e.probe?.roundMs.p50, 1)} / ${f(e.probe?.roundMs.p99, 1)} | ${fo("auto")} | ${fo("never")} | ${hit("localReadGroups")} · ${hit("localRead.each")} · ${hit("leaseReadAllGroups")} | ${f(e.memoryPerGroupBytes?.perGroupOfTable, 0)} |`,
  );
}
const table = lines.join("\n");
console.log(table);
const json = JSON.stringify(result, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, json + "\n");
console.log(`\nwrote ${outFile}`);
console.log(`BENCH_GROUPS_JSON ${JSON.stringify({ out: outFile })}`);
