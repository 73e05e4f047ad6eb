// The KV linearizability checker, `checkKvHistory` from lease-core/testing (host/testing/):
// - histories written by hand, one per semantic corner, each saying why it is (or is not)
//   linearizable;
// - random small histories against a brute-force oracle that tries every order
//   (test/support/kv-histories.ts), so every corner the generator reaches is judged twice;
// - histories generated from a sequential model (linearizable by construction), with a stale
//   read planted (not linearizable), up to 100,000 operations and 30,000 on one key, with
//   bounds on the work done (states explored; how many operations one state names);
// - a history that needs the memo, bad input, the state budget, minimal failing histories.
import fc from "fast-check";
import { checkKvHistory, InvalidHistoryError, type KvCheckStats, type KvOp } from "lease-core/testing";
import { InvalidOptionError, LeaseCoreError } from "lease-core";
import { describe, expect, test } from "vitest";
import { Prng } from "./sim/prng.js";
import { bruteForce, injectStaleRead, modelHistory } from "./support/kv-histories.js";

const w = (client: number, key: string, value: string, callAt: number, returnAt: number): KvOp => ({ client, kind: "write", key, value, callAt, returnAt });
const r = (client: number, key: string, value: string | null, callAt: number, returnAt: number): KvOp => ({ client, kind: "read", key, value, callAt, returnAt });
const a = (client: number, key: string, value: string, callAt: number, returnAt: number): KvOp => ({ client, kind: "append", key, value, callAt, returnAt });
const cas = (client: number, key: string, expected: string | null, value: string, callAt: number, returnAt: number, ok?: boolean): KvOp =>
  ok === undefined ? { client, kind: "cas", key, expected, value, callAt, returnAt } : { client, kind: "cas", key, expected, value, callAt, returnAt, ok };
const U = Infinity; // an unknown outcome

const withStats = (history: readonly KvOp[], maxStates?: number) => {
  let stats: KvCheckStats | undefined;
  const result = checkKvHistory(history, { ...(maxStates === undefined ? {} : { maxStates }), onStats: (s) => (stats = s) });
  return { result, stats: stats! };
};

