// Builds the N-API clock shim (native/lease_clock.c) with node-gyp and installs it as
// build/lease_clock.node. It is the package's `install` script, so `npm rebuild lease-core`
// runs it again. The shim is optional: when it cannot be built (no compiler, no headers, no
// node-gyp) this prints one line (why, what to install, `npm rebuild lease-core`) and exits 0,
// so installing never fails; it also leaves the reason in build/lease_clock.error, which the
// Node host repeats in its run-time fallback warning (with the same advice).
//
// npm >= 7 hides the output of a dependency's install script unless it fails
// (`foreground-scripts`, docs.npmjs.com/cli/using-npm/config#foreground-scripts), so the line
// also goes to the controlling terminal (/dev/tty) when there is one.
//
// node-gyp runs with native/ as its working directory: `rebuild` deletes ./build, and the repo's
// build/ holds the wasm, so only native/build/ may be wiped. Set LEASE_CORE_NATIVE_VERBOSE=1 to
// see node-gyp's own output.
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, renameSync, copyFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const built = join(nativeDir, "build", "Release", "lease_clock.node");
const target = join(root, "build", "lease_clock.node");
const errorFile = join(root, "build", "lease_clock.error");
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

/** What a user must install for the build to succeed, by platform. */
function prerequisites() {
  if (process.platform === "darwin") return "the Xcode command line tools (xcode-select --install) and Python 3";
  if (process.platform === "win32") return "Visual Studio Build Tools (C++ workload) and Python 3";
  return "a C compiler, make and Python 3 (Debian/Ubuntu: apt-get install build-essential python3)";
}

/** One line to the terminal the user watches (npm hides our stderr), else to stderr. */
function tellUser(line) {
  let tty = -1;
  try {
    if (!process.stderr.isTTY && process.platform !== "win32") tty = openSync("/dev/tty", "w");
  } catch {
    tty = -1; // no controlling terminal (CI): stderr, shown by npm --foreground-scripts
  }
  if (tty >= 0) {
    try {
      writeSync(tty, `${line}\n`);
    } finally {
      closeSync(tty);
    }
  }
  console.warn(line);
}

let failure;
try {
  failure = build();
} catch (e) {
  failure = e instanceof Error ? e.message : String(e);
}
// node-gyp's intermediate files are of no use once the shim is installed (or not built).
rmSync(join(nativeDir, "build"), { recursive: true, force: true });
if (failure === null) {
  rmSync(errorFile, { force: true });
  console.log("lease-core: native clock shim built: build/lease_clock.node (CLOCK_MONOTONIC_RAW)");
} else {
  // A stale shim from an earlier build would make the fallback message below untrue.
  rmSync(target, { force: true });
  const line =
    `lease-core: native clock shim not built (${failure.replace(/\s+/g, " ")}); leases will use process.hrtime.bigint() ` +
    `(NTP-slewed, blind to suspend). Install ${prerequisites()}, then run: npm rebuild lease-core`;
  try {
    mkdirSync(dirname(errorFile), { recursive: true });
    writeFileSync(errorFile, `${failure.replace(/\s+/g, " ")}\n`);
  } catch {
    // a read-only package directory: the run-time warning then says "not found"
  }
  tellUser(line);
}
process.exit(0);
