/**
 * Argument checks of the core API: every value a user passes is checked here, before the wasm
 * sees it. A bad one throws a typed error (errors.ts) and changes nothing. BigInt → i64
 * conversion wraps silently (2^63 becomes negative), so the range checks are not optional.
 * @module
 */
import {
  InvalidDurationError,
  InvalidInstantError,
  InvalidOptionError,
  InvalidPeerIdError,
  InvalidQuorumError,
  InvalidTermError,
  InvalidVoterConfigError,
} from "./errors.js";

/** @internal The largest i64: instants, durations, terms and generations are in [0, I64_MAX]. */
export const I64_MAX = (1n << 63n) - 1n;
/** @internal The largest i32: peer ids and voter counts are in [0, I32_MAX]. */
export const I32_MAX = 2 ** 31 - 1;

/** @internal Throws InvalidInstantError unless `value` is a bigint in [0, 2^63-1]. */
export function checkInstant(value: unknown, argument: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > I64_MAX) throw new InvalidInstantError(argument, value);
  return value;
}

/** @internal Throws InvalidDurationError unless `value` is a bigint in [0, 2^63-1]. */
export function checkDuration(value: unknown, argument: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > I64_MAX) throw new InvalidDurationError(argument, value);
  return value;
}

/** @internal Throws InvalidTermError unless `value` is a bigint in [0, 2^63-1]. */
export function checkTerm(value: unknown, argument: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > I64_MAX) throw new InvalidTermError(argument, value);
  return value;
}

/** @internal Throws InvalidQuorumError unless `value` is an integer in [0, maxPeers]. */
export function checkQuorum(value: unknown, maxPeers: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > maxPeers) {
    throw new InvalidQuorumError("followerQuorum", value, maxPeers);
  }
  return value;
}

/** @internal Throws InvalidPeerIdError unless `value` is an integer in [0, 2^31-1]. */
export function checkPeerId(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > I32_MAX) throw new InvalidPeerIdError(value);
  return value;
}

/** @internal A core size option: `fallback` when undefined, else an integer in [1, max]. */
export function checkCapacity(option: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidOptionError(option, `an integer in [1, ${max}]`, value);
  }
  return value;
}

/** @internal A voter set: a non-empty array of distinct peer ids. */
export function checkVoters(value: unknown, option: string): number[] {
  if (!Array.isArray(value)) throw new InvalidVoterConfigError(`${option} must be an array of peer ids`);
  const ids = value.map((id) => checkPeerId(id));
  if (new Set(ids).size !== ids.length) throw new InvalidVoterConfigError(`${option} repeats a peer id`);
  if (ids.length === 0) throw new InvalidVoterConfigError(`${option} is empty`);
  return ids;
}

const ENGINE_STATES: ReadonlySet<unknown> = new Set(["leader", "follower", "candidate", "shutdown", "unknown"]);

/** @internal A role as a LeaseEngine reports it (reader.ts EngineState): anything else (`true`,
 *  1, "LEADER", undefined) is a typed error, not a silent "not the leader". */
export function checkEngineState(state: unknown): string {
  if (!ENGINE_STATES.has(state)) throw new InvalidOptionError("state", '"leader", "follower", "candidate", "shutdown" or "unknown"', state);
  return state as string;
}
