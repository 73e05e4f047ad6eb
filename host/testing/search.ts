/**
 * The search behind `checkKvHistory` (host/testing/index.ts), one key at a time.
 *
 * Wing & Gong's depth-first search for a linearization, with Lowe's memo of the states already
 * explored (as Porcupine does), on a state whose size is bounded by the history's concurrency,
 * never by its length:
 *
 * - Operations are sorted by call. The frontier `f` is the first known-outcome operation not
 *   yet linearized: every known operation before it is, so the state names only the operations
 *   linearized after `f` (each was called before `f` returned: it had to be a candidate while
 *   `f` was pending) and the unknown-outcome ones before `f` still pending and alive.
 * - An unknown-outcome operation (returnAt Infinity) never returns, so it never settles. It may
 *   take effect or not; its effect matters only to a later operation that could observe it (a
 *   read or cas seeing its value, or derived from it by appends; any cas that failed or whose
 *   outcome is unknown, since a changed value can explain either). Its horizon is the last such
 *   observer, in call order (closed over unknown cas observing it). Once the frontier passes its
 *   horizon it is dead: leaving it out changes no verdict (removing it from any completion only
 *   changes values up to the next overwrite, which no remaining op reads), so the search never
 *   linearizes it and the memo forgets it.
 * - A candidate read (or a cas known to have failed) whose condition holds is linearized at
 *   once, without branching: it changes no value, so moving it to the front of any completion
 *   keeps that completion valid (partial-order reduction).
 * - Values are interned: a write's value by its string, an append's as (previous value, the
 *   appended op) with a rolling hash and its length, so a key appended to 30,000 times never
 *   copies its value into a state.
 * @module
 */
import type { KvOp } from "./index.js";

/** One operation of a key, with its position in the whole history (to keep the user's order stable). */
export interface KeyOp<T extends KvOp = KvOp> {
  /** The user's operation, handed back as is in a minimal failing history. */
  op: T;
  /** Its position in the whole history. */
  index: number;
}

const READ = 0;
const WRITE = 1;
const CAS = 2;
const APPEND = 3;
const KIND_CODE: Record<KvOp["kind"], number> = { read: READ, write: WRITE, cas: CAS, append: APPEND };

/** The value id of an absent key. */
const ABSENT = 0;
/** Polynomial rolling hash base (mod 2^32, Math.imul). */
const BASE = 0x01000193;

function hashOf(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, BASE) + s.charCodeAt(i)) | 0;
  return h;
}

/** BASE^length mod 2^32, so hash(a + b) = hash(a) * BASE^|b| + hash(b). */
function powOf(length: number): number {
  let result = 1;
  let base = BASE;
  for (let e = length; e > 0; e >>>= 1) {
    if (e & 1) result = Math.imul(result, base);
    base = Math.imul(base, base);
  }
  return result;
}

/**
 * Interned values. Invariant: id 0 is absent; every other id is either whole (`parent` -1,
 * `text` the value) or an append (`parent` the value appended to, `text` the appended string),
 * with `length` and `hash` of the whole value. Two ids may hold the same string (a write of
 * "ab" and an append of "b" onto "a"): equality with a string compares content, so that only
 * splits memo states, never a verdict.
 */
class Values {
  readonly parent: number[] = [-1];
  readonly text: string[] = [""];
  readonly length: number[] = [0];
  readonly hash: number[] = [0];
  readonly #whole = new Map<string, number>();
  readonly #appended = new Map<string, number>();

  whole(s: string, h: number): number {
    let id = this.#whole.get(s);
    if (id === undefined) {
      id = this.#push(-1, s, s.length, h);
      this.#whole.set(s, id);
    }
    return id;
  }

