// lease-core under Bun: the same few lines as on Node, through the `bun` export condition
// (build/bun.js). The core reads CLOCK_MONOTONIC_RAW plus the suspend offset through bun:ffi
// calls to libc; if bun:ffi cannot load libc, performance.now() (not raw, not suspend-aware), and
// `core.clock` says so. It asserts what it prints and exits non-zero otherwise.
//
// Run: bun examples/bun.ts
//   (inside this package, after `npm run build`; CI: test/examples.test.ts)
import { createLeaseCore } from "lease-core";

const MS = 1_000_000n;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
function check(ok: boolean, claim: string): void {
  if (!ok) throw new Error(`claim failed: ${claim}`);
}

const core = await createLeaseCore();
const { source, raw, suspendAware, resolutionNs } = core.clock;
console.log(`bun: clock ${source}, raw ${raw}, suspend-aware ${suspendAware}, resolution ${resolutionNs} ns`);

// A lease extended to one clock sample + 50 ms: valid now, expired 100 ms later.
const lease = core.createLease();
check(lease.extend(core.now() + 50n * MS, lease.generation()), "the extend takes effect");
const validNow = lease.valid();
await sleep(100);
const validLater = lease.valid();
console.log(`bun: lease of 50 ms valid now ${validNow}, after 100 ms ${validLater} (${lease.reason()})`);
check(validNow && !validLater && lease.reason() === "expired", "valid now, expired after 100 ms");
console.log("bun: ok");
