/**
 * The demo's faults: one registry of fault kinds (the dashboard's buttons, chaos mode and the
 * bounded CI run all inject from it), a log of what was injected when, and chaos mode, which
 * injects a random available kind every N seconds, one fault at a time, forever.
 *
 * Adding a kind (the nemesis's TCP proxy faults, KV clock faults...): append a `FaultKind` to
 * FAULT_KINDS with an `available` test (what this host or this run needs) and an `inject` that
 * starts the fault and says when it heals; the dashboard shows a button for it and chaos mode
 * draws it, with no other change.
 * @module
 */
import { canIsolate } from "./cluster.js";
import type { Demo, RecordedOp } from "./harness.js";

export interface FaultKind {
  id: string;
  /** The button's label. */
  label: string;
  available(demo: Demo): boolean;
  /** Starts the fault (and schedules its healing). Throws when it cannot apply now (no leader). */
  inject(demo: Demo): Promise<InjectedFault>;
}

export interface InjectedFault {
  target: string;
  /** When the fault is healed (ms from injection; 0: instantaneous, e.g. a kill that restarts). */
  healsInMs: number;
  /** The KV instance whose leadership the fault takes away: the log measures failover from it. */
  displacedInstance?: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const PAUSE_MS = 3000;
const CUT_MS = 4000;

async function kvLeader(demo: Demo): Promise<number> {
  const i = await demo.leaderIndex();
  if (i < 0) throw new Error("no KV leader now");
  return i;
}

async function etcdLeader(demo: Demo): Promise<number> {
  const i = await demo.cluster.leaderIndex();
  if (i < 0) throw new Error("no etcd leader now");
  return i;
}

export const FAULT_KINDS: FaultKind[] = [
  {
    id: "pause-leader",
    label: `Pause the leader (SIGSTOP ${PAUSE_MS / 1000} s)`,
    available: () => true,
    async inject(demo) {
      const i = await kvLeader(demo);
      const id = demo.services[i]!.id;
      demo.pauseService(i);
      setTimeout(() => demo.resumeService(i), PAUSE_MS);
      return { target: id, healsInMs: PAUSE_MS, displacedInstance: id };
    },
  },
  {
    id: "kill-leader",
    label: "Kill the leader",
    available: () => true,
    async inject(demo) {
      const i = await kvLeader(demo);
      const id = demo.services[i]!.id;
      demo.killService(i);
      setTimeout(() => void demo.spawnService(i).catch(() => undefined), 1500);
      return { target: id, healsInMs: 1500, displacedInstance: id };
    },
  },
  {
    id: "cut-leader-from-etcd",
    label: `Cut the leader off from etcd (${CUT_MS / 1000} s)`,
    // iptables by the instance's own uid (Demo.cutFromEtcd): root and iptables.
    available: (demo) => canIsolate() && demo.services.every((s) => s.uid !== undefined),
    async inject(demo) {
      const i = await kvLeader(demo);
      const id = demo.services[i]!.id;
      demo.cutFromEtcd(i);
      setTimeout(() => demo.cluster.heal(), CUT_MS);
      return { target: id, healsInMs: CUT_MS, displacedInstance: id };
    },
  },
  {
    id: "pause-etcd-leader",
    label: `Pause the etcd leader (SIGSTOP ${PAUSE_MS / 1000} s)`,
    available: () => true,
    async inject(demo) {
      const i = await etcdLeader(demo);
      demo.cluster.pause(i);
      setTimeout(() => demo.cluster.resume(i), PAUSE_MS);
      return { target: demo.cluster.members[i]!.name, healsInMs: PAUSE_MS };
    },
  },
  {
    id: "kill-etcd-leader",
    label: "Kill the etcd leader",
    available: () => true,
    async inject(demo) {
      const i = await etcdLeader(demo);
      demo.cluster.kill(i);
      setTimeout(() => demo.cluster.restart(i), 3000);
      return { target: demo.cluster.members[i]!.name, healsInMs: 3000 };
    },
  },
  {
    id: "isolate-etcd-leader",
    label: "Isolate the etcd leader (4 s)",
    available: () => canIsolate(),
    async inject(demo) {
      const i = await etcdLeader(demo);
      demo.cluster.isolate(i);
      setTimeout(() => demo.cluster.heal(), 4000);
      return { target: demo.cluster.members[i]!.name, healsInMs: 4000 };
    },
  },
  // The nemesis's kinds go here (demo/proxy.ts's per-link delay/stall/cut between an instance
  // and etcd, EtcdCluster.slowDisk, the KV service's clock faults), each with an `available`
  // that checks the run was started with what it needs (the proxy in the path, KV_CLOCK_FAULTS).
];

/** One injected (or refused) fault, with its own time. */
export interface FaultRecord {
  seq: number;
  kind: string;
  source: "button" | "chaos" | "bounded-run";
  /** Wall clock (Date.now()) and this process's performance.now() at injection. */
  atWallMs: number;
  atMs: number;
  target: string;
  healsAtWallMs: number | undefined;
  /** For a fault that displaces the KV leader: ms until another instance acknowledged a write. */
  failoverMs: number | undefined;
  /** Why it was not injected (no leader at that moment...). */
  error: string | undefined;
}

const LOG_KEEP = 500;

/** Injects faults by kind and keeps their log (the last LOG_KEEP records plus counts per kind). */
export class FaultInjector {
  readonly demo: Demo;
  readonly kinds: FaultKind[];
  readonly log: FaultRecord[] = [];
  readonly counts: Record<string, { injected: number; refused: number }> = {};
  #seq = 0;
  readonly #watches = new Set<{ record: FaultRecord; displaced: string; deadlineMs: number }>();

