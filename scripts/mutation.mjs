// `npm run mutation`: breaks each guard once and checks that the tests notice. Every mutant is
// one textual change, located by a snippet that must occur exactly once in its file (so that a
// mutant whose code moved is reported, never silently skipped): the wasm core (assembly/*.ts),
// the TypeScript host rules (clock policy mapping, transfer defences, the etcd engine's guards),
// the N-API clock shim (native/lease_clock.c) and the simulator's probes (test/sim). A mutant the
// tests do not kill means a guard no test pins. Runs in a copy of the repository (the work tree is
// never touched): rebuilds what the mutant needs (wasm and bundles, or the shim, or nothing for
// the simulator, whose tests run from source), runs the tests that exercise that code, and
// restores the copy's build/ after each. A mutant's tests stop at their first failure (vitest
// --bail 1: one failing test is a kill); the baselines run in full. Takes a while on 2 busy cores.
//   node scripts/mutation.mjs                    all mutants
//   node scripts/mutation.mjs --list             the mutants (and whether each snippet is found once)
//   node scripts/mutation.mjs --area shim,sim    only these areas
//   node scripts/mutation.mjs --only "<text>"    only mutants whose guard contains <text>
//   node scripts/mutation.mjs --tests a,b        run these test files instead of each mutant's own
//   node scripts/mutation.mjs --no-baseline      skip the unmutated run of each test list
//   node scripts/mutation.mjs --no-bail          run each mutant's tests in full (every failing test reported)
// Why not StrykerJS: its vitest runner re-runs the (multi-minute) suite per mutant and cannot
// mutate the wasm source or the C shim, which need a rebuild; per-mutant test lists keep the
// run to about a minute per mutant here.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The wasm core: [file in assembly/, original text, mutated text, the guard it breaks, why it is
 *  equivalent (only for a mutant no test can kill)] */
const WASM_MUTANTS = [
  ["lease.ts", "(nowNs < expiryNs)", "(nowNs <= expiryNs)", "half-open expiry"],
  ["lease.ts", "(nowNs != 0) & ", "", "a zero now fails closed"],
  ["lease.ts", "  if (load<i64>(p, 8) != expectedGen) return false;\n", "", "generation guard"],
  ["lease.ts", "  if (expiryNs != 0 && untilNs <= expiryNs) return false;\n", "", "monotone extend"],
  ["lease.ts", "  if (untilNs <= 0) return false;\n", "", "no extend to 0"],
  ["lease.ts", "store<i64>(p, generation + 1, 8);\n  assert(load<i64>(p, 8) == generation + 1); // L1", "", "invalidate bumps the generation"],
  ["lease.ts", "  store<i64>(p, 0);\n  store<i64>(p, generation + 1, 8);", "  store<i64>(p, generation + 1, 8);", "invalidate clears the expiry"],
  ["instant.ts", "  if (instantNs < lastInstantNs) {", "  if (false) {", "regression is a fault"],
  ["instant.ts", "    if (growthNs > SUSPEND_TOLERANCE_NS) {", "    if (false) {", "suspend detection"],
  ["instant.ts", "  if (rawNs <= 0) {", "  if (rawNs < 0) {", "a zero reading is refused"],
  ["decision.ts", "ackNs <= nowNs && ", "", "no ack from the future"],
  ["decision.ts", "  if (sampleNs <= 0 || leaseDurationNs <= 0) return false;", "  if (leaseDurationNs <= 0) return false;", "no extend from a zero sample",
    "shadowed by the next line of extendFrom: the fault floor is 0 until a fault and only rises (assembly/fault.ts F1), so a sample <= 0 is also <= faultFloor() and refused there with the same result"],
  ["decision.ts", "  if (!isLeader) return REASON_NOT_LEADER;\n  if (guards & READ_SUSPECT)", "  if (guards & READ_SUSPECT)", "the caller lease needs a leader"],
  ["decision.ts", "  if (guards & READ_SUSPECT) return REASON_SUSPECT;\n", "", "a transfer makes the lease suspect"],
  ["decision.ts", " && appliedTerm != currentTerm) return REASON_TERM_MISMATCH;", " && false) return REASON_TERM_MISMATCH;", "own-term guard"],
  ["decision.ts", "  const ackInTerm = (guards & READ_ACK_TERM) == 0 || ackTerm == currentTerm;", "  const ackInTerm = true;", "ack-term guard"],
  ["decision.ts", "ackInTerm && ackNs > rearmAfterNs && ", "ackInTerm && ", "re-arm only on a proof after the transfer"],
  ["quorum.ts", "  if (sentAtNs <= 0) return ACK_OK;", "", "a zero ack is ignored"],
  ["quorum.ts", "  if (sentAtNs > load<i64>(e, 8)) store<i64>(e, sentAtNs, 8); // Q1", "  store<i64>(e, sentAtNs, 8);", "an ack never moves back"],
  ["quorum.ts", "  if (followerQuorum == 0) return;", "", "q = 0 keeps the published instant"],
  ["quorum.ts", "  if (count < followerQuorum) {", "  if (count < followerQuorum - 1) {", "fewer than q acks publish 0"],
  ["config.ts", "  return driftNs + tickNs;", "  return driftNs;", "the margin includes a tick"],
  ["config.ts", "  if (!checkQuorum) return CONFIG_CHECK_QUORUM_REQUIRED;", "", "check-quorum is required"],
  ["shared.ts", "    if (fullGen(h, w) != <u64>expectedGen) return false;\n", "", "shared: generation guard"],
  ["shared.ts", "    if ((w >> GEN_BITS) >= q) return false; // monotone; equal is a no-op", "    if ((w >> GEN_BITS) > q) return false;", "shared: an equal expiry is a no-op"],
  ["shared.ts", "    if (atomic.cmpxchg<u64>(wp, w, (q << GEN_BITS) | (w & GEN_MASK)) == w) return true;", "    atomic.store<u64>(wp, (q << GEN_BITS) | (w & GEN_MASK)); return true;", "shared: extend by compare-and-swap"],
  ["lease.ts", "  store<i64>(p, untilNs);\n  store<u8>(causesPtr + <usize>slot, CAUSE_NONE);", "  store<i64>(p, untilNs);\n  store<i64>(changetype<usize>(new StaticArray<i64>(2)), untilNs);\n  store<u8>(causesPtr + <usize>slot, CAUSE_NONE);", "no allocation after init (the memory never grows)"],
];
const WASM_TESTS = ["test/vectors.test.ts", "test/reader.test.ts", "test/model.test.ts", "test/model-ops.test.ts", "test/guards.test.ts", "test/node-host.test.ts", "test/abi.test.ts", "test/shared.test.ts"];

