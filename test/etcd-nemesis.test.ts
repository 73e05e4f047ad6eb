// CI's bounded nemesis batch (demo/nemesis.ts): 6 runs of 20 s of randomized faults against a
// real 3-member etcd and 3 KV service processes, from a random seed printed first so that a
// failure can be replayed with `npm run nemesis -- --seed <run seed> --runs 1`.
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync } from "node:fs";
import { beforeAll, expect, test } from "vitest";
import { runNemesis } from "../demo/nemesis.js";
import { buildDemo, root, sleep } from "./etcd/support.js";

beforeAll(() => buildDemo());

const RUNS = 6;
const DURATION_S = 20;

function ownChildren(): string[] {
  // Every process whose parent is this one (the KV services, etcd members, strace).
  const out = execFileSync("ps", ["-o", "pid=,ppid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" }).trim();
  return out === "" ? [] : out.split("\n").filter((l) => !/\bps$/.test(l.trim()));
}

test(`nemesis: ${RUNS} runs of ${DURATION_S} s from a random seed stay linearizable, lose no acknowledged write, and make progress after healing`, async () => {
  const seed = Math.floor(Math.random() * 2 ** 32);
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    process.stdout.write(`${line}\n`);
  };
  log(`nemesis CI batch: seed ${seed} (replay a run: npm run nemesis -- --seed <its seed> --runs 1 --duration-s ${DURATION_S})`);
  const result = await runNemesis({ runs: RUNS, seed, durationS: DURATION_S, log });
  const failed = result.reports.find((r) => r.verdict.ok === false);
  expect(failed === undefined ? "no violation" : lines.join("\n")).toBe("no violation");
  // A run the checker could not decide within its budget proves nothing either way: most must be decided.
  expect(result.unchecked, lines.join("\n")).toBeLessThanOrEqual(1);
  expect(result.reports).toHaveLength(RUNS);
  const ops = result.reports.reduce((s, r) => s + r.ops.total, 0);
  const faults = result.reports.reduce((s, r) => s + Object.entries(r.faults).filter(([k]) => k !== "skipped").reduce((a, [, n]) => a + n, 0), 0);
  expect(ops).toBeGreaterThan(RUNS * 100);
  expect(faults).toBeGreaterThan(RUNS * 3);
  // Nothing left behind: no child process, no data dir of ours.
  expect(ownChildren()).toEqual([]);
  expect(result.reports.filter((r) => r.dataDir === undefined || existsSync(r.dataDir))).toEqual([]);
}, 420_000);

test("Ctrl-C in the middle of a run leaves nothing behind: no process, no data dir", async () => {
  const child = spawn(process.execPath, ["build/demo/nemesis.js", "--runs", "1", "--duration-s", "30", "--verbose"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const started = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the run did not start in 60 s")), 60_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (/started: etcd data dir/.test(line)) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once("exit", (code) => reject(new Error(`nemesis exited (${code}) before the run started`)));
  });
  const dir = /data dir (\S+),/.exec(started)![1]!;
  const pids = /pids ([\d,]+)/.exec(started)![1]!.split(",").map(Number);
  expect(pids.length).toBe(6); // 3 KV processes, 3 etcd members
  expect(existsSync(dir)).toBe(true);
  await sleep(4000); // faults under way
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  child.kill("SIGINT");
  expect(await exited).toBe(130);
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  expect(alive).toEqual([]);
  expect(existsSync(dir)).toBe(false);
}, 120_000);
