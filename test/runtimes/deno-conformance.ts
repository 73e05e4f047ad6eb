// Conformance of the Deno host (build/deno.js) inside Deno (test/runtimes/ffi-conformance.ts does
// the work). libc is read here, independently of the host, only when FFI is allowed: the runner
// never prompts. test/deno.test.ts runs it with and without --allow-ffi.
// Usage: deno run --allow-read [--allow-ffi] test/runtimes/deno-conformance.ts [vectors.js URL]
import { createLeaseCore } from "../../build/deno.js";
import { runFfiConformance } from "./ffi-conformance.ts";

declare const Deno: any;

const ffiGranted = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
const symbols = ffiGranted ? Deno.dlopen("libc.so.6", { clock_gettime: { parameters: ["i32", "buffer"], result: "i32" } }).symbols : null;
const timespec = new BigInt64Array(new ArrayBuffer(16));
const problems = await runFfiConformance({
  runtime: "deno",
  version: Deno.version.deno,
  createLeaseCore,
  vectorsUrl: Deno.args[0],
  libc: symbols && {
    readNs: (id: number) => (symbols.clock_gettime(id, timespec) === 0 ? timespec[0]! * 1_000_000_000n + timespec[1]! : 0n),
    bareRead: () => symbols.clock_gettime(4, timespec),
  },
});
if (problems > 0) Deno.exit(1);
