// One random run: a seed picks the cluster size, clock rates, network, client load and a fault
// schedule from the whole menu of issue 5, all guards on; the run's history must be
// linearizable. `runSeed(seed)` is what `npm test` and `npm run sim` call.
import type { KvCheckResult, KvOp } from "lease-core/testing";
import { Cluster } from "./cluster.js";
import { MS, type Guards } from "./node.js";
import { Prng } from "./prng.js";

export interface SeedResult {
  seed: number;
  voters: number;
  check: KvCheckResult;
  violations: string[];
  faults: string[];
  stats: Cluster["stats"] & { events: number; ops: number; elections: number; refusedAcks: number; misses: Record<string, number> };
  history: KvOp[];
}

const RUN_NS = 2_000 * MS;
const SETTLE_NS = 500 * MS;
const KEYS = ["x", "y"];

export async function runSeed(seed: number, guards: Partial<Guards> = {}): Promise<SeedResult> {
  const plan = new Prng(seed ^ 0x5eed);
  const voters = plan.pick([3, 5]);
  // Lease safety must not rest on how often the engine checks its quorum: half the runs use
  // etcd raft's once-per-election-timeout check (etcd-raft #166).
  guards = { periodicCheckQuorum: plan.chance(0.5), transferPoll: plan.chance(0.3), ...guards };
  const c = await Cluster.create({
    seed,
    voters,
    spares: 1,
    guards,
    net: { delayMinNs: 1 * MS, delayMaxNs: plan.int(2, 8) * MS, loss: plan.pick([0, 0.01, 0.05]), dup: plan.pick([0, 0.01, 0.03]) },
  });
  const faults: string[] = [];
  const log = (what: string) => faults.push(`${(c.world.now / MS).toFixed(1)}ms ${what}`);
  const r = c.prng;
  const ids = c.ids;
  const voterIds = () => [...new Set([...c.nodes[0]!.config.voters])];

  // Faults: one every 60-250 ms, each undone after a while; heal at RUN_NS.
  const menu: (() => void)[] = [
    () => {
      const shuffled = [...ids].sort(() => r.float() - 0.5);
      const cut = r.int(1, ids.length - 1);
      const a = shuffled.slice(0, cut), b = shuffled.slice(cut);
      c.partition(a, b);
      log(`partition ${a} | ${b}`);
      const ns = r.int(50, 400) * MS;
      c.world.after(ns, () => { for (const x of a) for (const y of b) { c.unblock(x, y); c.unblock(y, x); } });
    },
    () => {
      const [x, y] = [r.pick(ids), r.pick(ids)];
      if (x === y) return;
      c.block(x, y);
      log(`one-way cut ${x}>${y}`);
      c.world.after(r.int(50, 400) * MS, () => c.unblock(x, y));
    },
    () => {
      const x = r.pick(ids), ns = r.int(5, 400) * MS;
      c.pause(x, ns);
      log(`pause ${x} ${ns / MS}ms`);
    },
    () => {
      const x = r.pick(ids), ns = r.int(5, 400) * MS;
      c.suspend(x, ns);
      log(`suspend ${x} ${ns / MS}ms`);
    },
    () => {
      const x = r.pick(ids), half = c.timing.driftPpmMax / 2;
      const ppm = (r.float() * 2 - 1) * half;
      c.nodes[x]!.clock.setRatePpm(ppm);
      log(`clock ${x} rate ${ppm.toFixed(0)}ppm`);
    },
    () => {
      const x = r.pick(ids), ns = r.int(1, 60) * MS;
      c.nodes[x]!.clock.failUntil(c.world.now + ns);
      log(`clock ${x} zero readings ${ns / MS}ms`);
    },
    () => {
      const x = r.pick(ids), ns = r.int(1, 50) * MS;
      c.nodes[x]!.clock.regress(ns);
      log(`clock ${x} regresses ${ns / MS}ms`);
    },
    () => {
      const x = r.pick(ids), ns = r.int(10, 300) * MS;
      c.crash(x, ns);
      log(`crash ${x} for ${ns / MS}ms`);
    },
    () => {
      const x = r.pick(ids), per = r.int(1, 6) * MS, ns = r.int(50, 300) * MS;
      c.serviceNs[x] = per;
      log(`slow inbox ${x}: ${per / MS}ms per message for ${ns / MS}ms`);
      c.world.after(ns, () => (c.serviceNs[x] = 0));
    },
    () => {
      const [x, y] = [r.pick(ids), r.pick(ids)];
      if (x === y) return;
      const ns = r.int(20, 300) * MS;
      c.linkDelayNs.set(`${x}>${y}`, ns);
      log(`link ${x}>${y} +${ns / MS}ms`);
      c.world.after(r.int(50, 300) * MS, () => c.linkDelayNs.delete(`${x}>${y}`));
    },
    () => {
      const leader = c.leaders()[0];
      if (!leader) return;
      const target = r.pick(voterIds().filter((v) => v !== leader.id));
      if (target !== undefined && leader.transferTo(target)) {
        c.stats.transfers++;
        log(`transfer ${leader.id} -> ${target}`);
      }
    },
    () => {
      const leader = c.leaders()[0];
      if (!leader) return;
      // Swap one voter for a node outside the set, through a joint configuration.
      const current = leader.config.voters;
      const outside = ids.filter((i) => !current.includes(i));
      if (outside.length === 0) return;
      const out = r.pick(current);
      const next = [...current.filter((v) => v !== out), r.pick(outside)].sort();
      if (leader.changeConfig(next)) {
        c.stats.configChanges++;
        log(`config ${current} -> ${next} (joint)`);
      }
    },
    () => {
      // A pause (or suspend) between the lease check and the read on the next read there.
      const x = r.pick(ids), ns = r.int(20, 300) * MS, kind = r.pick(["process", "suspend", "thread"] as const);
      c.midReadPause.set(x, { ns, kind });
      log(`next read on ${x}: ${kind} pause ${ns / MS}ms mid-read`);
    },
  ];
  const scheduleFault = () => {
    if (c.world.now >= RUN_NS) return;
    r.pick(menu)();
    c.world.after(r.int(60, 250) * MS, scheduleFault);
  };
  c.world.after(r.int(150, 300) * MS, scheduleFault);
  c.world.after(RUN_NS, () => {
    c.heal();
    for (let i = 0; i < c.serviceNs.length; i++) c.serviceNs[i] = 0;
    log("heal");
  });

  // Clients: closed loop, as Jepsen's processes (one operation at a time each, so the history's
  // concurrency stays small and the checker's search cheap); mostly at a node that believes it
  // leads, which is where stale reads come from.
  const clients = 4;
  for (let k = 0; k < clients; k++) {
    const step = async () => {
      if (c.world.now >= RUN_NS + SETTLE_NS - 100 * MS) return;
      const leaders = c.leaders();
      const target = leaders.length && r.chance(0.85) ? r.pick(leaders).id : r.pick(ids);
      const key = r.pick(KEYS);
      if (r.chance(0.6)) await c.read(k, target, key);
      else await c.write(k, target, key, c.nextValue(k));
      c.world.after(r.int(1, 10) * MS, () => void step());
    };
    c.world.after(r.int(0, 10) * MS, () => void step());
  }

  await c.run(RUN_NS + SETTLE_NS);
  const check = c.check();
  return {
    seed,
    voters,
    check,
    violations: c.violations,
    faults,
    stats: {
      ...c.stats,
      events: c.world.events,
      ops: c.history.length,
      elections: c.nodes.reduce((a, n) => a + n.stats.elections, 0),
      refusedAcks: c.nodes.reduce((a, n) => a + n.stats.refusedAcks, 0),
      localReads: c.nodes.reduce((a, n) => a + n.stats.localReads, 0),
      misses: c.nodes.reduce((a, n) => { for (const [k, v] of Object.entries(n.stats.misses)) a[k] = (a[k] ?? 0) + v; return a; }, {} as Record<string, number>),
    },
    history: c.history,
  };
}

/** A failing run, as printed: the seed to replay, the faults, and the minimal history. */
export function describeFailure(result: SeedResult): string {
  const lines = [`sim seed ${result.seed} FAILED (${result.voters} voters). Replay: SIM_SEED=${result.seed} npm run sim`];
  for (const v of result.violations) lines.push(`  invariant: ${v}`);
  if (result.check.ok === false) {
    lines.push(`  not linearizable on key ${JSON.stringify(result.check.key)}; minimal history:`);
    for (const op of result.check.minimal) {
      const ret = op.returnAt === Infinity ? "?" : (op.returnAt / MS).toFixed(3);
      const { client, kind, key, value, callAt, returnAt, ...where } = op as KvOp & Record<string, unknown>;
      void client; void kind; void key; void value; void callAt; void returnAt;
      lines.push(`    client ${op.client} ${op.kind} ${op.key}=${op.value} [${(op.callAt / MS).toFixed(3)}ms, ${ret}ms] ${JSON.stringify(where)}`);
    }
  } else if (result.check.ok === "unknown") {
    lines.push(`  checker gave up: ${result.check.reason}`);
  }
  lines.push("  faults:", ...result.faults.map((f) => `    ${f}`));
  return lines.join("\n");
}