  append(onto: number, s: string, h: number, pow: number): number {
    if (onto === ABSENT) return this.whole(s, h);
    if (s.length === 0) return onto;
    const k = `${onto}\u0000${s}`;
    let id = this.#appended.get(k);
    if (id === undefined) {
      id = this.#push(onto, s, this.length[onto]! + s.length, (Math.imul(this.hash[onto]!, pow) + h) | 0);
      this.#appended.set(k, id);
    }
    return id;
  }

  #push(parent: number, text: string, length: number, hash: number): number {
    this.parent.push(parent);
    this.text.push(text);
    this.length.push(length);
    this.hash.push(hash);
    return this.parent.length - 1;
  }

  /** Whether value `id` is the string `s` (null: absent); `h` is hashOf(s). */
  equals(id: number, s: string | null, h: number): boolean {
    if (s === null || id === ABSENT) return s === null && id === ABSENT;
    if (this.length[id] !== s.length || this.hash[id] !== h) return false;
    let end = s.length;
    let cur = id;
    for (;;) {
      const t = this.text[cur]!;
      const p = this.parent[cur]!;
      if (p === -1) return end === t.length && s.startsWith(t, 0);
      end -= t.length;
      if (!s.startsWith(t, end)) return false;
      cur = p;
    }
  }
}

/** A key's operations, sorted by call, in flat arrays. */
export interface PreparedKey {
  n: number;
  call: Float64Array;
  ret: Float64Array;
  kind: Uint8Array;
  /** cas: 1 applied, 0 failed, -1 unknown. */
  ok: Int8Array;
  /** 1 when the outcome is known (returnAt finite). */
  known: Uint8Array;
  value: (string | null)[];
  valueHash: Int32Array;
  valuePow: Int32Array;
  expected: (string | null)[];
  expectedHash: Int32Array;
  /** Unknown-outcome ops: the last index (call order) of an op that could observe it; -1 if none. */
  horizon: Int32Array;
  /** The unknown-outcome ops' indices, ascending. */
  unknown: Int32Array;
}

/** Above this many (unknown op, observer) pairs, a key with appends takes the cheap, coarser horizon. */
const HORIZON_PAIRS_LIMIT = 4_000_000;

export function prepareKey(ops: readonly KeyOp[]): PreparedKey {
  const sorted = ops.slice().sort((a, b) => a.op.callAt - b.op.callAt || a.index - b.index);
  const n = sorted.length;
  const p: PreparedKey = {
    n,
    call: new Float64Array(n),
    ret: new Float64Array(n),
    kind: new Uint8Array(n),
    ok: new Int8Array(n),
    known: new Uint8Array(n),
    value: new Array<string | null>(n),
    valueHash: new Int32Array(n),
    valuePow: new Int32Array(n),
    expected: new Array<string | null>(n),
    expectedHash: new Int32Array(n),
    horizon: new Int32Array(n).fill(-1),
    unknown: new Int32Array(0),
  };
  const unknown: number[] = [];
  let hasAppend = false;
  for (let i = 0; i < n; i++) {
    const op = sorted[i]!.op;
    p.call[i] = op.callAt;
    p.ret[i] = op.returnAt;
    p.kind[i] = KIND_CODE[op.kind];
    p.ok[i] = op.ok === true ? 1 : op.ok === false ? 0 : -1;
    p.known[i] = op.returnAt === Infinity ? 0 : 1;
    p.value[i] = op.value;
    if (op.value !== null) {
      p.valueHash[i] = hashOf(op.value);
      p.valuePow[i] = powOf(op.value.length);
    }
    const expected = op.kind === "cas" ? (op.expected ?? null) : null;
    p.expected[i] = expected;
    if (expected !== null) p.expectedHash[i] = hashOf(expected);
    if (op.kind === "append") hasAppend = true;
    if (!p.known[i]) unknown.push(i);
  }
  p.unknown = Int32Array.from(unknown);
  computeHorizons(p, hasAppend);
  return p;
}

