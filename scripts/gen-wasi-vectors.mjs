// Generates assembly/wasi-vectors.generated.ts from vectors/core.json: one AssemblyScript
// function per conformance case, calling the exported ABI (assembly/index.ts) step by step, so
// the WASI self-test command runs the same cases as host/cli/vectors.ts with no JSON parser in wasm.
// Run by scripts/build-wasi.mjs before asc; the output is a build product (not committed).
//
// Steps the wasm cannot run, counted and reported by the self-test as "validated only by hosts":
//   - `expectError` steps whose error is an argument check of the TS layer (host/core/checks.ts:
//     InvalidInstantError, InvalidGenerationError, InvalidPeerIdError, InvalidQuorumError,
//     InvalidDurationError): the values they test (JS numbers, 2^63, negatives) are refused
//     before any call reaches the core, which by design trusts its caller (index.ts header).
//   - `followerQuorum`: a TS function (host/core/trackers.ts); the core has no such export.
//   - `dispatch` by a non-leader (NotLeaderError): the host refuses before any core call.
//   - `ttlMargin` steps expecting an error: the host's argument checks; the core only saturates.
// Reader steps (`reader`, `engine`, `read`, `dispatch`, transfers, `leaderLoss`, `suspect`) drive
// the core's reader exports as host/core/reader.ts does (assembly/wasi-selftest-kit.ts): the scripted
// engine's answers are tracked here, at generation time, and passed as literals.
// `expectError` steps whose error the core itself decides (the config rules, validateConfig's
// codes) run in wasm and check the code. Anything else this script cannot map fails the build.
//
// Usage: node scripts/gen-wasi-vectors.mjs [vectors.json] [out.ts]
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const source = process.argv[2] ?? join(root, "vectors", "core.json");
const target = process.argv[3] ?? join(root, "assembly", "wasi-vectors.generated.ts");

// host/cli/vectors.ts parseInstant, restricted to what an i64 can hold.
const T_NS = 1_000_000_000_000n;
const UNITS = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n, min: 60_000_000_000n, h: 3_600_000_000_000n };
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

function parseInstant(value, where) {
  if (typeof value !== "string") throw new Error(`${where}: ${JSON.stringify(value)} is not an instant string`);
  const terms = value.match(/[+-]?[^+-]+/g);
  if (terms === null) throw new Error(`${where}: bad instant ${value}`);
  let total = 0n;
  for (const term of terms) {
    const sign = term.startsWith("-") ? -1n : 1n;
    const body = term.replace(/^[+-]/, "");
    if (body === "t") {
      total += sign * T_NS;
      continue;
    }
    const m = /^(\d+)(ns|us|ms|s|min|h)?$/.exec(body);
    if (m === null) throw new Error(`${where}: bad instant term ${term} in ${value}`);
    total += sign * BigInt(m[1]) * UNITS[m[2] ?? "ns"];
  }
  if (total < I64_MIN || total > I64_MAX) throw new Error(`${where}: ${value} does not fit an i64`);
  return total;
}

/** An i64 literal AssemblyScript reads exactly (i64.MIN_VALUE has no positive twin). */
function i64(value) {
  return value === I64_MIN ? "i64.MIN_VALUE" : `<i64>${value}`;
}

function int32(value, where) {
  if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) throw new Error(`${where}: ${JSON.stringify(value)} is not an i32`);
  return String(value);
}

// host/core/abi.ts REASONS → assembly/decision.ts constants (the name compiles only if it exists).
const reasonConstant = (name) => `REASON_${String(name).toUpperCase().replace(/-/g, "_")}`;

// The errors the core decides itself: host/core/core.ts leaseDurationFor maps validateConfig's codes
// (assembly/config.ts) to these. The constant names compile only if they exist.
const CONFIG_ERRORS = {
  ElectionTimeoutNotPositiveError: "CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE",
  TickNotPositiveError: "CONFIG_TICK_NOT_POSITIVE",
  DriftNegativeError: "CONFIG_DRIFT_NEGATIVE",
  SafetyMarginTooSmallError: "CONFIG_MARGIN_TOO_SMALL",
  LeaseDurationNotPositiveError: "CONFIG_DURATION_NOT_POSITIVE",
  CheckQuorumRequiredError: "CONFIG_CHECK_QUORUM_REQUIRED",
  DriftTooLargeError: "CONFIG_DRIFT_TOO_LARGE",
};
// Argument checks of the TS layer (host/core/checks.ts): see the header.
const HOST_ERRORS = new Set(["InvalidInstantError", "InvalidGenerationError", "InvalidPeerIdError", "InvalidQuorumError", "InvalidDurationError"]);
const HOST_OPS = new Set(["followerQuorum"]);
const HOST_ERROR_OPS = { dispatch: new Set(["NotLeaderError"]), ttlMargin: new Set(["InvalidDurationError", "DriftNegativeError", "DriftTooLargeError"]) };
const CLOCK_EVENTS = { zeroReadings: "clockZeroReadings", regressions: "clockRegressions", suspends: "clockSuspends", suspendedNs: "clockSuspendedNs" };