describe("checkKvHistory: verdicts written by hand", () => {
  test.each<[string, KvOp[], boolean]>([
    ["an empty history", [], true],
    ["a read of an absent key sees null", [r(0, "x", null, 0, 1)], true],
    ["sequential write then read", [w(0, "x", "a", 0, 1), r(1, "x", "a", 2, 3)], true],
    ["a stale read: the write returned before the read began", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, 3), r(1, "x", "a", 4, 5)], false],
    ["a read concurrent with a write may see either value", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, 6), r(1, "x", "a", 3, 4), r(2, "x", "b", 3, 5)], true],
    ["two reads may not see the new value and then the old one", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, 10), r(1, "x", "b", 3, 4), r(2, "x", "a", 5, 6)], false],
    ["a read of a value never written", [r(0, "x", "z", 0, 1)], false],
    ["a read of absent after a write returned", [w(0, "x", "a", 0, 1), r(1, "x", null, 2, 3)], false],
    ["touching intervals count as concurrent", [w(0, "x", "a", 0, 5), r(1, "x", null, 5, 6)], true],
    ["keys are independent", [w(0, "x", "a", 0, 1), r(1, "y", null, 2, 3), r(1, "x", "a", 4, 5)], true],
    ["a stale read on one key among many", [w(0, "y", "1", 0, 1), w(0, "x", "a", 0, 1), r(1, "y", "1", 2, 3), r(1, "x", null, 4, 5)], false],
    // Concurrent overlaps: once both writes returned, the order between them is fixed for everyone.
    ["two concurrent writes, then reads agreeing on the last", [w(0, "x", "a", 0, 10), w(1, "x", "b", 0, 10), r(2, "x", "b", 11, 12), r(3, "x", "b", 13, 14)], true],
    ["two concurrent writes, then reads disagreeing on the last", [w(0, "x", "a", 0, 10), w(1, "x", "b", 0, 10), r(2, "x", "b", 11, 12), r(3, "x", "a", 13, 14)], false],
    ["reads inside the writes may see both orders' middle states", [w(0, "x", "a", 0, 10), w(1, "x", "b", 0, 10), r(2, "x", "a", 1, 2), r(3, "x", "b", 3, 4), r(4, "x", "a", 5, 6)], false],
    ["three writers, a reader inside each", [w(0, "x", "a", 0, 10), w(1, "x", "b", 1, 11), w(2, "x", "c", 2, 12), r(3, "x", "c", 3, 4), r(4, "x", "a", 5, 6), r(5, "x", "b", 7, 8)], true],

    // Unknown outcomes (returnAt Infinity): may take effect at any point after the call, or never.
    ["an unknown write that took effect, late", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, U), r(1, "x", "a", 10, 11), r(1, "x", "b", 12, 13)], true],
    ["an unknown write that never took effect", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, U), r(1, "x", "a", 10, 11)], true],
    ["an unknown write seen before its call", [w(0, "x", "a", 0, 1), r(1, "x", "b", 2, 3), w(0, "x", "b", 5, U)], false],
    ["an unknown write, once seen, cannot be unseen", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, U), r(1, "x", "b", 10, 11), r(1, "x", "a", 12, 13)], false],
    ["an unknown write taking effect after a later known write", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, U), w(1, "x", "c", 10, 11), r(2, "x", "c", 12, 13), r(2, "x", "b", 14, 15)], true],
    ["an unknown write seen, then overwritten, then seen again", [w(0, "x", "b", 2, U), r(1, "x", "b", 10, 11), w(1, "x", "c", 12, 13), r(2, "x", "b", 14, 15)], false],
    ["a read with an unknown outcome constrains nothing", [w(0, "x", "a", 0, 1), r(1, "x", "nonsense", 2, U)], true],
    ["two unknown writes, seen in either order", [w(0, "x", "a", 0, U), w(1, "x", "b", 0, U), r(2, "x", "b", 5, 6), r(2, "x", "a", 7, 8)], true],
    ["two unknown writes cannot each be seen twice around the other", [w(0, "x", "a", 0, U), w(1, "x", "b", 0, U), r(2, "x", "b", 5, 6), r(2, "x", "a", 7, 8), r(2, "x", "b", 9, 10)], false],

    // Compare-and-set: applied, failed, unknown.
    ["a cas that applied", [w(0, "x", "a", 0, 1), cas(1, "x", "a", "b", 2, 3, true), r(2, "x", "b", 4, 5)], true],
    ["a cas that says it applied but expected a value not there", [w(0, "x", "a", 0, 1), cas(1, "x", "z", "b", 2, 3, true)], false],
    ["a cas that says it failed although its expected value was there", [w(0, "x", "a", 0, 1), cas(1, "x", "a", "b", 2, 3, false)], false],
    ["a cas that failed on another value changes nothing", [w(0, "x", "a", 0, 1), cas(1, "x", "z", "b", 2, 3, false), r(2, "x", "a", 4, 5)], true],
    ["a failed cas explained by a concurrent write", [w(0, "x", "a", 0, 1), w(1, "x", "c", 2, 6), cas(2, "x", "a", "b", 3, 7, false), r(3, "x", "c", 8, 9)], true],
    ["a cas of unknown ok (it returned) whose expected value was there applied", [w(0, "x", "a", 0, 1), cas(1, "x", "a", "b", 2, 3), r(2, "x", "a", 4, 5)], false],
    ["a cas of unknown ok (it returned): the applied case", [w(0, "x", "a", 0, 1), cas(1, "x", "a", "b", 2, 3), r(2, "x", "b", 4, 5)], true],
    ["a cas of unknown ok whose expected value was not there did nothing", [w(0, "x", "a", 0, 1), cas(1, "x", "z", "b", 2, 3), r(2, "x", "b", 4, 5)], false],
    ["a cas of unknown ok applying only after a concurrent write made its expected value", [cas(0, "x", "b", "c", 0, 20), w(1, "x", "b", 1, 2), r(2, "x", "c", 21, 22)], true],
    ["a cas expecting absent on an absent key", [cas(0, "x", null, "a", 0, 1, true), r(1, "x", "a", 2, 3)], true],
    ["a cas expecting absent after a write", [w(0, "x", "q", 0, 1), cas(1, "x", null, "a", 2, 3, true)], false],
    ["a cas expecting absent that failed on an absent key", [cas(0, "x", null, "a", 0, 1, false)], false],
    ["an unknown cas that applied", [w(0, "x", "a", 0, 1), cas(1, "x", "a", "b", 2, U), r(2, "x", "b", 10, 11)], true],
    ["an unknown cas that did not apply", [w(0, "x", "a", 0, 1), cas(1, "x", "a", "b", 2, U), r(2, "x", "a", 10, 11)], true],
    ["an unknown cas cannot apply on a value it did not expect", [w(0, "x", "a", 0, 1), cas(1, "x", "z", "b", 2, U), r(2, "x", "b", 10, 11)], false],
    ["an unknown cas applying after a later write made its expected value", [w(0, "x", "a", 0, 1), cas(1, "x", "c", "b", 2, U), w(2, "x", "c", 5, 6), r(3, "x", "b", 10, 11)], true],
    ["an unknown write explaining a failed cas", [w(0, "x", "a", 0, 1), w(1, "x", "q", 2, U), cas(2, "x", "a", "b", 5, 6, false), r(3, "x", "q", 7, 8)], true],

    // Append: concatenates onto the current value; onto an absent key it makes it the value.
    ["an append onto an absent key", [a(0, "x", "p", 0, 1), r(1, "x", "p", 2, 3)], true],
    ["an append onto a written value", [w(0, "x", "a", 0, 1), a(1, "x", "b", 2, 3), r(2, "x", "ab", 4, 5)], true],
    ["an append does not prepend", [w(0, "x", "a", 0, 1), a(1, "x", "b", 2, 3), r(2, "x", "ba", 4, 5)], false],
    ["two concurrent appends, in either order", [a(0, "x", "p", 0, 5), a(1, "x", "q", 0, 5), r(2, "x", "qp", 6, 7)], true],
    ["two concurrent appends cannot be seen in both orders", [a(0, "x", "p", 0, 5), a(1, "x", "q", 0, 5), r(2, "x", "qp", 6, 7), r(2, "x", "pq", 8, 9)], false],
    ["an unknown append that took effect", [w(0, "x", "a", 0, 1), a(1, "x", "b", 2, U), r(2, "x", "ab", 5, 6)], true],
    ["an unknown append that never did", [w(0, "x", "a", 0, 1), a(1, "x", "b", 2, U), r(2, "x", "a", 5, 6)], true],
    ["an unknown append cannot be seen, then not", [w(0, "x", "a", 0, 1), a(1, "x", "b", 2, U), r(2, "x", "ab", 5, 6), r(2, "x", "a", 7, 8)], false],
    ["a value built by appends equals the same string written whole", [w(0, "x", "a", 0, 1), a(1, "x", "b", 2, 3), cas(2, "x", "ab", "c", 4, 5, true), r(3, "x", "c", 6, 7)], true],
    ["appending the empty string changes nothing", [w(0, "x", "a", 0, 1), a(1, "x", "", 2, 3), r(2, "x", "a", 4, 5)], true],
  ])("%s", (_name, history, ok) => {
    expect(checkKvHistory(history).ok).toBe(ok);
    expect(bruteForce(history)).toBe(ok); // the oracle agrees with the hand-written verdict
  });
});

