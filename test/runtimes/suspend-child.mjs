// Runs inside Node, Bun or Deno with test/support/clock-interposer.ts preloaded (LD_PRELOAD), for
// test/native-suspend.test.ts: the host bundle's three clock policies on the process's real
// libc clock_gettime, first under the constant per-clock offsets the parent set (each policy
// must read the clock it names), then across a simulated suspend: this script writes the
// interposer's control file, and CLOCK_BOOTTIME jumps ahead of MONOTONIC and RAW.
//   <runtime> suspend-child.mjs <host bundle URL> <suspend ns>
// Prints one JSON line.
import { writeFileSync } from "node:fs";

const [bundleUrl, jumpArg] = (globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2));
const env = (name) => (globalThis.Deno ? globalThis.Deno.env.get(name) : process.env[name]);
const { createLeaseCore } = await import(bundleUrl);
const jumpNs = BigInt(jumpArg);
const LEASE_NS = 60_000_000_000n; // 60 s: far longer than this run, far shorter than the suspend

const policies = ["raw+sleep", "boottime", "raw"];
const cores = {};
for (const policy of policies) cores[policy] = await createLeaseCore({ clockPolicy: policy });

// 1. Which clock each policy reads: its reading less the raw policy's, in seconds.
const rawNow = cores.raw.now();
const readsAhead = {};
for (const policy of policies) readsAhead[policy] = Number(cores[policy].now() - rawNow) / 1e9;

// 2. A suspend: leases proven on every core, then BOOTTIME jumps.
const state = {};
for (const policy of policies) {
  const core = cores[policy];
  const leases = [core.createLease(), core.createLease(), core.createLease()];
  const t0 = core.now();
  for (const lease of leases) lease.extend(t0 + LEASE_NS, lease.generation());
  state[policy] = { core, leases, t0, validBefore: leases.every((l) => l.valid()) };
}
writeFileSync(env("LC_FAKE_CTL"), new Uint8Array(new BigInt64Array([jumpNs, 0n]).buffer));
const after = {};
for (const policy of policies) {
  const { core, leases, t0, validBefore } = state[policy];
  const valid = leases.map((l) => l.valid());
  const events = core.clockEvents();
  after[policy] = {
    source: core.clock.source,
    validBefore,
    valid,
    reasons: leases.map((l) => l.reason()),
    advancedS: Number(core.now() - t0) / 1e9,
    suspends: String(events.suspends),
    suspendedS: Number(events.suspendedNs) / 1e9,
  };
}
console.log(JSON.stringify({ readsAhead, after }));
