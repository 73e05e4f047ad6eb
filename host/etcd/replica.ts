/**
 * The local copy of `lease-core/etcd` (docs/etcd.md §4): the data prefix followed by a watch,
 * the applied revision (the etcd revision of the last applied event), the reload of the whole
 * prefix when the watch's start revision was compacted, the waits until the copy reaches a
 * revision, and the linearizable read-only txn whose revision a read waits for.
 *
 * Invariant: the local copy is etcd's watched prefix at revision `s.applied`, for every key it
 * holds and every key it lacks (a reload replaces it whole, never merges an older copy in).
 * @module
 */
import type { IKeyValue, ITxnResponse, IRangeResponse } from "etcd3";
import { etcdError, EtcdNodeError } from "./errors.js";
import type { NodeState, Waiter } from "./state.js";
import { endStream, prefixEnd, sleep, type Duplex } from "./util.js";

/** A linearizable read-only txn of the leader key and the meta key (§2's quorum operation, and
 *  the revision a linearizable read waits for). */
export function readTxn(s: NodeState): Promise<ITxnResponse> {
  // A read-only txn is linearizable in etcd (ReadIndex before serving, v3_server.go Txn).
  return s.kv
    .txn({ compare: [], success: [{ request_range: { key: s.leaderKey } }, { request_range: { key: s.metaKey } }], failure: [] }, s.callOptions())
    .catch((err: unknown) => {
      throw etcdError("linearizable read", s.endpoints, err);
    });
}

/** The meta key's mod revision as `txn` read it: every acknowledged write put it (§4). */
export function metaRevisionOf(txn: ITxnResponse): bigint {
  const meta = txn.responses[1]?.response_range.kvs[0];
  return meta === undefined ? 0n : BigInt(meta.mod_revision);
}

/** A watch response as the raw stream delivers it (etcd3 loads the protos with `longs: String`). */
interface WatchResponse {
  canceled?: boolean;
  compact_revision?: string;
  events?: { type: string; kv: IKeyValue }[];
}

/** Follows the watched prefix (`s.watchPrefix`: the data prefix, or the group node's whole
 *  service prefix) from `fromRevision` until closed, re-opening the watch after a stream ends
 *  from the revision after the last one applied; when etcd cancelled the watch because that
 *  revision was compacted, reloads the prefix first and watches on from the reload. */
export async function watchData(s: NodeState, fromRevision: bigint): Promise<void> {
  const signal = s.stop.signal;
  let from = fromRevision;
  // The revision etcd compacted the keyspace at when it cancelled our watch (0n: no reload due).
  let compactedAt = 0n;
  while (!signal.aborted) {
    if (compactedAt > 0n) {
      // Re-opening at `from` again would be cancelled again, forever (the outage of
      // test/etcd-attack-groups-compacted-watch): the events between `from` and the compaction
      // are gone from etcd, so the copy is taken again from a range of the whole prefix.
      if (!(await reload(s, compactedAt))) {
        await sleep(100, signal);
        continue;
      }
      compactedAt = 0n;
      from = s.applied + 1n;
    }
    let stream: Duplex;
    try {
      stream = (await s.watches.watch()) as unknown as Duplex;
    } catch {
      await sleep(100, signal);
      continue;
    }
    s.streams.add(stream);
    await new Promise<void>((resolve) => {
      const finish = () => {
        signal.removeEventListener("abort", finish);
        s.streams.delete(stream);
        endStream(stream);
        resolve();
      };
      signal.addEventListener("abort", finish, { once: true });
      stream.on("data", (res: WatchResponse) => {
        if (res.canceled) {
          // etcd cancels a watch whose start revision (or, for a watch that fell behind, its
          // next revision) is below the compaction, setting compact_revision to the compaction
          // (etcd api/etcdserverpb/rpc.proto WatchResponse; mvcc watcher_group.go chooseAll,
          // `w.minRev < compactRev`; v3rpc watch.go sets canceled when CompactRevision != 0):
          // its events are gone.
          const compacted = BigInt(res.compact_revision ?? "0");
          if (compacted > 0n && !__UNSAFE_WATCH_IGNORES_COMPACTION__) {
            compactedAt = compacted;
            s.event("watch-compacted", `watch from revision ${from} cancelled: compacted at revision ${compacted} (applied ${s.applied})`);
          }
          return finish();
        }
        for (const event of res.events ?? []) apply(s, event.kv, event.type);
        wake(s);
      });
      stream.on("error", () => {
        // Cancelling the watch on close() ends the stream with an error too: not an event.
        if (!signal.aborted) s.event("watch-error");
        finish();
      });
      stream.on("end", finish);
      stream.write({ create_request: { key: s.watchPrefix, range_end: prefixEnd(s.watchPrefix), start_revision: from.toString() } });
    });
    from = s.applied + 1n;
    await sleep(50, signal);
  }
}

/**
 * Takes the local copy again from one linearizable range of the watched prefix (etcd's range is
 * linearizable unless `serializable` is asked for: a ReadIndex first), answered at revision R:
 * replaces the copy with it in one synchronous step (keys absent from the range are deleted
 * locally; the group node's membership and group keys go through `s.otherKey` as watch events
 * do, a vanished key as a deletion at R), sets applied = R and resolves every wait up to R.
 * Returns false when the range failed (the caller retries) or answered no newer revision.
 *
 * No reader sees a half-replaced copy (JavaScript runs this step to its end before any read),
 * and nothing is invalidated: the copy jumps from its applied revision to R as if every event
 * in between had been applied in one response. A key deleted and re-created (or written twice)
 * between them shows only its final value, which is exactly etcd's state at R; no read could
 * have been served an intermediate value it now lacks, because a read only ever gets the copy
 * at some applied revision at or past the one it waited for. While the copy was behind, the
 * existing rules held: a read the lease cannot cover waits for the revision it read (and timed
 * out while the watch was blind), and a write whose catch-up timed out left its floor, which R
 * now passes (docs/etcd.md §4). A leader's local reads under its lease need nothing new: the
 * data prefix is written only through the leader's fenced txns, each of which waits for the
 * copy, so the copy it serves from was never missing a write it had acknowledged.
 */
