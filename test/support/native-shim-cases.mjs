// The N-API clock shim (native/lease_clock.c) against stale bindings and failure paths: a bound
// buffer detached by a transfer, by memory.grow(), or by posting it to a worker; names with an
// embedded NUL; and (in the fault-injection test build) every N-API call failing in turn.
// Plain JavaScript, so that test/native-shim.test.ts runs it in-process against the shipped
// shim and in a child `node` against the AddressSanitizer build (where LD_PRELOAD=libasan must
// come first and vitest does not run). Each case returns what it saw; the test asserts.
import { Worker } from "node:worker_threads";

const STALE = "ERR_LEASE_CLOCK_STALE_BINDING";
const SENTINEL = -0x5a5a5a5a5a5a5a5an;

function outcome(fn) {
  try {
    const value = fn();
    return { threw: false, type: typeof value };
  } catch (e) {
    return { threw: true, name: e?.name, code: e?.code };
  }
}

function sentinel(buffer) {
  const words = new BigInt64Array(buffer);
  words.fill(SENTINEL);
  return words;
}

const untouched = (words) => words.every((w) => w === SENTINEL);

/** A bound buffer transferred away (structuredClone with transfer: its bytes now belong to the
 *  copy): the fill must throw and never write into the copy's bytes. */
export function transferred(clock) {
  const out = {};
  for (const how of ["bindFill", "bindCell"]) {
    const buffer = new ArrayBuffer(64);
    let fill;
    if (how === "bindFill") fill = clock.bindFill(buffer, 16, "raw+sleep");
    else {
      clock.bindCell(buffer, 16);
      fill = () => clock.fillRawSleep();
    }
    const before = outcome(fill);
    const copy = structuredClone(buffer, { transfer: [buffer] });
    const words = sentinel(copy);
    const after = outcome(fill);
    out[how] = { before, after, detached: buffer.byteLength === 0, copyUntouched: untouched(words) };
  }
  return out;
}

/** The reproduction: the copy that took the bound buffer's bytes is dropped and
 *  collected, so they are freed; a fill through a kept pointer writes into freed memory
 *  (AddressSanitizer: heap-use-after-free). Needs `gc` (node --expose-gc, or v8 flags). */
export async function transferredAndCollected(clock, gc) {
  const buffer = new ArrayBuffer(1 << 16);
  const fill = clock.bindFill(buffer, 0, "raw+sleep");
  const collected = new Set();
  const registry = new FinalizationRegistry((name) => collected.add(name));
  (() => registry.register(structuredClone(buffer, { transfer: [buffer] }), "copy"))();
  for (let i = 0; i < 50 && !collected.has("copy"); i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
  return { collected: collected.has("copy"), after: outcome(fill) };
}

/** memory.grow() detaches the memory's old buffer (and may move the bytes): the fill bound to
 *  it must throw and write nothing into the grown memory; bound again, it works. */
export function grown(clock) {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 64 });
  const fill = clock.bindFill(memory.buffer, 64, "raw");
  const before = outcome(fill);
  memory.grow(8);
  const words = sentinel(memory.buffer);
  const after = outcome(fill);
  const untouchedAfter = untouched(words);
  const again = clock.bindFill(memory.buffer, 64, "raw");
  const rebound = outcome(again);
  return { before, after, grownUntouched: untouchedAfter, rebound, reboundReading: new BigInt64Array(memory.buffer)[8] > 0n };
}

/** A bound buffer posted to a worker: the main thread's fill must throw and never write into the
 *  worker's bytes; the worker binds its own cell with its own copy of the shim and reads. */
