/**
 * The nemesis: randomized faults against the real etcd engine, Jepsen-style, and a checker on
 * the recorded history. `npm run nemesis -- --runs N --seed S [--duration-s D] [--unsafe names] [--faults kinds] [--groups G]`.
 *
 * Each run starts a 3-member etcd on loopback (demo/cluster.ts: random ports, a fresh data dir,
 * members as their own uids), a fault-injecting TCP proxy (demo/proxy.ts) between every KV process
 * and every member, and 3 KV service processes (demo/kv-service.ts over `lease-core/etcd`, with
 * their lease clock behind a FaultClock, demo/fault-clock.ts). Clients send reads (some forced
 * linearizable), writes and compare-and-sets, and record each with its outcome: ok, failed (had no
 * effect), or unknown (timed out: it may take effect at any time after its call, or never).
 *
 * Faults come from a schedule drawn from the run's seed alone (so `--seed S --runs 1` replays
 * it; what the system does in between is timing, not seed), several at once, of every kind:
 *   kv-pause, kv-kill (-9, restarted), kv-restart (graceful: SIGTERM, then a new process),
 *   etcd-kill (restarted), etcd-pause, etcd-isolate (iptables), slow-disk (strace delaying the
 *   etcd leader's fdatasync while its lease timers run), link (one KV process's traffic to one
 *   member delayed, stalled or cut, one direction), clock (step-back, jump-forward, freeze,
 *   suspend inside one KV process), resign (the KV leader closes and rejoins),
 * and three scenarios that compose them the way the review's findings need (a lagging watch and a
 * failover; a close() with reads in flight behind a lagging watch; a clock step back on a leader
 * cut from etcd). A target named "leader" is resolved when the fault starts.
 *
 * With `--groups G` the KV processes are multi-group nodes (demo/kv-groups.ts over lease-core/etcd's
 * `EtcdGroupNode`, docs/etcd.md "Many groups on one lease"): each leads some of G shard groups on
 * one etcd lease, answers only for keys of groups it serves and redirects the rest (503 naming
 * the group's leader; the clients keep a hint per key and follow it). Clients then spread over
 * 24 keys (many groups). Every kind above applies ("leader": the process serving the most
 * groups; resign: a clean leave and rejoin), plus node-join (a 4th process starts, groups
 * rebalance to it), node-leave (kv-3 or another leaves cleanly or crashes) and group-key-delete
 * (an outside client deletes one group key of a node while that node's watch is held back; the
 * next-ranked node takes the group after its fallback delay, and reads aimed at the old holder
 * must not be served from its table).
 *
 * A run ends by healing everything, waiting for an etcd and a KV leader, writing every key (writes
 * must make progress after healing), reading every key linearizably, and checking: the history is
 * linearizable per key, no acknowledged write is lost. On a failure it prints the seed, the fault
 * timeline and the minimal failing history of the key. Nothing is left behind: processes, proxies,
 * iptables rules, strace and data dirs are removed at the end of each run and on SIGINT/SIGTERM.
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Etcd3 } from "etcd3";
import { groupOfKey } from "../host/etcd/index.js"; // → lease-core/etcd when bundled
import { rendezvousOwner } from "../host/etcd/groups/assign.js"; // pure (bundled in): which live node owns a group
import { checkKvHistory, type KvOp as CheckerOp } from "../host/testing/index.js"; // → lease-core/testing when bundled
import { canIsolate, canSlowDisk, startEtcdCluster, type EtcdCluster, type SlowDiskScope } from "./cluster.js";
import type { ClockFaultKind } from "./fault-clock.js";
import { FaultProxy, type LinkFault, type ProxyDirection } from "./proxy.js";

// ---- the seeded schedule -----------------------------------------------------------------

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; one per run, from the run's seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Run i's seed: the batch seed itself for run 0 (so `--seed S --runs 1` replays it). */
export function runSeed(seed: number, i: number): number {
  if (i === 0) return seed >>> 0;
  let h = (seed ^ Math.imul(i, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export type FaultKind =
  | "kv-pause" | "kv-kill" | "kv-restart" | "resign"
  | "etcd-kill" | "etcd-pause" | "etcd-isolate" | "slow-disk"
  | "link" | "clock"
  | "lagging-failover" | "lagging-close" | "clock-step-cut"
  | "node-join" | "node-leave" | "group-key-delete";
export const FAULT_KINDS: readonly FaultKind[] = [
  "kv-pause", "kv-kill", "kv-restart", "resign", "etcd-kill", "etcd-pause", "etcd-isolate", "slow-disk", "link", "clock", "lagging-failover", "lagging-close", "clock-step-cut",
];
const WEIGHTS: Record<FaultKind, number> = {
  "kv-pause": 3, "kv-kill": 2, "kv-restart": 2, resign: 2, "etcd-kill": 2, "etcd-pause": 2, "etcd-isolate": 2, "slow-disk": 2, link: 6, clock: 4,
  "lagging-failover": 3, "lagging-close": 3, "clock-step-cut": 3,
  "node-join": 3, "node-leave": 3, "group-key-delete": 4,
};
/** The kinds only a sharded run (`--groups G`: multi-group nodes, docs/etcd.md "Many groups on
 *  one lease") draws: a 4th KV process joining (groups rebalance to it), a process leaving
 *  cleanly (handoff) or crashing (its groups wait for its lease), and a group key deleted by an
 *  outside client while its leader's watch is held back. */
export const GROUP_FAULT_KINDS: readonly FaultKind[] = ["node-join", "node-leave", "group-key-delete"];
/** Every kind, in draw order: the unsharded kinds first, so their seeds' schedules are unchanged. */
export const ALL_FAULT_KINDS: readonly FaultKind[] = [...FAULT_KINDS, ...GROUP_FAULT_KINDS];

/** A KV process or etcd member by index, or whichever leads when the fault starts. */
export type Target = number | "leader";

export interface PlannedFault {
  atMs: number;
  durMs: number;
  kind: FaultKind;
  kv?: Target;
  member?: Target;
  direction?: ProxyDirection;
  link?: LinkFault;
  clock?: ClockFaultKind;
  ms?: number;
  /** slow-disk: every sync of the member, or only its WAL's (raft stalls, gRPC and the lessor run on). */
  scope?: SlowDiskScope;
  /** node-leave: a clean close (every group handed off) or a crash (SIGKILL: its lease expires). */
  leave?: "clean" | "crash";
  /** group-key-delete: the same outside txn also deletes the holder's membership key
   *  `<prefix>/n/<id>`, so the others count it dead and the group's rendezvous owner among them
   *  campaigns at once (without it, only the liveness fallback of the next-ranked node does,
   *  which the engine does not have yet: 3 draws in 4 delete the membership key too). */
  withMembership?: boolean;
}

/** Checks a `--faults` list: known kinds, no repeats, at least one. */
export function parseFaultKinds(list: string): FaultKind[] {
  const kinds = list.split(",").map((k) => k.trim()).filter((k) => k.length > 0);
  if (kinds.length === 0) throw new Error("--faults: name at least one fault kind");
  for (const k of kinds) if (!(ALL_FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`--faults: unknown fault kind ${JSON.stringify(k)} (known: ${ALL_FAULT_KINDS.join(", ")})`);
  if (new Set(kinds).size !== kinds.length) throw new Error(`--faults: a kind is named twice in ${list}`);
  return kinds as FaultKind[];
}

/**
 * The run's schedule: a pure function of (seed, duration, kinds). `kinds` (`--faults`) restricts
 * the draws to some kinds, to aim a run at one finding (the negative controls do); by default
 * every kind is drawn, by its weight, and a seed's schedule is the same as before the option.
 */
export function planSchedule(seed: number, durationS: number, kinds: readonly FaultKind[] = FAULT_KINDS): PlannedFault[] {
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const target = (): Target => (r() < 0.5 ? "leader" : int(0, 2));
  const drawn = ALL_FAULT_KINDS.filter((k) => kinds.includes(k));
  if (drawn.length === 0) throw new Error("planSchedule: no fault kind to draw");
  const total = drawn.reduce((s, k) => s + WEIGHTS[k], 0);
  const kindOf = () => {
    let x = r() * total;
    for (const k of drawn) if ((x -= WEIGHTS[k]) < 0) return k;
    return drawn[drawn.length - 1]!;
  };
  const out: PlannedFault[] = [];
  const endMs = durationS * 1000 - 500;
  for (let at = int(800, 1500); at < endMs; at += int(300, 1600)) {
    const kind = kindOf();
    const f: PlannedFault = { atMs: at, durMs: Math.min(int(400, 3500), Math.max(100, endMs - at)), kind };
    switch (kind) {
      case "kv-pause": case "kv-kill": case "kv-restart": f.kv = target(); break;
      case "resign": f.kv = "leader"; break;
      case "etcd-kill": case "etcd-pause": case "etcd-isolate": f.member = target(); break;
      case "slow-disk": f.member = "leader"; f.ms = int(50, 800); f.scope = r() < 0.5 ? "wal" : "all"; break;
      case "link": {
        f.kv = target();
        f.member = int(0, 2);
        f.direction = r() < 0.5 ? "up" : "down";
        const k = pick(["delay", "delay", "stall", "cut"] as const);
        f.link = k === "delay" ? { kind: "delay", delayMs: int(20, 3000) } : { kind: k };
        break;
      }
      case "clock": {
        f.kv = target();
        f.clock = pick(["step-back", "jump-forward", "freeze", "suspend"] as const);
        f.ms = f.clock === "freeze" ? int(50, 400) : f.clock === "suspend" ? int(100, 3000) : int(100, 3000);
        break;
      }
      case "lagging-failover": f.member = int(0, 1); f.ms = int(2800, 4500); f.durMs = Math.max(f.durMs, f.ms + 2500); break;
      case "lagging-close": f.ms = int(6000, 7500); f.durMs = f.ms + int(3000, 4500); break;
      case "clock-step-cut": f.ms = int(4500, 6500); f.durMs = f.ms + 3000; break;
      // The 4th process (kv-3) joins; it stays until a node-leave takes it (or the run ends).
      case "node-join": break;
      // kv-3 when it is up (else the target), back after durMs (kv-3 only at the next join).
      case "node-leave": f.kv = r() < 0.4 ? 3 : target(); f.leave = r() < 0.5 ? "clean" : "crash"; f.durMs = int(2500, 6000); break;
      // The watch held back longer than the next-ranked node's fallback (rank × TTL, addendum of
      // docs/etcd.md "Many groups on one lease") plus writes there: f.ms is the watch's lag.
      case "group-key-delete": f.kv = target(); f.ms = int(6500, 8500); f.durMs = f.ms + 2500; f.withMembership = r() < 0.75; break;
    }
    out.push(f);
  }
  return out;
}

// ---- history and checking ----------------------------------------------------------------

/** One recorded operation (ms on this process's performance.now(); returnAt Infinity = unknown). */
export interface NemesisOp {
  client: number;
  key: string;
  kind: "read" | "write" | "cas";
  /** read: the value seen (null = absent); write, cas: the value written. */
  value: string | null;
  /** cas: the value it required (null = absent). */
  expected?: string | null;
  /** cas: whether it applied (undefined when unknown). */
  ok?: boolean;
  /** cas that did not apply: the value it found instead. */
  found?: string | null;
  callAt: number;
  returnAt: number;
  by: string;
  /** read: where the service answered from (`local` under its lease, or `etcd`). */
  served?: "local" | "etcd";
}

/** One operation as lease-core/testing's `checkKvHistory` takes it, with the recorded one it came from. */
export type CheckedOp = CheckerOp & { from: NemesisOp };

/**
 * The history as `checkKvHistory` (lease-core/testing) takes it: reads, writes and cas as they
 * are; a cas that did not apply also says what it found (the service found it at one instant
 * inside the call: its read, or its txn's), so it adds a read of that value over the same
 * interval, which admits every order the cas alone does.
 */
export function toCheckerHistory(history: readonly NemesisOp[]): CheckedOp[] {
  const out: CheckedOp[] = [];
  for (const op of history) {
    const base = { client: op.client, key: op.key, callAt: op.callAt, returnAt: op.returnAt, from: op };
    if (op.kind === "read") out.push({ ...base, kind: "read", value: op.value });
    else if (op.kind === "write") out.push({ ...base, kind: "write", value: op.value });
    else {
      out.push({ ...base, kind: "cas", value: op.value, expected: op.expected ?? null, ...(op.ok === undefined ? {} : { ok: op.ok }) });
      if (op.ok === false) out.push({ ...base, kind: "read", value: op.found ?? null });
    }
  }
  return out;
}

export type Verdict = { ok: true } | { ok: false; why: string; key?: string; minimal?: CheckedOp[] } | { ok: "unknown"; why: string };

/** No acknowledged write lost: each key's final linearizable read must come from a write that
 *  no acknowledged write followed in real time (a write entirely after it would have replaced it). */
export function lostWrites(history: readonly NemesisOp[], finals: ReadonlyMap<string, NemesisOp>): string[] {
  const problems: string[] = [];
  for (const [key, final] of finals) {
    const writes = history.filter((o) => o.key === key && (o.kind === "write" || o.kind === "cas") && o.ok !== false);
    const acked = writes.filter((o) => o.returnAt !== Infinity && o.returnAt <= final.callAt);
    const source = final.value === null ? undefined : writes.find((o) => o.value === final.value);
    if (final.value !== null && source === undefined) {
      problems.push(`${key}: final value ${final.value} was never written`);
      continue;
    }
    const after = acked.filter((o) => o !== source && (source === undefined || source.returnAt < o.callAt));
    if (after.length > 0) problems.push(`${key}: final value ${String(final.value)} lost ${after.length} acknowledged write(s), e.g. ${after[after.length - 1]!.value} acked at ${after[after.length - 1]!.returnAt.toFixed(1)} ms`);
  }
  return problems;
}

export function checkHistory(history: readonly NemesisOp[], maxStates = 1_000_000): Verdict {
  const r = checkKvHistory(toCheckerHistory(history), { maxStates });
  if (r.ok === true) return { ok: true };
  if (r.ok === "unknown") return { ok: "unknown", why: r.reason };
  return { ok: false, why: "not linearizable", key: r.key, minimal: r.minimal };
}

// ---- the processes ---------------------------------------------------------------------------

const here = dirname(fileURLToPath(import.meta.url));
const root = existsSync(join(here, "..", "package.json")) && existsSync(join(here, "..", "build")) ? join(here, "..") : join(here, "..", "..");
export const SERVICE_JS = join(root, "build", "demo", "kv-service.js");
export const UNSAFE_SERVICE_JS = join(root, "build", "unsafe", "kv-service.js");

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Kv {
  index: number;
  id: string;
  child: ChildProcess | undefined;
  port: number;
  state: "up" | "paused" | "down";
  busy: boolean;
}

/** Every child and resource of the runs in progress, for the signal handlers. */
const live = new Set<() => Promise<void>>();
let handlersInstalled = false;
function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  let cleaning = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    // A second Ctrl-C while cleaning up is ignored: exiting then would leave the rest behind.
    process.on(sig, () => {
      if (cleaning) return;
      cleaning = true;
      process.stderr.write(`\nnemesis: ${sig}: cleaning up\n`);
      void Promise.all([...live].map((c) => c().catch(() => undefined))).finally(() => process.exit(130));
    });
  }
}

export interface NemesisOptions {
  runs?: number;
  seed?: number;
  durationS?: number;
  /** LEASE_CORE_UNSAFE names: the KV processes run the test build build/unsafe/kv-service.js. */
  unsafe?: string;
  clients?: number;
  keys?: number;
  /** Where lines go (default stdout). */
  log?: (line: string) => void;
  /** Stop at the first failing run (default true). */
  stopOnFailure?: boolean;
  /** Print every run's fault timeline, not only a failing one's. */
  verbose?: boolean;
  /** Draw only these fault kinds (`--faults`; default: every kind the mode has). */
  faults?: readonly FaultKind[];
  /** `--groups G`: multi-group KV nodes (KV_GROUPS=G, demo/kv-groups.ts) over G shard groups; 0
   *  (default): the single-leader engine. Adds the kinds of GROUP_FAULT_KINDS. */
  groups?: number;
}

type RunOptions = Required<Omit<NemesisOptions, "unsafe" | "log" | "stopOnFailure" | "verbose" | "faults">> & { unsafe: string; faults: readonly FaultKind[] };

/** Zero-padded group id, as in the group key `<prefix>/g/<5 digits>` (docs/etcd.md). */
const gid5 = (g: number) => String(g).padStart(5, "0");

export interface RunReport {
  run: number;
  seed: number;
  verdict: Verdict;
  faults: Partial<Record<FaultKind | "skipped", number>>;
  ops: { total: number; read: number; write: number; cas: number; unknown: number; timeouts: number };
  wallMs: number;
  timeline: string[];
  /** The run's etcd data dir (removed at its end). */
  dataDir: string | undefined;
  /** The instant (performance.now(), ms) the timeline and the printed history count from. */
  t0Ms: number;
  /** How long the check took. */
  checkMs: number;
  /** The services' 500 answers by message. */
  errors: Map<string, number>;
  /** Every recorded operation (for a failing run: written to a file, for a closer look). */
  history: NemesisOp[];
}

class Run {
  readonly kvs: Kv[] = [];
  readonly proxies: FaultProxy[][] = []; // [kv][member]
  readonly history: NemesisOp[] = [];
  readonly timeline: string[] = [];
  readonly faults: Partial<Record<FaultKind | "skipped", number>> = {};
  readonly prefix: string;
  readonly t0 = performance.now();
  cluster: EtcdCluster | undefined;
  leaderHint = -1;
  etcdLeader = -1;
  memberBusy = [false, false, false];
  /** Links with a fault on, and which fault owns each. */
  linkBusy = new Map<string, symbol>();
  isolated = new Set<number>();
  slowHeals = new Map<number, () => Promise<void>>();
  pending = new Set<Promise<void>>();
  timers = new Set<ReturnType<typeof setTimeout>>();
  undo: (() => Promise<void> | void)[] = [];
  running = true;
  /** Clients whose last call timed out; calls that timed out, in all. */
  timedOut = new Set<number>();
  timeouts = 0;
  /** 500 answers by message (digits folded), for the report. */
  errors = new Map<string, number>();
  /** Sharded mode: per key, the process that last answered for it or was named by a redirect. */
  keyHint = new Map<string, number>();
  /** group-key-delete: the process no write or cas goes to until `untilMs`. The group's writes
   *  come through the node that takes it over, as from a client whose routing learnt of the
   *  change: a write to the old holder would end its tenure through the write fence (a guard of
   *  its own) before the confirmation round the fault is aimed at is reached. And none of the
   *  old holder's other groups is written there meanwhile: a write whose answer comes back late
   *  on the held link would aim the run at another window (an own write committed but not yet
   *  applied, see the report of issue 17), not at this one. */
  writeAway: { not: number; untilMs: number } | undefined;
  /** A group-key-delete in progress: one at a time (the next holder's own watch must not lag,
   *  or its catch-up waits out the other's lag and the two never serve at once). */
  keyDeleteOn = false;
  /** Processes that left (node-leave of kv-3) and stay out: heal does not bring them back. */
  left = new Set<number>();
  /** An etcd client straight to the members (no proxy): the outside client of group-key-delete. */
  admin: Etcd3 | undefined;
  #seq = 0;
  #cleaned: Promise<void> | undefined;

  get sharded(): boolean {
    return this.opts.groups > 0;
  }

  constructor(readonly seed: number, readonly opts: RunOptions) {
    this.prefix = `/nemesis-${process.pid}-${seed.toString(16)}`;
  }

  at(): string {
    return `${((performance.now() - this.t0) / 1000).toFixed(2).padStart(6)}s`;
  }
  note(line: string): void {
    this.timeline.push(`${this.at()} ${line}`);
  }

  async start(): Promise<void> {
    this.cluster = await startEtcdCluster({ size: 3 });
    // Sharded: a 4th row of proxies for the process that joins (kv-3).
    for (let i = 0; i < (this.sharded ? 4 : 3); i++) {
      this.proxies.push(await Promise.all(this.cluster.members.map((m) => FaultProxy.start(m.clientPort))));
    }
    if (this.sharded) this.admin = new Etcd3({ hosts: this.cluster.clientEndpoints });
    await Promise.all([0, 1, 2].map((i) => this.respawn(i)));
    await this.waitKvLeader(20_000);
  }

  async spawnKv(index: number): Promise<void> {
    const id = `kv-${index}`;
    const script = this.opts.unsafe ? UNSAFE_SERVICE_JS : SERVICE_JS;
    const child = spawn(process.execPath, [script], {
      stdio: ["pipe", "pipe", "pipe"],
      env: {
        ...process.env,
        KV_ID: id,
        KV_ENDPOINTS: this.proxies[index]!.map((p) => `127.0.0.1:${p.port}`).join(","),
        KV_PREFIX: this.prefix,
        KV_TTL_S: "2",
        KV_ETCD_ELECTION_MS: String(this.cluster!.electionTimeoutMs),
        KV_CLOCK_FAULTS: "1",
        KV_LOG_EVENTS: "1",
        KV_GROUPS: String(this.opts.groups),
        LEASE_CORE_UNSAFE: this.opts.unsafe,
      },
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    // The node's leadership events go into the timeline (KV_LOG_EVENTS: "<id> <reason> <detail>").
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (this.sharded) return this.groupEvent(line);
      const m = /^(kv-\d) (elected|own-key-deleted|own-key-overwritten|key-missing|etcd-lease-expired|fence-failed|term-mismatch|closed)\b(.*)$/.exec(line);
      if (m !== null) this.note(`  [${m[1]} ${m[2]}${m[3]!.slice(0, 60)}]`);
    });
    const kv: Kv = this.kvs[index] ?? { index, id, child, port: 0, state: "down", busy: false };
    kv.child = child;
    this.kvs[index] = kv;
    child.once("exit", () => {
      if (kv.child === child) {
        kv.child = undefined;
        kv.state = "down";
      }
    });
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      const timer = setTimeout(() => reject(new Error(`${id}: not ready in 20 s`)), 20_000);
      lines.once("line", (line) => {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      });
      child.once("exit", (code, sig) => {
        clearTimeout(timer);
        const why = stderr.split("\n").find((l) => /Error|error:/.test(l)) ?? stderr.trim().split("\n").slice(-1)[0] ?? "";
        reject(new Error(`${id} exited (${code ?? sig}) before it was ready: ${why.trim()}`));
      });
    });
    if (kv.child === child) {
      kv.port = port;
      kv.state = "up";
    }
  }

  /** When each (process, reason) node-wide event was last noted. */
  #lastNodeEvent = new Map<string, number>();
  /** Per-group events waiting to be noted as one line per (process, reason). */
  #groupEvents = new Map<string, number[]>();

  /** Sharded: a group node's event line (KV_LOG_EVENTS) into the timeline. The per-group ones
   *  ("<reason> group <g> ...") are gathered for 150 ms into one line per process and reason (a
   *  node's lease expiring loses all its groups at once); node-wide ones are noted as they are. */
  groupEvent(line: string): void {
    const m = /^(kv-\d) ([a-z][a-z-]*)\b(.*)$/.exec(line);
    if (m === null || /^(campaign|won|renew|round|handoff)/.test(m[2]!)) return;
    const g = /^ group (\d+)/.exec(m[3]!);
    if (g === null) {
      // A node-wide event: at most one line a second per process and reason (a stepped clock
      // reports a fault at every reading).
      const key = `${m[1]} ${m[2]}`;
      const now = performance.now();
      if (now - (this.#lastNodeEvent.get(key) ?? -Infinity) < 1000) return;
      this.#lastNodeEvent.set(key, now);
      return this.note(`  [${m[1]} ${m[2]}${m[3]!.slice(0, 80)}]`);
    }
    const key = `${m[1]} ${m[2]}`;
    const ids = this.#groupEvents.get(key);
    if (ids !== undefined) {
      ids.push(Number(g[1]));
      return;
    }
    this.#groupEvents.set(key, [Number(g[1])]);
    const detail = m[3]!.replace(/^ group \d+( epoch \d+)?:? ?/, "").slice(0, 60);
    const t = setTimeout(() => {
      this.timers.delete(t);
      const all = this.#groupEvents.get(key) ?? [];
      this.#groupEvents.delete(key);
      this.note(`  [${key} ${all.length === 1 ? "group" : `${all.length} groups`} ${all.slice(0, 16).join(",")}${all.length > 16 ? ",..." : ""}${detail ? `: ${detail}` : ""}]`);
    }, 150);
    this.timers.add(t);
  }

  /** Restarts a KV process; a start can fail while etcd is unreachable (the node's first
   *  calls time out and it exits), so it is retried. */
  async respawn(index: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawnKv(index);
        return;
      } catch (err) {
        if (attempt >= 8 || !this.running) throw err;
        this.note(`kv-${index} start failed (${(err as Error).message}); retrying`);
        await sleep(500);
      }
    }
  }

  killKv(kv: Kv): void {
    const c = kv.child;
    if (c === undefined) return;
    if (kv.state === "paused") c.kill("SIGCONT");
    c.kill("SIGKILL");
    kv.child = undefined;
    kv.state = "down";
  }

  async stopKvGracefully(kv: Kv): Promise<void> {
    const c = kv.child;
    if (c === undefined) return;
    if (kv.state === "paused") c.kill("SIGCONT");
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGTERM");
    await Promise.race([exited, sleep(4000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await exited;
  }

  async http(kv: Kv, path: string, method: "GET" | "POST", timeoutMs: number): Promise<{ status: number; body: Record<string, unknown> } | { error: "refused" | "timeout" | "other" }> {
    try {
      // AbortSignal.timeout takes whole ms: a fractional one throws a RangeError before anything
      // is sent (the scenarios' aimed reads, timed to the end of their window, once all did).
      const res = await fetch(`http://127.0.0.1:${kv.port}${path}`, { method, signal: AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs))) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      if (code === "ECONNREFUSED") return { error: "refused" };
      if ((err as Error).name === "TimeoutError") return { error: "timeout" };
      return { error: "other" };
    }
  }

  /** The KV processes that say they lead (by their own status); sharded: those serving any
   *  group, the one serving the most first. */
  async kvLeaders(): Promise<number[]> {
    const out: { i: number; serving: number }[] = [];
    await Promise.all(
      this.kvs.map(async (kv) => {
        if (kv.state !== "up") return;
        const r = await this.http(kv, "/status", "GET", 300);
        if ("status" in r && r.body.state === "leader") out.push({ i: kv.index, serving: Number(r.body.serving ?? 1) });
      }),
    );
    return out.sort((a, b) => b.serving - a.serving || a.i - b.i).map((x) => x.i);
  }

  /** Sharded: how many groups the processes that answer say they serve, summed (a group served
   *  by two at once counts twice: readiness only, the checker judges). */
  async groupsServed(): Promise<number> {
    let sum = 0;
    await Promise.all(
      this.kvs.map(async (kv) => {
        if (kv.state !== "up") return;
        const r = await this.http(kv, "/status", "GET", 300);
        if ("status" in r) sum += Number(r.body.serving ?? 0);
      }),
    );
    return sum;
  }

  /** A KV leader (sharded: every group served by some process) within `timeoutMs`. */
  async waitKvLeader(timeoutMs: number): Promise<number> {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until) {
      const l = await this.kvLeaders();
      if (l.length > 0 && (!this.sharded || (await this.groupsServed()) >= this.opts.groups)) {
        this.leaderHint = l[0]!;
        return l[0]!;
      }
      await sleep(100);
    }
    throw new Error(this.sharded ? `not every one of ${this.opts.groups} groups served within ${timeoutMs} ms (${await this.groupsServed()})` : `no KV leader within ${timeoutMs} ms`);
  }

  /** Sharded: the groups process `kv` serves now (its GET /groups), empty when it does not answer. */
  async ledBy(kv: Kv): Promise<number[]> {
    const r = await this.http(kv, "/groups", "GET", 500);
    return "status" in r && r.status === 200 ? (r.body.led as number[]) : [];
  }

  /** The run's keys of group `g` (sharded). */
  keysOf(g: number): string[] {
    return Array.from({ length: this.opts.keys }, (_, k) => `k${k}`).filter((key) => groupOfKey(key, this.opts.groups) === g);
  }

  /** Where to send key `key` now: its hint (sharded) or the leader hint, else any process up. */
  targetFor(key: string, r: () => number = Math.random): Kv | undefined {
    const hint = this.sharded ? (this.keyHint.get(key) ?? -1) : this.leaderHint;
    const up = this.kvs.filter((k) => k.state === "up");
    if (hint >= 0 && this.kvs[hint]?.state === "up") return this.kvs[hint];
    return up.length === 0 ? undefined : up[Math.floor(r() * up.length)];
  }

  /** Polls who leads (etcd and KV) while the faults run, for "leader" targets. */
  async poll(): Promise<void> {
    while (this.running) {
      const [kv, etcd] = await Promise.all([this.kvLeaders(), this.cluster!.leaderIndex().catch(() => -1)]);
      if (kv.length === 1) this.leaderHint = kv[0]!;
      if (etcd >= 0) this.etcdLeader = etcd;
      await sleep(150);
    }
  }

  // ---- clients ----

  async client(c: number, endAt: number, r: () => number): Promise<void> {
    const last = new Map<string, string | null>();
    // A process that did not answer in time is left alone for a while: piling more calls of
    // unknown outcome on it adds nothing but search for the checker.
    const avoidUntil = [0, 0, 0, 0];
    while (performance.now() < endAt) {
      const key = `k${Math.floor(r() * this.opts.keys)}`;
      const x = r();
      const kind: NemesisOp["kind"] = x < 0.5 ? "read" : x < 0.75 ? "write" : "cas";
      // Sharded: the key's own hint (the redirects' leader), unsharded: the leader's.
      let target = this.sharded ? (this.keyHint.get(key) ?? -1) : this.leaderHint;
      if (target < 0 || r() < 0.25 || this.kvs[target]?.state !== "up") target = Math.floor(r() * this.kvs.length);
      const away = kind === "read" ? undefined : this.writeAway;
      if (away !== undefined && away.untilMs > performance.now() && target === away.not) target = (target + 1 + Math.floor(r() * (this.kvs.length - 1))) % this.kvs.length;
      const kv = this.kvs[target]!;
      if (kv.state !== "up" || performance.now() < avoidUntil[target]!) {
        await sleep(20);
        continue;
      }
      this.timedOut.delete(c);
      const op = await this.op(c, kind, key, kv, last.get(key) ?? null, r() < 0.3);
      if (this.timedOut.has(c)) {
        avoidUntil[target] = performance.now() + 1000;
        await sleep(100);
      } else if (op === null) await sleep(15);
      else {
        if (op.returnAt !== Infinity) last.set(key, op.kind === "cas" && op.ok === false ? (op.found ?? null) : op.value);
        await sleep(5);
      }
    }
  }

  async op(client: number, kind: NemesisOp["kind"], key: string, kv: Kv, expected: string | null, linearizable: boolean, timeoutMs = 1000, tally?: Map<string, number>): Promise<NemesisOp | null> {
    const value = kind === "read" ? null : `c${client}-${++this.#seq}`;
    const q = `key=${encodeURIComponent(key)}` +
      (value === null ? (linearizable ? "&consistency=linearizable" : "") : `&value=${encodeURIComponent(value)}`) +
      (kind === "cas" ? (expected === null ? "&absent=1" : `&expected=${encodeURIComponent(expected)}`) : "");
    const callAt = performance.now();
    const res = await this.http(kv, `/kv?${q}`, kind === "read" ? "GET" : "POST", timeoutMs);
    const returnAt = performance.now();
    if (tally !== undefined) {
      const what = "status" in res ? `${res.status}${res.status === 200 ? "" : ` ${String(res.body.message ?? res.body.error).replace(/[0-9]+/g, "N").slice(0, 60)}`}` : res.error;
      tally.set(what, (tally.get(what) ?? 0) + 1);
    }
    if ("status" in res && res.status === 500) {
      const m = `${kind} ${String(res.body.message ?? res.body.error).replace(/[0-9]+/g, "N").slice(0, 90)}`;
      this.errors.set(m, (this.errors.get(m) ?? 0) + 1);
    }
    if ("error" in res && res.error === "timeout") {
      this.timedOut.add(client);
      this.timeouts++;
    }
    // Sharded: the clients' own calls move the key's hint; the aimed bursts (ids 2000 and up)
    // do not, or reads aimed at a deposed holder would steer every client's writes back to it.
    if (this.sharded && client >= 2000) {
      // no hint from aimed calls
    } else if ("status" in res && res.status === 503 && this.sharded) {
      // The redirect: the next call for this key goes to the node named (none: anyone).
      const i = this.kvs.findIndex((k) => k.id === res.body.leader);
      if (i >= 0) this.keyHint.set(key, i);
      else this.keyHint.delete(key);
    } else if ("status" in res && res.status === 200 && this.sharded && !(kind === "read" && linearizable)) {
      // Only the group's leader answers a lease read or a write (a linearizable read: any node).
      this.keyHint.set(key, kv.index);
    } else if ("status" in res && res.status === 503) {
      const i = this.kvs.findIndex((k) => k.id === res.body.leader);
      if (i >= 0) this.leaderHint = i;
    } else if ("status" in res && res.status === 200 && this.leaderHint !== kv.index && this.leaderHint >= 0 && r0() < 0.2) {
      this.leaderHint = kv.index;
    }
    const base = { client, key, kind, callAt, by: kv.id };
    let op: NemesisOp | null = null;
    if (kind === "read") {
      if ("status" in res && res.status === 200) op = { ...base, value: (res.body.value as string | null) ?? null, returnAt, served: res.body.served as "local" | "etcd" };
    } else if ("error" in res && res.error === "refused") {
      op = null; // never reached the service: no effect
    } else if ("status" in res && res.status === 503) {
      op = null; // not leader, or the fence failed: not applied
    } else if ("status" in res && res.status === 200) {
      if (kind === "write") op = { ...base, value, returnAt };
      else if (res.body.ok === true) op = { ...base, value, expected, ok: true, returnAt };
      else op = { ...base, value, expected, ok: false, found: (res.body.value as string | null) ?? null, returnAt };
    } else {
      // A 500 or no answer: it may have applied, at any time after its call.
      op = { ...base, value, ...(kind === "cas" ? { expected } : {}), returnAt: Infinity };
    }
    if (op !== null) this.history.push(op);
    return op;
  }

  // ---- faults ----

  count(kind: FaultKind | "skipped"): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
  }

  kvOf(t: Target | undefined): Kv | undefined {
    const i = t === "leader" ? this.leaderHint : t;
    const kv = i === undefined || i < 0 ? undefined : this.kvs[i];
    return kv !== undefined && kv.state === "up" && !kv.busy ? kv : undefined;
  }
  memberOf(t: Target | undefined): number | undefined {
    const i = t === "leader" ? this.etcdLeader : t;
    return i === undefined || i < 0 || this.memberBusy[i] ? undefined : i;
  }

  later(ms: number, fn: () => Promise<void> | void): void {
    const p = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        Promise.resolve()
          .then(fn)
          .catch((err: unknown) => this.note(`error: ${(err as Error).message}`))
          .finally(resolve);
      }, ms);
      this.timers.add(timer);
      // A run that ends first resolves it through heal (the undo list).
      this.undo.push(() => {
        if (this.timers.delete(timer)) {
          clearTimeout(timer);
          return Promise.resolve().then(fn).catch(() => undefined).finally(resolve);
        }
        return undefined;
      });
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Sets one link's fault for `durMs`; a busy link is left alone unless `force` (this fault
   *  then replaces the one before, and the link is lifted when this one ends). */
  setLink(kv: number, member: number, direction: ProxyDirection, fault: LinkFault, durMs: number, what: string, force = false): boolean {
    const id = `${kv}/${member}/${direction}`;
    if (this.linkBusy.has(id) && !force) return false;
    const token = Symbol(what);
    this.linkBusy.set(id, token);
    this.proxies[kv]![member]!.set(direction, fault);
    this.later(durMs, () => {
      // A fault forced over this one owns the link now: it lifts it when it ends.
      if (this.linkBusy.get(id) !== token) return;
      this.proxies[kv]![member]!.set(direction, { kind: "pass" });
      this.linkBusy.delete(id);
      this.note(`end ${what}`);
    });
    return true;
  }

  /** `n` client loops (ids 2000+) sending reads to one process for `ms`, recorded like any
   *  client's: the scenarios aim reads at the process whose answers matter. */
  async burst(kv: Kv, n: number, consistency: "lease" | "linearizable", ms: number, opTimeoutMs?: number, keys?: readonly string[]): Promise<void> {
    const until = performance.now() + ms;
    // Sharded: the keys this process answers for (by the hints), unless the caller aims them.
    const aimed = keys ?? (this.sharded ? [...this.keyHint].filter(([, i]) => i === kv.index).map(([k]) => k) : []);
    let answered = 0;
    let local = 0;
    const tally = new Map<string, number>();
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      while (performance.now() < until && this.running) {
        const key = aimed.length > 0 ? aimed[i % aimed.length]! : `k${i % this.opts.keys}`;
        // By default a read may wait until the window ends (it may be queued behind a pause);
        // with `opTimeoutMs`, one that hangs (a fallback to an unreachable etcd) gives way to
        // a new one, so that reads keep arriving all through the window.
        const op = await this.op(2000 + i, "read", key, kv, null, consistency === "linearizable", opTimeoutMs ?? Math.max(200, until - performance.now()), tally);
        if (op === null) await sleep(20);
        else {
          answered++;
          if (op.served === "local") local++;
        }
      }
    }));
    this.note(`reads aimed at ${kv.id} (${consistency}): ${answered} answered, ${local} locally; answers: ${[...tally].map(([k, c]) => `${k} x${c}`).join("; ")}`);
  }

  /** Writes (ids 3000+) of `keys` sent to every process up but `not`, for `ms`: recorded like
   *  any client's (refusals dropped), so the node that takes their group over writes them. */
  async writeBurst(not: Kv, keys: readonly string[], ms: number): Promise<void> {
    const until = performance.now() + ms;
    const tally = new Map<string, number>();
    let acked = 0;
    for (let i = 0; performance.now() < until && this.running; i++) {
      const others = this.kvs.filter((k) => k !== not && k.state === "up");
      if (others.length === 0) {
        await sleep(50);
        continue;
      }
      const op = await this.op(3000, "write", keys[i % keys.length]!, others[i % others.length]!, null, false, 1000, tally);
      if (op !== null && op.returnAt !== Infinity) acked++;
      await sleep(op === null ? 40 : 10);
    }
    this.note(`writes aimed past ${not.id}: ${acked} acknowledged; answers: ${[...tally].map(([k, c]) => `${k} x${c}`).join("; ")}`);
  }

  /** Sharded: which member carries process `kv`'s watch of `<prefix>/`, by probing: each
   *  member's answers to it held 900 ms in turn while an outside put lands under the prefix; the
   *  member whose hold keeps the process's applied revision (its /status) below the put's is it.
   *  (Counting bytes, as `watchMember` does, misleads here: the node rounds' range answers, one
   *  per group key every renewal, outweigh the data events.) -1 when no hold held it back. */
  async watchMemberByProbe(kv: Kv): Promise<number> {
    for (let m = 0; m < 3; m++) {
      const id = `${kv.index}/${m}/down`;
      if (this.linkBusy.has(id)) continue;
      const proxy = this.proxies[kv.index]![m]!;
      proxy.set("down", { kind: "delay", delayMs: 900 });
      let held = false;
      try {
        const put = await this.admin!.put(`${this.prefix}/probe`).value(String(m)).exec();
        await sleep(400);
        const r = await this.http(kv, "/status", "GET", 300);
        held = "status" in r && BigInt(String(r.body.appliedRevision)) < BigInt(put.header.revision);
      } finally {
        proxy.set("down", { kind: "pass" });
      }
      await sleep(600); // the held bytes drain
      if (held) return m;
    }
    return -1;
  }

  /** Which member carries process `kv`'s data watch: the proxy whose `down` bytes grow the most
   *  over 400 ms of load (every write is one event on the watch, unary answers spread over all). */
  async watchMember(kv: number): Promise<number> {
    const before = this.proxies[kv]!.map((p) => p.bytes.down);
    await sleep(400);
    const grown = this.proxies[kv]!.map((p, m) => p.bytes.down - before[m]!);
    return grown.indexOf(Math.max(...grown));
  }

  /** Whether `kv` says it leads now (a hint can name a node still in its catch-up or hold). */
  async leads(kv: Kv): Promise<boolean> {
    const r = await this.http(kv, "/status", "GET", 300);
    return "status" in r && r.body.state === "leader";
  }

  async clockFault(kv: Kv, kind: ClockFaultKind, ms: number): Promise<void> {
    const r = await this.http(kv, `/clock?fault=${kind}&ms=${ms}`, "POST", ms + 3000);
    if (!("status" in r) || r.status !== 200) throw new Error(`clock ${kind} on ${kv.id}: ${"status" in r ? JSON.stringify(r.body) : r.error}`);
  }

  async apply(f: PlannedFault): Promise<void> {
    const c = this.cluster!;
    const skip = (why: string) => {
      this.count("skipped");
      this.note(`skip ${f.kind}: ${why}`);
    };
    const dur = f.durMs;
    switch (f.kind) {
      case "kv-pause": {
        const kv = this.kvOf(f.kv);
        if (kv === undefined) return skip("target busy or down");
        kv.busy = true;
        kv.child!.kill("SIGSTOP");
        kv.state = "paused";
        this.note(`kv-pause ${kv.id} for ${dur} ms`);
        this.later(dur, () => {
          if (kv.state === "paused") {
            kv.child?.kill("SIGCONT");
            kv.state = "up";
          }
          kv.busy = false;
          this.note(`end kv-pause ${kv.id}`);
        });
        break;
      }
      case "kv-kill": case "kv-restart": {
        const kv = this.kvOf(f.kv);
        if (kv === undefined) return skip("target busy or down");
        kv.busy = true;
        this.note(`${f.kind} ${kv.id}${f.kind === "kv-kill" ? ` (-9), back in ${dur} ms` : " (SIGTERM: close() with requests in flight)"}`);
        if (f.kind === "kv-kill") this.killKv(kv);
        else await this.stopKvGracefully(kv);
        this.later(f.kind === "kv-kill" ? dur : 0, async () => {
          await this.respawn(kv.index);
          kv.busy = false;
          this.note(`${kv.id} restarted`);
        });
        break;
      }
      case "resign": {
        const kv = this.kvOf(f.kv);
        if (kv === undefined) return skip("no leader known");
        this.note(`resign ${kv.id}`);
        const r = await this.http(kv, "/resign", "POST", 5000);
        if (!("status" in r) || r.body.resigned !== true) this.note(`resign ${kv.id}: not leading`);
        break;
      }
      case "etcd-kill": case "etcd-pause": case "etcd-isolate": {
        const m = this.memberOf(f.member);
        if (m === undefined) return skip("member busy or unknown");
        if (f.kind === "etcd-isolate" && !canIsolate()) return skip("isolation needs root and iptables");
        this.memberBusy[m] = true;
        this.note(`${f.kind} m${m} for ${dur} ms`);
        if (f.kind === "etcd-kill") c.kill(m);
        else if (f.kind === "etcd-pause") c.pause(m);
        else {
          c.isolate(m);
          this.isolated.add(m);
        }
        this.later(dur, () => {
          if (f.kind === "etcd-kill") c.restart(m);
          else if (f.kind === "etcd-pause") c.resume(m);
          else {
            this.isolated.delete(m);
            c.heal(); // heals every isolation: put the others back
            for (const o of this.isolated) c.isolate(o);
          }
          this.memberBusy[m] = false;
          this.note(`end ${f.kind} m${m}`);
        });
        break;
      }
      case "slow-disk": {
        const m = this.memberOf(f.member);
        if (m === undefined) return skip("member busy or unknown");
        if (!canSlowDisk()) return skip("a slow disk needs root and strace");
        this.memberBusy[m] = true;
        this.note(`slow-disk m${m} (${f.scope}): syncs +${f.ms} ms for ${dur} ms`);
        let heal: () => Promise<void>;
        try {
          heal = await c.slowDisk(m, f.ms!, f.scope);
        } catch (err) {
          this.memberBusy[m] = false;
          return skip(`slowDisk: ${(err as Error).message}`);
        }
        this.slowHeals.set(m, heal);
        this.later(dur, async () => {
          this.slowHeals.delete(m);
          await heal();
          this.memberBusy[m] = false;
          this.note(`end slow-disk m${m}`);
        });
        break;
      }
      case "link": {
        const kv = this.kvOf(f.kv);
        const i = kv?.index ?? (typeof f.kv === "number" ? f.kv : -1);
        if (i < 0) return skip("no leader known");
        const what = `link kv-${i}→m${f.member} ${f.direction} ${f.link!.kind}${f.link!.kind === "delay" ? ` ${f.link!.delayMs} ms` : ""}`;
        if (!this.setLink(i, (f.member as number), f.direction!, f.link!, dur, what)) return skip("link busy");
        this.note(`${what} for ${dur} ms`);
        break;
      }
      case "clock": {
        const kv = this.kvOf(f.kv);
        if (kv === undefined) return skip("target busy or down");
        this.note(`clock ${f.clock} ${f.ms} ms on ${kv.id}`);
        await this.clockFault(kv, f.clock!, f.ms!);
        break;
      }
      case "lagging-failover": {
        // Finding 1's shape: a follower whose watch lags past the new leader's catch-up wait (its
        // member's answers delayed; a campaign answered there is lost to the deadline too), the
        // other follower paused, and the leader resigning by a graceful stop: the follower must
        // take over, and must catch up before it serves.
        const a = this.kvOf("leader");
        const followers = this.kvs.filter((k) => k !== a && k.state === "up" && !k.busy);
        if (a === undefined || followers.length < 2) return skip("needs a leader and two idle followers");
        const [b, c2] = f.member === 0 ? [followers[0]!, followers[1]!] : [followers[1]!, followers[0]!];
        const m = await this.watchMember(b.index);
        const what = `link kv-${b.index}→m${m} (its watch) down delay ${f.ms} ms`;
        if (!this.setLink(b.index, m, "down", { kind: "delay", delayMs: f.ms! }, dur, what)) return skip("link busy");
        this.note(`lagging-failover: ${what}; pause ${c2.id}; stop leader ${a.id} gracefully; for ${dur} ms`);
        c2.busy = a.busy = true;
        c2.child!.kill("SIGSTOP");
        c2.state = "paused";
        await sleep(300);
        await this.stopKvGracefully(a);
        this.later(dur, async () => {
          if (c2.state === "paused") {
            c2.child?.kill("SIGCONT");
            c2.state = "up";
          }
          c2.busy = false;
          await this.respawn(a.index);
          a.busy = false;
          this.note(`end lagging-failover (${a.id} back, ${c2.id} resumed)`);
        });
        break;
      }
      case "lagging-close": {
        // Finding 3's shape: the leader is paused past its etcd lease (another node takes over
        // and writes) while every member's bytes to it are held for longer than the pause.
        // Linearizable reads queued for it during the pause's last second enter when it resumes:
        // it still thinks it leads (the deletion of its key is held too). 150 ms later one member
        // other than its data watch's lets its bytes through: the etcd reads sent there answer
        // with a revision its watch has not reached (still held), and they wait; 300 ms after
        // the resume it is stopped gracefully: close() must not answer them.
        // Why every member is held at first: on resume every buffered byte is read at once, the
        // queued requests' with them; had the deletion of its key come through an open link, the
        // node would step down before it took a single read (traced: it did in all 4 tries with
        // only the data watch's member held, or two of three: etcd3 puts the own-key watch on a
        // member it picks at random). Once the reads are in, whatever the
        // opened member tells it (its key gone, its lease expired) no longer stops them.
        const a = this.kvOf("leader");
        if (a === undefined) return skip("no leader known");
        if (!(await this.leads(a))) return skip(`${a.id} does not lead (yet)`);
        const m = await this.watchMember(a.index);
        const open = (m + 1 + (f.ms! % 2)) % 3; // the member let through after the resume: a pure function of the draw
        const lag = f.ms! + 2500;
        if ([0, 1, 2].some((x) => this.linkBusy.has(`${a.index}/${x}/down`))) return skip("link busy");
        for (const x of [0, 1, 2]) this.setLink(a.index, x, "down", { kind: "delay", delayMs: lag }, x === open ? f.ms! + 150 : dur, `link kv-${a.index}→m${x} down delay ${lag} ms`);
        a.busy = true;
        this.note(`lagging-close: kv-${a.index}→every member down delay ${lag} ms (its watch: m${m}; m${open} let through 150 ms after the resume); pause ${a.id} for ${f.ms} ms, linearizable reads queued for it, graceful stop 300 ms after it resumes`);
        a.child!.kill("SIGSTOP");
        a.state = "paused";
        this.later(f.ms! - 900, () => this.burst(a, 12, "linearizable", 900 + 3000));
        this.later(f.ms!, async () => {
          if (a.state === "paused") {
            a.child?.kill("SIGCONT");
            a.state = "up";
          }
          this.note(`${a.id} resumed (lagging-close)`);
          await sleep(300);
          await this.stopKvGracefully(a);
          this.note(`${a.id} stopped (lagging-close)`);
          this.later(Math.max(0, dur - f.ms! - 300), async () => {
            await this.respawn(a.index);
            a.busy = false;
            this.note(`${a.id} restarted`);
          });
        });
        break;
      }
      case "clock-step-cut": {
        // Finding 4's shape: a leader holding a fresh ack steps its clock back and is cut from
        // etcd both ways (it learns nothing) while its etcd lease runs out and another node takes
        // over and writes; once its clock passes the old reading again, reads are sent to it:
        // an ack from before the step must not prove its lease.
        const a = this.kvOf("leader");
        if (a === undefined) return skip("no leader known");
        if (!(await this.leads(a))) return skip(`${a.id} does not lead (yet)`);
        a.busy = true;
        this.note(`clock-step-cut: ${a.id} clock step-back ${f.ms} ms, cut from every member both ways (stall) for ${dur} ms`);
        await this.clockFault(a, "step-back", f.ms!);
        for (let m = 0; m < 3; m++) for (const d of ["up", "down"] as const) this.setLink(a.index, m, d, { kind: "stall" }, dur, `link kv-${a.index}→m${m} ${d} stall`, true);
        // The reads keep coming (each gives up after 250 ms: before the clock passes its old
        // reading they fall back to the unreachable etcd) until 1.5 s after the clock has passed
        // it: the window in which an ack from before the step would look fresh.
        this.later(f.ms! - 200, () => this.burst(a, 4, "lease", 1700, 250));
        this.later(dur, () => {
          a.busy = false;
        });
        break;
      }
      case "node-join": {
        // A 4th process registers: the groups whose rendezvous owner it is among the live
        // nodes are handed off to it by their holders (clean handoffs, batched).
        if (!this.sharded) return skip("needs --groups");
        const k3 = this.kvs[3];
        if (k3 !== undefined && (k3.state !== "down" || k3.busy)) return skip("kv-3 is in already");
        this.left.delete(3);
        this.note("node-join kv-3 (groups rebalance to it)");
        await this.respawn(3);
        this.note("kv-3 joined");
        break;
      }
      case "node-leave": {
        // A clean leave hands every group off at once (resign markers: no takeover hold); a
        // crash leaves its groups until its etcd lease expires. kv-3 stays out, the others
        // come back after `dur`.
        if (!this.sharded) return skip("needs --groups");
        const kv = this.kvOf(f.kv);
        if (kv === undefined) return skip(`target ${String(f.kv)} busy, down or not joined`);
        kv.busy = true;
        this.note(`node-leave ${kv.id} (${f.leave === "clean" ? "clean: close() hands its groups off" : "crash: SIGKILL, its groups wait for its lease"})${kv.index === 3 ? ", out until the next join" : `, back in ${dur} ms`}`);
        if (f.leave === "crash") this.killKv(kv);
        else await this.stopKvGracefully(kv);
        if (kv.index === 3) {
          this.left.add(3);
          kv.busy = false;
          break;
        }
        this.later(dur, async () => {
          await this.respawn(kv.index);
          kv.busy = false;
          this.note(`${kv.id} rejoined`);
        });
        break;
      }
      case "group-key-delete": {
        // An outside client deletes one group key of leader `a` while a's watch is held back
        // (the member carrying it answers a `f.ms` late, the lagging-watch set-up of
        // lagging-close): a learns of the deletion only from its next confirmation round, which
        // must stop it serving that group; another node campaigns for it and takes writes: kv-3
        // joining meanwhile (unseen by `a`) when the group is now its by rendezvous, or the
        // group's owner once `a`'s membership key is deleted too, or the next-ranked node after
        // its fallback delay (rank × TTL, when the engine has it). Lease reads of the group's keys are
        // aimed at `a` meanwhile, writes at the others: a group served by two nodes at once
        // (the negative control skip-group-confirmation) answers a read an acknowledged write
        // already replaced.
        if (!this.sharded) return skip("needs --groups");
        if (this.keyDeleteOn) return skip("another group-key-delete is on");
        const a = this.kvOf(f.kv);
        if (a === undefined) return skip("target busy or down");
        if ([0, 1, 2].some((x) => this.linkBusy.has(`${a.index}/${x}/down`))) return skip("link busy");
        const withKeys = (await this.ledBy(a)).filter((g) => this.keysOf(g).length > 0);
        if (withKeys.length === 0) return skip(`${a.id} serves no group holding a key of the run`);
        let g = withKeys[f.ms! % withKeys.length]!;
        this.keyDeleteOn = true;
        // No write to `a` from now on (the probe holds its links too), and the ones in flight
        // answered before the probe starts.
        this.writeAway = { not: a.index, untilMs: Infinity };
        await sleep(1200);
        const m = await this.watchMemberByProbe(a).catch(() => -1);
        if (m < 0) {
          this.keyDeleteOn = false;
          this.writeAway = undefined;
          return skip(`no member's hold kept ${a.id}'s watch back`);
        }
        const what = `link kv-${a.index}→m${m} (its watch) down delay ${f.ms} ms`;
        if (!this.setLink(a.index, m, "down", { kind: "delay", delayMs: f.ms! }, dur, what)) return skip("link busy");
        a.busy = true;
        await sleep(200); // events from now on reach `a` late
        // The join variant, when kv-3 is out: it joins now, unseen by `a` (its watch lags), and
        // the group deleted is one whose rendezvous owner it now is: it campaigns at once, while
        // `a` still counts itself the owner. (Otherwise the next holder is found by the
        // membership variant or, once the engine has it, the liveness fallback.)
        let variant: "join" | "membership" | "plain" = f.withMembership ? "membership" : "plain";
        const k3 = this.kvs[3];
        if (k3 === undefined || (k3.state === "down" && !k3.busy)) {
          try {
            this.left.delete(3);
            await this.respawn(3);
            const live = [...this.kvs.filter((k) => k.state === "up" || k === a).map((k) => k.id)];
            const moving = withKeys.filter((x) => rendezvousOwner(x, live) === "kv-3");
            if (moving.length > 0) {
              g = moving[f.ms! % moving.length]!;
              variant = "join";
            }
            this.note(`group-key-delete: kv-3 joined unseen by ${a.id}; ${moving.length} of its groups with keys are kv-3's now`);
          } catch (err) {
            this.note(`group-key-delete: kv-3 could not join: ${(err as Error).message}`);
          }
        }
        const keys = this.keysOf(g);
        const gk = `${this.prefix}/g/${gid5(g)}`;
        const nk = `${this.prefix}/n/${a.id}`;
        const deleted = [gk, ...(variant === "membership" ? [nk] : [])];
        try {
          await this.admin!.kv.txn({ compare: [], success: deleted.map((k) => ({ request_delete_range: { key: Buffer.from(k) } })), failure: [] });
        } catch (err) {
          this.note(`group-key-delete: the delete of ${deleted.join(" and ")} failed: ${(err as Error).message}`);
        }
        this.note(`group-key-delete (${variant}): ${what}; an outside client deleted ${deleted.join(" and ")} (group ${g}: ${keys.join(",")}) led by ${a.id}; lease reads of its keys at ${a.id}, writes at the others, for ${f.ms} ms`);
        this.writeAway = { not: a.index, untilMs: performance.now() + f.ms! };
        this.later(0, () => this.burst(a, 4, "lease", f.ms!, 400, keys));
        this.later(0, () => this.writeBurst(a, keys, f.ms!));
        this.later(dur, () => {
          a.busy = false;
          this.keyDeleteOn = false;
        });
        break;
      }
    }
    this.count(f.kind);
  }

  /** Lifts every fault now: links, processes, members, isolation, slow disks. */
  async heal(): Promise<void> {
    // Ending a fault may schedule another step (a restart): run until none is left.
    while (this.undo.length > 0) for (const u of this.undo.splice(0)) await u();
    await Promise.race([Promise.all([...this.pending]), sleep(25_000)]);
    for (const row of this.proxies) for (const p of row) p.heal();
    this.linkBusy.clear();
    const c = this.cluster!;
    c.heal();
    this.isolated.clear();
    for (const [m, h] of this.slowHeals) {
      await h().catch(() => undefined);
      this.slowHeals.delete(m);
    }
    c.members.forEach((m, i) => {
      if (m.paused) c.resume(i);
      if (m.process === undefined) c.restart(i);
      this.memberBusy[i] = false;
    });
    for (const kv of this.kvs) {
      if (kv.state === "paused") {
        kv.child?.kill("SIGCONT");
        kv.state = "up";
      }
      if (this.left.has(kv.index)) continue; // it left (node-leave of kv-3): it stays out
      if (kv.state === "down" && kv.child === undefined) await this.respawn(kv.index).catch((err: unknown) => this.note(`restart ${kv.id}: ${(err as Error).message}`));
      kv.busy = false;
    }
  }

  /** Stops everything this run started. Idempotent. */
  cleanup(): Promise<void> {
    this.#cleaned ??= (async () => {
      this.running = false;
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const h of this.slowHeals.values()) await h().catch(() => undefined);
      this.slowHeals.clear();
      await Promise.all(this.kvs.map(async (kv) => {
        const ch = kv.child;
        if (ch === undefined || ch.exitCode !== null || ch.signalCode !== null) return;
        const exited = new Promise<void>((r) => ch.once("exit", () => r()));
        ch.kill("SIGCONT");
        ch.kill("SIGKILL");
        await Promise.race([exited, sleep(3000)]);
      }));
      for (const row of this.proxies) for (const p of row) await p.close();
      this.admin?.close();
      await this.cluster?.stop();
    })();
    return this.#cleaned;
  }
}

