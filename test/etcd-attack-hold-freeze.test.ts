// Attack on lease-core/etcd's takeover hold (docs/etcd.md §5) with a clock that may freeze,
// inside its declared budget (docs/edge-clocks.md: `mayFreeze`, `freezeBudgetNs` = "how far a
// check may lag the true time"; demo/fault-clock.ts: "a freeze within the budget is inside
// lease-core's model"). A frozen reading lags the true time: harmless for a lease's sample (an
// earlier expiry) but not for the START of a wait. The hold starts from the reading taken right
// after the campaign txn's answer; if that reading is frozen, the hold ends up to the budget
// early in true time, while the previous holder's lease (anchored on a keepalive sent before
// its key went) may still run.
//
// The case: `a` leads and serves; `b` follows on a clock declaring a 1.5 s freeze budget. b's
// clock freezes (1.5 s, within its budget); 600 ms later a's next renewal confirms; then a's etcd
// traffic is held back and a's key deleted (what §5's early revoke by a stuck etcd 3.4 leader
// does, etcd-io/etcd #15247: an admin delete stands in). b wins while frozen: its hold starts
// from the frozen reading. Control: the same with no freeze.
import { afterEach, describe, expect, test } from "vitest";
import { Etcd3 } from "etcd3";
import { createLeaseCore, type ClockSource } from "lease-core";
import { createEtcdLeaseNode, type EtcdLeaseNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { sleep, until } from "./etcd/support.js";

const MS = 1_000_000n;
const POLL_MS = 2; // the renewal and its confirmation are caught within a few ms
const FREEZE_MS = 1500;

let cluster: EtcdCluster | undefined;
const proxies: FaultProxy[] = [];
const nodes: EtcdLeaseNode[] = [];
const admins: Etcd3[] = [];

afterEach(async () => {
  for (const p of proxies) p.heal();
  await Promise.all(nodes.splice(0).map((n) => n.close().catch(() => undefined)));
  for (const a of admins.splice(0)) a.close();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await cluster?.stop();
  cluster = undefined;
});

/** A true clock that can stand still for up to its declared budget, then reads true time again
 *  (as demo/fault-clock.ts's freeze, with a larger budget). Never reads later than the truth. */
class FreezingClock implements ClockSource {
  #frozenNs: bigint | undefined;
  #untilNs = 0n;
  readonly info = { source: "attack-freezing", raw: true, suspendAware: false, resolutionNs: 1n, mayFreeze: true, freezeBudgetNs: BigInt(FREEZE_MS) * MS };
  constructor(readonly trueNs: () => bigint) {}
  now(): bigint {
    const t = this.trueNs();
    if (this.#frozenNs !== undefined && t < this.#untilNs) return this.#frozenNs;
    this.#frozenNs = undefined;
    return t;
  }
  freeze(ms: number): void {
    this.#frozenNs = this.now();
    this.#untilNs = this.trueNs() + BigInt(ms) * MS;
  }
}

interface Read {
  value: string | null;
  served: string;
  startMs: number;
}

async function takeover(freeze: boolean): Promise<{ after: Read[]; localAfterDelete: number; writeAckMs: number }> {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  const list = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
  proxies.push(...list);
  const admin = new Etcd3({ hosts: cluster.clientEndpoints });
  admins.push(admin);
  const prefix = `/attack-hf-${Math.random().toString(36).slice(2)}`;

  const a = createEtcdLeaseNode({ core: await createLeaseCore(), id: "a", prefix, endpoints: list.map((p) => `127.0.0.1:${p.port}`), ttlS: 2, etcdElectionTimeoutMs: 300, requestTimeoutMs: 300 });
  nodes.push(a);
  await a.start();
  await a.waitForLeader(15_000);
  await a.write("k", "v0");
  await until("a serving v0 locally", async () => (await a.read("k")).served === "local", 5000, POLL_MS);

  const trueCore = await createLeaseCore();
  const clock = new FreezingClock(() => trueCore.now());
  const b = createEtcdLeaseNode({ core: await createLeaseCore({ clock }), id: "b", prefix, endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300 });
  nodes.push(b);
  await b.start();
  await until("b following a", () => b.status().leaderId === "a", 5000, POLL_MS);
  expect(b.status().revokeGuard).toBe("takeover-hold"); // etcd 3.4.23: no early-revoke fix

  // b's clock freezes (or not); 600 ms later, a's next renewal (sent after that) confirms.
  if (freeze) clock.freeze(FREEZE_MS);
  await sleep(600);
  const renewals = a.counters.renewals!;
  await until("a's next renewal", () => a.counters.renewals! > renewals, 3000, POLL_MS);
  const confirmed = a.counters.confirmed!;
  await until("its confirmation", () => a.counters.confirmed! > confirmed, 3000, POLL_MS);
  // a learns nothing more; its key goes while its confirmed lease (TTL - margin: 1697 ms) runs.
  for (const p of list) p.set("down", { kind: "delay", delayMs: 8000 });
  await admin.delete().key(`${prefix}/leader`);

  const reads: Read[] = [];
  const t0 = performance.now();
  const reading = (async () => {
    while (performance.now() - t0 < 3500) {
      const startMs = performance.now();
      const r = await a.read("k").catch(() => undefined);
      if (r !== undefined) reads.push({ value: r.value, served: r.served, startMs });
      await sleep(20);
    }
  })();
  await b.waitForLeader(10_000);
  await b.write("k", "v1");
  const writeAckMs = performance.now();
  await reading;
  return { after: reads.filter((r) => r.startMs > writeAckMs), localAfterDelete: reads.filter((r) => r.served === "local").length, writeAckMs: writeAckMs - t0 };
}

describe("etcd attack: the takeover hold started on a frozen reading", () => {
  test("control: no freeze, the old holder never serves the older value after the successor's acknowledged write", async () => {
    const { after, localAfterDelete } = await takeover(false);
    expect(localAfterDelete).toBeGreaterThan(0); // the window exists: a served on after its key went
    expect(after.filter((r) => r.value === "v0"), JSON.stringify(after.slice(0, 5))).toEqual([]);
  }, 60_000);

  test("b's clock frozen (within its declared budget) when its campaign is answered: the old holder must still never serve the older value after b's acknowledged write", async () => {
    const { after, writeAckMs } = await takeover(true);
    const stale = after.filter((r) => r.value === "v0");
    expect(stale, `b's write acknowledged ${writeAckMs.toFixed(0)} ms after the delete; a's stale reads after it: ${JSON.stringify(stale.slice(0, 5))}`).toEqual([]);
  }, 60_000);
});
