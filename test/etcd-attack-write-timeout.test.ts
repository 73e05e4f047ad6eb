// Attack on lease-core/etcd's write outcome (docs/etcd.md §1, §4; the table of codes): a write
// whose fenced txn COMMITTED in etcd, but whose local state did not catch up with it within
// 5 × requestTimeoutMs (the node's data watch is served by a slow member), must not be reported
// as a failure a client may simply retry. §1: a retried write can apply twice (a put re-applied
// after another client's put breaks linearizability), so a write that may have applied is
// `ERR_LEASE_ETCD_UNKNOWN_OUTCOME` ("read before retrying"); the table's
// `ERR_LEASE_ETCD_TIMEOUT` says "retry". This test delays only the node's data watch (a TCP
// proxy between the node and the member serving that watch, demo/proxy.ts), writes until one
// write's txn went through another member (etcd3 picks an endpoint per call), and asserts that
// every write etcd applied and the node rejected was rejected as an unknown outcome.
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
}

describe("etcd attack: the outcome of a write etcd applied", () => {
  test("a committed write whose local catch-up timed out is reported as an unknown outcome, never as a retryable timeout", async () => {
    setup = await startLaggingWatch();
    const { admin: a, node: n, prefix, proxies: list, slow } = setup;
    const outcomes: Outcome[] = [];
    // Bounded re-staging: a write whose keepalive or txn went through the slow member fails
    // before or at its txn (a definite or unknown outcome: not this case); one whose txn went
    // through another member is answered at once (counters.writes moves) and then waits for the
    // slow watch: this case. Up to 12 writes until one such write was rejected.
    for (let i = 0; i < 12 && !outcomes.some((o) => o.answered && o.code !== "ok"); i++) {
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
      outcomes.push({ key, code, applied: got === `v${i}`, answered });
    }
    list[slow]!.heal();

    const rejected = outcomes.filter((o) => o.answered && o.code !== "ok");
    // The precondition: a write whose fenced txn etcd answered with success was then rejected.
    expect(rejected.length, `no committed write was rejected: ${JSON.stringify(outcomes)}`).toBeGreaterThan(0);
    for (const o of rejected) {
      expect(o.applied, `${o.key}: etcd answered its txn with success`).toBe(true);
      // The contract: a write etcd applied is never reported as one a client may retry blindly
      // (docs/etcd.md §1: "a write whose answer never came is reported as ERR_LEASE_ETCD_UNKNOWN_OUTCOME").
      expect(o.code, `${o.key} applied in etcd: ${JSON.stringify(outcomes)}`).toBe("ERR_LEASE_ETCD_UNKNOWN_OUTCOME");
    }
  }, 120_000);
});
