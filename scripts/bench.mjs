// `npm run bench` (issue #6): every runtime in ONE run, side by side, then the table of medians
// with each check's ratio to the floor measured in the same run, and bench/results/latest.json.
//
//   1. bundles bench/*.ts with esbuild into a temp dir (the lease-core bundles in build/ are
//      imported from there by file URL, so they load their .wasm and .node from build/);
//   2. compiles bench/native/clock_check.c with `cc -O2` into the temp dir and runs it;
//   3. runs each part in its own process: per runtime (node, deno, bun) one process per clock;
//      Chromium and workerd (bench/edge.mjs) on their coarse performance.now() clocks
//      (one core on one clock, as an application has) plus the core cases; Node also the shared
//      table across worker_threads, allocation per call, and cold start (5 fresh processes per
//      runtime, median);
//   4. prints the table, the targets with their measured values, and writes the JSON.
// Needs the build (npm ci runs it; `node scripts/build.mjs` otherwise). Options:
//   --quick        fewer and shorter rounds (a smoke run, ~1 min)
//   --only=node,deno,bun,chromium,workerd,native,shared,alloc,cold,sharded   a subset (sharded:
//                  Node's batch lease-read hit per group alone; node includes it)
//   --out=FILE     the JSON elsewhere (default bench/results/latest.json)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem, release } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { evaluateTargets, formatTable } from "../bench/report.mjs";
import { runtimeBinary } from "./runtimes.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
const outFile = resolve(root, args.find((a) => a.startsWith("--out="))?.slice(6) ?? "bench/results/latest.json");
const want = (part) => !only || only.includes(part);
const DENO = runtimeBinary("deno");
const BUN = runtimeBinary("bun");
const env = { ...process.env, BENCH_ROUNDS: quick ? "3" : "7", BENCH_MIN_CPU_MS: quick ? "15" : "40" };

for (const file of ["build/node.js", "build/deno.js", "build/bun.js", "build/lease-core.wasm", "build/lease-core.shared.wasm", "build/lease_clock.node"]) {
  if (!existsSync(join(root, file))) {
    console.error(`bench: ${file} is missing: run node scripts/build.mjs first (npm ci does it)`);
    process.exit(2);
  }
}

const tmp = mkdtempSync(join(tmpdir(), "lease-core-bench-"));
const load0 = loadavg();
const started = Date.now();
const reports = [];
const failures = [];

