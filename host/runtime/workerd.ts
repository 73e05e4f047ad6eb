/**
 * workerd / Cloudflare Workers host. Module: `import wasmModule from "./lease-core.wasm"`, which
 * workerd (and wrangler's default rules) load as a CompiledWasm module: workerd refuses to
 * compile wasm from bytes at run time ("Wasm code generation disallowed by embedder"), so
 * `WebAssembly.compile(bytes)` and `compileStreaming` are not options. The bundle keeps the
 * import external; `lease-core.wasm` must sit beside `workerd.js`.
 *
 * Clock: `performance.now()`, which in workerd is `Date.now()`: epoch ms, 1 ms steps
 * (docs/runtime-notes.md). It is:
 * - not raw and not suspend-aware: a wall clock; if it ever stepped back the core would count
 *   a regression and invalidate every lease (contract §1), so a step fails closed;
 * - FROZEN while code runs in production: "Date.now() returns the time of the last I/O; it does
 *   not advance during code execution" (developers.cloudflare.com/workers/runtime-apis/
 *   web-standards). A lease checked late in a CPU-bound stretch looks younger than it is.
 *   A local workerd does not freeze, which is why the core reports `mayFreeze: true` anyway.
 *
 * Frozen-clock budget (docs/edge-clocks.md): every lease read through this core's readers is
 * shortened by `freezeBudgetNs` (default 50 ms), the time a check may lag the last I/O. The
 * host puts it in `clock.freezeBudgetNs`; the readers apply it to the lease duration, not to the
 * clock: shifting every reading forward by the budget would shift the extend sample by the same
 * amount and cancel out.
 * @module
 */
// @ts-expect-error -- resolved by workerd's module loader (type CompiledWasm), not by tsc.
import wasmModule from "./lease-core.wasm";
import { I64_MAX } from "../core/checks.js";
import { customHostClock, jsHostClock, type ClockSource, type HostClock } from "../core/clock.js";
import { createCoreWith, type CoreOptions, type LeaseCore } from "../core/core.js";
import { InvalidOptionError, WasmLoadError } from "../core/errors.js";
import { refuseUnknownOptions } from "./options.js";

export * from "../core/api.js";

/**
 * The default frozen-clock budget: 50 ms. It covers five times the whole CPU allowance of a
 * free-plan request (10 ms) and any sane CPU stretch between two awaits, while costing only
 * 7% of a 700 ms lease (the reference store's). Workers that run longer CPU-bound stretches
 * between I/O must raise it, or await an I/O before reading (docs/edge-clocks.md).
 */
export const DEFAULT_FREEZE_BUDGET_NS = 50_000_000n;

/** Options of the workerd host's `createLeaseCore`. */
export interface WorkerdLeaseCoreOptions extends CoreOptions {
  /** A custom clock (a simulation, a test); replaces `performance.now()` and takes no budget. */
  clock?: ClockSource;
  /**
   * How far a check may lag the real time because the clock stood still since the last I/O,
   * in ns (default `DEFAULT_FREEZE_BUDGET_NS`). Every lease duration an engine reports to this
   * core's readers is shortened by it; a duration at or below it disables lease reads.
   */
  freezeBudgetNs?: bigint;
}

const NS_PER_US = 1_000n;
const NS_PER_MS = 1_000_000n;

/**
 * One reading in ns. Epoch ms × 1e6 is past 2^53, so a Number of ns would be off by up to
 * 256 ns (docs/runtime-notes.md trap 2); ms × 1000 is an exact Number of µs until the year 2255, and
 * rounding it keeps sub-ms readings exact should workerd ever offer them. The rest is BigInt.
 */
function readNs(): bigint {
  return BigInt(Math.round(performance.now() * 1000)) * NS_PER_US;
}

function describeBudget(budgetNs: bigint): string {
  return budgetNs % NS_PER_MS === 0n ? `${budgetNs / NS_PER_MS} ms` : `${budgetNs} ns`;
}

function performanceHostClock(budgetNs: bigint): HostClock {
  return jsHostClock(readNs, {
    source: `performance.now (frozen-clock budget ${describeBudget(budgetNs)})`,
    raw: false,
    suspendAware: false,
    resolutionNs: NS_PER_MS,
    mayFreeze: true,
    // The readers take it off every lease duration (host/core/reader.ts). The proof
    // (docs/edge-clocks.md): a reading is never later than the true time and lags it by at most
    // the budget, so with the extend sample s <= true sample time and the check reading
    // c >= true check time - budget, `c < s + (d - budget)` implies a true age < d.
    freezeBudgetNs: budgetNs,
  });
}

/**
 * The imported module, which must be a compiled `WebAssembly.Module`: a bundler that turned the
 * import into bytes or a URL (esbuild's `binary` / `file` loaders, Vite's `?url`) cannot work
 * here, since workerd refuses to compile wasm at run time.
 */
function importedModule(): WebAssembly.Module {
  const value: unknown = wasmModule;
  if (value instanceof WebAssembly.Module) return value;
  const got = value instanceof Uint8Array || value instanceof ArrayBuffer ? "bytes" : typeof value === "string" ? `the string ${JSON.stringify(value.slice(0, 60))}` : typeof value;
  throw new WasmLoadError(
    "./lease-core.wasm",
    `lease-core: the workerd entry's import of lease-core.wasm gave ${got}, not a compiled WebAssembly.Module (workerd does not compile wasm at run time); ` +
      "bundle with wrangler (its default rules load *.wasm as CompiledWasm) or keep *.wasm external and upload lease-core.wasm beside the worker as a CompiledWasm module",
  );
}

/**
 * Loads a lease core in workerd. Retryable (nothing is cached but the imported module).
 * @throws WasmLoadError when the bundler did not keep `lease-core.wasm` a compiled module;
 *   InvalidOptionError for a bad `freezeBudgetNs`, a budget next to a custom `clock`
 *   (it would be silently meaningless), or bad sizes.
 */
export async function createLeaseCore(options: WorkerdLeaseCoreOptions = {}): Promise<LeaseCore> {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
  refuseUnknownOptions(options, ["maxLeases", "maxTrackers", "clock", "freezeBudgetNs"], "createLeaseCore");
  const budget: unknown = options.freezeBudgetNs;
  if (budget !== undefined && (typeof budget !== "bigint" || budget < 0n || budget > I64_MAX)) {
    throw new InvalidOptionError("freezeBudgetNs", "a bigint of ns in [0, 2^63-1]", budget);
  }
  if (options.clock !== undefined) {
    if (budget !== undefined) throw new InvalidOptionError("freezeBudgetNs", "omitted with a custom clock (the budget is for performance.now)", budget);
    return createCoreWith(importedModule(), customHostClock(options.clock), options);
  }
  const budgetNs = (budget as bigint | undefined) ?? DEFAULT_FREEZE_BUDGET_NS;
  return createCoreWith(importedModule(), performanceHostClock(budgetNs), options);
}
