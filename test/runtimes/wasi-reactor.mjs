// Runs wasi-reactor-check.mjs under this runtime (Bun, Deno; Node too) and prints its facts as
// one JSON line on stdout. Usage: <runtime> test/runtimes/wasi-reactor.mjs [lease-core.wasi.wasm]
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";
import { instantiateReactor, reactorFacts } from "./wasi-reactor-check.mjs";

const path = process.argv[2] ?? new URL("../../build/lease-core.wasi.wasm", import.meta.url);
const { exports } = instantiateReactor(WASI, readFileSync(path));
console.log(JSON.stringify(await reactorFacts(exports)));
