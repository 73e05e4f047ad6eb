// Scripted fault schedules, one per guard and per incident of issue 5. Each runs twice in the
// tests: with every guard on (the history must be linearizable) and with the one guard it
// needs turned off (the negative control: the checker must report a stale read). A guard whose
// control never fires is not proven.
import type { KvCheckResult, KvOp } from "lease-core/testing";
import { Cluster } from "./cluster.js";
import { MS, type Guards, type SimNode } from "./node.js";

export interface ScenarioResult {
  check: KvCheckResult;
  history: KvOp[];
  violations: string[];
  /** Reads attempted at the node the scenario aims at (evidence that the schedule reached it). */
  probeReads: number;
  misses: Record<string, number>;
}

export interface Scenario {
  name: string;
  incident: string;
  /** The guard switch the negative control turns off. */
  control: Partial<Guards>;
  /** Protocol settings both runs share. */
  base?: Partial<Guards>;
  run(guards: Partial<Guards>): Promise<ScenarioResult>;
}

async function until(c: Cluster, cond: () => boolean, maxNs = 3_000 * MS): Promise<void> {
  const end = c.world.now + maxNs;
  while (!cond()) {
    if (c.world.now >= end) throw new Error("scenario: condition not reached");
    await c.run(c.world.now + 1 * MS);
  }
}

/** A cluster of `voters` with ideal clocks and a quiet network, and its settled leader. */
async function settled(guards: Partial<Guards>, voters = 3, spares = 0, seed = 7): Promise<{ c: Cluster; leader: SimNode; others: SimNode[] }> {
  const c = await Cluster.create({ seed, voters, spares, guards, ratePpm: Array(voters + spares).fill(0), net: { delayMinNs: 1 * MS, delayMaxNs: 2 * MS } });
  await until(c, () => c.leaders().length === 1 && c.leaders()[0]!.commit > 0 && c.leaders()[0]!.log[c.leaders()[0]!.commit]!.term === c.leaders()[0]!.term);
  const leader = c.leaders()[0]!;
  await c.run(c.world.now + 50 * MS);
  return { c, leader, others: c.nodes.filter((n) => n !== leader && n.config.voters.includes(n.id)) };
}

async function finish(c: Cluster, probe: SimNode, probeReads: number): Promise<ScenarioResult> {
  await c.run(c.world.now + 600 * MS);
  return { check: c.check(), history: c.history, violations: c.violations, probeReads, misses: { ...probe.stats.misses } };
}

/** Fires `count` reads of `key` at `node`, `gapNs` apart, running the world in between. */
async function probe(c: Cluster, node: SimNode, key: string, count: number, gapNs: number): Promise<number> {
  for (let i = 0; i < count; i++) {
    void c.read(9, node.id, key);
    await c.run(c.world.now + gapNs);
  }
  return count;
}

async function write(c: Cluster, node: SimNode, key: string, value: string, runNs = 20 * MS): Promise<void> {
  void c.write(8, node.id, key, value);
  await c.run(c.world.now + runNs);
}

function isolateInbound(c: Cluster, node: SimNode): void {
  for (const id of c.ids) if (id !== node.id) c.block(id, node.id);
}

