// The demo in sharded mode (`npm start -- --groups G`, demo/start.ts): 3 KV processes, each a
// multi-group node (demo/kv-groups.ts over lease-core/etcd's EtcdGroupNode), the load spread over
// 16 keys per window following redirects, one pause of the node serving the most groups at N/3.
// The bounded run exits 0 only when every window was checked and is linearizable, and its
// summary shows how many groups each node leads and serves: together, every group exactly once.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { beforeAll, expect, test } from "vitest";
import { buildDemo, root } from "./etcd/support.js";

beforeAll(() => buildDemo());

interface Summary {
  ops: number;
  verdict: boolean | "unknown";
  complete: boolean;
  windowsChecked: number;
  faults: { kind: string; target: string; error: string | null }[];
  groups?: { groupCount: number; nodes: { id: string; leading: number | null; serving: number | null }[] };
}

function run(args: string[]): Promise<{ code: number | null; summary: Summary; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "build", "demo", "start.js"), ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (err += d));
    child.once("error", reject);
    child.once("exit", (code) => {
      try {
        resolve({ code, summary: JSON.parse(out.slice(out.indexOf("\n{") + 1)) as Summary, out });
      } catch {
        reject(new Error(`no summary (exit ${code}):\n${out}\n${err}`));
      }
    });
  });
}

test("--groups 64: every window linearizable, and the nodes' led-group counts sum to G with each node leading some", async () => {
  const { code, summary, out } = await run(["--groups", "64", "--duration", "9", "--window-s", "3"]);
  expect(out).toMatch(/sharded, 64 groups over 3 nodes/);
  expect(summary.verdict).toBe(true);
  expect(summary.complete).toBe(true);
  expect(summary.ops).toBeGreaterThan(100);
  expect(summary.faults.map((f) => [f.kind, f.error])).toEqual([["pause-leader", null]]);
  const g = summary.groups!;
  expect(g.groupCount).toBe(64);
  expect(g.nodes.map((n) => n.id)).toEqual(["kv-0", "kv-1", "kv-2"]);
  const sum = (k: "leading" | "serving") => g.nodes.reduce((s, n) => s + (n[k] ?? 0), 0);
  expect(sum("leading"), JSON.stringify(g)).toBe(64);
  expect(sum("serving"), JSON.stringify(g)).toBe(64);
  // Rendezvous spreads them: every node leads some (at G = 64 over 3 nodes, about a third each).
  for (const n of g.nodes) expect(n.serving, JSON.stringify(g)).toBeGreaterThan(5);
  expect(code).toBe(0);
}, 120_000);

test("--groups rejects a count that is not an integer in [0, 65536] before starting anything", async () => {
  const child = spawn(process.execPath, [join(root, "build", "demo", "start.js"), "--groups", "1.5"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  expect(code).toBe(2);
  expect(err).toMatch(/--groups must be an integer in \[0, 65536\], got "1.5"/);
}, 30_000);

test("npm start -- --groups 1000: the dashboard shows, per node, how many groups it leads and serves, 1,000 in all; Ctrl-C cleans up", async () => {
  const child = spawn(process.execPath, [join(root, "build", "demo", "start.js"), "--groups", "1000", "--window-s", "3"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const profile = mkdtempSync(join(tmpdir(), "lease-core-chromium-"));
  try {
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("demo did not start in 60 s")), 60_000);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (line.includes("dashboard on")) {
          clearTimeout(timer);
          resolve(line);
        }
      });
      child.once("exit", (code) => reject(new Error(`demo exited early (${code})`)));
    });
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(first)![0];
    const dataDir = /data in (\S+?)\)/.exec(first)![1]!;
    const context = await chromium.launchPersistentContext(profile, { executablePath: "/usr/bin/chromium", headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"], viewport: { width: 1280, height: 1400 } });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(url);
      await page.waitForFunction(() => document.getElementById("leader")!.textContent === "sharded", undefined, { timeout: 15_000 });
      // One row per node, and the served counts sum to G (every group served exactly once).
      await page.waitForFunction(() => {
        const rows = [...document.querySelectorAll<HTMLElement>("#groups .group-node")];
        return rows.length === 3 && rows.reduce((n, r) => n + Number(r.dataset.serving || 0), 0) === 1000;
      }, undefined, { timeout: 30_000 });
      const rows = await page.$$eval("#groups .group-node", (els) => els.map((e) => ({ id: (e as HTMLElement).dataset.id, leading: Number((e as HTMLElement).dataset.leading), serving: Number((e as HTMLElement).dataset.serving) })));
      expect(rows.map((r) => r.id)).toEqual(["kv-0", "kv-1", "kv-2"]);
      expect(rows.reduce((n, r) => n + r.leading, 0)).toBe(1000);
      for (const r of rows) expect(r.serving).toBeGreaterThan(250); // rendezvous: about a third each
      expect(await page.textContent("#groups-sub")).toMatch(/1000 groups; 1000 served now/);
      mkdirSync(join(root, "test-results"), { recursive: true });
      await page.screenshot({ path: join(root, "test-results", "dashboard-groups.png"), fullPage: true });
    } finally {
      await context.close();
    }
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    expect(await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 15_000))])).toBe(0);
    expect(existsSync(dataDir)).toBe(false);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(profile, { recursive: true, force: true });
  }
}, 120_000);
