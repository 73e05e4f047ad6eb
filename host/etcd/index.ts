/**
 * `lease-core/etcd`: a service elected through etcd that serves reads from local state while a
 * lease it can prove holds (docs/etcd.md derives every rule below; read it first).
 *
 * - Election: one key `<prefix>/leader`, created with a txn `create_revision == 0` and bound to
 *   this node's own etcd lease. Its create revision is the fencing token of every write.
 * - Timing is ours, not etcd3's: the node keeps its etcd lease alive itself over a raw
 *   LeaseKeepAlive stream (never etcd3's Campaign/Election helpers nor its lease `lost` event,
 *   which fires up to 2×TTL late and reads the wall clock).
 * - The lease: a keepalive sent at `sentAt` (clock sample and generation taken BEFORE sending)
 *   counts only once *confirmed*: its response's raft_term equals the raft_term of a later
 *   quorum operation (a linearizable read-only txn, or the node's own fenced write txn) that
 *   still shows our leader key. A keepalive alone proves nothing in etcd 3.4: renewals are not
 *   replicated, and a stalled or isolated old etcd leader keeps answering them (etcd-io/etcd
 *   #15247, #12528). The lease then runs to `sentAt + TTL - margin`, margin = etcd's election
 *   timeout + 2·drift·TTL + 1 ms.
 * - State: the data prefix replicated by a watch; the applied index is the etcd revision of the
 *   last applied event. A read the lease cannot cover is a linearizable etcd read, then a wait
 *   until the local state reaches the revision it returned.
 * - The own leader key is watched: deleted or overwritten → every lease is invalidated at once.
 * - Every path to leadership (a won campaign, our own key found again) waits until the local
 *   state holds every acknowledged write (the campaign txn's meta revision), then, unless the
 *   last holder resigned or etcd has the early-revoke fix, until any previous holder's lease
 *   must have lapsed (the takeover hold: a stuck old etcd leader can revoke a live lease,
 *   etcd-io/etcd #15247). Only then does it serve.
 * - A clock fault (regression, suspend) drops the anchor; close() fails every wait in flight.
 *
 * It implements `LeaseEngine`, so `core.createLeaseReader(node)` works on it unchanged; `read`
 * and `write` are the same path through an internal reader, pause-safe (see `read`).
 * @module
 */
import { ClusterClient, Etcd3, KVClient, LeaseClient, MaintenanceClient, WatchClient, type IKeyValue, type IResponseHeader, type ITxnResponse } from "etcd3";
import type { LeaseCore } from "../core/core.js";
import { InvalidOptionError, LeadershipLostError, LeaseCoreError, NotLeaderError } from "../core/errors.js";
import type { EngineState, LeaseEngine, LeaseReader } from "../core/reader.js";

const MS = 1_000_000n;
const S = 1_000_000_000n;

/** Test-only switches that remove one guard each, so a fault test can show the checker catching
 *  the stale read the guard prevents. Never set them in production. */
export interface EtcdUnsafeSwitches {
  /** Count a keepalive without its term-matched confirmation. */
  skipConfirmation?: boolean;
  /** Replace the margin (0n: none; negative: a lease longer than etcd's TTL). */
  marginNs?: bigint;
  /** Anchor on the keepalive's receive time instead of its send time. */
  anchorOnReceive?: boolean;
  /** Do not invalidate when the own leader key is deleted or overwritten. */
  ignoreOwnKeyWatch?: boolean;
}

/** TLS to etcd (`--trusted-ca-file`, `--client-cert-auth`): PEM contents, not file names. */
export interface EtcdTlsOptions {
  /** The CA that signed etcd's server certificate (etcd's `--cert-file`). */
  ca: string | Uint8Array;
  /** This client's certificate, for etcd's `--client-cert-auth` (with `key`). */
  cert?: string | Uint8Array;
  /** The private key of `cert`. */
  key?: string | Uint8Array;
}

/** etcd's own authentication (`etcdctl auth enable`): a user and its password. */
export interface EtcdAuthOptions {
  /** The etcd user. */
  username: string;
  /** Its password. */
  password: string;
}

/** Options of `createEtcdLeaseNode`. */
export interface EtcdLeaseNodeOptions {
  /** The lease core whose clock anchors the lease (`await createLeaseCore()`). */
  core: LeaseCore;
  /** etcd client endpoints, e.g. `["127.0.0.1:2379", ...]` or `["https://etcd-0:2379", ...]`
   *  (with `tls`; no scheme means plain gRPC, or TLS when `tls` is given). */
  endpoints: string[];
  /** TLS: the CA to trust, and a client certificate and key when etcd asks for one. */
  tls?: EtcdTlsOptions;
  /** Username and password, when etcd has authentication enabled. */
  auth?: EtcdAuthOptions;
  /** Key prefix of this service: `<prefix>/leader`, `<prefix>/d/<key>`. */
  prefix: string;
  /** This instance's name, stored as the leader key's value. */
  id: string;
  /** The etcd lease TTL asked for, in whole seconds (default 2). etcd may grant more. */
  ttlS?: number;
  /** The cluster's `--election-timeout` in ms (etcd's default 1000). Part of the margin. */
  etcdElectionTimeoutMs?: number;
  /** Bound on the clock rate difference between this host and the etcd leader (default 500 ppm:
   *  etcd times leases on CLOCK_MONOTONIC, which NTP may slew by up to 500 ppm, adjtimex(2)). */
  driftPpmMax?: number;
  /** How often to renew (default TTL/4). */
  renewIntervalMs?: number;
  /** Deadline of each etcd call (default 1000 ms). Only for liveness: never part of a lease. */
  requestTimeoutMs?: number;
  /**
   * Whether a new leader waits out any previous holder's lease before it serves (docs/etcd.md
   * §5): a stuck old etcd leader can revoke a lease that is still being renewed (etcd-io/etcd
   * #15247, #12528; fixed in etcd 3.4.31, 3.5.13, 3.6.0). `auto` (default): hold unless every
   * member reported a fixed version at start; `always`; `never` (the node then reports itself
   * unprotected on a cluster without the fix: `status().revokeGuard`, event `etcd-unprotected`).
   */
  takeoverHold?: "auto" | "always" | "never";
  /** @internal Test-only switches; see EtcdUnsafeSwitches. */
  unsafe?: EtcdUnsafeSwitches;
  /** Called on every notable event (for logs and the dashboard). */
  onEvent?: (event: EtcdNodeEvent) => void;
}

/** Why something happened to the lease or the leadership (reason-coded, never a bare string). */
export type EtcdEventReason =
  | "elected"
  | "confirmed"
  | "term-mismatch"
  | "key-missing"
  | "own-key-deleted"
  | "own-key-overwritten"
  | "etcd-lease-expired"
  | "fence-failed"
  | "keepalive-timeout"
  | "keepalive-error"
  | "watch-error"
  | "clock-fault"
  | "etcd-versions"
  | "etcd-unprotected"
  | "closed";

/** Something the node did or saw (an election won, a lease lost, an own-key deletion...). */
export interface EtcdNodeEvent {
  /** What happened. */
  reason: EtcdEventReason;
  /** When, on the core's lease clock, in ns. */
  atNs: bigint;
  /** Free text for logs (a term, a revision, an error message). */
  detail?: string;
}

/** A write's outcome. */
export interface EtcdWriteResult {
  /** The etcd revision the fenced transaction committed at. */
  revision: bigint;
}

/** Where a read was answered from, and why. */
export interface EtcdReadResult {
  /** The value, or null when the key is absent. */
  value: string | null;
  /** The etcd revision the local state had when the value was taken. */
  revision: bigint;
  /** `local`: from the replicated state under a valid lease; `etcd`: after a linearizable etcd read. */
  served: "local" | "etcd";
  /** The reader's reason (`valid` when local; `expired`, `not-leader`... otherwise), or
   *  `expired` when the post-read check found the lease gone (a pause in between). */
  reason: string;
}

