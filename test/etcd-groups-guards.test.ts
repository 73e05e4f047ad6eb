// Guards of the group engine (lease-core/etcd createEtcdGroupNode, docs/etcd.md "Many groups on
// one lease") on a real 3-member etcd, each run twice: on the published bundle (the guard
// holds) and on the test build (build/unsafe/etcd.js) with the switch that removes it (the
// assertion the guard keeps true is seen false):
// - a group key deleted behind the node's back, while its watch is held back, stops that
//   group (only it) by the next confirmation round (switch: skip-group-confirmation);
// - a clock fault retires the proof of every group, and a round in flight across it confirms
//   nothing (switch: acks-survive-clock-fault);
// and bad options, each refused by name before anything is built.
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLeaseCore, type LeaseCore } from "lease-core";
import * as published from "lease-core/etcd";
import type { EtcdGroupNode, EtcdGroupNodeOptions } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";
import { FaultProxy } from "../demo/proxy.js";
import { dataWatchProxy, sleep, until } from "./etcd/support.js";

type EtcdApi = typeof published;
let cluster: EtcdCluster;
let admin: Etcd3;
const nodes: EtcdGroupNode[] = [];

beforeAll(async () => {
  cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
  admin = new Etcd3({ hosts: cluster.clientEndpoints });
}, 30_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  admin?.close();
  await cluster?.stop();
  setUnsafe(undefined);
});

/** The test build with exactly `name` on (undefined: all off). */
function setUnsafe(name: string | undefined): void {
  const g = globalThis as { __leaseCoreUnsafe?: Record<string, boolean> };
  g.__leaseCoreUnsafe ??= {};
  for (const k of Object.keys(g.__leaseCoreUnsafe)) g.__leaseCoreUnsafe[k] = false;
  if (name !== undefined) g.__leaseCoreUnsafe[name] = true;
}

async function unsafeApi(name: string): Promise<EtcdApi> {
  setUnsafe(name);
  return (await import("../build/unsafe/etcd.js")) as unknown as EtcdApi;
}

function make(api: EtcdApi, options: Partial<EtcdGroupNodeOptions> & { core: LeaseCore; id: string; prefix: string }): EtcdGroupNode {
  const n = api.createEtcdGroupNode({ endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: 8, ...options });
  nodes.push(n);
  return n;
}

/**
 * One node "w" leading all 8 groups through one proxy per member; the member carrying its watch
 * answers it 8 s late; then etcd's copy of group 3's key is deleted by an admin. Returns whether
 * group 3 stopped serving within 6 s (and how), while the watch still held the deletion back.
 */
async function deletedBehindTheBack(api: EtcdApi): Promise<{ stopped: boolean; reasons: string[]; othersLed: number[]; lostCount: number }> {
  const proxies = await Promise.all(cluster.members.map((m) => FaultProxy.start(m.clientPort)));
  try {
    const prefix = `/gg1-${Math.random().toString(36).slice(2)}`;
    const core = await createLeaseCore();
    const reasons: string[] = [];
    const w = make(api, {
      core,
      id: "w",
      prefix,
      endpoints: proxies.map((p) => `127.0.0.1:${p.port}`),
      requestTimeoutMs: 300,
      onEvent: (e) => {
        if (e.detail?.startsWith("group 3 ")) reasons.push(e.reason);
      },
    });
    await w.start();
    await w.waitForAssignment(20_000);
    const slow = await dataWatchProxy(w as never, admin, prefix, proxies);
    proxies[slow]!.set("down", { kind: "delay", delayMs: 8000 });
    await until("group 3 served on a confirmed proof", () => w.ledGroups().length === 8 && (w.group(3).lastQuorumAck?.() ?? 0n) !== 0n, 10_000);
    const lostBefore = w.counters.groupsLost!;
    reasons.length = 0;
    await admin.delete().key(`${prefix}/g/00003`);
    const deadline = performance.now() + 6000;
    while (w.ledGroups().includes(3) && performance.now() < deadline) await sleep(20);
    const stopped = !w.ledGroups().includes(3);
    const othersLed = w.ledGroups().filter((g) => g !== 3);
    const lostCount = w.counters.groupsLost! - lostBefore;
    proxies[slow]!.heal();
    await w.close();
    return { stopped, reasons: [...reasons], othersLed, lostCount };
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
  }
}