// A tie-break coin for the client's leader hint, outside the seeded draws (it follows answers).
const r0 = Math.random;

async function oneRun(run: number, seed: number, opts: RunOptions, onStarted?: (r: Run) => void): Promise<RunReport> {
  const started = performance.now();
  const r = new Run(seed, opts);
  const cleanup = () => r.cleanup();
  live.add(cleanup);
  try {
    await r.start();
    onStarted?.(r);
    const schedule = planSchedule(seed, opts.durationS, opts.faults);
    const clientRng = rng(seed ^ 0x5bd1e995);
    const phaseStart = performance.now();
    const endAt = phaseStart + opts.durationS * 1000;
    const poller = r.poll();
    const clients = Array.from({ length: opts.clients }, (_, c) => r.client(c, endAt, rng(Math.floor(clientRng() * 2 ** 32))));
    for (const f of schedule) {
      const wait = phaseStart + f.atMs - performance.now();
      if (wait > 0) await sleep(wait);
      await r.apply(f).catch((err: unknown) => r.note(`error in ${f.kind}: ${(err as Error).message}`));
    }
    await Promise.all(clients);
    r.note("heal");
    await r.heal();
    r.running = false;
    await poller;
    // Recovery: an etcd leader and a KV leader, then every key written (progress) and read.
    try {
      await r.cluster!.waitForLeader(20_000);
      const leader = await r.waitKvLeader(30_000);
      r.note(`recovered: kv-${leader} leads`);
    } catch (err) {
      const why = `no progress after healing: ${(err as Error).message}`;
      return { run, seed, verdict: { ok: false, why }, faults: r.faults, ops: { total: r.history.length, read: 0, write: 0, cas: 0, unknown: 0, timeouts: r.timeouts }, wallMs: performance.now() - started, timeline: r.timeline, dataDir: r.cluster?.dir, t0Ms: r.t0, checkMs: 0, errors: r.errors, history: r.history };
    }
    const finals = new Map<string, NemesisOp>();
    const stuck: string[] = [];
    for (let k = 0; k < opts.keys; k++) {
      const key = `k${k}`;
      const until = performance.now() + 20_000;
      let wrote = false;
      while (!wrote && performance.now() < until) {
        const op = await r.op(1000, "write", key, (r.sharded ? r.targetFor(key) : undefined) ?? r.kvs[r.leaderHint]!, null, false, 3000);
        wrote = op !== null && op.returnAt !== Infinity;
        if (!wrote) await sleep(100);
      }
      if (!wrote) stuck.push(key);
      while (performance.now() < until) {
        const op = await r.op(1001, "read", key, (r.sharded ? r.targetFor(key) : undefined) ?? r.kvs[r.leaderHint]!, null, true, 3000);
        if (op !== null) {
          finals.set(key, op);
          break;
        }
        await sleep(100);
      }
    }
    let verdict: Verdict;
    let checkMs = 0;
    const lost = lostWrites(r.history, finals);
    if (stuck.length > 0) verdict = { ok: false, why: `no progress after healing: no write to ${stuck.join(", ")} succeeded within 20 s` };
    else if (finals.size < opts.keys) verdict = { ok: false, why: "no progress after healing: final reads failed" };
    else {
      const c0 = performance.now();
      verdict = checkHistory(r.history);
      checkMs = performance.now() - c0;
    }
    if (verdict.ok === true && lost.length > 0) verdict = { ok: false, why: `acknowledged write lost: ${lost.join("; ")}` };
    const ops = { total: r.history.length, read: 0, write: 0, cas: 0, unknown: 0, timeouts: r.timeouts };
    for (const op of r.history) {
      ops[op.kind]++;
      if (op.returnAt === Infinity) ops.unknown++;
    }
    return { run, seed, verdict, faults: r.faults, ops, wallMs: performance.now() - started, timeline: r.timeline, dataDir: r.cluster?.dir, t0Ms: r.t0, checkMs, errors: r.errors, history: r.history };
  } catch (err) {
    return { run, seed, verdict: { ok: "unknown", why: `run aborted: ${(err as Error).message}` }, faults: r.faults, ops: { total: r.history.length, read: 0, write: 0, cas: 0, unknown: 0, timeouts: r.timeouts }, wallMs: performance.now() - started, timeline: r.timeline, dataDir: r.cluster?.dir, t0Ms: r.t0, checkMs: 0, errors: r.errors, history: r.history };
  } finally {
    await r.cleanup();
    live.delete(cleanup);
  }
}

