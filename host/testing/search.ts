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
 *   read or cas seeing its value, or derived from it by appends; a cas that failed or whose
 *   outcome is unknown while its expected value could be current, since a changed value can
 *   explain either). Its horizon is the last such
 *   observer, in call order (closed over unknown cas observing it). Once the frontier passes its
 *   horizon it is dead: leaving it out changes no verdict (removing it from any completion only
 *   changes values up to the next overwrite, which no remaining op reads), so the search never
 *   linearizes it and the memo forgets it. While alive, it is tried only right before a
 *   candidate that observes it, and never followed directly by a write (see `candidates`).
 * - The memo holds exhausted states; one also rules out those with fewer pending unknown ops
 *   (dominance, see `searchKey`). A state where a pending read wants a value nothing left can
 *   make is abandoned at once (`deadEnd`).
 * - A candidate read (or a cas known to have failed) whose condition holds is linearized at
 *   once, without branching: it changes no value, so moving it to the front of any completion
 *   keeps that completion valid (partial-order reduction).
 * - Values are interned: a write's value by its string, an append's as (previous value, the
 *   appended op) with a rolling hash and its length, so a key appended to 30,000 times never
 *   copies its value into a state.
 * @module
 */
import type { KvOp } from "./history.js";

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
  /** Whether any op appends (then any value may be produced: no dead-read pruning). */
  hasAppend: boolean;
  /** For each value a write or cas writes, the ops that write it, ascending. */
  producers: Map<string, number[]>;
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
    hasAppend: false,
    producers: new Map(),
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
    if (op.kind === "write" || op.kind === "cas") {
      const list = p.producers.get(op.value!);
      if (list === undefined) p.producers.set(op.value!, [i]);
      else list.push(i);
    }
    if (!p.known[i]) unknown.push(i);
  }
  p.unknown = Int32Array.from(unknown);
  p.hasAppend = hasAppend;
  computeHorizons(p, hasAppend);
  return p;
}

/**
 * Each unknown-outcome op's horizon: the last op (call order) that could observe its effect.
 * Observers: a known read seeing, or a known applied cas expecting, a value the op could have
 * made (its value; with appends on the key, any value starting with it, or for an append any
 * value containing it); every known cas that failed or whose outcome is unknown and whose
 * `expected` the value could otherwise have (a different value explains either); and an
 * unknown cas expecting such a value, whose own horizon then counts too. Over-approximating a horizon only keeps an op alive longer (slower, never wrong).
 */