const ident = (prefix, name) => `${prefix}_${String(name).replace(/[^A-Za-z0-9]/g, "_")}`;
const str = (text) => JSON.stringify(String(text)); // a valid AssemblyScript string literal for ASCII/BMP text

function generateCase(c, index, stats) {
  const where = (i) => `vectors case "${c.name}" step ${i}`;
  const lines = [];
  const declared = new Set();
  let leases = 0;
  let trackers = 0;
  const leaseVar = (name, i) => {
    const v = ident("lease", name);
    if (!declared.has(v)) throw new Error(`${where(i)}: no lease ${name}`);
    return v;
  };
  const trackerVar = (name, i) => {
    const v = ident("tracker", name);
    if (!declared.has(v)) throw new Error(`${where(i)}: no tracker ${name}`);
    return v;
  };
  const check = (i, expr) => lines.push(`  if (!${expr}) return false;`);
  // The scripted engine of each reader (host/cli/vectors.ts ScriptedEngine), as of this step.
  const engines = new Map();
  const joints = new Map();
  const readerOf = (name, i) => {
    const e = engines.get(String(name));
    if (e === undefined) throw new Error(`${where(i)}: no reader ${name}`);
    return e;
  };
  const answers = (e, transferring = e.transferring) => {
    const bits = [];
    if (e.leader) bits.push("core.ANSWER_LEADER");
    if (e.capable) {
      bits.push("core.ANSWER_CAPABLE");
      if (e.terms === "own" || e.terms === "both") bits.push("core.ANSWER_OWN_TERM");
      if (e.terms === "ack" || e.terms === "both") bits.push("core.ANSWER_ACK_TERM");
      if (e.transferKnown) bits.push(transferring ? "core.ANSWER_TRANSFER_KNOWN | core.ANSWER_TRANSFERRING" : "core.ANSWER_TRANSFER_KNOWN");
    }
    return bits.length === 0 ? "0" : bits.join(" | ");
  };
  const jointOf = (name, i) => {
    const j = joints.get(String(name));
    if (j === undefined) throw new Error(`${where(i)}: no joint tracker ${name}`);
    return j;
  };

  c.steps.forEach((s, i) => {
    const at = (field) => i64(parseInstant(s[field], `${where(i)} field ${field}`));
    if (HOST_OPS.has(s.op) || (s.expectError !== undefined && (HOST_ERRORS.has(s.expectError) || HOST_ERROR_OPS[s.op]?.has(s.expectError)))) {
      stats.hostOnly++;
      lines.push(`  // step ${i}: ${s.op}${s.expectError ? ` → ${s.expectError}` : ""}: validated only by hosts`);
      return;
    }
    if (s.expectError !== undefined && !(s.op === "config" && s.expectError in CONFIG_ERRORS)) {
      throw new Error(`${where(i)}: cannot map expectError ${s.expectError} of op ${s.op} to the core`);
    }
    stats.core++;
    const has = "expect" in s;
    const gen = (l) => {
      if (s.gen === "current") return `core.leaseGeneration(${l})`;
      if (typeof s.gen === "string" && s.gen.startsWith("$")) {
        const v = ident("gen", s.gen.slice(1));
        if (!declared.has(v)) throw new Error(`${where(i)}: no capture ${s.gen}`);
        return v;
      }
      return i64(parseInstant(s.gen, `${where(i)} field gen`));
    };
    const value = (expr, kind) => {
      if (!has) return lines.push(`  ${expr};`);
      if (kind === "bool") {
        if (typeof s.expect !== "boolean") throw new Error(`${where(i)}: expect must be a boolean`);
        return check(i, `kit.sameBool(${i}, ${str(s.op)}, ${expr}, ${s.expect})`);
      }
      return check(i, `kit.sameI64(${i}, ${str(s.op)}, ${expr}, ${i64(parseInstant(s.expect, `${where(i)} field expect`))})`);
    };
    switch (s.op) {
      case "lease": {
        const v = ident("lease", s.name);
        lines.push(`  ${declared.has(v) ? "" : "const "}${v} = kit.newLease();`);
        declared.add(v);
        leases++;
        break;
      }
      case "tracker": {
        const v = ident("tracker", s.name);
        lines.push(`  ${declared.has(v) ? "" : "const "}${v} = kit.newTracker();`);
        declared.add(v);
        trackers++;
        break;
      }
      case "valid": {
        const l = leaseVar(s.lease, i);
        value(s.now === undefined ? `kit.validOnCell(${l})` : `core.leaseValid(${l}, ${at("now")})`, "bool");
        break;
      }
      case "reason": {
        const l = leaseVar(s.lease, i);
        const now = s.now === undefined ? "kit.scriptedNow()" : at("now");
        if (!has) lines.push(`  core.leaseReason(${l}, ${now});`);
        else check(i, `kit.sameI32(${i}, "reason", core.leaseReason(${l}, ${now}), ${reasonConstant(s.expect)})`);
        break;
      }
      case "extend": {
        const l = leaseVar(s.lease, i);
        value(`core.leaseExtend(${l}, ${at("until")}, ${gen(l)})`, "bool");
        break;
      }
      case "invalidate":
        lines.push(`  core.leaseInvalidate(${leaseVar(s.lease, i)});`);
        break;
      case "capture": {
        const v = ident("gen", s.as);
        lines.push(`  ${declared.has(v) ? "" : "const "}${v} = core.leaseGeneration(${leaseVar(s.lease, i)});`);
        declared.add(v);
        break;
      }
      case "generation":
        value(`core.leaseGeneration(${leaseVar(s.lease, i)})`, "i64");
        break;
      case "expiry":
        value(`core.leaseExpiry(${leaseVar(s.lease, i)})`, "i64");
        break;
      case "recordAck":
        // host/core/trackers.ts throws TooManyPeersError on a non-zero code; no vector expects that.
        check(i, `kit.sameI32(${i}, "recordAck", core.trackerRecordAck(${trackerVar(s.tracker, i)}, ${int32(s.peer, where(i))}, ${int32(s.quorum, where(i))}, ${at("sentAt")}), 0)`);
        break;
      case "recordSelfAck":
        lines.push(`  core.trackerRecordSelfAck(${trackerVar(s.tracker, i)}, ${at("sample")});`);
        break;
      case "removePeer":
        lines.push(`  core.trackerRemovePeer(${trackerVar(s.tracker, i)}, ${int32(s.peer, where(i))}, ${int32(s.quorum, where(i))});`);
        break;
      case "reset":
        lines.push(`  core.trackerReset(${trackerVar(s.tracker, i)});`);
        break;
      case "quorumAck":
        value(`core.trackerQuorumAck(${trackerVar(s.tracker, i)})`, "i64");
        break;
      case "engineCheck":
        value(`core.engineAckValid(${s.state === "leader"}, ${at("ack")}, ${at("now")}, ${at("duration")})`, "bool");
        break;
      case "tick": {
        const offset = s.sleepOffset === undefined ? "false, 0" : `true, ${at("sleepOffset")}`;
        value(`kit.tick(${at("reading")}, ${offset})`, "i64");
        break;
      }
      case "clockEvents":
        for (const [key, expected] of Object.entries(s.expect ?? {})) {
          const fn = CLOCK_EVENTS[key];
          if (fn === undefined) throw new Error(`${where(i)}: unknown clock event ${key}`);
          check(i, `kit.sameI64(${i}, ${str(`clockEvents.${key}`)}, core.${fn}(), ${i64(parseInstant(expected, `${where(i)} field ${key}`))})`);
        }
        break;
      case "config": {
        if (typeof s.checkQuorum !== "boolean") throw new Error(`${where(i)}: checkQuorum must be a boolean`);
        const code = `core.configValidate(${at("electionTimeout")}, ${at("tick")}, ${at("margin")}, ${at("driftPpm")}, ${s.checkQuorum})`;
        const durationNs = `${at("electionTimeout")} - ${at("margin")}`;
        if (s.expectError !== undefined) check(i, `kit.sameConfig(${i}, ${code}, ${CONFIG_ERRORS[s.expectError]}, 0, 0)`);
        else if (has) check(i, `kit.sameConfig(${i}, ${code}, CONFIG_OK, ${durationNs}, ${i64(parseInstant(s.expect, `${where(i)} field expect`))})`);
        else lines.push(`  ${code};`);
        break;
      }
      case "reader": {
        const v = ident("lease", s.name); // the reader's lease is a lease of the case too
        if (declared.has(v)) throw new Error(`${where(i)}: reader ${s.name} declared twice`);
        lines.push(`  const ${v} = kit.newReader();`);
        declared.add(v);
        leases++;
        engines.set(String(s.name), {
          v, capable: s.capable !== false, terms: s.terms, transferKnown: s.transferKnown === true,
          leader: true, durationNs: 700_000_000n, ackNs: 0n, currentTerm: 1n, appliedTerm: 1n, ackTerm: 1n, transferring: false,
        });
        break;
      }
      case "engine": {
        const e = readerOf(s.reader, i);
        if (s.leader !== undefined) e.leader = s.leader === true;
        for (const [field, key] of [["duration", "durationNs"], ["ack", "ackNs"], ["currentTerm", "currentTerm"], ["appliedTerm", "appliedTerm"], ["ackTerm", "ackTerm"]]) {
          if (s[field] !== undefined) e[key] = parseInstant(s[field], `${where(i)} field ${field}`);
        }
        if (s.transferring !== undefined) e.transferring = s.transferring === true;
        lines.push(`  // step ${i}: the engine of ${s.reader} now answers ${answers(e)}`);
        break;
      }
      case "read": {
        const e = readerOf(s.reader, i);
        const v = ident("outcome", i);
        const dur = e.capable ? e.durationNs : 0n;
        const ack = e.capable ? e.ackNs : 0n;
        lines.push(`  const ${v} = kit.read(${e.v}, ${answers(e)}, ${i64(dur)}, ${i64(ack)}, ${i64(e.currentTerm)}, ${i64(e.appliedTerm)}, ${i64(e.ackTerm)});`);
        if (has) {
          if (s.expect.reason !== undefined) check(i, `kit.sameI32(${i}, "read.reason", ${v} & 0xff, ${reasonConstant(s.expect.reason)})`);
          if (s.expect.local !== undefined) check(i, `kit.sameBool(${i}, "read.local", (${v} & core.SERVE_LOCAL) != 0, ${s.expect.local === true})`);
        }
        break;
      }
      case "dispatch": {
        const e = readerOf(s.reader, i);
        if (!e.leader) throw new Error(`${where(i)}: a non-leader dispatch must expect NotLeaderError`);
        const committed = parseInstant(s.commitIndex, `${where(i)} field commitIndex`) > 0n;
        const local = s.forwarded !== true && s.local !== false;
        const during = s.during;
        if (during !== undefined && during !== "beginTransfer" && during !== "engineTransferring") throw new Error(`${where(i)}: unknown during ${during}`);
        const startAnswers = answers(e);
        if (during === "engineTransferring") e.transferring = true;
        const nowAnswers = answers(e);
        if (e.capable) {
          lines.push(`  kit.dispatch(${e.v}, ${startAnswers}, ${nowAnswers}, ${committed}, ${local}, ${i64(e.durationNs)}, ${during === "beginTransfer"});`);
        } else {
          lines.push(`  kit.scriptedNow(); // step ${i}: no lease capability: the commit extends nothing`);
        }
        break;
      }
      case "beginTransfer":
        lines.push(`  core.readerBeginTransfer(${readerOf(s.reader, i).v});`);
        break;
      case "endTransfer":
        lines.push(`  kit.endTransfer(${readerOf(s.reader, i).v});`);
        break;
      case "leaderLoss": {
        const e = readerOf(s.reader, i);
        if (e.capable) lines.push(`  kit.leaderLost(${e.v});`);
        break;
      }
      case "suspect":
        value(`core.readerIsSuspect(${readerOf(s.reader, i).v})`, "bool");
        break;
      case "joint": {
        const name = String(s.name);
        if (joints.has(name)) throw new Error(`${where(i)}: joint ${name} declared twice`);
        const voters = s.voters;
        const outgoing = s.outgoing ?? [];
        const j = { tIn: ident("jointIn", name), tOut: ident("jointOut", name), self: s.self, voters, outgoing };
        lines.push(`  const ${j.tIn} = kit.newTracker();`, `  const ${j.tOut} = kit.newTracker();`);
        lines.push(`  core.trackerSetQuorum(${j.tIn}, core.quorumNeed(${voters.length}, ${voters.includes(s.self)}));`);
        lines.push(`  core.trackerSetQuorum(${j.tOut}, core.quorumNeed(${outgoing.length}, ${outgoing.includes(s.self)}));`);
        joints.set(name, j);
        trackers += 2;
        break;
      }
      case "jointAck": {
        const j = jointOf(s.tracker, i);
        const sets = [];
        if (s.peer !== j.self) {
          if (j.voters.includes(s.peer)) sets.push(`core.trackerRecordAck(${j.tIn}, ${int32(s.peer, where(i))}, core.trackerQuorum(${j.tIn}), ${at("sentAt")}) == core.ACK_OK`);
          if (j.outgoing.includes(s.peer)) sets.push(`core.trackerRecordAck(${j.tOut}, ${int32(s.peer, where(i))}, core.trackerQuorum(${j.tOut}), ${at("sentAt")}) == core.ACK_OK`);
        }
        const v = ident("counted", i);
        // Every set that holds the peer records the ack (no short-circuit), as the host does.
        lines.push(`  let ${v} = false;`);
        for (const call of sets) lines.push(`  if (${call}) ${v} = true;`);
        value(v, "bool");
        break;
      }
      case "jointSelfAck": {
        const j = jointOf(s.tracker, i);
        lines.push(`  core.trackerRecordSelfAck(${j.tIn}, ${at("sample")});`);
        break;
      }
      case "jointQuorumAck": {
        const j = jointOf(s.tracker, i);
        value(`core.trackerJointQuorumAck(${j.tIn}, ${j.tOut})`, "i64");
        break;
      }
      case "ttlMargin":
        value(`core.configTtlMarginNs(${at("electionTimeout")}, ${at("ttl")}, ${at("driftPpm")})`, "i64");
        break;
      default:
        throw new Error(`${where(i)}: unknown op ${s.op}`);
    }
  });
  stats.leases += leases;
  stats.maxTrackers = Math.max(stats.maxTrackers, trackers);
  return [`// ${c.name}: ${c.intent}`, `function case${index}(): bool {`, ...lines, "  return true;", "}"].join("\n");
}

