// A simulated cluster: nodes (test/sim/node.ts), each with its own lease core on its own clock,
// a network with delay, loss, duplication, reordering, one-way partitions and per-node inbox
// queues whose delay is unbounded, clients whose every operation lands in a history, and the
// faults of issue 5. Deterministic from its seed: the only randomness is `prng`.
import { createLeaseCore, NotLeaderError } from "lease-core";
import { checkKvHistory, type KvCheckResult, type KvOp } from "lease-core/testing";
import { SimClock } from "./clock.js";
import { ALL_GUARDS, DEFAULT_TIMING, MS, SimNode, type Entry, type Guards, type Msg, type Timing } from "./node.js";
import { Prng } from "./prng.js";
import { World } from "./world.js";

export interface ClusterOptions {
  seed: number;
  /** Voters at start: ids 0..voters-1. */
  voters: number;
  /** Extra nodes that start as learners (config changes add them). */
  spares?: number;
  guards?: Partial<Guards>;
  timing?: Partial<Timing>;
  /** Per-node clock rate error in ppm (default: random within ±driftPpmMax/2). */
  ratePpm?: number[];
  net?: { delayMinNs?: number; delayMaxNs?: number; loss?: number; dup?: number };
  /** The simulator's own fidelity, on by default. Off only in the test that shows what a model
   *  without it got wrong (seed 784786: a crashed node's in-flight read answered from its
   *  restarted, empty state). */
  fidelity?: Partial<Fidelity>;
}

export interface Fidelity {
  /** A crash ends every request of the crashed incarnation: the client sees a reset, never an
   *  answer, and the dead incarnation's continuations never read the restarted node's state. */
  crashResets: boolean;
  /** A read runs at or past the fence index it is given (`leaseReadThen(fn)` passes `fn` the
   *  index; a node behind it, e.g. just restarted, waits for its state machine to catch up). */
  fence: boolean;
}

const TIMEOUT = Symbol("timeout");
const RESET = Symbol("reset");

/** What a client sees when the server process died under its request (ECONNRESET). */
export class ConnectionResetError extends Error {
  override name = "ConnectionResetError";
}

export class Cluster {
  readonly world = new World();
  readonly prng: Prng;
  readonly nodes: SimNode[] = [];
  readonly history: KvOp[] = [];
  readonly timing: Timing;
  readonly guards: Guards;
  readonly ids: number[];
  delayMinNs: number;
  delayMaxNs: number;
  loss: number;
  dup: number;
  /** Blocked directed links, "from>to". */
  readonly blocked = new Set<string>();
  /** Extra delay per directed link, "from>to". */
  readonly linkDelayNs = new Map<string, number>();
  /** Per-node inbox service time (a slow consumer: the queue grows without bound). */
  readonly serviceNs: number[] = [];
  readonly #busyUntil: number[] = [];
  /** The next read on this node stalls this long between check and read: the whole process
   *  (`process`, clock running), the machine (`suspend`, clock stopped), or only the reading
   *  thread (`thread`: the node's raft loop runs on, as TiKV's local reader beside raftstore). */
  readonly midReadPause = new Map<number, { ns: number; kind: "process" | "suspend" | "thread" }>();
  /** Drops matching messages at send (a scripted scenario's scalpel). */
  dropIf: ((m: Msg) => boolean) | undefined;
  readonly fidelity: Fidelity;
  readonly stats = { messages: 0, dropped: 0, reads: 0, localReads: 0, writes: 0, unknownWrites: 0, failedOps: 0, resets: 0, transfers: 0, configChanges: 0 };
  readonly #leaders = new Map<number, number>(); // term -> leader: election safety
  readonly #committed = new Map<number, Entry>(); // index -> entry: committed entries never change
  readonly violations: string[] = [];
  #opSeq = 0;

  private constructor(options: ClusterOptions) {
    this.prng = new Prng(options.seed);
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.guards = { ...ALL_GUARDS, ...options.guards };
    this.delayMinNs = options.net?.delayMinNs ?? 1 * MS;
    this.delayMaxNs = options.net?.delayMaxNs ?? 5 * MS;
    this.loss = options.net?.loss ?? 0;
    this.dup = options.net?.dup ?? 0;
    this.fidelity = { crashResets: true, fence: true, ...options.fidelity };
    this.ids = Array.from({ length: options.voters + (options.spares ?? 0) }, (_, i) => i);
  }

