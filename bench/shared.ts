/**
 * Node: the shared lease table across worker_threads (host/core/shared.ts, issue #4), ns per call:
 *
 * - `shared.extend.single`       one thread extends one lease (the single-thread figure);
 * - `shared.extend.uncontended`  2 workers at once, each on its own lease;
 * - `shared.extend.contended`    2 workers at once on the SAME lease, interleaved untils: half
 *                                the extends lose the race by design (not later), none may be
 *                                lost: the final expiry must be the largest successful until;
 * - `shared.valid.single`        valid() on one thread (fresh clock sample + one atomic load);
 * - `shared.valid.reader`        valid() on a reader thread while another thread extends it.
 *
 * Every thread has its own core on the default clock (raw+sleep) and attaches the table by its
 * memory. Threads start together on an Atomics barrier; each times its own loop.
 * @module
 */
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import type { SharedLeaseTable } from "../host/core/shared.js";
import { emit, median, type Measured } from "./harness.js";

declare const __BUILD__: string;
const lc = (await import(new URL("node.js", __BUILD__).href)) as typeof import("../host/runtime/node.js");
const GRID_NS = 4096n;
const OPS = Number(process.env["BENCH_SHARED_OPS"] ?? 1_000_000);

interface Job {
  mode: "extend" | "valid" | "extendUntilStop";
  index: number;
  /** This thread's untils are base + (stride * i + phase + 1) * GRID. */
  stride: number;
  phase: number;
  baseNs: bigint;
}
interface JobResult {
  nsPerOp: number;
  maxSuccessNs: bigint;
  successes: number;
}

function runJob(table: SharedLeaseTable, job: Job, control: Int32Array): JobResult {
  const lease = table.lease(job.index);
  const step = GRID_NS * BigInt(job.stride);
  let until = job.baseNs + (BigInt(job.phase) + 1n) * GRID_NS;
  let maxSuccessNs = 0n;
  let successes = 0;
  const t0 = process.hrtime.bigint();
  if (job.mode === "extend") {
    for (let i = 0; i < OPS; i++) {
      if (lease.extend(until, 0n)) {
        successes++;
        maxSuccessNs = until;
      }
      until += step;
    }
  } else if (job.mode === "valid") {
    for (let i = 0; i < OPS; i++) if (lease.valid()) successes++;
  } else {
    while (Atomics.load(control, 1) === 0) {
      if (lease.extend(until, 0n)) successes++;
      until += step;
    }
  }
  const nsPerOp = Number(process.hrtime.bigint() - t0) / OPS;
  return { nsPerOp, maxSuccessNs, successes };
}