/** A snapshot for logs and the dashboard. */
export interface EtcdNodeStatus {
  /** This node's id. */
  id: string;
  /** Its role: `leader` while it holds the election key. */
  state: EngineState;
  /** The id stored in the election key, or null when nobody leads. */
  leaderId: string | null;
  /** This node's etcd lease id (hex), or null before it has one. */
  leaseId: string | null;
  /** The election key's create revision while this node leads (its fencing token), else 0n. */
  leaderCreateRevision: bigint;
  /** The etcd revision the local replicated state has reached. */
  appliedRevision: bigint;
  /** The etcd lease TTL, in ns. */
  ttlNs: bigint;
  /** The safety margin taken off the TTL (docs/etcd.md §3), in ns. */
  marginNs: bigint;
  /** TTL - margin: how long a confirmed keepalive proves the lease, in ns. */
  leaseDurationNs: bigint;
  /** The confirmed anchor (send time of the last confirmed keepalive), 0n for none. */
  anchorNs: bigint;
  /** Time left on the engine-side lease at `nowNs` (0n when not valid). */
  remainingNs: bigint;
  /** The lease-clock instant this status was taken at, in ns. */
  nowNs: bigint;
  /** The etcd raft term of the last confirmed keepalive. */
  lastTerm: bigint;
  /** Event counts by reason (elections, confirmations, term mismatches, ...). */
  counters: Record<string, number>;
  /** The etcd server version each member (etcd's member list, plus the endpoints given)
   *  reported at start, by client address (`unknown` when it did not answer). */
  etcdVersions: Record<string, string>;
  /**
   * What keeps an early revoke by a stuck old etcd leader (etcd-io/etcd #15247 part 1, #12528)
   * from ending a previous holder's key while its lease still serves: `etcd` (every member
   * runs a fixed version: 3.4.31+, 3.5.13+, 3.6.0+), `takeover-hold` (a new leader serves
   * nothing until any previous holder's lease must have lapsed), or `unprotected`
   * (`takeoverHold: "never"` on a cluster without the fix). `pending` before start() read it.
   */
  revokeGuard: RevokeGuard;
  /** While this node waits out a previous holder's lease: the lease-clock instant it may serve
   *  from, in ns; 0n otherwise. */
  holdUntilNs: bigint;
}

/** See `EtcdNodeStatus.revokeGuard`. */
export type RevokeGuard = "pending" | "etcd" | "takeover-hold" | "unprotected";

/** Whether an etcd server version carries the early-revoke fix (etcd-io/etcd PR #16822; 3.4
 *  backport #17465 in 3.4.31, 3.5 backport #17425 in 3.5.13, 3.6.0 onwards). */
export function etcdHasRevokeFix(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (m === null) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major !== 3) return major > 3;
  if (minor === 4) return patch >= 31;
  if (minor === 5) return patch >= 13;
  return minor >= 6;
}

/**
 * The node refused: a write could not be fenced, the etcd call failed, ... Codes:
 * `ERR_LEASE_ETCD_UNAVAILABLE` (no endpoint answered: down, wrong address, TLS refused),
 * `ERR_LEASE_ETCD_TIMEOUT` (a deadline passed), `ERR_LEASE_ETCD_AUTH` (bad credentials or no
 * permission), `ERR_LEASE_ETCD_REQUEST` (etcd refused the call otherwise),
 * `ERR_LEASE_ETCD_TTL_TOO_SHORT`, `ERR_LEASE_ETCD_CLOSED`, `ERR_LEASE_ETCD_NO_LEASE`,
 * `ERR_LEASE_ETCD_STREAM`, `ERR_LEASE_ETCD_UNKNOWN_OUTCOME`. The gRPC error is the `cause`.
 */
export class EtcdNodeError extends LeaseCoreError {
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, code, options);
  }
}

/** A write whose outcome is unknown (timeout after sending): it may or may not have committed. */
export class EtcdUnknownOutcomeError extends EtcdNodeError {
  constructor(cause: unknown) {
    super("the write's outcome is unknown (the txn was sent, no answer came)", "ERR_LEASE_ETCD_UNKNOWN_OUTCOME", { cause });
  }
}

/** A noop fault policy: etcd3's default retries a failed call up to 3 times, and a retried txn
 *  can apply twice (a put re-applied after another client's put breaks linearizability). */
const NOOP_POLICY = {
  execute: <T>(fn: (context: { signal: AbortSignal }) => T | Promise<T>): Promise<T> => Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
};

/** The options `createEtcdLeaseNode` knows: anything else is refused (a misspelt option would
 *  otherwise be silently ignored). */
const KNOWN_OPTIONS = new Set(["core", "endpoints", "tls", "auth", "prefix", "id", "ttlS", "etcdElectionTimeoutMs", "driftPpmMax", "renewIntervalMs", "requestTimeoutMs", "unsafe", "onEvent", "takeoverHold"]);

const isPem = (v: unknown): v is string | Uint8Array => (typeof v === "string" && v.length > 0) || (v instanceof Uint8Array && v.length > 0);