function formatOp(op: CheckedOp, t0: number): string {
  const s = (ms: number) => ((ms - t0) / 1000).toFixed(3).padStart(8);
  const from = op.from;
  const what = from === undefined ? op.kind : from.kind === "cas" ? `cas(${JSON.stringify(from.expected ?? null)}→${JSON.stringify(from.value)}) ${from.ok === undefined ? "unknown" : from.ok ? "applied" : `failed, found ${JSON.stringify(from.found ?? null)}`}${op.kind === "read" ? " (its read)" : ""}` : from.kind === "read" ? `read (${from.served ?? "?"})` : from.returnAt === Infinity ? "write (unknown)" : "write";
  return `    client ${String(op.client).padStart(4)} via ${from?.by ?? "?"}  [${s(op.callAt)}s, ${op.returnAt === Infinity ? "       ?" : s(op.returnAt)}s]  ${what.padEnd(18)} ${JSON.stringify(op.value)}`;
}

/** A negative control whose switch is misspelt would pass silently: every name must be a switch
 *  the test build reads (`globalThis.__leaseCoreUnsafe.<NAME>`, scripts/build.mjs). */
// Spelt in two parts: test/unsafe-build.test.ts checks that the global's name appears in no
// bundle outside build/unsafe/, and this one (build/demo/nemesis.js) only looks for it.
const UNSAFE_GLOBAL = ["__leaseCore", "Unsafe"].join("");