describe("group guards on a real etcd", () => {
  test("a group key deleted behind the node's back stops that group (only it) by the next round, the watch held back", async () => {
    const r = await deletedBehindTheBack(published);
    expect(r.stopped).toBe(true);
    // The round saw it (key-missing), not the watch (own-key-deleted: still 8 s away).
    expect(r.reasons[0]).toBe("key-missing");
    expect(r.othersLed).toEqual([0, 1, 2, 4, 5, 6, 7]);
    expect(r.lostCount).toBe(1);
  }, 60_000);

  test("control (skip-group-confirmation): the node keeps serving the group whose key is gone", async () => {
    const r = await deletedBehindTheBack(await unsafeApi("SKIP_GROUP_CONFIRMATION"));
    setUnsafe(undefined);
    expect(r.stopped).toBe(false);
    expect(r.reasons).not.toContain("key-missing");
  }, 60_000);

  test("the published bundle ignores the switch: with skip-group-confirmation set in-process, it still stops the group", async () => {
    setUnsafe("SKIP_GROUP_CONFIRMATION");
    try {
      const r = await deletedBehindTheBack(published);
      expect(r.stopped).toBe(true);
      expect(r.reasons[0]).toBe("key-missing");
    } finally {
      setUnsafe(undefined);
    }
  }, 60_000);

  /** A node of 16 groups on a clock whose suspend the test stages; returns what a fault did. */
  async function clockFault(api: EtcdApi): Promise<{ acksAfterFault: bigint[]; anchorAfterRound: bigint; confirmedDelta: number; roundsDelta: number }> {
    let sleptNs = 0n;
    const core = await createLeaseCore({ clock: { now: () => process.hrtime.bigint(), sleepOffsetNs: () => sleptNs } });
    // Rounds 1 s apart (TTL 4 s): the staging fits between two of the loop's rounds.
    const n = make(api, { core, id: "f", prefix: `/gg2-${Math.random().toString(36).slice(2)}`, ttlS: 4, renewIntervalMs: 1000, groupCount: 16 });
    await n.start();
    await n.waitForAssignment(20_000);
    const confirmedOn = () => n.counters.roundsConfirmed!;
    await until("every group covered", () => [...Array(16).keys()].every((g) => (n.group(g).lastQuorumAck?.() ?? 0n) !== 0n), 10_000);
    for (let staging = 1; ; staging++) {
      const seen = confirmedOn();
      await until("a loop round", () => confirmedOn() > seen, 5000);
      const before = { ...n.counters };
      // A linearizable read as a group's leader starts a round now (none in flight): its clock
      // sample and generation are taken before the call returns.
      const read = n.group(5).linearizableRead();
      read.catch(() => undefined);
      sleptNs += 50_000_000n; // a 50 ms suspend while the round is in flight...
      core.now(); // ...seen by the next reading
      const acksAfterFault = [...Array(16).keys()].map((g) => n.group(g).lastQuorumAck!());
      await read;
      const roundsDelta = n.counters.rounds! - before.rounds!;
      if (roundsDelta !== 1 && staging < 3) continue; // a loop round overlapped: stage again
      const result = { acksAfterFault, anchorAfterRound: n.status().ackNs, confirmedDelta: n.counters.roundsConfirmed! - before.roundsConfirmed!, roundsDelta };
      await n.close();
      return result;
    }
  }

  test("a clock fault retires the proof of every group; a round in flight across it confirms nothing", async () => {
    const r = await clockFault(published);
    expect(r.roundsDelta).toBe(1);
    expect(r.acksAfterFault).toEqual(Array(16).fill(0n));
    expect(r.confirmedDelta).toBe(0);
    expect(r.anchorAfterRound).toBe(0n);
  }, 60_000);

  test("control (acks-survive-clock-fault): the proof survives the fault", async () => {
    const r = await clockFault(await unsafeApi("ACKS_SURVIVE_CLOCK_FAULT"));
    setUnsafe(undefined);
    expect(r.acksAfterFault.every((ack) => ack !== 0n)).toBe(true);
    expect(r.confirmedDelta).toBe(1);
  }, 60_000);

  test("bad options are refused by name, with typed errors, before anything is built", async () => {
    const core = await createLeaseCore();
    const base = { core, id: "x", prefix: "/gg3", endpoints: cluster.clientEndpoints };
    const bad: [Record<string, unknown>, string][] = [
      [{ groupCount: 0 }, "groupCount"],
      [{ groupCount: 65537 }, "groupCount"],
      [{ groupCount: 1.5 }, "groupCount"],
      [{ groupCount: Number.NaN }, "groupCount"],
      [{ groupCount: "8" }, "groupCount"],
      [{ groupCount: undefined }, "groupCount"],
      [{ groupCount: 8, maxTxnOps: 3 }, "maxTxnOps"],
      [{ groupCount: 8, maxTxnOps: Number.POSITIVE_INFINITY }, "maxTxnOps"],
      [{ groupCount: 8, ttlS: -1 }, "ttlS"],
      [{ groupCount: 8, requestTimeoutMs: 0 }, "requestTimeoutMs"],
      [{ groupCount: 8, prefix: "" }, "prefix"],
      [{ groupCount: 8, unsafe: { skipConfirmation: true } }, "unsafe"],
      [{ groupCount: 8, colour: "red" }, "colour"],
    ];
    for (const [extra, option] of bad) {
      expect(() => published.createEtcdGroupNode({ ...base, ...extra } as never), option).toThrow(expect.objectContaining({ name: "InvalidOptionError", code: "ERR_LEASE_INVALID_OPTION", message: expect.stringContaining(`option ${option} `) }));
    }
    // The core must have a lease slot per group.
    const small = await createLeaseCore({ maxLeases: 16 });
    expect(() => published.createEtcdGroupNode({ ...base, core: small, groupCount: 17 })).toThrow(expect.objectContaining({ name: "InvalidOptionError", message: expect.stringContaining("maxLeases >= groupCount (17)") }));
    const ok = published.createEtcdGroupNode({ ...base, core: small, groupCount: 16 });
    expect(() => ok.group(16)).toThrow(expect.objectContaining({ name: "UnknownGroupError", code: "ERR_LEASE_UNKNOWN_GROUP" }));
    expect(() => ok.group(-1)).toThrow(expect.objectContaining({ name: "UnknownGroupError" }));
    expect(() => ok.leaderOf(Number.NaN)).toThrow(expect.objectContaining({ name: "UnknownGroupError" }));
    await expect(ok.write("", "v")).rejects.toMatchObject({ name: "InvalidOptionError" });
    await expect(ok.write("k", 5 as never)).rejects.toMatchObject({ name: "InvalidOptionError" });
    await expect(ok.waitForAssignment(-1)).rejects.toMatchObject({ name: "InvalidOptionError" });
    // A lone UTF-16 surrogate has no UTF-8 form (it would be stored, and routed, as U+FFFD).
    await expect(ok.write("k\uD800", "v")).rejects.toMatchObject({ name: "InvalidOptionError", message: expect.stringContaining("option key ") });
    await expect(ok.write("k", "v\uDC00")).rejects.toMatchObject({ name: "InvalidOptionError", message: expect.stringContaining("option value ") });
    await expect(ok.read("k\uD800")).rejects.toMatchObject({ name: "InvalidOptionError" });
    await expect(ok.readLinearizable("k\uD800")).rejects.toMatchObject({ name: "InvalidOptionError" });
    await ok.close();
  }, 30_000);
});