  static async create(options: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(options);
    const voters = c.ids.slice(0, options.voters);
    const half = c.timing.driftPpmMax / 2;
    for (const id of c.ids) {
      // Clock origins differ per node (docs/runtime-notes.md trap 1); rates within ±driftPpmMax/2 of true time.
      const clock = new SimClock(c.world, 1e12 + c.prng.int(0, 1e9) * 1000);
      clock.setRatePpm(options.ratePpm?.[id] ?? (c.prng.float() * 2 - 1) * half);
      const core = await createLeaseCore({ clock: clock.source(c.guards.suspendAware), maxLeases: 8, maxTrackers: 4 });
      const node = new SimNode({
        id, world: c.world, clock, core, timing: c.timing, guards: c.guards, config: { voters },
        net: { send: (m) => c.#send(m), ids: c.ids },
        random: () => c.prng.float(),
        onApply: (_n, index, entry) => c.#checkApply(index, entry),
        onLeader: (n, term) => c.#checkLeader(n, term),
      });
      c.nodes.push(node);
      c.serviceNs.push(0);
      c.#busyUntil.push(0);
      c.#scheduleTicks(node);
    }
    return c;
  }

  #checkLeader(node: number, term: number): void {
    const other = this.#leaders.get(term);
    if (other !== undefined && other !== node) this.violations.push(`election safety: ${other} and ${node} both lead term ${term}`);
    this.#leaders.set(term, node);
  }

