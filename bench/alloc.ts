/**
 * Node: bytes allocated per call on the fast paths, in steady state. Run by scripts/bench.mjs as
 * `node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256`: the young generation
 * (256 MB per semi-space) then holds 10M calls' garbage at up to ~25 bytes a call without a
 * scavenge. Per case: 1M warm-up calls (the JIT settles), gc(), V8's used heap size, 10M calls,
 * used heap size again, and the count of GCs in between (perf_hooks "gc" entries). With no GC
 * the difference is every byte allocated; with one, the figure is only a lower bound and says so.
 * @module
 */
import { createRequire } from "node:module";
import { PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { getHeapStatistics } from "node:v8";
import type { NativeClock } from "../host/runtime/node-clock.js";
import { emit } from "./harness.js";
import { PeerClock, PeerLease } from "./peer.js";

declare const __BUILD__: string;
declare const gc: () => void;

const lc = (await import(new URL("node.js", __BUILD__).href)) as typeof import("../host/runtime/node.js");
const native = createRequire(import.meta.url)(fileURLToPath(new URL("lease_clock.node", __BUILD__))) as NativeClock;
const CALLS = 10_000_000;
const HOUR_NS = 3_600_000_000_000n;

const core = await lc.createLeaseCore();
const lease = core.createLease();
lease.extend(core.now() + HOUR_NS, 0n);
const nowNs = core.now();
const tracker = core.createQuorumAckTracker();
const peerBuffer = new ArrayBuffer(16); // the peer's own cell and its own bound fill
const cell = new BigInt64Array(peerBuffer);
const peerFill = native.bindFill(peerBuffer, 0, "raw+sleep");
const peerClock = new PeerClock({ readRaw: () => (peerFill(), cell[0]!), readSleepOffset: () => cell[1]! });
const peer = new PeerLease(peerClock);
peer.extend(peerClock.now() + HOUR_NS, 0n);
const hrPeerClock = new PeerClock({ readRaw: () => process.hrtime.bigint() });
const hrPeer = new PeerLease(hrPeerClock);
hrPeer.extend(hrPeerClock.now() + HOUR_NS, 0n);
const sentAts = Array.from({ length: 1 << 16 }, (_, i) => nowNs + BigInt(i));

let gcs = 0;
new PerformanceObserver((list) => (gcs += list.getEntries().length)).observe({ entryTypes: ["gc"] });
const flush = () => new Promise((resolve) => setImmediate(resolve));

// Each case is its own loop (its own feedback), returning a count so nothing is dead code.
const cases: Record<string, () => number> = {
  "valid.default": () => { let n = 0; for (let i = 0; i < CALLS; i++) if (lease.valid()) n++; return n; },
  validAt: () => { let n = 0; for (let i = 0; i < CALLS; i++) if (lease.valid(nowNs)) n++; return n; },
  "recordAck.5": () => { let n = 0; for (let i = 0; i < CALLS; i++) if (tracker.recordAck(1 + (i & 3), 2, sentAts[i & 0xffff]!)) n++; return n; },
  "peer.default": () => { let n = 0; for (let i = 0; i < CALLS; i++) if (peer.valid()) n++; return n; },
  "peer.fallback": () => { let n = 0; for (let i = 0; i < CALLS; i++) if (hrPeer.valid()) n++; return n; },
};

const out: Record<string, { bytesPerCall: number; gcs: number; exact: boolean }> = {};
for (const [id, run] of Object.entries(cases)) {
  run(); // warm-up: 10M calls, the JIT has settled after it
  gc();
  await flush();
  gcs = 0;
  const before = getHeapStatistics().used_heap_size;
  const n = run();
  const after = getHeapStatistics().used_heap_size;
  await flush();
  if (n !== CALLS) throw new Error(`${id}: ${n} of ${CALLS} calls valid`);
  out[id] = { bytesPerCall: Math.max(0, after - before) / CALLS, gcs, exact: gcs === 0 };
}
emit({ runtime: "node", version: process.version, results: [], extra: { part: "alloc", calls: CALLS, alloc: out } });
