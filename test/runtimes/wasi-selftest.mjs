// Runs build/lease-core.wasi-selftest.wasm under this runtime's own `node:wasi` (Node, Bun or
// Deno), with the runtime's stdout as WASI fd 1, and exits with the command's exit code.
// Usage: <runtime> test/runtimes/wasi-selftest.mjs [path/to/lease-core.wasi-selftest.wasm]
//
// Also prints, on stderr, the runtime's own clocks read just before and just after the run
// (`host-clocks before|after hrtime=<ns> epochMs=<ms> uptimeMs=<ms>`), so test/wasi.test.ts can
// tell which clock WASI MONOTONIC really is here (docs/runtime-notes.md trap 1: origins differ).
//
// docs/runtime-notes.md trap 4: Node and Deno take `getImportObject()` and call `start(instance)`; Bun's
// node:wasi (1.4) takes `getImports(module)` and wants `setMemory` before `_start` runs. Bun also
// ends the process inside proc_exit (ignoring returnOnExit; its exit code is still the guest's),
// so under Bun the "after" clock line is never printed.
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";

const path = process.argv[2] ?? new URL("../../build/lease-core.wasi-selftest.wasm", import.meta.url);
const module = new WebAssembly.Module(readFileSync(path));
// returnOnExit: proc_exit makes start() return the code instead of ending the process at once,
// so stdout is flushed by the runtime as usual.
const wasi = new WASI({ version: "preview1", args: ["lease-core-selftest"], env: {}, returnOnExit: true });

const hostClocks = (when) =>
  process.stderr.write(
    `host-clocks ${when} hrtime=${process.hrtime.bigint()} epochMs=${Date.now()} uptimeMs=${performance.now()}\n`,
  );

hostClocks("before");
const imports = typeof wasi.getImportObject === "function" ? wasi.getImportObject() : wasi.getImports(module);
const instance = new WebAssembly.Instance(module, imports);
if (typeof wasi.setMemory === "function") wasi.setMemory(instance.exports.memory);
const code = wasi.start(instance);
hostClocks("after");
process.exitCode = code ?? 0;
