// The wasm module itself: its imports, its size, its reason codes, and the traps that must not
// leak. The ABI is a contract (docs/abi.md); these pin the parts hosts depend on.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { CoreInvariantError, REASONS, createLeaseCore } from "lease-core";
import { ManualClock } from "./support/fakes.js";

const wasm = readFileSync(new URL("../build/lease-core.wasm", import.meta.url));
const module = new WebAssembly.Module(wasm);

describe("lease-core.wasm", () => {
  test("imports only the host clock, the clock hooks and abort", () => {
    expect(WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`).sort()).toEqual(["env.abort", "lease_host.clockFault", "lease_host.clockInstant", "lease_host.readClock"]);
  });

  test("is small: under 4 KiB gzipped", () => {
    expect(gzipSync(wasm).length).toBeLessThan(4096);
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
