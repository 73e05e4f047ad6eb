// A Cloudflare Worker that answers each request with the state of a lease (docs/edge-clocks.md).
//
// `lease-core` resolves through the package's `workerd` export condition (build/workerd.js),
// which imports `lease-core.wasm` as a module: workerd refuses to compile wasm from bytes, so
// the bundler must ship the .wasm as a CompiledWasm module (wrangler.toml's [[rules]]).
// The clock is performance.now(), which in production does not advance while code runs, only at
// I/O; the core says so (`mayFreeze: true`) and its readers take `freezeBudgetNs` (50 ms by
// default) off every lease they keep. A lease extended by 200 ms is therefore worth 150 ms
// to a LeaseReader here.
//
// Run: npx wrangler dev   (in this directory; deploy: npx wrangler deploy)
// CI: test/examples.test.ts bundles it as wrangler does and runs it in workerd via miniflare.
import { createLeaseCore } from "lease-core";

const MS = 1_000_000n;
let corePromise; // one core per isolate; a failed init is retried by the next request

export default {
  async fetch() {
    corePromise ??= createLeaseCore().catch((err) => {
      corePromise = undefined;
      throw err;
    });
    const core = await corePromise;
    const lease = core.createLease();
    try {
      const extended = lease.extend(core.now() + 200n * MS, lease.generation());
      const nowNs = core.now();
      const state = {
        clock: core.clock,
        extended,
        valid: lease.valid(nowNs),
        reason: lease.reason(nowNs),
        remainingNs: lease.expiry() - nowNs,
        freezeBudgetNs: core.freezeBudgetNs,
      };
      // bigint ns go out as decimal strings: JSON has no 64-bit integers.
      const body = JSON.stringify(state, (_key, value) => (typeof value === "bigint" ? String(value) : value));
      return new Response(body, { headers: { "content-type": "application/json" } });
    } finally {
      lease.dispose(); // back to the table: this lease lived for one request
    }
  },
};
