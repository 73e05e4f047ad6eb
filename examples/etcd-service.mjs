// A minimal service on lease-core/etcd (docs/etcd.md): one instance campaigns for leadership
// through etcd, writes through a fenced transaction, then answers a read from its local state
// under the lease, without asking etcd, and shuts down cleanly (resigns, revokes its etcd lease).
// A long-running service keeps the node open instead: the node renews its lease itself, and a
// second instance (another INSTANCE_ID) waits as follower until the leader key is gone.
//
// Needs a running etcd (3.4+) and its client endpoints:
//   ETCD_ENDPOINTS=127.0.0.1:2379 node examples/etcd-service.mjs
// ETCD_ELECTION_TIMEOUT_MS must match the cluster's --election-timeout (etcd's default 1000):
// it is part of the lease's safety margin. CI (test/examples.test.ts) starts a one-member etcd.
// It asserts what it prints and exits non-zero otherwise.
import assert from "node:assert/strict";
import { createLeaseCore } from "lease-core";
import { createEtcdLeaseNode } from "lease-core/etcd";

const MS = 1_000_000n;
const endpoints = (process.env.ETCD_ENDPOINTS ?? "").split(",").map((e) => e.trim()).filter(Boolean);
if (endpoints.length === 0) {
  console.error("set ETCD_ENDPOINTS to etcd's client endpoints, e.g. ETCD_ENDPOINTS=127.0.0.1:2379");
  process.exit(2);
}

const core = await createLeaseCore();
const node = createEtcdLeaseNode({
  core,
  endpoints,
  prefix: "/examples/kv",
  id: process.env.INSTANCE_ID ?? "kv-0",
  ttlS: 2, // the etcd lease TTL; the lease-core lease is shorter by the margin
  etcdElectionTimeoutMs: Number(process.env.ETCD_ELECTION_TIMEOUT_MS ?? 1000),
  onEvent: (event) => console.log(`event: ${event.reason}${event.detail ? ` (${event.detail})` : ""}`),
});

try {
  await node.start(); // grants the etcd lease, loads the data, starts campaigning
  await node.waitForLeader(10_000);
  const status = node.status();
  console.log(`${node.id} leads (epoch ${status.leaderCreateRevision}); lease = TTL ${status.ttlNs / MS} ms - margin ${status.marginNs / MS} ms`);

  // A write: a keepalive, then a txn fenced on our leader key; it also renews the lease.
  const { revision } = await node.write("greeting", "hello");
  console.log(`write greeting=hello at revision ${revision}`);

  // A read under the lease: from local state, no etcd round trip, checked again after the read.
  const read = await node.read("greeting");
  console.log(`read greeting=${read.value}: served ${read.served} (${read.reason}) at revision ${read.revision}`);
  assert.equal(read.value, "hello");
  assert.equal(read.served, "local");
  assert.ok(read.revision >= revision);
} finally {
  await node.close(); // resigns so a successor need not wait out the TTL, revokes, disconnects
}
assert.equal(node.state(), "shutdown");
console.log("etcd-service: ok");
