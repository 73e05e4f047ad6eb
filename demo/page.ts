/**
 * The dashboard page: one HTML document plus uPlot (served by the demo from node_modules/uplot,
 * no CDN). Polls /api/state every 500 ms and /api/series (new per-second rows only) every second;
 * posts faults to /api/fault and chaos on/off to /api/chaos. The plots keep the last 5 minutes.
 * Element ids are what the Chromium test reads (#leader, #verdict, #violations, .instance rows,
 * #chart-* plots with data-points, #log rows with data-at; sharded mode (`--groups G`): #groups,
 * one .group-node row per instance with data-leading and data-serving).
 * @module
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lease-core · etcd demo</title>
<link rel="stylesheet" href="/uplot.css"><script src="/uplot.js"></script>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#f7f8fa}
 h1{font-size:20px;margin:0 0 4px} h3{margin:18px 0 6px} .sub{color:#667;margin-bottom:16px}
 table{border-collapse:collapse;background:#fff;margin:8px 0 16px;box-shadow:0 1px 2px #0001}
 td,th{padding:6px 10px;border-bottom:1px solid #eee;text-align:left;font-variant-numeric:tabular-nums}
 th{background:#eef1f5;font-weight:600}
 .leader{background:#e8f7ec} .down{color:#a33} .bar{height:8px;background:#dde;width:160px;border-radius:4px;overflow:hidden}
 .bar>div{height:100%;background:#2a9d52} button{margin:0 8px 8px 0;padding:6px 12px;border:1px solid #99a;border-radius:4px;background:#fff;cursor:pointer}
 button:hover{background:#eef} button.on{background:#b42318;color:#fff;border-color:#b42318}
 .ok{color:#1a7f37;font-weight:600} .bad{color:#b42318;font-weight:700} .cards{display:flex;gap:16px;flex-wrap:wrap}
 .card{background:#fff;padding:10px 14px;box-shadow:0 1px 2px #0001;min-width:150px} .card b{display:block;font-size:20px}
 .charts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px} .chart{background:#fff;padding:8px;box-shadow:0 1px 2px #0001}
 .chart h4{margin:0 0 4px;font-size:13px} #log{font:12px monospace;background:#fff;padding:8px;max-height:220px;overflow:auto}
 #log div{white-space:pre} #failure{font:12px monospace;white-space:pre;background:#fff0f0;padding:8px;display:none}
 .w{display:inline-block;width:10px;height:14px;margin-right:2px;background:#2a9d52} .w.bad{background:#b42318} .w.unknown{background:#d4a017}
</style></head><body>
<h1>lease-core · lease reads for a service elected through etcd</h1>
<div class="sub">3 etcd members, 3 KV instances (each its own process), a load generator, and a linearizability check of every operation: keys rotate per window, each complete window is checked once in a worker thread.</div>
<div class="cards">
 <div class="card">leader<b id="leader">–</b></div>
 <div class="card">lease remaining<b id="remaining">–</b></div>
 <div class="card">verdict<b id="verdict">–</b><span id="violations" data-count="0">0 violations</span></div>
 <div class="card">operations<b id="ops">0</b><span id="checked"></span></div>
 <div class="card">this process<b id="rss">–</b><span id="heap"></span></div>
 <div class="card">reads local / etcd<b id="split">–</b></div>
 <div class="card">faults injected<b id="nfaults">0</b><span id="chaos-state">chaos off</span></div>
</div>
<div id="failure"></div>
<div id="groups-view" style="display:none"><h3>Groups per node <span id="groups-sub" style="font-weight:400;color:#667"></span></h3>
<table id="groups"><thead><tr><th>node</th><th>leads</th><th>serves</th><th></th></tr></thead><tbody></tbody></table></div>
<h3>Per second (last 5 minutes; red lines: faults)</h3>
<div class="charts">
 <div class="chart"><h4>read latency, ms (client side): local vs through etcd</h4><div id="chart-read" data-points="0"></div></div>
 <div class="chart"><h4>write latency, ms</h4><div id="chart-write" data-points="0"></div></div>
 <div class="chart"><h4>operations per second</h4><div id="chart-ops" data-points="0"></div></div>
 <div class="chart"><h4>lease remaining per instance, ms</h4><div id="chart-lease" data-points="0"></div></div>
</div>
<div class="sub" id="etcd-guard"></div>
<h3>Faults</h3>
<div id="buttons"></div>
<div><button id="chaos" onclick="toggleChaos()">Chaos: a random fault every N s</button></div>
<h3>Windows checked <span id="windows-sub" style="font-weight:400;color:#667"></span></h3><div id="windows"></div>
<h3>KV instances</h3>
<table id="instances"><thead><tr><th>id</th><th>pid</th><th>state</th><th>lease remaining</th><th></th><th>clock</th><th>local reads</th><th>etcd reads</th><th>local p50/p99 µs</th><th>etcd p50/p99 µs</th><th>write p50/p99 µs</th></tr></thead><tbody></tbody></table>
<h3>etcd members</h3>
<table id="members"><thead><tr><th>name</th><th>up</th><th>leader</th><th>raft term</th><th>fault</th></tr></thead><tbody></tbody></table>
<h3>Client-side latency, whole run (ms, includes HTTP)</h3>
<table id="client"><tbody></tbody></table>
<h3>Fault log</h3><div id="log"></div>
<script>
const $ = (id) => document.getElementById(id);
const ms = (ns) => (Number(ns) / 1e6).toFixed(0) + " ms";
const f = (x) => (x === undefined || x === null ? "–" : Number(x).toFixed(1));
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const KEEP_S = 300;
let faultMarks = []; // { t: Unix seconds, kind } of each fault, for the markers
let chaosOn = false;
async function fault(kind) {
  const r = await fetch("/api/fault?kind=" + kind, { method: "POST" });
  const body = await r.json();
  if (!r.ok) alert(body.error);
}
async function toggleChaos() {
  await fetch("/api/chaos?on=" + (chaosOn ? "0" : "1"), { method: "POST" });
  tick();
}
// A dashed red line at each fault's time, drawn on every plot, labelled with its kind.
const SHORT = { "pause-leader": "pause", "kill-leader": "kill", "cut-leader-from-etcd": "cut", "pause-etcd-leader": "pause etcd", "kill-etcd-leader": "kill etcd", "isolate-etcd-leader": "isolate etcd" };
const faultMarkers = { hooks: { draw: [(u) => {
  const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height, px = devicePixelRatio;
  ctx.save(); ctx.strokeStyle = "#d62728"; ctx.fillStyle = "#d62728"; ctx.lineWidth = 1.5 * px; ctx.setLineDash([4 * px, 3 * px]);
  ctx.font = (10 * px) + "px system-ui,sans-serif"; ctx.textBaseline = "top";
  for (const m of faultMarks) {
    if (m.t < u.scales.x.min || m.t > u.scales.x.max) continue;
    const x = Math.round(u.valToPos(m.t, "x", true));
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
    ctx.fillText(SHORT[m.kind] || m.kind, x + 3 * px, top + 2 * px);
  }
  ctx.restore();
}] } };
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];
// Latencies on a log scale: a p99 spike during a failover and a sub-ms p50 both stay readable.
function mkChart(id, series, yLabel, log) {
  const el = $(id);
  const opts = { width: Math.max(300, el.clientWidth || 560), height: 220, plugins: [faultMarkers],
    scales: { x: { time: true }, y: log ? { distr: 3 } : {} }, axes: [{}, { label: yLabel, size: 60 }],
    series: [{}].concat(series.map((s, i) => ({ label: s, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))) };
  return new uPlot(opts, [[]].concat(series.map(() => [])), el);
}
const rows = [];
var charts; // var: the Chromium test reads window.charts and window.lastState
let lastT = 0;
function setCharts() {
  const t = rows.map((r) => r.t);
  const col = (k) => rows.map((r) => r[k]);
  const n = charts.lease.series.length - 1;
  const data = {
    read: [t, col("localP50"), col("localP99"), col("etcdP50"), col("etcdP99")],
    write: [t, col("writeP50"), col("writeP99")],
    ops: [t, col("localPerS"), col("etcdPerS"), col("writePerS"), col("unknownPerS")],
    lease: [t].concat(Array.from({ length: n }, (_, i) => rows.map((r) => (r.leaseMs[i] === undefined ? null : r.leaseMs[i])))),
  };
  for (const k of Object.keys(charts)) {
    charts[k].setData(data[k]);
    $("chart-" + k).dataset.points = String(rows.length);
  }
}
async function pullSeries() {
  let fresh;
  try { fresh = await (await fetch("/api/series?since=" + lastT)).json(); } catch { return; }
  if (fresh.length === 0) return;
  rows.push(...fresh);
  lastT = rows[rows.length - 1].t;
  while (rows.length > 0 && rows[0].t < lastT - KEEP_S) rows.shift();
  setCharts();
}
let buttonsShown = "";
var lastState;
async function tick() {
  let s;
  try { s = await (await fetch("/api/state")).json(); } catch { return; }
  lastState = s;
  if (!charts) {
    const ids = s.instances.map((i) => i.id);
    charts = {
      read: mkChart("chart-read", ["local p50", "local p99", "etcd p50", "etcd p99"], "ms (log)", true),
      write: mkChart("chart-write", ["write p50", "write p99"], "ms (log)", true),
      ops: mkChart("chart-ops", ["reads local", "reads via etcd", "writes", "writes unknown"], "ops/s"),
      lease: mkChart("chart-lease", ids.map((id) => id + " lease"), "ms"),
    };
  }
  const kinds = s.faultKinds.map((k) => k.id).join(",");
  if (kinds !== buttonsShown) {
    buttonsShown = kinds;
    $("buttons").innerHTML = s.faultKinds.map((k) => '<button id="' + esc(k.id) + '" onclick="fault(\\'' + esc(k.id) + '\\')">' + esc(k.label) + "</button>").join("");
  }
  chaosOn = s.chaos.running;
  $("chaos").textContent = chaosOn ? "Stop chaos" : "Chaos: a random fault every " + s.chaos.intervalS + " s";
  $("chaos").className = chaosOn ? "on" : "";
  $("chaos-state").textContent = chaosOn ? "chaos on, every " + s.chaos.intervalS + " s" : "chaos off";
  const leader = s.instances.find((i) => i.status && i.status.state === "leader");
  $("leader").textContent = s.groups ? "sharded" : leader ? leader.id : "none";
  if (s.groups) {
    // Sharded: how many groups each node leads (holds the key of) and serves; bars out of G.
    $("groups-view").style.display = "block";
    const served = s.groups.nodes.reduce((n, x) => n + (x.serving || 0), 0);
    $("groups-sub").textContent = "(" + s.groups.groupCount + " groups; " + served + " served now)";
    $("groups").tBodies[0].innerHTML = s.groups.nodes.map((x) => '<tr class="group-node" data-id="' + esc(x.id) + '" data-leading="' + (x.leading ?? "") + '" data-serving="' + (x.serving ?? "") + '"><td>' + esc(x.id) + "</td><td>" + (x.leading ?? "–") + "</td><td>" + (x.serving ?? "–") +
      '</td><td><div class="bar"><div style="width:' + Math.round((100 * (x.serving || 0)) / s.groups.groupCount) + '%"></div></div></td></tr>').join("");
  }
  $("remaining").textContent = leader ? ms(leader.status.remainingNs) : "–";
  const v = s.verdict;
  $("verdict").textContent = v.ok === true ? "linearizable" : v.ok === false ? "VIOLATION" : "unknown";
  $("verdict").className = v.ok === true ? "ok" : "bad";
  $("violations").textContent = v.windowsFailed + " failing window(s); " + v.opsChecked + " ops in " + v.windowsChecked + " windows checked";
  $("violations").dataset.count = String(v.windowsFailed);
  $("ops").textContent = s.ops;
  $("checked").textContent = v.pending + " window(s) waiting for the checker";
  $("rss").textContent = s.memory.rssMiB + " MiB";
  $("heap").textContent = "RSS; JS heap " + s.memory.heapUsedMiB + " MiB; up " + Math.round(s.uptimeMs / 60000) + " min";
  $("split").textContent = s.clientMs.local.count + " / " + s.clientMs.etcd.count;
  const g = s.instances.map((i) => i.status).find((st) => st && st.revokeGuard && st.revokeGuard !== "pending");
  if (g) { $("etcd-guard").textContent = "etcd " + [...new Set(Object.values(g.etcdVersions))].join(", ") + " · early revoke by a stuck etcd leader (etcd-io/etcd #15247): " + (g.revokeGuard === "etcd" ? "fixed in etcd" : g.revokeGuard === "takeover-hold" ? "covered by the takeover hold" : "UNPROTECTED"); $("etcd-guard").className = g.revokeGuard === "unprotected" ? "bad" : "sub"; }
  $("nfaults").textContent = Object.values(s.faultCounts).reduce((n, c) => n + c.injected, 0);
  $("windows-sub").textContent = "(" + s.windows.windowS + " s each; green: linearizable, red: not, amber: unknown; newest right)";
  $("windows").innerHTML = v.recent.map((w) => '<span class="w' + (w.ok === true ? "" : w.ok === false ? " bad" : " unknown") + '" title="window ' + w.index + ": " + w.ops + " ops, checked in " + w.checkMs.toFixed(0) + " ms, " + (w.states ?? "?") + ' states searched"></span>').join("");
  if (v.failure) {
    $("failure").style.display = "block";
    $("failure").textContent = "Window " + v.failure.window + " is NOT linearizable: key " + v.failure.key + " (" + v.failure.historyOps + " ops, kept whole: /api/failure). Minimal failing history:\\n" +
      v.failure.minimal.map((o) => "  client " + o.client + " " + o.kind + " " + o.value + "  [" + o.callAt.toFixed(1) + ", " + (o.returnAt === null ? "∞" : o.returnAt.toFixed(1)) + "] ms  via " + o.servedBy + (o.served ? " (" + o.served + ")" : "")).join("\\n") + "\\n";
    const link = document.createElement("a");
    link.href = "/api/failure"; link.textContent = "the whole failing window (JSON)";
    $("failure").appendChild(link);
  }
  $("instances").tBodies[0].innerHTML = s.instances.map((i) => {
    const st = i.status;
    if (!st) return '<tr class="instance down"><td>' + i.id + "</td><td>" + i.pid + "</td><td>" + (i.paused ? "paused (SIGSTOP)" : i.alive ? "no answer" : "killed") + '</td><td colspan="8"></td></tr>';
    const pct = Math.max(0, Math.min(100, (100 * Number(st.remainingNs)) / Number(st.leaseDurationNs || 1)));
    const l = st.latency;
    return '<tr class="instance' + (st.state === "leader" ? " leader" : "") + '"><td>' + st.id + "</td><td>" + st.pid + "</td><td>" + st.state + "</td><td>" + ms(st.remainingNs) +
      '</td><td><div class="bar"><div style="width:' + pct + '%"></div></div></td><td>' + st.clock.source + (st.clock.raw ? " (raw)" : "") + "</td><td>" + st.counters.localReads + "</td><td>" + st.counters.etcdReads +
      "</td><td>" + f(l.local.p50Us) + " / " + f(l.local.p99Us) + "</td><td>" + f(l.etcd.p50Us) + " / " + f(l.etcd.p99Us) + "</td><td>" + f(l.write.p50Us) + " / " + f(l.write.p99Us) + "</td></tr>";
  }).join("");
  $("members").tBodies[0].innerHTML = s.members.map((m) => "<tr" + (m.leader ? ' class="leader"' : "") + "><td>" + m.name + "</td><td>" + (m.up ? "up" : '<span class="down">down</span>') + "</td><td>" + (m.leader ? "leader" : "") + "</td><td>" + m.raftTerm + "</td><td>" + (m.isolated ? "isolated" : m.paused ? "paused" : "") + "</td></tr>").join("");
  const c = s.clientMs;
  $("client").tBodies[0].innerHTML = ["local", "etcd", "write"].map((k) => "<tr><th>" + k + "</th><td>n=" + c[k].count + "</td><td>p50 " + f(c[k].p50) + "</td><td>p99 " + f(c[k].p99) + "</td></tr>").join("");
  // Each fault at its own time (wall clock, this machine's time zone), newest first.
  faultMarks = s.faults.filter((x) => !x.error).map((x) => ({ t: x.atWallMs / 1000, kind: x.kind }));
  $("log").innerHTML = s.faults.slice().reverse().map((x) => '<div class="fault" data-at="' + x.atWallMs + '">' + esc(new Date(x.atWallMs).toLocaleTimeString([], { hour12: false }) + "  " + x.source.padEnd(6) + " " + x.kind + " " + x.target +
    (x.error ? "  (not injected: " + x.error + ")" : "") + (x.failoverMs !== undefined && x.failoverMs !== null ? "  → another instance acknowledged a write after " + x.failoverMs.toFixed(0) + " ms" : "")) + "</div>").join("");
}
setInterval(tick, 500); setInterval(pullSeries, 1000); tick().then(pullSeries);
</script></body></html>`;
