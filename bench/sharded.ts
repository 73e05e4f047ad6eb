/**
 * The batch lease-read hit per group (issue 17: "lease-read hit per group <= 50 ns, the clock
 * sample amortized over a batch"): `ShardedLeaseReader.localReadGroups` over 100, 1,000 and
 * 5,000 groups, against `lease.valid()` and one group's `reader.localRead()` measured in the
 * same process (BENCH_PART=sharded and sharded:object, one process per engine shape: one core
 * on the default clock).
 *
 * The engines are shaped like the etcd group engine of issue 17 (host/etcd/groups/): one plain
 * object per group, built by one factory, whose `lastQuorumAck()` returns
 * the node's one shared anchor when the group is confirmed, `currentTerm()` its epoch,
 * `quorumAckTerm()` the epoch once confirmed, `appliedIndex()` the node's applied revision.
 * Every group is a confirmed leader: every entry is a hit (the figure is the hit path).
 * @module
 */
import type { LeaseCore } from "../host/core/core.js";
import type { LeaseEngine, LeaseObserver } from "../host/core/reader.js";
import { do_not_optimize } from "mitata";
import type { Case } from "./harness.js";

const HOUR_NS = 3_600_000_000_000n;
export const SHARDED_GROUPS = [100, 1_000, 5_000];
/** Leases the sharded part's core needs: one reader per group of each size, the single reader, valid(). */
export const SHARDED_LEASES = SHARDED_GROUPS.reduce((a, b) => a + b, 0) + 1_000 + 64; // + the observed 1,000

/** The node's state the group engines point at (nothing per group is rewritten on a renewal). */
interface NodeProof {
  ackNs: bigint;
  ackRound: number;
  durationNs: bigint;
  appliedRevision: bigint;
}

interface GroupRecord {
  epoch: bigint;
  confirmedRound: number;
  leading: boolean;
}

function groupEngine(node: NodeProof, group: GroupRecord): LeaseEngine {
  return {
    state: () => (group.leading ? "leader" : "follower"),
    appliedIndex: () => node.appliedRevision,
    linearizableRead: async () => node.appliedRevision,
    leaseDurationNs: () => node.durationNs,
    lastQuorumAck: () => (group.leading && group.confirmedRound !== 0 && node.ackRound >= group.confirmedRound ? node.ackNs : 0n),
    onLeaderLoss: () => () => {},
    currentTerm: () => group.epoch,
    quorumAckTerm: () => (group.confirmedRound !== 0 ? group.epoch : 0n),
  };
}

/** The same answers from a class with private fields and a `leads()` helper, the shape of the
 *  etcd group engine's `GroupEngine` (host/etcd/groups/table.ts; its per-call clock-fault check
 *  is left out: that is the engine's cost, not the batch's). */
class ClassGroupEngine implements LeaseEngine {
  readonly #node: NodeProof;
  readonly #group: GroupRecord;
  constructor(node: NodeProof, group: GroupRecord) {
    this.#node = node;
    this.#group = group;
  }
  #leads(): boolean {
    return this.#group.leading;
  }
  #confirmed(): boolean {
    return this.#group.confirmedRound !== 0 && this.#node.ackRound >= this.#group.confirmedRound;
  }
  state(): "leader" | "follower" {
    return this.#leads() ? "leader" : "follower";
  }
  appliedIndex(): bigint {
    return this.#node.appliedRevision;
  }
  async linearizableRead(): Promise<bigint> {
    return this.#node.appliedRevision;
  }
  leaseDurationNs(): bigint {
    return this.#node.durationNs > 0n ? this.#node.durationNs : 0n;
  }
  lastQuorumAck(): bigint {
    return this.#leads() && this.#confirmed() ? this.#node.ackNs : 0n;
  }
  onLeaderLoss(): () => void {
    return () => {};
  }
  currentTerm(): bigint {
    return this.#leads() ? this.#group.epoch : 0n;
  }
  quorumAckTerm(): bigint {
    return this.#leads() && this.#confirmed() ? this.#group.epoch : 0n;
  }
}

/**
 * valid(), one group's localRead(), and localReadGroups / a localRead loop per batch size, every
 * engine of one shape per process (as in an application: one engine class; mixing shapes in one
 * process makes the reader's calls into the engine polymorphic): `class` (GroupEngine's shape,
 * ids `sharded.*`) or `object` (plain objects of closures, ids `sharded.*.object`).
 */
export function shardedCases(core: LeaseCore, shape: "class" | "object"): Case[] {
  const tag = shape === "class" ? "" : ".object";
  const lease = core.createLease();
  if (!lease.extend(core.now() + HOUR_NS, lease.generation())) throw new Error("bench setup: extend failed");
  const node: NodeProof = { ackNs: core.now(), ackRound: 1, durationNs: HOUR_NS, appliedRevision: 1234n };
  const cases: Case[] = [
    { id: `sharded.valid${tag}`, label: `lease.valid() on ${core.clock.source}, in this process (the ratios' denominator)`, fn: () => do_not_optimize(lease.valid()) },
  ];
  let nextEpoch = 100n;
  const shard = (groups: number, observer?: LeaseObserver) => {
    const engines = new Map<number, LeaseEngine>();
    for (let g = 0; g < groups; g++) {
      const group = { epoch: nextEpoch++, confirmedRound: 1, leading: true };
      engines.set(g, shape === "class" ? new ClassGroupEngine(node, group) : groupEngine(node, group));
    }
    return core.createShardedLeaseReader({ groups: engines, route: () => 0, ...(observer ? { observer } : {}) });
  };
  const one = shard(1);
  const single = one.reader(0);
  if (single.localRead() !== node.appliedRevision) throw new Error("bench setup: the single group does not hit");
  cases.push({ id: `sharded.localRead.1${tag}`, label: `reader(g).localRead(), one group engine, ${shape} engines (fill + one crossing)`, fn: () => do_not_optimize(single.localRead()) });
  for (const groups of SHARDED_GROUPS) {
    const sharded = shard(groups);
    const ids = Int32Array.from({ length: groups }, (_, i) => i);
    const out = new BigInt64Array(groups);
    if (sharded.localReadGroups(ids, out) !== groups) throw new Error(`bench setup: not every one of ${groups} groups hits`);
    cases.push({
      id: `sharded.batch.${groups}${tag}`,
      label: `localReadGroups(${groups} ids, out), ${shape} engines: one sample, ${Math.ceil(groups / 256)} crossing(s)`,
      fn: () => do_not_optimize(sharded.localReadGroups(ids, out)),
      per: groups,
    });
    if (groups === 1_000) {
      // The baseline a caller has without the batch: one localRead (one sample) per group.
      cases.push({
        id: `sharded.loop.${groups}${tag}`,
        label: `reader(g).localRead() for each of ${groups} groups, ${shape} engines (a sample per group)`,
        fn: () => {
          let hits = 0;
          for (let g = 0; g < groups; g++) if (sharded.reader(g).localRead() !== undefined) hits++;
          return do_not_optimize(hits);
        },
        per: groups,
      });
      // With a counting observer (what a metrics observer costs per hit).
      let hits = 0;
      const observed = shard(groups, { onHit: () => void hits++ });
      cases.push({
        id: `sharded.batchObserved.${groups}${tag}`,
        label: `localReadGroups(${groups} ids, out), ${shape} engines, with an observer counting onHit`,
        fn: () => do_not_optimize(observed.localReadGroups(ids, out)),
        per: groups,
      });
    }
  }
  return cases;
}
