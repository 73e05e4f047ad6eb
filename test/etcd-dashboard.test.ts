// The demo's dashboard in Debian's Chromium (playwright-core, never `playwright install`): load
// it, inject a leader pause with its button, see a new leader and 0 linearizability violations,
// save a screenshot (test-results/dashboard.png, gitignored). Then Ctrl-C (SIGINT) must stop
// every process the demo started and remove its temp dir.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { buildDemo, root } from "./etcd/support.js";

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

beforeAll(() => buildDemo());
let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => cleanup?.());

test("dashboard: a leader pause from the button elects a new leader with 0 violations; Ctrl-C cleans up", async () => {
  const child = spawn(process.execPath, [join(root, "build", "demo", "start.js")], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
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
  expect(existsSync(dataDir)).toBe(true);

  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(url);
    await page.waitForFunction(() => /^kv-\d$/.test(document.getElementById("leader")!.textContent ?? ""), undefined, { timeout: 15_000 });
    const before = await page.textContent("#leader");
    await page.waitForTimeout(1000); // some history first
    await page.click("#pause-leader");
    await page.waitForFunction((old) => {
      const now = document.getElementById("leader")!.textContent ?? "";
      return /^kv-\d$/.test(now) && now !== old;
    }, before, { timeout: 20_000 });
    const after = await page.textContent("#leader");
    // Let the checker run on a history that spans the failover (it runs every 2 s).
    await page.waitForTimeout(4500);
    await page.waitForFunction(() => Number(document.getElementById("ops")!.textContent) > 0);
    expect(after).not.toBe(before);
    expect(await page.getAttribute("#violations", "data-count")).toBe("0");
    expect(await page.textContent("#verdict")).toBe("linearizable");
    mkdirSync(join(root, "test-results"), { recursive: true });
    await page.screenshot({ path: join(root, "test-results", "dashboard.png"), fullPage: true });
  } finally {
    await browser.close();
  }

  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill("SIGINT");
  const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000))]);
  expect(code).toBe(0);
  expect(existsSync(dataDir)).toBe(false);
}, 90_000);