export function checkUnsafeNames(names: string): void {
  const dir = dirname(UNSAFE_SERVICE_JS);
  const text = ["kv-service.js", "etcd.js", "node.js"].map((f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : "")).join("\n");
  for (const name of names.split(",")) {
    if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) throw new Error(`--unsafe: ${JSON.stringify(name)} is not a kebab-case switch name`);
    const constant = name.toUpperCase().replaceAll("-", "_");
    if (!text.includes(`${UNSAFE_GLOBAL}.${constant}`)) throw new Error(`--unsafe: no switch ${name} in the test build (build/unsafe/); rebuild, or check the name`);
  }
}

/** Runs the batch; resolves with every run's report (stops at the first failing run by default). */
export async function runNemesis(options: NemesisOptions = {}): Promise<{ ok: boolean; reports: RunReport[]; seed: number; unchecked: number }> {
  installSignalHandlers();
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const seed = (options.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
  const runs = options.runs ?? 1;
  const groups = options.groups ?? 0;
  if (!Number.isInteger(groups) || groups < 0 || groups > 65536) throw new Error(`--groups must be an integer in [0, 65536], got ${String(groups)}`);
  const kinds = groups > 0 ? ALL_FAULT_KINDS : FAULT_KINDS;
  const faults = options.faults ?? kinds;
  const groupOnly = faults.filter((k) => !kinds.includes(k));
  if (groupOnly.length > 0) throw new Error(`--faults ${groupOnly.join(",")}: only with --groups G (multi-group nodes)`);
  // Sharded: more keys (spread over many groups), as many clients per key as unsharded.
  const opts = { runs, seed, durationS: options.durationS ?? 20, clients: options.clients ?? (groups > 0 ? 8 : 5), keys: options.keys ?? (groups > 0 ? 24 : 6), unsafe: options.unsafe ?? "", faults, groups };
  const aimed = `${groups > 0 ? ` --groups ${groups}` : ""}${opts.faults.length < kinds.length ? ` --faults ${opts.faults.join(",")}` : ""}`;
  const script = opts.unsafe ? UNSAFE_SERVICE_JS : SERVICE_JS;
  if (!existsSync(script)) throw new Error(`${script} is missing: run node scripts/build.mjs first`);
  if (opts.unsafe) checkUnsafeNames(opts.unsafe);
  log(`nemesis: seed ${seed} (0x${seed.toString(16)}), ${runs} run(s) of ${opts.durationS} s${groups > 0 ? `, ${groups} groups per node set, ${opts.keys} keys` : ""}${opts.unsafe ? `, UNSAFE ${opts.unsafe}` : ""}${opts.faults.length < kinds.length ? `, faults ${opts.faults.join(",")} only` : ""}`);
  const reports: RunReport[] = [];
  let ok = true;
  let unchecked = 0;
  for (let i = 0; i < runs; i++) {
    const s = runSeed(seed, i);
    const rep = await oneRun(i, s, opts, options.verbose ? (r) => {
      const pids = [...r.kvs.map((k) => k.child?.pid), ...r.cluster!.members.map((m) => m.process?.pid)].filter((p) => p !== undefined);
      log(`run ${i + 1}/${runs} started: etcd data dir ${r.cluster!.dir}, pids ${pids.join(",")}`);
    } : undefined);
    reports.push(rep);
    const faults = Object.entries(rep.faults).map(([k, n]) => `${k} ${n}`).join(", ");
    // A run the checker could not decide within its state budget, or that could not start,
    // is UNCHECKED: neither evidence of a bug nor of its absence; counted, not failed.
    const v = rep.verdict.ok === true ? "ok" : rep.verdict.ok === false ? "VIOLATION" : "UNCHECKED";
    if (rep.verdict.ok === "unknown") unchecked++;
    log(`run ${i + 1}/${runs} seed ${s}: ${v} in ${(rep.wallMs / 1000).toFixed(1)} s; ${rep.ops.total} ops (read ${rep.ops.read}, write ${rep.ops.write}, cas ${rep.ops.cas}, unknown ${rep.ops.unknown}, timeouts ${rep.ops.timeouts}); check ${(rep.checkMs / 1000).toFixed(1)} s; faults: ${faults || "none"}`);
    if (options.verbose) for (const [m, n] of [...rep.errors].sort((a, b) => b[1] - a[1]).slice(0, 8)) log(`  500 x${n}: ${m}`);
    if (rep.verdict.ok === true && options.verbose) for (const line of rep.timeline) log(`    ${line}`);
    if (rep.verdict.ok === "unknown") log(`  ${rep.verdict.why}`);
    if (rep.verdict.ok === false) {
      ok = false;
      log(`  ${rep.verdict.why}`);
      log(`  replay: npm run nemesis -- --seed ${s} --runs 1 --duration-s ${opts.durationS}${opts.unsafe ? ` --unsafe ${opts.unsafe}` : ""}${aimed}`);
      log("  fault timeline:");
      for (const line of rep.timeline) log(`    ${line}`);
      if (rep.verdict.ok === false && rep.verdict.minimal !== undefined) {
        log(`  minimal failing history of key ${rep.verdict.key} (times as in the timeline):`);
        for (const op of rep.verdict.minimal) log(formatOp(op, rep.t0Ms));
        const key = rep.verdict.key;
        const file = join(tmpdir(), `nemesis-${s}-${key}.json`);
        const ofKey = rep.history.filter((o) => o.key === key).map((o) => ({ ...o, callAt: +((o.callAt - rep.t0Ms) / 1000).toFixed(4), returnAt: o.returnAt === Infinity ? null : +((o.returnAt - rep.t0Ms) / 1000).toFixed(4) }));
        writeFileSync(file, `${JSON.stringify(ofKey, null, 1)}\n`);
        log(`  the key's whole history (s, as in the timeline; returnAt null = unknown): ${file}`);
      }
      if (options.stopOnFailure ?? true) break;
    }
  }
  return { ok, reports, seed, unchecked };
}

/** The CLI: `--runs N --seed S --duration-s D --unsafe names --clients C --keys K --faults kinds --groups G --verbose`. */
export async function main(argv: string[]): Promise<number> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.includes("=") ? [a.slice(2, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : a === "--verbose" ? ["verbose", ""] : [a.slice(2), argv[++i] ?? ""];
    args.set(k, v);
  }
  const num = (name: string, lo: number, hi: number): number | undefined => {
    if (!args.has(name)) return undefined;
    const n = Number(args.get(name));
    if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`--${name} must be an integer in [${lo}, ${hi}], got ${args.get(name)}`);
    return n;
  };
  const verbose = args.has("verbose");
  for (const k of args.keys()) if (!["runs", "seed", "duration-s", "unsafe", "clients", "keys", "verbose", "faults", "groups"].includes(k)) throw new Error(`unknown option --${k}`);
  const result = await runNemesis({
    runs: num("runs", 1, 100_000),
    seed: num("seed", 0, 2 ** 32 - 1),
    durationS: num("duration-s", 3, 3600),
    clients: num("clients", 1, 100),
    keys: num("keys", 1, 1000),
    unsafe: args.get("unsafe"),
    groups: num("groups", 0, 65536),
    ...(args.has("faults") ? { faults: parseFaultKinds(args.get("faults")!) } : {}),
    verbose,
  });
  const totals: Record<string, number> = {};
  let ops = 0;
  for (const rep of result.reports) {
    ops += rep.ops.total;
    for (const [k, n] of Object.entries(rep.faults)) totals[k] = (totals[k] ?? 0) + n;
  }
  const wall = result.reports.reduce((s, r) => s + r.wallMs, 0) / 1000;
  process.stdout.write(`nemesis: ${result.ok ? "PASS" : "FAIL"}: ${result.reports.length} run(s) (${result.unchecked} unchecked), ${wall.toFixed(0)} s, ${ops} ops; faults: ${Object.entries(totals).map(([k, n]) => `${k} ${n}`).join(", ")}; seed ${result.seed}\n`);
  return result.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`nemesis: ${(err as Error).message}\n`);
      process.exit(2);
    },
  );
}
