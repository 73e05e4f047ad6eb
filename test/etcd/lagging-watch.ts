// The set-up the unknown-outcome tests share (test/etcd-attack-write-timeout,
// etcd-attack-round3-read-after-unknown, etcd-attack-round4-txn-timeout): a real 3-member etcd,
// one lease node "w" reaching it through one FaultProxy per member (requestTimeoutMs 300, so a
// write's wait for its own revision gives up after 5 × 300 ms), leading, and the member that
// carries its data watch answering it 4 s late while the other two answer at once.
import { Etcd3 } from "etcd3";
import { createLeaseCore } from "lease-core";
import { createEtcdLeaseNode, type EtcdLeaseNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../../demo/cluster.js";
import { FaultProxy } from "../../demo/proxy.js";
import { dataWatchProxy } from "./support.js";

export interface LaggingWatch {
  cluster: EtcdCluster;
  proxies: FaultProxy[];
  /** A client straight to etcd (no proxy): what etcd holds. */
  admin: Etcd3;
  node: EtcdLeaseNode;
  prefix: string;
  /** Which proxy carries the node's data watch (the delayed one). */
  slow: number;
  /** Stops everything above; idempotent enough for an afterEach. */
  close(): Promise<void>;
}

export async function startLaggingWatch(): Promise<LaggingWatch> {
  const cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  const proxies = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
  const admin = new Etcd3({ hosts: cluster.clientEndpoints });
  const prefix = `/attack-wt-${Math.random().toString(36).slice(2)}`;
  const core = await createLeaseCore();
  const node = createEtcdLeaseNode({ core, id: "w", prefix, endpoints: proxies.map((p) => `127.0.0.1:${p.port}`), ttlS: 2, etcdElectionTimeoutMs: 300, requestTimeoutMs: 300 });
  const close = async () => {
    await node.close().catch(() => undefined);
    admin.close();
    await Promise.all(proxies.map((p) => p.close()));
    await cluster.stop();
  };
  let slow: number;
  try {
    await node.start();
    await node.waitForLeader(15_000);
    await node.write("warm", "0");
    slow = await dataWatchProxy(node, admin, prefix, proxies);
    // Only the data watch's member is slow (its answers to the node 4 s late: > 5 × 300 ms).
    proxies[slow]!.set("down", { kind: "delay", delayMs: 4000 });
  } catch (err) {
    await close();
    throw err;
  }
  return { cluster, proxies, admin, node, prefix, slow, close };
}
