// Routing and assignment of the group engine (host/etcd/groups/assign.ts, docs/etcd.md "Many
// groups on one lease"), as properties over random inputs (fast-check): groupOfKey stable and in
// range; rendezvousOwner deterministic, blind to the order of the live list, balanced, and
// moving only what it must when a node leaves or joins; desiredGroups and chunk agreeing with
// it; typed errors on bad input.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { groupOfKey as publishedGroupOfKey } from "lease-core/etcd";
import { chunk, desiredGroups, groupOfKey, rendezvousOwner } from "../host/etcd/groups/assign.js";

const nodeId = fc.string({ minLength: 1, maxLength: 12 });
const liveSet = fc.uniqueArray(nodeId, { minLength: 1, maxLength: 7 });
const groupCount = fc.integer({ min: 1, max: 65536 });
const groupId = fc.integer({ min: 0, max: 65535 });

function owners(G: number, live: string[]): (string | undefined)[] {
  return Array.from({ length: G }, (_, g) => rendezvousOwner(g, live));
}

describe("groupOfKey", () => {
  test("is in [0, G), the same for a string and its UTF-8 bytes, and stable", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), groupCount, (key, G) => {
        const g = groupOfKey(key, G);
        expect(Number.isInteger(g) && g >= 0 && g < G).toBe(true);
        expect(groupOfKey(new TextEncoder().encode(key), G)).toBe(g);
        expect(groupOfKey(key, G)).toBe(g);
        expect(publishedGroupOfKey(key, G)).toBe(g);
      }),
    );
  });

  test("is FNV-1a 32-bit mod G (known vectors: fnv1a('') = 0x811c9dc5, fnv1a('a') = 0xe40c292c)", () => {
    expect(groupOfKey("", 65536)).toBe(0x811c9dc5 % 65536);
    expect(groupOfKey("a", 65536)).toBe(0xe40c292c % 65536);
    expect(groupOfKey("foobar", 1000)).toBe(0xbf9cf968 % 1000);
  });

  test("spreads keys over the groups", () => {
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[groupOfKey(`key-${i}`, 16)]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });

  test("bad input: typed errors", () => {
    for (const G of [0, -1, 1.5, 65537, Number.NaN, Number.POSITIVE_INFINITY, "4", undefined, 2n]) {
      expect(() => groupOfKey("k", G as never)).toThrow(expect.objectContaining({ name: "InvalidOptionError", code: "ERR_LEASE_INVALID_OPTION" }));
    }
    for (const key of [5, null, undefined, {}, ["a"]]) {
      expect(() => groupOfKey(key as never, 8)).toThrow(expect.objectContaining({ name: "InvalidOptionError" }));
    }
  });
});

describe("rendezvousOwner", () => {
  test("is a live node, deterministic and independent of the order of the live list", () => {
    fc.assert(
      fc.property(groupId, liveSet, fc.integer(), (g, live, seed) => {
        const owner = rendezvousOwner(g, live);
        expect(live).toContain(owner);
        const shuffled = [...live].sort(() => 0).reverse();
        const rotated = live.map((_, i) => live[(i + Math.abs(seed)) % live.length]!);
        expect(rendezvousOwner(g, shuffled)).toBe(owner);
        expect(rendezvousOwner(g, rotated)).toBe(owner);
        expect(rendezvousOwner(g, [...live, ...live])).toBe(owner);
      }),
    );
    expect(rendezvousOwner(3, [])).toBeUndefined();
  });

  test("is balanced: each of 3 nodes gets within ±15% of G/3 at G=1000", () => {
    fc.assert(
      fc.property(fc.uniqueArray(nodeId, { minLength: 3, maxLength: 3 }), (live) => {
        const counts = new Map(live.map((id) => [id, 0]));
        for (const owner of owners(1000, live)) counts.set(owner!, counts.get(owner!)! + 1);
        for (const c of counts.values()) expect(Math.abs(c - 1000 / 3)).toBeLessThanOrEqual(0.15 * (1000 / 3));
      }),
      { numRuns: 50 },
    );
    // The ids the demo and the tests use.
    const counts = new Map<string, number>();
    for (const owner of owners(1000, ["a", "b", "c"])) counts.set(owner!, (counts.get(owner!) ?? 0) + 1);
    for (const c of counts.values()) expect(Math.abs(c - 1000 / 3)).toBeLessThanOrEqual(50);
  });

  test("minimal movement: a node leaving moves only its groups; a join moves groups only to the new node", () => {
    fc.assert(
      fc.property(fc.uniqueArray(nodeId, { minLength: 2, maxLength: 6 }), fc.nat(), fc.integer({ min: 1, max: 300 }), (live, pick, G) => {
        const leaving = live[pick % live.length]!;
        const before = owners(G, live);
        const after = owners(G, live.filter((id) => id !== leaving));
        for (let g = 0; g < G; g++) {
          if (before[g] !== leaving) expect(after[g]).toBe(before[g]);
          else expect(after[g]).not.toBe(leaving);
        }
        // The join is the same pair read the other way round.
        for (let g = 0; g < G; g++) if (after[g] !== before[g]) expect(before[g]).toBe(leaving);
      }),
    );
  });

  test("bad input: typed errors", () => {
    for (const g of [-1, 1.5, 65536, Number.NaN, "3", undefined]) {
      expect(() => rendezvousOwner(g as never, ["a"])).toThrow(expect.objectContaining({ name: "UnknownGroupError", code: "ERR_LEASE_UNKNOWN_GROUP" }));
    }
    for (const live of [undefined, "a", [""], [1], [null]]) {
      expect(() => rendezvousOwner(0, live as never)).toThrow(expect.objectContaining({ name: "InvalidOptionError" }));
    }
  });
});

describe("desiredGroups and chunk", () => {
  test("desiredGroups(id) is exactly the groups whose owner is id (sorted), none when id is not live", () => {
    fc.assert(
      fc.property(liveSet, fc.integer({ min: 1, max: 300 }), (live, G) => {
        const all = owners(G, live);
        for (const id of live) expect(desiredGroups(id, live, G)).toEqual(all.flatMap((o, g) => (o === id ? [g] : [])));
        expect(desiredGroups(`${live.join("")}-not-live`, live, G)).toEqual([]);
      }),
      { numRuns: 50 },
    );
  });

  test("chunk keeps order, cuts at most `size` per batch, loses nothing", () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), fc.integer({ min: 1, max: 200 }), (items, size) => {
        const batches = chunk(items, size);
        expect(batches.flat()).toEqual(items);
        for (const b of batches) expect(b.length >= 1 && b.length <= size).toBe(true);
      }),
    );
    for (const size of [0, -1, 1.5, Number.NaN, "2"]) expect(() => chunk([1], size as never)).toThrow(expect.objectContaining({ name: "InvalidOptionError" }));
    expect(() => desiredGroups("", ["a"], 4)).toThrow(expect.objectContaining({ name: "InvalidOptionError" }));
    expect(() => desiredGroups("a", ["a"], 0)).toThrow(expect.objectContaining({ name: "InvalidOptionError" }));
  });
});
