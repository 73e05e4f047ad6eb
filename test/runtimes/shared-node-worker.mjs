// A Node worker_threads stress worker: attaches to the table by its memory, then hammers it.
import { parentPort, workerData } from "node:worker_threads";
import { attachSharedLeaseTable, createLeaseCore } from "lease-core";
import { runStress } from "./shared-stress.mjs";

const core = await createLeaseCore();
const table = await attachSharedLeaseTable(core, workerData.memory);
const completed = new Int32Array(workerData.completed);
Atomics.add(new Int32Array(workerData.ready), 0, 1);
// Start together: contention only happens while both run.
while (Atomics.load(new Int32Array(workerData.ready), 0) < workerData.workers) Atomics.wait(new Int32Array(workerData.ready), 1, 0, 1);
const started = performance.now();
const result = runStress(table, { ops: workerData.ops, seed: workerData.seed, slots: workerData.slots, completed });
parentPort.postMessage({ ...result, ms: performance.now() - started });