  #checkApply(index: number, entry: Entry): void {
    const seen = this.#committed.get(index);
    if (seen === undefined) this.#committed.set(index, entry);
    else if (seen !== entry && (seen.term !== entry.term || seen.value !== entry.value)) this.violations.push(`state machine safety: index ${index} applied twice differently`);
  }

  #scheduleTicks(node: SimNode): void {
    const tick = () => {
      node.tick();
      this.world.after(this.timing.tickNs, tick);
    };
    this.world.after(this.prng.int(0, this.timing.tickNs), tick);
  }

  // ---- network ----
  #send(m: Msg): void {
    this.stats.messages++;
    const link = `${m.from}>${m.to}`;
    if (this.blocked.has(link) || this.dropIf?.(m) || this.prng.chance(this.loss)) {
      this.stats.dropped++;
      return;
    }
    const copies = this.prng.chance(this.dup) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.delayMinNs + this.prng.float() * (this.delayMaxNs - this.delayMinNs) + (this.linkDelayNs.get(link) ?? 0);
      this.world.after(delay, () => this.#arrive(m));
    }
  }

  /** Into the node's inbox: served one at a time, after any freeze, `serviceNs` each. */
  #arrive(m: Msg): void {
    const to = m.to;
    const node = this.nodes[to]!;
    if (node.down) return;
    const at = Math.max(this.world.now, this.#busyUntil[to]!, node.frozenUntil);
    this.#busyUntil[to] = at + this.serviceNs[to]!;
    this.world.schedule(at, () => this.#process(m));
  }

  #process(m: Msg): void {
    const node = this.nodes[m.to]!;
    if (node.down) return;
    if (node.frozenUntil > this.world.now) {
      this.world.schedule(node.frozenUntil, () => this.#process(m));
      return;
    }
    node.receive(m);
  }

  // ---- faults ----
  block(from: number, to: number): void {
    this.blocked.add(`${from}>${to}`);
  }
  unblock(from: number, to: number): void {
    this.blocked.delete(`${from}>${to}`);
  }
  /** Cuts every link between the two groups, both ways. */
  partition(a: readonly number[], b: readonly number[]): void {
    for (const x of a) for (const y of b) {
      this.block(x, y);
      this.block(y, x);
    }
  }
  heal(): void {
    this.blocked.clear();
    this.linkDelayNs.clear();
  }
  /** A process pause: the node runs nothing, its clock runs on. */
  pause(id: number, ns: number): void {
    const node = this.nodes[id]!;
    node.frozenUntil = Math.max(node.frozenUntil, this.world.now + ns);
  }
  /** A suspend: the node runs nothing and its raw clock stops; the sleep offset grows. */
  suspend(id: number, ns: number): void {
    const node = this.nodes[id]!;
    if (node.clock.suspended) return;
    node.clock.suspend();
    node.frozenUntil = Math.max(node.frozenUntil, this.world.now + ns);
    this.world.after(ns, () => node.clock.resume());
  }
  crash(id: number, downNs: number): void {
    const node = this.nodes[id]!;
    if (node.down) return;
    node.restart(); // drops volatile state (and leadership) now
    node.down = true;
    if (this.fidelity.crashResets) {
      node.endIncarnation(); // every request in the dead process ends: its clients see a reset
      this.world.kick();
    }
    this.world.after(downNs, () => {
      node.down = false;
      node.restart();
    });
  }

  /** The nodes that currently believe they lead. */
  leaders(): SimNode[] {
    return this.nodes.filter((n) => n.role === "leader" && !n.down);
  }

  // ---- clients ----
  /** A request reaches a paused or suspended server but is served only when it runs again. */
  async #whenRunning(node: SimNode): Promise<void> {
    while (node.frozenUntil > this.world.now) await this.world.sleep(node.frozenUntil - this.world.now);
    if (node.down) throw new NotLeaderError("connection refused");
  }

  /** Settles as `p`, or with TIMEOUT after `ns`, or with RESET if `node`'s incarnation ends
   *  first (its process crashed: the request dies with it, whatever it would have answered). */
  #answer<T>(node: SimNode, p: Promise<T>, ns: number): Promise<T | typeof TIMEOUT | typeof RESET> {
    const racers: Promise<T | typeof TIMEOUT | typeof RESET>[] = [p, this.world.sleep(ns).then((): typeof TIMEOUT => TIMEOUT)];
    if (this.fidelity.crashResets) racers.push(node.incarnationEnd.then((): typeof RESET => RESET));
    return Promise.race(racers);
  }

  /** Throws a reset when the request's incarnation (`incarnation`) is no longer the node's. */
  #alive(node: SimNode, incarnation: number): void {
    if (this.fidelity.crashResets && node.incarnation !== incarnation) throw new ConnectionResetError("the server crashed under the request");
  }

  async write(client: number, nodeId: number, key: string, value: string): Promise<void> {
    const node = this.nodes[nodeId]!;
    const callAt = this.world.now;
    let appended = false;
    this.world.kick();
    this.stats.writes++;
    try {
      await this.#whenRunning(node);
      const incarnation = node.incarnation;
      const result = await this.#answer(node, node.reader.dispatch(() => {
        this.#alive(node, incarnation);
        return node.propose(key, value, () => (appended = true));
      }), 400 * MS);
      if (result === TIMEOUT) throw new Error("timeout");
      if (result === RESET) throw new ConnectionResetError("the server crashed under the request");
      this.history.push({ client, kind: "write", key, value, callAt, returnAt: this.world.now, node: nodeId } as KvOp);
    } catch (err) {
      this.stats.failedOps++;
      if (err instanceof ConnectionResetError) this.stats.resets++;
      if (appended) {
        this.stats.unknownWrites++;
        this.history.push({ client, kind: "write", key, value, callAt, returnAt: Infinity });
      } else if (!(err instanceof NotLeaderError) && !(err instanceof Error)) {
        throw err;
      }
    }
  }

  async read(client: number, nodeId: number, key: string): Promise<void> {
    const node = this.nodes[nodeId]!;
    const callAt = this.world.now;
    this.world.kick();
    this.stats.reads++;
    let incarnation = node.incarnation;
    const midRead = async () => {
      const p = this.midReadPause.get(nodeId);
      if (p === undefined) return;
      this.midReadPause.delete(nodeId);
      if (p.kind === "suspend") this.suspend(nodeId, p.ns);
      else if (p.kind === "process") this.pause(nodeId, p.ns);
      await this.world.sleep(p.ns);
    };
    // The local read at fence `index`: never behind it (a restarted node waits for its state
    // machine to catch up, as etcd's ReadIndex waits for apply), and never in a dead process.
    const readAt = async (index: bigint, fenced: boolean) => {
      await midRead();
      this.#alive(node, incarnation);
      if (fenced && this.fidelity.fence) {
        while (BigInt(node.applied) < index) {
          await this.world.sleep(1 * MS);
          this.#alive(node, incarnation);
        }
      }
      return node.kv.get(key) ?? null;
    };
    try {
      await this.#whenRunning(node);
      incarnation = node.incarnation;
      node.stats.readsReached++;
      let value: string | null;
      // The control (`pauseSafe: false`) is TiKV #10011's reader: it checks the lease, then reads
      // whatever local state it finds, at no index (its replica may be destroyed meanwhile).
      const op = this.guards.pauseSafe ? node.reader.leaseReadThen((index) => readAt(index, true)) : node.reader.leaseRead().then((index) => readAt(index, false));
      const result = await this.#answer(node, op, 400 * MS);
      if (result === TIMEOUT) throw new Error("timeout");
      if (result === RESET) throw new ConnectionResetError("the server crashed under the request");
      value = result;
      this.history.push({ client, kind: "read", key, value, callAt, returnAt: this.world.now, node: nodeId, term: node.term, role: node.role, applied: node.applied, commit: node.commit, log: node.lastIndex, cfg: JSON.stringify(node.config) } as KvOp);
    } catch (err) {
      this.stats.failedOps++; // a read with no answer constrains nothing
      if (err instanceof ConnectionResetError) this.stats.resets++;
    }
  }

  /** A fresh value for a write (values are unique, so the checker's search stays small). */
  nextValue(client: number): string {
    return `c${client}#${++this.#opSeq}`;
  }

  /** Runs the world until true time `untilNs`. */
  run(untilNs: number): Promise<void> {
    return this.world.run(untilNs);
  }

  check(): KvCheckResult {
    return checkKvHistory(this.history);
  }
}
