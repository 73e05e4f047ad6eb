// The optional N-API clock shim for Node and Bun: loads build/lease_clock.node (built from
// native/lease_clock.c by scripts/build-native.mjs).
//
// Clocks, per clock_gettime(2):
// - raw: CLOCK_MONOTONIC_RAW. Not slewed by NTP or adjtime(3), which is why the lease reads it;
//   it does not count time the machine is suspended. macOS: CLOCK_UPTIME_RAW, the same properties.
// - boottime: CLOCK_BOOTTIME, like CLOCK_MONOTONIC but it also counts suspend.
// - monotonic: CLOCK_MONOTONIC, what process.hrtime.bigint() reads; NTP-slewed, stops in suspend.
// - sleep offset: boottime - monotonic, the total time suspended since boot. It only grows, and
//   only across a suspend, which is how the core detects one (docs/contract.md §1.2).
// Every reading is ns as a signed 64-bit count; 0 means "no reading" (the clock failed, or its
// ns count would not fit an int64).
//
// When the shim is missing the caller falls back to process.hrtime.bigint() and reports that it
// is not raw and not suspend-aware: nothing here is silent, the error says why.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export interface NativeClock {
  readRaw(): bigint;
  readBoottime(): bigint;
  readMonotonic(): bigint;
  readSleepOffset(): bigint;
  resolutionNs(name: "raw" | "boottime" | "monotonic"): bigint;
  /** Binds the 16-byte cell [i64 at +0, i64 at +8] the fill* functions write. `buffer` is meant
   *  to be a WebAssembly.Memory's: growing that memory detaches it, so bind again after a grow.
   *  The shim keeps the buffer and the offset, never an address: every fill re-reads the
   *  buffer's address, and one detached since (transferred, posted to a worker, or its memory
   *  grown) makes the fill throw an Error with code ERR_LEASE_CLOCK_STALE_BINDING, writing
   *  nothing. Every other failure throws as well (code ERR_LEASE_CLOCK_NATIVE); clock names must
   *  match exactly (no embedded NUL). */
  bindCell(buffer: ArrayBuffer, byteOffset: number): void;
  /** A new fill function writing one reading into THIS cell only (every core has its own; the
   *  module-level fill* share one cell per thread). Same validation as bindCell. */
  bindFill(buffer: ArrayBuffer, byteOffset: number, kind: "raw+sleep" | "raw" | "boottime" | "monotonic"): () => void;
  /** +0 = raw, +8 = sleep offset; +0 = 0 (and +8 = 0) if a clock failed. No-op when unbound. */
  fillRawSleep(): void;
  /** +0 = boottime, +8 = 0. */
  fillBoottime(): void;
  /** +0 = raw, +8 = 0. */
  fillRaw(): void;
  /** +0 = monotonic, +8 = 0. */
  fillMonotonic(): void;
}

// Bundled into build/ or dist/, or the source (host/runtime/, run by the tests): the shim always
// sits in the package's build/ directory. A bundle never looks outside its package.
const FROM_SOURCE = import.meta.url.endsWith("/host/runtime/node-clock.ts");
const CANDIDATES = FROM_SOURCE ? ["../../build/lease_clock.node"] : ["../build/lease_clock.node", "./lease_clock.node"];

/** What builds the shim in an installed package: its `install` script, run again by npm. */
const REBUILD_HINT = "install a C compiler, make and Python 3, then run: npm rebuild lease-core";

/** Why the build at install failed, as scripts/build-native.mjs recorded it. */
function installFailure(): string | null {
  for (const candidate of FROM_SOURCE ? ["../../build/lease_clock.error"] : ["../build/lease_clock.error", "./lease_clock.error"]) {
    try {
      const line = readFileSync(fileURLToPath(new URL(candidate, import.meta.url)), "utf8").trim();
      if (line !== "") return `the shim was not built at install: ${line}; ${REBUILD_HINT}`;
    } catch {
      // no record: never built, or built fine
    }
  }
  return null;
}

/** Loads the shim. Never throws: a missing or broken shim is `{ clock: null, error }`.
 *  `LEASE_CORE_NO_NATIVE=1` forces the fallback; it is read on every call so tests can flip it. */
export function loadNativeClock(): { clock: NativeClock } | { clock: null; error: string } {
  if (process.env["LEASE_CORE_NO_NATIVE"] === "1") {
    return { clock: null, error: "disabled by LEASE_CORE_NO_NATIVE=1" };
  }
  const require = createRequire(import.meta.url);
  const paths = [...new Set(CANDIDATES.map((c) => fileURLToPath(new URL(c, import.meta.url))))];
  const failures: string[] = [];
  for (const path of paths) {
    if (!existsSync(path)) continue;
    try {
      const clock = require(path) as NativeClock;
      // A shim from an older build may lack a function; one that loads but cannot read the raw
      // clock (a kernel or sandbox without CLOCK_MONOTONIC_RAW) would fail every lease closed.
      // Both are better reported as "not available" so the host falls back and says why.
      if (typeof clock.bindFill !== "function" || typeof clock.readRaw !== "function") {
        failures.push(`${path}: not the expected shim (${REBUILD_HINT})`);
        continue;
      }
      if (clock.readRaw() === 0n) {
        failures.push(`${path}: CLOCK_MONOTONIC_RAW gives no reading here`);
        continue;
      }
      return { clock };
    } catch (e) {
      failures.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (failures.length > 0) return { clock: null, error: failures.join("; ") };
  return { clock: null, error: installFailure() ?? `lease_clock.node not found (looked in ${paths.join(", ")}); ${REBUILD_HINT}` };
}
