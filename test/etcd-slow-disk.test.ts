// The cluster harness's slow-disk fault (EtcdCluster.slowDisk, demo/cluster.ts) on a real
// 3-member etcd: strace holds the leader's WAL fdatasync, so its raft loop stalls (no heartbeats:
// the others elect a new leader) while its process, gRPC server and lessor run on (it still
// calls itself leader and still answers keepalives: the stuck leader of etcd-io/etcd #15247).
// heal() detaches strace and the member rejoins as a follower.
import { afterEach, describe, expect, test } from "vitest";
import { Etcd3, LeaseClient, MaintenanceClient } from "etcd3";
import { canSlowDisk, startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { sleep } from "./etcd/support.js";

let cluster: EtcdCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

function clientOf(c: EtcdCluster, i: number): Etcd3 {
  return new Etcd3({ hosts: `127.0.0.1:${c.members[i]!.clientPort}` });
}

/** One member's own view (a fresh client each time: a call stuck on the member must not hold
 *  this one up). */
async function statusOf(c: EtcdCluster, i: number) {
  const client = clientOf(c, i);
  try {
    const pool = (client as unknown as { pool: ConstructorParameters<typeof MaintenanceClient>[0] }).pool;
    return await new MaintenanceClient(pool).status({ deadline: new Date(Date.now() + 1000) });
  } finally {
    client.close();
  }
}

describe("EtcdCluster.slowDisk", () => {
  test("strace and root are here (scripts/setup.sh installs strace): a missing one fails, never skips", () => {
    expect(canSlowDisk()).toBe(true);
  });

  test("a slow WAL stalls the leader's raft (the others elect a new one) while it still answers as leader; heal() lets it rejoin", async () => {
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const a = await cluster.waitForLeader();
    const stuck = clientOf(cluster, a);
    try {
      const before = await statusOf(cluster, a);
      const leaseId = await stuck.lease(5, { autoKeepAlive: false }).grant();
      const heal = await cluster.slowDisk(a, 6000, "wal");
      // A put through the stuck leader: its WAL sync is held, so it cannot commit there soon.
      let putDone = false;
      const put = stuck.put("slow").value("1").exec().then(() => (putDone = true), () => (putDone = true));
      // The others stop hearing heartbeats and elect a new leader in a higher term.
      const b = await cluster.waitForLeader(5000, a);
      expect(b).not.toBe(a);
      // The stuck member still calls itself leader, in the old term: its raft loop never saw
      // the election (it is blocked in fdatasync), its gRPC server still answers.
      const during = await statusOf(cluster, a);
      expect(during.leader).toBe(before.header.member_id);
      expect(during.raftTerm).toBe(before.raftTerm);
      const other = await statusOf(cluster, b);
      expect(BigInt(other.raftTerm)).toBeGreaterThan(BigInt(before.raftTerm));
      // ...and its lessor renews a lease on a keepalive, with no quorum behind it.
      const pool = (stuck as unknown as { pool: ConstructorParameters<typeof LeaseClient>[0] }).pool;
      const ka = await new LeaseClient(pool).leaseKeepAlive();
      const answer = await new Promise<{ TTL: string; header: { raft_term: string } }>((resolve, reject) => {
        ka.on("data", resolve);
        ka.on("error", reject);
        ka.write({ ID: leaseId });
      });
      ka.end();
      expect(BigInt(answer.TTL)).toBeGreaterThan(0n);
      expect(answer.header.raft_term).toBe(before.raftTerm);
      expect(putDone).toBe(false);
      await heal();
      await put;
      // Healed: it catches up and follows the new leader.
      const deadline = performance.now() + 8000;
      let after = await statusOf(cluster, a);
      while (after.leader === before.header.member_id && performance.now() < deadline) {
        await sleep(100);
        after = await statusOf(cluster, a);
      }
      expect(after.leader).not.toBe(before.header.member_id);
      await stuck.put("after-heal").value("1").exec();
    } finally {
      stuck.close();
    }
  }, 60_000);

  test("a slow disk (every sync) stalls a leader under writes too: the others elect a new one", async () => {
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const a = await cluster.waitForLeader();
    const stuck = clientOf(cluster, a);
    try {
      const heal = await cluster.slowDisk(a, 4000);
      const put = stuck.put("slow").value("1").exec().catch(() => undefined);
      const b = await cluster.waitForLeader(5000, a);
      expect(b).not.toBe(a);
      await heal();
      await put;
    } finally {
      stuck.close();
    }
  }, 60_000);

  test("bad arguments are refused by name", async () => {
    cluster = await startEtcdCluster({ size: 1 });
    await expect(cluster.slowDisk(0, 0)).rejects.toBeInstanceOf(RangeError);
    await expect(cluster.slowDisk(0, Number.NaN)).rejects.toBeInstanceOf(RangeError);
    await expect(cluster.slowDisk(7, 100)).rejects.toBeInstanceOf(RangeError);
    await expect(cluster.slowDisk(0, 100, "disk" as never)).rejects.toBeInstanceOf(RangeError);
    cluster.kill(0);
    await expect(cluster.slowDisk(0, 100)).rejects.toThrow(/not running/);
  }, 30_000);
});
