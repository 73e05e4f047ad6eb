// The demo's dashboard in Debian's Chromium (playwright-core, never `playwright install`; a fresh
// profile dir, headless, no sandbox, no background networking): load it, see the per-second
// plots (uPlot, served by the demo from node_modules) fill with data, inject a leader pause with
// its button, see a new leader, the fault in the log at its own time and as a red marker on the
// plots' time axis, and windows checked with 0 violations; turn chaos on with its button and see
// a chaos fault, then off. Screenshot: test-results/dashboard.png (gitignored). Then Ctrl-C
// (SIGINT) must stop every process the demo started and remove its temp dir. Negative control:
// with the KV processes from the test build answering some reads stale, the page turns red on
// the first window and shows its minimal failing history (test-results/dashboard-violation.png).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { buildDemo, root } from "./etcd/support.js";

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

beforeAll(() => buildDemo());
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

/** Points with a value in each plot (the page's uPlot instances, `charts`). */
function plotted(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const charts = (globalThis as unknown as { charts?: Record<string, { data: (number | null)[][] }> }).charts;
    const out: Record<string, number> = {};
    for (const [k, u] of Object.entries(charts ?? {})) out[k] = u.data.slice(1).reduce((n, s) => n + s.filter((v) => v !== null && v !== undefined).length, 0);
    return out;
  });
}

/** Starts the demo with `args`; its process, dashboard URL and etcd data dir, and a fresh Chromium profile dir. */
async function startDemo(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [join(root, "build", "demo", "start.js"), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const profile = mkdtempSync(join(tmpdir(), "lease-core-chromium-"));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(profile, { recursive: true, force: true });
  });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("demo did not start in 30 s")), 30_000);
    lines.on("line", (line) => {
      if (line.includes("dashboard on")) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once("exit", (code) => reject(new Error(`demo exited early (${code})`)));
  });
  const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(first)![0];
  const dataDir = /data in (\S+?)\)/.exec(first)![1]!;
  return { child, url, dataDir, profile };
}

async function stopDemo(child: ReturnType<typeof spawn>, dataDir: string): Promise<void> {
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill("SIGINT");
  const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 15_000))]);
  expect(code).toBe(0);
  expect(existsSync(dataDir)).toBe(false);
}

