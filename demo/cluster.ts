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
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
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

  /** Kills every member, removes the iptables chain and the temp dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
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