/** Runs one part and collects its BENCH_JSON line; a failure is recorded, not fatal. */
function runPart(name, command, argv, extraEnv = {}) {
  const t0 = Date.now();
  const r = spawnSync(command, argv, { cwd: root, env: { ...env, ...extraEnv }, encoding: "utf8", timeout: 120_000, maxBuffer: 16 << 20 });
  const line = (r.stdout ?? "").split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (r.status !== 0 || !line) {
    failures.push(`${name}: exit ${r.status}${r.signal ? ` (${r.signal})` : ""}: ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`);
    process.stderr.write(`  ${name}: FAILED\n`);
    return undefined;
  }
  const report = JSON.parse(line.slice("BENCH_JSON ".length));
  reports.push(report);
  process.stderr.write(`  ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return report;
}

try {
  process.stderr.write(`bench: load average ${load0.map((x) => x.toFixed(2)).join(" ")} on ${cpus().length} CPUs\n`);
  const buildUrl = pathToFileURL(join(root, "build") + "/").href;
  const bundle = async (entry, platform) => {
    const outfile = join(tmp, `${entry}.mjs`);
    await build({
      entryPoints: [join(root, "bench", `${entry}.ts`)],
      outfile,
      bundle: true,
      format: "esm",
      platform,
      mainFields: ["module", "main"],
      target: "es2022",
      define: { __BUILD__: JSON.stringify(buildUrl) },
      external: ["bun:ffi", "bun:jsc"],
      logLevel: "warning",
    });
    return outfile;
  };
  const [nodeJs, ffiJs, allocJs, coldJs, sharedJs] = await Promise.all([
    bundle("node", "node"),
    bundle("ffi", "neutral"),
    bundle("alloc", "node"),
    bundle("cold", "neutral"),
    bundle("shared", "node"),
  ]);

  let native;
  if (want("native")) {
    const exe = join(tmp, "clock_check");
    const cc = spawnSync("cc", ["-O2", "-o", exe, join(root, "bench/native/clock_check.c")], { encoding: "utf8" });
    if (cc.status !== 0) failures.push(`native: cc -O2 failed: ${cc.stderr}`);
    else {
      const r = spawnSync(exe, [], { encoding: "utf8", timeout: 60_000 });
      if (r.status === 0) {
        native = JSON.parse(r.stdout);
        process.stderr.write("  native (cc -O2): done\n");
      } else failures.push(`native: exit ${r.status}`);
    }
  }

  const parts = ["clock:default", "clock:raw", "clock:fallback", "core"];
  if (want("node")) for (const p of [...parts, "peer:bigint"]) runPart(`node ${p}`, process.execPath, [nodeJs], { BENCH_PART: p });
  if (want("node") || want("sharded")) for (const p of ["sharded", "sharded:object"]) runPart(`node ${p}`, process.execPath, [nodeJs], { BENCH_PART: p });
  if (want("deno")) for (const p of parts) runPart(`deno ${p}`, DENO, ["run", "--allow-read", "--allow-ffi", "--allow-env", ffiJs], { BENCH_PART: p });
  if (want("bun")) for (const p of parts) runPart(`bun ${p}`, BUN, [ffiJs], { BENCH_PART: p });
  if (want("chromium")) runPart("chromium", process.execPath, [join(root, "bench", "edge.mjs"), "chromium"]);
  if (want("workerd")) runPart("workerd (miniflare)", process.execPath, [join(root, "bench", "edge.mjs"), "workerd"]);
  if (want("shared")) runPart("node shared table (2 workers)", process.execPath, [sharedJs]);
  if (want("alloc")) runPart("node bytes per call", process.execPath, ["--expose-gc", "--min-semi-space-size=256", "--max-semi-space-size=256", allocJs]);
  if (want("cold")) {
    const runners = { node: [process.execPath, [coldJs]], deno: [DENO, ["run", "--allow-read", "--allow-ffi", "--allow-env", coldJs]], bun: [BUN, [coldJs]] };
    for (const [rt, [cmd, argv]] of Object.entries(runners)) for (let i = 0; i < (quick ? 3 : 5); i++) runPart(`${rt} cold start #${i + 1}`, cmd, argv);
  }

  // Module sizes: what a user downloads (the core) and what each host adds.
  const size = (file) => {
    const bytes = readFileSync(join(root, file));
    return { bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length };
  };
  const sizes = Object.fromEntries(["build/lease-core.wasm", "build/lease-core.shared.wasm", "build/node.js", "build/deno.js", "build/bun.js", "build/browser.js", "build/workerd.js"].filter((f) => existsSync(join(root, f))).map((f) => [f, size(f)]));

  const versions = {
    node: process.version,
    deno: reports.find((r) => r.runtime === "deno")?.version,
    bun: reports.find((r) => r.runtime === "bun")?.version,
    cc: spawnSync("cc", ["--version"], { encoding: "utf8" }).stdout?.split("\n")[0],
    mitata: JSON.parse(readFileSync(join(root, "node_modules/mitata/package.json"), "utf8")).version,
  };
  const cpuModel = cpus()[0]?.model ?? "unknown";
  const clocksource = (() => {
    try {
      return readFileSync("/sys/devices/system/clocksource/clocksource0/current_clocksource", "utf8").trim();
    } catch {
      return "unknown";
    }
  })();
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpuModel, cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), clocksource, loadAvgStart: load0, loadAvgEnd: loadavg() },
    versions,
    params: { rounds: Number(env.BENCH_ROUNDS), minCpuMsPerSample: Number(env.BENCH_MIN_CPU_MS), quick },
    durationS: (Date.now() - started) / 1000,
    native,
    sizes,
    reports,
    failures,
  };
  result.targets = evaluateTargets(result);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(result, null, 2) + "\n");
  const table = formatTable(result);
  console.log(table);
  console.log(`\nwrote ${outFile}`);
  // BENCHMARKS.md keeps the latest full run (not --quick, not --only): its "Latest run" section.
  if (!quick && !only && outFile === resolve(root, "bench/results/latest.json")) {
    const page = join(root, "BENCHMARKS.md");
    const head = readFileSync(page, "utf8").split("\n## Latest run")[0];
    writeFileSync(page, `${head}\n## Latest run\n\n${table}\n`);
    console.log(`wrote ${page}`);
  }
  if (failures.length) {
    console.error(`\n${failures.length} part(s) failed:\n  ${failures.join("\n  ")}`);
    process.exitCode = 1;
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

