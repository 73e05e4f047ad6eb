// Attack (round 3) on the etcd write-outcome fix (host/etcd/index.ts write(): a write etcd
// committed whose local catch-up timed out is now ERR_LEASE_ETCD_UNKNOWN_OUTCOME, "read before
// retrying", docs/etcd.md §1 and its table of codes). The read that advice sends the client to,
// on the same leader, is served LOCALLY from the lagging state: the node knows the revision it
// committed (it is in the error's message) and that its local state has not reached it, but its
// lease (kept alive by the renew loop through the fast members) still serves. etcd holds the
// value (an admin client reads it: the write is observed), and a read started after that
// observation returns the value from before it: a stale read (docs/contract.md: a local read is
// never older than a write already observed; docs/etcd.md §4: "no read older than the
// acknowledged write"). Setup as test/etcd-attack-write-timeout.test.ts (a TCP proxy delaying
// only the node's data watch 4 s > 5 x requestTimeoutMs). Expected: the read returns the value
// etcd holds (or goes to etcd and waits for it); actual: served "local", the older value.
import { afterEach, describe, expect, test } from "vitest";
import { startLaggingWatch, type LaggingWatch } from "./etcd/lagging-watch.js";
import { until } from "./etcd/support.js";

let setup: LaggingWatch | undefined;

afterEach(async () => {
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
}

describe("etcd attack round 3: the read after an unknown-outcome write", () => {
  test("the read a client makes before retrying an unknown-outcome write (etcd holds it) is not served locally from before it", async () => {
    setup = await startLaggingWatch();
    const { admin: a, node: n, prefix, proxies: list, slow } = setup;
    const outcomes: Outcome[] = [];
    // Bounded re-staging: a write whose keepalive or txn went through the slow member fails
    // before or at its txn (a definite or unknown outcome: not this case); one whose txn went
    // through another member is answered at once (counters.writes moves) and then waits for the
    // slow watch: this case. Up to 12 writes until one such write was rejected.
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
      if (answered && code === "ERR_LEASE_ETCD_UNKNOWN_OUTCOME" && o.applied && n.state() === "leader") {
        // "read before retrying": the data watch is still 4 s behind.
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

    const readAfter = outcomes.filter((o) => o.readServed !== undefined);
    // The precondition: a write etcd committed and holds, reported as an unknown outcome, read
    // on the same leader afterwards.
    expect(readAfter.length, `no committed write was rejected as unknown outcome and read: ${JSON.stringify(outcomes)}`).toBeGreaterThan(0);
    for (const o of readAfter) {
      const v = `v${o.key.slice(1)}`;
      // Never the value from before a write etcd holds and another client has already read.
      if (o.readValue !== undefined) expect({ value: o.readValue, served: o.readServed }, `${o.key}: ${JSON.stringify(outcomes)}`).toEqual({ value: v, served: o.readServed });
    }
  }, 120_000);
});
