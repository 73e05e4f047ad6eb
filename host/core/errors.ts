/**
 * Every error lease-core throws: each has a `name` and a stable `code`, so callers can branch
 * on either without parsing messages. Bad input is refused before any state changes.
 * @module
 */

/** Base class of every error lease-core throws. */
export class LeaseCoreError extends Error {
  /** A stable, machine-readable code, e.g. `ERR_LEASE_INVALID_INSTANT`. */
  readonly code: string;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
  /** The class's own name (`NotLeaderError`, ...), so logs and `err.name` checks see it. */
  override get name(): string {
    return this.constructor.name;
  }
}

/** A time argument is not a bigint count of ns in [0, 2^63 - 1]. */
export class InvalidInstantError extends LeaseCoreError {
  constructor(
    /** The argument that was refused, e.g. `untilNs`. */
    readonly argument: string,
    value: unknown) {
    super(`${argument} must be a bigint of ns in [0, 2^63-1], got ${describe(value)}`, "ERR_LEASE_INVALID_INSTANT");
  }
}

/** A duration is not a bigint count of ns in [0, 2^63 - 1]. */
export class InvalidDurationError extends LeaseCoreError {
  constructor(
    /** The argument that was refused, e.g. `untilNs`. */
    readonly argument: string,
    value: unknown) {
    super(`${argument} must be a bigint of ns in [0, 2^63-1], got ${describe(value)}`, "ERR_LEASE_INVALID_DURATION");
  }
}

/** A generation is not a bigint in [0, 2^63 - 1]. */
export class InvalidGenerationError extends LeaseCoreError {
  constructor(
    /** The argument that was refused, e.g. `untilNs`. */
    readonly argument: string,
    value: unknown) {
    super(`${argument} must be a bigint in [0, 2^63-1], got ${describe(value)}`, "ERR_LEASE_INVALID_GENERATION");
  }
}

/** A follower quorum is not an integer in [0, MAX_PEERS], or a voter count not a positive integer. */
export class InvalidQuorumError extends LeaseCoreError {
  constructor(
    /** The argument that was refused, e.g. `untilNs`. */
    readonly argument: string,
    value: unknown, limit: number, min = 0) {
    super(`${argument} must be an integer in [${min}, ${limit}], got ${describe(value)}`, "ERR_LEASE_INVALID_QUORUM");
  }
}

/** A term is not a bigint in [0, 2^63 - 1]. */
export class InvalidTermError extends LeaseCoreError {
  constructor(
    /** The argument that was refused, e.g. `untilNs`. */
    readonly argument: string,
    value: unknown) {
    super(`${argument} must be a bigint in [0, 2^63-1], got ${describe(value)}`, "ERR_LEASE_INVALID_TERM");
  }
}

/** A voter configuration is not a set of peer ids (for a joint tracker). */
export class InvalidVoterConfigError extends LeaseCoreError {
  constructor(message: string) {
    super(`invalid voter configuration: ${message}`, "ERR_LEASE_INVALID_VOTERS");
  }
}

/** A peer id is not an integer in [0, 2^31 - 1]. */
export class InvalidPeerIdError extends LeaseCoreError {
  constructor(value: unknown) {
    super(`peerId must be an integer in [0, 2^31-1], got ${describe(value)}`, "ERR_LEASE_INVALID_PEER_ID");
  }
}

/** A tracker already holds MAX_PEERS peers and an ack came from a new one. */
export class TooManyPeersError extends LeaseCoreError {
  constructor(peerId: number, maxPeers: number) {
    super(`peer ${peerId} would exceed the ${maxPeers} peers a tracker holds`, "ERR_LEASE_TOO_MANY_PEERS");
  }
}

/** A commit passed to `dispatch` returned something without a non-negative bigint `commitIndex`. */
export class InvalidCommitResultError extends LeaseCoreError {
  constructor(value: unknown) {
    super(`commit() must resolve to { commitIndex: bigint >= 0, forwarded?: boolean, local?: boolean }, got ${describe(value)}`, "ERR_LEASE_INVALID_COMMIT_RESULT");
  }
}

/** An engine answered with a value of the wrong type (an index that is not a bigint, a state
 *  that is not an EngineState, an `onLeaderLoss` that returns no deregister function...). */
export class InvalidEngineAnswerError extends LeaseCoreError {
  constructor(method: string, value: unknown, expected = "a bigint >= 0") {
    super(`engine.${method}() must return ${expected}, got ${describe(value)}`, "ERR_LEASE_INVALID_ENGINE_ANSWER");
  }
}

/** An engine implements part of the lease capability (leaseDurationNs, lastQuorumAck, onLeaderLoss) but not all three. */
export class PartialLeaseCapabilityError extends LeaseCoreError {
  constructor(missing: string[]) {
    super(`the lease capability needs leaseDurationNs, lastQuorumAck and onLeaderLoss together; missing: ${missing.join(", ")}`, "ERR_LEASE_PARTIAL_CAPABILITY");
  }
}