const NODE_CLOCK_TESTS = ["test/node-host.test.ts", "test/native-clock.test.ts", "test/native-suspend.test.ts"];
const SHIM_TESTS = ["test/native-clock.test.ts", "test/native-shim.test.ts", "test/native-suspend.test.ts"];
const READER_TESTS = ["test/guards.test.ts", "test/reader.test.ts", "test/reader-wasm-fixes.test.ts", "test/attack/"];
const SIM_TESTS = ["test/sim/sim.test.ts"];
const SIM_ENV = { SIM_SEEDS: "50" }; // the scenarios are what pin the probes; 50 seeds keep the run short
const ETCD_TESTS = ["test/etcd-node.test.ts", "test/etcd-guards.test.ts"];

/**
 * The host side: { area, path, original, mutated, guard, build, tests, env? }. build: "bundle"
 * (scripts/build.mjs --skip-native), "native" (scripts/build-native.mjs) or "none". Each
 * `original` must occur exactly once in `path`: after a merge that moved the code, re-target the
 * snippet (the run reports MISSING or AMBIGUOUS, never a pass).
 */
const HOST_MUTANTS = [
  // Clock policy mapping: each policy reads the clock it names.
  { area: "policy", path: "host/runtime/node.ts", original: "native.bindFill(memory.buffer, byteOffset, policy)", mutated: 'native.bindFill(memory.buffer, byteOffset, policy === "raw+sleep" ? "raw" : policy)', guard: "node: raw+sleep reads the sleep offset, not RAW alone", build: "bundle", tests: NODE_CLOCK_TESTS },
  { area: "policy", path: "host/runtime/node.ts", original: "native.bindFill(memory.buffer, byteOffset, policy)", mutated: 'native.bindFill(memory.buffer, byteOffset, policy === "boottime" ? "monotonic" : policy)', guard: "node: boottime reads BOOTTIME, not MONOTONIC", build: "bundle", tests: NODE_CLOCK_TESTS },
  { area: "policy", path: "host/runtime/bun.ts", original: 'const first = policy === "boottime" ? clocks.boottime : clocks.raw;', mutated: 'const first = policy === "boottime" ? clocks.monotonic : clocks.raw;', guard: "bun: boottime reads BOOTTIME, not MONOTONIC", build: "bundle", tests: ["test/bun.test.ts", "test/native-suspend.test.ts"] },
  { area: "policy", path: "host/runtime/bun.ts", original: "gettime(clocks.boottime, bootPtr) !== 0", mutated: "gettime(clocks.monotonic, bootPtr) !== 0", guard: "bun: raw+sleep's offset is BOOTTIME - MONOTONIC (a constant 0 here)", build: "bundle", tests: ["test/bun.test.ts", "test/native-suspend.test.ts"] },
  { area: "policy", path: "host/runtime/deno.ts", original: 'const first = policy === "boottime" ? clocks.boottime : clocks.raw;', mutated: 'const first = policy === "boottime" ? clocks.monotonic : clocks.raw;', guard: "deno: boottime reads BOOTTIME, not MONOTONIC", build: "bundle", tests: ["test/deno.test.ts", "test/native-suspend.test.ts"] },
  { area: "policy", path: "host/runtime/common.ts", original: '(options as NativeLeaseCoreOptions).clockPolicy ?? "raw+sleep"', mutated: '(options as NativeLeaseCoreOptions).clockPolicy ?? "raw"', guard: "the default policy is raw+sleep", build: "bundle", tests: NODE_CLOCK_TESTS },
  { area: "policy", path: "host/core/clock.ts", original: "const ok = typeof ns === \"bigint\" && ns > 0n && ns <= I64_MAX", mutated: "const ok = typeof ns === \"bigint\" && ns <= I64_MAX", guard: "a custom clock's negative or zero reading is no reading", build: "bundle", tests: ["test/node-host.test.ts", "test/reader.test.ts"],
    equivalent: "shadowed by the core: assembly/instant.ts refuses a reading <= 0 as no reading and counts it (its own mutant, \"a zero reading is refused\", is killed), so -5n or 0n in the cell reads exactly as the 0n this check writes" },

  // The shim (rebuilt with node-gyp; test/native-shim.test.ts also builds it with ASan from source).
  { area: "shim", path: "native/lease_clock.c", original: "  *offset = boot - mono;\n", mutated: "  *offset = 0;\n", guard: "shim: the sleep offset is BOOTTIME - MONOTONIC (not a constant 0)", build: "native", tests: SHIM_TESTS },
  { area: "shim", path: "native/lease_clock.c", original: "  cell[1] = offset;\n", mutated: "  cell[1] = offset + 0x5a5a5a5a;\n", guard: "shim: fillRawSleep's second word is the sleep offset", build: "native", tests: SHIM_TESTS },
  { area: "shim", path: "native/lease_clock.c", original: "  if (base == NULL || length < CELL_BYTES || st->offset > length - CELL_BYTES ||", mutated: "  if (0 &&", guard: "shim: a detached (stale) binding writes nothing", build: "native", tests: SHIM_TESTS },
  { area: "shim", path: "native/lease_clock.c", original: "  return copied == total && strlen(buf) == total ? 1 : 0;", mutated: "  return 1;", guard: "shim: a name with an embedded NUL is not a clock", build: "native", tests: SHIM_TESTS },
  { area: "shim", path: "native/lease_clock.c", original: "  if (__builtin_mul_overflow((int64_t)ts->tv_sec, (int64_t)1000000000, &ns) ||\n      __builtin_add_overflow(ns, (int64_t)ts->tv_nsec, &ns)) return 0;\n", mutated: "  ns = (int64_t)((uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec);\n", guard: "shim: ns beyond int64 is no reading, never wrapped", build: "native", tests: SHIM_TESTS },
  { area: "shim", path: "native/lease_clock.c", original: "  napi_throw_error(env, \"ERR_LEASE_CLOCK_NATIVE\", message);\n  return NULL;\n}", mutated: "  (void)message;\n  return NULL;\n}", guard: "shim: every failure path throws (no bare NULL)", build: "native", tests: SHIM_TESTS },
  { area: "shim", path: "native/lease_clock.c", original: "  if (raw == 0 || !read_sleep_offset(&offset)) {", mutated: "  if (!read_sleep_offset(&offset)) {", guard: "shim: a sample is all or nothing (RAW failed: no reading)", build: "native", tests: SHIM_TESTS },

  // Transfer defences and the reader's other rules (host/core/reader.ts, sharded-reader.ts).
  { area: "reader", path: "host/core/reader.ts", original: "if ((after.outcome & SERVE_LOCAL) !== 0 && after.generation === first.generation && after.term === first.term)", mutated: "if ((after.outcome & SERVE_LOCAL) !== 0 && after.term === first.term)", guard: "leaseReadThen: same generation after the read", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "if ((after.outcome & SERVE_LOCAL) !== 0 && after.generation === first.generation && after.term === first.term)", mutated: "if ((after.outcome & SERVE_LOCAL) !== 0 && after.generation === first.generation)", guard: "leaseReadThen: same term after the read", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "const local = forwarded !== true && isLocal !== false;", mutated: "const local = isLocal !== false;", guard: "a forwarded commit never extends", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "    const firstAnswers = this.#ask(); // ask, then sample (see #decide)\n    const first = this.#decide(firstAnswers, this.#core.now());", mutated: "    const firstNs = this.#core.now();\n    const first = this.#decide(this.#ask(), firstNs);", guard: "attack reader-wasm-rearm-race: leaseReadThen asks the engine, then samples", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/sharded-reader.ts", original: "    const asked = groupIds.map((g) => {\n      try {\n        return this.#readers.get(g)![askFor]();\n      } catch (err) {\n        return { err };\n      }\n    });\n    const nowNs = this.#core.now();\n", mutated: "    const nowNs = this.#core.now();\n    const asked = groupIds.map((g) => {\n      try {\n        return this.#readers.get(g)![askFor]();\n      } catch (err) {\n        return { err };\n      }\n    });\n", guard: "attack reader-wasm-rearm-race: leaseReadAllGroups asks every engine, then samples", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "        const slot = this.#liveSlot();\n        if (slot < 0) return;\n", mutated: "        const slot = this.lease.slot;\n", guard: "attack reader-wasm-disposed-hook: a disposed reader's leader-loss hook is a no-op, never a throw into the engine", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "      const durationNs = afterNs < d.engineDurationNs ? afterNs : d.engineDurationNs;", mutated: "      const durationNs = d.engineDurationNs;", guard: "the extend after a linearizable read uses the engine's duration after the read (the shorter)", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "    const index = checkIndex(this.#engine.appliedIndex(), \"appliedIndex\"); // before the hit is reported (as leaseRead)\n    this.#observer?.onHit?.(REASONS[outcome & 0xff]!);", mutated: "    this.#observer?.onHit?.(REASONS[outcome & 0xff]!);\n    const index = checkIndex(this.#engine.appliedIndex(), \"appliedIndex\");", guard: "localRead reports a hit only once the applied index was read", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/trackers.ts", original: "      if (holds && tracker.ackOf(peerId) === 0n && tracker.peerCount() >= this.#maxPeers) throw", mutated: "      if (false) throw", guard: "attack reader-wasm-joint-half-applied: both voter sets are checked for room before either records", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "    if (typeof transferring !== \"boolean\") throw new InvalidEngineAnswerError(\"transferInProgress\", transferring, \"a boolean\");\n    return transferring ?", mutated: "    return transferring === true ?", guard: "attack reader-wasm-transfer-answer: transferInProgress() must answer a boolean", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/core.ts", original: "    const budgetNs: unknown = this.freezeBudgetNs;\n    if (typeof budgetNs !== \"bigint\" || budgetNs < 0n", mutated: "    const budgetNs = this.freezeBudgetNs;\n    if (budgetNs < 0n", guard: "attack reader-wasm-bad-input: a freeze budget that is not a bigint is refused", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/core.ts", original: "    checkEngineState(state);\n    checkInstant(ackNs, \"ackNs\");", mutated: "    checkInstant(ackNs, \"ackNs\");", guard: "attack reader-wasm-bad-input: core.engineAckValid refuses a state that is not an EngineState", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "    const suspectAtStart = this.#ex.readerNoteTransfer(slot, sampleNs, answersAtStart);", mutated: "    const suspectAtStart = this.#ex.readerSuspectNow(slot, answersAtStart);", guard: "attack reader-wasm-dispatch-transfer: dispatch records the engine's transfer (its end re-arms)", build: "bundle", tests: READER_TESTS },
  { area: "reader", path: "host/core/reader.ts", original: "if ((forwarded !== undefined && typeof forwarded !== \"boolean\") || ", mutated: "if (", guard: "attack reader-wasm-commit-result: a non-boolean forwarded flag is refused", build: "bundle", tests: READER_TESTS },

  // The etcd engine's guards (host/etcd/), on a real 3-member etcd.
  { area: "etcd", path: "host/etcd/keepalive.ts", original: "  if (generation !== s.generation || s.state !== \"leader\") return false;", mutated: "  if (s.state !== \"leader\") return false;", guard: "etcd: a renewal confirms nothing across an invalidation", build: "bundle", tests: ETCD_TESTS },
  { area: "etcd", path: "host/etcd/keepalive.ts", original: "  if (anchorNs === 0n) return false; // no clock reading: fail closed", mutated: "", guard: "etcd: no anchor without a clock reading", build: "bundle", tests: ETCD_TESTS },
  { area: "etcd", path: "assembly/config.ts", original: "  const fixedNs = electionTimeoutNs + 1_000_000;", mutated: "  const fixedNs = 1_000_000;", guard: "etcd: the margin includes the election timeout (the core's TTL margin, which the engine asks for)", build: "bundle", tests: ETCD_TESTS },
  { area: "etcd", path: "host/etcd/keepalive.ts", original: "const anchorNs = s.unsafe.anchorOnReceive ? answer.receivedAtNs : sentAtNs;", mutated: "const anchorNs = answer.receivedAtNs;", guard: "etcd: the lease is anchored on the keepalive's send time", build: "bundle", tests: ETCD_TESTS },
  { area: "etcd", path: "host/etcd/keepalive.ts", original: "if (!s.unsafe.skipConfirmation && (answer.term !== quorumTerm || !keyChecked)) {", mutated: "if (!s.unsafe.skipConfirmation && answer.term !== quorumTerm) {", guard: "etcd: a renewal confirms only with the own key present", build: "bundle", tests: ETCD_TESTS,
    equivalent: "shadowed twice: renew() loses leadership (key-missing) before confirm() whenever the key is not ours in the same epoch, and a renewal that spans a new epoch fails confirm()'s generation check; only the extra, conservative invalidation is lost" },
  { area: "etcd", path: "host/etcd/election.ts", original: "        if (own && !s.unsafe.ignoreOwnKeyWatch && s.createRevision === createRevision) {", mutated: "        if (false) {", guard: "etcd: the own leader key deleted invalidates at once", build: "bundle", tests: ETCD_TESTS,
    equivalent: "the watch's end itself runs the fallback read check, which loses leadership with the same reason one read round trip later; telling the two apart needs a timing assertion" },
  { area: "etcd", path: "host/etcd/state.ts", original: "    this.ackTerm = 0n;\n    this.generation++;\n    for (const listener", mutated: "    this.ackTerm = 0n;\n    for (const listener", guard: "etcd: an invalidation bumps the engine generation", build: "bundle", tests: ETCD_TESTS,
    equivalent: "defence in depth: of invalidate()'s three callers, close() leaves the state shutdown for good and loseLeadership() leaves it follower (confirm() checks the state too; leading again needs a new key, which renew() sees as not ours, and a takeover holds at least a TTL, longer than any old anchor lives), and a term mismatch seen by another renewal does not void this renewal, whose own keepalive and quorum read agree on their term (docs/etcd.md §2); the attack on the split found no schedule (test/etcd-attack-*.test.ts)" },

  // The simulator's own evidence (test/sim, run from source).
  { area: "sim", path: "test/sim/scenarios.ts", original: "  for (let i = 0; i < count; i++) {\n    void c.read(9, node.id, key);", mutated: "  for (let i = 0; i < 0; i++) {\n    void c.read(9, node.id, key);", guard: "sim: a scenario's probe reads reach the node", build: "none", tests: SIM_TESTS, env: SIM_ENV },
  { area: "sim", path: "test/sim/cluster.ts", original: "      node.stats.readsReached++;\n", mutated: "", guard: "sim: reads that reached a node are counted by the node", build: "none", tests: SIM_TESTS, env: SIM_ENV },
  { area: "sim", path: "test/sim/cluster.ts", original: "      node.endIncarnation(); // every request in the dead process ends: its clients see a reset\n", mutated: "", guard: "sim: a crash ends every request of its incarnation", build: "none", tests: SIM_TESTS, env: SIM_ENV },
  { area: "sim", path: "test/sim/cluster.ts", original: "      if (fenced && this.fidelity.fence) {", mutated: "      if (false) {", guard: "sim: a read honours its fence", build: "none", tests: SIM_TESTS, env: SIM_ENV },
  { area: "sim", path: "test/sim/node.ts", original: "    if (this.guards.restartInLease) {", mutated: "    if (false) {", guard: "sim: the restart-amnesia guard is what the control turns off", build: "none", tests: SIM_TESTS, env: SIM_ENV },
];

// The reader's rules, moved into the wasm core (issue #14; assembly/reader.ts, quorum.ts Q7,
// config.ts): every guard the JS reader used to apply, now one place. `--only "issue14:"` runs them.
const READER_WASM_TESTS = ["test/vectors.test.ts", "test/reader.test.ts", "test/guards.test.ts", "test/abi.test.ts", "test/review-findings.test.ts", "test/metrics.test.ts", "test/model-reader.test.ts", "test/attack/"];
const READER_WASM_MUTANTS = [
  ["reader.ts", "  setFlags(slot, flags & ~F_TRANSFER);\n  invalidate(slot);\n", "  setFlags(slot, flags & ~F_TRANSFER);\n", "issue14: transfer defence 1: the end bumps the generation (R4)"],
  ["reader.ts", " && durationNs > 0 && (guards & READ_SUSPECT) == 0) outcome |= MAY_EXTEND;", " && durationNs > 0) outcome |= MAY_EXTEND;", "issue14: transfer defence 2: a read begun while suspect warms nothing (R1)"],
  ["reader.ts", " || !local || suspectAtStart || ", " || !local || ", "issue14: transfer defence 2: a commit begun while suspect extends nothing (R1)"],
  ["reader.ts", " || suspectNow(slot, answersNow) || ", " || ", "issue14: a commit that ends during a transfer extends nothing (R1)"],
  ["reader.ts", "      invalidate(slot); // R4\n      flags |= F_ENGINE_TRANSFER;", "      flags |= F_ENGINE_TRANSFER;", "issue14: polled transfer: its start invalidates (R4)"],
  ["reader.ts", "      markTransferEnd(slot, nowNs);\n      flags = flagsOf(slot);", "      flags = flagsOf(slot);", "issue14: polled transfer: its end re-arms (R2)"],
  ["reader.ts", "  if ((outcome & MAY_EXTEND) == 0 || !stillLeader || isClosed(slot)) return false;", "  if ((outcome & MAY_EXTEND) == 0 || isClosed(slot)) return false;", "issue14: a read that completes after a step-down warms nothing"],
  ["reader.ts", "  if ((outcome & MAY_EXTEND) == 0 || !stillLeader || isClosed(slot)) return false;", "  if ((outcome & MAY_EXTEND) == 0 || !stillLeader) return false;", "issue14: a closed reader's read warms nothing (R3)"],
  ["reader.ts", "  invalidate(slot);\n  endTransfer(slot, nowNs);", "  endTransfer(slot, nowNs);", "issue14: leader loss invalidates the lease (R4)"],
  ["reader.ts", "  const afterNs = floorNs > rearmNs ? floorNs : rearmNs;", "  const afterNs = rearmNs;", "issue14: no engine ack from before the last clock fault serves (R2, finding 4)"],
  ["reader.ts", "  const afterNs = floorNs > rearmNs ? floorNs : rearmNs;", "  const afterNs = floorNs;", "issue14: no engine ack from before the transfer end serves (R2)"],
  ["reader.ts", "  if ((flags & F_REARM_AT_NEXT_SAMPLE) != 0 && nowNs != 0) {", "  if ((flags & F_REARM_AT_NEXT_SAMPLE) != 0) {", "issue14: an end with no reading is taken at a real sample (R2)"],
  ["reader.ts", "    if (answers & ANSWER_OWN_TERM) guards |= READ_OWN_TERM;\n", "", "issue14: the engine's terms turn the own-term guard on"],
  ["reader.ts", "    if (answers & ANSWER_ACK_TERM) guards |= READ_ACK_TERM;\n", "", "issue14: the engine's ack term turns the ack-term guard on"],
  ["reader.ts", "  if (engineDurationNs <= freezeBudgetNs) return 0;\n  return engineDurationNs - freezeBudgetNs;", "  return engineDurationNs;", "issue14: the frozen-clock budget shortens every lease (R5)"],
  ["quorum.ts", "  return holdsLeader ? voters >> 1 : (voters >> 1) + 1;", "  return voters >> 1;", "issue14: a voter set without the leader needs a majority of others (Q7)"],
  ["index.ts", " lease.freeLease(slot); reader.forget(slot); }", " lease.freeLease(slot); }", "attack reader-wasm-freed-slot: a freed slot forgets its reader (reader exports trap until readerOpen)"],
  ["quorum.ts", "  return a < b ? a : b;", "  return a > b ? a : b;", "issue14: a joint configuration publishes the older half (Q7)"],
  ["quorum.ts", "  if (!needOut) return published(tIn);\n", "", "attack reader-wasm-joint-trap: a set that needs nothing is a flag, not an i64.MAX instant (Q7)"],
  ["config.ts", "  const fixedNs = electionTimeoutNs + 1_000_000;", "  const fixedNs = electionTimeoutNs;", "issue14: the TTL margin keeps its 1 ms"],
  ["config.ts", "  const wholeNs: u64 = <u64>(2 * q) * <u64>driftPpmMax;", "  const wholeNs: u64 = <u64>q * <u64>driftPpmMax;", "issue14: the TTL margin counts both clocks' drift"],
];

const MUTANTS = [
  ...WASM_MUTANTS.map(([file, original, mutated, guard, equivalent]) => ({ area: "wasm", path: `assembly/${file}`, original, mutated, guard, build: "bundle", tests: WASM_TESTS, ...(equivalent === undefined ? {} : { equivalent }) })),
  ...READER_WASM_MUTANTS.map(([file, original, mutated, guard]) => ({ area: "wasm", path: `assembly/${file}`, original, mutated, guard, build: "bundle", tests: READER_WASM_TESTS })),
  ...HOST_MUTANTS,
];

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const areas = arg("--area")?.split(",");
const only = arg("--only");
const testsOverride = arg("--tests")?.split(",");
const selected = MUTANTS.filter((m) => (!areas || areas.includes(m.area)) && (!only || m.guard.includes(only)));

/** How often `snippet` occurs in `text`. */
const occurrences = (text, snippet) => text.split(snippet).length - 1;

if (process.argv.includes("--list")) {
  for (const m of selected) {
    const n = occurrences(readFileSync(join(root, m.path), "utf8"), m.original);
    console.log(`${m.area.padEnd(7)} ${n === 1 ? "ok       " : n === 0 ? "MISSING  " : "AMBIGUOUS"} ${m.path.padEnd(22)} ${m.guard}`);
  }
  console.log(`${selected.length} mutants`);
  process.exit(0);
}

const copy = mkdtempSync(join(tmpdir(), "lease-core-mutation-"));
const run = (command, args, env = {}) => spawnSync(command, args, { cwd: copy, encoding: "utf8", maxBuffer: 64 << 20, env: { ...process.env, ...env } });
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
const results = [];
const started = performance.now();
try {
  for (const dir of ["assembly", "host", "test", "vectors", "scripts", "spec", "bin", "native", "demo", "docs", "examples"]) cpSync(join(root, dir), join(copy, dir), { recursive: true, filter: (p) => !p.includes("/native/build") });
  for (const file of ["package.json", "tsconfig.json", "vitest.config.ts", "asconfig.json", "asconfig.wasi.json", "asconfig.shared.json"]) cpSync(join(root, file), join(copy, file));
  cpSync(join(root, "build"), join(copy, "build"), { recursive: true }); // the native shim and the bundles
  cpSync(join(root, "build"), join(copy, "build.pristine"), { recursive: true });
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"));
  // Baseline: each test list must pass on the unmutated code, or its kills prove nothing (a
  // timing-noisy real-etcd test failing under load is not a kill). --no-baseline skips it.
  const baselineFails = new Set();
  if (!process.argv.includes("--no-baseline")) {
    for (const key of new Set(selected.map((m) => JSON.stringify([testsOverride ?? m.tests, m.env ?? {}])))) {
      const [tests, env] = JSON.parse(key);
    if (selected.every((m) => m.equivalent !== undefined || JSON.stringify([testsOverride ?? m.tests, m.env ?? {}]) !== key)) continue;
      const base = run(join(copy, "node_modules", ".bin", "vitest"), ["run", ...tests], env);
      console.log(`baseline ${base.status === 0 ? "passes" : "FAILS "} ${tests.join(", ")}`);
      if (base.status !== 0) baselineFails.add(key);
    }
  }
  for (const m of selected) {
    if (m.equivalent !== undefined) {
      results.push({ ...m, outcome: "equivalent" });
      console.log(`equiv    [${m.area}] ${m.guard}: ${m.equivalent}`);
      continue;
    }
    if (baselineFails.has(JSON.stringify([testsOverride ?? m.tests, m.env ?? {}]))) {
      results.push({ ...m, outcome: "UNPROVEN" });
      console.log(`UNPROVEN [${m.area}] ${m.guard}: its tests fail without the mutant`);
      continue;
    }
    const t0 = performance.now();
    const path = join(copy, m.path);
    const source = readFileSync(path, "utf8");
    const n = occurrences(source, m.original);
    if (n !== 1) {
      results.push({ ...m, outcome: n === 0 ? "MISSING" : "AMBIGUOUS" });
      console.log(`${n === 0 ? "MISSING  " : "AMBIGUOUS"} [${m.area}] ${m.guard}: the snippet occurs ${n} times in ${m.path}; re-target it in scripts/mutation.mjs`);
      continue;
    }
    writeFileSync(path, source.replace(m.original, m.mutated));
    try {
      if (m.build !== "none") {
        const built = m.build === "native" ? run(process.execPath, ["scripts/build-native.mjs"], { LEASE_CORE_NATIVE_VERBOSE: "0" }) : run(process.execPath, ["scripts/build.mjs", "--skip-native"]);
        const broken = built.status !== 0 || (m.build === "native" && /not built/.test(built.stderr));
        if (broken) {
          results.push({ ...m, outcome: "BUILD" });
          console.log(`BUILD    [${m.area}] ${m.guard}: the mutant does not build (${strip(built.stderr).trim().split("\n").pop()})`);
          continue;
        }
      }
      const tests = testsOverride ?? m.tests;
      const bail = process.argv.includes("--no-bail") ? [] : ["--bail", "1"];
      const tested = run(join(copy, "node_modules", ".bin", "vitest"), ["run", ...bail, ...tests], m.env);
      const out = strip(tested.stdout + tested.stderr);
      const failed = /Tests\s+(\d+) failed/.exec(out)?.[1] ?? "?";
      const files = [...new Set([...out.matchAll(/FAIL\s+(?:\S+\s+)?(test\/\S+\.test\.ts)/g)].map((x) => x[1]))];
      const killed = tested.status !== 0;
      const seconds = ((performance.now() - t0) / 1000).toFixed(0);
      results.push({ ...m, outcome: killed ? "killed" : "SURVIVED", files });
      console.log(`${killed ? "killed  " : "SURVIVED"} [${m.area}] ${m.guard}${killed ? ` (${failed} ${failed === "1" ? "test" : "tests"} failed${bail.length ? " before the bail" : ""}: ${files.join(", ")})` : ""} ${seconds} s`);
    } finally {
      writeFileSync(path, source);
      if (m.build !== "none") {
        rmSync(join(copy, "build"), { recursive: true, force: true });
        cpSync(join(copy, "build.pristine"), join(copy, "build"), { recursive: true });
      }
    }
  }
} finally {
  rmSync(copy, { recursive: true, force: true });
}
const byArea = {};
for (const r of results) {
  const a = (byArea[r.area] ??= { mutants: 0, killed: 0, equivalent: 0 });
  a.mutants++;
  if (r.outcome === "killed") a.killed++;
  if (r.outcome === "equivalent") a.equivalent++;
}
for (const [area, a] of Object.entries(byArea)) console.log(`  ${area.padEnd(7)} ${a.killed} of ${a.mutants} killed${a.equivalent ? `, ${a.equivalent} equivalent` : ""}`);
const killed = results.filter((r) => r.outcome === "killed").length;
const equivalent = results.filter((r) => r.outcome === "equivalent").length;
console.log(`${killed} of ${selected.length} mutants killed, ${equivalent} equivalent, in ${((performance.now() - started) / 60000).toFixed(1)} min`);
process.exit(killed + equivalent === selected.length ? 0 : 1);