/**
 * Each unknown-outcome op's horizon: the last op (call order) that could observe its effect.
 * Observers: a known read seeing, or a known applied cas expecting, a value the op could have
 * made (its value; with appends on the key, any value starting with it, or for an append any
 * value containing it); every known cas that failed or whose outcome is unknown (a different
 * value explains either); and an unknown cas expecting such a value, whose own horizon then
 * counts too. Over-approximating a horizon only keeps an op alive longer (slower, never wrong).
 */
function computeHorizons(p: PreparedKey, hasAppend: boolean): void {
  if (p.unknown.length === 0) return;
  let casDoubt = -1; // the last known cas that failed or whose outcome is unknown
  let lastObserver = -1;
  const observed: { index: number; value: string }[] = []; // known reads and applied cas, by value seen
  const unknownCas: number[] = [];
  for (let i = 0; i < p.n; i++) {
    if (p.kind[i] === READ && p.known[i] && p.value[i] !== null) observed.push({ index: i, value: p.value[i]! });
    if (p.kind[i] === CAS) {
      if (!p.known[i]) {
        if (p.expected[i] !== null) unknownCas.push(i);
      } else if (p.ok[i] !== 1) casDoubt = i;
      else if (p.expected[i] !== null) observed.push({ index: i, value: p.expected[i]! });
    }
    if (p.known[i] && (p.kind[i] === READ || p.kind[i] === CAS)) lastObserver = i;
  }
  const related = (u: number, seen: string): boolean => {
    const v = p.value[u]!;
    if (!hasAppend) return seen === v;
    return p.kind[u] === APPEND ? seen.includes(v) : seen.startsWith(v);
  };
  const coarse = hasAppend && p.unknown.length * (observed.length + unknownCas.length) > HORIZON_PAIRS_LIMIT;
  const byValue = new Map<string, number>();
  if (!hasAppend) for (const o of observed) byValue.set(o.value, Math.max(byValue.get(o.value) ?? -1, o.index));
  const casObservers = new Map<number, number[]>(); // unknown op → unknown cas that could observe it
  for (const u of p.unknown) {
    let h = casDoubt;
    if (coarse) h = Math.max(h, lastObserver);
    else if (!hasAppend) h = Math.max(h, byValue.get(p.value[u]!) ?? -1);
    else {
      for (let k = observed.length - 1; k >= 0; k--) {
        if (observed[k]!.index > h && related(u, observed[k]!.value)) {
          h = observed[k]!.index;
          break; // observed is in index order: the first found from the end is the last
        }
      }
    }
    const cas: number[] = [];
    for (const c of unknownCas) if (c !== u && (coarse || related(u, p.expected[c]!))) cas.push(c);
    if (cas.length > 0) casObservers.set(u, cas);
    p.horizon[u] = h;
  }
  // Close over unknown cas observers: u lives as long as any unknown cas that could see it.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [u, cas] of casObservers) {
      for (const c of cas) {
        const h = Math.max(c, p.horizon[c]!);
        if (h > p.horizon[u]!) {
          p.horizon[u] = h;
          changed = true;
        }
      }
    }
  }
}

/** A key's search result; `states` counts memoised states, `largestState` the most ops one named. */
export interface KeyOutcome {
  verdict: "ok" | "fail" | "unknown";
  states: number;
  largestState: number;
}

interface Frame {
  /** Candidate ops to try from this state, in order. */
  cands: number[];
  next: number;
  /** Ops linearized to reach this state from its parent (the choice, then the forced moves). */
  applied: number[];
  prevValue: number;
  prevF: number;
}