/** A lease or tracker was used after `dispose()`. */
export class DisposedError extends LeaseCoreError {
  constructor(what: string) {
    super(`${what} was disposed`, "ERR_LEASE_DISPOSED");
  }
}

/** The core's lease table or tracker pool is full (size it with `createLeaseCore({ maxLeases })`). */
export class CapacityError extends LeaseCoreError {
  constructor(what: string, capacity: number) {
    super(`no free ${what}: all ${capacity} are in use`, "ERR_LEASE_CAPACITY");
  }
}

/** A reader was used after `close()`. */
export class ReaderClosedError extends LeaseCoreError {
  constructor() {
    super("the lease reader is closed", "ERR_LEASE_READER_CLOSED");
  }
}

/** `route(key)` returned no group, or a group the sharded reader does not have. */
export class UnroutableKeyError extends LeaseCoreError {
  constructor(
    /** The key that found no group. */
    readonly key: string | Uint8Array,
    /** What `route(key)` returned: undefined, or a group the reader does not have. */
    readonly groupId: number | undefined,
  ) {
    super(groupId === undefined ? "route(key) found no group for the key" : `route(key) returned unknown group ${groupId}`, "ERR_LEASE_UNROUTABLE_KEY");
  }
}

/** A group id the sharded reader was not given. */
export class UnknownGroupError extends LeaseCoreError {
  constructor(
    /** The group id asked for. */
    readonly groupId: unknown,
  ) {
    super(`unknown group ${describe(groupId)}`, "ERR_LEASE_UNKNOWN_GROUP");
  }
}

/** An option has the wrong type or range. */
export class InvalidOptionError extends LeaseCoreError {
  constructor(option: string, expected: string, value: unknown) {
    super(`option ${option} must be ${expected}, got ${describe(value)}`, "ERR_LEASE_INVALID_OPTION");
  }
}

/**
 * The core module (`lease-core.wasm`) could not be loaded: fetched with an HTTP error, not
 * readable (Deno without `--allow-read`), or not a wasm module (an HTML page served in its
 * place). The message says what to do; `url` is where it was looked for.
 */
export class WasmLoadError extends LeaseCoreError {
  constructor(
    /** Where the module was looked for. */
    readonly url: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, "ERR_LEASE_WASM_LOAD", options);
  }
}

/**
 * A history given to `checkKvHistory` (`lease-core/testing`) is malformed: an operation with
 * `returnAt < callAt`, a time that is NaN, an unknown `kind`, a compare-and-set without
 * `expected`, ... The checker refuses the whole history rather than judge part of it.
 */
export class InvalidHistoryError extends LeaseCoreError {
  constructor(
    problem: string,
    /** The position in the history of the operation refused; undefined when the history itself is. */
    readonly index?: number,
  ) {
    super(index === undefined ? `invalid history: ${problem}` : `history[${index}]: ${problem}`, "ERR_LEASE_INVALID_HISTORY");
  }
}

/** The wasm core hit a broken invariant (a bug in lease-core): it refuses to continue. */
export class CoreInvariantError extends LeaseCoreError {
  constructor(message: string) {
    super(`lease-core invariant broken: ${message}`, "ERR_LEASE_INVARIANT");
  }
}

/** The engine is not the leader (dispatch refuses to commit). A leadership-loss error. */
export class NotLeaderError extends LeaseCoreError {
  constructor(message = "not the leader", options?: { cause?: unknown }) {
    super(message, "ERR_LEASE_NOT_LEADER", options);
  }
}

/** Leadership was lost during the operation. A leadership-loss error. */
export class LeadershipLostError extends LeaseCoreError {
  constructor(message = "leadership lost", options?: { cause?: unknown }) {
    super(message, "ERR_LEASE_LEADERSHIP_LOST", options);
  }
}

/** A leadership transfer is in progress. A leadership-loss error. */
export class LeadershipTransferInProgressError extends LeaseCoreError {
  constructor(message = "leadership transfer in progress", options?: { cause?: unknown }) {
    super(message, "ERR_LEASE_LEADERSHIP_TRANSFER", options);
  }
}

const LEADERSHIP_LOSS_CODES = new Set([
  "ERR_LEASE_NOT_LEADER",
  "ERR_LEASE_LEADERSHIP_LOST",
  "ERR_LEASE_LEADERSHIP_TRANSFER",
]);

/** How many `cause` links `isLeadershipLossError` follows: engines wrap errors a few times; a
 *  longer chain (or a cycle) is not taken for a leadership loss. */
const MAX_CAUSE_DEPTH = 16;

function isOwnLeadershipLoss(err: unknown): boolean {
  if (err instanceof NotLeaderError || err instanceof LeadershipLostError || err instanceof LeadershipTransferInProgressError) {
    return true;
  }
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === "string" && LEADERSHIP_LOSS_CODES.has(code);
}

