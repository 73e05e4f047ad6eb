// Unknown-outcome writes on the group engine (lease-core/etcd createEtcdGroupNode, docs/etcd.md
// "Many groups on one lease" rule 5, §4), as the single-leader node's
// (test/etcd-attack-round3-read-after-unknown): a node reaching a real 3-member etcd through
// one proxy per member, the member carrying its watch answering it 4 s late (> 5 ×
// requestTimeoutMs, so a write's wait for its own revision gives up). A write etcd committed
// and holds, reported as ERR_LEASE_ETCD_UNKNOWN_OUTCOME ("read before retrying"), is then read
// on the same node: the read must never return the value from before it (the group's lease,
// still renewed through the fast members, must not serve the lagging copy).
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { dataWatchProxy } from "./etcd/support.js";

let cluster: EtcdCluster;
let admin: Etcd3;
let proxies: FaultProxy[] = [];
let node: EtcdGroupNode | undefined;

beforeAll(async () => {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  admin = new Etcd3({ hosts: cluster.clientEndpoints });
  proxies = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
}, 30_000);
afterAll(async () => {
  await node?.close();
  admin?.close();
  await Promise.all(proxies.map((p) => p.close()));
  await cluster?.stop();
});

describe("group node: the read after an unknown-outcome write", () => {
  test("a write etcd holds but the node reported as unknown is never read back as the value before it", async () => {
    const prefix = `/gu-${Math.random().toString(36).slice(2)}`;
    const core = await createLeaseCore();
    const n = createEtcdGroupNode({ core, id: "w", prefix, groupCount: 4, endpoints: proxies.map((p) => `127.0.0.1:${p.port}`), ttlS: 2, etcdElectionTimeoutMs: 300, requestTimeoutMs: 300 });
    node = n;
    await n.start();
    await n.waitForAssignment(20_000);
    const slow = await dataWatchProxy(n as never, admin, prefix, proxies);
    proxies[slow]!.set("down", { kind: "delay", delayMs: 4000 });
    const outcomes: { key: string; code: string; answered: boolean; held: boolean; read?: string | null; served?: string }[] = [];
    for (let i = 0; i < 12 && !outcomes.some((o) => o.served !== undefined); i++) {
      const key = `k${i}`;
      const writesBefore = n.counters.writes!;
      let code = "ok";
      try {
        await n.write(key, `v${i}`);
      } catch (err) {
        code = String((err as { code?: unknown }).code ?? (err as Error).name);
      }
      const answered = n.counters.writes! > writesBefore;
      const held = (await admin.get(`${prefix}/d/${key}`).string()) === `v${i}`;
      const o: (typeof outcomes)[number] = { key, code, answered, held };
      if (code === "ERR_LEASE_ETCD_UNKNOWN_OUTCOME" && held && n.ledGroups().includes(n.groupOf(key))) {
        try {
          const r = await n.read(key);
          o.read = r.value;
          o.served = r.served;
        } catch (err) {
          o.served = String((err as { code?: unknown }).code ?? (err as Error).name);
        }
      }
      outcomes.push(o);
    }
    proxies[slow]!.heal();
    const readAfter = outcomes.filter((o) => o.served !== undefined);
    expect(readAfter.length, `no committed write was reported unknown and read: ${JSON.stringify(outcomes)}`).toBeGreaterThan(0);
    for (const o of readAfter) {
      // The value etcd holds, or an error; never the lagging copy's (null: before the write).
      if (o.served === "local" || o.served === "etcd") expect(o.read, JSON.stringify(outcomes)).toBe(`v${o.key.slice(1)}`);
    }
  }, 120_000);
});
