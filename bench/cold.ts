/**
 * Cold start, in a fresh process (scripts/bench.mjs runs it several times per runtime and takes
 * the median): the time to import the host bundle, the first `createLeaseCore()` (read and
 * compile lease-core.wasm, load the clock, instantiate, init, prime the clock), and a second
 * one (the compiled module is cached per process: instantiate, init, prime).
 * @module
 */
import { emit } from "./harness.js";

declare const __BUILD__: string;
declare const Deno: any;
declare const Bun: any;

const runtime = typeof Deno !== "undefined" ? "deno" : typeof Bun !== "undefined" ? "bun" : "node";
const t0 = performance.now();
const lc = (await import(new URL(`${runtime}.js`, __BUILD__).href)) as typeof import("../host/runtime/node.js");
const t1 = performance.now();
const first = await lc.createLeaseCore();
const t2 = performance.now();
await lc.createLeaseCore();
const t3 = performance.now();
if (first.now() === 0n) throw new Error("cold: no clock reading");
emit({
  runtime,
  version: runtime === "deno" ? Deno.version.deno : runtime === "bun" ? Bun.version : process.version,
  results: [],
  extra: { part: "cold", clock: first.clock.source, importMs: t1 - t0, firstCreateMs: t2 - t1, secondCreateMs: t3 - t2 },
});
if (runtime === "deno") Deno.exit(0);
