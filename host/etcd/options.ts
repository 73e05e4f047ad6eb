/**
 * The options of `createEtcdLeaseNode` (`lease-core/etcd`) and their check at creation
 * (docs/etcd.md, "Options are checked at creation", and §3 for the drift and for a TTL too
 * short for the margin, both asked of the core through margin.ts):
 * an unknown option, a value of the wrong type or range, each refused by name before anything
 * is built.
 * @module
 */
import type { LeaseCore } from "../core/core.js";
import { InvalidOptionError } from "../core/errors.js";
import { EtcdNodeError } from "./errors.js";
import { etcdLeaseTiming, MS, S } from "./margin.js";
import type { EtcdNodeEvent } from "./types.js";

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
   *  etcd times leases on CLOCK_MONOTONIC, which NTP may slew by up to 500 ppm, adjtimex(2)).
   *  An integer; its range is the core's configuration rule (docs/contract.md §5), whose own
   *  typed error refuses a drift out of it. */
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
   * None of them skips the hold after a key deleted by someone else while its holder's etcd
   * lease is alive or unknown (docs/etcd.md §5; event `takeover-live-holder`).
   */
  takeoverHold?: "auto" | "always" | "never";
  /** @internal Test-only switches; see EtcdUnsafeSwitches. */
  unsafe?: EtcdUnsafeSwitches;
  /** Called on every notable event (for logs and the dashboard). */
  onEvent?: (event: EtcdNodeEvent) => void;
}

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

/** The options after their check, with their defaults. */
export interface CheckedOptions {
  core: LeaseCore;
  endpoints: string[];
  credentials: ReturnType<typeof tlsCredentials>;
  auth: EtcdAuthOptions | undefined;
  prefix: string;
  id: string;
  ttlS: number;
  etcdElectionTimeoutMs: number;
  driftPpmMax: number;
  renewIntervalMs: number | undefined;
  requestTimeoutMs: number;
  takeoverHold: "auto" | "always" | "never";
  unsafe: EtcdUnsafeSwitches;
  onEvent: ((event: EtcdNodeEvent) => void) | undefined;
}

/** Checks `options` as `createEtcdLeaseNode` receives them: the first bad one throws, by name. */
export function checkOptions(options: EtcdLeaseNodeOptions): CheckedOptions {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) throw new InvalidOptionError(name, `one of the known options (${[...KNOWN_OPTIONS].join(", ")})`, (options as unknown as Record<string, unknown>)[name]);
  }
  const { core, endpoints, prefix, id } = options;
  if (typeof core?.now !== "function" || typeof core.leaseDurationFor !== "function" || typeof core.ttlSafetyMarginNs !== "function") throw new InvalidOptionError("core", "a LeaseCore", core);
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
  if (!Number.isInteger(drift)) throw new InvalidOptionError("driftPpmMax", "an integer of ppm", drift);
  // Its range is the core's rule, asked of the core with the lease the TTL asked for
  // (margin.ts): the core's own typed error for a drift it refuses.
  const timing = etcdLeaseTiming(core, BigInt(ttlS) * S, BigInt(etMs) * MS, BigInt(drift));
  const renewMs: unknown = options.renewIntervalMs;
  if (renewMs !== undefined && (!Number.isInteger(renewMs) || (renewMs as number) < 1)) throw new InvalidOptionError("renewIntervalMs", "an integer of ms >= 1", renewMs);
  const timeoutMs = options.requestTimeoutMs ?? 1000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new InvalidOptionError("requestTimeoutMs", "an integer of ms >= 1", timeoutMs);
  if (options.onEvent !== undefined && typeof options.onEvent !== "function") throw new InvalidOptionError("onEvent", "a function", options.onEvent);
  // The TTL asked for must leave a lease after the margin (etcd may grant more, never less):
  // refused here rather than at start(), with the smallest TTL that works.
  if (options.unsafe?.marginNs === undefined) {
    const { marginNs, durationNs } = timing;
    if (durationNs <= 0n) {
      throw new EtcdNodeError(
        `option ttlS ${ttlS} s leaves no lease after the margin of ${marginNs / MS} ms (etcdElectionTimeoutMs ${etMs} + drift + 1 ms, docs/etcd.md §3): use ttlS ${marginNs / S + 1n} or more`,
        "ERR_LEASE_ETCD_TTL_TOO_SHORT",
      );
    }
  }
  const hold = options.takeoverHold ?? "auto";
  if (hold !== "auto" && hold !== "always" && hold !== "never") throw new InvalidOptionError("takeoverHold", '"auto", "always" or "never"', hold);
  return {
    core,
    endpoints: [...endpoints],
    credentials,
    auth: auth === undefined ? undefined : options.auth,
    prefix,
    id,
    ttlS,
    etcdElectionTimeoutMs: etMs,
    driftPpmMax: drift,
    renewIntervalMs: options.renewIntervalMs,
    requestTimeoutMs: timeoutMs,
    takeoverHold: hold,
    unsafe: { ...options.unsafe },
    onEvent: options.onEvent,
  };
}
