#!/usr/bin/env node
// The `lease-core` command (`lease-core doctor`, ...), for Node, Deno and Bun alike:
//   node bin/lease-core.js doctor
//   bun bin/lease-core.js doctor
//   deno run --allow-read --allow-ffi --allow-env bin/lease-core.js doctor
//   node bin/lease-core.js doctor --json --lease-ms 700 --drift-ppm 50   (exit 0 iff fit)
// It picks the runtime's own host bundle and ordinary monotonic clock, and hands both to the
// portable CLI (build/cli.js).
import { main } from "../build/cli.js";

const deno = globalThis.Deno;
const bun = globalThis.Bun;
const host = await import(deno ? "../build/deno.js" : bun ? "../build/bun.js" : "../build/node.js");
const runtime = {
  name: deno ? `deno ${deno.version.deno}` : bun ? `bun ${bun.version}` : `node ${process.versions.node}`,
  createLeaseCore: host.createLeaseCore,
  // Node: hrtime (CLOCK_MONOTONIC, ns). Deno and Bun: performance.now() (CLOCK_MONOTONIC, µs-exact).
  monotonicNs: deno || bun ? () => BigInt(Math.round(performance.now() * 1e3)) * 1000n : () => process.hrtime.bigint(),
  monotonicName: deno || bun ? "performance.now()" : "process.hrtime.bigint()",
};
const status = await main(deno ? deno.args : process.argv.slice(2), runtime);
if (deno) deno.exit(status);
else process.exitCode = status;
