/**
 * The local copy of `lease-core/etcd` (docs/etcd.md §4): the data prefix followed by a watch,
 * the applied revision (the etcd revision of the last applied event), the waits until the copy
 * reaches a revision, and the linearizable read-only txn whose revision a read waits for.
 * @module
 */
import type { IKeyValue, ITxnResponse } from "etcd3";
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

/** Follows the watched prefix (`s.watchPrefix`: the data prefix, or the group node's whole
 *  service prefix) from `fromRevision` until closed, re-opening the watch after a
 *  stream ends from the revision after the last one applied. */
export async function watchData(s: NodeState, fromRevision: bigint): Promise<void> {
  const signal = s.stop.signal;
  let from = fromRevision;
  while (!signal.aborted) {
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
      stream.on("data", (res: { canceled?: boolean; events?: { type: string; kv: IKeyValue }[] }) => {
        if (res.canceled) return finish();
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
  } else {
    s.otherKey?.(kv, type);
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
