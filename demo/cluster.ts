/**
 * A local etcd cluster on loopback for the demo and the fault tests: N members of the Debian
 * `etcd` binary (3.4), each its own process, with a unique cluster token and data dir per run
 * under one temp dir, removed at stop. Ports are picked at random above 20000 (never 2379/2380,
 * where the Debian package runs its default member).
 *
 * Faults are real: kill (SIGKILL) and restart, pause (SIGSTOP/SIGCONT), and isolation, which
 * cuts every peer connection of one member with iptables rules in a chain of our own: packets to
 * or from its peer port, and packets its process sends to the other peer ports (matched by the
 * uid it runs as: `-m owner --uid-owner`, iptables-extensions(8)). Client traffic is untouched,
 * so an isolated old leader keeps answering clients (etcd-io/etcd #15247). Isolation needs root
 * and iptables; `canIsolate()` says whether this host has both.
 *
 * A slow disk (`slowDisk`) is strace's syscall fault injection on the running member: every
 * fdatasync/fsync/sync_file_range it enters is held for a fixed delay (strace(1), "-e inject",
 * `delay_enter`). etcd 3.4 syncs its WAL with fdatasync (wal.sync → fileutil.Fdatasync) inside
 * the raft loop, so the member's raft stalls (no heartbeats, no applies) while its other
 * goroutines (gRPC, the lessor) run on: the stuck leader of etcd-io/etcd #15247 and #12528.
 * Needs root (or ptrace rights over the member) and strace; `canSlowDisk()` says whether both.
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { Etcd3, MaintenanceClient } from "etcd3";

/** How to get etcd on Debian/Ubuntu (printed when the binary is missing). */
export const ETCD_INSTALL_HINT = "etcd is not installed. On Debian/Ubuntu: sudo apt-get install -y etcd-server   (or set ETCD_BIN=/path/to/etcd)";

export class EtcdMissingError extends Error {
  constructor() {
    super(ETCD_INSTALL_HINT);
  }
}

/** The etcd binary: $ETCD_BIN, else `etcd` on PATH, else /usr/bin/etcd; undefined if none. */
export function findEtcd(): string | undefined {
  const candidates = [process.env.ETCD_BIN, ...(process.env.PATH ?? "").split(delimiter).map((d) => join(d, "etcd")), "/usr/bin/etcd"];
  return candidates.find((c): c is string => typeof c === "string" && c.length > 0 && existsSync(c));
}

export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  clientUrl: string;
  dataDir: string;
  uid: number | undefined;
  process: ChildProcess | undefined;
  paused: boolean;
  isolated: boolean;
}

export interface EtcdClusterOptions {
  size?: number;
  heartbeatMs?: number;
  electionTimeoutMs?: number;
  /** Where etcd's own logs go (default: discarded). */
  logDir?: string;
  /** More etcd flags for every member (the long-running demo's auto-compaction). */
  extraArgs?: string[];
}

export interface MemberStatus {
  name: string;
  up: boolean;
  leader: boolean;
  raftTerm: string;
  memberId: string;
}

async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const ok = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port found");
}

function iptables(args: string[]): boolean {
  return spawnSync("iptables", ["-w", ...args], { stdio: "ignore" }).status === 0;
}

/** Whether member isolation works here (root and a working iptables). */
export function canIsolate(): boolean {
  return process.getuid?.() === 0 && spawnSync("iptables", ["-w", "-S", "OUTPUT"], { stdio: "ignore" }).status === 0;
}

/** Whether `slowDisk` works here (strace installed and allowed to attach: root). */
export function canSlowDisk(): boolean {
  return process.getuid?.() === 0 && spawnSync("strace", ["-V"], { stdio: "ignore" }).status === 0;
}

/** What a slow disk holds: every sync ("all": WAL and bbolt's commits; reads and Status wait
 *  behind a held bbolt commit), or only the WAL's ("wal": raft stalls, everything else runs). */
export type SlowDiskScope = "all" | "wal";

