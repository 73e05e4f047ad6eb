// `npm run mutation`: breaks each guard of the core once and checks that the tests notice.
// Every mutant is one textual change to assembly/*.ts; a mutant the tests do not kill means a
// guard no test pins. Runs in a copy of the repository (the work tree is never touched), builds
// the wasm with each mutant and runs the tests that exercise the core. Takes a few minutes.
//   node scripts/mutation.mjs            all mutants
//   node scripts/mutation.mjs --list     the mutants, without running
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** [file, original text, mutated text, the guard it breaks] */
const MUTANTS = [
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
  ["decision.ts", "  if (sampleNs <= 0 || leaseDurationNs <= 0) return false;", "  if (leaseDurationNs <= 0) return false;", "no extend from a zero sample"],
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
];
const TESTS = ["test/vectors.test.ts", "test/reader.test.ts", "test/model.test.ts", "test/model-ops.test.ts", "test/guards.test.ts", "test/node-host.test.ts", "test/abi.test.ts", "test/shared.test.ts"];

if (process.argv.includes("--list")) {
  for (const [file, , , guard] of MUTANTS) console.log(`${file.padEnd(12)} ${guard}`);
  process.exit(0);
}

const copy = mkdtempSync(join(tmpdir(), "lease-core-mutation-"));
const run = (command, args) => spawnSync(command, args, { cwd: copy, encoding: "utf8", maxBuffer: 64 << 20 });
let survivors = 0;
try {
  for (const dir of ["assembly", "host", "test", "vectors", "scripts", "spec", "bin", "native"]) cpSync(join(root, dir), join(copy, dir), { recursive: true });
  for (const file of ["package.json", "tsconfig.json", "vitest.config.ts", "asconfig.json", "asconfig.wasi.json", "asconfig.shared.json"]) cpSync(join(root, file), join(copy, file));
  cpSync(join(root, "build"), join(copy, "build"), { recursive: true }); // the native shim
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"));
  for (const [file, original, mutated, guard] of MUTANTS) {
    const path = join(copy, "assembly", file);
    const source = readFileSync(path, "utf8");
    if (!source.includes(original)) {
      console.log(`MISSING  ${guard}: the original text is gone from assembly/${file}; update scripts/mutation.mjs`);
      survivors++;
      continue;
    }
    writeFileSync(path, source.replace(original, mutated));
    try {
      const built = run(process.execPath, ["scripts/build.mjs", "--skip-native"]);
      if (built.status !== 0) {
        console.log(`BUILD    ${guard}: the mutant does not compile (${built.stderr.trim().split("\n").pop()})`);
        continue;
      }
      const tested = run(join(copy, "node_modules", ".bin", "vitest"), ["run", ...TESTS]);
      const failed = /Tests\s+(\d+) failed/.exec(tested.stdout.replace(/\x1b\[[0-9;]*m/g, ""))?.[1] ?? "?";
      if (tested.status === 0) survivors++;
      console.log(`${tested.status === 0 ? "SURVIVED" : "killed  "} ${guard}${tested.status === 0 ? "" : ` (${failed} tests failed)`}`);
    } finally {
      writeFileSync(path, source);
    }
  }
} finally {
  rmSync(copy, { recursive: true, force: true });
}
console.log(`${MUTANTS.length - survivors} of ${MUTANTS.length} mutants killed`);
process.exit(survivors === 0 ? 0 : 1);
