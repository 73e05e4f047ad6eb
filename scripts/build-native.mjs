// Builds the N-API clock shim (native/lease_clock.c) with node-gyp and installs it as
// build/lease_clock.node. The shim is optional: when it cannot be built (no compiler, no
// headers, no node-gyp) this prints one warning and exits 0, so installing never fails and the
// Node host falls back to process.hrtime.bigint() and says so.
//
// node-gyp runs with native/ as its working directory: `rebuild` deletes ./build, and the repo's
// build/ holds the wasm, so only native/build/ may be wiped. Set LEASE_CORE_NATIVE_VERBOSE=1 to
// see node-gyp's own output.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, copyFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const built = join(nativeDir, "build", "Release", "lease_clock.node");
const target = join(root, "build", "lease_clock.node");
const verbose = process.env.LEASE_CORE_NATIVE_VERBOSE === "1";

// npm sets npm_config_node_gyp to its bundled copy when it runs a package script; the local
// devDependency serves a direct `node scripts/build-native.mjs`.
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp, join(root, "node_modules", "node-gyp", "bin", "node-gyp.js")];
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

// Without a nodedir node-gyp downloads headers, which fails offline. Prefer an explicit npm
// config, then the headers installed beside this node binary (/usr/include/node for a distro
// node, <prefix>/include/node for the official tarballs).
function findNodeDir() {
  const fromEnv = process.env.npm_config_nodedir;
  if (fromEnv) return fromEnv;
  const npm = spawnSync("npm", ["config", "get", "nodedir"], { encoding: "utf8", shell: process.platform === "win32" });
  const fromNpm = npm.status === 0 ? npm.stdout.trim() : "";
  if (fromNpm && fromNpm !== "undefined" && fromNpm !== "null") return fromNpm;
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : null;
}

// The line that names the problem, for the one-line warning: a compiler diagnostic, a Python
// exception from gyp, gyp's or make's own complaint, and last node-gyp's summary.
const REASONS = [/^(?!gyp).*\berror: /, /^\w+(Error|Exception): /, /^gyp: /, /^make: \*\*\* /, /^gyp ERR! stack Error: /];
function reasonFrom(output, status) {
  const lines = output.split("\n").map((l) => l.trim());
  for (const pattern of REASONS) {
    const line = lines.find((l) => pattern.test(l));
    if (line !== undefined) return line.replace(/^gyp ERR! stack Error: /, "").slice(0, 200);
  }
  return `node-gyp exited with status ${status}`;
}

function build() {
  const nodeGyp = findNodeGyp();
  if (nodeGyp === null) return "node-gyp not found";
  const nodeDir = findNodeDir();
  const args = [nodeGyp, "rebuild", "--release"];
  if (nodeDir !== null) args.push(`--nodedir=${nodeDir}`);
  const run = spawnSync(process.execPath, args, {
    cwd: nativeDir,
    encoding: "utf8",
    stdio: verbose ? "inherit" : "pipe",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (run.error) return run.error.message;
  if (run.status !== 0) return reasonFrom(`${run.stdout ?? ""}\n${run.stderr ?? ""}`, run.status);
  if (!existsSync(built)) return `node-gyp succeeded but ${built} is missing`;

  // Load it before installing it: a binary that builds but does not load (wrong headers, a
  // missing symbol) must count as "not built".
  try {
    const clock = createRequire(import.meta.url)(built);
    if (!(clock.readRaw() > 0n)) return "the built shim returns no raw clock reading";
  } catch (e) {
    return `the built shim does not load: ${e instanceof Error ? e.message : String(e)}`;
  }

  // Copy then rename: a process that has the old file loaded keeps its mapping, and nobody
  // ever sees a half-written file.
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.tmp`;
  copyFileSync(built, tmp);
  renameSync(tmp, target);
  return null;
}

let failure;
try {
  failure = build();
} catch (e) {
  failure = e instanceof Error ? e.message : String(e);
}
if (failure === null) {
  console.log("lease-core: native clock shim built: build/lease_clock.node (CLOCK_MONOTONIC_RAW)");
} else {
  // A stale shim from an earlier build would make the fallback message below untrue.
  rmSync(target, { force: true });
  console.warn(`lease-core: native clock shim not built (${failure}); falling back to process.hrtime.bigint()`);
}
process.exit(0);
