// lease-core/etcd as a new user meets it: options checked at creation (each refusal typed and
// named), an unreachable etcd as an EtcdNodeError with a code, and a real one-member etcd
// started here with TLS (server and client certificates made by this test with openssl) and
// password authentication: the node elects, writes and reads through both, and wrong
// credentials are refused with ERR_LEASE_ETCD_AUTH. A missing etcd or openssl is a failure.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLeaseCore, type LeaseCore } from "lease-core";
import { createEtcdLeaseNode, EtcdNodeError, type EtcdLeaseNode, type EtcdLeaseNodeOptions } from "lease-core/etcd";
import { freePort, startTestEtcd, type TestEtcd } from "./etcd/tls-etcd.js";
import { Etcd3, Range } from "etcd3";

let core: LeaseCore;
const nodes: EtcdLeaseNode[] = [];

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

describe("the drift bound is the core's own rule (one rule: the engine asks the core)", () => {
  // The core's verdict on a lease configuration with this drift (the rest valid).
  const coreVerdict = (driftPpmMax: bigint): unknown => {
    try {
      return core.leaseDurationFor({ electionTimeoutNs: 2_000_000_000n, tickNs: 1_000_000n, safetyMarginNs: 1_500_000_000n, driftPpmMax, checkQuorum: true });
    } catch (err) {
      return err;
    }
  };
  test.each([-1, 1_000_001, 5_000_000])("a drift of %d ppm the core refuses is refused with the core's error", (drift) => {
    const expected = coreVerdict(BigInt(drift));
    expect(expected).toBeInstanceOf(Error); // the core does refuse it
    let thrown: unknown;
    try {
      make({ driftPpmMax: drift, ttlS: 2 });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ name: (expected as Error).name, code: (expected as { code: string }).code });
  });
  test("a drift the core accepts (above the engine's old 100000 ppm) is accepted, with its margin (docs/etcd.md §3)", () => {
    expect(typeof coreVerdict(200_000n)).toBe("bigint");
    // 300 ms + ceil(2 · 2 s · 200000 ppm) = 800 ms + 1 ms leaves 899 ms of a 2 s TTL.
    expect(() => make({ driftPpmMax: 200_000, ttlS: 2 })).not.toThrow();
    // 500000 ppm: the core accepts the drift, but twice it over one TTL is the whole TTL, so no
    // TTL leaves a lease after the margin: refused by the TTL rule, not the drift rule.
    expect(typeof coreVerdict(500_000n)).toBe("bigint");
    expect(() => make({ driftPpmMax: 500_000, ttlS: 10 })).toThrow(expect.objectContaining({ name: "EtcdNodeError", code: "ERR_LEASE_ETCD_TTL_TOO_SHORT" }));
  });
  test("a drift that is not an integer is refused by name", () => {
    for (const drift of [1.5, Number.NaN, "500"]) {
      expect(() => make({ driftPpmMax: drift as number })).toThrow(expect.objectContaining({ name: "InvalidOptionError", message: expect.stringMatching(/option driftPpmMax must be an integer/) }));
    }
  });
});