/** Searches one key for a linearization, within `maxStates` memoised states. */
export function searchKey(p: PreparedKey, maxStates: number): KeyOutcome {
  const { n, call, ret, kind, ok, known, value, valueHash, valuePow, expected, expectedHash, horizon, unknown } = p;
  const lin = new Uint8Array(n);
  const values = new Values();
  const memo = new Set<string>();
  let states = 0;
  let largestState = 0;
  let f = 0;
  let current = ABSENT;
  const advance = () => {
    while (f < n && (lin[f] || !known[f])) f++;
  };
  advance();

  /** The value after op `i` from value `v`, or -1 if `i` cannot be linearized at `v`. */
  const step = (i: number, v: number): number => {
    switch (kind[i]) {
      case READ:
        return values.equals(v, value[i]!, valueHash[i]!) ? v : -1;
      case WRITE:
        return values.whole(value[i]!, valueHash[i]!);
      case APPEND:
        return values.append(v, value[i]!, valueHash[i]!, valuePow[i]!);
      default: {
        const matches = values.equals(v, expected[i]!, expectedHash[i]!);
        // An unknown-outcome cas that does not apply changes nothing: as if never linearized.
        if (!known[i] || ok[i] === 1) return matches ? values.whole(value[i]!, valueHash[i]!) : -1;
        if (ok[i] === 0) return matches ? -1 : v;
        return matches ? values.whole(value[i]!, valueHash[i]!) : v;
      }
    }
  };

  const linearize = (i: number, applied: number[]) => {
    lin[i] = 1;
    applied.push(i);
    if (i === f) advance();
  };

  /**
   * The ops that may be linearized next: not linearized, called no later than the earliest
   * return of a pending known op, and, if unknown-outcome, alive. Known ops first (call order),
   * then the unknown ones. Also builds the memo key when `key` is given.
   */
  const candidates = (out: number[], keyParts: number[] | undefined): void => {
    const windowEnd = ret[f]!;
    let minRet = windowEnd;
    let e = f + 1;
    for (; e < n && call[e]! <= windowEnd; e++) if (!lin[e] && known[e] && ret[e]! < minRet) minRet = ret[e]!;
    const later: number[] = [];
    for (let i = f; i < e; i++) {
      const alive = known[i] || horizon[i]! >= f;
      if (!alive) continue;
      if (lin[i]) keyParts?.push(i - f);
      else if (call[i]! <= minRet) (known[i] ? out : later).push(i);
    }
    keyParts?.push(-1);
    for (const u of unknown) {
      if (u >= f) break;
      if (!lin[u] && horizon[u]! >= f) {
        later.push(u);
        keyParts?.push(f - u);
      }
    }
    for (const u of later) out.push(u);
  };

  /** Linearizes every candidate that changes no value and holds now (a read, a failed cas). */
  const forcedMoves = (applied: number[]) => {
    const cands: number[] = [];
    for (let moved = true; moved && f < n; ) {
      moved = false;
      cands.length = 0;
      candidates(cands, undefined);
      for (const i of cands) {
        if (!known[i]) break; // unknown ops come last and are never forced
        if ((kind[i] === READ || (kind[i] === CAS && ok[i] === 0)) && step(i, current) === current) {
          linearize(i, applied);
          moved = true;
        }
      }
    }
  };

  /** Memoises the current state; false if it was already explored. */
  const remember = (): boolean => {
    const parts: number[] = [];
    candidates([], parts);
    largestState = Math.max(largestState, parts.length - 1);
    const key = `${f}:${current}:${parts.join(",")}`;
    if (memo.has(key)) return false;
    memo.add(key);
    states++;
    return true;
  };

  const rootApplied: number[] = [];
  forcedMoves(rootApplied);
  if (f >= n) return { verdict: "ok", states, largestState };
  remember();
  const rootCands: number[] = [];
  candidates(rootCands, undefined);
  const stack: Frame[] = [{ cands: rootCands, next: 0, applied: rootApplied, prevValue: ABSENT, prevF: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next >= top.cands.length) {
      stack.pop();
      for (const i of top.applied) lin[i] = 0;
      current = top.prevValue;
      f = top.prevF;
      continue;
    }
    const i = top.cands[top.next++]!;
    const after = step(i, current);
    if (after < 0) continue;
    const prevValue = current;
    const prevF = f;
    const applied: number[] = [];
    linearize(i, applied);
    current = after;
    forcedMoves(applied);
    if (f >= n) return { verdict: "ok", states, largestState };
    if (!remember()) {
      for (const j of applied) lin[j] = 0;
      current = prevValue;
      f = prevF;
      continue;
    }
    if (states > maxStates) return { verdict: "unknown", states, largestState };
    const cands: number[] = [];
    candidates(cands, undefined);
    stack.push({ cands, next: 0, applied, prevValue, prevF });
  }
  return { verdict: "fail", states, largestState };
}

