// The demo's soak run: `node demo/soak.mjs [--minutes 60] [--out DIR] [-- demo flags...]` starts
// `node build/demo/start.js --chaos` (chaos mode: a random fault every 15 s, forever), keeps its
// dashboard API busy the way an open dashboard page does (/api/state every 500 ms, new
// /api/series rows every 1 s), and once a minute samples CPU% and RSS of the demo process and of
// every process under it (the KV instances, the etcd members) from /proc (proc(5): utime+stime
// of /proc/PID/stat, VmRSS of /proc/PID/status), plus the machine's load average, the operations
// checked, the faults injected and the verdict. Writes DIR/samples.jsonl (one line a minute),
// DIR/summary.json and DIR/summary.md (the table the README quotes), then stops the demo with
// SIGINT. Exit code 0 iff the verdict stayed linearizable and the demo process's CPU% and RSS
// at the last minute are within 1.2x of minute 5 (docs: README.md, "The demo").
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync, appendFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const sep = argv.indexOf("--");
const own = sep >= 0 ? argv.slice(0, sep) : argv;
const passThrough = sep >= 0 ? argv.slice(sep + 1) : [];
const opt = (name, dflt) => {
  const i = own.indexOf(`--${name}`);
  return i >= 0 ? own[i + 1] : dflt;
};
const minutes = Number(opt("minutes", "60"));
const sampleMs = Number(opt("sample-s", "60")) * 1000;
const out = resolve(opt("out", join(root, "test-results", `soak-${new Date().toISOString().replace(/[:.]/g, "-")}`)));
mkdirSync(out, { recursive: true });
const TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

