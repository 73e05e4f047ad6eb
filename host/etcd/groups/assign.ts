/**
 * Routing and assignment of the group engine (`lease-core/etcd`, docs/etcd.md "Many groups on
 * one lease"): which group owns a key (`groupOfKey`), which live node should lead a group
 * (`rendezvousOwner`, highest-random-weight hashing), the groups a node should lead
 * (`desiredGroups`), and the batches a campaign is cut into (`chunk`). Pure: no clock, no etcd,
 * no state; every node computes the same answers from the same inputs.
 *
 * Invariants (asserted by test/groups-assign.test.ts):
 * - `groupOfKey(k, G)` is in [0, G) and depends only on k's UTF-8 bytes and G;
 * - `rendezvousOwner(g, live)` depends on the SET `live` only (not its order), and a node's
 *   leaving moves only the groups it owned, a node's joining moves groups only to it
 *   (rendezvous hashing: Thaler & Ravishankar, "Using name-based mappings to increase hit
 *   rates", 1998).
 * @module
 */
import { InvalidOptionError, UnknownGroupError } from "../../core/errors.js";

/** The largest group count a prefix may have (group ids are 5 decimal digits in the keys). */
export const MAX_GROUP_COUNT = 65536;

const encoder = new TextEncoder();

/** FNV-1a, 32 bits, over bytes (http://www.isthe.com/chongo/tech/comp/fnv/: offset basis
 *  2166136261, prime 16777619). */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finalizer (fmix32): every input bit flips each output bit with
 *  probability ~1/2, so consecutive group ids get unrelated weights. */
function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Checks a group count: an integer in [1, 65536]. */
export function checkGroupCount(groupCount: unknown): number {
  if (typeof groupCount !== "number" || !Number.isInteger(groupCount) || groupCount < 1 || groupCount > MAX_GROUP_COUNT) {
    throw new InvalidOptionError("groupCount", `an integer in [1, ${MAX_GROUP_COUNT}]`, groupCount);
  }
  return groupCount;
}

function checkGroupId(groupId: unknown): number {
  if (typeof groupId !== "number" || !Number.isInteger(groupId) || groupId < 0 || groupId >= MAX_GROUP_COUNT) throw new UnknownGroupError(groupId);
  return groupId;
}

function checkLive(liveNodeIds: unknown): readonly string[] {
  if (!Array.isArray(liveNodeIds)) throw new InvalidOptionError("liveNodeIds", "an array of non-empty strings", liveNodeIds);
  for (const id of liveNodeIds) if (typeof id !== "string" || id.length === 0) throw new InvalidOptionError("liveNodeIds[]", "a non-empty string", id);
  return liveNodeIds as readonly string[];
}

/** The group owning `key`: FNV-1a 32-bit over its UTF-8 bytes, mod `groupCount`.
 *  @throws InvalidOptionError for a key that is neither a string nor bytes, or a bad count. */
export function groupOfKey(key: string | Uint8Array, groupCount: number): number {
  checkGroupCount(groupCount);
  if (typeof key === "string") return fnv1a(encoder.encode(key)) % groupCount;
  if (key instanceof Uint8Array) return fnv1a(key) % groupCount;
  throw new InvalidOptionError("key", "a string or a Uint8Array", key);
}

/** A node's weight for a group (ties broken by the smaller id in the callers). */
function weight(nodeHash: number, groupId: number): number {
  return mix32(nodeHash ^ mix32(groupId));
}

/** The live node that should lead `groupId`: the highest `mix32(fnv1a(id) ^ mix32(groupId))`,
 *  ties to the smaller id; undefined when no node is live. */
export function rendezvousOwner(groupId: number, liveNodeIds: readonly string[]): string | undefined {
  checkGroupId(groupId);
  const live = checkLive(liveNodeIds);
  let best: string | undefined;
  let bestWeight = -1;
  for (const id of live) {
    const w = weight(fnv1a(encoder.encode(id)), groupId);
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}

/** The groups (sorted) whose rendezvous owner among `liveNodeIds` is `nodeId`: O(G · nodes),
 *  with each node's hash taken once. `nodeId` need not be live (then: none). */
export function desiredGroups(nodeId: string, liveNodeIds: readonly string[], groupCount: number): number[] {
  checkGroupCount(groupCount);
  const live = [...new Set(checkLive(liveNodeIds))];
  if (typeof nodeId !== "string" || nodeId.length === 0) throw new InvalidOptionError("nodeId", "a non-empty string", nodeId);
  if (!live.includes(nodeId)) return [];
  const hashes = live.map((id) => fnv1a(encoder.encode(id)));
  const out: number[] = [];
  for (let g = 0; g < groupCount; g++) {
    let best = -1;
    let bestWeight = -1;
    for (let i = 0; i < live.length; i++) {
      const w = weight(hashes[i]!, g);
      if (w > bestWeight || (w === bestWeight && live[i]! < live[best]!)) {
        best = i;
        bestWeight = w;
      }
    }
    if (live[best] === nodeId) out.push(g);
  }
  return out;
}

/** `items` cut into consecutive batches of at most `size` (a campaign txn's op limit). */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (typeof size !== "number" || !Number.isInteger(size) || size < 1) throw new InvalidOptionError("size", "an integer >= 1", size);
  if (!Array.isArray(items)) throw new InvalidOptionError("items", "an array", items);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The group id as it appears in the keys: 5 decimal digits, zero-padded. */
export function groupKeySuffix(groupId: number): string {
  return String(groupId).padStart(5, "0");
}
