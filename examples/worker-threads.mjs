// A worker-thread server sharing one lease table (docs/shared-lease.md).
//
// The main thread plays the Raft loop: it creates a lease table in a shared WebAssembly.Memory,
// extends lease 0 after a (pretend) quorum round, and later invalidates it on a (pretend)
// step-down. Two worker_threads play the request handlers: each attaches to the same table and
// answers a "read" with `table.lease(0).valid()`, one atomic load on its own clock reading, no
// message to the main thread. The invalidation is seen by both workers at once.
// Every thread reads the same clock (the default CLOCK_MONOTONIC_RAW+sleep-offset); attaching a
// core on another clock is refused. It asserts what it prints and exits non-zero otherwise.
//
// Run: node examples/worker-threads.mjs   (after `npm run build`; CI: test/examples.test.ts)
import assert from "node:assert/strict";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { attachSharedLeaseTable, createLeaseCore, createSharedLeaseTable } from "lease-core";

const MS = 1_000_000n;

if (isMainThread) {
  const core = await createLeaseCore();
  const table = await createSharedLeaseTable(core, { capacity: 16 });

  // Two request handlers on the same memory (a SharedArrayBuffer: shared, not copied).
  const workers = [1, 2].map((id) => new Worker(new URL(import.meta.url), { workerData: { id, memory: table.memory } }));
  await Promise.all(workers.map((w) => new Promise((resolve, reject) => w.once("message", resolve).once("error", reject))));

  // The Raft loop's extend: from a sample taken before the quorum round, with the generation
  // read before it too (a step-down in between makes the extend fail).
  const lease = table.lease(0);
  const generation = lease.generation();
  const sampleNs = core.now();
  // ... a quorum round answers ...
  assert.equal(lease.extend(sampleNs + 700n * MS, generation), true);
  console.log("main: lease 0 extended by 700 ms");

  const ask = (worker) =>
    new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.postMessage("read");
    });

  const before = await Promise.all(workers.map(ask));
  for (const answer of before) console.log(`worker ${answer.id}: lease 0 valid ${answer.valid}`);
  assert.deepEqual(before.map((a) => a.valid), [true, true]);

  lease.invalidate(); // the step-down: one atomic transition, seen by every thread
  console.log("main: step-down, lease 0 invalidated");

  const after = await Promise.all(workers.map(ask));
  for (const answer of after) console.log(`worker ${answer.id}: lease 0 valid ${answer.valid}`);
  assert.deepEqual(after.map((a) => a.valid), [false, false]);

  await Promise.all(workers.map((w) => w.terminate()));
  console.log("worker-threads: ok");
} else {
  // A request handler: its own core (same clock), attached to the creator's table.
  const core = await createLeaseCore();
  const table = await attachSharedLeaseTable(core, workerData.memory);
  parentPort.on("message", () => {
    parentPort.postMessage({ id: workerData.id, valid: table.lease(0).valid() });
  });
  parentPort.postMessage("ready");
}
