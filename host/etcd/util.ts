/**
 * Small helpers the etcd engine's files share (`lease-core/etcd`, docs/etcd.md): the no-retry
 * fault policy of §1, the raw gRPC stream shape, a prefix's range end, an abortable sleep, and
 * ending a stream that may already be gone, the check of a key or value. None holds state.
 * @module
 */

import { InvalidOptionError } from "../core/errors.js";

/** A noop fault policy: etcd3's default retries a failed call up to 3 times, and a retried txn
 *  can apply twice (a put re-applied after another client's put breaks linearizability). */
export const NOOP_POLICY = {
  execute: <T>(fn: (context: { signal: AbortSignal }) => T | Promise<T>): Promise<T> => Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
};

/** A raw gRPC duplex stream (LeaseKeepAlive, Watch) as etcd3's generated clients return it. */
export type Duplex = {
  write(message: unknown): boolean;
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
  end(): void;
  cancel?: () => void;
  destroy?: (err?: Error) => void;
};

export function prefixEnd(prefix: Buffer): Buffer {
  // The range end of a prefix: the prefix with its last byte incremented (etcd's clientv3.GetPrefixRangeEnd).
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Cancels and ends `stream`, ignoring a stream that is already gone. */
export function endStream(stream: Duplex): void {
  try {
    stream.cancel?.();
  } catch {
    // already gone
  }
  try {
    stream.end();
  } catch {
    // already gone
  }
}

/**
 * A key or value of the KV API: a string etcd stores exactly as given. A lone UTF-16 surrogate
 * has no UTF-8 form: `Buffer.from` would store U+FFFD instead, so a write would be acknowledged
 * under a key no read of the same string ever finds (or a value never written). Refused by name.
 */
const LONE_SURROGATE = /\p{Cs}/u; // with the u flag a paired surrogate is one code point, never Cs

export function checkText(what: "key" | "value", text: unknown): string {
  if (typeof text !== "string" || (what === "key" && text.length === 0)) throw new InvalidOptionError(what, what === "key" ? "a non-empty string" : "a string", text);
  if (LONE_SURROGATE.test(text)) throw new InvalidOptionError(what, "a well-formed string (no lone UTF-16 surrogate: it has no UTF-8 form)", text);
  return text;
}