export const SCENARIOS: Scenario[] = [
  {
    name: "queueing delay: acks anchored on send time",
    incident: "the reference store stamps acks when processed; its 1,024-slot inbox stretches the lease",
    control: { sendTime: false },
    async run(guards) {
      const { c, leader } = await settled(guards);
      await write(c, leader, "x", "a");
      c.serviceNs[leader.id] = 25 * MS; // a slow consumer: the inbox queue grows without bound
      await c.run(c.world.now + 300 * MS);
      for (const id of c.ids) if (id !== leader.id) c.partition([leader.id], [id]); // the backlog stays queued
      await until(c, () => c.leaders().some((n) => n !== leader));
      await write(c, c.leaders().find((n) => n !== leader)!, "x", "b");
      const reads = await probe(c, leader, "x", 8, 10 * MS);
      return finish(c, leader, reads);
    },
  },
  {
    name: "higher-term ack: an ack for another term is refused",
    incident: "contract §3 [beyond]: a reply carrying a higher term is never an ack (engines that count it before stepping down)",
    control: { ackTerm: false },
    base: { lazyStepDown: true },
    async run(guards) {
      const { c, leader, others } = await settled(guards);
      const [target, bystander] = others as [SimNode, SimNode];
      await write(c, leader, "x", "a");
      c.block(target.id, leader.id); // the new leader's messages never reach the old one
      leader.transferTo(target.id);
      await until(c, () => target.role === "leader");
      await write(c, target, "x", "b");
      // The old leader aborts the transfer after an election timeout and heartbeats again; the
      // bystander, now in the new term, answers with that term.
      await until(c, () => !leader.transferring);
      await c.run(c.world.now + 25 * MS);
      void bystander;
      const reads = await probe(c, leader, "x", 6, 8 * MS);
      return finish(c, leader, reads);
    },
  },
  {
    name: "own term: no lease read before an entry of the leader's term is applied",
    incident: "Raft §6.4 / contract §4 [beyond]: a new leader's commit index may lag what its predecessor committed",
    control: { ownTerm: false },
    async run(guards) {
      const { c, leader, others } = await settled(guards);
      const [heir, other] = others as [SimNode, SimNode];
      c.block(leader.id, other.id);
      void c.write(8, leader.id, "x", "a"); // replicated to the heir only
      await c.run(c.world.now + 0.1 * MS);
      c.block(leader.id, heir.id); // the heir never learns that x=a committed
      await c.run(c.world.now + 20 * MS);
      c.crash(leader.id, 5_000 * MS);
      c.dropIf = (m) => m.t === "append" && m.from === heir.id; // its first entry cannot commit; heartbeats pass
      await until(c, () => heir.role === "leader");
      await c.run(c.world.now + 10 * MS);
      const reads = await probe(c, heir, "x", 6, 8 * MS);
      return finish(c, heir, reads);
    },
  },
  {
    name: "transfer: suspect from the start of a leadership transfer",
    incident: "openraft #1749: reads served by the old leader during a transfer",
    control: { transfer: false },
    async run(guards) {
      const { c, leader, others } = await settled(guards);
      const [target] = others as [SimNode];
      await write(c, leader, "x", "a");
      isolateInbound(c, leader);
      leader.transferTo(target.id);
      await until(c, () => target.role === "leader");
      await write(c, target, "x", "b", 10 * MS);
      const reads = await probe(c, leader, "x", 6, 5 * MS);
      return finish(c, leader, reads);
    },
  },
  {
    name: "transfer, polled: the engine reports transferInProgress()",
    incident: "etcd-raft #99: a read racing a leadership transfer on the old leader",
    control: { transfer: false },
    base: { transferPoll: true },
    async run(guards) {
      const { c, leader, others } = await settled(guards);
      const [target] = others as [SimNode];
      await write(c, leader, "x", "a");
      isolateInbound(c, leader);
      c.midReadPause.set(leader.id, { ns: 15 * MS, kind: "thread" });
      void c.read(9, leader.id, "x"); // checked before the transfer, read during it
      leader.transferTo(target.id);
      await until(c, () => target.role === "leader");
      await write(c, target, "x", "b", 10 * MS);
      const reads = 1 + (await probe(c, leader, "x", 6, 5 * MS));
      return finish(c, leader, reads);
    },
  },
  {
    name: "transfer: suspect set too late",
    incident: "TiKV #8034: the lease was marked suspect only after the transfer message left",
    control: { transferLateNs: 60 * MS },
    async run(guards) {
      const { c, leader, others } = await settled(guards);
      const [target] = others as [SimNode];
      await write(c, leader, "x", "a");
      isolateInbound(c, leader);
      leader.transferTo(target.id);
      await until(c, () => target.role === "leader");
      await write(c, target, "x", "b", 10 * MS);
      const reads = await probe(c, leader, "x", 6, 5 * MS);
      return finish(c, leader, reads);
    },
  },
  {
    name: "restart amnesia: a restarted follower does not vote at once",
    incident: "TiKV #15035: a follower voting right after restart let a new leader in under a live lease",
    control: { restartInLease: false },
    async run(guards) {
      const { c, leader, others } = await settled(guards);
      const [rival, voter] = others as [SimNode, SimNode];
      await write(c, leader, "x", "a");
      c.partition([rival.id], [leader.id]);
      await c.run(c.world.now + 30 * MS);
      c.crash(voter.id, 1 * MS);
      c.partition([voter.id], [leader.id]);
      await c.run(c.world.now + 2 * MS);
      rival.expireElectionTimer();
      await until(c, () => rival.role === "leader", 300 * MS).catch(() => {});
      if (rival.role === "leader") await write(c, rival, "x", "b", 8 * MS);
      const reads = await probe(c, leader, "x", 8, 4 * MS);
      return finish(c, leader, reads);
    },
  },
  {
    name: "lease within the election timeout (validated configuration)",
    incident: "etcd-raft #166: a lease effectively longer than the election timeout",
    control: { validatedDuration: false, leaseOverrideNs: 200 * MS },
    base: { periodicCheckQuorum: true },
    async run(guards) {
      const { c, leader } = await settled(guards);
      await write(c, leader, "x", "a");
      for (const id of c.ids) if (id !== leader.id) c.partition([leader.id], [id]);
      const t0 = c.world.now;
      let reads = 0;
      let wrote = false;
      while (c.world.now < t0 + 220 * MS) {
        const other = c.leaders().find((n) => n !== leader);
        if (other && !wrote) {
          wrote = true;
          void c.write(8, other.id, "x", "b");
        }
        void c.read(9, leader.id, "x");
        reads++;
        await c.run(c.world.now + 4 * MS);
      }
      return finish(c, leader, reads);
    },
  },
  {
    name: "pause-safe read: validate the lease after the read",
    incident: "TiKV #10011: a pause between the lease check and the read",
    control: { pauseSafe: false },
    base: { destroyOnRemoval: true },
    async run(guards) {
      const { c, leader, others } = await settled(guards, 3, 1);
      await write(c, leader, "x", "a");
      c.midReadPause.set(leader.id, { ns: 60 * MS, kind: "thread" }); // the reading thread stalls
      void c.read(9, leader.id, "x");
      // Meanwhile the node is removed from the group and its replica destroyed.
      leader.changeConfig([...others.map((n) => n.id), c.ids.at(-1)!].sort());
      await c.run(c.world.now + 100 * MS);
      return finish(c, leader, 1);
    },
  },
  {
    name: "suspend: a leader that slept through its lease",
    incident: "contract §1.2 [beyond]: CLOCK_MONOTONIC(_RAW) stops in suspend; no surveyed system detects it",
    control: { suspendAware: false },
    async run(guards) {
      const { c, leader } = await settled(guards);
      await write(c, leader, "x", "a");
      isolateInbound(c, leader);
      c.suspend(leader.id, 400 * MS);
      await until(c, () => c.leaders().some((n) => n !== leader));
      await write(c, c.leaders().find((n) => n !== leader)!, "x", "b");
      await until(c, () => !leader.clock.suspended);
      await c.run(c.world.now + 1 * MS);
      const reads = await probe(c, leader, "x", 6, 3 * MS);
      return finish(c, leader, reads);
    },
  },
];

