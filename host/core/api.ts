/**
 * The runtime-independent public API, re-exported by every runtime entry (node.ts, ...).
 * Each entry adds its own `createLeaseCore`.
 * @module
 */
export { LeaseCore, Lease, QuorumAckTracker, JointQuorumAckTracker, followerQuorum, engineLeaseAckValid } from "./core.js";
export type { ClockInfo, ClockSource, ClockEvents, CoreOptions, LeaseConfig, VoterConfig } from "./core.js";
export { LeaseReader, ShardedLeaseReader } from "./reader.js";
export type { ActiveGuards, CommitResult, EngineState, LeaseEngine, LeaseObserver, LeaseReaderOptions, ShardedLeaseReaderOptions } from "./reader.js";
export { REASONS } from "./abi.js";
export type { Reason } from "./abi.js";
export * from "./errors.js";
export * from "../metrics/index.js";
