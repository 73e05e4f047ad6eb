// Attack on lease-core/etcd's takeover hold (docs/etcd.md §5) with a clock fault on the
// successor: the hold is "TTL on its clock since the campaign txn's answer", and "clock faults
// during the hold restart it". The nemesis's fault clock (demo/fault-clock.ts) calls a forward
// jump "safe, counted as time passing": safe for a lease its holder times (it ends early), but a
// hold is a wait, and a wait timed on a clock that jumps forward ends early in real time.
//
// The case: a holder `a` serves under its lease; its key is deleted while that lease still runs
// (what §5's early revoke by a stuck etcd 3.4 leader does, etcd-io/etcd #15247; here an admin
// delete stands in for it, with a's etcd traffic held back so that a cannot learn it); `b` wins
// the campaign and holds. Control: without a clock fault, b serves only after a's lease ran out,
// so no read of a's returns the value from before b's acknowledged write. Attack: b's clock jumps
// forward 2.5 s during its hold; b serves at once, writes (acknowledged), and a, whose lease still
// runs, serves the older value locally after that write: a stale read.
import { afterEach, describe, expect, test } from "vitest";
import { Etcd3 } from "etcd3";
import { createLeaseCore } from "lease-core";
import { createEtcdLeaseNode, type EtcdLeaseNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultClock } from "../demo/fault-clock.js";
import { FaultProxy } from "../demo/proxy.js";
import { sleep } from "./etcd/support.js";

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

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Read {
  value: string | null;
  served: string;
  startMs: number; // performance.now() when the read was called
}

/** Runs the case; `jumpMs` > 0 jumps b's clock forward by that much once its hold has begun.
 *  Returns a's reads that were CALLED after b's write of v1 was acknowledged. */
async function takeover(jumpMs: number): Promise<{ after: Read[]; localAfterDelete: number; writeAckMs: number; bHeld: boolean }> {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  const list = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
  proxies.push(...list);
  const admin = new Etcd3({ hosts: cluster.clientEndpoints });
  admins.push(admin);
  const prefix = `/attack-hj-${Math.random().toString(36).slice(2)}`;

  // a: every etcd call through the proxies, short timeouts (its renewals fail fast once held back).
  const a = createEtcdLeaseNode({ core: await createLeaseCore(), id: "a", prefix, endpoints: list.map((p) => `127.0.0.1:${p.port}`), ttlS: 2, etcdElectionTimeoutMs: 300, requestTimeoutMs: 300 });
  nodes.push(a);
  await a.start();
  await a.waitForLeader(15_000);
  await a.write("k", "v0");
  await until("a serving v0 locally", async () => (await a.read("k")).served === "local", 5000);

  // b: direct, on a fault clock over the true one.
  const trueCore = await createLeaseCore();
  const clock = new FaultClock(() => trueCore.now(), trueCore.clock);
  const b = createEtcdLeaseNode({ core: await createLeaseCore({ clock }), id: "b", prefix, endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300 });
  nodes.push(b);
  await b.start();
  await until("b following a", () => b.status().leaderId === "a", 5000);
  expect(b.status().revokeGuard).toBe("takeover-hold"); // etcd 3.4.23: no early-revoke fix

  // Right after a's renewal confirmed, hold back every answer to a (it learns nothing more)
  // and delete its key: a's confirmed lease still runs for up to TTL - margin (1697 ms).
  const confirmed = a.counters.confirmed!;
  await until("a's next confirmed renewal", () => a.counters.confirmed! > confirmed, 3000);
  for (const p of list) p.set("down", { kind: "delay", delayMs: 8000 });
  await admin.delete().key(`${prefix}/leader`);

  // a reads every 20 ms (its own clock decides local vs etcd), until 3 s after the delete.
  const reads: Read[] = [];
  const t0 = performance.now();
  const reading = (async () => {
    while (performance.now() - t0 < 3000) {
      const startMs = performance.now();
      const r = await a.read("k").catch(() => undefined);
      if (r !== undefined) reads.push({ value: r.value, served: r.served, startMs });
      await sleep(20);
    }
  })();

  let bHeld = false;
  if (jumpMs > 0) {
    await until("b's hold", () => b.status().holdUntilNs > 0n, 3000);
    bHeld = true;
    clock.inject("jump-forward", jumpMs);
  }
  await b.waitForLeader(10_000);
  await b.write("k", "v1");
  const writeAckMs = performance.now();
  await reading;
  return { after: reads.filter((r) => r.startMs > writeAckMs), localAfterDelete: reads.filter((r) => r.served === "local").length, writeAckMs: writeAckMs - t0, bHeld };
}

describe("etcd attack: the takeover hold and a successor's clock jumping forward", () => {
  test("control: with no clock fault, no read of the old holder after the successor's acknowledged write returns the older value", async () => {
    const { after, localAfterDelete } = await takeover(0);
    // The window exists: a still served locally after its key was deleted (its lease ran on).
    expect(localAfterDelete).toBeGreaterThan(0);
    const stale = after.filter((r) => r.value === "v0");
    expect(stale, JSON.stringify(after.slice(0, 5))).toEqual([]);
  }, 60_000);

  test("b's clock jumps forward 2.5 s during its hold: the old holder must still never serve the value from before b's acknowledged write", async () => {
    const { after, writeAckMs, bHeld } = await takeover(2500);
    expect(bHeld).toBe(true);
    const stale = after.filter((r) => r.value === "v0");
    expect(stale, `b's write acknowledged ${writeAckMs.toFixed(0)} ms after the delete; a's stale reads: ${JSON.stringify(stale.slice(0, 5))}`).toEqual([]);
  }, 60_000);
});
