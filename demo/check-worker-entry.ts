/**
 * The checker worker's own bundle (build/demo/check-worker.js): only the checker and its
 * adapter, not the demo's etcd client and HTTP server, so the worker thread costs ~10 MiB, not
 * the ~33 MiB a worker running the whole demo bundle did (measured with process.memoryUsage()).
 * @module
 */
import { runCheckWorker } from "./check-worker.js";

runCheckWorker();