/**
 * Whether `err` says leadership is gone (not leader, leadership lost, transfer in progress):
 * one of the three classes above, or any error carrying one of their codes (so an engine's own
 * error types can opt in by setting `code`), itself or through its `cause` chain (engines wrap
 * errors: `new Error("readIndex failed", { cause: new NotLeaderError() })`), followed at most
 * 16 links deep. Such an error invalidates the lease; any other error leaves it alone
 * (contract §4).
 */
export function isLeadershipLossError(err: unknown): boolean {
  let e: unknown = err;
  // Never throws: a throwing `code` or `cause` getter, or a proxy whose traps throw, says
  // nothing about leadership, and the caller must get the engine's own error, not this one.
  try {
    for (let depth = 0; depth <= MAX_CAUSE_DEPTH; depth++) {
      if (isOwnLeadershipLoss(e)) return true;
      if (typeof e !== "object" || e === null || !("cause" in e)) return false;
      e = (e as { cause?: unknown }).cause;
    }
  } catch {
    return false;
  }
  return false;
}

/**
 * A refused value as a message shows it: `5n`, `"text"`, `the number 5`, `undefined`, and an
 * object by its first fields (`{ commitIndex: the number 1 }`), so the message names what was
 * wrong inside it rather than saying "an object".
 */
function describe(value: unknown, depth = 0): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value);
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "function") return "a function";
  if (typeof value === "object") {
    if (Array.isArray(value)) return `an array of ${value.length}`;
    const proto = Object.getPrototypeOf(value) as object | null;
    if (proto !== null && proto !== Object.prototype) {
      const name = (value as object).constructor?.name || "object";
      return `${/^[aeiou]/i.test(name) ? "an" : "a"} ${name}`;
    }
    const keys = Object.keys(value);
    if (keys.length === 0) return "{}";
    if (depth > 0) return "{ … }";
    const shown = keys.slice(0, 3).map((k) => `${k}: ${describe((value as Record<string, unknown>)[k], depth + 1)}`);
    return `{ ${shown.join(", ")}${keys.length > 3 ? ", …" : ""} }`;
  }
  return `the ${typeof value} ${String(value)}`;
}

/** Base class of the configuration rules of contract §5; each rule has its own subclass. */
export class LeaseConfigError extends LeaseCoreError {}
/** `electionTimeoutNs` must be > 0. */
export class ElectionTimeoutNotPositiveError extends LeaseConfigError {
  constructor() { super("electionTimeoutNs must be > 0", "ERR_LEASE_CONFIG_ELECTION_TIMEOUT"); }
}
/** `tickNs` must be > 0. */
export class TickNotPositiveError extends LeaseConfigError {
  constructor() { super("tickNs must be > 0", "ERR_LEASE_CONFIG_TICK"); }
}
/** `driftPpmMax` must be >= 0. */
export class DriftNegativeError extends LeaseConfigError {
  constructor() { super("driftPpmMax must be >= 0", "ERR_LEASE_CONFIG_DRIFT_NEGATIVE"); }
}
/** `driftPpmMax` must be <= 1e6 (a clock at double or zero speed is no clock). */
export class DriftTooLargeError extends LeaseConfigError {
  constructor() { super("driftPpmMax must be <= 1000000", "ERR_LEASE_CONFIG_DRIFT_TOO_LARGE"); }
}
/** `leaseDurationNs = electionTimeoutNs - safetyMarginNs` must be > 0: a lease this short is no lease. */
export class LeaseDurationNotPositiveError extends LeaseConfigError {
  constructor(leaseDurationNs: bigint) {
    super(`leaseDurationNs = electionTimeoutNs - safetyMarginNs = ${leaseDurationNs} must be > 0; lease reads would be silently disabled`, "ERR_LEASE_CONFIG_DURATION");
  }
}
/** `safetyMarginNs` must cover `electionTimeoutNs * driftPpmMax / 1e6 + tickNs`. */
export class SafetyMarginTooSmallError extends LeaseConfigError {
  constructor(
    /** The margin given, in ns. */
    readonly safetyMarginNs: bigint,
    /** The smallest margin the rule allows for that timeout, drift and tick, in ns. */
    readonly minSafetyMarginNs: bigint,
  ) {
    super(`safetyMarginNs ${safetyMarginNs} is below electionTimeoutNs * driftPpmMax / 1e6 + tickNs = ${minSafetyMarginNs}`, "ERR_LEASE_CONFIG_MARGIN");
  }
}
/** Lease reads are only safe when the engine steps down on losing its quorum (check-quorum). */
export class CheckQuorumRequiredError extends LeaseConfigError {
  constructor() { super("lease reads require checkQuorum: a leader that cannot step down by itself may keep serving after a partition", "ERR_LEASE_CONFIG_CHECK_QUORUM"); }
}