/** etcd3's client credentials from the checked `tls` option (grpc-js createSsl takes Buffers). */
function tlsCredentials(tls: unknown): { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer } | undefined {
  if (tls === undefined) return undefined;
  if (typeof tls !== "object" || tls === null) throw new InvalidOptionError("tls", "an object { ca, cert?, key? } of PEM strings or bytes", tls);
  const { ca, cert, key } = tls as EtcdTlsOptions;
  if (!isPem(ca)) throw new InvalidOptionError("tls.ca", "the CA certificate, PEM (a non-empty string or Uint8Array)", ca);
  if ((cert === undefined) !== (key === undefined)) throw new InvalidOptionError(cert === undefined ? "tls.cert" : "tls.key", "given together with " + (cert === undefined ? "tls.key" : "tls.cert"), cert ?? key);
  if (cert !== undefined && !isPem(cert)) throw new InvalidOptionError("tls.cert", "the client certificate, PEM (a non-empty string or Uint8Array)", cert);
  if (key !== undefined && !isPem(key)) throw new InvalidOptionError("tls.key", "the client key, PEM (a non-empty string or Uint8Array)", key);
  const buf = (v: string | Uint8Array) => (typeof v === "string" ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  return { rootCertificate: buf(ca), ...(cert === undefined ? {} : { certChain: buf(cert), privateKey: buf(key!) }) };
}

/**
 * An etcd3 / gRPC failure as an EtcdNodeError whose code says what to do (the original is the
 * cause). gRPC status codes: grpc/doc/statuscode.md; etcd3 maps some to its own classes.
 */
function etcdError(what: string, endpoints: readonly string[], err: unknown): LeaseCoreError {
  if (err instanceof LeaseCoreError) return err;
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null;
  const name = typeof e?.name === "string" ? e.name : "";
  const status = typeof e?.code === "number" ? e.code : undefined;
  const message = typeof e?.message === "string" ? e.message : String(err);
  const where = endpoints.join(", ");
  if (status === 4 || name === "GRPCDeadlineExceededError" || /deadline exceeded/i.test(message)) {
    return new EtcdNodeError(`${what}: etcd did not answer in time at ${where} (${message})`, "ERR_LEASE_ETCD_TIMEOUT", { cause: err });
  }
  if (status === 16 || status === 7 || /Authentication|PermissionDenied|InvalidAuth/.test(name) || /authentication failed|permission denied|user name is empty|invalid auth token/i.test(message)) {
    return new EtcdNodeError(`${what}: etcd refused the credentials at ${where} (${message}); check options.auth and options.tls`, "ERR_LEASE_ETCD_AUTH", { cause: err });
  }
  if (status === 14 || name === "GRPCUnavailableError" || name === "GRPCConnectFailedError" || /UNAVAILABLE|ECONNREFUSED|No connection established/i.test(message)) {
    return new EtcdNodeError(`${what}: no etcd endpoint answered at ${where} (${message}); check options.endpoints, that etcd runs, and options.tls for an https endpoint`, "ERR_LEASE_ETCD_UNAVAILABLE", { cause: err });
  }
  return new EtcdNodeError(`${what}: etcd refused the call at ${where} (${message})`, "ERR_LEASE_ETCD_REQUEST", { cause: err });
}

interface Waiter {
  revision: bigint;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface KeepAliveAnswer {
  ttlS: bigint;
  term: bigint;
  receivedAtNs: bigint;
}

type Duplex = {
  write(message: unknown): boolean;
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
  end(): void;
  cancel?: () => void;
  destroy?: (err?: Error) => void;
};

function prefixEnd(prefix: Buffer): Buffer {
  // The range end of a prefix: the prefix with its last byte incremented (etcd's clientv3.GetPrefixRangeEnd).
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The etcd-elected lease node. Create with `createEtcdLeaseNode`, then `await node.start()`. */
export class EtcdLeaseNode implements LeaseEngine {
  /** This node's id (stored in the election key while it leads). */
  readonly id: string;
  readonly #core: LeaseCore;
  readonly #client: Etcd3;
  readonly #kv: KVClient;
  readonly #leases: LeaseClient;
  readonly #watches: WatchClient;
  readonly #leaderKey: Buffer;
  readonly #dataPrefix: Buffer;
  readonly #metaKey: Buffer;
  readonly #resignedKey: Buffer;
  readonly #endpoints: string[];
  readonly #takeoverHold: "auto" | "always" | "never";
  readonly #ttlAskedS: number;
  readonly #electionTimeoutNs: bigint;
  readonly #driftPpmMax: bigint;
  readonly #renewIntervalMs: number | undefined;
  readonly #timeoutMs: number;
  readonly #unsafe: EtcdUnsafeSwitches;
  readonly #onEvent: ((event: EtcdNodeEvent) => void) | undefined;
  readonly #stop = new AbortController();
  readonly #listeners = new Set<() => void>();
  readonly #data = new Map<string, string>();
  readonly #waiters: Waiter[] = [];
  /** Event counts by reason, for the dashboard and tests. */
  readonly counters: Record<string, number> = {
    renewals: 0,
    confirmed: 0,
    termMismatch: 0,
    keepaliveFailures: 0,
    stepDowns: 0,
    localReads: 0,
    etcdReads: 0,
    postCheckMisses: 0,
    writes: 0,
    clockFaults: 0,
    takeovers: 0,
    holds: 0,
  };

  #state: EngineState = "candidate";
  #leaderId: string | null = null;
  #leaseId: string | null = null;
  #ttlNs = 0n;
  #marginNs = 0n;
  #durationNs = 0n;
  #createRevision = 0n; // of our leader key while we lead; 0n otherwise
  #applied = 0n;
  #ackNs = 0n; // the confirmed anchor; 0n = none
  #ackTerm = 0n; // the leadership (leader key create revision) the anchor was confirmed in
  #generation = 0n; // bumped by every invalidation; captured before each keepalive is sent
  #lastTerm = 0n;
  #ka: Duplex | undefined;
  /** The keepalive waiting for its answer: only an answer on the same stream, for the same
   *  lease, settles it (a late answer on a dropped stream is never taken for a newer request). */
  #kaPending: { stream: Duplex; leaseId: string; settle: (answer: KeepAliveAnswer | Error) => void } | undefined;
  #kaChain: Promise<unknown> = Promise.resolve();
  #stepDown: (() => void) | undefined;
  #reader: LeaseReader | undefined;
  #lastHit = false;
  #lastReason = "";
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #streams = new Set<Duplex>();
  readonly #kaHandlers = new Map<Duplex, () => void>();
  /** Clock faults (regressions + suspends) the core had counted when last looked at. */
  #faultsSeen = 0;
  #revokeGuard: RevokeGuard = "pending";
  #etcdVersions: Record<string, string> = {};
  /** The takeover hold (docs/etcd.md §5): the leader key it is for, when it started (0n: at the
   *  next clock reading), how long; the clock-fault count at its start. */
  #holdFor = 0n;
  #holdStartNs = 0n;
  #holdLengthNs = 0n;
  #holdProtected = false;
  #holdFaults = 0;
  /** The leader key this node last served under (caught up, hold done): a resign of it may tell
   *  the next leader that no hold is needed. */
  #servedCreateRevision = 0n;
  /** The create revision of the last other holder's key this node saw (0n: none). */
  #lastHolderCreateRevision = 0n;
  /** The longest TTL etcd granted another holder's lease that this node saw (0n: none seen). */
  #holderTtlNs = 0n;
  readonly #holdersNoted = new Set<string>();

  /** @internal Use `createEtcdLeaseNode`. */
  constructor(options: EtcdLeaseNodeOptions) {
    if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
    for (const name of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(name)) throw new InvalidOptionError(name, `one of the known options (${[...KNOWN_OPTIONS].join(", ")})`, (options as unknown as Record<string, unknown>)[name]);
    }
    const { core, endpoints, prefix, id } = options;
    if (typeof core?.now !== "function") throw new InvalidOptionError("core", "a LeaseCore", core);
    if (!Array.isArray(endpoints) || endpoints.length === 0) throw new InvalidOptionError("endpoints", "a non-empty array", endpoints);
    for (const endpoint of endpoints) {
      if (typeof endpoint !== "string" || !/^(https?:\/\/)?[^\s/]+:\d+$/.test(endpoint)) throw new InvalidOptionError("endpoints[]", '"host:port", "http://host:port" or "https://host:port"', endpoint);
      if (options.tls !== undefined && endpoint.startsWith("http://")) throw new InvalidOptionError("endpoints[]", "https:// (or no scheme) with options.tls", endpoint);
    }
    const credentials = tlsCredentials(options.tls);
    const auth: unknown = options.auth;
    if (auth !== undefined) {
      const { username, password } = (auth ?? {}) as Partial<EtcdAuthOptions>;
      if (typeof auth !== "object" || auth === null) throw new InvalidOptionError("auth", "an object { username, password }", auth);
      if (typeof username !== "string" || username === "") throw new InvalidOptionError("auth.username", "a non-empty string", username);
      if (typeof password !== "string") throw new InvalidOptionError("auth.password", "a string", typeof password === "undefined" ? password : "(not a string)");
    }
    if (typeof prefix !== "string" || prefix.length === 0) throw new InvalidOptionError("prefix", "a non-empty string", prefix);
    if (typeof id !== "string" || id.length === 0) throw new InvalidOptionError("id", "a non-empty string", id);
    const ttlS = options.ttlS ?? 2;
    if (!Number.isInteger(ttlS) || ttlS < 1) throw new InvalidOptionError("ttlS", "an integer >= 1", ttlS);
    const etMs = options.etcdElectionTimeoutMs ?? 1000;
    if (!Number.isInteger(etMs) || etMs < 1) throw new InvalidOptionError("etcdElectionTimeoutMs", "an integer >= 1", etMs);
    const drift = options.driftPpmMax ?? 500;
    if (!Number.isInteger(drift) || drift < 0 || drift > 100_000) throw new InvalidOptionError("driftPpmMax", "an integer in [0, 100000]", drift);
    const renewMs: unknown = options.renewIntervalMs;
    if (renewMs !== undefined && (!Number.isInteger(renewMs) || (renewMs as number) < 1)) throw new InvalidOptionError("renewIntervalMs", "an integer of ms >= 1", renewMs);
    const timeoutMs = options.requestTimeoutMs ?? 1000;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new InvalidOptionError("requestTimeoutMs", "an integer of ms >= 1", timeoutMs);
    if (options.onEvent !== undefined && typeof options.onEvent !== "function") throw new InvalidOptionError("onEvent", "a function", options.onEvent);
    // The TTL asked for must leave a lease after the margin (etcd may grant more, never less):
    // refused here rather than at start(), with the smallest TTL that works.
    if (options.unsafe?.marginNs === undefined) {
      const marginNs = BigInt(etMs) * MS + (2n * BigInt(ttlS) * S * BigInt(drift) + 999_999n) / 1_000_000n + MS;
      if (BigInt(ttlS) * S <= marginNs) {
        throw new EtcdNodeError(
          `option ttlS ${ttlS} s leaves no lease after the margin of ${marginNs / MS} ms (etcdElectionTimeoutMs ${etMs} + drift + 1 ms, docs/etcd.md §3): use ttlS ${marginNs / S + 1n} or more`,
          "ERR_LEASE_ETCD_TTL_TOO_SHORT",
        );
      }
    }
    this.id = id;
    this.#core = core;
    this.#ttlAskedS = ttlS;
    this.#electionTimeoutNs = BigInt(etMs) * MS;
    this.#driftPpmMax = BigInt(drift);
    this.#renewIntervalMs = options.renewIntervalMs;
    this.#timeoutMs = timeoutMs;
    this.#endpoints = [...endpoints];
    this.#unsafe = { ...options.unsafe };
    const hold = options.takeoverHold ?? "auto";
    if (hold !== "auto" && hold !== "always" && hold !== "never") throw new InvalidOptionError("takeoverHold", '"auto", "always" or "never"', hold);
    this.#takeoverHold = hold;
    this.#onEvent = options.onEvent;
    this.#leaderKey = Buffer.from(`${prefix}/leader`);
    this.#metaKey = Buffer.from(`${prefix}/d/`);
    this.#resignedKey = Buffer.from(`${prefix}/resigned`);
    this.#dataPrefix = this.#metaKey;
    this.#client = new Etcd3({
      hosts: endpoints,
      ...(credentials === undefined ? {} : { credentials }),
      ...(auth === undefined ? {} : { auth: { username: options.auth!.username, password: options.auth!.password, callOptions: () => this.#callOptions() } }),
      faultHandling: { host: () => NOOP_POLICY as never, global: NOOP_POLICY as never },
    });
    const pool = (this.#client as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
    this.#kv = new KVClient(pool);
    this.#leases = new LeaseClient(pool);
    this.#watches = new WatchClient(pool);
  }

  // ---- LeaseEngine -------------------------------------------------------------------------

  state(): EngineState {
    return this.#state;
  }

  appliedIndex(): bigint {
    return this.#applied;
  }

  /**
   * A linearizable read barrier. As leader it is also a renewal (a keepalive sent after the
   * reader's clock sample, confirmed by the read's own term), so the reader may warm its lease
   * from that sample; an unconfirmed renewal invalidates first (the reader's extend then fails
   * its generation check). Resolves once the local state has reached the revision read.
   */
  async linearizableRead(signal?: AbortSignal): Promise<bigint> {
    this.#checkOpen();
    let metaRevision: bigint;
    if (this.#state === "leader") {
      metaRevision = await this.#renew("read");
    } else {
      const txn = await this.#readTxn();
      metaRevision = this.#metaRevisionOf(txn);
    }
    await this.#waitApplied(metaRevision, signal);
    return this.#applied;
  }

  leaseDurationNs(): bigint {
    return this.#durationNs > 0n ? this.#durationNs : 0n;
  }

  lastQuorumAck(): bigint {
    // The reader asks right after its own clock reading: a fault that reading saw drops the anchor.
    this.#checkClockFaults();
    return this.#state === "leader" ? this.#ackNs : 0n;
  }

  /** The leadership epoch: our leader key's create revision (0n when not leading). Each
   *  election creates the key anew, so a new epoch is a new "term" for the reader's guards. */
  currentTerm(): bigint {
    return this.#state === "leader" ? this.#createRevision : 0n;
  }

  /** The epoch the anchor was confirmed in: an anchor from an earlier leadership never serves. */
  quorumAckTerm(): bigint {
    return this.#ackTerm;
  }

  onLeaderLoss(callback: () => void): () => void {
    const wrapped = () => callback();
    this.#listeners.add(wrapped);
    return () => this.#listeners.delete(wrapped);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Grants the etcd lease, loads the data, and starts the keepalive, watch and campaign loops.
   * Resolves once the state is loaded, NOT once elected: `await node.waitForLeader()` before
   * writing on the node meant to lead (a candidate refuses writes with NotLeaderError).
   * @throws EtcdNodeError with `ERR_LEASE_ETCD_UNAVAILABLE`, `_TIMEOUT` or `_AUTH` when etcd
   *   cannot be reached or refuses the credentials (the node can be started again).
   */
  async start(): Promise<void> {
    this.#checkOpen();
    if (this.#started) return;
    this.#started = true;
    this.#reader = this.#core.createLeaseReader(this, {
      observer: {
        onHit: (reason) => {
          this.#lastHit = true;
          this.#lastReason = reason;
        },
        onMiss: (reason) => {
          this.#lastHit = false;
          this.#lastReason = reason;
        },
      },
      onWarning: () => {},
    });
    let snapshot: Awaited<ReturnType<KVClient["range"]>>;
    try {
      await this.#grant();
      this.#faultsSeen = this.#clockFaults();
      await this.#readVersions();
      snapshot = await this.#kv.range({ key: this.#dataPrefix, range_end: prefixEnd(this.#dataPrefix) }, this.#callOptions());
    } catch (err) {
      this.#started = false; // nothing runs yet: a later start() may try again
      this.#reader.close();
      this.#reader = undefined;
      throw etcdError("start", this.#endpoints, err);
    }
    for (const kv of snapshot.kvs) this.#apply(kv, "PUT");
    this.#applied = BigInt(snapshot.header.revision);
    void this.#watchData(this.#applied + 1n);
    void this.#renewLoop();
    void this.#campaignLoop();
  }

  /** Resolves when this node leads (or rejects on close / timeout). */
  async waitForLeader(timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.#state !== "leader") {
      this.#checkOpen();
      if (performance.now() > deadline) throw new EtcdNodeError(`not leader after ${timeoutMs} ms`, "ERR_LEASE_ETCD_TIMEOUT");
      await sleep(10, this.#stop.signal);
    }
  }

  /**
   * Stops promptly, in this order: cancel the observers (watches, keepalive stream, loops),
   * resign (delete our leader key if it is still ours), revoke the etcd lease, close the client.
   * Each etcd call is bounded by a short deadline, so close() returns even with etcd gone.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const createRevision = this.#createRevision;
      this.#closed = true;
      this.#invalidate("closed");
      this.#state = "shutdown";
      this.#stop.abort();
      this.#stepDown?.();
      this.#reader?.close();
      for (const stream of this.#streams) this.#endStream(stream);
      this.#streams.clear();
      this.#kaPending?.settle(new EtcdNodeError("closed", "ERR_LEASE_ETCD_CLOSED"));
      // A wait in flight (a linearizable read, a write, a catch-up) must never be answered with
      // state older than the revision it waits for: it fails by name (docs/etcd.md §4).
      for (const w of this.#waiters.splice(0)) {
        if (__UNSAFE_CLOSE_ANSWERS_PENDING__) w.resolve();
        else w.reject(new EtcdNodeError(`closed before the local state reached revision ${w.revision}`, "ERR_LEASE_ETCD_CLOSED"));
      }
      const short = { deadline: new Date(Date.now() + 300) };
      if (createRevision > 0n) {
        // Resign. The marker tells the next leader that this holder stopped serving before its
        // key went (invalidated above) and had waited out its own predecessor: no hold needed
        // (docs/etcd.md §5). Written only by a holder that served under this key after a
        // protected takeover (#startHold): an unprotected one's marker would let a successor skip
        // its hold while the early-revoked holder before it still serves.
        const vouch = this.#servedCreateRevision === createRevision && this.#holdFor === createRevision && this.#holdProtected;
        const marker = vouch ? [{ request_put: { key: this.#resignedKey, value: Buffer.from(createRevision.toString()) } }] : [];
        await this.#kv
          .txn({ compare: [{ key: this.#leaderKey, target: "Create", result: "Equal", create_revision: createRevision.toString() }], success: [{ request_delete_range: { key: this.#leaderKey } }, ...marker], failure: [] }, short)
          .catch(() => undefined);
      }
      if (this.#leaseId !== null) await this.#leases.leaseRevoke({ ID: this.#leaseId }, short).catch(() => undefined);
      this.#client.close();
    })();
    return this.#closing;
  }

  // ---- reads and writes --------------------------------------------------------------------

  /**
   * A read of `key`. Served locally when the lease holds, else through a linearizable etcd read.
   * Pause-safe (contract §4): the value is taken first and the lease is checked again on a clock
   * sample taken after it, so a pause (SIGSTOP, GC) between the lease decision and the read
   * cannot return a value older than the lease covers; if the second check fails the read goes
   * to etcd. Followers refuse with NotLeaderError (naming the leader).
   */
  async read(key: string): Promise<EtcdReadResult> {
    this.#checkOpen();
    if (this.#state !== "leader") throw this.#notLeader();
    let calls = 0;
    const pending = this.#reader!.leaseReadThen(() => {
      calls++;
      return { value: this.#data.get(key) ?? null, revision: this.#applied };
    });
    // Both decisions at entry run synchronously inside leaseReadThen: a local decision has
    // already called fn; a miss has already told the observer why.
    const localAtEntry = calls === 1;
    const entryReason = this.#lastReason;
    const result = await pending;
    const local = localAtEntry && calls === 1;
    if (local) this.counters.localReads!++;
    else this.counters.etcdReads!++;
    if (localAtEntry && !local) this.counters.postCheckMisses!++;
    return { ...result, served: local ? "local" : "etcd", reason: local ? "valid" : localAtEntry ? this.#lastReason : entryReason };
  }

  /** A read of `key` that always goes through etcd (a linearizable read, then the local state
   *  at or past its revision): the baseline a lease read is measured against. Leader only. */
  async readLinearizable(key: string): Promise<EtcdReadResult> {
    this.#checkOpen();
    if (this.#state !== "leader") throw this.#notLeader();
    const txn = await this.#readTxn();
    await this.#waitApplied(this.#metaRevisionOf(txn));
    this.counters.etcdReads!++;
    return { value: this.#data.get(key) ?? null, revision: this.#applied, served: "etcd", reason: "linearizable" };
  }

  /**
   * Writes `key = value` with a txn fenced on our leader key's create revision, through the
   * reader's `dispatch` (clock and generation sampled before; the lease extended only after a
   * local, fenced, successful commit). A put does not renew an etcd lease, so the write carries
   * its own renewal: a keepalive, then the txn, whose raft_term must match the keepalive's.
   * Resolves once the local state has applied the write.
   * @throws NotLeaderError before sending anything; LeadershipLostError when the fence fails;
   *   EtcdUnknownOutcomeError when the txn got no answer.
   */
  async write(key: string, value: string): Promise<EtcdWriteResult> {
    this.#checkOpen();
    if (typeof key !== "string" || key.length === 0) throw new InvalidOptionError("key", "a non-empty string", key);
    if (this.#state !== "leader") throw this.#notLeader(); // before dispatch: its refusal names no leader
    const reader = this.#reader!;
    const result = await reader.dispatch(async () => {
      if (this.#state !== "leader") throw this.#notLeader();
      const createRevision = this.#createRevision;
      const sentAtNs = this.#core.now();
      this.#checkClockFaults();
      const generation = this.#generation;
      const answer = await this.#keepAlive(); // throws before the txn: a definite failure
      let txn: ITxnResponse;
      try {
        txn = await this.#kv.txn(
          {
            compare: [{ key: this.#leaderKey, target: "Create", result: "Equal", create_revision: createRevision.toString() }],
            success: [
              { request_put: { key: Buffer.concat([this.#dataPrefix, Buffer.from(key)]), value: Buffer.from(value) } },
              { request_put: { key: this.#metaKey, value: Buffer.from(this.id) } },
            ],
            failure: [],
          },
          this.#callOptions(),
        );
      } catch (err) {
        throw new EtcdUnknownOutcomeError(err);
      }
      if (!txn.succeeded) {
        this.#loseLeadership("fence-failed");
        throw new LeadershipLostError("the write's fence failed: our leader key is gone");
      }
      const revision = BigInt(txn.header.revision);
      // Unconfirmed (the terms differ): the write stands, but it proves no lease, so the reader
      // must not extend from it (`local: false`).
      const confirmed = this.#confirm(answer, txn.header, generation, sentAtNs, true, false);
      this.counters.writes!++;
      try {
        await this.#waitApplied(revision);
      } catch (err) {
        // Closed while waiting: the write did commit, so it is answered as committed, and
        // extends nothing (no read follows on a closed node).
        if ((err as { code?: string }).code === "ERR_LEASE_ETCD_CLOSED") return { commitIndex: revision, local: false };
        throw err;
      }
      return { commitIndex: revision, local: confirmed };
    });
    return { revision: result.commitIndex };
  }

  /** The local value of `key` with no lease check (for followers' displays only). */
  peek(key: string): string | null {
    return this.#data.get(key) ?? null;
  }

  /** A snapshot for logs and dashboards. */
  status(): EtcdNodeStatus {
    const nowNs = this.#core.now();
    return {
      id: this.id,
      state: this.#state,
      leaderId: this.#leaderId,
      leaseId: this.#leaseId,
      leaderCreateRevision: this.#createRevision,
      appliedRevision: this.#applied,
      ttlNs: this.#ttlNs,
      marginNs: this.#marginNs,
      leaseDurationNs: this.#durationNs,
      anchorNs: this.#ackNs,
      remainingNs: this.#remaining(nowNs),
      nowNs,
      lastTerm: this.#lastTerm,
      counters: { ...this.counters },
      etcdVersions: { ...this.#etcdVersions },
      revokeGuard: this.#revokeGuard,
      holdUntilNs: this.#holdFor !== 0n && this.#holdLengthNs > 0n && this.#holdStartNs > 0n && this.#holdStartNs + this.#holdLengthNs > nowNs ? this.#holdStartNs + this.#holdLengthNs : 0n,
    };
  }

  // ---- the lease ---------------------------------------------------------------------------

  #remaining(nowNs: bigint): bigint {
    this.#checkClockFaults();
    const reader = this.#reader;
    let best = 0n;
    if (this.#state === "leader" && this.#ackNs !== 0n && nowNs !== 0n && this.#ackNs <= nowNs) {
      const left = this.#ackNs + this.#durationNs - nowNs;
      if (left > best) best = left;
    }
    if (this.#state === "leader" && reader !== undefined && nowNs !== 0n) {
      const expiry = reader.lease.expiry();
      if (expiry > nowNs && expiry - nowNs > best) best = expiry - nowNs;
    }
    return best;
  }

  /** Sets the lease from a confirmed keepalive: `sentAt + TTL - margin` as an anchor `sentAt`
   *  with duration `TTL - margin`, iff nothing invalidated since the sample (generation). */
  #confirm(answer: KeepAliveAnswer, quorumHeader: IResponseHeader, generation: bigint, sentAtNs: bigint, keyChecked: boolean, invalidateOnMismatch = true): boolean {
    const quorumTerm = BigInt(quorumHeader.raft_term);
    this.#lastTerm = quorumTerm;
    if (!this.#unsafe.skipConfirmation && (answer.term !== quorumTerm || !keyChecked)) {
      this.counters.termMismatch!++;
      // After a linearizable read the reader extends its own lease from its sample: bumping the
      // generation here voids that extend (its generation check fails).
      if (invalidateOnMismatch) this.#invalidate(keyChecked ? "term-mismatch" : "key-missing", `keepalive term ${answer.term}, quorum term ${quorumTerm}`);
      else this.#event("term-mismatch", `keepalive term ${answer.term}, quorum term ${quorumTerm}`);
      return false;
    }
    // A clock fault since the sample (seen by a fresh reading) bumps the generation: an ack
    // sampled before a fault never proves a lease after it (docs/etcd.md §3).
    this.#core.now();
    this.#checkClockFaults();
    if (generation !== this.#generation || this.#state !== "leader") return false;
    const anchorNs = this.#unsafe.anchorOnReceive ? answer.receivedAtNs : sentAtNs;
    if (anchorNs === 0n) return false; // no clock reading: fail closed
    this.#setTtl(answer.ttlS);
    if (anchorNs > this.#ackNs) this.#ackNs = anchorNs;
    this.#ackTerm = this.#createRevision;
    this.counters.confirmed!++;
    return true;
  }

  #setTtl(ttlS: bigint): void {
    const ttlNs = ttlS * S;
    if (ttlNs === this.#ttlNs) return;
    this.#ttlNs = ttlNs;
    // docs/etcd.md §3: the election timeout (promotion and step-down windows), twice the drift
    // over one TTL (either clock may be the fast one), and 1 ms for timer and clock granularity.
    const driftNs = (2n * ttlNs * this.#driftPpmMax + 999_999n) / 1_000_000n;
    this.#marginNs = this.#unsafe.marginNs ?? this.#electionTimeoutNs + driftNs + MS;
    this.#durationNs = ttlNs - this.#marginNs;
    if (this.#durationNs <= 0n) {
      throw new EtcdNodeError(`lease duration ${this.#durationNs} ns <= 0: TTL ${ttlS} s is too short for margin ${this.#marginNs} ns (raise ttlS)`, "ERR_LEASE_ETCD_TTL_TOO_SHORT");
    }
  }

  /** Clears the engine-side lease, bumps the generation, and tells every reader. */
  #invalidate(reason: EtcdEventReason, detail?: string): void {
    this.#ackNs = 0n;
    this.#ackTerm = 0n;
    this.#generation++;
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch {
        // a listener's failure must not stop the others from invalidating
      }
    }
    this.#event(reason, detail);
  }

  #loseLeadership(reason: EtcdEventReason, detail?: string): void {
    if (this.#state === "leader") this.counters.stepDowns!++;
    if (this.#state !== "shutdown") this.#state = "follower";
    this.#createRevision = 0n;
    this.#invalidate(reason, detail);
    const stepDown = this.#stepDown;
    this.#stepDown = undefined;
    stepDown?.();
  }

  /** One renewal round as leader: keepalive (sample first), then a linearizable read-only txn
   *  confirming the term and our key. Returns the meta revision the txn saw. */
  async #renew(why: "loop" | "read"): Promise<bigint> {
    const sentAtNs = this.#core.now();
    this.#checkClockFaults(); // a fault this very reading saw must not void the renewal it starts
    const generation = this.#generation;
    const createRevision = this.#createRevision;
    this.counters.renewals!++;
    const answer = await this.#keepAlive();
    if (this.#unsafe.skipConfirmation && why === "loop") {
      this.#confirm(answer, { raft_term: answer.term.toString() } as IResponseHeader, generation, sentAtNs, true);
      return 0n;
    }
    const txn = await this.#readTxn();
    const leader = txn.responses[0]?.response_range.kvs[0];
    const ours = leader !== undefined && BigInt(leader.create_revision) === createRevision && leader.lease === this.#leaseId;
    if (!ours && createRevision !== 0n && this.#createRevision === createRevision) {
      this.#loseLeadership("key-missing");
      throw new LeadershipLostError("our leader key is gone");
    }
    this.#confirm(answer, txn.header, generation, sentAtNs, ours);
    return this.#metaRevisionOf(txn);
  }

  #readTxn(): Promise<ITxnResponse> {
    // A read-only txn is linearizable in etcd (ReadIndex before serving, v3_server.go Txn).
    return this.#kv
      .txn({ compare: [], success: [{ request_range: { key: this.#leaderKey } }, { request_range: { key: this.#metaKey } }], failure: [] }, this.#callOptions())
      .catch((err: unknown) => {
        throw etcdError("linearizable read", this.#endpoints, err);
      });
  }

  #metaRevisionOf(txn: ITxnResponse): bigint {
    const meta = txn.responses[1]?.response_range.kvs[0];
    return meta === undefined ? 0n : BigInt(meta.mod_revision);
  }

  async #renewLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const intervalMs = this.#renewIntervalMs ?? Math.max(50, (this.#ttlAskedS * 1000) / 4);
      if (this.#state === "leader") {
        try {
          await this.#renew("loop");
        } catch {
          // counted where it happened; the anchor simply ages out
        }
      } else if (this.#leaseId !== null) {
        // Keep the etcd lease alive while campaigning, so a recampaign can reuse it.
        await this.#keepAlive().catch(() => undefined);
      }
      await sleep(intervalMs, signal);
    }
  }

  // ---- keepalive stream --------------------------------------------------------------------

  async #grant(): Promise<void> {
    const granted = await this.#leases.leaseGrant({ TTL: this.#ttlAskedS }, this.#callOptions());
    this.#leaseId = granted.ID;
    this.#setTtl(BigInt(granted.TTL));
  }

  /** Sends one keepalive on our own stream and waits for its answer. One at a time: the stream
   *  answers in order, so the answer is ours. */
  #keepAlive(): Promise<KeepAliveAnswer> {
    const run = this.#kaChain.then(() => this.#keepAliveNow());
    this.#kaChain = run.catch(() => undefined);
    return run;
  }

  async #keepAliveNow(): Promise<KeepAliveAnswer> {
    this.#checkOpen();
    const leaseId = this.#leaseId;
    if (leaseId === null) throw new EtcdNodeError("no etcd lease", "ERR_LEASE_ETCD_NO_LEASE");
    const stream = await this.#keepAliveStream();
    const answer = await new Promise<KeepAliveAnswer | Error>((resolve) => {
      const pending = {
        stream,
        leaseId,
        settle: (a: KeepAliveAnswer | Error) => {
          clearTimeout(timer);
          if (this.#kaPending === pending) this.#kaPending = undefined;
          resolve(a);
        },
      };
      const timer = setTimeout(() => pending.settle(new EtcdNodeError(`keepalive timed out (no answer in ${this.#timeoutMs} ms)`, "ERR_LEASE_ETCD_TIMEOUT")), this.#timeoutMs);
      this.#kaPending = pending;
      stream.write({ ID: leaseId });
    });
    if (answer instanceof Error) {
      this.counters.keepaliveFailures!++;
      // A stream that missed an answer is out of step: never reuse it (a late answer would be
      // taken for the next request's); its handlers go with it.
      this.#dropKeepAliveStream(stream);
      this.#event(answer.message.includes("timed out") ? "keepalive-timeout" : "keepalive-error", answer.message);
      throw answer;
    }
    if (answer.ttlS <= 0n) {
      // etcd says the lease is gone: its keys (our leader key) are deleted.
      this.#leaseId = null;
      this.#loseLeadership("etcd-lease-expired");
      void this.#grant().catch(() => undefined);
      throw new LeadershipLostError("our etcd lease expired");
    }
    return answer;
  }

  async #keepAliveStream(): Promise<Duplex> {
    if (this.#ka !== undefined) return this.#ka;
    const stream = (await this.#leases.leaseKeepAlive().catch((err: unknown) => {
      throw etcdError("keepalive", this.#endpoints, err);
    })) as unknown as Duplex;
    this.#ka = stream;
    this.#streams.add(stream);
    // Each handler answers only the keepalive sent on its own stream for the same lease.
    const onData = (res: { ID: string; TTL: string; header: IResponseHeader }) => {
      const receivedAtNs = this.#core.now();
      const pending = this.#kaPending;
      if (pending === undefined || pending.stream !== stream || String(res.ID) !== pending.leaseId) return;
      pending.settle({ ttlS: BigInt(res.TTL), term: BigInt(res.header.raft_term), receivedAtNs });
    };
    const fail = (err?: Error) => {
      const pending = this.#kaPending;
      this.#dropKeepAliveStream(stream);
      if (pending !== undefined && pending.stream === stream) {
        pending.settle(err instanceof Error ? etcdError("keepalive", this.#endpoints, err) : new EtcdNodeError("keepalive stream ended", "ERR_LEASE_ETCD_STREAM"));
      }
    };
    const onEnd = () => fail();
    stream.on("data", onData);
    stream.on("error", fail);
    stream.on("end", onEnd);
    this.#kaHandlers.set(stream, () => {
      stream.removeListener("data", onData);
      stream.removeListener("error", fail);
      stream.removeListener("end", onEnd);
      // Cancelling emits a late CANCELLED error: swallow it rather than crash on an unhandled 'error'.
      stream.on("error", () => {});
    });
    return stream;
  }

  #dropKeepAliveStream(stream: Duplex): void {
    if (this.#ka === stream) this.#ka = undefined;
    this.#streams.delete(stream);
    const detach = this.#kaHandlers.get(stream);
    this.#kaHandlers.delete(stream);
    detach?.();
    this.#endStream(stream);
  }

  #endStream(stream: Duplex): void {
    try {
      stream.cancel?.();
    } catch {
      // already gone
    }
    try {
      stream.end();
    } catch {
      // already gone
    }
  }

  // ---- election ----------------------------------------------------------------------------

  /**
   * Campaigns until closed. Every path to leadership (a won campaign, or our own key found from
   * before: a watch hiccup, a catch-up that timed out, a campaign whose answer was lost to its
   * deadline) goes through the same two waits before anything is served (docs/etcd.md §4, §5):
   *
   * 1. catch-up: the campaign txn is linearizable (it carries a put, so it goes through raft) and
   *    reads the meta key, which every acknowledged write puts: its mod revision is at least every
   *    write acknowledged before it. The local state must have applied it.
   * 2. the takeover hold: unless the key's last holder resigned (the marker), any previous
   *    holder's lease must have lapsed: it was confirmed before its key went, so it ends within
   *    one TTL of this txn's answer.
   */
  async #campaignLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        if (this.#leaseId === null) await this.#grant();
        const txn = await this.#kv.txn(
          {
            compare: [{ key: this.#leaderKey, target: "Create", result: "Equal", create_revision: "0" }],
            success: [
              { request_put: { key: this.#leaderKey, value: Buffer.from(this.id), lease: this.#leaseId! } },
              { request_range: { key: this.#metaKey } },
              { request_range: { key: this.#resignedKey } },
              { request_delete_range: { key: this.#resignedKey } },
            ],
            failure: [{ request_range: { key: this.#leaderKey } }, { request_range: { key: this.#metaKey } }],
          },
          this.#callOptions(),
        );
        // After the answer, so after the previous holder's key was gone.
        const answeredAtNs = this.#core.now();
        let createRevision: bigint;
        let retake = false;
        if (txn.succeeded) {
          createRevision = BigInt(txn.header.revision);
          // Every creation clears the marker, and only a resign writes it (in the txn that deletes
          // the key), naming the resigned key's create revision. It counts only when it names
          // the last holder this node saw (a node of an older release, which does not clear it,
          // may have held the key since): then that holder stopped serving before its key went.
          const marker = txn.responses[2]?.response_range.kvs[0];
          const resigned = marker !== undefined && this.#lastHolderCreateRevision !== 0n && marker.value.toString() === this.#lastHolderCreateRevision.toString();
          this.#startHold(createRevision, resigned ? undefined : answeredAtNs);
        } else {
          const kv: IKeyValue | undefined = txn.responses[0]?.response_range.kvs[0];
          if (kv === undefined) continue;
          this.#leaderId = kv.value.toString();
          if (this.#state !== "shutdown") this.#state = "follower";
          if (this.#leaderId !== this.id || BigInt(kv.lease) !== BigInt(this.#leaseId ?? "0")) {
            this.#noteHolder(kv);
            this.#lastHolderCreateRevision = BigInt(kv.create_revision);
            await this.#watchKey(BigInt(kv.create_revision), BigInt(txn.header.revision) + 1n, false);
            continue;
          }
          // Our own key from before. Whether its creation found a resign marker is unknown
          // here: hold, unless this key already served or its hold is already running.
          createRevision = BigInt(kv.create_revision);
          retake = true;
          if (createRevision !== this.#servedCreateRevision && createRevision !== this.#holdFor) this.#startHold(createRevision, answeredAtNs);
        }
        if (!(retake && __UNSAFE_RETAKE_WITHOUT_CATCH_UP__)) await this.#waitApplied(this.#metaRevisionOf(txn), signal);
        if (createRevision !== this.#servedCreateRevision) await this.#waitHold(signal);
        if (signal.aborted) return;
        this.#createRevision = createRevision;
        this.#servedCreateRevision = createRevision;
        this.#leaderId = this.id;
        this.#state = "leader";
        if (retake) this.counters.takeovers!++;
        this.#event("elected", `create revision ${createRevision}${retake ? " (own key from before)" : ""}, applied ${this.#applied}`);
        const lost = new Promise<void>((resolve) => (this.#stepDown = resolve));
        void this.#renew("loop").catch(() => undefined); // the first anchor, right away
        await Promise.race([lost, this.#watchKey(createRevision, (retake ? BigInt(txn.header.revision) : createRevision) + 1n, true)]);
        if (this.#state === "leader" && this.#createRevision === createRevision && !signal.aborted) {
          // The own-key watch ended without a verdict (stream error): check by a read.
          const check = await this.#readTxn().catch(() => undefined);
          const kv = check?.responses[0]?.response_range.kvs[0];
          if (check !== undefined && kv !== undefined && BigInt(kv.create_revision) === createRevision) {
            continue; // still ours: the loop's txn fails and retakes it (still caught up, no hold)
          }
          if (check !== undefined) this.#loseLeadership("own-key-deleted");
        }
      } catch {
        await sleep(100, signal);
      }
    }
  }

  /** Starts the takeover hold for the leader key `createRevision`, from `fromNs` (a clock
   *  reading after the previous holder's key was gone; 0n: the next good reading), or none
   *  (`undefined`: the last holder resigned). */
  #startHold(createRevision: bigint, fromNs: bigint | undefined): void {
    this.#holdFor = createRevision;
    // Whether this takeover waited out every previous holder: it holds (or etcd revokes only from
    // its real leader), or the last holder's marker says that holder had. A node that serves
    // unprotected (`takeoverHold: "never"` on an unfixed etcd) may not vouch for its
    // predecessor's lapse, so its resign writes no marker (see close()).
    this.#holdProtected = fromNs === undefined || this.#revokeGuard !== "unprotected";
    this.#holdStartNs = fromNs ?? 0n;
    this.#holdLengthNs = fromNs === undefined ? 0n : this.#holdNs();
    this.#holdFaults = this.#clockFaults();
  }

  /** How long a takeover holds: the longest TTL a previous holder's etcd lease may have had
   *  (this node's own, or a longer one it saw granted to another holder), or 0n when the
   *  cluster revokes only from the real leader (`revokeGuard`). The previous holder's lease was
   *  confirmed before its key went, so it ran out by TTL - margin after that; the margin covers
   *  the drift between the two hosts' clocks (docs/etcd.md §5). */
  #holdNs(): bigint {
    if (this.#revokeGuard === "etcd" || this.#revokeGuard === "unprotected") return 0n;
    const own = this.#ttlNs > 0n ? this.#ttlNs : BigInt(this.#ttlAskedS) * S;
    return own > this.#holderTtlNs ? own : this.#holderTtlNs;
  }

  async #waitHold(signal: AbortSignal): Promise<void> {
    if (this.#holdLengthNs === 0n) return;
    this.counters.holds!++;
    while (!signal.aborted) {
      const nowNs = this.#core.now();
      const faults = this.#clockFaults();
      if (faults !== this.#holdFaults) {
        // A clock fault during the hold: its start is no longer comparable; start again.
        this.#holdFaults = faults;
        this.#holdStartNs = 0n;
      }
      if (nowNs !== 0n && this.#holdStartNs === 0n) this.#holdStartNs = nowNs;
      const leftNs = this.#holdStartNs === 0n ? this.#holdLengthNs : this.#holdStartNs + this.#holdLengthNs - nowNs;
      if (nowNs !== 0n && leftNs <= 0n) {
        this.#holdLengthNs = 0n;
        return;
      }
      await sleep(Math.max(1, Math.min(50, Number(leftNs / MS) + 1)), signal);
    }
  }

  /** Remembers the TTL etcd granted another holder's lease (for the hold's length). */
  #noteHolder(kv: IKeyValue): void {
    const lease = String(kv.lease);
    if (lease === "0" || this.#holdersNoted.has(lease)) return;
    this.#holdersNoted.add(lease);
    if (this.#holdersNoted.size > 1024) this.#holdersNoted.clear();
    void this.#leases
      .leaseTimeToLive({ ID: lease }, this.#callOptions())
      .then((res) => {
        const grantedNs = BigInt(res.grantedTTL) * S;
        if (grantedNs > this.#holderTtlNs) this.#holderTtlNs = grantedNs;
      })
      .catch(() => this.#holdersNoted.delete(lease));
  }

  /** Reads every member's etcd version (bounded by the request timeout) and decides the revoke
   *  guard: the members etcd lists (any of them can be the stuck leader), plus the endpoints
   *  given. A member that does not answer, or no member list, counts as unfixed. */
  async #readVersions(): Promise<void> {
    const urls = new Set(this.#endpoints);
    try {
      const pool = (this.#client as unknown as { pool: ConstructorParameters<typeof ClusterClient>[0] }).pool;
      const list = await new ClusterClient(pool).memberList({}, this.#callOptions());
      for (const member of list.members) {
        const url = member.clientURLs[0];
        urls.add(url === undefined ? `${member.name || member.ID} (no client URL)` : url.replace(/^https?:\/\//, ""));
      }
    } catch {
      urls.add("member list (unavailable)");
    }
    const entries = await Promise.all(
      [...urls].map(async (endpoint): Promise<[string, string]> => {
        if (endpoint.includes(" ")) return [endpoint, "unknown"];
        const client = new Etcd3({ hosts: endpoint, faultHandling: { host: () => NOOP_POLICY as never, global: NOOP_POLICY as never } });
        try {
          const pool = (client as unknown as { pool: ConstructorParameters<typeof MaintenanceClient>[0] }).pool;
          const status = await new MaintenanceClient(pool).status(this.#callOptions());
          return [endpoint, status.version];
        } catch {
          return [endpoint, "unknown"];
        } finally {
          client.close();
        }
      }),
    );
    this.#etcdVersions = Object.fromEntries(entries);
    const fixed = entries.every(([, version]) => etcdHasRevokeFix(version));
    this.#revokeGuard = this.#takeoverHold === "always" ? "takeover-hold" : fixed ? "etcd" : this.#takeoverHold === "never" ? "unprotected" : "takeover-hold";
    const list = entries.map(([e, v]) => `${e}=${v}`).join(", ");
    this.#event("etcd-versions", `${list}: revoke guard ${this.#revokeGuard}`);
    if (this.#revokeGuard === "unprotected") {
      this.#event("etcd-unprotected", `${list}: without the early-revoke fix (etcd 3.4.31, 3.5.13, 3.6.0) and takeoverHold "never", a stuck old etcd leader can end a holder's key while its lease still serves (etcd-io/etcd #15247)`);
    }
  }

  /**
   * Watches the leader key from `fromRevision` until the key with `createRevision` is deleted
   * or overwritten (resolves), or the stream fails (resolves too: the caller re-reads). When it
   * is our own key, that is a leadership loss, acted on at once.
   */
  async #watchKey(createRevision: bigint, fromRevision: bigint, own: boolean): Promise<void> {
    const signal = this.#stop.signal;
    if (signal.aborted) return;
    let stream: Duplex;
    try {
      stream = (await this.#watches.watch()) as unknown as Duplex;
    } catch {
      await sleep(100, signal);
      return;
    }
    this.#streams.add(stream);
    await new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        signal.removeEventListener("abort", finish);
        this.#streams.delete(stream);
        this.#endStream(stream);
        resolve();
      };
      signal.addEventListener("abort", finish, { once: true });
      if (own) {
        // Also end when we step down for another reason (fence failed, lease expired...).
        const previous = this.#stepDown;
        this.#stepDown = () => {
          previous?.();
          finish();
        };
      }
      stream.on("data", (res: { canceled?: boolean; events?: { type: string; kv: IKeyValue }[] }) => {
        if (res.canceled) return finish();
        for (const event of res.events ?? []) {
          const gone = event.type === "DELETE" || BigInt(event.kv.create_revision) !== createRevision;
          if (!gone) continue;
          if (own && !this.#unsafe.ignoreOwnKeyWatch && this.#createRevision === createRevision) {
            this.#loseLeadership(event.type === "DELETE" ? "own-key-deleted" : "own-key-overwritten");
          }
          if (!own || !this.#unsafe.ignoreOwnKeyWatch) return finish();
        }
      });
      stream.on("error", finish);
      stream.on("end", finish);
      stream.write({ create_request: { key: this.#leaderKey, start_revision: fromRevision.toString() } });
    });
  }

  // ---- replicated state --------------------------------------------------------------------

  async #watchData(fromRevision: bigint): Promise<void> {
    const signal = this.#stop.signal;
    let from = fromRevision;
    while (!signal.aborted) {
      let stream: Duplex;
      try {
        stream = (await this.#watches.watch()) as unknown as Duplex;
      } catch {
        await sleep(100, signal);
        continue;
      }
      this.#streams.add(stream);
      await new Promise<void>((resolve) => {
        const finish = () => {
          signal.removeEventListener("abort", finish);
          this.#streams.delete(stream);
          this.#endStream(stream);
          resolve();
        };
        signal.addEventListener("abort", finish, { once: true });
        stream.on("data", (res: { canceled?: boolean; events?: { type: string; kv: IKeyValue }[] }) => {
          if (res.canceled) return finish();
          for (const event of res.events ?? []) this.#apply(event.kv, event.type);
          this.#wake();
        });
        stream.on("error", () => {
          // Cancelling the watch on close() ends the stream with an error too: not an event.
          if (!signal.aborted) this.#event("watch-error");
          finish();
        });
        stream.on("end", finish);
        stream.write({ create_request: { key: this.#dataPrefix, range_end: prefixEnd(this.#dataPrefix), start_revision: from.toString() } });
      });
      from = this.#applied + 1n;
      await sleep(50, signal);
    }
  }

  #apply(kv: IKeyValue, type: string): void {
    const revision = BigInt(kv.mod_revision);
    const key = kv.key.subarray(this.#dataPrefix.length).toString();
    if (key.length > 0) {
      if (type === "DELETE") this.#data.delete(key);
      else this.#data.set(key, kv.value.toString());
    }
    if (revision > this.#applied) this.#applied = revision;
  }

  #wake(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i]!;
      if (this.#applied >= waiter.revision) {
        this.#waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  #waitApplied(revision: bigint, signal?: AbortSignal): Promise<void> {
    if (this.#applied >= revision) return Promise.resolve();
    if (this.#closed) {
      if (__UNSAFE_CLOSE_ANSWERS_PENDING__) return Promise.resolve();
      return Promise.reject(new EtcdNodeError(`closed before the local state reached revision ${revision}`, "ERR_LEASE_ETCD_CLOSED"));
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        signal?.removeEventListener("abort", onAbort);
        reject(new EtcdNodeError(`local state did not reach revision ${revision} in time`, "ERR_LEASE_ETCD_TIMEOUT"));
      }, this.#timeoutMs * 5);
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = {
        revision,
        resolve: () => {
          settle();
          resolve();
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      const remove = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
      };
      const onAbort = () => {
        clearTimeout(timer);
        remove();
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  // ---- helpers -----------------------------------------------------------------------------

  #callOptions(): { deadline: Date } {
    // gRPC deadlines are wall-clock Dates; they bound waiting only, never a lease.
    return { deadline: new Date(Date.now() + this.#timeoutMs) };
  }

  /** A follower's or candidate's refusal, naming the leader, or saying how to wait for one. */
  #notLeader(): NotLeaderError {
    return new NotLeaderError(
      this.#leaderId === null
        ? `not the leader (no leader yet: start() does not wait for the election; await node.waitForLeader() first)`
        : `not the leader (leader: ${this.#leaderId})`,
    );
  }

  /** Clock regressions + suspends the core has counted (each invalidated every core lease). */
  #clockFaults(): number {
    const exported = (this.#core as unknown as { exports?: { clockFaults?: () => number } }).exports?.clockFaults;
    if (typeof exported === "function") return exported();
    const events = this.#core.clockEvents();
    return Number(events.regressions + events.suspends);
  }

  /**
   * No ack sampled before a clock fault may prove a lease after it (docs/etcd.md §3): once the
   * core has counted a regression or a suspend (on a reading just taken), the anchor is dropped
   * and the generation bumped, so a keepalive in flight, sampled before the fault, sets none.
   * The core has already invalidated its own leases (the reader's among them).
   */
  #checkClockFaults(): void {
    const faults = this.#clockFaults();
    if (faults === this.#faultsSeen) return;
    this.#faultsSeen = faults;
    if (__UNSAFE_ACKS_SURVIVE_CLOCK_FAULT__) return;
    this.counters.clockFaults!++;
    this.#ackNs = 0n;
    this.#ackTerm = 0n;
    this.#generation++;
    this.#event("clock-fault", `clock faults counted: ${faults}`);
  }

  #checkOpen(): void {
    if (this.#closed) throw new EtcdNodeError("the etcd lease node is closed", "ERR_LEASE_ETCD_CLOSED");
  }

  #event(reason: EtcdEventReason, detail?: string): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent({ reason, atNs: this.#core.now(), ...(detail === undefined ? {} : { detail }) });
    } catch {
      // an observer's failure is not ours
    }
  }
}

/** A node campaigning for `<prefix>/leader`; call `await node.start()`. */
export function createEtcdLeaseNode(options: EtcdLeaseNodeOptions): EtcdLeaseNode {
  return new EtcdLeaseNode(options);
}
