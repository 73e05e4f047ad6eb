// The KV linearizability checker (host/linearizability.ts), on histories small enough to judge
// by hand: each case says why it is (or is not) linearizable.
import { describe, expect, test } from "vitest";
import { checkKvHistory, InvalidHistoryError, type KvOp } from "lease-core/testing";

const w = (client: number, key: string, value: string, callAt: number, returnAt: number): KvOp => ({ client, kind: "write", key, value, callAt, returnAt });
const r = (client: number, key: string, value: string | null, callAt: number, returnAt: number): KvOp => ({ client, kind: "read", key, value, callAt, returnAt });

describe("checkKvHistory", () => {
  test.each<[string, KvOp[], boolean]>([
    ["an empty history", [], true],
    ["a read of an absent key sees null", [r(0, "x", null, 0, 1)], true],
    ["sequential write then read", [w(0, "x", "a", 0, 1), r(1, "x", "a", 2, 3)], true],
    ["a stale read: the write returned before the read began", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, 3), r(1, "x", "a", 4, 5)], false],
    ["a read concurrent with a write may see either value", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, 6), r(1, "x", "a", 3, 4), r(2, "x", "b", 3, 5)], true],
    ["two reads may not see the new value and then the old one", [w(0, "x", "a", 0, 1), w(0, "x", "b", 2, 10), r(1, "x", "b", 3, 4), r(2, "x", "a", 5, 6)], false],
    ["a read of a value never written", [r(0, "x", "z", 0, 1)], false],
    ["touching intervals count as concurrent", [w(0, "x", "a", 0, 5), r(1, "x", null, 5, 6)], true],
    ["keys are independent", [w(0, "x", "a", 0, 1), r(1, "y", null, 2, 3), r(1, "x", "a", 4, 5)], true],
    ["a stale read on one key among many", [w(0, "y", "1", 0, 1), w(0, "x", "a", 0, 1), r(1, "y", "1", 2, 3), r(1, "x", null, 4, 5)], false],
  ])("%s: %s", (_name, history, ok) => {
    expect(checkKvHistory(history).ok).toBe(ok);
  });

  test("an unknown write (returnAt Infinity) may take effect late, or never", () => {
    const unknown = w(0, "x", "b", 2, Infinity);
    expect(checkKvHistory([w(0, "x", "a", 0, 1), unknown, r(1, "x", "a", 10, 11), r(1, "x", "b", 12, 13)]).ok).toBe(true);
    expect(checkKvHistory([w(0, "x", "a", 0, 1), unknown, r(1, "x", "a", 10, 11)]).ok).toBe(true);
    // ...but not before its call.
    expect(checkKvHistory([w(0, "x", "a", 0, 1), r(1, "x", "b", 2, 3), w(0, "x", "b", 5, Infinity)]).ok).toBe(false);
    // ...and once seen, it cannot be unseen.
    expect(checkKvHistory([w(0, "x", "a", 0, 1), unknown, r(1, "x", "b", 10, 11), r(1, "x", "a", 12, 13)]).ok).toBe(false);
  });

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
    expect(checkKvHistory(result.minimal).ok).toBe(false);
  });

  test("a search past maxStates says unknown, never a verdict it did not reach", () => {
    // 12 writes all concurrent, then reads pinning an order no prefix search finds quickly.
    const history: KvOp[] = [];
    for (let i = 0; i < 12; i++) history.push(w(i, "x", `v${i}`, 0, 100));
    history.push(r(20, "x", "nope", 200, 201));
    const result = checkKvHistory(history, { maxStates: 50 });
    expect(result.ok === false || result.ok === "unknown").toBe(true);
    expect(checkKvHistory(history.slice(0, 12).concat(r(20, "x", "v3", 200, 201)), { maxStates: 10_000 }).ok).toBe(true);
    const blowup = checkKvHistory(history.slice(0, 12).concat(r(20, "x", "v3", 50, 60), r(21, "x", "v5", 50, 60), r(22, "x", "v3", 61, 62), r(23, "x", "v5", 63, 64)), { maxStates: 20 });
    expect(blowup.ok).toBe("unknown");
  });

  test("bad input is an InvalidHistoryError naming the operation", () => {
    expect(() => checkKvHistory([{ ...w(0, "x", "a", 0, 1), kind: "delete" as never }])).toThrow(InvalidHistoryError);
    expect(() => checkKvHistory([w(0, "x", "a", 5, 1)])).toThrow(/returnAt/);
    expect(() => checkKvHistory([{ ...w(0, "x", "a", 0, 1), value: null }])).toThrow(/value must be a string/);
    expect(() => checkKvHistory([], { maxStates: 0 })).toThrow(/maxStates/);
  });

  test("a long sequential history is checked quickly (memoised search)", () => {
    const history: KvOp[] = [];
    for (let i = 0; i < 3000; i++) {
      history.push(w(i % 4, `k${i % 3}`, `v${i}`, i * 10, i * 10 + 15)); // overlapping neighbours
      history.push(r((i + 1) % 4, `k${i % 3}`, `v${i}`, i * 10 + 16, i * 10 + 18));
    }
    const started = performance.now();
    expect(checkKvHistory(history)).toEqual({ ok: true });
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
