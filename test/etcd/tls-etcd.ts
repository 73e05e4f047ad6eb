// A one-member etcd on loopback for the tests that need one: plain, or with TLS (a CA, a server
// certificate for 127.0.0.1 and a client certificate, all made here with openssl) and
// password authentication enabled as etcdctl would (root user with the root role, then
// `auth enable`). Random ports, a tmpfs data dir, SIGKILL and removal on stop.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";

export async function freePort(exclude: number[] = []): Promise<number> {
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

export interface TestEtcd {
  /** The client endpoint: `127.0.0.1:<port>` (plain) or `https://127.0.0.1:<port>` (TLS). */
  endpoint: string;
  /** The directory holding the PEM files (ca.crt, client.crt, client.key) and the data. */
  dir: string;
  /** PEM contents by file name (TLS only). */
  pem: Record<string, string>;
  stop(): Promise<void>;
}

/** openssl: a CA, a server certificate for 127.0.0.1, a client certificate (CN root). */
function makeCertificates(dir: string): Record<string, string> {
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
  const pem: Record<string, string> = {};
  for (const f of ["ca.crt", "client.crt", "client.key"]) pem[f] = readFileSync(join(dir, f), "utf8");
  return pem;
}

/**
 * Starts the member. With `users`, it runs with TLS and client-certificate auth, and each user
 * (the first must be root) is created with the root role before `auth enable`.
 */
export async function startTestEtcd(options: { users?: Record<string, string>; electionTimeoutMs?: number } = {}): Promise<TestEtcd> {
  const bin = process.env["ETCD_BIN"] ?? "/usr/bin/etcd";
  if (!existsSync(bin)) throw new Error(`etcd missing at ${bin}: apt-get install -y etcd-server (or set ETCD_BIN)`);
  const tls = options.users !== undefined;
  const dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "lease-core-test-etcd-"));
  const pem = tls ? makeCertificates(dir) : {};
  const clientPort = await freePort();
  const peerPort = await freePort([clientPort]);
  const client = `${tls ? "https" : "http"}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const etcd: ChildProcess = spawn(bin, [
    "--name", "m0", "--data-dir", join(dir, "data"),
    "--listen-client-urls", client, "--advertise-client-urls", client,
    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `m0=${peer}`, "--initial-cluster-state", "new",
    ...(tls ? ["--cert-file", join(dir, "server.crt"), "--key-file", join(dir, "server.key"), "--client-cert-auth", "--trusted-ca-file", join(dir, "ca.crt")] : []),
    "--heartbeat-interval", "50", "--election-timeout", String(options.electionTimeoutMs ?? 300),
    "--logger", "zap", "--log-outputs", "/dev/null",
  ], { stdio: "ignore" });
  const stop = async () => {
    if (etcd.exitCode === null && etcd.signalCode === null) {
      const gone = new Promise((r) => etcd.once("exit", r));
      etcd.kill("SIGKILL");
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const admin = new Etcd3({
    hosts: [client],
    ...(tls ? { credentials: { rootCertificate: Buffer.from(pem["ca.crt"]!), certChain: Buffer.from(pem["client.crt"]!), privateKey: Buffer.from(pem["client.key"]!) } } : {}),
  });
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (etcd.exitCode !== null) throw new Error(`etcd exited early (${etcd.exitCode})`);
      try {
        await admin.get("probe").string();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`etcd not ready after 15 s: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (tls) {
      await admin.role("root").create().catch(() => undefined); // etcd may have it already
      for (const [name, password] of Object.entries(options.users!)) {
        await admin.user(name).create(password);
        await admin.user(name).addRole("root");
      }
      await admin.auth.authEnable();
    }
  } catch (err) {
    admin.close();
    await stop();
    throw err;
  }
  admin.close();
  return { endpoint: tls ? client : `127.0.0.1:${clientPort}`, dir, pem, stop };
}
