/**
 * The conformance-vector runner (vectors/README.md): runs the contract as data through the
 * public API of any host's core. Portable: no Node APIs, so every runtime runs the same cases.
 * @module
 */
import type { ClockSource } from "../core/clock.js";
import type { LeaseCore } from "../core/core.js";
import type { Lease } from "../core/lease.js";
import type { JointQuorumAckTracker, QuorumAckTracker } from "../core/trackers.js";
import { followerQuorum } from "../core/trackers.js";
import { REASONS, type Reason } from "../core/abi.js";
import type { EngineState, LeaseEngine, LeaseReader } from "../core/reader.js";

/** One conformance case. */
export interface VectorCase {
  name: string;
  intent: string;
  steps: VectorStep[];
}
/** One step of a case; fields per op (vectors/README.md). */
export type VectorStep = { op: string; expect?: unknown; expectError?: string } & Record<string, unknown>;

/** The result of running a set of cases. */
export interface VectorReport {
  passed: number;
  failed: number;
  steps: number;
  failures: { name: string; step: number; message: string }[];
}

const T_NS = 1_000_000_000_000n; // "t": 1000 s, so every instant in a case is non-zero
const UNITS: Record<string, bigint> = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n, min: 60_000_000_000n, h: 3_600_000_000_000n };

/** Parses "t+50ms", "t-1ns", "0", "9223372036854775808", "5s+500us"; a non-string passes through. */
export function parseInstant(value: unknown): unknown {
  if (typeof value !== "string") return value;
  if (value === "NaN") return Number.NaN;
  const terms = value.match(/[+-]?[^+-]+/g);
  if (terms === null) throw new Error(`bad instant ${value}`);
  let total = 0n;
  for (const term of terms) {
    const sign = term.startsWith("-") ? -1n : 1n;
    const body = term.replace(/^[+-]/, "");
    if (body === "t") {
      total += sign * T_NS;
      continue;
    }
    const m = /^(\d+)(ns|us|ms|s|min|h)?$/.exec(body);
    if (m === null) throw new Error(`bad instant term ${term} in ${value}`);
    total += sign * BigInt(m[1]!) * UNITS[m[2] ?? "ns"]!;
  }
  return total;
}

/** A clock the steps script: `tick` sets the next reading (and sleep offset). */
class ScriptedClock implements ClockSource {
  readingNs = T_NS;
  offsetNs = 0n;
  now(): bigint {
    return this.readingNs;
  }
  sleepOffsetNs(): bigint {
    return this.offsetNs;
  }
}

/** The engine a `reader` step makes: every answer scripted by `engine` steps; a linearizable
 *  read always succeeds (at index 1) and is counted. Methods a step leaves out are absent. */
class ScriptedEngine {
  role: EngineState = "leader";
  durationNs = 700_000_000n;
  ackNs = 0n;
  currentTerm = 1n;
  appliedTerm = 1n;
  ackTerm = 1n;
  transferring = false;
  reads = 0;
  readonly listeners = new Set<() => void>();
  engine(step: VectorStep): LeaseEngine {
    const e: LeaseEngine = {
      state: () => this.role,
      appliedIndex: () => 1n,
      linearizableRead: async () => {
        this.reads++;
        return 1n;
      },
    };
    if (step["capable"] !== false) {
      e.leaseDurationNs = () => this.durationNs;
      e.lastQuorumAck = () => this.ackNs;
      e.onLeaderLoss = (cb) => {
        this.listeners.add(cb);
        return () => this.listeners.delete(cb);
      };
    }
    const terms = step["terms"];
    if (terms === "own" || terms === "ack" || terms === "both") e.currentTerm = () => this.currentTerm;
    if (terms === "own" || terms === "both") e.appliedTerm = () => this.appliedTerm;
    if (terms === "ack" || terms === "both") e.quorumAckTerm = () => this.ackTerm;
    if (step["transferKnown"] === true) e.transferInProgress = () => this.transferring;
    return e;
  }
}

function same(actual: unknown, expected: unknown): boolean {
  if (typeof expected === "object" && expected !== null) {
    return Object.entries(expected).every(([k, v]) => same((actual as Record<string, unknown>)[k], v));
  }
  return actual === expected;
}

function show(value: unknown): string {
  return typeof value === "bigint" ? `${value}n` : JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
}