describe("checkKvHistory against a brute-force oracle", () => {
  // Small histories over few values, so reads often match and cas often applies; times from a
  // small range, so most operations overlap.
  const values = ["a", "b", "ab", "ba"];
  const opArb = fc.record({
    client: fc.nat(3),
    key: fc.constantFrom("x", "x", "x", "y"),
    kind: fc.constantFrom("read", "read", "write", "cas", "append"),
    value: fc.constantFrom(...values),
    seesAbsent: fc.boolean(),
    expected: fc.option(fc.constantFrom(...values), { nil: null }),
    ok: fc.constantFrom(true, false, undefined),
    callAt: fc.nat(12),
    length: fc.nat(6),
    unknown: fc.nat(5).map((n) => n === 0),
  }).map((o): KvOp => {
    const op: KvOp = { client: o.client, key: o.key, kind: o.kind as KvOp["kind"], value: o.kind === "read" && o.seesAbsent ? null : o.kind === "append" ? o.value[0]! : o.value, callAt: o.callAt, returnAt: o.unknown ? Infinity : o.callAt + o.length };
    if (o.kind === "cas") {
      op.expected = o.expected;
      if (!o.unknown && o.ok !== undefined) op.ok = o.ok;
    }
    return op;
  });

  test("random histories of up to 7 operations: the same verdict as trying every order", () => {
    let linearizable = 0;
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 7 }), (history) => {
        const expected = bruteForce(history);
        const result = checkKvHistory(history);
        expect(result.ok).toBe(expected);
        if (expected) linearizable++;
        if (result.ok === false) {
          // The minimal history is a failing subset of the failing key's operations.
          expect(bruteForce(result.minimal)).toBe(false);
          expect(result.minimal.every((op) => history.includes(op) && op.key === result.key)).toBe(true);
        }
      }),
      { numRuns: 4000, seed: 20261201 },
    );
    // Both verdicts were reached often enough to mean something.
    expect(linearizable).toBeGreaterThan(800);
    expect(linearizable).toBeLessThan(3200);
  });
});