if (!isMainThread) {
  const core = await lc.createLeaseCore();
  const table = await lc.attachSharedLeaseTable(core, workerData.memory);
  const control = new Int32Array(workerData.control as SharedArrayBuffer);
  parentPort!.on("message", (job: Job) => {
    Atomics.add(control, 0, 1); // barrier: every thread arrives, then all go at once
    while (Atomics.load(control, 0) < workerData.parties) {}
    parentPort!.postMessage(runJob(table, job, control));
  });
  parentPort!.postMessage("ready");
} else {
  const rounds = Number(process.env["BENCH_ROUNDS"] ?? 5);
  const core = await lc.createLeaseCore();
  const table = await lc.createSharedLeaseTable(core, { capacity: 8 * 8 * (rounds + 1) });
  const control = new Int32Array(new SharedArrayBuffer(8));
  const workers = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<Worker>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { memory: table.memory, control: control.buffer, parties: 2 } });
          w.once("message", () => resolve(w));
          w.once("error", reject);
        }),
    ),
  );
  const ask = (w: Worker, job: Job) => new Promise<JobResult>((resolve) => w.once("message", resolve));
  // A fresh lease (generation 0, no expiry) per measurement, 8 slots (128 bytes) from the last:
  // two leases on one cache line would contend even when "uncontended" (false sharing).
  let nextIndex = 0;
  const fresh = () => (nextIndex += 8);
  const samples: Record<string, number[]> = {};
  const push = (id: string, v: number) => (samples[id] ??= []).push(v);
  let lostUpdates = 0;
  let contendedSuccesses = 0;
  const baseNs = () => table.epochNs + ((core.now() - table.epochNs + 3_600_000_000_000n) / GRID_NS) * GRID_NS;

  for (let r = 0; r < rounds; r++) {
    push("shared.extend.single", runJob(table, { mode: "extend", index: fresh(), stride: 1, phase: 0, baseNs: baseNs() }, control).nsPerOp);

    // Two workers: reset the barrier, hand out the jobs, wait for both.
    const pair = async (jobs: [Job, Job]) => {
      Atomics.store(control, 0, 0);
      Atomics.store(control, 1, 0);
      const answers = workers.map((w, k) => {
        const p = ask(w, jobs[k]!);
        w.postMessage(jobs[k]);
        return p;
      });
      return Promise.all(answers);
    };
    const b = baseNs();
    const un = await pair([
      { mode: "extend", index: fresh(), stride: 1, phase: 0, baseNs: b },
      { mode: "extend", index: fresh(), stride: 1, phase: 0, baseNs: b },
    ]);
    push("shared.extend.uncontended", median(un.map((x) => x.nsPerOp)));

    const same = fresh();
    const co = await pair([
      { mode: "extend", index: same, stride: 2, phase: 0, baseNs: b },
      { mode: "extend", index: same, stride: 2, phase: 1, baseNs: b },
    ]);
    push("shared.extend.contended", median(co.map((x) => x.nsPerOp)));
    const want = co.reduce((m, x) => (x.maxSuccessNs > m ? x.maxSuccessNs : m), 0n);
    if (table.lease(same).expiry() !== want) lostUpdates++;
    contendedSuccesses += co[0]!.successes + co[1]!.successes;

    const single = table.lease(fresh());
    single.extend(baseNs(), 0n);
    push("shared.valid.single", runJob(table, { mode: "valid", index: single.index, stride: 1, phase: 0, baseNs: 0n }, control).nsPerOp);

    // Reader: worker 0 extends lease `rl` until worker 1 has done its OPS valid() calls.
    const rl = fresh();
    table.lease(rl).extend(b, 0n);
    Atomics.store(control, 0, 0);
    Atomics.store(control, 1, 0);
    const writer = ask(workers[0]!, {} as Job);
    workers[0]!.postMessage({ mode: "extendUntilStop", index: rl, stride: 1, phase: 0, baseNs: b } satisfies Job);
    const reader = ask(workers[1]!, {} as Job);
    workers[1]!.postMessage({ mode: "valid", index: rl, stride: 1, phase: 0, baseNs: 0n } satisfies Job);
    const rd = await reader;
    Atomics.store(control, 1, 1);
    await writer;
    if (rd.successes !== OPS) throw new Error(`reader saw the lease invalid ${OPS - rd.successes} times`);
    push("shared.valid.reader", rd.nsPerOp);
  }
  for (const w of workers) await w.terminate();
  const labels: Record<string, string> = {
    "shared.extend.single": "SharedLease.extend(), 1 thread",
    "shared.extend.uncontended": "SharedLease.extend(), 2 workers, own lease each",
    "shared.extend.contended": "SharedLease.extend(), 2 workers, same lease",
    "shared.valid.single": "SharedLease.valid(), 1 thread",
    "shared.valid.reader": "SharedLease.valid() on a reader thread while a writer extends",
  };
  const results: Measured[] = Object.entries(samples).map(([id, rs]) => ({ id, label: labels[id]!, ns: median(rs), minNs: Math.min(...rs), rounds: rs }));
  emit({
    runtime: "node",
    version: process.version,
    results,
    extra: { part: "shared", opsPerThread: OPS, lostUpdates, contendedExtendsTakingEffect: contendedSuccesses, contendedExtends: 2 * OPS * rounds },
  });
}
