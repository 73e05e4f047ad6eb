/**
 * What the runtime hosts share (node.ts, deno.ts, bun.ts): the clock policies, the libc clock
 * ids the FFI hosts bind, the `performance.now()` fallback, and the per-process module cache.
 * Each host keeps only what its runtime does differently: how it gets bytes and calls libc.
 * @module
 */
import { jsHostClock, type ClockSource, type HostClock } from "../core/clock.js";
import { type CoreOptions } from "../core/core.js";
import { InvalidOptionError } from "../core/errors.js";
import { refuseUnknownOptions } from "./options.js";

/** The clock policies of the native hosts (Node, Deno, Bun), default first: `raw+sleep`
 *  (CLOCK_MONOTONIC_RAW plus the sleep offset: slew-immune, counts suspend), `boottime` (one
 *  read, counts suspend, NTP-slewed), `raw` (one read, blind to suspend). */
export type ClockPolicy = "raw+sleep" | "boottime" | "raw";

/** Options of a native host's `createLeaseCore` (Node, Deno, Bun). */
export interface NativeLeaseCoreOptions extends CoreOptions {
  /** A custom clock (a simulation, a test); overrides `clockPolicy`. */
  clock?: ClockSource;
  /** Which clock to read (default `raw+sleep`). */
  clockPolicy?: ClockPolicy;
}

/** @internal Checks the options object and the policy; returns the policy. */
export function checkNativeOptions(options: unknown): ClockPolicy {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
  refuseUnknownOptions(options, ["maxLeases", "maxTrackers", "clock", "clockPolicy"], "createLeaseCore");
  const policy = (options as NativeLeaseCoreOptions).clockPolicy ?? "raw+sleep";
  if (policy !== "raw+sleep" && policy !== "boottime" && policy !== "raw") {
    throw new InvalidOptionError("clockPolicy", '"raw+sleep", "boottime" or "raw"', policy);
  }
  return policy;
}

/** @internal Where `clock_gettime(2)` lives and its clock ids: Linux <linux/time.h>, macOS <time.h>. */
export interface PlatformClocks {
  library: string;
  raw: number;
  boottime: number;
  monotonic: number;
  rawName: string;
  boottimeName: string;
}

/** @internal On macOS CLOCK_UPTIME_RAW is the raw clock that stops in sleep and
 *  CLOCK_MONOTONIC_RAW counts sleep: the same pair as Linux's RAW and BOOTTIME
 *  (native/lease_clock.c maps them the same way). */
export const PLATFORM_CLOCKS: Partial<Record<string, PlatformClocks>> = {
  linux: { library: "libc.so.6", raw: 4, boottime: 7, monotonic: 1, rawName: "CLOCK_MONOTONIC_RAW", boottimeName: "CLOCK_BOOTTIME" },
  darwin: { library: "/usr/lib/libSystem.B.dylib", raw: 8, boottime: 4, monotonic: 8, rawName: "CLOCK_UPTIME_RAW", boottimeName: "CLOCK_MONOTONIC_RAW" },
};

/** @internal The source name a policy reports on a platform. */
export function policySource(clocks: PlatformClocks, policy: ClockPolicy): string {
  return policy === "raw+sleep" ? `${clocks.rawName}+sleep-offset` : policy === "raw" ? clocks.rawName : clocks.boottimeName;
}

/** @internal A loader cached per process: a failure is not cached, so the next call retries. */
export function cachedPerProcess<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () =>
    (pending ??= load().catch((err: unknown) => {
      pending = undefined;
      throw err;
    }));
}

/** The smallest step `performance.now()` shows, in ns (bounded: a frozen clock ends the loop). */
function performanceResolutionNs(): bigint {
  let stepMs = Infinity;
  let prev = performance.now();
  for (let i = 0, steps = 0; i < 1_000_000 && steps < 20; i++) {
    const t = performance.now();
    if (t !== prev) {
      stepMs = Math.min(stepMs, t - prev);
      prev = t;
      steps++;
    }
  }
  return stepMs === Infinity ? 1_000_000n : BigInt(Math.max(1, Math.round(stepMs * 1e6)));
}

let warnedFallback = false;

/** @internal The fallback of the FFI hosts: `performance.now()`, said once per process. */
export function performanceFallback(why: string): HostClock {
  if (!warnedFallback) {
    warnedFallback = true;
    console.warn(`lease-core: raw clock unavailable (${why}); using performance.now(), which is NTP-slewed and blind to suspend`);
  }
  // ms since process start as a float; × 1e6 is exact to the ns for 104 days of process life
  // (2^53 ns) and stays monotone after that (rounding is monotone). docs/runtime-notes.md trap 2.
  return jsHostClock(() => BigInt(Math.round(performance.now() * 1e6)), {
    source: "performance.now",
    raw: false,
    suspendAware: false,
    resolutionNs: performanceResolutionNs(),
    mayFreeze: false,
  });
}
