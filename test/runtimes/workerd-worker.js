// The module worker test/workerd.test.ts runs inside workerd (through miniflare). It imports
// the built host exactly as a Worker would (`./workerd.js` beside `./lease-core.wasm`, a
// CompiledWasm module) and answers each route with JSON; bigints travel as decimal strings.
import { createLeaseCore, DEFAULT_FREEZE_BUDGET_NS } from "./workerd.js";
import { cases, runVectors } from "./vectors-runner.js";
import wasmBytes from "./lease-core-bytes.bin";

const MS = 1_000_000n;

const json = (value, status = 200) =>
  new Response(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v)), {
    status,
    headers: { "Content-Type": "application/json" },
  });

/** A fake Raft engine: always leader, counts linearizable reads, fixed duration and ack. */
function fakeEngine({ leaseDurationNs, ackNs }) {
  const engine = {
    linearizableReads: 0,
    state: () => "leader",
    appliedIndex: () => 7n,
    linearizableRead: async () => {
      engine.linearizableReads++;
      return 7n;
    },
    leaseDurationNs: () => leaseDurationNs,
    lastQuorumAck: () => ackNs,
    onLeaderLoss: () => () => {},
  };
  return engine;
}

/** One leaseRead through a reader of `core`: was it local, and what did it leave in the lease? */
async function probeRead(core, { leaseDurationNs, ack }) {
  const warnings = [];
  const beforeNs = core.now();
  const engine = fakeEngine({ leaseDurationNs, ackNs: ack === "now" ? beforeNs : 0n });
  const reader = core.createLeaseReader(engine, { onWarning: (m) => warnings.push(m) });
  const index = await reader.leaseRead();
  const afterNs = core.now();
  return {
    index,
    linearizableReads: engine.linearizableReads,
    expiryMinusBeforeNs: reader.lease.expiry() === 0n ? null : reader.lease.expiry() - beforeNs,
    elapsedNs: afterNs - beforeNs,
    warnings,
  };
}

async function budget() {
  const budgeted = await createLeaseCore({ freezeBudgetNs: 50n * MS });
  const unbudgeted = await createLeaseCore({ freezeBudgetNs: 0n });
  const out = {};
  for (const [name, core] of [["budget50ms", budgeted], ["budget0", unbudgeted]]) {
    out[name] = {
      // A fresh quorum ack and a 40 ms lease: safe only if a check can lag by less than 40 ms.
      freshAck40ms: await probeRead(core, { leaseDurationNs: 40n * MS, ack: "now" }),
      freshAck200ms: await probeRead(core, { leaseDurationNs: 200n * MS, ack: "now" }),
      // No ack: one linearizable read, which extends the caller lease from the entry sample.
      noAck200ms: await probeRead(core, { leaseDurationNs: 200n * MS, ack: "none" }),
    };
  }
  // Sharded readers get the budget too.
  const shardedEngine = fakeEngine({ leaseDurationNs: 40n * MS, ackNs: budgeted.now() });
  const sharded = budgeted.createShardedLeaseReader({ groups: new Map([[1, shardedEngine]]), route: () => 1, onWarning: () => {} });
  await sharded.leaseReadForKey("k");
  out.sharded40msLinearizableReads = shardedEngine.linearizableReads;
  return out;
}

async function options() {
  const attempt = async (opts) => {
    try {
      const core = await createLeaseCore(opts);
      return { ok: true, source: core.clock.source };
    } catch (err) {
      return { ok: false, name: err.name, code: err.code, message: err.message };
    }
  };
  return {
    negative: await attempt({ freezeBudgetNs: -1n }),
    number: await attempt({ freezeBudgetNs: 50_000_000 }),
    tooLarge: await attempt({ freezeBudgetNs: 1n << 63n }),
    withCustomClock: await attempt({ freezeBudgetNs: 1n, clock: { now: () => 5n } }),
    customClockAlone: await attempt({ clock: { now: () => 5n } }),
    zero: await attempt({ freezeBudgetNs: 0n }),
    oneAndAHalfMs: await attempt({ freezeBudgetNs: 1_500_000n }),
    defaultBudget: await attempt({}),
  };
}

async function clock() {
  const core = await createLeaseCore();
  const dateBeforeMs = Date.now();
  const readings = [];
  for (let i = 0; i < 5; i++) readings.push(core.now());
  const dateAfterMs = Date.now();
  // Does this workerd freeze the clock during a busy loop? (Production does; local did not.)
  const spinStart = performance.now();
  let spins = 0;
  while (performance.now() - spinStart < 5 && spins < 50_000_000) spins++;
  const lease = core.createLease();
  const extended = lease.extend(core.now() + 50n * MS, lease.generation());
  const validNow = lease.valid();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const validAfter100ms = lease.valid();
  return {
    info: core.clock,
    defaultBudgetNs: DEFAULT_FREEZE_BUDGET_NS,
    readings,
    dateBeforeMs,
    dateAfterMs,
    performanceNowEqualsDateNow: Math.abs(performance.now() - Date.now()) <= 1,
    performanceTimeOrigin: performance.timeOrigin,
    advancedDuringSpin: performance.now() - spinStart >= 5,
    extended,
    validNow,
    validAfter100ms,
    clockEvents: core.clockEvents(),
  };
}

/** Proves the runtime under test really forbids compiling from bytes, as production does. */
async function compileFromBytes() {
  try {
    await WebAssembly.compile(wasmBytes);
    return { refused: false };
  } catch (err) {
    return { refused: true, name: err.name, message: err.message };
  }
}

export default {
  async fetch(request) {
    const route = new URL(request.url).pathname;
    try {
      switch (route) {
        case "/vectors":
          return json(await runVectors((scripted) => createLeaseCore({ clock: scripted }), cases));
        case "/clock":
          return json(await clock());
        case "/budget":
          return json(await budget());
        case "/options":
          return json(await options());
        case "/compile-from-bytes":
          return json(await compileFromBytes());
        default:
          return json({ error: `no route ${route}` }, 404);
      }
    } catch (err) {
      return json({ error: `${err?.name}: ${err?.message}`, stack: err?.stack }, 500);
    }
  },
};
