// The wasm module itself: its imports, its size, its reason codes, and the traps that must not
// leak. The ABI is a contract (docs/abi.md); these pin the parts hosts depend on.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { CoreInvariantError, REASONS, createLeaseCore } from "lease-core";
import { ManualClock } from "./support/fakes.js";
import { ANSWER_CAPABLE, ANSWER_LEADER } from "../host/generated/constants.js";

const wasm = readFileSync(new URL("../build/lease-core.wasm", import.meta.url));
const module = new WebAssembly.Module(wasm);

describe("lease-core.wasm", () => {
  test("imports only the host clock, the clock hooks and abort", () => {
    expect(WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`).sort()).toEqual(["env.abort", "lease_host.clockFault", "lease_host.clockInstant", "lease_host.readClock"]);
  });

  // 4 KiB until the whole reader moved in (issue #14: guards, transfer state, extend rules,
  // joint quorums, margins); asserts stay on, so their messages count too.
  test("is small: under 6 KiB gzipped", () => {
    expect(gzipSync(wasm).length).toBeLessThan(6144);
  });

  test("its reason codes are the host's REASONS, in order", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    const exports = core.exports as unknown as Record<string, WebAssembly.Global>;
    REASONS.forEach((reason, code) => {
      const name = `REASON_${reason.toUpperCase().replaceAll("-", "_")}`;
      expect(exports[name]?.value, name).toBe(code);
    });
    expect(Object.keys(exports).filter((k) => k.startsWith("REASON_"))).toHaveLength(REASONS.length);
  });

  test("a broken invariant in the core surfaces as CoreInvariantError, not a bare trap", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    // Hosts never pass an unallocated slot; doing so behind their back trips the core's assert.
    expect(() => core.exports.leaseFree(4000)).toThrow(CoreInvariantError);
  });

  test("asserts stay on in the release build", () => {
    const text = readFileSync(new URL("../build/lease-core.wat", import.meta.url), "utf8");
    expect(text).toMatch(/call \$~lib\/builtins\/abort/);
  });
});

describe("readerDecide (the raw ABI's reader, no floor input) applies the core's own last clock fault", () => {
  test("an engine ack sampled before a regression never serves, once the clock is past it again", async () => {
    const clock = new ManualClock();
    const core = await createLeaseCore({ clock });
    const ex = core.exports;
    const slot = ex.leaseAlloc();
    ex.readerOpen(slot);
    const leaseNs = 700_000_000n;
    const leaderCapable = ANSWER_CAPABLE | ANSWER_LEADER;
    clock.advance(1_000_000n);
    const ackNs = core.now(); // the engine's ack, before the fault
    clock.advance(500_000_000n);
    core.now();
    clock.advance(-400_000_000n);
    expect(core.now()).toBe(0n); // a regression
    clock.advance(450_000_000n); // past the last good instant: the ack looks 550 ms old, is 950 ms
    const nowNs = core.now();
    expect(nowNs).toBeGreaterThan(core.lastClockFaultNs());
    const outcome = ex.readerDecide(slot, nowNs, leaderCapable, leaseNs, ackNs, 0n, 0n, 0n);
    expect(REASONS[outcome & 0xff], "served by a pre-fault ack").not.toBe("valid");
    // A fresh ack after the fault still serves.
    expect(REASONS[ex.readerDecide(slot, nowNs, leaderCapable, leaseNs, nowNs, 0n, 0n, 0n) & 0xff]).toBe("valid");
  });
});
