// Runs build/lease-core.wasi-selftest.wasm under @wasmer/wasi (wasmer's WASI implementation,
// compiled to wasm, npm), a WASI host independent of node:wasi/uvwasi, on Node. Prints the
// command's stdout and stderr, and exits with its exit code.
// Usage: node test/runtimes/wasi-selftest-wasmer.mjs [path/to/lease-core.wasi-selftest.wasm]
//
// As wasi-selftest.mjs, prints the host's clocks before and after on stderr. What @wasmer/wasi's
// MONOTONIC really is (docs/runtime-notes.md trap 5) is decided by test/wasi.test.ts from these lines.
import { readFileSync } from "node:fs";
import { init, WASI } from "@wasmer/wasi";

const path = process.argv[2] ?? new URL("../../build/lease-core.wasi-selftest.wasm", import.meta.url);
await init(); // loads wasmer's own wasm
const module = await WebAssembly.compile(readFileSync(path));
const wasi = new WASI({ args: ["lease-core-selftest"], env: {} });

const hostClocks = (when) =>
  process.stderr.write(
    `host-clocks ${when} hrtime=${process.hrtime.bigint()} epochMs=${Date.now()} uptimeMs=${performance.now()}\n`,
  );

hostClocks("before");
await wasi.instantiate(module, {});
const code = wasi.start();
hostClocks("after");
// @wasmer/wasi buffers the guest's stdio in memory: copy it out.
process.stdout.write(wasi.getStdoutString());
process.stderr.write(wasi.getStderrString());
process.exitCode = code;
