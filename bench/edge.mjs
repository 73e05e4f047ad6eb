// The edge runtimes' part of `npm run bench`: Chromium (Debian's, driven by playwright-core) and
// workerd (through miniflare, on the project's workerd binary). `node bench/edge.mjs chromium`
// or `... workerd` prints one `BENCH_JSON {...}` line like the other parts.
//
// Both clocks are coarse (Chromium: 100 µs, 5 µs cross-origin isolated; workerd: 1 ms), so each
// case runs long enough per round (>= 50 ms) that the clock's step is under 2% of it. The same
// loop runs in the page / the worker: the bare clock read (`performance.now()`, the floor), the
// host's fill into the clock cell (what a check pays for its reading), `lease.valid()`, and
// `lease.valid(nowNs)`; rounds interleave the cases and the median of the rounds is reported.
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runtimeBinary } from "../scripts/runtimes.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const rounds = Number(process.env.BENCH_ROUNDS ?? "7");
const CHROMIUM = "/usr/bin/chromium";

// Runs inside the page or the worker: `core` is a LeaseCore of that runtime's host.
const MEASURE = `
async function measure(core, rounds) {
  const lease = core.createLease();
  lease.extend(core.now() + 3600000000000n, lease.generation());
  const now = core.now();
  const fill = core.fill;
  let sink = 0;
  const cases = {
    "clock.performance": () => { sink += performance.now() > 0 ? 1 : 0; },
    "clock.default": () => { fill(); },
    "valid.default": () => { if (lease.valid()) sink++; },
    "validAt": () => { if (lease.valid(now)) sink++; },
  };
  const labels = {
    "clock.performance": "bare read: performance.now()",
    "clock.default": "bare read: the host's fill of the clock cell (performance.now -> ns)",
    "valid.default": "lease.valid() on " + core.clock.source,
    "validAt": "lease.valid(nowNs) (check alone)",
  };
  // Calibrate: iterations so that one timed run lasts >= 50 ms on this clock.
  const iterations = {};
  for (const [id, fn] of Object.entries(cases)) {
    let n = 1000;
    for (;;) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) fn();
      if (performance.now() - t0 >= 50 || n >= 1e8) break;
      n *= 4;
    }
    iterations[id] = n;
  }
  const samples = Object.fromEntries(Object.keys(cases).map((id) => [id, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [id, fn] of Object.entries(cases)) {
      const n = iterations[id];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) fn();
      samples[id].push(((performance.now() - t0) * 1e6) / n);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  return {
    results: Object.keys(cases).map((id) => ({ id, label: labels[id], ns: median(samples[id]), minNs: Math.min(...samples[id]), rounds: samples[id] })),
    clock: { ...core.clock, resolutionNs: String(core.clock.resolutionNs), freezeBudgetNs: core.clock.freezeBudgetNs === undefined ? undefined : String(core.clock.freezeBudgetNs) },
    sink,
  };
}`;

async function chromium() {
  const { chromium } = await import("playwright-core");
  const page = `<!doctype html><script type="module">
    import { createLeaseCore } from "/build/browser.js";
    ${MEASURE}
    window.runBench = async (rounds) => measure(await createLeaseCore(), rounds);
    window.ready = true;
  </script>`;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    if (path === "/") return res.writeHead(200, { "Content-Type": "text/html" }).end(page);
    if (!path.startsWith("/build/") || path.includes("..")) return res.writeHead(404).end();
    const type = path.endsWith(".wasm") ? "application/wasm" : "text/javascript";
    try {
      res.writeHead(200, { "Content-Type": type }).end(readFileSync(join(root, path)));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const userDataDir = mkdtempSync(join(tmpdir(), "lease-bench-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const tab = await context.newPage();
    await tab.goto(`http://127.0.0.1:${server.address().port}/`);
    await tab.waitForFunction(() => window.ready === true);
    const out = await tab.evaluate((r) => window.runBench(r), rounds);
    const version = context.browser()?.version() ?? "?";
    return { runtime: "chromium", version, results: out.results, extra: { part: "edge", clock: out.clock } };
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
    server.close();
  }
}

async function workerd() {
  process.env.MINIFLARE_WORKERD_PATH = runtimeBinary("workerd");
  const { Miniflare } = await import("miniflare");
  const worker = `import { createLeaseCore } from "./workerd.js";
    ${MEASURE}
    export default { async fetch(request) {
      const rounds = Number(new URL(request.url).searchParams.get("rounds"));
      return Response.json(await measure(await createLeaseCore(), rounds));
    } };`;
  const mf = new Miniflare({
    compatibilityDate: "2025-06-01",
    modulesRoot: "/",
    modules: [
      { type: "ESModule", path: "/worker.js", contents: worker },
      { type: "ESModule", path: "/workerd.js", contents: readFileSync(join(root, "build/workerd.js"), "utf8") },
      { type: "CompiledWasm", path: "/lease-core.wasm", contents: readFileSync(join(root, "build/lease-core.wasm")) },
    ],
  });
  try {
    const response = await mf.dispatchFetch(`http://bench.test/?rounds=${rounds}`);
    if (response.status !== 200) throw new Error(`worker: HTTP ${response.status}: ${await response.text()}`);
    const out = await response.json();
    const version = JSON.parse(readFileSync(join(root, "node_modules/workerd/package.json"), "utf8")).version;
    return { runtime: "workerd", version, results: out.results, extra: { part: "edge", clock: out.clock, note: "a local workerd does not freeze its clock; production Workers do" } };
  } finally {
    await mf.dispose();
  }
}

const which = process.argv[2];
const report = which === "chromium" ? await chromium() : which === "workerd" ? await workerd() : undefined;
if (!report) {
  console.error("usage: node bench/edge.mjs chromium|workerd");
  process.exit(2);
}
console.log(`BENCH_JSON ${JSON.stringify(report)}`);
