// The Node host: which clock it reads under each policy, the fallback when the shim is
// missing, sizing and disposal, and the clock against real time.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, test } from "vitest";
import { CapacityError, DisposedError, InvalidOptionError, createLeaseCore } from "lease-core";
import { loadNativeClock } from "../host/runtime/node-clock.js";
import { ManualClock, MS } from "./support/fakes.js";

const root = new URL("..", import.meta.url).pathname;
const native = loadNativeClock();
const within = (a: bigint, b: bigint, tolerance: bigint) => (a > b ? a - b : b - a) <= tolerance;

describe("clock policies on Linux", () => {
  test("the native shim is built and loads", () => {
    expect(native.clock, "error" in native ? native.error : "").not.toBeNull();
  });

  test("default: raw and suspend-aware, on CLOCK_MONOTONIC_RAW plus the sleep offset", async () => {
    const core = await createLeaseCore();
    expect(core.clock).toEqual({ source: "CLOCK_MONOTONIC_RAW+sleep-offset", raw: true, suspendAware: true, resolutionNs: 1n, mayFreeze: false });
    const now = core.now();
    const raw = native.clock!.readRaw();
    // The lease clock is the raw clock plus the sleep since start (0 here): same origin, same units.
    expect(within(now, raw, 10n * MS)).toBe(true);
  });

  test("boottime: one read, counts suspend, not raw", async () => {
    const core = await createLeaseCore({ clockPolicy: "boottime" });
    expect(core.clock).toMatchObject({ source: "CLOCK_BOOTTIME", raw: false, suspendAware: true });
    expect(within(core.now(), native.clock!.readBoottime(), 10n * MS)).toBe(true);
  });

  test("raw: one read, blind to suspend", async () => {
    const core = await createLeaseCore({ clockPolicy: "raw" });
    expect(core.clock).toMatchObject({ source: "CLOCK_MONOTONIC_RAW", raw: true, suspendAware: false });
    expect(within(core.now(), native.clock!.readRaw(), 10n * MS)).toBe(true);
  });

  test("readings are monotone and a real lease expires in real time", async () => {
    const core = await createLeaseCore();
    let last = 0n;
    for (let i = 0; i < 10_000; i++) {
      const now = core.now();
      expect(now >= last).toBe(true);
      last = now;
    }
    const lease = core.createLease();
    expect(lease.extend(core.now() + 50n * MS, lease.generation())).toBe(true);
    expect(lease.valid()).toBe(true);
    await sleep(100);
    expect(lease.valid()).toBe(false);
    expect(lease.reason()).toBe("expired");
    expect(core.clockEvents()).toEqual({ zeroReadings: 0n, regressions: 0n, suspends: 0n, suspendedNs: 0n });
  });

  test("an unknown policy is a typed error", async () => {
    await expect(createLeaseCore({ clockPolicy: "wall" as never })).rejects.toBeInstanceOf(InvalidOptionError);
  });
});

