/**
 * Browser host. Module, by default: the bytes of `lease-core.wasm` inlined in this bundle
 * (base64, ~7 KB; scripts/build.mjs), compiled with `WebAssembly.compile`. Nothing is fetched,
 * so esbuild, Vite and webpack builds work as they come, with no asset to copy or serve.
 * With `wasmUrl`: the module is fetched from there and compiled with
 * `WebAssembly.compileStreaming`, which compiles while the bytes arrive, when the runtime has it
 * and the server labels the file `application/wasm` (compileStreaming rejects any other type,
 * WebAssembly Web API §3); otherwise `arrayBuffer()` + `WebAssembly.compile`. A failed fetch or
 * compile is a `WasmLoadError` (code `ERR_LEASE_WASM_LOAD`) that says what to serve where.
 * One compiled module per source per page; a failed load is not cached, so the next call retries.
 *
 * Clock: `performance.now()` (High Resolution Time), ms since the page's time origin on the
 * browser's monotonic clock. It is:
 * - not raw: browsers read the OS monotonic clock (Chromium on Linux: CLOCK_MONOTONIC through
 *   base::TimeTicks), which NTP slews;
 * - not suspend-aware: HR Time 2 asks the clock to tick during sleep, but Chromium on Linux
 *   and macOS, Firefox and Safari stop with the OS monotonic clock (crbug.com/1206450,
 *   w3c/hr-time#115; only Windows builds keep ticking), and a page gets no sleep signal;
 * - coarse: browsers clamp it against timing attacks (Chromium: 100 µs, 5 µs when
 *   `crossOriginIsolated`; Firefox: 1 ms, 20 µs isolated, 100 ms with resistFingerprinting).
 *   The resolution is measured once per page at the first load, not assumed;
 * - never frozen: it advances while script runs (unlike workerd in production).
 *
 * Instants are `performance.now()` + 1 ms, in ns: the page's first reading can be exactly 0.0,
 * and the core reads 0 as "no reading" (contract §1); a constant offset changes no duration.
 * @module
 */
import { customHostClock, jsHostClock, type ClockInfo, type ClockSource, type HostClock } from "../core/clock.js";
import { createCoreWith, type CoreOptions, type LeaseCore } from "../core/core.js";
import { InvalidOptionError, WasmLoadError } from "../core/errors.js";
import { refuseUnknownOptions } from "./options.js";

export * from "../core/api.js";

/** Options of the browser host's `createLeaseCore`. */
export interface BrowserLeaseCoreOptions extends CoreOptions {
  /**
   * Where `lease-core.wasm` is served, to fetch it (streaming compile, its own cache entry)
   * instead of using the copy inlined in this bundle (the default). Relative URLs resolve
   * against the document. Serve `node_modules/lease-core/build/lease-core.wasm` there as
   * `application/wasm`.
   */
  wasmUrl?: string | URL;
  /** A custom clock (a simulation, a test); replaces `performance.now()`. */
  clock?: ClockSource;
}

const NS_PER_US = 1_000n;
/** The constant added to every reading so the time origin itself is not instant 0. */
const ORIGIN_OFFSET_NS = 1_000_000n;
/** Bounds of the resolution probe: at most 2 ms of the clock's own time, 16 steps, or 200k reads
 *  (~25 ms at Chromium's ~120 ns per read) if the clock never moves. */
const PROBE_SPAN_NS = 2_000_000n;
const PROBE_STEPS = 16;
const PROBE_READS = 200_000;
/** Reported when the probe saw no step at all: the clock is coarser than the probe's ~25 ms,
 *  so report the coarsest clamp a browser applies by default (Firefox resistFingerprinting). */
const UNSEEN_RESOLUTION_NS = 100_000_000n;

const compiled = new Map<string, Promise<WebAssembly.Module>>();
let clockInfo: ClockInfo | undefined;

/**
 * One `performance.now()` reading in ns. Every browser clamps to a whole number of µs (at
 * least 5 µs), so rounding ms × 1000 to the nearest integer recovers the exact µs the browser
 * meant, free of float noise like 1234.1000000000001; the ns then come from BigInt math,
 * exact for any page age (a Number of ns stops being exact after 2^53 ns ≈ 104 days).
 */
function readNs(): bigint {
  return BigInt(Math.round(performance.now() * 1000)) * NS_PER_US + ORIGIN_OFFSET_NS;
}

