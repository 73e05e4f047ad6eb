/**
 * A linearizability checker for a key-value history (Herlihy & Wing's condition), searched as
 * Wing & Gong (1993) with Lowe's memoization (2017), as Porcupine does: the history is split by
 * key (P-compositionality: a KV history is linearizable iff each key's is), and each key's
 * operations are searched depth-first for an order that respects real time and the register's
 * semantics, remembering every (set of linearized ops, register value) already explored.
 *
 * Portable: no Node APIs; the simulator (test/sim) and the etcd demo import it as is.
 * @module
 */

/** One completed (or indeterminate) client operation on one key. */
export interface KvOp {
  client: number;
  kind: "read" | "write";
  key: string;
  /** write: the value written; read: the value observed (null = absent). */
  value: string | null;
  /** When the client invoked it, in any monotone unit shared by the whole history. */
  callAt: number;
  /** When the client saw the answer; Infinity when the outcome is unknown (a write that timed
   *  out may or may not have happened, at any time after its call). */
  returnAt: number;
}

/** The checker's verdict: linearizable, not (with the key and a minimal failing history of
 *  that key), or unknown (the search gave up at `maxStates`). */
export type KvCheckResult = { ok: true } | { ok: false; key: string; minimal: KvOp[] } | { ok: "unknown"; reason: string };

const DEFAULT_MAX_STATES = 1_000_000;

interface Entry {
  op: number; // index into the key's ops
  call: boolean;
  time: number;
  match: Entry | undefined; // the call's return entry
  prev: Entry | undefined;
  next: Entry | undefined;
}

type Search = { ok: true } | { ok: false } | { ok: "unknown" };

/** One key's register, searched for a linearization; `budget.states` counts cache entries. */
function searchKey(ops: readonly KvOp[], budget: { states: number; max: number }): Search {
  const n = ops.length;
  if (n === 0) return { ok: true };
  const events: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    const call: Entry = { op: i, call: true, time: op.callAt, match: undefined, prev: undefined, next: undefined };
    const ret: Entry = { op: i, call: false, time: op.returnAt, match: undefined, prev: undefined, next: undefined };
    call.match = ret;
    events.push(call, ret);
  }
  // By time; at equal times calls first, so touching operations count as concurrent (never a
  // false violation from a shared clock tick).
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? 0 : a.call ? -1 : 1) || a.op - b.op);
  const head: Entry = { op: -1, call: false, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  const words = (n + 31) >>> 5;
  const linearized = new Uint32Array(words);
  const seen = new Set<string>();
  const stack: { entry: Entry; state: string | null }[] = [];
  let state: string | null = null;
  let entry = head.next;

  const lift = (e: Entry) => {
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const m = e.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (e: Entry) => {
    const m = e.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };

  while (head.next !== undefined) {
    if (entry === undefined) return { ok: false }; // cannot happen: a return entry ends every list
    if (entry.call) {
      const op = ops[entry.op]!;
      const legal = op.kind === "write" || op.value === state;
      if (legal) {
        const next: string | null = op.kind === "write" ? op.value : state;
        linearized[entry.op >>> 5]! |= 1 << (entry.op & 31);
        const key = `${linearized.join(",")}|${next === null ? "\u0000" : "=" + next}`;
        if (!seen.has(key)) {
          seen.add(key);
          if (++budget.states > budget.max) return { ok: "unknown" };
          stack.push({ entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.op >>> 5]! &= ~(1 << (entry.op & 31));
      }
      entry = entry.next;
    } else {
      // A return reached with its operation not linearized: undo the last choice.
      const top = stack.pop();
      if (top === undefined) return { ok: false };
      state = top.state;
      linearized[top.entry.op >>> 5]! &= ~(1 << (top.entry.op & 31));
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { ok: true };
}

function checkOp(op: KvOp, i: number): void {
  const bad = (why: string) => new TypeError(`history[${i}]: ${why}`);
  if (typeof op !== "object" || op === null) throw bad("not an operation");
  if (op.kind !== "read" && op.kind !== "write") throw bad(`kind must be "read" or "write"`);
  if (typeof op.key !== "string") throw bad("key must be a string");
  if (op.value !== null && typeof op.value !== "string") throw bad("value must be a string or null");
  if (op.kind === "write" && op.value === null) throw bad("a write writes a string");
  if (typeof op.callAt !== "number" || !Number.isFinite(op.callAt)) throw bad("callAt must be a finite number");
  if (typeof op.returnAt !== "number" || Number.isNaN(op.returnAt) || op.returnAt < op.callAt) throw bad("returnAt must be >= callAt (Infinity: unknown outcome)");
}

/**
 * A write whose outcome is unknown (returnAt Infinity) and whose value no read observed can
 * always be linearized last, after every other operation, where it changes nothing any read
 * saw: dropping it changes no verdict, and removes the search's worst blow-up (each such write
 * could otherwise sit anywhere after its call).
 */
function withoutUnobservedUnknownWrites(ops: KvOp[]): KvOp[] {
  const observed = new Set<string | null>();
  for (const op of ops) if (op.kind === "read") observed.add(op.value);
  return ops.filter((op) => op.kind === "read" || op.returnAt !== Infinity || observed.has(op.value));
}

/** Whether every read's value is null or written by some write of the history (the minimiser keeps this). */
function readsExplained(ops: readonly KvOp[]): boolean {
  const written = new Set<string>();
  for (const op of ops) if (op.kind === "write") written.add(op.value!);
  return ops.every((op) => op.kind === "write" || op.value === null || written.has(op.value));
}

/**
 * Drops operations one at a time while the key still fails and every read stays explained by
 * a write, so the result is a small history a reader can follow (delta debugging, greedy).
 */
function minimise(ops: KvOp[], max: number): KvOp[] {
  let current = ops;
  for (let i = current.length - 1; i >= 0; i--) {
    const candidate = current.slice(0, i).concat(current.slice(i + 1));
    if (!readsExplained(candidate) && readsExplained(current)) continue;
    if (searchKey(candidate, { states: 0, max }).ok === false) current = candidate;
  }
  return current;
}

/**
 * Checks a KV history: `{ ok: true }` when some order of the operations, consistent with real
 * time (an op that returned before another was called comes first), makes every read see the
 * latest write to its key (null before any). Otherwise the first failing key (in sorted order)
 * and a minimal failing history of it, or `{ ok: "unknown" }` if the search explored more than
 * `maxStates` (default 1,000,000) states.
 */
export function checkKvHistory(history: readonly KvOp[], options: { maxStates?: number } = {}): KvCheckResult {
  const max = options.maxStates ?? DEFAULT_MAX_STATES;
  if (!Number.isInteger(max) || max < 1) throw new TypeError("maxStates must be a positive integer");
  const byKey = new Map<string, KvOp[]>();
  history.forEach((op, i) => {
    checkOp(op, i);
    let ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, (ops = []));
    ops.push(op);
  });
  const budget = { states: 0, max };
  let unknown: string | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const ops = withoutUnobservedUnknownWrites(byKey.get(key)!);
    budget.states = 0; // maxStates is per key
    const result = searchKey(ops, budget);
    if (result.ok === false) return { ok: false, key, minimal: minimise(ops, max).sort((a, b) => a.callAt - b.callAt) };
    if (result.ok === "unknown") unknown ??= `key ${JSON.stringify(key)}: more than ${max} states explored`;
  }
  return unknown === undefined ? { ok: true } : { ok: "unknown", reason: unknown };
}
