// The shared-table stress run for Deno and Bun, with Web Workers: `<runtime> this-file <bundle>
// <opsPerWorker> <seed>`. Prints one JSON line {runtime, ops, violations, counts}; exit 1 on any
// violation. The worker half is the same file, started as a worker named lease-stress; the
// workers wait for each other at a start barrier.
import { runStress } from "./shared-stress.mjs";

const isWorker = typeof Bun !== "undefined" ? !Bun.isMainThread : self.name === "lease-stress";

if (isWorker) {
  self.onmessage = async ({ data }) => {
    const api = await import(data.bundle);
    const core = await api.createLeaseCore();
    const table = await api.attachSharedLeaseTable(core, data.memory);
    // Start together: contention only happens while both run (a worker that finished before the
    // other started would meet no other thread at all).
    const ready = new Int32Array(data.ready);
    Atomics.add(ready, 0, 1);
    Atomics.notify(ready, 0);
    while (Atomics.load(ready, 0) < data.workers) Atomics.wait(ready, 0, Atomics.load(ready, 0), 5);
    self.postMessage(runStress(table, { ops: data.ops, seed: data.seed, slots: data.slots, completed: new Int32Array(data.completed) }));
  };
} else {
  const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
  const [bundlePath, opsText, seedText] = args;
  const bundle = new URL(bundlePath, `file://${typeof Deno !== "undefined" ? Deno.cwd() : process.cwd()}/`).href;
  const api = await import(bundle);
  const core = await api.createLeaseCore();
  const slots = 2;
  const table = await api.createSharedLeaseTable(core, { capacity: slots });
  const completed = new SharedArrayBuffer(4 * slots);
  const ready = new SharedArrayBuffer(4);
  const ops = Number(opsText);
  const results = await Promise.all(
    [1, 2].map(
      (w) =>
        new Promise((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { type: "module", name: "lease-stress" });
          worker.onmessage = ({ data }) => {
            worker.terminate();
            resolve(data);
          };
          worker.onerror = (e) => reject(e.message ?? e);
          worker.postMessage({ bundle, memory: table.memory, completed, ready, workers: 2, ops, seed: Number(seedText) * 31 + w, slots });
        }),
    ),
  );
  const violations = results.flatMap((r) => r.violations);
  const runtime = typeof Deno !== "undefined" ? `deno ${Deno.version.deno}` : `bun ${Bun.version}`;
  console.log(JSON.stringify({ runtime, clock: core.clock.source, ops: results.reduce((n, r) => n + r.ops, 0), violations, counts: results.map((r) => r.counts) }, (k, v) => (typeof v === "bigint" ? String(v) : v)));
  if (typeof Deno !== "undefined") Deno.exit(violations.length === 0 ? 0 : 1);
  else process.exit(violations.length === 0 ? 0 : 1);
}
