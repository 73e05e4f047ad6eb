// The WASI reactor (build/lease-core.wasi.wasm) checked against the real clock, under whichever
// runtime imports this: Node, Bun and Deno all give the same `node:wasi` WASI class. No side
// effects on import; test/wasi.test.ts calls it in-process on Node, wasi-reactor.mjs under Bun
// and Deno.

const MS = 1_000_000n;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Instantiates the reactor under `WASI` (the node:wasi class) and runs `_initialize` once.
 * docs/runtime-notes.md trap 4: Node (preview1) and Deno: getImportObject() + initialize(instance); Bun 1.4:
 * getImports(module) + setMemory(memory), and no initialize(), so `_initialize` is called directly.
 */
export function instantiateReactor(WASI, bytes, options = {}) {
  const module = new WebAssembly.Module(bytes);
  const wasi = new WASI({ version: "preview1", args: [], env: {}, returnOnExit: true, ...options });
  const imports = typeof wasi.getImportObject === "function" ? wasi.getImportObject() : wasi.getImports(module);
  const instance = new WebAssembly.Instance(module, imports);
  if (typeof wasi.setMemory === "function") wasi.setMemory(instance.exports.memory);
  if (typeof wasi.initialize === "function") wasi.initialize(instance);
  else instance.exports._initialize();
  return { module, instance, exports: instance.exports };
}

/** Facts about the reactor's clock and one real 50 ms lease; each a plain value the caller asserts. */
export async function reactorFacts(exports) {
  exports.init(64, 4);
  const first = exports.clockSample();
  let monotone = true;
  let prev = first;
  for (let i = 0; i < 10_000; i++) {
    const now = exports.clockSample();
    if (now < prev) monotone = false;
    prev = now;
  }
  // Units: elapsed WASI time over a sleep, against the runtime's hrtime (ns on every runtime).
  const w0 = exports.clockSample();
  const h0 = process.hrtime.bigint();
  await sleep(50);
  const wasiElapsedNs = exports.clockSample() - w0;
  const hrtimeElapsedNs = process.hrtime.bigint() - h0;

  // A lease extended to one sample + 50 ms: valid at once, not after 100 ms.
  const slot = exports.leaseAlloc();
  const start = exports.clockSample();
  const extended = exports.leaseExtend(slot, start + 50n * MS, exports.leaseGeneration(slot)) === 1;
  const validAtOnce = exports.leaseValid(slot, exports.clockSample()) === 1;
  await sleep(100);
  const later = exports.clockSample();
  return {
    first: String(first),
    monotone,
    wasiElapsedNs: String(wasiElapsedNs),
    hrtimeElapsedNs: String(hrtimeElapsedNs),
    extended,
    validAtOnce,
    validAfter100ms: exports.leaseValid(slot, later) === 1,
    reasonAfter100ms: exports.leaseReason(slot, later),
    zeroReadings: String(exports.clockZeroReadings()),
    regressions: String(exports.clockRegressions()),
    suspends: String(exports.clockSuspends()),
  };
}
