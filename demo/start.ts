/**
 * `npm start`: the demo. A local 3-member etcd cluster on loopback, 3 KV service processes using
 * `lease-core/etcd`, a load generator, and a dashboard on http://127.0.0.1:<port>/ showing who
 * leads, each lease's remaining time, per-second plots (read latency local vs through etcd,
 * write latency, operations per second, each instance's lease remaining, with fault markers), the
 * live linearizability verdict, fault buttons, chaos mode and the fault log. Runs until Ctrl-C,
 * then stops every process it started and removes its temp dir.
 *
 * Built to run for hours with flat CPU and memory: keys rotate per window (demo/windows.ts), each
 * complete window is checked once in a worker thread (demo/check-worker.ts) and dropped, only
 * verdicts and per-second aggregates are kept (demo/series.ts), and the dashboard's API answers
 * from those, never from a history.
 *
 *   --duration N | DEMO_DURATION_S=N  bounded run (CI): N s of load with one leader pause at N/3
 *                                     (or chaos, with --chaos); prints a summary; exits 0 iff
 *                                     every window was checked and is linearizable, 1 otherwise
 *   --port P | DEMO_PORT=P            the dashboard's port (default: any free port)
 *   --chaos | DEMO_CHAOS=1            chaos mode from the start (the dashboard has a switch too)
 *   --chaos-interval-s N              seconds between chaos faults (default 15)
 *   --window-s N                      seconds a window hands out its keys (default 10)
 *   --rate N                          offered load, operations per second (default 200)
 *   --groups G | DEMO_GROUPS=G        sharded mode (docs/etcd.md "Many groups on one lease"): each KV
 *                                     instance is a multi-group node over G shard groups on one
 *                                     etcd lease, answering for the keys of the groups it serves
 *                                     and redirecting the rest (demo/kv-groups.ts); the dashboard
 *                                     shows how many groups each leads and serves; 16 keys per
 *                                     window (many groups), each key checked as today
 *   --kv-build unsafe                 negative controls only: run the KV processes from the test
 *                                     build build/unsafe/, with LEASE_CORE_UNSAFE passed through
 * @module
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { CheckWorker } from "./check-worker.js";
import { EtcdMissingError, canIsolate } from "./cluster.js";
import { Chaos, FaultInjector } from "./faults.js";
import { Demo } from "./harness.js";
import { DASHBOARD_HTML } from "./page.js";
import { SecondSeries } from "./series.js";
import { WindowedKeys } from "./windows.js";

await main();

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!(n > 0) || !Number.isFinite(n)) {
    console.error(`lease-core demo: --${name} must be a positive number, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const durationS = Number(arg("duration") ?? process.env.DEMO_DURATION_S ?? "0");
  const port = Number(arg("port") ?? process.env.DEMO_PORT ?? "0");
  const chaosAtStart = process.argv.includes("--chaos") || process.env.DEMO_CHAOS === "1";
  const chaosIntervalS = positive("chaos-interval-s", arg("chaos-interval-s") ?? process.env.DEMO_CHAOS_INTERVAL_S ?? "15");
  const windowS = positive("window-s", arg("window-s") ?? process.env.DEMO_WINDOW_S ?? "10");
  const ratePerS = positive("rate", arg("rate") ?? process.env.DEMO_RATE ?? "200");
  const groupsText = arg("groups") ?? process.env.DEMO_GROUPS ?? "0";
  const groups = Number(groupsText);
  if (!Number.isInteger(groups) || groups < 0 || groups > 65536) {
    console.error(`lease-core demo: --groups must be an integer in [0, 65536], got ${JSON.stringify(groupsText)}`);
    process.exit(2);
  }
  const kvBuild = arg("kv-build") ?? "published";
  if (kvBuild !== "published" && kvBuild !== "unsafe") {
    console.error(`lease-core demo: --kv-build is "published" or "unsafe", got ${JSON.stringify(kvBuild)}`);
    process.exit(2);
  }

  let demo: Demo;
  try {
    // etcd keeps every revision until compacted, and every raft entry in memory until a
    // snapshot (3.4's default: every 100,000 entries): without these its memory grows for the
    // first hour of this load (etcd.io/docs/v3.4/op-guide/maintenance/#auto-compaction; in
    // revision mode it compacts every 5 minutes). 10,000 revisions is ~5 minutes of this load's
    // writes, far more than a watch resuming after a healed fault (seconds) needs.
    const etcd = { extraArgs: ["--auto-compaction-mode=revision", "--auto-compaction-retention=10000", "--snapshot-count=10000"] };
    demo = await Demo.start({ instances: 3, ttlS: 2, etcd, keepHistory: false, serviceBuild: kvBuild, unsafeSwitches: process.env.LEASE_CORE_UNSAFE ?? "", ...(groups > 0 ? { groups } : {}) });
  } catch (err) {
    if (err instanceof EtcdMissingError) {
      console.error(`lease-core demo: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }

  const checker = new CheckWorker(new URL("./check-worker.js", import.meta.url));
  // Sharded: more keys per window, so each window's ops touch many groups (and nodes).
  const windows = new WindowedKeys({ windowMs: windowS * 1000, keys: groups > 0 ? 16 : 4, onSeal: (w) => checker.submit(w) });
  const series = new SecondSeries(900);
  demo.opListeners.add((op) => series.record(op));
  const injector = new FaultInjector(demo);
  const chaos = new Chaos(injector, chaosIntervalS * 1000);
  const isolation = canIsolate();
  const uplotDir = createRequire(import.meta.url).resolve("uplot/package.json").replace(/package\.json$/, "dist/");
  const UPLOT_JS = readFileSync(`${uplotDir}uPlot.iife.min.js`, "utf8");
  const UPLOT_CSS = readFileSync(`${uplotDir}uPlot.min.css`, "utf8");
  checker.onVerdict((v) => {
    if (v.ok === false) console.error(`lease-core demo: window ${v.index} NOT linearizable (key ${v.key}, ${v.ops} ops)`);
  });

  // Once a second: close the current window if due, reduce the second's latencies, and refresh
  // the etcd members' view (the page's polls read these, they never start work of their own).
  let members: Awaited<ReturnType<typeof demo.cluster.status>> = [];
  let sampling = false;
  const sampler = setInterval(() => {
    windows.tick();
    series.sample(demo.lastStatuses);
    if (sampling) return;
    sampling = true;
    void demo.cluster
      .status()
      .then((m) => (members = m))
      .catch(() => undefined)
      .finally(() => (sampling = false));
  }, 1000);

  const verdictView = () => {
    const t = checker.tally;
    const f = t.firstFailure;
    return {
      ok: t.ok,
      windowsChecked: t.windowsChecked,
      opsChecked: t.opsChecked,
      windowsFailed: t.windowsFailed,
      windowsUnknown: t.windowsUnknown,
      pending: t.pending,
      workerError: checker.error?.message,
      failure: f === undefined || f.verdict.ok !== false ? undefined : { window: f.verdict.index, key: f.verdict.key, minimal: f.verdict.minimal, historyOps: f.history.length },
      unknownReason: t.firstUnknown?.ok === "unknown" ? t.firstUnknown.reason : undefined,
      recent: t.recent.slice(-20).map((v) => ({ index: v.index, ok: v.ok, ops: v.ops, checkMs: v.checkMs, states: v.stats?.states, largestState: v.stats?.largestState, closedAtWallMs: v.closedAtWallMs, checkedAtWallMs: v.checkedAtWallMs })),
    };
  };

  const quantiles = () => {
    const t = series.total;
    const q = (h: typeof t.local) => ({ count: h.count, p50: h.quantile(0.5), p99: h.quantile(0.99) });
    return { local: q(t.local), etcd: q(t.etcd), write: q(t.write) };
  };

  const memory = () => {
    const m = process.memoryUsage();
    const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
    return { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), heapTotalMiB: mib(m.heapTotal), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) };
  };

  /** Sharded: per instance, how many groups it holds the key of and serves (its last status). */
  const groupView = () => (groups === 0 ? undefined : {
    groupCount: groups,
    nodes: demo.services.map((s, i) => ({ id: s.id, leading: demo.lastStatuses[i]?.leading ?? null, serving: demo.lastStatuses[i]?.serving ?? null })),
  });

  const state = () => ({
    nowWallMs: Date.now(),
    groups: groupView(),
    startedAtWallMs,
    memory: memory(),
    uptimeMs: performance.now() - demo.startedAtMs,
    instances: demo.services.map((s, i) => ({ id: s.id, pid: s.pid, alive: s.alive, paused: s.paused, status: demo.lastStatuses[i] ?? null })),
    members: members.map((m, i) => ({ ...m, paused: demo.cluster.members[i]!.paused, isolated: demo.cluster.members[i]!.isolated })),
    canIsolate: isolation,
    verdict: verdictView(),
    windows: { windowS, current: windows.currentIndex, sealed: windows.sealedCount, open: windows.openCount },
    chaos: { running: chaos.running, intervalS: chaos.intervalMs / 1000 },
    faultKinds: injector.available().map((k) => ({ id: k.id, label: k.label })),
    faultCounts: injector.counts,
    faults: injector.log.slice(-50),
    ops: series.total.ops,
    unknownWrites: series.total.unknownWrites,
    clientMs: quantiles(),
  });

  function send(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
    res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
    res.end(typeof body === "string" ? body : JSON.stringify(body, (_k, v) => (v === Infinity ? null : v)));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname === "/") return send(res, 200, DASHBOARD_HTML, "text/html; charset=utf-8");
    // uPlot (MIT, node_modules/uplot): served from this process, no CDN.
    if (url.pathname === "/uplot.js") return send(res, 200, UPLOT_JS, "text/javascript; charset=utf-8");
    if (url.pathname === "/uplot.css") return send(res, 200, UPLOT_CSS, "text/css; charset=utf-8");
    if (url.pathname === "/api/state") return send(res, 200, state());
    if (url.pathname === "/api/series") return send(res, 200, series.since(Number(url.searchParams.get("since") ?? "0") || 0));
    if (url.pathname === "/api/failure") return send(res, 200, checker.tally.firstFailure ?? null);
    if (url.pathname === "/api/chaos" && req.method === "POST") {
      if (url.searchParams.get("on") === "1") chaos.start();
      else await chaos.stop();
      return send(res, 200, { running: chaos.running });
    }
    if (url.pathname === "/api/fault" && req.method === "POST") {
      try {
        const record = await injector.inject(url.searchParams.get("kind") ?? "", "button");
        return send(res, record.error === undefined ? 200 : 409, record.error === undefined ? record : { error: record.error });
      } catch (err) {
        return send(res, 400, { error: String((err as Error).message) });
      }
    }
    return send(res, 404, { error: "not-found" });
  }

  const startedAtWallMs = Date.now();
  const server = createServer((req, res) => void handle(req, res).catch((err) => send(res, 500, { error: String(err) })));
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address();
  const dashboardPort = typeof address === "object" && address !== null ? address.port : port;

  let stopping = false;
  async function stop(code: number): Promise<never> {
    if (!stopping) {
      stopping = true;
      clearInterval(sampler);
      await chaos.stop();
      server.closeAllConnections();
      server.close();
      await demo.stop();
      await checker.terminate();
    }
    process.exit(code);
  }
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));

  // 8 paced clients: enough that the rate holds while answers slow down on a loaded machine.
  demo.startLoad({ clients: 8, keys: windows, readRatio: 0.8, ratePerS });
  if (chaosAtStart) chaos.start();
  if (groups > 0) console.log(`lease-core demo: sharded, ${groups} groups over ${demo.services.length} nodes (${demo.lastStatuses.map((st) => `${st?.id ?? "?"} serves ${st?.serving ?? "?"}`).join(", ")})`);
  console.log(`lease-core demo: dashboard on http://127.0.0.1:${dashboardPort}/  (etcd ${demo.cluster.clientEndpoints.join(", ")}; data in ${demo.cluster.dir})`);
  console.log(
    durationS > 0
      ? `bounded run: ${durationS} s${chaosAtStart ? `, chaos every ${chaosIntervalS} s` : `, one leader pause at ${(durationS / 3).toFixed(1)} s`}, windows of ${windowS} s`
      : `${chaosAtStart ? `chaos mode: a random fault every ${chaosIntervalS} s. ` : ""}Ctrl-C to stop (every process started here is stopped)`,
  );
  if (durationS <= 0) return;

  let pause: { failoverMs: number | undefined } | undefined;
  if (!chaosAtStart) {
    await new Promise((r) => setTimeout(r, (durationS * 1000) / 3));
    pause = await injector.inject("pause-leader", "bounded-run");
    await new Promise((r) => setTimeout(r, (durationS * 2000) / 3));
  } else {
    await new Promise((r) => setTimeout(r, durationS * 1000));
    await chaos.stop();
  }
  await demo.stopLoad();
  // Sharded: the summary's per-node counts are taken once every group is served again (a node
  // back from the pause gets its groups handed back by rendezvous within a few TTLs).
  if (groups > 0) await demo.waitForLeader(20_000).catch((err: unknown) => console.error(`lease-core demo: ${(err as Error).message}`));
  windows.flush();
  await checker.idle();
  const t = checker.tally;
  // Every recorded op went into exactly one window, and every window was checked.
  const complete = t.pending === 0 && windows.openCount === 1 && t.opsChecked === series.total.ops && t.windowsChecked === windows.sealedCount && t.windowsChecked > 0;
  const ok = t.ok === true && complete;
  const statuses = demo.lastStatuses;
  const f = t.firstFailure;
  const summary = {
    ops: series.total.ops,
    verdict: t.ok,
    complete,
    windowsChecked: t.windowsChecked,
    opsChecked: t.opsChecked,
    windowsFailed: t.windowsFailed,
    windows: t.recent.map((v) => ({ index: v.index, ok: v.ok, ops: v.ops, checkMs: Math.round(v.checkMs), states: v.stats?.states ?? null })),
    firstFailure: f === undefined || f.verdict.ok !== false ? null : { window: f.verdict.index, key: f.verdict.key, minimal: f.verdict.minimal, historyOps: f.history.length },
    faults: injector.log.map((r) => ({ kind: r.kind, at: new Date(r.atWallMs).toISOString(), target: r.target, failoverMs: r.failoverMs ?? null, error: r.error ?? null })),
    failoverAfterPauseMs: pause?.failoverMs ?? null,
    clientMs: quantiles(),
    serviceUs: statuses.map((st) => (st === null ? null : { id: st.id, state: st.state, clock: st.clock.source, ...st.latency })),
    ...(groups > 0 ? { groups: groupView() } : {}),
  };
  console.log(JSON.stringify(summary, (_k, v) => (v === Infinity ? null : v), 2));
  if (!ok) console.error(`lease-core demo: history NOT shown linearizable (${t.ok === false ? `window ${f?.verdict.index}` : t.ok === "unknown" ? (t.firstUnknown?.ok === "unknown" ? t.firstUnknown.reason : checker.error?.message) : "incomplete check"})`);
  await stop(ok ? 0 : 1);
}