describe("fallback without the shim", () => {
  test("process.hrtime.bigint(), reported as not raw and not suspend-aware, with exactly one warning", () => {
    const script = `
      const warnings = [];
      process.on("warning", (w) => warnings.push(w.code));
      const { createLeaseCore } = await import("lease-core");
      const a = await createLeaseCore();
      const b = await createLeaseCore();
      const before = process.hrtime.bigint();
      const now = a.now();
      await new Promise((r) => setImmediate(r));
      console.log(JSON.stringify({ clock: a.clock, same: a.clock.source === b.clock.source && a.clock.raw === b.clock.raw, warnings,
        close: now >= before && now - before < 10_000_000n }, (k, v) => typeof v === "bigint" ? String(v) : v));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      env: { ...process.env, LEASE_CORE_NO_NATIVE: "1" },
      encoding: "utf8",
    });
    const result = JSON.parse(out);
    expect(result.clock).toEqual({ source: "process.hrtime.bigint", raw: false, suspendAware: false, resolutionNs: "1", mayFreeze: false });
    expect(result.same).toBe(true);
    expect(result.warnings).toEqual(["LEASE_CORE_CLOCK_FALLBACK"]);
    expect(result.close).toBe(true);
  });

  test("a shim that cannot be built still installs: exit 0, one warning, no .node left", () => {
    const dir = mkdtempSync(join(tmpdir(), "lease-native-"));
    try {
      cpSync(join(root, "native"), join(dir, "native"), { recursive: true, filter: (p) => !p.includes(`${"native"}/build`) });
      cpSync(join(root, "scripts"), join(dir, "scripts"), { recursive: true });
      symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
      const run = spawnSync(process.execPath, [join(dir, "scripts", "build-native.mjs")], {
        cwd: dir,
        env: { ...process.env, CC: "/bin/false", CXX: "/bin/false" },
        encoding: "utf8",
      });
      expect(run.status).toBe(0);
      const lines = `${run.stdout}${run.stderr}`.trim().split("\n");
      expect(lines).toHaveLength(1);
      // One line: why, what it means, what to install, and the command that retries.
      expect(lines[0]).toMatch(/^lease-core: native clock shim not built \(.+\); leases will use process\.hrtime\.bigint\(\) .* Install a C compiler, make and Python 3 .*, then run: npm rebuild lease-core$/);
      expect(existsSync(join(dir, "build", "lease_clock.node"))).toBe(false);
      // The reason is kept for the run-time warning, and node-gyp's intermediate files are gone.
      expect(readFileSync(join(dir, "build", "lease_clock.error"), "utf8")).not.toBe("");
      expect(existsSync(join(dir, "native", "build"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("custom clocks, sizing and disposal", () => {
  test("a custom clock drives lease.valid() without an argument", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    expect(core.clock).toMatchObject({ source: "custom", suspendAware: true });
    const lease = core.createLease();
    lease.extend(clock.ns + 10n * MS, 0n);
    expect(lease.valid()).toBe(true);
    clock.advance(10n * MS);
    expect(lease.valid()).toBe(false);
  });

  test.each([
    ["throws", () => { throw new Error("EPERM"); }],
    ["returns a number", () => 5],
    ["returns a negative", () => -5n],
    ["returns past i64", () => 1n << 63n],
  ])("a clock that %s reads as no reading, counted, and fails closed", async (_name, now) => {
    const core = await createLeaseCore({ clock: { now: now as () => bigint } });
    const lease = core.createLease();
    lease.extend(1n << 62n, 0n);
    expect(lease.valid()).toBe(false);
    expect(core.now()).toBe(0n);
    expect(core.clockEvents().zeroReadings).toBe(2n);
  });

  test("the table is sized up front, full is a typed error, dispose frees a slot", async () => {
    const core = await createLeaseCore({ clock: new ManualClock(), maxLeases: 2 });
    const bytes = core.exports.memory.buffer.byteLength;
    const a = core.createLease();
    const b = core.createLease();
    expect(() => core.createLease()).toThrow(CapacityError);
    a.extend(1n << 50n, 0n);
    a.dispose();
    a.dispose();
    expect(() => a.valid(1n)).toThrow(DisposedError);
    expect(() => a.generation()).toThrow(DisposedError);
    const c = core.createLease();
    // A reused slot never inherits the old lease, and its generation moved on.
    expect(c.expiry()).toBe(0n);
    expect(c.generation()).toBe(1n);
    expect(b.generation()).toBe(0n);
  });

  test("the memory never grows after init: every per-call operation, often enough to outgrow a page if it allocated", async () => {
    // The core allocates only in init (the stub runtime never frees): a per-call allocation of
    // even 16 bytes, repeated 50,000 times, needs 12 more 64 KiB pages. A grow would also detach
    // the buffer the clock shim is bound to (its fill then throws: native/lease_clock.c).
    const core = await createLeaseCore({ maxLeases: 2, maxTrackers: 2 });
    const buffer = core.exports.memory.buffer;
    const bytes = buffer.byteLength;
    const lease = core.createLease();
    const tracker = core.createJointQuorumAckTracker({ selfId: 1, voters: [1, 2, 3], outgoingVoters: [1, 2, 4] });
    for (let i = 0; i < 50_000; i++) {
      const now = core.now();
      lease.extend(now + 10n * MS, lease.generation());
      lease.valid();
      lease.valid(now);
      lease.reason();
      if (i % 100 === 0) lease.invalidate();
      tracker.recordAck(2 + (i % 3), now);
      tracker.quorumAck();
    }
    core.clockEvents();
    expect(core.exports.memory.buffer).toBe(buffer); // the same, never-detached buffer
    expect(buffer.byteLength).toBe(bytes);
    expect(core.now()).toBeGreaterThan(0n);
  });

  test.each([
    [{ maxLeases: 0 }],
    [{ maxLeases: 1.5 }],
    [{ maxLeases: "8" }],
    [{ maxTrackers: -1 }],
    [{ clock: { now: 5 } }],
  ])("bad options are typed errors: %j", async (options) => {
    await expect(createLeaseCore(options as never)).rejects.toBeInstanceOf(InvalidOptionError);
  });

  test("one compiled module per process: many cores, separate state", async () => {
    const cores = await Promise.all([1, 2, 3].map(() => createLeaseCore({ clock: new ManualClock() })));
    const leases = cores.map((c) => c.createLease());
    leases[0]!.invalidate();
    expect(leases.map((l) => l.generation())).toEqual([1n, 0n, 0n]);
  });
});

test("no stray native build output outside native/build and build/", () => {
  expect(readdirSync(root).filter((f) => f.endsWith(".node"))).toEqual([]);
});

describe("several cores in one thread", () => {
  test("each core reads its own clock cell: a second core never freezes the first one's clock", async () => {
    const a = await createLeaseCore();
    const lease = a.createLease();
    lease.extend(a.now() + 5n * MS, 0n);
    const t0 = a.now();
    const b = await createLeaseCore();
    const c = await createLeaseCore({ clockPolicy: "raw" });
    await sleep(50);
    b.now();
    c.now();
    expect(a.now() - t0).toBeGreaterThan(40n * MS);
    expect(lease.valid()).toBe(false);
    expect(b.now()).toBeGreaterThan(t0);
  });
});
