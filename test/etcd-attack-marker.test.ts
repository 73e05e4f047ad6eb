// Adversarial tests of lease-core/etcd's takeover hold, resign marker (docs/etcd.md §5) and close() (§6), on
// a real 3-member etcd on loopback. Each test asserts the safety property (no stale local read,
// no two local leaders); a failing test is a finding.
//
// The early revoke of a stuck old etcd leader (etcd-io/etcd #15247) is stood in for by an
// admin LeaseRevoke of the holder's lease: what etcd commits is the same (the lease and its key
// go while the holder's confirmed lease still runs); the holder's own traffic is stalled by a
// TCP proxy (demo/proxy.ts) so its own-key watch does not tell it at once, as when its watch is
// served by a lagging member.
import { afterEach, describe, expect, test } from "vitest";
import { Etcd3, KVClient, LeaseClient } from "etcd3";
import { createLeaseCore } from "lease-core";
import { createEtcdLeaseNode, type EtcdLeaseNode, type EtcdNodeEvent } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { sleep, until } from "./etcd/support.js";

const POLL_MS = 5;

let cluster: EtcdCluster | undefined;
const proxies: FaultProxy[] = [];
const nodes: EtcdLeaseNode[] = [];
const admins: Etcd3[] = [];

afterEach(async () => {
  for (const p of proxies) p.heal();
  await Promise.all(nodes.splice(0).map((n) => n.close().catch(() => undefined)));
  for (const a of admins.splice(0)) a.close();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await cluster?.stop();
  cluster = undefined;
});