function computeHorizons(p: PreparedKey, hasAppend: boolean): void {
  if (p.unknown.length === 0) return;
  // A known cas that failed, or whose outcome is unknown, needs the value to differ from its
  // `expected` (or may apply only if equal): an unknown op could matter to it only if the value
  // could otherwise BE `expected`: a value some op writes (any value, with appends), or absent
  // while no op known to change the value has yet returned.
  let firstChangeReturn = Infinity;
  const written = new Set<string>();
  for (let i = 0; i < p.n; i++) {
    if (p.kind[i] !== READ) written.add(p.value[i]!);
    if (p.known[i] && (p.kind[i] === WRITE || p.kind[i] === APPEND || (p.kind[i] === CAS && p.ok[i] === 1))) firstChangeReturn = Math.min(firstChangeReturn, p.ret[i]!);
  }
  const reachable = (i: number): boolean => {
    const e = p.expected[i]!;
    return e === null ? p.call[i]! <= firstChangeReturn : hasAppend || written.has(e);
  };
  let casDoubt = -1; // the last such cas
  let lastObserver = -1;
  const observed: { index: number; value: string }[] = []; // known reads and applied cas, by value seen
  const unknownCas: number[] = [];
  for (let i = 0; i < p.n; i++) {
    if (p.kind[i] === READ && p.known[i] && p.value[i] !== null) observed.push({ index: i, value: p.value[i]! });
    if (p.kind[i] === CAS) {
      if (!p.known[i]) {
        if (p.expected[i] !== null) unknownCas.push(i);
      } else if (p.ok[i] !== 1) {
        if (reachable(i)) casDoubt = i;
      } else if (p.expected[i] !== null) observed.push({ index: i, value: p.expected[i]! });
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

/** A key's search result; `states` counts the states entered, `largestState` the most ops one named. */
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
  /** This state's memo key and pending unknown ops, recorded as failed when it is exhausted. */
  base: string;
  pending: number[];
  /**
   * Reached by linearizing an unknown op, and nothing since: a write next would overwrite it
   * unseen, which leaving it out does too (explored from the parent), so writes are skipped.
   */
  afterUnknown: boolean;
}

/** Whether sorted `a` contains every element of sorted `b`. */
function contains(a: readonly number[], b: readonly number[]): boolean {
  if (b.length > a.length) return false;
  let i = 0;
  for (const x of b) {
    while (i < a.length && a[i]! < x) i++;
    if (i === a.length || a[i] !== x) return false;
    i++;
  }
  return true;
}

/**
 * Searches one key for a linearization, entering at most `maxStates` states.
 *
 * The memo holds the states already exhausted without success (in a depth-first search, the
 * only states it can meet again), each as (frontier, value, known ops linearized ahead of the
 * frontier) → the sets of alive unknown-outcome ops still pending. A state is skipped when an
 * exhausted one has the same key and a superset of its pending unknown ops: an unknown op may
 * always be left out, so whatever completes the smaller set completes the larger one
 * (dominance; without it, each subset of pending unknown ops is a state of its own, 2^k).
 */
export function searchKey(p: PreparedKey, maxStates: number): KeyOutcome {
  const { n, call, ret, kind, ok, known, value, valueHash, valuePow, expected, expectedHash, horizon, unknown, hasAppend, producers } = p;
  const lin = new Uint8Array(n);
  const values = new Values();
  const failed = new Map<string, number[][]>();
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

  const wanted = new Set<string>();
  /**
   * The ops that may be linearized next: not linearized, called no later than the earliest
   * return of a pending known op, and, if unknown-outcome, alive. Known ops first (call order),
   * then the unknown ones (but those a candidate waits for first). With `linearizedAhead` and `pending`, also the state's description:
   * the known ops linearized after the frontier (offsets from it), and the alive unknown ops
   * not linearized, called before the frontier's return (ascending; later ones are pending in
   * every state with this frontier).
   */
  const candidates = (out: number[], linearizedAhead?: number[], pending?: number[]): void => {
    const windowEnd = ret[f]!;
    let minRet = windowEnd;
    let e = f + 1;
    for (; e < n && call[e]! <= windowEnd; e++) if (!lin[e] && known[e] && ret[e]! < minRet) minRet = ret[e]!;
    for (const u of unknown) {
      if (u >= f) break;
      if (!lin[u] && horizon[u]! >= f) pending?.push(u);
    }
    const later: number[] = [];
    for (let i = f; i < e; i++) {
      if (known[i]) {
        if (lin[i]) linearizedAhead?.push(i - f);
        else if (call[i]! <= minRet) out.push(i);
      } else if (!lin[i] && horizon[i]! >= f) {
        pending?.push(i);
        if (call[i]! <= minRet) later.push(i);
      }
    }
    for (const u of unknown) {
      if (u >= f) break;
      if (!lin[u] && horizon[u]! >= f) later.push(u);
    }
    if (later.length === 0) return;
    // An unknown op is worth linearizing only right before an op that observes it: one among
    // the candidates now (linearizing it changes no real-time constraint, so the op after it
    // in any completion is a candidate here too; and one followed by an overwrite can be left
    // out). Observers: a read or applied cas wanting its value, an unknown cas expecting it,
    // a cas that failed or whose outcome is unknown (a changed value explains either), an
    // append (which carries the value on); for an unknown append, any read or cas.
    wanted.clear();
    let doubt = false;
    let reader = false;
    let appends = 0;
    for (const c of out) {
      if (kind[c] === READ) {
        reader = true;
        if (value[c] !== null) wanted.add(value[c]!);
      } else if (kind[c] === CAS) {
        reader = true;
        if (ok[c] !== 1) doubt = true;
        else if (expected[c] !== null) wanted.add(expected[c]!);
      } else if (kind[c] === APPEND) appends++;
    }
    for (const u of later) {
      if (kind[u] === APPEND) appends++;
      else if (kind[u] === CAS && expected[u] !== null) {
        reader = true;
        wanted.add(expected[u]!);
      }
    }
    const useful = (u: number): boolean =>
      doubt || appends > (kind[u] === APPEND ? 1 : 0) || (kind[u] === APPEND ? reader : wanted.has(value[u]!));
    // Order only: those whose value a candidate wants first (nothing else may explain it).
    const first = later.filter((u) => kind[u] !== APPEND && wanted.has(value[u]!));
    if (first.length > 0) out.unshift(...first);
    for (const u of later) if (!first.includes(u) && useful(u)) out.push(u);
  };

  /** Linearizes every candidate that changes no value and holds now (a read, a failed cas). */
  const forcedMoves = (applied: number[]) => {
    const cands: number[] = [];
    for (let moved = true; moved && f < n; ) {
      moved = false;
      cands.length = 0;
      candidates(cands);
      for (const i of cands) {
        if (!known[i]) continue; // an unknown op is never forced
        if ((kind[i] === READ || (kind[i] === CAS && ok[i] === 0)) && step(i, current) === current) {
          linearize(i, applied);
          moved = true;
        }
      }
    }
  };

  /** Prefix hashes of a read's or cas's wanted value (index r), for the append case. */
  const prefixHashes = new Map<number, Int32Array>();
  const prefixHash = (r: number, s: string, length: number): number => {
    let hashes = prefixHashes.get(r);
    if (hashes === undefined) {
      hashes = new Int32Array(s.length + 1);
      for (let k = 0; k < s.length; k++) hashes[k + 1] = (Math.imul(hashes[k]!, BASE) + s.charCodeAt(k)) | 0;
      prefixHashes.set(r, hashes);
    }
    return hashes[length]!;
  };

  /**
   * Whether the current state is a dead end already: a pending known read (or cas known to have
   * applied) in the frontier's window wants a value that is not the current one and that no op
   * still able to precede it can make (no op deletes, so absent never comes back). Such a state
   * has no completion; finding it now saves exploring every order of the ops around it. With
   * appends, a value can be made if it extends the current one (by hash: a collision only
   * prunes less), or a pending write's value, and some append is pending.
   */
  const deadEnd = (): boolean => {
    const windowEnd = ret[f]!;
    for (let r = f; r < n && call[r]! <= windowEnd; r++) {
      if (lin[r] || !known[r]) continue;
      const want = kind[r] === READ ? value[r]! : kind[r] === CAS && ok[r] === 1 ? expected[r]! : undefined;
      if (want === undefined) continue;
      if (values.equals(current, want, kind[r] === READ ? valueHash[r]! : expectedHash[r]!)) continue;
      if (want === null) return true;
      if (!(hasAppend ? appendable(r, want) : writable(r, want))) return true;
    }
    return false;
  };
  const usable = (j: number) => !lin[j] && (known[j] || horizon[j]! >= f);
  /** Whether a pending write or cas able to precede op r writes `want`. */
  const writable = (r: number, want: string): boolean => {
    const writers = producers.get(want);
    if (writers === undefined) return false;
    for (const j of writers) {
      if (call[j]! > ret[r]!) break;
      if (usable(j)) return true;
    }
    return false;
  };
  /** With appends: whether `want` extends the current value, or a pending write's or append's value (onto absent). */
  const appendable = (r: number, want: string): boolean => {
    let appendPending = false;
    let fromWrite = false;
    const consider = (j: number) => {
      if (!usable(j)) return;
      if (kind[j] === APPEND) {
        appendPending = true;
        if (current === ABSENT && want.startsWith(value[j]!)) fromWrite = true;
      } else if (kind[j] !== READ && want.startsWith(value[j]!)) fromWrite = true;
    };
    for (const u of unknown) {
      if (u >= f) break;
      consider(u);
    }
    for (let j = f; j < n && call[j]! <= ret[r]!; j++) consider(j);
    if (fromWrite) return true;
    if (!appendPending) return false;
    const length = values.length[current]!;
    return length <= want.length && prefixHash(r, want, length) === values.hash[current];
  };

  /** Enters the current state: its frame, or undefined if an exhausted state dominates it. */
  const enter = (applied: number[], prevValue: number, prevF: number): Frame | undefined => {
    const ahead: number[] = [];
    const pending: number[] = [];
    const cands: number[] = [];
    candidates(cands, ahead, pending);
    const base = `${f}:${current}:${ahead.join(",")}`;
    const exhausted = failed.get(base);
    if (exhausted !== undefined && exhausted.some((set) => contains(set, pending))) return undefined;
    states++;
    largestState = Math.max(largestState, ahead.length + pending.length);
    // A dead end is entered with nothing to try: it is exhausted (and remembered) at once.
    const afterUnknown = applied.length === 1 && !known[applied[0]!]!;
    return { cands: deadEnd() ? [] : cands, next: 0, applied, prevValue, prevF, base, pending, afterUnknown };
  };

  /** Records an exhausted state, dropping the recorded sets it dominates. */
  const exhaust = (frame: Frame) => {
    const sets = failed.get(frame.base);
    if (sets === undefined) failed.set(frame.base, [frame.pending]);
    else {
      const kept = sets.filter((set) => !contains(frame.pending, set));
      kept.push(frame.pending);
      failed.set(frame.base, kept);
    }
  };

  const rootApplied: number[] = [];
  forcedMoves(rootApplied);
  if (f >= n) return { verdict: "ok", states, largestState };
  const stack: Frame[] = [enter(rootApplied, ABSENT, 0)!];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next >= top.cands.length) {
      stack.pop();
      exhaust(top);
      for (const i of top.applied) lin[i] = 0;
      current = top.prevValue;
      f = top.prevF;
      continue;
    }
    const i = top.cands[top.next++]!;
    if (top.afterUnknown && kind[i] === WRITE) continue;
    const after = step(i, current);
    if (after < 0) continue;
    const prevValue = current;
    const prevF = f;
    const applied: number[] = [];
    linearize(i, applied);
    current = after;
    forcedMoves(applied);
    if (f >= n) return { verdict: "ok", states, largestState };
    const frame = enter(applied, prevValue, prevF);
    if (frame === undefined) {
      for (const j of applied) lin[j] = 0;
      current = prevValue;
      f = prevF;
      continue;
    }
    if (states > maxStates) return { verdict: "unknown", states, largestState };
    stack.push(frame);
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
  /**
   * The reads and cas of `sub` whose value some op of `sub` can make: a read or cas expecting
   * a value a write or cas writes whole, or (with appends) a value that splits into such a
   * value, or nothing, followed by appended values; a cas that failed expecting absent, when
   * some op changes the value. Dropping the op that explains a read would make a "read of a
   * value never written": a failure, but not the one to show.
   */
  const explainedIn = (sub: readonly KeyOp<T>[]): Set<KeyOp<T>> => {
    const whole = new Set<string>();
    const appended = new Set<string>();
    for (const { op } of sub) {
      if (op.kind === "write" || op.kind === "cas") whole.add(op.value!);
      if (op.kind === "append") appended.add(op.value!);
    }
    const makes = (v: string): boolean => {
      if (whole.has(v) || appended.has(v)) return true;
      // The exact split only for short values (quadratic): a longer one counts as made.
      if (appended.size === 0 || v.length > 64) return appended.size > 0;
      const known = cache.get(v);
      if (known !== undefined) return known;
      const reach = new Uint8Array(v.length + 1); // reach[j]: v.slice(0, j) can be made
      reach[0] = 1;
      for (let j = 1; j <= v.length; j++) {
        if (whole.has(v.slice(0, j))) reach[j] = 1;
        for (let i = 0; i < j && !reach[j]; i++) if (reach[i] && appended.has(v.slice(i, j))) reach[j] = 1;
      }
      cache.set(v, reach[v.length] === 1);
      return reach[v.length] === 1;
    };
    const cache = new Map<string, boolean>();
    const changes = whole.size > 0 || appended.size > 0;
    const explained = new Set<KeyOp<T>>();
    for (const o of sub) {
      const { op } = o;
      const seen = op.kind === "read" ? op.value : op.kind === "cas" ? (op.expected ?? null) : undefined;
      if (seen === undefined) continue;
      if (op.kind === "cas" && op.ok === false) {
        if (seen !== null || changes) explained.add(o);
      } else if (seen === null || makes(seen)) explained.add(o);
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

