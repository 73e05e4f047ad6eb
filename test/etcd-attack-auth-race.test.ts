// Attack on lease-core/etcd's classification of a refused write (docs/etcd.md, the table of
// codes: ERR_LEASE_ETCD_AUTH means "nothing applied"): the write permission of the node's etcd
// user is taken away and given back again and again while the node writes, so that auth store
// changes land between a write's token check, its raft proposal, its apply and its answer
// (etcd 3.4 checks the token before proposing and the permission and auth revision when
// applying: server/etcdserver/v3_server.go processInternalRaftRequestOnce, apply_auth.go). A
// write reported as ERR_LEASE_ETCD_AUTH must have applied nothing (a client treats it as known
// failed and may write something else); a write that resolved must have applied. Every write
// carries a value of its own, so etcd's final state tells which ones applied.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Etcd3, Range } from "etcd3";
import { createLeaseCore } from "lease-core";
import { createEtcdLeaseNode, type EtcdLeaseNode } from "lease-core/etcd";
import { startTestEtcd, type TestEtcd } from "./etcd/tls-etcd.js";

describe("etcd attack: a write refused for permission applied nothing", () => {
  let etcd: TestEtcd | undefined;
  const PASSWORD = "s3cret-auth-race";

  beforeAll(async () => {
    etcd = await startTestEtcd({ users: { root: PASSWORD } });
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  test("permission revoked and granted while writing: every ERR_LEASE_ETCD_AUTH write is absent from etcd, every resolved one present", async () => {
    const { endpoint, pem } = etcd!;
    const tls = { ca: pem["ca.crt"]!, cert: pem["client.crt"]!, key: pem["client.key"]! };
    const admin = new Etcd3({
      hosts: [endpoint],
      credentials: { rootCertificate: Buffer.from(tls.ca), certChain: Buffer.from(tls.cert), privateKey: Buffer.from(tls.key) },
      auth: { username: "root", password: PASSWORD },
    });
    let n: EtcdLeaseNode | undefined;
    let toggling = true;
    try {
      await admin.role("racer").create();
      await admin.role("racer").grant([
        { permission: "Readwrite", key: "/race/leader" },
        { permission: "Readwrite", key: "/race/resigned" },
        { permission: "Readwrite", range: Range.prefix("/race/d/") },
      ]);
      await admin.user("racer").create("racer-pw");
      await admin.user("racer").addRole("racer");
      const core = await createLeaseCore();
      n = createEtcdLeaseNode({ core, id: "racer", prefix: "/race", endpoints: [endpoint], ttlS: 2, etcdElectionTimeoutMs: 300, requestTimeoutMs: 2000, tls, auth: { username: "racer", password: "racer-pw" } });
      await n.start();
      await n.waitForLeader();
      await n.write("warm", "0");

      // The data prefix's permission flips between Readwrite and Read (each flip bumps etcd's
      // auth revision; the leader and resign keys stay writable, so the node keeps leading).
      const toggler = (async () => {
        let write = false;
        while (toggling) {
          await admin.role("racer").grant({ permission: write ? "Readwrite" : "Read", range: Range.prefix("/race/d/") });
          write = !write;
        }
      })();

      const outcomes: { key: string; code: string }[] = [];
      for (let i = 0; i < 150; i++) {
        const key = `k${i}`;
        let code = "ok";
        try {
          if (n.state() !== "leader") await n.waitForLeader(10_000);
          await n.write(key, `v${i}`);
        } catch (err) {
          code = String((err as { code?: unknown }).code ?? (err as Error).name);
        }
        outcomes.push({ key, code });
      }
      toggling = false;
      await toggler;
      await admin.role("racer").grant({ permission: "Readwrite", range: Range.prefix("/race/d/") });

      const codes: Record<string, number> = {};
      for (const o of outcomes) codes[o.code] = (codes[o.code] ?? 0) + 1;
      // The precondition: both outcomes happened (the race was run, not one side of it).
      expect(codes["ok"] ?? 0, JSON.stringify(codes)).toBeGreaterThan(0);
      expect(codes["ERR_LEASE_ETCD_AUTH"] ?? 0, JSON.stringify(codes)).toBeGreaterThan(0);
      for (const o of outcomes) {
        const got = await admin.get(`/race/d/${o.key}`).string();
        if (o.code === "ERR_LEASE_ETCD_AUTH") expect(got, `${o.key} was reported ERR_LEASE_ETCD_AUTH (${JSON.stringify(codes)})`).toBeNull();
        if (o.code === "ok") expect(got, `${o.key} resolved`).toBe(`v${o.key.slice(1)}`);
      }
    } finally {
      toggling = false;
      await n?.close();
      admin.close();
    }
  }, 90_000);
});