  constructor(demo: Demo, kinds: FaultKind[] = FAULT_KINDS) {
    this.demo = demo;
    this.kinds = kinds;
    for (const k of kinds) this.counts[k.id] = { injected: 0, refused: 0 };
    demo.opListeners.add((op) => this.#onOp(op));
  }

  available(): FaultKind[] {
    return this.kinds.filter((k) => k.available(this.demo));
  }

  get injected(): number {
    return Object.values(this.counts).reduce((n, c) => n + c.injected, 0);
  }

  /** Injects `kind`; the record says whether it applied (error) and when. Never throws for a
   *  fault that cannot apply now; throws for an unknown or unavailable kind. */
  async inject(kindId: string, source: FaultRecord["source"]): Promise<FaultRecord> {
    const kind = this.kinds.find((k) => k.id === kindId);
    if (kind === undefined) throw new Error(`unknown fault ${JSON.stringify(kindId)}`);
    if (!kind.available(this.demo)) throw new Error(`fault ${kindId} is not available on this host`);
    const record: FaultRecord = { seq: ++this.#seq, kind: kindId, source, atWallMs: Date.now(), atMs: performance.now(), target: "", healsAtWallMs: undefined, failoverMs: undefined, error: undefined };
    try {
      const r = await kind.inject(this.demo);
      record.target = r.target;
      record.healsAtWallMs = record.atWallMs + r.healsInMs;
      if (r.displacedInstance !== undefined) this.#watches.add({ record, displaced: r.displacedInstance, deadlineMs: record.atMs + 30_000 });
      this.counts[kindId]!.injected++;
    } catch (err) {
      record.error = (err as Error).message;
      this.counts[kindId]!.refused++;
    }
    this.log.push(record);
    if (this.log.length > LOG_KEEP) this.log.shift();
    return record;
  }

  /** Failover: the first write called after the fault, acknowledged by another instance. */
  #onOp(op: RecordedOp): void {
    if (this.#watches.size === 0 || op.kind !== "write" || op.returnAt === Infinity) return;
    for (const w of this.#watches) {
      if (op.returnAt > w.deadlineMs) this.#watches.delete(w);
      else if (op.callAt >= w.record.atMs && op.servedBy !== null && op.servedBy !== w.displaced) {
        w.record.failoverMs = op.returnAt - w.record.atMs;
        this.#watches.delete(w);
      }
    }
  }
}

/** Chaos mode: a random available fault every `intervalMs`, one at a time (the next one waits
 *  until the previous has healed and 2 s more have passed), until stop(). */
export class Chaos {
  readonly injector: FaultInjector;
  intervalMs: number;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(injector: FaultInjector, intervalMs: number) {
    if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) throw new RangeError(`chaos interval must be a positive number of ms, got ${intervalMs}`);
    this.injector = injector;
    this.intervalMs = intervalMs;
  }

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let nextAtMs = performance.now() + this.intervalMs;
    while (this.#running) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, nextAtMs - performance.now()));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (!this.#running) return;
      const kinds = this.injector.available();
      const kind = kinds[Math.floor(Math.random() * kinds.length)]!;
      const record = await this.injector.inject(kind.id, "chaos");
      const healsInMs = record.healsAtWallMs === undefined ? 0 : record.healsAtWallMs - record.atWallMs;
      nextAtMs = performance.now() + Math.max(this.intervalMs, healsInMs + 2000);
      if (record.error !== undefined) nextAtMs = performance.now() + 1000; // no leader now: retry soon
    }
  }
}