const demo = spawn(process.execPath, [join(root, "build", "demo", "start.js"), "--chaos", ...passThrough], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
const log = join(out, "demo.log");
writeFileSync(log, "");
demo.stderr.on("data", (d) => appendFileSync(log, d));
const lines = createInterface({ input: demo.stdout });
const url = await new Promise((ok, fail) => {
  const timer = setTimeout(() => fail(new Error("the demo did not start in 60 s")), 60_000);
  lines.on("line", (line) => {
    appendFileSync(log, line + "\n");
    const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(line);
    if (m) {
      clearTimeout(timer);
      ok(m[0]);
    }
  });
  demo.once("exit", (code) => fail(new Error(`the demo exited (${code})`)));
});
console.log(`soak: demo pid ${demo.pid} on ${url}, ${minutes} min, samples in ${out}`);

// An open dashboard's polling.
let lastT = 0;
let state = null;
const poll = setInterval(() => {
  fetch(url + "api/state").then((r) => r.json()).then((s) => (state = s)).catch(() => undefined);
}, 500);
const pollSeries = setInterval(() => {
  fetch(url + "api/series?since=" + lastT).then((r) => r.json()).then((rows) => { if (rows.length) lastT = rows[rows.length - 1].t; }).catch(() => undefined);
}, 1000);

function read(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
/** utime+stime (ticks) and RSS (KiB) of one pid; undefined if it is gone. */
function stat(pid) {
  const s = read(`/proc/${pid}/stat`);
  const status = read(`/proc/${pid}/status`);
  if (s === undefined || status === undefined) return undefined;
  const fields = s.slice(s.lastIndexOf(")") + 2).split(" "); // after "pid (comm) "
  const ppid = Number(fields[1]);
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime: fields 14, 15 of proc(5)
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "0");
  return { ppid, ticks, rssKiB, zombie: fields[0] === "Z" };
}
/** The demo and every process under it, named by role (demo, kv-N, etcd mN). */
function tree() {
  const all = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const st = stat(Number(d));
    if (st !== undefined) all.set(Number(d), st);
  }
  const within = (pid) => {
    for (let p = pid, hops = 0; p > 1 && hops < 10; p = all.get(p)?.ppid ?? 0, hops++) if (p === demo.pid) return true;
    return false;
  };
  const procs = [];
  for (const [pid, st] of all) {
    if (!within(pid) || st.zombie) continue;
    let role = "demo";
    if (pid !== demo.pid) {
      const cmd = (read(`/proc/${pid}/cmdline`) ?? "").split("\0");
      const env = (read(`/proc/${pid}/environ`) ?? "").split("\0");
      const name = cmd.indexOf("--name");
      role = name >= 0 ? `etcd ${cmd[name + 1]}` : (env.find((e) => e.startsWith("KV_ID="))?.slice(6) ?? (read(`/proc/${pid}/comm`) ?? "?").trim());
    }
    procs.push({ pid, role, ...st });
  }
  return procs;
}
function machineBusy() {
  const cpu = read("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3] + cpu[4];
  return { total: cpu.reduce((a, b) => a + b, 0), idle };
}

// Between the minute marks, the demo process's RSS every 5 s: V8 frees its heap in cycles of a
// minute or two, so one instant per minute lands anywhere in a cycle; min/mean/max show the band.
let band = [];
const fine = setInterval(() => {
  const st = stat(demo.pid);
  if (st !== undefined) band.push(st.rssKiB / 1024);
}, 5000);
const samples = [];
let prev = new Map(tree().map((p) => [p.role, p]));
let prevBusy = machineBusy();
let prevAt = performance.now();
const samplesFile = join(out, "samples.jsonl");
writeFileSync(samplesFile, "");
for (let minute = 1; minute <= minutes; minute++) {
  await new Promise((r) => setTimeout(r, Math.max(0, prevAt + sampleMs - performance.now())));
  const now = performance.now();
  const wallS = (now - prevAt) / 1000;
  const procs = tree();
  const busy = machineBusy();
  const sample = {
    minute,
    at: new Date().toISOString(),
    loadavg: read("/proc/loadavg").split(" ").slice(0, 3).map(Number),
    machineCpuPct: +(100 * (1 - (busy.idle - prevBusy.idle) / (busy.total - prevBusy.total))).toFixed(1),
    processes: procs
      .map((p) => {
        const before = prev.get(p.role);
        // A restarted process (new pid) counts from its own start.
        const ticks = before !== undefined && before.pid === p.pid ? p.ticks - before.ticks : p.ticks;
        return { role: p.role, pid: p.pid, cpuPct: +((100 * ticks) / TICKS / wallS).toFixed(1), rssMiB: +(p.rssKiB / 1024).toFixed(1) };
      })
      .sort((a, b) => a.role.localeCompare(b.role)),
    demoMemory: state?.memory ?? null,
    demoRssBandMiB: band.length === 0 ? null : { min: +Math.min(...band).toFixed(1), mean: +(band.reduce((a, b) => a + b, 0) / band.length).toFixed(1), max: +Math.max(...band).toFixed(1), n: band.length },
    ops: state?.ops ?? null,
    opsChecked: state?.verdict.opsChecked ?? null,
    windowsChecked: state?.verdict.windowsChecked ?? null,
    pendingWindows: state?.verdict.pending ?? null,
    verdict: state?.verdict.ok ?? null,
    faultsInjected: state === null ? null : Object.values(state.faultCounts).reduce((n, c) => n + c.injected, 0),
    faultsRefused: state === null ? null : Object.values(state.faultCounts).reduce((n, c) => n + c.refused, 0),
  };
  samples.push(sample);
  appendFileSync(samplesFile, JSON.stringify(sample) + "\n");
  const d = sample.processes.find((p) => p.role === "demo");
  console.log(`soak: minute ${minute}: demo ${d?.cpuPct}% CPU ${d?.rssMiB} MiB (heap ${sample.demoMemory?.heapUsedMiB} MiB); load ${sample.loadavg[0]}; ${sample.opsChecked} ops checked, ${sample.faultsInjected} faults, verdict ${sample.verdict}`);
  band = [];
  prev = new Map(procs.map((p) => [p.role, p]));
  prevBusy = busy;
  prevAt = now;
}
clearInterval(poll);
clearInterval(pollSeries);
clearInterval(fine);
const final = await fetch(url + "api/state").then((r) => r.json()).catch(() => state);

const demoAt = (m) => samples.find((s) => s.minute === m)?.processes.find((p) => p.role === "demo");
const first = demoAt(Math.min(5, minutes));
const last = demoAt(minutes);
const ratio = (a, b) => (a === undefined || b === undefined || a === 0 ? null : +(b / a).toFixed(2));
const summary = {
  minutes,
  out,
  demo: {
    minute5: first,
    last,
    cpuRatio: ratio(first?.cpuPct, last?.cpuPct),
    rssRatio: ratio(first?.rssMiB, last?.rssMiB),
    rssBandMinute5: samples.find((s) => s.minute === Math.min(5, minutes))?.demoRssBandMiB ?? null,
    rssBandLast: samples.find((s) => s.minute === minutes)?.demoRssBandMiB ?? null,
    rssMaxRatio: ratio(samples.find((s) => s.minute === Math.min(5, minutes))?.demoRssBandMiB?.max, samples.find((s) => s.minute === minutes)?.demoRssBandMiB?.max),
    rssMeanRatio: ratio(samples.find((s) => s.minute === Math.min(5, minutes))?.demoRssBandMiB?.mean, samples.find((s) => s.minute === minutes)?.demoRssBandMiB?.mean),
  },
  ops: final?.ops,
  opsChecked: final?.verdict.opsChecked,
  windowsChecked: final?.verdict.windowsChecked,
  windowsFailed: final?.verdict.windowsFailed,
  windowsUnknown: final?.verdict.windowsUnknown,
  verdict: final?.verdict.ok,
  faults: final?.faultCounts,
  unknownWrites: final?.unknownWrites,
  clientMs: final?.clientMs,
  loadavgMean1m: +(samples.reduce((a, s) => a + s.loadavg[0], 0) / samples.length).toFixed(2),
  machineCpuPctMean: +(samples.reduce((a, s) => a + s.machineCpuPct, 0) / samples.length).toFixed(1),
};
summary.pass = summary.verdict === true && summary.demo.cpuRatio !== null && summary.demo.cpuRatio <= 1.2 && summary.demo.rssRatio !== null && summary.demo.rssRatio <= 1.2;
writeFileSync(join(out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");

// The README's table: every process's CPU% and RSS at a few minutes.
const roles = [...new Set(samples.flatMap((s) => s.processes.map((p) => p.role)))].sort((a, b) => (a === "demo" ? -1 : b === "demo" ? 1 : a.localeCompare(b)));
const marks = [1, 5, 15, 30, 45, 60].filter((m) => m <= minutes);
if (!marks.includes(minutes)) marks.push(minutes);
const cell = (m, role) => {
  const p = samples.find((s) => s.minute === m)?.processes.find((x) => x.role === role);
  return p === undefined ? "–" : `${p.cpuPct}% · ${p.rssMiB} MiB`;
};
const md = [
  `| process | ${marks.map((m) => `min ${m}`).join(" | ")} |`,
  `| --- | ${marks.map(() => "---").join(" | ")} |`,
  ...roles.map((r) => `| ${r} | ${marks.map((m) => cell(m, r)).join(" | ")} |`),
  `| demo RSS band in the minute (min–max, every 5 s) | ${marks.map((m) => { const b = samples.find((s) => s.minute === m)?.demoRssBandMiB; return b ? `${b.min}–${b.max} MiB` : "–"; }).join(" | ")} |`,
  `| load avg (1 min) | ${marks.map((m) => samples.find((s) => s.minute === m)?.loadavg[0] ?? "–").join(" | ")} |`,
  `| ops checked | ${marks.map((m) => samples.find((s) => s.minute === m)?.opsChecked ?? "–").join(" | ")} |`,
  `| faults injected | ${marks.map((m) => samples.find((s) => s.minute === m)?.faultsInjected ?? "–").join(" | ")} |`,
].join("\n");
writeFileSync(join(out, "summary.md"), md + "\n");
console.log(JSON.stringify(summary, null, 2));
console.log(md);

const exited = new Promise((r) => demo.once("exit", (code) => r(code)));
demo.kill("SIGINT");
const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), 15_000))]);
if (code === "timeout") demo.kill("SIGKILL");
console.log(`soak: demo exited ${code}`);
process.exit(summary.pass ? 0 : 1);
