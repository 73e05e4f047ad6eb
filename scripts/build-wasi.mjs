// Builds the two WASI modules (docs/abi.md "Builds"):
//   build/lease-core.wasi.wasm          the reactor: the ABI of lease-core.wasm, clock = WASI MONOTONIC
//   build/lease-core.wasi-selftest.wasm the command: `_start` runs vectors/core.json in wasm
// The self-test's cases are generated first (scripts/gen-wasi-vectors.mjs →
// assembly/wasi-vectors.generated.ts, a build product).
//
// Usage: node scripts/build-wasi.mjs
//        node scripts/build-wasi.mjs --selftest-vectors <cases.json> --selftest-out <file.wasm>
// The second form builds only a self-test over other cases, from a copy of assembly/ in a
// temporary folder (so it never touches the tree's generated file); test/wasi.test.ts uses it to
// prove that a failing case is reported and fails the exit code.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const asc = join(root, "node_modules", ".bin", "asc");
const config = join(root, "asconfig.wasi.json");

function run(command, args, cwd = root) {
  const result = spawnSync(command, args, { cwd, stdio: "inherit" });
  if (result.status !== 0) {
    console.error(`lease-core build-wasi: ${command} ${args.join(" ")} failed`);
    process.exit(result.status ?? 1);
  }
}

const { values } = parseArgs({ options: { "selftest-vectors": { type: "string" }, "selftest-out": { type: "string" } } });
const gen = join(root, "scripts", "gen-wasi-vectors.mjs");

if (values["selftest-vectors"] !== undefined || values["selftest-out"] !== undefined) {
  if (values["selftest-vectors"] === undefined || values["selftest-out"] === undefined) {
    console.error("lease-core build-wasi: --selftest-vectors and --selftest-out go together");
    process.exit(2);
  }
  const staging = mkdtempSync(join(tmpdir(), "lease-core-wasi-"));
  try {
    cpSync(join(root, "assembly"), join(staging, "assembly"), { recursive: true });
    const generated = join(staging, "assembly", "wasi-vectors.generated.ts");
    run(process.execPath, [gen, resolve(values["selftest-vectors"]), generated]);
    // From inside the copy: the abort alias in asconfig.wasi.json names assembly/wasi-host by
    // its path relative to the working directory.
    run(asc, ["assembly/wasi-selftest.ts", "--config", config, "--target", "selftest",
      "--outFile", resolve(values["selftest-out"]), "--textFile", join(staging, "selftest.wat")], staging);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
} else {
  run(process.execPath, [gen]);
  run(asc, ["assembly/wasi.ts", "--config", config, "--target", "reactor"]);
  run(asc, ["assembly/wasi-selftest.ts", "--config", config, "--target", "selftest"]);
}