async function reload(s: NodeState, compactedAt: bigint): Promise<boolean> {
  let snapshot: IRangeResponse;
  try {
    if (s.counters.etcdRequests !== undefined) s.counters.etcdRequests++; // the group node counts every RPC
    snapshot = await s.kv.range({ key: s.watchPrefix, range_end: prefixEnd(s.watchPrefix) }, s.callOptions());
  } catch {
    return false;
  }
  if (s.closed) return false;
  const revision = BigInt(snapshot.header.revision);
  // A linearizable range answers at or past the compaction, which is past applied; an older
  // answer would move the copy back: never taken.
  if (revision <= s.applied) return false;
  const before = s.applied;
  // Data keys named as apply() names them; other keys by their bytes.
  const present = new Set<string>();
  const presentData = new Set<string>();
  const prefix = s.dataPrefix;
  for (const kv of snapshot.kvs) {
    if (kv.key.length >= prefix.length && kv.key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0) presentData.add(kv.key.subarray(prefix.length).toString());
    else present.add(kv.key.toString("hex"));
  }
  for (const key of [...s.data.keys()]) if (!presentData.has(key)) s.data.delete(key);
  for (const [hex, key] of [...s.otherKeys]) {
    if (present.has(hex)) continue;
    // As the watch would have told it: a deletion, at R (the key was gone by then).
    apply(s, { key, value: Buffer.alloc(0), create_revision: "0", mod_revision: revision.toString(), version: "0", lease: "0" }, "DELETE");
  }
  for (const kv of snapshot.kvs) apply(s, kv, "PUT");
  s.applied = revision;
  s.counters.watchReloads = (s.counters.watchReloads ?? 0) + 1;
  wake(s);
  s.event("watch-reload", `reloaded ${snapshot.kvs.length} keys at revision ${revision} (applied was ${before}, compacted at ${compactedAt})`);
  return true;
}

/** Applies one PUT or DELETE event to the local copy; the applied revision only moves up. A key
 *  outside the data prefix (only a group node watches any) goes to `s.otherKey` first. */
export function apply(s: NodeState, kv: IKeyValue, type: string): void {
  const revision = BigInt(kv.mod_revision);
  const prefix = s.dataPrefix;
  // etcd3 loads the protos with `enums: String`: a watch event's type is mvccpb.Event's enum
  // name, "Put" or "Delete" (etcd3 lib/rpc.d.ts FilterType/Event), never "DELETE" (the snapshot
  // passes "PUT"). Compared without case, so a deletion is never applied as a put.
  const deleted = isDelete(type);
  if (kv.key.length >= prefix.length && kv.key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0) {
    const key = kv.key.subarray(prefix.length).toString();
    if (key.length > 0) {
      if (deleted) s.data.delete(key);
      else s.data.set(key, kv.value.toString());
    }
  } else if (s.otherKey !== undefined) {
    // Remembered so a reload can tell the handler which of them vanished.
    const hex = kv.key.toString("hex");
    if (deleted) s.otherKeys.delete(hex);
    else s.otherKeys.set(hex, kv.key);
    s.otherKey(kv, type);
  }
  if (revision > s.applied) s.applied = revision;
}

/** Whether a watch event's type is a deletion ("Delete" from the watch stream). */
export function isDelete(type: string): boolean {
  return type.toUpperCase() === "DELETE";
}

/** Resolves every wait the applied revision has reached. */
function wake(s: NodeState): void {
  for (let i = s.waiters.length - 1; i >= 0; i--) {
    const waiter = s.waiters[i]!;
    if (s.applied >= waiter.revision) {
      s.waiters.splice(i, 1);
      waiter.resolve();
    }
  }
}

/** Resolves once the local copy has reached `revision`; rejects by name on close (§4: never
 *  answered with older state), on `signal`, or after 5 request timeouts. */
export function waitApplied(s: NodeState, revision: bigint, signal?: AbortSignal): Promise<void> {
  if (s.applied >= revision) return Promise.resolve();
  if (s.closed) {
    if (__UNSAFE_CLOSE_ANSWERS_PENDING__) return Promise.resolve();
    return Promise.reject(new EtcdNodeError(`closed before the local state reached revision ${revision}`, "ERR_LEASE_ETCD_CLOSED"));
  }
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      remove();
      signal?.removeEventListener("abort", onAbort);
      reject(new EtcdNodeError(`local state did not reach revision ${revision} in time`, "ERR_LEASE_ETCD_TIMEOUT"));
    }, s.timeoutMs * 5);
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const waiter: Waiter = {
      revision,
      resolve: () => {
        settle();
        resolve();
      },
      reject: (err) => {
        settle();
        reject(err);
      },
    };
    const remove = () => {
      const i = s.waiters.indexOf(waiter);
      if (i >= 0) s.waiters.splice(i, 1);
    };
    const onAbort = () => {
      clearTimeout(timer);
      remove();
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    s.waiters.push(waiter);
  });
}