/**
 * Runs `cases` against cores made by `makeCore` (one fresh core per case, on a scripted clock).
 * Never throws for a failing case: the report lists each failure with its step.
 */
export async function runVectors(makeCore: (clock: ClockSource) => Promise<LeaseCore>, cases: readonly VectorCase[]): Promise<VectorReport> {
  const report: VectorReport = { passed: 0, failed: 0, steps: 0, failures: [] };
  for (const c of cases) {
    const clock = new ScriptedClock();
    const core = await makeCore(clock);
    const leases = new Map<string, Lease>();
    const trackers = new Map<string, QuorumAckTracker>();
    const readers = new Map<string, { reader: LeaseReader; engine: ScriptedEngine; reasons: Reason[] }>();
    const joints = new Map<string, JointQuorumAckTracker>();
    const captured = new Map<string, bigint>();
    const readerOf = (name: unknown) => readers.get(String(name)) ?? fail(`no reader ${String(name)}`);
    const joint = (name: unknown) => joints.get(String(name)) ?? fail(`no joint tracker ${String(name)}`);
    const lease = (name: unknown) => leases.get(String(name)) ?? fail(`no lease ${String(name)}`);
    const tracker = (name: unknown) => trackers.get(String(name)) ?? fail(`no tracker ${String(name)}`);
    const gen = (l: Lease, g: unknown): unknown => {
      if (g === "current") return l.generation();
      if (typeof g === "string" && g.startsWith("$")) return captured.get(g.slice(1)) ?? fail(`no capture ${g}`);
      return parseInstant(g);
    };
    const run = async (s: VectorStep): Promise<unknown> => {
      const at = (field: string) => parseInstant(s[field]);
      switch (s.op) {
        case "reader": {
          const engine = new ScriptedEngine();
          const reasons: Reason[] = [];
          const record = (r: Reason) => void reasons.push(r);
          const reader = core.createLeaseReader(engine.engine(s), { observer: { onHit: record, onMiss: record }, onWarning: () => {} });
          readers.set(String(s["name"]), { reader, engine, reasons });
          leases.set(String(s["name"]), reader.lease);
          return undefined;
        }
        case "engine": {
          const e = readerOf(s["reader"]).engine;
          if (s["leader"] !== undefined) e.role = s["leader"] === true ? "leader" : "follower";
          if (s["duration"] !== undefined) e.durationNs = at("duration") as bigint;
          if (s["ack"] !== undefined) e.ackNs = at("ack") as bigint;
          if (s["currentTerm"] !== undefined) e.currentTerm = at("currentTerm") as bigint;
          if (s["appliedTerm"] !== undefined) e.appliedTerm = at("appliedTerm") as bigint;
          if (s["ackTerm"] !== undefined) e.ackTerm = at("ackTerm") as bigint;
          if (s["transferring"] !== undefined) e.transferring = s["transferring"] === true;
          return undefined;
        }
        case "read": {
          const { reader, engine, reasons } = readerOf(s["reader"]);
          const readsBefore = engine.reads;
          await reader.leaseRead();
          return { reason: reasons[reasons.length - 1], local: engine.reads === readsBefore };
        }
        case "dispatch": {
          const { reader, engine } = readerOf(s["reader"]);
          await reader.dispatch(async () => {
            if (s["during"] === "beginTransfer") reader.beginTransfer();
            if (s["during"] === "engineTransferring") engine.transferring = true;
            return { commitIndex: at("commitIndex") as bigint, forwarded: s["forwarded"] === true, local: s["local"] !== false };
          });
          return undefined;
        }
        case "beginTransfer": readerOf(s["reader"]).reader.beginTransfer(); return undefined;
        case "endTransfer": readerOf(s["reader"]).reader.endTransfer(); return undefined;
        case "leaderLoss":
          for (const cb of readerOf(s["reader"]).engine.listeners) cb();
          return undefined;
        case "suspect": return readerOf(s["reader"]).reader.suspect;
        case "joint": {
          const config = { selfId: s["self"] as number, voters: s["voters"] as number[], ...(s["outgoing"] === undefined ? {} : { outgoingVoters: s["outgoing"] as number[] }) };
          joints.set(String(s["name"]), core.createJointQuorumAckTracker(config));
          return undefined;
        }
        case "jointAck": return joint(s["tracker"]).recordAck(s["peer"] as number, at("sentAt") as bigint);
        case "jointSelfAck": joint(s["tracker"]).recordSelfAck(at("sample") as bigint); return undefined;
        case "jointQuorumAck": return joint(s["tracker"]).quorumAck();
        case "ttlMargin": return core.ttlSafetyMarginNs(at("electionTimeout") as bigint, at("ttl") as bigint, at("driftPpm") as bigint);
        case "lease": leases.set(String(s["name"]), core.createLease()); return undefined;
        case "valid": return s["now"] === undefined ? lease(s["lease"]).valid() : lease(s["lease"]).valid(at("now") as bigint);
        case "reason": return s["now"] === undefined ? lease(s["lease"]).reason() : lease(s["lease"]).reason(at("now") as bigint);
        case "extend": { const l = lease(s["lease"]); return l.extend(at("until") as bigint, gen(l, s["gen"]) as bigint); }
        case "invalidate": lease(s["lease"]).invalidate(); return undefined;
        case "capture": captured.set(String(s["as"]), lease(s["lease"]).generation()); return undefined;
        case "generation": return lease(s["lease"]).generation();
        case "expiry": return lease(s["lease"]).expiry();
        case "tracker": trackers.set(String(s["name"]), core.createQuorumAckTracker()); return undefined;
        case "recordAck": tracker(s["tracker"]).recordAck(s["peer"] as number, s["quorum"] as number, at("sentAt") as bigint); return undefined;
        case "recordSelfAck": tracker(s["tracker"]).recordSelfAck(at("sample") as bigint); return undefined;
        case "removePeer": tracker(s["tracker"]).removePeer(s["peer"] as number, s["quorum"] as number); return undefined;
        case "reset": tracker(s["tracker"]).reset(); return undefined;
        case "quorumAck": return tracker(s["tracker"]).quorumAck();
        case "engineCheck": return core.engineAckValid(String(s["state"]), at("ack") as bigint, at("now") as bigint, at("duration") as bigint);
        case "followerQuorum": return followerQuorum(s["voters"] as number);
        case "tick":
          clock.readingNs = at("reading") as bigint;
          if (s["sleepOffset"] !== undefined) clock.offsetNs = at("sleepOffset") as bigint;
          return core.now();
        case "clockEvents": return core.clockEvents();
        case "config":
          return core.leaseDurationFor({
            electionTimeoutNs: at("electionTimeout") as bigint,
            tickNs: at("tick") as bigint,
            safetyMarginNs: at("margin") as bigint,
            driftPpmMax: at("driftPpm") as bigint,
            checkQuorum: s["checkQuorum"] as boolean,
          });
        default: return fail(`unknown op ${s.op}`);
      }
    };
    let failure: { step: number; message: string } | undefined;
    for (let i = 0; i < c.steps.length && failure === undefined; i++) {
      const step = c.steps[i]!;
      report.steps++;
      try {
        const actual = await run(step);
        if (step.expectError !== undefined) {
          failure = { step: i, message: `${step.op}: expected ${step.expectError}, returned ${show(actual)}` };
        } else if ("expect" in step) {
          const expected = typeof step.expect === "string" && !(REASONS as readonly string[]).includes(step.expect) ? parseInstant(step.expect) : step.expect;
          const expectedObj = typeof expected === "object" && expected !== null
            ? Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, (REASONS as readonly unknown[]).includes(v) ? v : parseInstant(v)]))
            : expected;
          if (!same(actual, expectedObj)) failure = { step: i, message: `${step.op}: expected ${show(expectedObj)}, got ${show(actual)}` };
        }
      } catch (err) {
        const name = err instanceof Error ? err.name : typeof err;
        if (step.expectError === undefined || name !== step.expectError) {
          failure = { step: i, message: `${step.op}: ${step.expectError ? `expected ${step.expectError}, ` : ""}threw ${name}: ${err instanceof Error ? err.message : String(err)}` };
        }
      }
    }
    if (failure) {
      report.failed++;
      report.failures.push({ name: c.name, ...failure });
    } else {
      report.passed++;
    }
  }
  return report;
}

function fail(message: string): never {
  throw new Error(`vector: ${message}`);
}