/** The most states one minimisation may spend in all, and per search. */
const MINIMISE_TOTAL_STATES = 2_000_000;
const MINIMISE_STATES_PER_SEARCH = 200_000;

/**
 * Shrinks a failing key's history to a 1-minimal one (removing any single op makes it pass, or
 * leaves a read or cas expecting a value no remaining op wrote: a "read of a value never
 * written" is a failure, but not the one to show), as delta debugging does: the shortest
 * failing prefix, the latest failing start, then chunks, then single ops. Within a budget
 * (MINIMISE_TOTAL_STATES); past it, the smallest failing history found so far.
 */
export function minimiseKey<T extends KvOp>(ops: readonly KeyOp<T>[], maxStates: number): { ops: KeyOp<T>[]; states: number } {
  let spent = 0;
  const perSearch = Math.min(maxStates, MINIMISE_STATES_PER_SEARCH);
  const hasAppend = ops.some((o) => o.op.kind === "append");
  const explainedIn = (sub: readonly KeyOp<T>[]): Set<KeyOp<T>> => {
    const written = new Set<string>();
    const appended: string[] = [];
    for (const { op } of sub) {
      if (op.kind === "write" || op.kind === "cas") written.add(op.value!);
      if (op.kind === "append") {
        written.add(op.value!);
        appended.push(op.value!);
      }
    }
    const explained = new Set<KeyOp<T>>();
    for (const o of sub) {
      const seen = o.op.kind === "read" ? o.op.value : o.op.kind === "cas" ? (o.op.expected ?? null) : null;
      if (seen === null || written.has(seen) || (hasAppend && appended.some((a) => seen.endsWith(a)))) explained.add(o);
    }
    return explained;
  };
  const originallyExplained = explainedIn(ops);
  const fails = (sub: readonly KeyOp<T>[]): boolean => {
    if (spent >= MINIMISE_TOTAL_STATES) return false;
    const explained = explainedIn(sub);
    for (const o of sub) if (originallyExplained.has(o) && !explained.has(o)) return false;
    const outcome = searchKey(prepareKey(sub), perSearch);
    spent += outcome.states;
    return outcome.verdict === "fail";
  };
  let cur = ops.slice().sort((a, b) => a.op.callAt - b.op.callAt || a.index - b.index);
  // The shortest failing prefix (cur fails; the empty history passes).
  let lo = 0;
  let hi = cur.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (fails(cur.slice(0, mid))) hi = mid;
    else lo = mid;
  }
  cur = cur.slice(0, hi);
  // The latest start that still fails.
  lo = 0;
  hi = cur.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (fails(cur.slice(mid))) lo = mid;
    else hi = mid;
  }
  cur = cur.slice(lo);
  // Chunks, halving, then single ops until no single removal keeps it failing.
  for (let size = cur.length >>> 1; size >= 1; size >>>= 1) {
    for (let start = cur.length - size; start >= 0; start -= size) {
      const candidate = cur.slice(0, start).concat(cur.slice(start + size));
      if (fails(candidate)) cur = candidate;
    }
  }
  for (let changed = true; changed && spent < MINIMISE_TOTAL_STATES; ) {
    changed = false;
    for (let i = cur.length - 1; i >= 0; i--) {
      const candidate = cur.slice(0, i).concat(cur.slice(i + 1));
      if (fails(candidate)) {
        cur = candidate;
        changed = true;
      }
    }
  }
  return { ops: cur, states: spent };
}

