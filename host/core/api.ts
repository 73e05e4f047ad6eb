/**
 * The runtime-independent public API, re-exported by every runtime entry (host/runtime/*.ts).
 * Each entry adds its own `createLeaseCore`.
 * @module
 */
export { LeaseCore } from "./core.js";
export { Lease, engineLeaseAckValid } from "./lease.js";
export { QuorumAckTracker, JointQuorumAckTracker, followerQuorum } from "./trackers.js";
export type { ClockInfo, ClockSource } from "./clock.js";
export type { ClockEvents, CoreOptions, LeaseConfig } from "./core.js";
export type { VoterConfig } from "./trackers.js";
export { LeaseReader } from "./reader.js";
export { ShardedLeaseReader } from "./sharded-reader.js";
export type { ActiveGuards, CommitResult, EngineState, LeaseEngine, LeaseObserver, LeaseReaderOptions } from "./reader.js";
export type { ShardedLeaseReaderOptions } from "./sharded-reader.js";
export { REASONS } from "./abi.js";
export type { Reason } from "./abi.js";
export * from "./errors.js";
export * from "../metrics/index.js";