export async function postedToWorker(clock, shimPath) {
  const buffer = new ArrayBuffer(32);
  const fill = clock.bindFill(buffer, 0, "raw");
  const before = outcome(fill);
  const worker = new Worker(
    `const { parentPort } = require("node:worker_threads");
     const clock = require(${JSON.stringify(shimPath)});
     parentPort.once("message", (buffer) => {
       const words = new BigInt64Array(buffer);
       words.fill(${SENTINEL}n);
       parentPort.postMessage("armed");
       parentPort.once("message", () => {
         const mine = new ArrayBuffer(16);
         clock.bindFill(mine, 0, "raw+sleep")();
         parentPort.postMessage({ untouched: words.every((w) => w === ${SENTINEL}n), own: new BigInt64Array(mine)[0] > 0n });
       });
     });`,
    { eval: true },
  );
  const next = () => new Promise((resolve, reject) => { worker.once("message", resolve); worker.once("error", reject); });
  worker.postMessage(buffer, [buffer]);
  await next();
  const after = outcome(fill);
  worker.postMessage("check");
  const seen = await next();
  await worker.terminate();
  return { before, after, workerUntouched: seen.untouched, workerOwnReading: seen.own };
}

/** Names must match exactly: an embedded NUL or an overlong name is not a clock. */
export function names(clock) {
  const buffer = new ArrayBuffer(16);
  return {
    resolutionRaw: outcome(() => clock.resolutionNs("raw")),
    resolutionNul: outcome(() => clock.resolutionNs("raw\0anything")),
    resolutionLong: outcome(() => clock.resolutionNs("monotonic-and-then-some")),
    bindFillNul: outcome(() => clock.bindFill(buffer, 0, "raw\0anything")),
    bindFillNulSleep: outcome(() => clock.bindFill(buffer, 0, "raw+sleep\0")),
    bindFillRaw: outcome(() => clock.bindFill(buffer, 0, "raw")),
  };
}

/** Fault-injection build only: the n-th N-API call of each operation fails, for every n that
 *  reaches one. Every outcome must be a throw or the operation's normal result, never a bare
 *  `undefined` where a bigint or a function is due. */
export function faults(clock) {
  if (typeof clock.__failNapiCall !== "function") return null;
  const buffer = new ArrayBuffer(32);
  const bound = clock.bindFill(buffer, 0, "raw");
  const ops = {
    readRaw: [() => clock.readRaw(), "bigint"],
    readBoottime: [() => clock.readBoottime(), "bigint"],
    readMonotonic: [() => clock.readMonotonic(), "bigint"],
    readSleepOffset: [() => clock.readSleepOffset(), "bigint"],
    resolutionNs: [() => clock.resolutionNs("boottime"), "bigint"],
    bindFill: [() => clock.bindFill(buffer, 8, "raw+sleep"), "function"],
    bindCell: [() => clock.bindCell(buffer, 16), "undefined"],
    boundFill: [() => bound(), "undefined"],
    fillRaw: [() => clock.fillRaw(), "undefined"],
  };
  const bad = [];
  let injected = 0;
  for (const [name, [op, type]] of Object.entries(ops)) {
    for (let n = 1; n <= 12; n++) {
      clock.__failNapiCall(n);
      const seen = outcome(op);
      clock.__failNapiCall(0);
      if (seen.threw) {
        injected++;
        if (seen.code !== "ERR_LEASE_CLOCK_NATIVE") bad.push(`${name} call ${n}: threw ${seen.name} ${seen.code}`);
      } else if (seen.type !== type) bad.push(`${name} call ${n}: returned ${seen.type}, not ${type}`);
    }
  }
  return { injected, bad };
}

export async function runAll(clock, shimPath, gc) {
  return { transferred: transferred(clock), collected: await transferredAndCollected(clock, gc), grown: grown(clock), worker: await postedToWorker(clock, shimPath), names: names(clock), faults: faults(clock), STALE };
}

// As a script (the AddressSanitizer child): node native-shim-cases.mjs <shim.node>
if (import.meta.url === `file://${process.argv[1]}`) {
  const { createRequire } = await import("node:module");
  const shimPath = process.argv[2];
  const clock = createRequire(import.meta.url)(shimPath);
  process.stdout.write(JSON.stringify(await runAll(clock, shimPath, globalThis.gc), (_k, v) => (typeof v === "bigint" ? String(v) : v)));
}