describe("checkKvHistory on histories from a model", () => {
  // Within reach: a failing history must be searched exhaustively up to its violation, so the
  // work grows with the orders the ops around each point allow. Many concurrent appends on one
  // key (each order a different value) is where it runs out first: see docs/safety.md.
  test.each([
    { seed: 1, clients: 5, keys: 2 },
    { seed: 2, clients: 10, keys: 1, cas: 0.3, appends: 0 },
    { seed: 3, clients: 5, keys: 3, appends: 0.3 },
    { seed: 4, clients: 20, keys: 3, unknown: 0.05, appends: 0 },
    { seed: 5, clients: 50, keys: 10, unknown: 0.02, cas: 0.2 },
  ])("linearizable by construction, 3,000 ops: %o; with a stale read planted, not", (params) => {
    const history = modelHistory({ ops: 3000, ...params });
    expect(checkKvHistory(history)).toEqual({ ok: true });
    const planted = injectStaleRead(history, new Prng(params.seed), 1000);
    expect(planted).toBeDefined();
    const result = checkKvHistory(history);
    expect(result.ok).toBe(false);
    if (result.ok !== false) return;
    expect(result.key).toBe(planted!.key);
    // Without appends, every read of the minimal history is explained by a write in it; the
    // only thing that can fail is the planted read.
    if (params.appends === 0) expect(result.minimal).toContain(planted);
    expect(result.minimal.length).toBeLessThanOrEqual(8);
  }, 60_000);

  test("100,000 operations, 100 keys, 50 concurrent clients, every kind and 1% unknown outcomes: linearizable, within a bounded amount of work", () => {
    const history = modelHistory({ seed: 11, ops: 100_000, clients: 50, keys: 100, cas: 0.15, appends: 0.15, unknown: 0.01 });
    const { result, stats } = withStats(history);
    expect(result).toEqual({ ok: true });
    expect(stats.operations).toBeGreaterThan(99_000);
    // Work: under one search state per operation (measured 0.45), each naming at most a few
    // dozen operations however long the history.
    expect(stats.states).toBeLessThan(stats.operations);
    expect(stats.largestState).toBeLessThanOrEqual(40);
    const planted = injectStaleRead(history, new Prng(11), 1000)!;
    const bad = withStats(history);
    expect(bad.result.ok).toBe(false);
    if (bad.result.ok === false) expect(bad.result.key).toBe(planted.key);
  }, 120_000);

  test("30,000 operations on ONE key, 10 clients, writes, appends and 1% unknown outcomes: the state does not grow with the history", () => {
    const history = modelHistory({ seed: 12, ops: 30_000, clients: 10, keys: 1, cas: 0, appends: 0.1, unknown: 0.01 });
    const { result, stats } = withStats(history);
    expect(result).toEqual({ ok: true });
    expect(stats.states).toBeLessThan(stats.operations); // measured 25,212 for 29,792
    // Bounded by the concurrency and the unknown ops still observable, not by 30,000 (nor by
    // the ~300 unknown ones: each leaves the state once no remaining op could observe it).
    expect(stats.largestState).toBeLessThanOrEqual(20);
    // The first tenth alone names as many: no growth with length.
    const tenth = withStats(history.slice(0, 3_000));
    expect(stats.largestState).toBeLessThanOrEqual(tenth.stats.largestState + 8);
  }, 120_000);
});

