// Guards of the etcd engine (host/etcd/index.ts) that the lease arithmetic and fault tests do not
// reach, each shown on a real 3-member etcd on loopback: a renewal whose clock sample failed
// confirms nothing (docs/etcd.md: the anchor is a keepalive's send time, and no reading is no
// send time). Found by `npm run mutation` (the mutant that drops the check survived the rest).
import { afterAll, beforeAll, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { createEtcdLeaseNode, type EtcdLeaseNode } from "../host/etcd/index.js";

let cluster: EtcdCluster;
const nodes: EtcdLeaseNode[] = [];

beforeAll(async () => {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
}, 30_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error("condition not reached");
    await sleep(10);
  }
}

test("no clock reading: renewals go on, but none is confirmed and the anchor does not move; readings back, they confirm again", async () => {
  let failing = false;
  const core = await createLeaseCore({ clock: { now: () => (failing ? 0n : process.hrtime.bigint()) } });
  const a = createEtcdLeaseNode({ core, id: "a", prefix: "/g1", endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300, renewIntervalMs: 100 });
  nodes.push(a);
  await a.start();
  await a.waitForLeader();
  await until(() => a.status().counters.confirmed! > 0, 3000);
  failing = true;
  const before = { ...a.status().counters };
  const ack = a.lastQuorumAck();
  await until(() => a.status().counters.renewals! >= before.renewals! + 3, 5000);
  expect(a.status().counters.confirmed).toBe(before.confirmed);
  expect(a.lastQuorumAck() <= ack).toBe(true);
  // Control: with readings back, renewals confirm again.
  failing = false;
  await until(() => a.status().counters.confirmed! > before.confirmed!, 3000);
}, 30_000);
