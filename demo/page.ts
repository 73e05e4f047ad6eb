/**
 * The dashboard page: one self-contained HTML document (no external assets), polling
 * /api/state every 250 ms and posting faults to /api/fault. Element ids are what the Chromium
 * test reads (#leader, #verdict, #violations, .instance rows).
 * @module
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lease-core · etcd demo</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#f7f8fa}
 h1{font-size:20px;margin:0 0 4px} .sub{color:#667;margin-bottom:16px}
 table{border-collapse:collapse;background:#fff;margin:8px 0 16px;box-shadow:0 1px 2px #0001}
 td,th{padding:6px 10px;border-bottom:1px solid #eee;text-align:left;font-variant-numeric:tabular-nums}
 th{background:#eef1f5;font-weight:600}
 .leader{background:#e8f7ec} .down{color:#a33} .bar{height:8px;background:#dde;width:160px;border-radius:4px;overflow:hidden}
 .bar>div{height:100%;background:#2a9d52} button{margin:0 8px 8px 0;padding:6px 12px;border:1px solid #99a;border-radius:4px;background:#fff;cursor:pointer}
 button:hover{background:#eef} .ok{color:#1a7f37;font-weight:600} .bad{color:#b42318;font-weight:700} .cards{display:flex;gap:16px;flex-wrap:wrap}
 .card{background:#fff;padding:10px 14px;box-shadow:0 1px 2px #0001;min-width:150px} .card b{display:block;font-size:20px}
 #log{font:12px monospace;white-space:pre;background:#fff;padding:8px;max-height:160px;overflow:auto}
</style></head><body>
<h1>lease-core · lease reads for a service elected through etcd</h1>
<div class="sub">3 etcd members, 3 KV instances (each its own process), a load generator recording every operation, and a linearizability check of the whole history.</div>
<div class="cards">
 <div class="card">leader<b id="leader">–</b></div>
 <div class="card">lease remaining<b id="remaining">–</b></div>
 <div class="card">verdict<b id="verdict">–</b><span id="violations" data-count="0">0 violations</span></div>
 <div class="card">operations<b id="ops">0</b></div>
 <div class="card">reads local / etcd<b id="split">–</b></div>
</div>
<div class="sub" id="etcd-guard"></div>
<h3>Faults</h3>
<div>
 <button id="pause-leader" onclick="fault('pause-leader')">Pause the leader (SIGSTOP 3 s)</button>
 <button id="kill-leader" onclick="fault('kill-leader')">Kill the leader</button>
 <button id="kill-etcd-leader" onclick="fault('kill-etcd-leader')">Kill the etcd leader</button>
 <button id="isolate-etcd-leader" onclick="fault('isolate-etcd-leader')">Isolate the etcd leader (4 s)</button>
</div>
<h3>KV instances</h3>
<table id="instances"><thead><tr><th>id</th><th>pid</th><th>state</th><th>lease remaining</th><th></th><th>clock</th><th>local reads</th><th>etcd reads</th><th>local p50/p99 µs</th><th>etcd p50/p99 µs</th><th>write p50/p99 µs</th></tr></thead><tbody></tbody></table>
<h3>etcd members</h3>
<table id="members"><thead><tr><th>name</th><th>up</th><th>leader</th><th>raft term</th><th>fault</th></tr></thead><tbody></tbody></table>
<h3>Client-side latency (ms, includes HTTP)</h3>
<table id="client"><tbody></tbody></table>
<h3>Faults injected</h3><div id="log"></div>
<script>
const $ = (id) => document.getElementById(id);
const ms = (ns) => (Number(ns) / 1e6).toFixed(0) + " ms";
const f = (x) => (x === undefined || x === null ? "–" : Number(x).toFixed(1));
async function fault(kind) {
  const r = await fetch("/api/fault?kind=" + kind, { method: "POST" });
  const body = await r.json();
  if (!r.ok) alert(body.error);
}
async function tick() {
  let s;
  try { s = await (await fetch("/api/state")).json(); } catch { return; }
  const leader = s.instances.find((i) => i.status && i.status.state === "leader");
  $("leader").textContent = leader ? leader.id : "none";
  $("remaining").textContent = leader ? ms(leader.status.remainingNs) : "–";
  const v = s.verdict.ok;
  $("verdict").textContent = v === true ? "linearizable" : v === false ? "VIOLATION" : "unknown";
  $("verdict").className = v === true ? "ok" : "bad";
  const violations = v === false ? 1 : 0;
  $("violations").textContent = violations + " violations (" + s.verdict.ops + " ops checked)";
  $("violations").dataset.count = String(violations);
  $("ops").textContent = s.ops;
  $("split").textContent = s.clientMs.local.count + " / " + s.clientMs.etcd.count;
  const g = s.instances.map((i) => i.status).find((st) => st && st.revokeGuard && st.revokeGuard !== "pending");
  if (g) { $("etcd-guard").textContent = "etcd " + [...new Set(Object.values(g.etcdVersions))].join(", ") + " · early revoke by a stuck etcd leader (etcd-io/etcd #15247): " + (g.revokeGuard === "etcd" ? "fixed in etcd" : g.revokeGuard === "takeover-hold" ? "covered by the takeover hold" : "UNPROTECTED"); $("etcd-guard").className = g.revokeGuard === "unprotected" ? "bad" : "sub"; }
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
  $("log").textContent = s.faults.map((x) => new Date(performance.timeOrigin).toISOString().slice(11, 19) + " +" + (x.atMs / 1000).toFixed(1) + "s " + x.kind + " " + x.target + (x.failoverMs !== undefined ? " → new leader acknowledged a write after " + x.failoverMs.toFixed(0) + " ms" : "")).join("\\n");
}
setInterval(tick, 250); tick();
</script></body></html>`;
