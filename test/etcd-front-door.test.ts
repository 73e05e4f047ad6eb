// lease-core/etcd as a new user meets it: options checked at creation (each refusal typed and
// named), an unreachable etcd as an EtcdNodeError with a code, and a real one-member etcd
// started here with TLS (server and client certificates made by this test with openssl) and
// password authentication: the node elects, writes and reads through both, and wrong
// credentials are refused with ERR_LEASE_ETCD_AUTH. A missing etcd or openssl is a failure.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLeaseCore, type LeaseCore } from "lease-core";
import { createEtcdLeaseNode, EtcdNodeError, type EtcdLeaseNode, type EtcdLeaseNodeOptions } from "lease-core/etcd";

let core: LeaseCore;
const nodes: EtcdLeaseNode[] = [];

async function freePort(exclude: number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000); // never etcd's 2379/2380
    if (exclude.includes(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port");
}

function make(options: Partial<EtcdLeaseNodeOptions> & Record<string, unknown>): EtcdLeaseNode {
  const n = createEtcdLeaseNode({ core, id: "a", prefix: "/front", endpoints: ["127.0.0.1:1"], etcdElectionTimeoutMs: 300, ...options } as EtcdLeaseNodeOptions);
  nodes.push(n);
  return n;
}

beforeAll(async () => {
  core = await createLeaseCore();
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
});

describe("options are checked at creation", () => {
  test.each([
    ["an unknown (misspelt) option", { ttl: 2 }, "InvalidOptionError", /option ttl must be one of the known options/],
    ["a TTL that leaves no lease after the margin", { ttlS: 1, etcdElectionTimeoutMs: 1000 }, "EtcdNodeError", /ttlS 1 s leaves no lease.*use ttlS 2 or more/],
    ["an endpoint that is not host:port", { endpoints: ["etcd"] }, "InvalidOptionError", /endpoints\[\] must be "host:port"/],
    ["an http:// endpoint with tls", { endpoints: ["http://127.0.0.1:2379"], tls: { ca: "x" } }, "InvalidOptionError", /https:\/\/ \(or no scheme\) with options.tls/],
    ["a tls without its CA", { tls: {} }, "InvalidOptionError", /tls.ca must be the CA certificate/],
    ["a client certificate without its key", { tls: { ca: "x", cert: "y" } }, "InvalidOptionError", /tls.key must be given together with tls.cert/],
    ["auth without a username", { auth: { password: "p" } }, "InvalidOptionError", /auth.username must be a non-empty string/],
    ["a renew interval of 0", { renewIntervalMs: 0 }, "InvalidOptionError", /renewIntervalMs must be an integer of ms >= 1/],
    ["a NaN request timeout", { requestTimeoutMs: Number.NaN }, "InvalidOptionError", /requestTimeoutMs must be an integer of ms >= 1/],
    ["an onEvent that is not a function", { onEvent: "log" }, "InvalidOptionError", /onEvent must be a function/],
  ])("%s", (_what, options, name, message) => {
    let thrown: unknown;
    try {
      make(options as Partial<EtcdLeaseNodeOptions>);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ name });
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as { code: string }).code).toMatch(/^ERR_LEASE_/);
  });
});

describe("an etcd that does not answer", () => {
  test("start() rejects with EtcdNodeError ERR_LEASE_ETCD_UNAVAILABLE naming the endpoint; the node can be closed", async () => {
    const port = await freePort(); // nothing listens there
    const n = make({ endpoints: [`127.0.0.1:${port}`], requestTimeoutMs: 2000 });
    const err = await n.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdNodeError);
    expect(err).toMatchObject({ name: "EtcdNodeError", code: "ERR_LEASE_ETCD_UNAVAILABLE" });
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).toContain("check options.endpoints");
    expect((err as { cause?: unknown }).cause).toBeDefined();
    await n.close();
  }, 15_000);
});

