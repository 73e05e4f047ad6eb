// The page script test/browser.test.ts loads in Chromium. It spies on the two compile paths
// before the host is imported, then exposes `window.leaseCoreTest` and `window.leaseCoreRetry`
// for page.evaluate; results are JSON with bigints as decimal strings.
const compileCalls = { compileStreaming: 0, compile: 0 };
const realCompileStreaming = WebAssembly.compileStreaming;
const realCompile = WebAssembly.compile;
WebAssembly.compileStreaming = function (...args) {
  compileCalls.compileStreaming++;
  return realCompileStreaming.apply(this, args);
};
WebAssembly.compile = function (...args) {
  compileCalls.compile++;
  return realCompile.apply(this, args);
};

const MS = 1_000_000n;
const plain = (value) => JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `fetched`: load the module from wasmUrl (served beside the page); else the inlined copy. */
window.leaseCoreTest = async (fetched = true) => {
  const lib = await import("./build/browser.js");
  const { runVectors, cases } = await import("./vectors-runner.js");
  const options = fetched ? { wasmUrl: "./build/lease-core.wasm" } : {};
  const core = await lib.createLeaseCore(options);
  const callsAfterFirstLoad = { ...compileCalls };
  await lib.createLeaseCore(options); // a second core must reuse the compiled module
  const callsAfterSecondLoad = { ...compileCalls };

  const report = await runVectors((scripted) => lib.createLeaseCore({ clock: scripted }), cases);

  // Each distinct reading across ~20 ms of busy time: the test checks they are positive,
  // increasing, and whole multiples of the measured step.
  const readings = [core.now()];
  const until = performance.now() + 20;
  while (performance.now() < until && readings.length < 400) {
    const ns = core.now();
    if (ns !== readings[readings.length - 1]) readings.push(ns);
  }

  const lease = core.createLease();
  const extended = lease.extend(core.now() + 50n * MS, lease.generation());
  const validNow = lease.valid();
  await sleep(100);
  const validAfter100ms = lease.valid();

  return plain({
    crossOriginIsolated: self.crossOriginIsolated,
    info: core.clock,
    report,
    callsAfterFirstLoad,
    callsAfterSecondLoad,
    readings,
    extended,
    validNow,
    validAfter100ms,
    clockEvents: core.clockEvents(),
  });
};

/** For a server whose first answer for the module is an error: the failure is not cached. */
window.leaseCoreRetry = async () => {
  const lib = await import("./build/browser.js");
  const options = { wasmUrl: "./build/lease-core.wasm" };
  let firstError;
  try {
    await lib.createLeaseCore(options);
  } catch (err) {
    firstError = { name: err?.name, code: err?.code, message: String(err?.message ?? err), typed: err instanceof lib.WasmLoadError };
  }
  const core = await lib.createLeaseCore(options);
  const lease = core.createLease();
  return plain({ firstError, extended: lease.extend(core.now() + 50n * MS, 0n), valid: lease.valid() });
};

/** A wasmUrl that is missing (404) or serves a page instead of the module: typed errors. */
window.leaseCoreLoadErrors = async () => {
  const lib = await import("./build/browser.js");
  const out = {};
  for (const [name, wasmUrl] of [["missing", "./build/no-such.wasm"], ["notWasm", "./page.html"]]) {
    try {
      await lib.createLeaseCore({ wasmUrl });
      out[name] = "resolved";
    } catch (err) {
      out[name] = { name: err.name, code: err.code, message: err.message, typed: err instanceof lib.WasmLoadError };
    }
  }
  return out;
};

/** Bad options are refused with the typed error. */
window.leaseCoreBadOptions = async () => {
  const lib = await import("./build/browser.js");
  const out = {};
  for (const [name, options] of [["emptyUrl", { wasmUrl: "" }], ["numberUrl", { wasmUrl: 5 }], ["nullOptions", null]]) {
    try {
      await lib.createLeaseCore(options);
      out[name] = "resolved";
    } catch (err) {
      out[name] = err.name;
    }
  }
  return out;
};

window.leaseCorePageReady = true;