test("dashboard: plots fill with data; a leader pause from the button elects a new leader, shows in the log and on the plots; 0 violations; chaos on/off; Ctrl-C cleans up", async () => {
  const { child, url, dataDir, profile } = await startDemo(["--window-s", "3", "--chaos-interval-s", "2"]);
  expect(existsSync(dataDir)).toBe(true);

  const context = await chromium.launchPersistentContext(profile, { executablePath: "/usr/bin/chromium", headless: true, args: ARGS, viewport: { width: 1280, height: 1400 } });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const failedRequests: string[] = [];
    const requested: string[] = [];
    page.on("requestfailed", (r) => failedRequests.push(r.url()));
    page.on("request", (r) => requested.push(r.url()));
    await page.goto(url);
    await page.waitForFunction(() => /^kv-\d$/.test(document.getElementById("leader")!.textContent ?? ""), undefined, { timeout: 15_000 });
    // A few seconds of per-second rows in every plot.
    await page.waitForFunction(() => ["read", "write", "ops", "lease"].every((k) => Number(document.getElementById("chart-" + k)!.dataset.points) >= 3), undefined, { timeout: 20_000 });
    const before = await page.textContent("#leader");
    const clickedAtMs = Date.now();
    await page.click("#pause-leader");
    await page.waitForFunction((old) => {
      const now = document.getElementById("leader")!.textContent ?? "";
      return /^kv-\d$/.test(now) && now !== old;
    }, before, { timeout: 20_000 });
    const after = await page.textContent("#leader");
    expect(after).not.toBe(before);
    // The fault log: the pause at its own time (not the page's load time), with the failover.
    await page.waitForFunction(() => /another instance acknowledged a write/.test(document.querySelector("#log .fault")?.textContent ?? ""), undefined, { timeout: 20_000 });
    const at = Number(await page.getAttribute("#log .fault", "data-at"));
    expect(at).toBeGreaterThanOrEqual(clickedAtMs - 1000);
    expect(at).toBeLessThanOrEqual(Date.now());
    expect(await page.textContent("#log .fault")).toMatch(/button\s+pause-leader kv-\d/);
    // Windows spanning the failover checked (3 s windows), none failing.
    await page.waitForFunction((t) => {
      const v = (globalThis as unknown as { lastState?: { verdict: { recent: { closedAtWallMs: number }[] } } }).lastState;
      return (v?.verdict.recent ?? []).some((w) => w.closedAtWallMs > t + 3000);
    }, at, { timeout: 30_000 });
    expect(await page.getAttribute("#violations", "data-count")).toBe("0");
    expect(await page.textContent("#verdict")).toBe("linearizable");
    await page.waitForTimeout(1500); // the next series pull carries the rows after the fault

    // Every plot has data; the lease plot shows some instance holding a lease.
    const points = await plotted(page);
    expect(Object.keys(points).sort()).toEqual(["lease", "ops", "read", "write"]);
    for (const [k, n] of Object.entries(points)) expect(n, k).toBeGreaterThan(3);
    expect(await page.evaluate(() => (globalThis as unknown as { charts: { lease: { data: (number | null)[][] } } }).charts.lease.data.slice(1).some((s) => s.some((v) => v !== null && v > 0)))).toBe(true);
    // The fault's marker: red pixels in the read plot's canvas at the fault's x position.
    const red = await page.evaluate((tMs) => {
      const u = (globalThis as unknown as { charts: { read: { valToPos(v: number, s: string, c: boolean): number; ctx: CanvasRenderingContext2D; bbox: { top: number; height: number } } } }).charts.read;
      const x = Math.round(u.valToPos(tMs / 1000, "x", true));
      const img = u.ctx.getImageData(x - 2, u.bbox.top, 5, u.bbox.height).data;
      let n = 0;
      for (let i = 0; i < img.length; i += 4) if (img[i]! > 180 && img[i + 1]! < 90 && img[i + 2]! < 90 && img[i + 3]! > 100) n++;
      return n;
    }, at);
    expect(red).toBeGreaterThan(10);
    expect(failedRequests).toEqual([]);
    // uPlot comes from the demo itself (node_modules/uplot), nothing from elsewhere.
    expect(requested).toContain(`${url}uplot.js`);
    expect(requested.filter((r) => !r.startsWith(url))).toEqual([]);
    mkdirSync(join(root, "test-results"), { recursive: true });
    await page.screenshot({ path: join(root, "test-results", "dashboard.png"), fullPage: true });

    // Chaos from its button (every 2 s here): a chaos fault in the log, then off again.
    await page.click("#chaos");
    await page.waitForFunction(() => document.getElementById("chaos")!.textContent === "Stop chaos", undefined, { timeout: 5000 });
    await page.waitForFunction(() => [...document.querySelectorAll("#log .fault")].some((e) => /\bchaos\b/.test(e.textContent ?? "")), undefined, { timeout: 30_000 });
    await page.click("#chaos");
    await page.waitForFunction(() => /^Chaos:/.test(document.getElementById("chaos")!.textContent ?? ""), undefined, { timeout: 15_000 });
    expect((await (await fetch(`${url}api/state`)).json()).chaos.running).toBe(false);
  } finally {
    await context.close();
  }

  await stopDemo(child, dataDir);
}, 150_000);

test("negative control on the page: stale reads from the KV test build turn the verdict red with the failing window's minimal history", async () => {
  const { child, url, dataDir, profile } = await startDemo(["--window-s", "3", "--kv-build", "unsafe"], { LEASE_CORE_UNSAFE: "demo-stale-read" });
  const context = await chromium.launchPersistentContext(profile, { executablePath: "/usr/bin/chromium", headless: true, args: ARGS, viewport: { width: 1280, height: 1000 } });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById("verdict")!.textContent === "VIOLATION", undefined, { timeout: 30_000 });
    expect(await page.getAttribute("#verdict", "class")).toBe("bad");
    expect(Number(await page.getAttribute("#violations", "data-count"))).toBeGreaterThan(0);
    const failure = (await page.textContent("#failure")) ?? "";
    expect(failure).toMatch(/^Window 0 is NOT linearizable: key w0-k\d/); // the first window
    expect(failure).toMatch(/client \d+ read /);
    const whole = (await (await fetch(`${url}api/failure`)).json()) as { verdict: { index: number }; history: unknown[] };
    expect(whole.verdict.index).toBe(0);
    expect(whole.history.length).toBeGreaterThan(3);
    mkdirSync(join(root, "test-results"), { recursive: true });
    await page.screenshot({ path: join(root, "test-results", "dashboard-violation.png"), fullPage: false });
  } finally {
    await context.close();
  }
  await stopDemo(child, dataDir);
}, 90_000);