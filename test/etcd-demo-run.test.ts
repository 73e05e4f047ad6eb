// The demo's bounded run (what CI runs as `DEMO_DURATION_S=20 npm start`), with the incremental
// checker: it exits 0 only when every window was checked and is linearizable. Negative control:
// the same run with the KV processes from the test build (build/unsafe/kv-service.js) and the
// test-only switch `demo-stale-read` on, where an instance answers some reads with the value
// before its last acknowledged write: the first window's verdict is red, and the run exits 1.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { beforeAll, expect, test } from "vitest";
import { buildDemo, root } from "./etcd/support.js";

beforeAll(() => buildDemo());

interface Summary {
  ops: number;
  verdict: boolean | "unknown";
  complete: boolean;
  windowsChecked: number;
  opsChecked: number;
  windows: { index: number; ok: boolean | "unknown"; ops: number }[];
  firstFailure: { window: number; key: string; minimal: { kind: string; value: string | null; served?: string }[]; historyOps: number } | null;
  faults: { kind: string; at: string; error: string | null }[];
}

/** Runs `node build/demo/start.js args` to its end; its exit code and printed summary. */
function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; summary: Summary; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "build", "demo", "start.js"), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (err += d));
    child.once("error", reject);
    child.once("exit", (code) => {
      const start = out.indexOf("\n{");
      try {
        resolve({ code, summary: JSON.parse(out.slice(start + 1)) as Summary, stderr: err });
      } catch {
        reject(new Error(`no summary (exit ${code}):\n${out}\n${err}`));
      }
    });
  });
}

test("bounded run: every op in a checked window, all linearizable, exit 0", async () => {
  const { code, summary } = await run(["--duration", "9", "--window-s", "3"], { LEASE_CORE_UNSAFE: "demo-stale-read" }); // ignored: published build
  expect(summary.verdict).toBe(true);
  expect(summary.complete).toBe(true);
  expect(summary.opsChecked).toBe(summary.ops);
  expect(summary.ops).toBeGreaterThan(100);
  expect(summary.windowsChecked).toBeGreaterThanOrEqual(3);
  expect(summary.faults.map((f) => [f.kind, f.error])).toEqual([["pause-leader", null]]);
  expect(code).toBe(0);
}, 90_000);

test("negative control: stale reads from the KV test build turn the first window red; exit 1", async () => {
  const { code, summary, stderr } = await run(["--duration", "9", "--window-s", "3", "--kv-build", "unsafe"], { LEASE_CORE_UNSAFE: "demo-stale-read" });
  expect(summary.verdict).toBe(false);
  expect(summary.firstFailure?.window).toBe(0); // within one window
  expect(summary.windows.find((w) => w.index === 0)?.ok).toBe(false);
  // The failing history is kept whole; its minimal part ends in a read of an overwritten value.
  expect(summary.firstFailure!.historyOps).toBe(summary.windows.find((w) => w.index === 0)!.ops);
  const minimal = summary.firstFailure!.minimal;
  expect(minimal.some((o) => o.kind === "read")).toBe(true);
  expect(stderr).toMatch(/window 0 NOT linearizable/);
  expect(code).toBe(1);
}, 90_000);