/** The syscalls a slow disk delays: etcd's WAL and bbolt use fdatasync on Linux; fsync and
 *  sync_file_range are included so an etcd build that uses them is slowed too. */
const SYNC_SYSCALLS = "fdatasync,fsync,sync_file_range";

export class EtcdCluster {
  readonly dir: string;
  readonly token: string;
  readonly members: EtcdMember[] = [];
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  readonly #bin: string;
  readonly #logDir: string | undefined;
  readonly #extraArgs: string[];
  readonly #chain: string;
  #chainMade = false;
  #stopped = false;
  /** The strace processes holding a member's disk syncs (slowDisk), per member index. */
  readonly #slow = new Map<number, ChildProcess>();

  /** @internal Use `startEtcdCluster`. */
  constructor(bin: string, options: EtcdClusterOptions) {
    this.#bin = bin;
    this.heartbeatMs = options.heartbeatMs ?? 50;
    this.electionTimeoutMs = options.electionTimeoutMs ?? 300;
    this.#logDir = options.logDir;
    this.#extraArgs = options.extraArgs ?? [];
    // tmpfs when there is one: etcd fsyncs its WAL on every commit, and a loopback demo gains
    // nothing from durable disks (LEASE_CORE_ETCD_TMP overrides).
    const base = process.env.LEASE_CORE_ETCD_TMP ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());
    this.dir = mkdtempSync(join(base, "lease-core-etcd-"));
    chmodSync(this.dir, 0o711); // members run as their own uids (see isolate) and must reach their dirs
    this.token = `lease-core-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.#chain = `LC${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`.toUpperCase().slice(0, 28);
  }

  get clientEndpoints(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  /** @internal */
  async init(size: number): Promise<void> {
    const root = process.getuid?.() === 0;
    const uidBase = 61000 + Math.floor(Math.random() * 1000) * 8;
    for (let i = 0; i < size; i++) {
      const clientPort = await freePort();
      let peerPort = await freePort();
      while (peerPort === clientPort) peerPort = await freePort();
      const dataDir = join(this.dir, `m${i}`);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const uid = root ? uidBase + i : undefined;
      if (uid !== undefined) chownSync(dataDir, uid, uid);
      this.members.push({ name: `m${i}`, clientPort, peerPort, clientUrl: `http://127.0.0.1:${clientPort}`, dataDir, uid, process: undefined, paused: false, isolated: false });
    }
    for (let i = 0; i < size; i++) this.#spawn(i, "new");
    await this.waitForLeader(15_000);
  }

  #spawn(i: number, state: "new" | "existing"): void {
    const m = this.members[i]!;
    const initialCluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(",");
    const args = [
      "--name", m.name,
      "--data-dir", m.dataDir,
      "--listen-client-urls", m.clientUrl,
      "--advertise-client-urls", m.clientUrl,
      "--listen-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--initial-cluster", initialCluster,
      "--initial-cluster-token", this.token,
      "--initial-cluster-state", state,
      "--heartbeat-interval", String(this.heartbeatMs),
      "--election-timeout", String(this.electionTimeoutMs),
      "--logger", "zap",
      "--log-outputs", this.#logDir ? join(this.#logDir, `${m.name}.log`) : "/dev/null",
      ...this.#extraArgs,
    ];
    const child = spawn(this.#bin, args, {
      stdio: "ignore",
      ...(m.uid !== undefined ? { uid: m.uid, gid: m.uid } : {}),
    });
    child.on("exit", () => {
      if (m.process === child) m.process = undefined;
    });
    m.process = child;
    m.paused = false;
  }

  /** Each member's view: up, leader or not, raft term. */
  async status(): Promise<MemberStatus[]> {
    return Promise.all(
      this.members.map(async (m) => {
        const client = new Etcd3({ hosts: `127.0.0.1:${m.clientPort}` });
        try {
          if (m.process === undefined || m.paused) throw new Error("down");
          const pool = (client as unknown as { pool: ConstructorParameters<typeof MaintenanceClient>[0] }).pool;
          const s = await new MaintenanceClient(pool).status({ deadline: new Date(Date.now() + 400) });
          return { name: m.name, up: true, leader: s.leader === s.header.member_id && !m.isolated, raftTerm: s.raftTerm, memberId: s.header.member_id };
        } catch {
          return { name: m.name, up: false, leader: false, raftTerm: "0", memberId: "" };
        } finally {
          client.close();
        }
      }),
    );
  }

  /** The index of the member that leads with a quorum (not an isolated old leader), or -1. */
  async leaderIndex(): Promise<number> {
    const statuses = await this.status();
    // An isolated member may still believe it leads; the real leader is the one the majority
    // follows: the highest term among members that say they lead.
    let best = -1;
    let bestTerm = -1n;
    statuses.forEach((s, i) => {
      if (s.leader && BigInt(s.raftTerm) > bestTerm) {
        best = i;
        bestTerm = BigInt(s.raftTerm);
      }
    });
    return best;
  }

  async waitForLeader(timeoutMs = 10_000, notIndex = -1): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const i = await this.leaderIndex();
      if (i >= 0 && i !== notIndex) return i;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`etcd: no leader within ${timeoutMs} ms`);
  }

  kill(i: number): void {
    const m = this.members[i]!;
    if (m.paused) m.process?.kill("SIGCONT");
    m.process?.kill("SIGKILL");
    m.process = undefined;
    m.paused = false;
  }

  /** Restarts a killed member on its data dir (it rejoins with its old identity). */
  restart(i: number): void {
    if (this.members[i]!.process !== undefined) return;
    this.#spawn(i, "existing");
  }

  pause(i: number): void {
    const m = this.members[i]!;
    m.process?.kill("SIGSTOP");
    m.paused = true;
  }

  resume(i: number): void {
    const m = this.members[i]!;
    m.process?.kill("SIGCONT");
    m.paused = false;
  }

  /** Cuts every peer connection of member i (see the module comment). Throws without root/iptables. */
  isolate(i: number): void {
    const m = this.members[i]!;
    if (m.uid === undefined) throw new Error("isolation needs root (members run as their own uids)");
    this.#ensureChain();
    const others = this.members.filter((x) => x !== m).map((x) => String(x.peerPort)).join(",");
    const ok =
      iptables(["-A", this.#chain, "-p", "tcp", "--dport", String(m.peerPort), "-j", "DROP"]) &&
      iptables(["-A", this.#chain, "-p", "tcp", "--sport", String(m.peerPort), "-j", "DROP"]) &&
      iptables(["-A", this.#chain, "-p", "tcp", "-m", "owner", "--uid-owner", String(m.uid), "-m", "multiport", "--dports", others, "-j", "DROP"]);
    if (!ok) throw new Error("iptables: adding the isolation rules failed");
    m.isolated = true;
  }

  /** Drops every packet a process running as `uid` sends to an etcd client port (a client cut
   *  off from etcd: its streams stall, nothing is reset). Undone by heal(). */
  dropClientTraffic(uid: number): void {
    this.#ensureChain();
    const ports = this.members.map((x) => String(x.clientPort)).join(",");
    if (!iptables(["-A", this.#chain, "-p", "tcp", "-m", "owner", "--uid-owner", String(uid), "-m", "multiport", "--dports", ports, "-j", "DROP"])) {
      throw new Error("iptables: adding the client-cut rule failed");
    }
  }

  #ensureChain(): void {
    if (!canIsolate()) throw new Error("network faults need root and iptables (apt-get install -y iptables)");
    if (this.#chainMade) return;
    if (!iptables(["-N", this.#chain])) throw new Error(`iptables: cannot create chain ${this.#chain}`);
    iptables(["-I", "OUTPUT", "-j", this.#chain]);
    this.#chainMade = true;
  }

  /** Removes every isolation rule. */
  heal(): void {
    if (this.#chainMade) iptables(["-F", this.#chain]);
    for (const m of this.members) m.isolated = false;
  }

  /**
   * Makes member i's disk slow (scope "all") or only its raft log (scope "wal"): strace attaches to every thread of the running member
   * (`-f -p`) and holds each fdatasync/fsync/sync_file_range it enters for `delayMs`
   * (`-e inject=...:delay_enter=<delay>ms`, strace(1) "Tampering"). Resolves once strace has
   * attached; returns `heal`, which detaches strace (SIGINT: it lets the tracees go, strace(1)
   * `-p`) and resolves once it has exited. stop() heals every slow disk. One slow disk per
   * member at a time (a second call replaces the first). Every other syscall also stops for
   * ptrace (seccomp-bpf filtering does not apply to `-p`), a small cost next to the delay.
   * @throws Error when the member is not running, strace is missing, or it could not attach.
   */
  async slowDisk(i: number, delayMs: number, scope: SlowDiskScope = "all"): Promise<() => Promise<void>> {
    const m = this.members[i];
    if (m === undefined) throw new RangeError(`no member ${i}`);
    if (!Number.isFinite(delayMs) || delayMs <= 0) throw new RangeError(`delayMs must be > 0, got ${delayMs}`);
    if (scope !== "all" && scope !== "wal") throw new RangeError(`scope must be "all" or "wal", got ${String(scope)}`);
    const pid = m.process?.pid;
    if (pid === undefined || m.process?.exitCode !== null) throw new Error(`member ${m.name} is not running`);
    await this.#healSlowDisk(i);
    // "wal": only syscalls on the WAL segments (strace -P: "trace only system calls accessing
    // path", fds resolved to their paths), so bbolt's commits, and the reads and status calls
    // that wait on them, run at full speed and only raft stalls.
    const walDir = join(m.dataDir, "member", "wal");
    const paths = scope === "wal" && existsSync(walDir) ? readdirSync(walDir).filter((f) => f.endsWith(".wal")).flatMap((f) => ["-P", join(walDir, f)]) : [];
    if (scope === "wal" && paths.length === 0) throw new Error(`member ${m.name} has no WAL segment yet`);
    const child = spawn("strace", ["-f", "-qq", "-o", "/dev/null", ...paths, "-p", String(pid), "-e", `trace=${SYNC_SYSCALLS}`, "-e", `inject=${SYNC_SYSCALLS}:delay_enter=${delayMs}ms`], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.#slow.set(i, child);
    // With -qq strace prints nothing on attach; it prints errors (no such process, ptrace
    // refused). Attached = still running after a short while with nothing on stderr.
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const early = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
    if (early || stderr.length > 0) {
      this.#slow.delete(i);
      child.kill("SIGKILL");
      throw new Error(`strace could not slow ${m.name}'s disk: ${stderr.trim() || "it exited"}`);
    }
    let healed: Promise<void> | undefined;
    return () => (healed ??= this.#slow.get(i) === child ? this.#healSlowDisk(i) : Promise.resolve());
  }

  async #healSlowDisk(i: number): Promise<void> {
    const child = this.#slow.get(i);
    if (child === undefined) return;
    this.#slow.delete(i);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(timer);
  }

  /** Kills every member, removes the iptables chain and the temp dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all([...this.#slow.keys()].map((i) => this.#healSlowDisk(i)));
    const exits = this.members.map((m) => {
      const child = m.process;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        if (m.paused) child.kill("SIGCONT");
        child.kill("SIGKILL");
      });
    });
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 3000))]);
    if (this.#chainMade) {
      iptables(["-D", "OUTPUT", "-j", this.#chain]);
      iptables(["-F", this.#chain]);
      iptables(["-X", this.#chain]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts a cluster and waits for its first leader. @throws EtcdMissingError without etcd. */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const bin = findEtcd();
  if (bin === undefined) throw new EtcdMissingError();
  const cluster = new EtcdCluster(bin, options);
  try {
    await cluster.init(options.size ?? 3);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
