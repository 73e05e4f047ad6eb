// The Deno host's clock arithmetic on a simulated libc: Deno.dlopen, Deno.UnsafePointer.of and
// the FFI permission query are replaced before build/deno.js is loaded, so clock_gettime writes
// the timespecs this script chooses (200 days of uptime, suspends, negative offsets, failures)
// into the core's clock cell. A real clock shows only today's values. Prints ONE JSON line,
// exits 1 on any failure. test/deno.test.ts runs it (with --allow-read only: no real FFI).
declare const Deno: any;

const RAW = 4;
const BOOTTIME = 7;
const MONOTONIC = 1;
const NS = 1_000_000_000n;
const clocks = new Map<number, readonly [bigint, bigint]>(); // clock id → [tv_sec, tv_nsec]
const calls: number[] = [];
let failing = false;

Deno.permissions.querySync = () => ({ state: "granted" });
Deno.UnsafePointer.of = (view: ArrayBufferView) => view; // the "pointer" is the view itself
Deno.dlopen = () => ({
  symbols: {
    clock_gettime(id: number, view: ArrayBufferView): number {
      calls.push(id);
      const ts = clocks.get(id);
      if (failing || ts === undefined) return -1;
      new BigInt64Array(view.buffer, view.byteOffset, 2).set(ts);
      return 0;
    },
    clock_getres(_id: number, view: ArrayBufferView): number {
      new BigInt64Array(view.buffer, view.byteOffset, 2).set([0n, 1n]);
      return 0;
    },
  },
});
const { createLeaseCore } = await import("../../build/deno.js");

const problems: string[] = [];
let checks = 0;
const expectEqual = (actual: unknown, expected: unknown, what: string) => {
  checks++;
  if (actual !== expected) problems.push(`${what}: expected ${String(expected)}, got ${String(actual)}`);
};
const setClocks = (raw: readonly [bigint, bigint], boot: readonly [bigint, bigint], mono: readonly [bigint, bigint]) => {
  clocks.set(RAW, raw);
  clocks.set(BOOTTIME, boot);
  clocks.set(MONOTONIC, mono);
};

// raw+sleep: RAW, then BOOTTIME before MONOTONIC; 200 days up (tv_sec * 1e9 > 2^53) and 5 s
// already slept (an offset above 2^32 ns). Then a 2 s suspend: BOOTTIME runs on, the others stop.
{
  const up = 200n * 86_400n;
  setClocks([up, 7n], [up + 5n, 0n], [up, 0n]);
  const core = await createLeaseCore();
  expectEqual(core.clock.source, "CLOCK_MONOTONIC_RAW+sleep-offset", "raw+sleep source");
  expectEqual(core.clock.resolutionNs, 1n, "resolution from clock_getres");
  calls.length = 0;
  expectEqual(core.now(), up * NS + 7n, "raw+sleep reading at 200 days");
  expectEqual(calls.join(","), [RAW, BOOTTIME, MONOTONIC].join(","), "read order");
  const lease = core.createLease();
  expectEqual(lease.extend(up * NS + 10n * NS, lease.generation()), true, "extend");
  setClocks([up, 1_000n], [up + 7n, 1_000n], [up, 1_000n]);
  expectEqual(core.now(), up * NS + 1_000n + 2n * NS, "the lease clock counts the suspend");
  expectEqual(core.clockEvents().suspends, 1n, "suspend detected");
  expectEqual(lease.reason(), "suspend-detected", "lease after the suspend");
}

// A slightly negative offset across a second boundary (MONOTONIC read after BOOTTIME), then
// 800 ns of growth, under the suspend tolerance: only the growth moves the lease clock.
{
  setClocks([100n, 0n], [100n, NS - 200n], [101n, 100n]); // offset -300 ns
  const core = await createLeaseCore();
  expectEqual(core.now(), 100n * NS, "reading with a negative offset");
  setClocks([100n, 10n], [102n, 500n], [102n, 0n]); // offset +500 ns
  expectEqual(core.now(), 100n * NS + 10n + 800n, "offset growth of 800 ns");
  expectEqual(core.clockEvents().suspends, 0n, "no suspend under the tolerance");
}

// boottime and raw read one clock each; a failing clock_gettime is no reading.
{
  setClocks([50n, 1n], [60n, NS - 1n], [50n, 0n]);
  const boot = await createLeaseCore({ clockPolicy: "boottime" });
  expectEqual(boot.clock.source, "CLOCK_BOOTTIME", "boottime source");
  expectEqual(boot.now(), 60n * NS + NS - 1n, "boottime reading");
  const raw = await createLeaseCore({ clockPolicy: "raw" });
  expectEqual(raw.clock.suspendAware, false, "raw is blind to suspend");
  expectEqual(raw.now(), 50n * NS + 1n, "raw reading");
  failing = true;
  expectEqual(raw.now(), 0n, "failing clock_gettime");
  expectEqual(raw.clockEvents().zeroReadings, 1n, "zero reading counted");
  failing = false;
}

console.log(JSON.stringify({ runtime: "deno", checks, problems }));
if (problems.length > 0) Deno.exit(1);