/** Not a guard: the bound itself. A leader clock slower than driftPpmMax allows outlives its
 *  lease in true time; nothing local can see it. The run with drift beyond the bound must be
 *  caught by the checker (what lease-core cannot protect), the one within it must pass. */
export async function clockBoundScenario(leaderRatePpm: number): Promise<ScenarioResult> {
  const c = await Cluster.create({ seed: 11, voters: 3, ratePpm: [0, 0, 0], net: { delayMinNs: 1 * MS, delayMaxNs: 2 * MS } });
  await until(c, () => c.leaders().length === 1 && c.leaders()[0]!.commit > 0);
  const leader = c.leaders()[0]!;
  await c.run(c.world.now + 50 * MS);
  leader.clock.setRatePpm(leaderRatePpm);
  await write(c, leader, "x", "a");
  for (const id of c.ids) if (id !== leader.id) c.partition([leader.id], [id]);
  // The others elect as soon as their clocks allow: expire their timers at the election timeout.
  const t0 = c.world.now;
  let reads = 0;
  let wrote = false;
  while (c.world.now < t0 + 200 * MS) {
    const other = c.leaders().find((n) => n !== leader);
    if (other && !wrote) {
      wrote = true;
      void c.write(8, other.id, "x", "b");
    }
    if (c.world.now >= t0 + 95 * MS) for (const n of c.nodes) if (n !== leader && n.role !== "leader" && c.world.now < t0 + 101 * MS) n.expireElectionTimer();
    void c.read(9, leader.id, "x");
    reads++;
    await c.run(c.world.now + 2 * MS);
  }
  return finish(c, leader, reads);
}
