// Conformance of the Bun host (build/bun.js) inside Bun (test/runtimes/ffi-conformance.ts does the
// work), with libc read here through bun:ffi, independently of the host (BigInt math: slow in
// JSC, but exact). test/bun.test.ts runs it.
// Usage: bun test/runtimes/bun-conformance.ts [vectors.js URL]
import { dlopen, ptr } from "bun:ffi";
import { createLeaseCore } from "../../build/bun.js";
import { runFfiConformance } from "./ffi-conformance.ts";

declare const Bun: { version: string };

const symbols = dlopen("libc.so.6", { clock_gettime: { args: ["i32", "buffer"], returns: "i32" } }).symbols;
const timespec = new BigInt64Array(new ArrayBuffer(16));
const bare = dlopen("libc.so.6", { clock_gettime: { args: ["i32", "ptr"], returns: "i32" } }).symbols.clock_gettime;
// ptr() hands libc a bare address and keeps nothing alive, so the buffer must stay reachable for
// as long as bareRead runs: the closure below captures it. Held by nothing (as it once was), it
// was collected before the timing loop every run (seen through a WeakRef) and each call wrote a
// timespec into freed memory: "Bun has crashed" about one run in 20, SIGSEGV at an address equal
// to tv_sec (the uptime in s) or SIGABRT. An unused module-level binding is not enough either:
// the module body is an async function and keeps only live values across its await.
const scratch = new Float64Array(new ArrayBuffer(16));
const scratchPtr = ptr(scratch);
const scratchRef = new WeakRef(scratch); // observes the buffer without holding it
const problems = await runFfiConformance({
  runtime: "bun",
  version: Bun.version,
  createLeaseCore,
  vectorsUrl: process.argv[2],
  libc: {
    readNs: (id: number) => (symbols.clock_gettime(id, timespec) === 0 ? timespec[0]! * 1_000_000_000n + timespec[1]! : 0n),
    bareRead: () => (bare(4, scratchPtr), scratch),
    bareTargetAlive: () => scratchRef.deref() !== undefined,
  },
});
process.exit(problems > 0 ? 1 : 0);