describe("etcd with TLS (client certificates) and password authentication", () => {
  let dir = "";
  let etcd: ChildProcess | undefined;
  let endpoint = "";
  const pem: Record<string, string> = {};
  const PASSWORD = "s3cret-front-door";

  /** openssl req/x509: a CA, a server certificate for 127.0.0.1, a client certificate (CN root). */
  function makeCertificates(): void {
    const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=lease-core test CA", "-keyout", "ca.key", "-out", "ca.crt");
    for (const [name, cn, ext] of [
      ["server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"],
      ["client", "root", "extendedKeyUsage=clientAuth\n"],
    ] as const) {
      writeFileSync(join(dir, `${name}.ext`), ext);
      ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
      ssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.crt`);
    }
    for (const f of ["ca.crt", "client.crt", "client.key"]) pem[f] = readFileSync(join(dir, f), "utf8");
  }

  beforeAll(async () => {
    const bin = process.env["ETCD_BIN"] ?? "/usr/bin/etcd";
    if (!existsSync(bin)) throw new Error(`etcd missing at ${bin}: apt-get install -y etcd-server (or set ETCD_BIN)`);
    dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "lease-core-etcd-tls-"));
    makeCertificates();
    const clientPort = await freePort();
    const peerPort = await freePort([clientPort]);
    const client = `https://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    etcd = spawn(bin, [
      "--name", "m0", "--data-dir", join(dir, "data"),
      "--listen-client-urls", client, "--advertise-client-urls", client,
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", `m0=${peer}`, "--initial-cluster-state", "new",
      "--cert-file", join(dir, "server.crt"), "--key-file", join(dir, "server.key"),
      "--client-cert-auth", "--trusted-ca-file", join(dir, "ca.crt"),
      "--heartbeat-interval", "50", "--election-timeout", "300",
      "--logger", "zap", "--log-outputs", "/dev/null",
    ], { stdio: "ignore" });
    endpoint = client;
    // Enable authentication as etcdctl would: a root user with the root role, then auth enable.
    const admin = new Etcd3({
      hosts: [client],
      credentials: { rootCertificate: Buffer.from(pem["ca.crt"]!), certChain: Buffer.from(pem["client.crt"]!), privateKey: Buffer.from(pem["client.key"]!) },
    });
    try {
      const deadline = Date.now() + 15_000;
      for (;;) {
        if (etcd.exitCode !== null) throw new Error(`etcd exited early (${etcd.exitCode})`);
        try {
          await admin.get("probe").string();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`etcd over TLS not ready after 15 s: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await admin.user("root").create(PASSWORD);
      await admin.role("root").create().catch(() => undefined); // etcd 3.4 may have it already
      await admin.user("root").addRole("root");
      await admin.auth.authEnable();
    } finally {
      admin.close();
    }
  }, 30_000);

  afterAll(async () => {
    if (etcd && etcd.exitCode === null && etcd.signalCode === null) {
      const gone = new Promise((r) => etcd!.once("exit", r));
      etcd.kill("SIGKILL");
      await gone;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("with the CA, a client certificate and the password: elects, writes, reads under the lease", async () => {
    const n = make({
      endpoints: [endpoint], ttlS: 2, requestTimeoutMs: 2000,
      tls: { ca: pem["ca.crt"]!, cert: pem["client.crt"]!, key: Buffer.from(pem["client.key"]!) },
      auth: { username: "root", password: PASSWORD },
    });
    await n.start();
    await n.waitForLeader();
    expect((await n.write("k", "v")).revision).toBeGreaterThan(0n);
    const read = await n.read("k");
    expect(read.value).toBe("v");
    expect(["local", "etcd"]).toContain(read.served);
    await n.close();
  }, 20_000);

  test("a wrong password: start() rejects with ERR_LEASE_ETCD_AUTH", async () => {
    const n = make({
      endpoints: [endpoint], ttlS: 2, requestTimeoutMs: 2000,
      tls: { ca: pem["ca.crt"]!, cert: pem["client.crt"]!, key: pem["client.key"]! },
      auth: { username: "root", password: "wrong" },
    });
    const err = await n.start().then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ name: "EtcdNodeError", code: "ERR_LEASE_ETCD_AUTH" });
    expect((err as Error).message).toContain("check options.auth");
    await n.close();
  }, 15_000);

  test("no client certificate where etcd requires one: start() rejects with an EtcdNodeError code", async () => {
    const n = make({ endpoints: [endpoint], ttlS: 2, requestTimeoutMs: 2000, tls: { ca: pem["ca.crt"]! }, auth: { username: "root", password: PASSWORD } });
    const err = await n.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdNodeError);
    expect((err as { code: string }).code).toMatch(/^ERR_LEASE_ETCD_(UNAVAILABLE|AUTH)$/);
    await n.close();
  }, 15_000);
});