describe("attack: the resign marker of a node that did not hold", () => {
  // "auto": the control (every node holds; the attack is expected to hold). "never": the finding.
  test.each(["auto", "never"] as const)("a marker from a takeoverHold:%s successor never lets an 'auto' node serve while the early-revoked holder still serves", async (aHold) => {
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const c = cluster;
    const direct = c.clientEndpoints;
    const pProx = await Promise.all(c.members.map((m) => FaultProxy.start(m.clientPort)));
    const bProx = await Promise.all(c.members.map((m) => FaultProxy.start(m.clientPort)));
    proxies.push(...pProx, ...bProx);
    const core = await createLeaseCore();
    const events: { node: string; e: EtcdNodeEvent }[] = [];
    const log = (name: string, extra?: (e: EtcdNodeEvent) => void) => (e: EtcdNodeEvent) => {
      events.push({ node: name, e });
      if (process.env.ATTACK_LOG) console.log(name, e.reason, e.detail ?? "", Number(e.atNs / 1_000_000n));
      extra?.(e);
    };
    // Every node of the prefix has the same TTL (docs/etcd.md §5 asks for that).
    const common = { prefix: "/atk", ttlS: 5, etcdElectionTimeoutMs: 300 } as const;
    const p = createEtcdLeaseNode({ core, id: "p", endpoints: pProx.map((x) => `127.0.0.1:${x.port}`), ...common, onEvent: log("p") });
    nodes.push(p);
    await p.start();
    await p.waitForLeader(10_000);
    await p.write("k", "v0");
    await until("p's lease read", () => p.status().anchorNs !== 0n, 5000, POLL_MS);
    expect((await p.read("k")).served).toBe("local");

    // a: takeoverHold aHold ("never": it reports itself unprotected); closes 500 ms after it is elected (a
    // rolling restart), resigning with the marker.
    let aClosing: Promise<void> | undefined;
    const a: EtcdLeaseNode = createEtcdLeaseNode({
      core, id: "a", endpoints: direct, ...common, takeoverHold: aHold,
      onEvent: log("a", (e) => { if (e.reason === "elected") aClosing = sleep(500).then(() => a.close()); }),
    });
    nodes.push(a);
    // b: the default ("auto": takeover-hold on etcd 3.4.23); a little slower than a, so a wins
    // the race for p's key and b sees a's key (the holder its marker check names).
    const b = createEtcdLeaseNode({ core, id: "b", endpoints: bProx.map((x) => `127.0.0.1:${x.port}`), ...common, onEvent: log("b") });
    nodes.push(b);
    await a.start();
    await b.start();
    for (const x of bProx) x.set("down", { kind: "delay", delayMs: 150 });
    expect(a.status().revokeGuard).toBe(aHold === "never" ? "unprotected" : "takeover-hold");
    expect(b.status().revokeGuard).toBe("takeover-hold");
    await sleep(1500); // both campaigning, watching p's key

    // p's answers stall (its watches and renewals hear nothing); its lease is revoked early.
    await until("a fresh anchor on p", () => p.status().remainingNs > 3_500_000_000n, 5000, POLL_MS);
    for (const x of pProx) x.set("down", { kind: "stall" });
    const admin = new Etcd3({ hosts: direct });
    admins.push(admin);
    const pool = (admin as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
    await new LeaseClient(pool).leaseRevoke({ ID: p.status().leaseId! });
    const revokedAt = performance.now();

    await until("b elected", () => b.state() === "leader", 15_000, POLL_MS);
    const bElectedMs = performance.now() - revokedAt;
    await aClosing;
    const w = await b.write("k", "v1"); // acknowledged
    const bRead = await b.read("k");
    // p still thinks it leads (its watches are stalled); a read it cannot serve locally fails.
    const pRead = await p.read("k").catch((err: Error) => ({ value: `error: ${err.message}`, served: "none", revision: 0n, reason: "" }));
    const pStatus = p.status();
    const bStatus = b.status();
    console.log(
      `b elected ${bElectedMs.toFixed(0)} ms after the revoke (holds ${bStatus.counters.holds}); b wrote v1 at ${w.revision}; ` +
        `b read ${bRead.value} ${bRead.served}; p (state ${pStatus.state}, ${Number(pStatus.remainingNs / 1_000_000n)} ms left) read ${pRead.value} ${pRead.served}`,
    );
    // b says a takeover hold covers the early revoke...
    expect(bStatus.revokeGuard).toBe("takeover-hold");
    // ...so no node may serve locally a value older than b's acknowledged write.
    expect(bRead.served === "local" && pRead.served === "local").toBe(false);
    expect(pRead.served === "local" ? pRead.value : "v1").toBe("v1");
  }, 60_000);
});

describe("attack: close() racing a write's commit", () => {
  // a's answers are delayed 400 ms (its keepalive, its write's txn answer and its data watch);
  // a closes while its write is in flight: before the keepalive answer (100 ms), after the txn
  // was sent (450 ms), around the txn's answer (850 ms). An acknowledged write must be seen by
  // the successor.
  test.each([100, 450, 850])("a write acknowledged across close() at %i ms is never lost; the successor reads it", async (closeAfterMs) => {
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const c = cluster;
    const aProx = await Promise.all(c.members.map((m) => FaultProxy.start(m.clientPort)));
    proxies.push(...aProx);
    const core = await createLeaseCore();
    const common = { prefix: "/atc", ttlS: 2, etcdElectionTimeoutMs: 300, requestTimeoutMs: 3000 } as const;
    const a = createEtcdLeaseNode({ core, id: "a", endpoints: aProx.map((x) => `127.0.0.1:${x.port}`), ...common });
    nodes.push(a);
    await a.start();
    await a.waitForLeader(10_000);
    await a.write("k", "v0");
    const b = createEtcdLeaseNode({ core, id: "b", endpoints: c.clientEndpoints, ...common });
    nodes.push(b);
    await b.start();
    for (const x of aProx) x.set("down", { kind: "delay", delayMs: 400 });
    const w = a.write("k", "v1").then((r) => `ack ${r.revision}`, (err: Error & { code?: string }) => `refused ${err.name} ${err.code ?? ""}`);
    await sleep(closeAfterMs);
    await a.close();
    const outcome = await w;
    for (const x of aProx) x.heal();
    await b.waitForLeader(15_000);
    const r = await b.read("k");
    const lin = await b.readLinearizable("k");
    console.log(`close at ${closeAfterMs} ms: write ${outcome}; b reads ${r.value} (${r.served}), linearizable ${lin.value}`);
    if (outcome.startsWith("ack")) expect(r.value).toBe("v1");
    expect(r.value).toBe(lin.value);
  }, 60_000);
});

describe("attack: the hold when the successor's TTL is shorter than the holder's", () => {
  // p (ttlS 5) holds; b (ttlS 2, takeoverHold auto) has seen p's key; p's lease is revoked early
  // while p's answers stall. b's hold must be p's granted TTL, not its own: p's lease lapses
  // before b serves.
  test("a successor that saw the holder holds for the holder's longer TTL", async () => {
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const c = cluster;
    const pProx = await Promise.all(c.members.map((m) => FaultProxy.start(m.clientPort)));
    proxies.push(...pProx);
    const core = await createLeaseCore();
    const p = createEtcdLeaseNode({ core, id: "p", endpoints: pProx.map((x) => `127.0.0.1:${x.port}`), prefix: "/att", ttlS: 5, etcdElectionTimeoutMs: 300 });
    nodes.push(p);
    await p.start();
    await p.waitForLeader(10_000);
    await p.write("k", "v0");
    const b = createEtcdLeaseNode({ core, id: "b", endpoints: c.clientEndpoints, prefix: "/att", ttlS: 2, etcdElectionTimeoutMs: 300 });
    nodes.push(b);
    await b.start();
    await sleep(1000); // b has seen p's key and asked for its lease's TTL
    await until("a fresh anchor on p", () => p.status().remainingNs > 3_500_000_000n, 5000, POLL_MS);
    for (const x of pProx) x.set("down", { kind: "stall" });
    const admin = new Etcd3({ hosts: c.clientEndpoints });
    admins.push(admin);
    const pool = (admin as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
    await new LeaseClient(pool).leaseRevoke({ ID: p.status().leaseId! });
    await until("b elected", () => b.state() === "leader", 15_000, POLL_MS);
    const pStatus = p.status();
    const w = await b.write("k", "v1");
    const pRead = await p.read("k").catch((err: Error) => ({ value: `error: ${err.message}`, served: "none" }));
    console.log(`b (ttl 2) elected; p (ttl 5, state ${pStatus.state}) had ${Number(pStatus.remainingNs / 1_000_000n)} ms left; b wrote v1 at ${w.revision}; p read ${pRead.value} (${pRead.served})`);
    expect(pStatus.remainingNs).toBe(0n);
    expect(pRead.served === "local" ? pRead.value : "v1").toBe("v1");
  }, 60_000);
});