describe("the documented start", () => {
  let etcd: TestEtcd | undefined;
  beforeAll(async () => {
    etcd = await startTestEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  test("a write right after start(), before the election, says to await waitForLeader()", async () => {
    const n = make({ endpoints: [etcd!.endpoint], ttlS: 2 });
    await n.start();
    // start() resolves before the campaign txn can have answered (it is sent after start's own calls).
    expect(n.state()).toBe("candidate");
    const err = await n.write("k", "v").then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ name: "NotLeaderError", code: "ERR_LEASE_NOT_LEADER" });
    expect((err as Error).message).toContain("await node.waitForLeader()");
    await n.waitForLeader();
    expect((await n.write("k", "v")).revision).toBeGreaterThan(0n);
    await n.close();
  }, 20_000);

  test("a key or value etcd cannot store as given is refused by name, before anything is sent (attack groups-lone-surrogate)", async () => {
    const n = make({ endpoints: [etcd!.endpoint], ttlS: 2, prefix: "/front-text" });
    await n.start();
    await n.waitForLeader();
    const writesBefore = n.counters.writes!;
    // A lone surrogate has no UTF-8 form: stored as U+FFFD, the write would be acknowledged under a
    // key no read of the same string finds (or with a value never written).
    for (const [call, option] of [
      [() => n.write("k\ud800", "v"), "key"],
      [() => n.write("k", "v\udc00"), "value"],
      [() => n.write("", "v"), "key"],
      [() => n.write("k", 42 as unknown as string), "value"],
      [() => n.read("k\ud800"), "key"],
      [() => n.read(7 as unknown as string), "key"],
      [() => n.readLinearizable("\udfff"), "key"],
    ] as const) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ name: "InvalidOptionError", code: "ERR_LEASE_INVALID_OPTION", message: expect.stringContaining(`option ${option} must be`) });
    }
    expect(n.counters.writes).toBe(writesBefore);
    // A well-formed pair (an emoji) is one code point: stored and read back as written.
    await n.write("k\u{1F600}", "v\u{1F600}");
    expect((await n.read("k\u{1F600}")).value).toBe("v\u{1F600}");
    await n.close();
  }, 20_000);

  test("etcd gone after the election: a write and a linearizable read reject with EtcdNodeErrors that carry codes", async () => {
    const n = make({ endpoints: [etcd!.endpoint], ttlS: 2, prefix: "/front-gone", requestTimeoutMs: 500 });
    await n.start();
    await n.waitForLeader();
    await etcd!.stop(); // SIGKILL: connections refused from now on
    for (const call of [() => n.write("k", "v"), () => n.readLinearizable("k")]) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(EtcdNodeError);
      expect((err as { code: string }).code).toMatch(/^ERR_LEASE_ETCD_(UNAVAILABLE|TIMEOUT|STREAM|UNKNOWN_OUTCOME)$/);
    }
    await n.close();
  }, 20_000);
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
  let etcd: TestEtcd | undefined;
  let endpoint = "";
  let pem: Record<string, string> = {};
  const PASSWORD = "s3cret-front-door";

  beforeAll(async () => {
    etcd = await startTestEtcd({ users: { root: PASSWORD } });
    ({ endpoint, pem } = etcd);
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
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
    // The revoke guard read every member's version over the same TLS and credentials: one
    // member, by host:port, with a real version (not "unknown", which keeps the hold on a
    // cluster that has the fix).
    const hostPort = endpoint.replace(/^https:\/\//, "");
    expect(n.status().etcdVersions).toEqual({ [hostPort]: expect.stringMatching(/^3\.\d+\.\d+/) });
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

  test("one classification for one refusal: a permission etcd denies is ERR_LEASE_ETCD_AUTH from start() and from write() alike (a refused write applied nothing: its outcome is known)", async () => {
    // A user that may campaign on /lim (its leader and resign keys) and read its data, but not
    // write the data; and that may not read /nolim at all.
    const admin = new Etcd3({
      hosts: [endpoint],
      credentials: { rootCertificate: Buffer.from(pem["ca.crt"]!), certChain: Buffer.from(pem["client.crt"]!), privateKey: Buffer.from(pem["client.key"]!) },
      auth: { username: "root", password: PASSWORD },
    });
    try {
      await admin.role("limited").create();
      await admin.role("limited").grant([
        { permission: "Readwrite", key: "/lim/leader" },
        { permission: "Readwrite", key: "/lim/resigned" },
        { permission: "Read", range: Range.prefix("/lim/d/") },
      ]);
      await admin.user("limited").create("limited-pw");
      await admin.user("limited").addRole("limited");
      const as = (prefix: string) =>
        make({
          endpoints: [endpoint], ttlS: 2, requestTimeoutMs: 2000, prefix,
          tls: { ca: pem["ca.crt"]!, cert: pem["client.crt"]!, key: pem["client.key"]! },
          auth: { username: "limited", password: "limited-pw" },
        });
      const reader = as("/nolim");
      const startErr = await reader.start().then(() => undefined, (e: unknown) => e);
      expect(startErr).toMatchObject({ name: "EtcdNodeError", code: "ERR_LEASE_ETCD_AUTH" });
      await reader.close();

      const writer = as("/lim");
      await writer.start();
      await writer.waitForLeader();
      const writeErr = await writer.write("k", "v").then(() => undefined, (e: unknown) => e);
      expect(writeErr).toMatchObject({ name: "EtcdNodeError", code: "ERR_LEASE_ETCD_AUTH" });
      expect((writeErr as Error).message).toContain("check options.auth");
      expect(await admin.get("/lim/d/k").string()).toBeNull();
      await writer.close();
    } finally {
      admin.close();
    }
  }, 20_000);

  test("no client certificate where etcd requires one: start() rejects with an EtcdNodeError code", async () => {
    const n = make({ endpoints: [endpoint], ttlS: 2, requestTimeoutMs: 2000, tls: { ca: pem["ca.crt"]! }, auth: { username: "root", password: PASSWORD } });
    const err = await n.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdNodeError);
    expect((err as { code: string }).code).toMatch(/^ERR_LEASE_ETCD_(UNAVAILABLE|AUTH)$/);
    await n.close();
  }, 15_000);
});
