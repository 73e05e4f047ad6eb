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
const scratchPtr = ptr(new Float64Array(new ArrayBuffer(16)));
const problems = await runFfiConformance({
  runtime: "bun",
  version: Bun.version,
  createLeaseCore,
  vectorsUrl: process.argv[2],
  libc: {
    readNs: (id: number) => (symbols.clock_gettime(id, timespec) === 0 ? timespec[0]! * 1_000_000_000n + timespec[1]! : 0n),
    bareRead: () => bare(4, scratchPtr),
  },
});
process.exit(problems > 0 ? 1 : 0);