const cases = JSON.parse(readFileSync(source, "utf8"));
if (!Array.isArray(cases) || cases.length === 0) throw new Error(`${source}: expected a non-empty array of cases`);
const stats = { core: 0, hostOnly: 0, leases: 0, maxTrackers: 0 };
const bodies = cases.map((c, index) => generateCase(c, index, stats));

const out = `// GENERATED by scripts/gen-wasi-vectors.mjs from vectors/core.json: do not edit, do not commit.
// One function per conformance case; each returns false at its first failing step (printed).

import * as core from "./index";
import * as kit from "./wasi-selftest-kit";
import {
  REASON_VALID, REASON_EXPIRED, REASON_NOT_LEADER, REASON_CLOCK_UNKNOWN, REASON_TERM_MISMATCH,
  REASON_SUSPEND_DETECTED, REASON_SUSPECT, REASON_DISABLED,
} from "./decision";
import {
  CONFIG_OK, CONFIG_ELECTION_TIMEOUT_NOT_POSITIVE, CONFIG_TICK_NOT_POSITIVE, CONFIG_DRIFT_NEGATIVE,
  CONFIG_MARGIN_TOO_SMALL, CONFIG_DURATION_NOT_POSITIVE, CONFIG_CHECK_QUORUM_REQUIRED,
  CONFIG_DRIFT_TOO_LARGE,
} from "./config";

export const CASE_COUNT: i32 = ${cases.length};
/** Steps run in wasm, and steps left to the hosts' argument checks (see the generator). */
export const CORE_STEPS: i32 = ${stats.core};
export const HOST_ONLY_STEPS: i32 = ${stats.hostOnly};
/** Every lease of every case (slots are never reused), and the most trackers one case holds. */
export const LEASE_CAPACITY: i32 = ${Math.max(1, stats.leases)};
export const MAX_CASE_TRACKERS: i32 = ${Math.max(1, stats.maxTrackers)};

export function caseName(index: i32): string {
  switch (index) {
${cases.map((c, i) => `    case ${i}: return ${str(c.name)};`).join("\n")}
    default: return "?";
  }
}

export function runCase(index: i32): bool {
  switch (index) {
${cases.map((_c, i) => `    case ${i}: return case${i}();`).join("\n")}
    default: return false;
  }
}

${bodies.join("\n\n")}
`;
writeFileSync(target, out);
console.log(`gen-wasi-vectors: ${cases.length} cases, ${stats.core} steps in wasm, ${stats.hostOnly} validated only by hosts → ${target}`);
