// Attack (round 4) on the round-3 own-write floor (0632dd9, host/etcd/index.ts write()): the
// floor is set only when the txn ANSWERED and the local catch-up then timed out (the revision is
// known). A txn whose answer never arrives (the request deadline passes while etcd commits it)
// is the other ERR_LEASE_ETCD_UNKNOWN_OUTCOME of docs/etcd.md's table ("no answer, a deadline":
// "read before retrying"), and it sets no floor and does not invalidate: if the member that
// delays the txn's answer also carries the node's data watch, the local state lags the write
// etcd holds, the lease (renewed through the fast members) still holds, and the read the error
// asks for is served LOCALLY from before the write. Inputs: a TCP proxy delaying only the
// member carrying the data watch by 4 s (> requestTimeoutMs 300); the answers of the node's data
// txns are lost after etcd committed them (KVClient.prototype.txn wrapped in this file: the real
// call completes at etcd, then the caller gets the etcd3 client's deadline error); writes
// re-staged until one's txn never answered (counters.writes unmoved) while etcd holds the value
// (an admin client reads it). Expected (docs/contract.md: a local read
// is never older than a write already observed; docs/etcd.md §4): the read returns the value
// etcd holds or goes to etcd and waits for it. Actual: served "local", value null (twice: k1, k0).
import { afterEach, describe, expect, test } from "vitest";
import { GRPCDeadlineExceededError, KVClient } from "etcd3";
import { startLaggingWatch, type LaggingWatch } from "./etcd/lagging-watch.js";
import { until } from "./etcd/support.js";

let setup: LaggingWatch | undefined;

// The answer of a txn etcd committed is lost (its deadline passes while it is in flight): the
// client call to etcd is made and completes at etcd, then the caller sees the deadline error the
// etcd3 client gives for a late answer. Armed only for this test's data writes.
const realTxn = KVClient.prototype.txn;
let loseAnswersUnder: string | undefined;
KVClient.prototype.txn = async function (this: KVClient, ...args: Parameters<KVClient["txn"]>) {
  const answer = await realTxn.apply(this, args);
  const put = args[0].success?.[0]?.request_put?.key;
  const key = put === undefined ? "" : Buffer.from(put as Buffer).toString();
  if (loseAnswersUnder !== undefined && key.startsWith(loseAnswersUnder)) throw new GRPCDeadlineExceededError("Deadline exceeded (the answer was lost after etcd committed)");
  return answer;
};

afterEach(async () => {
  loseAnswersUnder = undefined;
  await setup?.close();
  setup = undefined;
});

interface Outcome {
  key: string;
  code: string; // "ok" when the write resolved
  applied: boolean; // what etcd holds afterwards
  answered: boolean; // the node counted the txn's success (counters.writes: after the fenced txn answered)
  readValue?: string | null; // the node's read right after etcd was seen holding the value
  readServed?: string;
  remainingNs?: number; // status().remainingNs just before that read (a number: the outcomes are printed as JSON)
}

describe("etcd attack round 4: the read after a write whose txn never answered", () => {
  test("the read before retrying a write whose txn timed out while etcd committed it is not served locally from before it", async () => {
    setup = await startLaggingWatch();
    const { admin: a, node: n, prefix, proxies: list, slow } = setup;
    loseAnswersUnder = `${prefix}/d/k`;
    const outcomes: Outcome[] = [];
    // Bounded re-staging: a write whose txn went through a fast member is answered (counters.writes
    // moves: the round-3 case, floored); one whose keepalive went through the slow member fails
    // before its txn (etcd holds nothing: not this case); one whose txn went through the slow
    // member is never answered while etcd commits it: this case (and, to make it reachable when the
    // txn's member is fast, that member's answer is lost after etcd committed: loseAnswersUnder).
    // Up to 12 writes.
    for (let i = 0; i < 12 && !outcomes.some((o) => o.readServed !== undefined); i++) {
      const key = `k${i}`;
      let code = "ok";
      const writesBefore = n.counters.writes!;
      try {
        if (n.state() !== "leader") await n.waitForLeader(10_000);
        await n.write(key, `v${i}`);
      } catch (err) {
        code = String((err as { code?: unknown }).code ?? (err as Error).name);
      }
      const answered = n.counters.writes! > writesBefore;
      const got = await a.get(`${prefix}/d/${key}`).string();
      const o: Outcome = { key, code, applied: got === `v${i}`, answered };
      if (!answered && code === "ERR_LEASE_ETCD_UNKNOWN_OUTCOME" && o.applied && n.state() === "leader") {
        // "read before retrying": the txn never answered; the data watch is still 4 s behind.
        // status() must not report a lease that no read is served from (docs/etcd.md §4).
        // After a renewal confirmed since (the loop renews every TTL/4), which sets the anchor again.
        const confirmed = n.counters.confirmed!;
        await until("a renewal confirmed", () => n.counters.confirmed! > confirmed, 3_000).catch(() => undefined);
        o.remainingNs = Number(n.status().remainingNs);
        try {
          const r = await n.read(key);
          o.readValue = r.value;
          o.readServed = r.served;
        } catch (err) {
          o.readServed = String((err as { code?: unknown }).code ?? (err as Error).name);
        }
      }
      outcomes.push(o);
    }
    list[slow]!.heal();
    loseAnswersUnder = undefined;

    const readAfter = outcomes.filter((o) => o.readServed !== undefined);
    // The precondition: a write etcd committed and holds, whose txn never answered (unknown
    // outcome), read on the same leader afterwards.
    expect(readAfter.length, `no committed write was rejected as unknown outcome and read: ${JSON.stringify(outcomes)}`).toBeGreaterThan(0);
    for (const o of readAfter) {
      const v = `v${o.key.slice(1)}`;
      // Never the value from before a write etcd holds and another client has already read.
      expect(o.remainingNs, `${o.key}: status().remainingNs while behind a write of unknown outcome`).toBe(0);
      if (o.readValue !== undefined) expect({ value: o.readValue, served: o.readServed }, `${o.key}: ${JSON.stringify(outcomes)}`).toEqual({ value: v, served: o.readServed });
    }
  }, 120_000);
});
