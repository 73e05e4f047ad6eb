// Histories whose verdicts are known, for the checker's tests (test/linearizability.test.ts):
// - `modelHistory`: clients run against a sequential key-value model, each operation taking
//   effect at a point inside its interval (or, for an unknown outcome, at any point after its
//   call, or never), so the history is linearizable by construction; `injectStaleRead` then
//   plants a read that no order can explain.
// - `bruteForce`: an oracle that tries every order, written from the operations' definitions
//   alone (no memo, no frontier, no pruning), for histories small enough to enumerate.
import type { KvOp } from "lease-core/testing";
import { Prng } from "../sim/prng.js";

export interface ModelParams {
  seed: number;
  ops: number;
  clients: number;
  keys: number;
  /** Fractions of each kind (the rest are reads). */
  writes?: number;
  cas?: number;
  appends?: number;
  /** Fraction of operations whose outcome is unknown (returnAt Infinity). */
  unknown?: number;
}

/** An integer in [0, n). */
const below = (rng: Prng, n: number): number => rng.int(0, n - 1);

interface Planned {
  op: KvOp;
  /** When it takes effect; Infinity: never. */
  at: number;
}

/**
 * A linearizable history: each client calls an operation, which takes effect at a random
 * point of its interval, and calls the next after it returns. An unknown outcome takes effect
 * at a random point after its call (possibly long after), or never; its client moves on after
 * a timeout. Values are unique tokens (`w3.17;`), so an append's result is never another
 * operation's value. Read values and cas outcomes come from applying the operations in the
 * order they take effect.
 */
export function modelHistory(p: ModelParams): KvOp[] {
  const rng = new Prng(p.seed);
  const writes = p.writes ?? 0.25;
  const cas = p.cas ?? 0.1;
  const appends = p.appends ?? 0.1;
  const unknown = p.unknown ?? 0.01;
  const planned: Planned[] = [];
  const clientTime = new Array<number>(p.clients).fill(0);
  let seq = 0;
  for (let n = 0; n < p.ops; n++) {
    const client = below(rng, p.clients);
    const callAt = clientTime[client]! + 1 + below(rng, 20);
    const effectAt = callAt + below(rng, 30);
    const returnAt = effectAt + below(rng, 30);
    const r = rng.float();
    const kind: KvOp["kind"] = r < writes ? "write" : r < writes + cas ? "cas" : r < writes + cas + appends ? "append" : "read";
    const value = kind === "read" ? null : `${kind[0]}${client}.${seq++};`;
    const op: KvOp = { client, key: `k${below(rng, p.keys)}`, kind, value, callAt, returnAt };
    if (kind === "cas") op.expected = null; // decided when applied
    if (rng.float() < unknown) {
      op.returnAt = Infinity;
      // Taking effect at all is a coin flip; when it does, it may be much later.
      planned.push({ op, at: rng.float() < 0.5 ? callAt + below(rng, 2_000) : Infinity });
      clientTime[client] = callAt + 100; // the client's timeout
    } else {
      planned.push({ op, at: effectAt });
      clientTime[client] = returnAt;
    }
  }
  const state = new Map<string, string>();
  const byEffect = planned.filter((x) => x.at !== Infinity).sort((a, b) => a.at - b.at);
  for (const { op } of byEffect) {
    const current = state.get(op.key) ?? null;
    switch (op.kind) {
      case "read":
        op.value = current;
        break;
      case "write":
        state.set(op.key, op.value!);
        break;
      case "append":
        state.set(op.key, (current ?? "") + op.value!);
        break;
      case "cas": {
        // Half the time the client expects what is there (it applies), else something else.
        const hit = rng.float() < 0.5;
        op.expected = hit ? current : current === null ? "nothing-yet;" : rng.float() < 0.5 ? null : `x${seq++};`;
        if (hit) state.set(op.key, op.value!);
        if (op.returnAt !== Infinity) {
          if (rng.float() < 0.1) delete op.ok; // the client did not learn the outcome
          else op.ok = hit;
        }
        break;
      }
    }
  }
  for (const { op, at } of planned) {
    if (at === Infinity && op.kind === "cas") op.expected = rng.float() < 0.5 ? null : `x${seq++};`;
    if (op.kind === "read" && op.value === null && op.returnAt === Infinity) op.value = "never-seen;";
  }
  return planned.map((x) => x.op).sort((a, b) => a.callAt - b.callAt);
}

/**
 * Plants a read no order can explain: after a known write W2 that followed, in real time, a
 * known write W1 of the same key, a read (called after W2 returned) sees W1's value. Values are
 * unique and only W1 writes W1's value, so once W2 has taken effect nothing can bring it back.
 * Returns the planted read, or undefined if the history has no such pair of writes.
 */
export function injectStaleRead(history: KvOp[], rng: Prng, client: number): KvOp | undefined {
  const writes = history.filter((op) => op.kind === "write" && op.returnAt !== Infinity);
  for (let attempt = 0; attempt < 200; attempt++) {
    const w2 = writes[writes.length - 1 - below(rng, Math.min(writes.length, 50))];
    if (w2 === undefined) return undefined;
    const w1 = writes.find((w) => w.key === w2.key && w.returnAt < w2.callAt && w !== w2);
    if (w1 === undefined) continue;
    const read: KvOp = { client, key: w2.key, kind: "read", value: w1.value, callAt: w2.returnAt + 1, returnAt: w2.returnAt + 2 };
    history.push(read);
    return read;
  }
  return undefined;
}

/** The value after `op` from `current`, or undefined if `op` cannot take effect there. */
function apply(op: KvOp, current: string | null): string | null | undefined {
  switch (op.kind) {
    case "read":
      return op.value === current ? current : undefined;
    case "write":
      return op.value;
    case "append":
      return (current ?? "") + op.value!;
    case "cas": {
      const matches = current === (op.expected ?? null);
      if (op.returnAt === Infinity) return matches ? op.value : undefined; // a cas that did not apply did nothing
      if (op.ok === true) return matches ? op.value : undefined;
      if (op.ok === false) return matches ? undefined : current;
      return matches ? op.value : current;
    }
  }
}

/**
 * Whether some order explains the history, by trying them all: repeatedly pick a remaining op
 * that no remaining known op precedes in real time (returned strictly before its call), apply it
 * if it can take effect; an op with an unknown outcome may also be dropped (it never took
 * effect). Linearizable when every known op is placed. Keys are checked one by one.
 */
export function bruteForce(history: readonly KvOp[]): boolean {
  const keys = new Set(history.map((op) => op.key));
  for (const key of keys) {
    const ops = history.filter((op) => op.key === key && !(op.kind === "read" && op.returnAt === Infinity));
    if (!explain(ops, null)) return false;
  }
  return true;
}

function explain(remaining: readonly KvOp[], current: string | null): boolean {
  if (remaining.every((op) => op.returnAt === Infinity)) return true;
  for (const op of remaining) {
    if (remaining.some((q) => q !== op && q.returnAt < op.callAt)) continue;
    const rest = remaining.filter((q) => q !== op);
    const after = apply(op, current);
    if (after !== undefined && explain(rest, after)) return true;
    if (op.returnAt === Infinity && explain(rest, current)) return true;
  }
  return false;
}
