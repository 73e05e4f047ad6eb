// Guards of the etcd engine (host/etcd/index.ts) that the lease arithmetic and fault tests do not
// reach, each shown on a real 3-member etcd on loopback: a renewal whose clock sample failed
// confirms nothing (docs/etcd.md: the anchor is a keepalive's send time, and no reading is no
// send time); the anchor is the keepalive's send time, not its receive time (seen through a
// proxy that delays every byte). Found by `npm run mutation` (mutants that survived the rest).
import { createConnection, createServer, type Server, type Socket } from "node:net";
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

/** A TCP proxy to `endpoint` that delays every chunk by `delayMs` in each direction (order kept:
 *  equal timeouts fire in the order they were set). */
async function delayProxy(endpoint: string, delayMs: number): Promise<{ endpoint: string; close(): void }> {
  const [host, port] = endpoint.split(":") as [string, string];
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket) => {
    from.on("data", (chunk) => setTimeout(() => to.destroyed || to.write(chunk), delayMs));
    from.on("end", () => setTimeout(() => to.end(), delayMs));
    from.on("error", () => to.destroy());
    from.on("close", () => setTimeout(() => to.destroy(), delayMs));
  };
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host, port: Number(port) });
    sockets.add(client).add(upstream);
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no proxy address");
  return {
    endpoint: `127.0.0.1:${address.port}`,
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

test("the anchor is the keepalive's send time: with 150 ms added each way, a fresh anchor is already older than the keepalive's and the confirming read's round trips (4 x 150 ms)", async () => {
  const delayMs = 150;
  const proxies = await Promise.all(cluster.clientEndpoints.map((e) => delayProxy(e, delayMs)));
  try {
    const core = await createLeaseCore();
    const a = createEtcdLeaseNode({ core, id: "a", prefix: "/g2", endpoints: proxies.map((p) => p.endpoint), ttlS: 4, etcdElectionTimeoutMs: 300, renewIntervalMs: 300, requestTimeoutMs: 10_000 });
    nodes.push(a);
    await a.start();
    await a.waitForLeader(20_000);
    // Sampled right when an anchor changes (the loop yields after every I/O callback): a send-time
    // anchor is >= 4 x 150 ms old by then, a receive-time one only the read's 2 x 150 ms.
    const agesNs: bigint[] = [];
    let last = a.lastQuorumAck();
    const deadline = performance.now() + 20_000;
    while (agesNs.length < 3 && performance.now() < deadline) {
      await new Promise((r) => setImmediate(r));
      const ack = a.lastQuorumAck();
      if (ack !== 0n && ack !== last) {
        agesNs.push(core.now() - ack);
        last = ack;
      }
    }
    expect(agesNs.length).toBe(3);
    for (const ageNs of agesNs) expect(ageNs).toBeGreaterThanOrEqual(BigInt(3 * delayMs) * 1_000_000n);
    await a.close();
  } finally {
    for (const p of proxies) p.close();
  }
}, 60_000);