/** The smallest non-zero step of the clock, seen in a short bounded busy loop. */
function measureResolutionNs(): bigint {
  const startNs = readNs();
  let previousNs = startNs;
  let smallestNs = 0n;
  let steps = 0;
  for (let i = 0; i < PROBE_READS && steps < PROBE_STEPS; i++) {
    const ns = readNs();
    if (ns === previousNs) continue;
    const stepNs = ns - previousNs;
    if (smallestNs === 0n || stepNs < smallestNs) smallestNs = stepNs;
    previousNs = ns;
    steps++;
    if (ns - startNs >= PROBE_SPAN_NS) break;
  }
  return smallestNs === 0n ? UNSEEN_RESOLUTION_NS : smallestNs;
}

function performanceHostClock(): HostClock {
  clockInfo ??= {
    source: "performance.now",
    raw: false,
    suspendAware: false,
    resolutionNs: measureResolutionNs(),
    mayFreeze: false,
  };
  return jsHostClock(readNs, clockInfo);
}

/** The cache key of the inlined module (never a URL: URLs are absolute). */
const INLINE = "inline";

/** The compiled core for `url` (or the inlined one), cached per page; a failed load is dropped
 *  so the next call retries. */
function compileCore(url: string): Promise<WebAssembly.Module> {
  let pending = compiled.get(url);
  if (pending === undefined) {
    pending = (url === INLINE ? compileInline() : fetchAndCompile(url)).catch((err: unknown) => {
      compiled.delete(url);
      throw err;
    });
    compiled.set(url, pending);
  }
  return pending;
}

function compileInline(): Promise<WebAssembly.Module> {
  const text = atob(__LEASE_CORE_WASM_BASE64__);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return WebAssembly.compile(bytes).catch((err: unknown) => {
    // A page whose Content-Security-Policy lacks 'wasm-unsafe-eval' refuses every compile.
    throw new WasmLoadError("inline", `lease-core: compiling the inlined lease-core.wasm failed (${String(err)}); a Content-Security-Policy must allow 'wasm-unsafe-eval' in script-src`, { cause: err });
  });
}

const SERVE_HINT = "serve node_modules/lease-core/build/lease-core.wasm at that URL as application/wasm, or omit wasmUrl to use the copy inlined in the bundle";

async function fetchAndCompile(url: string): Promise<WebAssembly.Module> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new WasmLoadError(url, `lease-core: fetching ${url} failed (${String(err)}); ${SERVE_HINT}`, { cause: err });
  }
  if (!response.ok) throw new WasmLoadError(url, `lease-core: fetching ${url} failed: HTTP ${response.status}; ${SERVE_HINT}`);
  // Decide by the header rather than try-and-fall-back: a rejected compileStreaming has
  // consumed the body, and re-fetching would double the traffic on every misconfigured server.
  const mime = (response.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  try {
    if (typeof WebAssembly.compileStreaming === "function" && mime === "application/wasm") {
      return await WebAssembly.compileStreaming(response);
    }
    return await WebAssembly.compile(await response.arrayBuffer());
  } catch (err) {
    // Typically an HTML page (a single-page app's fallback route) served in the module's place.
    throw new WasmLoadError(url, `lease-core: ${url} is not a loadable wasm module (${String(err)}; served as ${mime || "no type"}); ${SERVE_HINT}`, { cause: err });
  }
}

function resolveWasmUrl(value: unknown): string {
  if (value === undefined) return INLINE;
  if (value instanceof URL) return value.href;
  if (typeof value === "string" && value !== "") {
    // Relative to the document, as fetch() itself would resolve it; the cache key is absolute.
    return typeof document === "object" ? new URL(value, document.baseURI).href : new URL(value, globalThis.location?.href).href;
  }
  throw new InvalidOptionError("wasmUrl", "a URL or a non-empty string", value);
}

/**
 * Loads a lease core in a browser (or a Web Worker). Retryable: a failed fetch or compile
 * leaves nothing cached.
 * @throws InvalidOptionError for a bad `wasmUrl`, `clock` or sizes; WasmLoadError when the
 *   module cannot be fetched or compiled (the message says what to serve where).
 */
export async function createLeaseCore(options: BrowserLeaseCoreOptions = {}): Promise<LeaseCore> {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
  refuseUnknownOptions(options, ["maxLeases", "maxTrackers", "wasmUrl", "clock"], "createLeaseCore");
  const url = resolveWasmUrl(options.wasmUrl);
  const clock = options.clock === undefined ? performanceHostClock() : customHostClock(options.clock);
  return createCoreWith(await compileCore(url), clock, options);
}