describe("checkKvHistory: the memo", () => {
  /**
   * Rounds of 5 concurrent writes, then a read of the first write's value after all of them
   * returned: in each round the 4 other writes can go in any of 24 orders before the first,
   * all reaching the same state. A stale read at the end makes the whole history fail, so the
   * search must exhaust every round: with the memo each round's end state is explored once
   * (about 100 states a round); without it, every order of every round multiplies (24^12).
   */
  function rounds(count: number): KvOp[] {
    const history: KvOp[] = [];
    for (let k = 0; k < count; k++) {
      const t = k * 100;
      for (let c = 0; c < 5; c++) history.push(w(c, "x", `r${k}w${c}`, t + c, t + 50));
      history.push(r(9, "x", `r${k}w0`, t + 60, t + 70));
    }
    history.push(r(9, "x", "r0w0", count * 100, count * 100 + 1));
    return history;
  }

  test("a history that needs it: the search exhausts 12 rounds of 24 orders each within a few thousand states", () => {
    const { result, stats } = withStats(rounds(12), 200_000);
    expect(result.ok).toBe(false);
    expect(stats.states).toBeLessThan(3_000);
    // Linear in the rounds: twice the rounds, about twice the states (never squared).
    const twice = withStats(rounds(24), 200_000);
    expect(twice.result.ok).toBe(false);
    expect(twice.stats.states).toBeLessThan(2.5 * stats.states);
  });
});

describe("checkKvHistory: failures and budgets", () => {
  test("a failure names the key and a minimal history that still fails", () => {
    const history = [
      w(0, "x", "a", 0, 1), w(1, "y", "q", 0, 1), r(2, "y", "q", 2, 3), w(0, "x", "b", 2, 3),
      r(1, "x", "b", 4, 5), w(0, "x", "c", 6, 7), r(2, "x", "c", 8, 9), r(1, "x", "b", 10, 11),
    ];
    const result = checkKvHistory(history);
    expect(result.ok).toBe(false);
    if (result.ok !== false) return;
    expect(result.key).toBe("x");
    // The essence: c was written (and returned) before the read that saw b began.
    expect(result.minimal).toEqual([w(0, "x", "b", 2, 3), w(0, "x", "c", 6, 7), r(1, "x", "b", 10, 11)]);
    expect(result.minimal[0]).toBe(history[3]); // the caller's own objects
    expect(checkKvHistory(result.minimal).ok).toBe(false);
  });

  test("the minimal history keeps the caller's extra fields and is 1-minimal", () => {
    const history: (KvOp & { node: string })[] = modelHistory({ seed: 21, ops: 2000, clients: 8, keys: 1, cas: 0.2 }).map((op, i) => ({ ...op, node: `n${i % 3}` }));
    const planted = injectStaleRead(history, new Prng(21), 99) as KvOp & { node: string };
    planted.node = "n9";
    const result = checkKvHistory(history);
    expect(result.ok).toBe(false);
    if (result.ok !== false) return;
    expect(result.minimal.every((op) => typeof op.node === "string")).toBe(true);
    // Dropping any one op either makes it pass or leaves a read of a value nobody wrote.
    for (let i = 0; i < result.minimal.length; i++) {
      const fewer = result.minimal.filter((_, j) => j !== i);
      const written = new Set(fewer.filter((op) => op.kind !== "read").map((op) => op.value));
      const unexplained = fewer.some((op) => (op.kind === "read" && op.value !== null && !written.has(op.value)) || (op.kind === "cas" && op.ok !== false && op.expected != null && !written.has(op.expected)));
      expect(checkKvHistory(fewer).ok === true || unexplained, `without op ${i}`).toBe(true);
    }
  });

  test("a search past maxStates says unknown, never a verdict it did not reach", () => {
    const { result, stats } = withStats(rounds12(), 50);
    expect(result).toEqual({ ok: "unknown", reason: expect.stringMatching(/key "x": more than 50 states/) });
    expect(stats.maxStatesPerKey).toBe(51);
    // A definite failure on another key still wins over an unknown one.
    const both = checkKvHistory([...rounds12(), w(0, "z", "a", 0, 1), w(0, "z", "b", 2, 3), r(1, "z", "a", 4, 5)], { maxStates: 50 });
    expect(both.ok).toBe(false);
    function rounds12(): KvOp[] {
      const history: KvOp[] = [];
      for (let k = 0; k < 12; k++) {
        for (let c = 0; c < 5; c++) history.push(w(c, "x", `r${k}w${c}`, k * 100 + c, k * 100 + 50));
        history.push(r(9, "x", `r${k}w0`, k * 100 + 60, k * 100 + 70));
      }
      history.push(r(9, "x", "r0w0", 1200, 1201));
      return history;
    }
  });
});

