// A WASI host calling the core directly: no lease-core JavaScript at all, only the reactor
// module `lease-core/lease-core.wasi.wasm` (found through the package's exports) and the raw
// ABI of docs/abi.md. The module reads its own clock, WASI clock_time_get(MONOTONIC), so any
// WASI preview1 runtime can host it the same way (wasmtime, wasmer, a Go or Rust embedder).
// Under Node that clock is uvwasi's CLOCK_MONOTONIC: NTP-slewed, blind to suspend (docs/abi.md
// "WASI hosts"). Node 20 prints an ExperimentalWarning for node:wasi (docs/runtime-notes.md trap 4).
// It asserts what it prints and exits non-zero otherwise.
//
// Run: node examples/wasi-host.mjs   (after `npm run build`; CI: test/examples.test.ts)
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { WASI } from "node:wasi";

const MS = 1_000_000n;

// A reactor: no _start; initialize() runs its _initialize once. Node 20 needs the version.
const bytes = await readFile(new URL(import.meta.resolve("lease-core/lease-core.wasi.wasm")));
const wasi = new WASI({ version: "preview1" });
const instance = await WebAssembly.instantiate(await WebAssembly.compile(bytes), wasi.getImportObject());
wasi.initialize(instance);
const core = instance.exports;

core.init(64, 4); // room for 64 leases and 4 quorum-ack trackers

// One reading of WASI MONOTONIC through the clock rules (0n would mean "no reading").
const now = core.clockSample();
assert.ok(now > 0n);
console.log(`wasi: clockSample() = ${now} ns`);

// A lease: allocate a slot, extend it to now + 50 ms under its current generation, check it.
const slot = core.leaseAlloc();
assert.ok(slot >= 0, "a free lease slot");
assert.equal(core.leaseExtend(slot, now + 50n * MS, core.leaseGeneration(slot)), 1);
const validNow = core.leaseValid(slot, core.clockSample()) === 1;
await sleep(100);
const later = core.clockSample();
const validLater = core.leaseValid(slot, later) === 1;
console.log(`wasi: lease ${slot} of 50 ms valid now ${validNow}, after 100 ms ${validLater}`);
assert.equal(validNow, true);
assert.equal(validLater, false);
assert.equal(core.leaseReason(slot, later), core.REASON_EXPIRED.value); // reason codes are exported globals

// The clock rules counted nothing wrong: no zero reading, no regression.
assert.deepEqual([core.clockZeroReadings(), core.clockRegressions()], [0n, 0n]);
core.leaseFree(slot);
console.log("wasi-host: ok");