describe("checkKvHistory: bad input", () => {
  const good = w(0, "x", "a", 0, 1);
  test.each<[string, unknown, RegExp]>([
    ["returnAt before callAt", { ...good, callAt: 5, returnAt: 1 }, /returnAt \(1\) is before callAt \(5\)/],
    ["NaN callAt", { ...good, callAt: NaN }, /callAt must be a finite number/],
    ["infinite callAt", { ...good, callAt: Infinity }, /callAt must be a finite number/],
    ["NaN returnAt", { ...good, returnAt: NaN }, /returnAt must be a number/],
    ["a string time", { ...good, callAt: "0" }, /callAt/],
    ["an unknown kind", { ...good, kind: "delete" }, /kind must be/],
    ["a key that is not a string", { ...good, key: 7 }, /key must be a string/],
    ["no client", { ...good, client: undefined }, /client/],
    ["a write of null", { ...good, value: null }, /value must be a string/],
    ["an append of a number", { ...a(0, "x", "p", 0, 1), value: 3 }, /value must be a string/],
    ["a read of a number", { ...r(0, "x", "p", 0, 1), value: 3 }, /string or null/],
    ["a cas without expected", { client: 0, key: "x", kind: "cas", value: "b", callAt: 0, returnAt: 1, ok: true }, /needs expected/],
    ["a cas whose ok is not a boolean", { ...cas(0, "x", "a", "b", 0, 1), ok: "yes" }, /ok must be/],
    ["a cas of unknown outcome with ok", cas(0, "x", "a", "b", 0, Infinity, true), /leave ok undefined/],
    ["expected on a write", { ...good, expected: "a" }, /expected is for a cas/],
    ["ok on a write", { ...good, ok: false }, /ok is for a cas/],
    ["not an object", 42, /not an operation/],
    ["null", null, /not an operation/],
  ])("%s: InvalidHistoryError naming the operation", (_name, bad, message) => {
    const history = [good, bad as KvOp];
    const before = JSON.stringify(history);
    let caught: unknown;
    try {
      checkKvHistory(history);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidHistoryError);
    expect(caught).toBeInstanceOf(LeaseCoreError);
    const err = caught as InvalidHistoryError;
    expect(err.name).toBe("InvalidHistoryError");
    expect(err.code).toBe("ERR_LEASE_INVALID_HISTORY");
    expect(err.index).toBe(1);
    expect(err.message).toMatch(/^history\[1\]: /);
    expect(err.message).toMatch(message);
    expect(JSON.stringify(history)).toBe(before); // nothing was changed
  });

  test("a history that is not an array, and bad options", () => {
    expect(() => checkKvHistory("x" as never)).toThrow(InvalidHistoryError);
    expect(() => checkKvHistory([], { maxStates: 0 })).toThrow(InvalidOptionError);
    expect(() => checkKvHistory([], { maxStates: 1.5 })).toThrow(/maxStates/);
    expect(() => checkKvHistory([], { maxStates: NaN })).toThrow(/maxStates/);
    expect(() => checkKvHistory([], { onStats: 3 as never })).toThrow(/onStats/);
  });

  test("the error is the one lease-core exports (one class, whichever entry threw it)", async () => {
    const core = await import("lease-core");
    expect(InvalidHistoryError).toBe(core.InvalidHistoryError);
  });
});
