// Builds everything `npm ci` and `npm test` need, in order:
//   1. the wasm core: asc assembly/index.ts → build/lease-core.wasm (asserts on), and the WASI
//      builds build/lease-core.wasi.wasm (reactor) and build/lease-core.wasi-selftest.wasm;
//   2. the N-API clock shim (optional: scripts/build-native.mjs never fails the build);
//   3. the TypeScript hosts: esbuild → build/*.js (ESM), tsc → build/types/*.d.ts.
// Usage: node scripts/build.mjs [--skip-native]
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    console.error(`lease-core build: ${command} ${args.join(" ")} failed`);
    process.exit(result.status ?? 1);
  }
}

run(bin("asc"), ["assembly/index.ts", "--config", "asconfig.json", "--target", "release"]);
// The shared lease table, a separate module over a shared memory (assembly/shared.ts).
run(bin("asc"), ["assembly/shared.ts", "--config", "asconfig.shared.json", "--target", "release"]);
// The constants the hosts share with the wasm (host/generated/constants.ts), from its exported globals.
run(process.execPath, [join(root, "scripts", "gen-constants.mjs")]);
// The WASI reactor and self-test command (scripts/build-wasi.mjs, docs/abi.md).
run(process.execPath, [join(root, "scripts", "build-wasi.mjs")]);
if (!process.argv.includes("--skip-native")) run(process.execPath, [join(root, "scripts", "build-native.mjs")]);

// One bundle per runtime host (package.json "exports" maps each condition to its file), the
// CLI, the optional subpath entries, and the demo, each from its source file.
//
// Subpath entries (lease-core/etcd, lease-core/metrics/*) and the demo import the core's own
// modules as "lease-core", not as a copy: one LeaseCore, one set of error classes, so
// `instanceof NotLeaderError` holds whichever entry threw it.
const ENTRIES = [
  { name: "node", source: "host/runtime/node.ts", platform: "node" },
  { name: "cli", source: "host/cli/doctor.ts", platform: "node" },
  { name: "deno", source: "host/runtime/deno.ts", platform: "neutral" },
  { name: "bun", source: "host/runtime/bun.ts", platform: "node", external: ["bun:ffi"] },
  // The core module inlined (base64, ~7 KB): a bundler (esbuild, Vite, webpack) copies nothing.
  { name: "browser", source: "host/runtime/browser.ts", platform: "browser", inlineWasm: true },
  { name: "workerd", source: "host/runtime/workerd.ts", platform: "neutral", external: ["./lease-core.wasm"] },
  { name: "etcd", source: "host/etcd/index.ts", platform: "node", external: ["etcd3"], shareCore: true },
  { name: "metrics/prometheus", source: "host/metrics/prometheus.ts", platform: "neutral", external: ["prom-client"], shareCore: true },
  { name: "metrics/opentelemetry", source: "host/metrics/opentelemetry.ts", platform: "neutral", external: ["@opentelemetry/api"], shareCore: true },
  { name: "testing", source: "host/testing/index.ts", platform: "neutral", shareCore: true },
  { name: "demo/start", source: "demo/start.ts", platform: "node", external: ["etcd3", "playwright-core"], shareCore: true },
  { name: "demo/kv-service", source: "demo/kv-service.ts", platform: "node", external: ["etcd3"], shareCore: true },
  { name: "demo/nemesis", source: "demo/nemesis.ts", platform: "node", external: ["etcd3"], shareCore: true },
  { name: "demo/check-worker", source: "demo/check-worker-entry.ts", platform: "node", shareCore: true },
];

// The core's own modules: every file in host/core/ (the main entry re-exports the public ones
// through host/core/api.ts) and the dependency-free metrics it re-exports (host/metrics/index.ts).
// A subpath entry importing one of them gets the package itself; host/etcd → lease-core/etcd, and
// host/testing (the history checker the demo uses) → lease-core/testing. A core module's own
// imports stay inside the bundle that holds it.
const CORE_DIR = join(root, "host", "core");
const METRICS_INDEX = join(root, "host", "metrics", "index");
const isCoreModule = (path) => {
  const module = path.replace(/\.(js|ts)$/, "");
  return module.startsWith(CORE_DIR + sep) || module === METRICS_INDEX;
};
const shareCore = {
  name: "share-core",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.kind === "entry-point") return undefined;
      const target = resolve(args.resolveDir, args.path).replace(/\.(js|ts)$/, "");
      if (target === join(root, "host", "etcd", "index")) return { path: "lease-core/etcd", external: true };
      if (target === join(root, "host", "testing", "index")) return { path: "lease-core/testing", external: true };
      if (isCoreModule(target) && !isCoreModule(args.importer)) return { path: "lease-core", external: true };
      return undefined;
    });
  },
};

// Test-only switches (negative controls) are booleans named `__UNSAFE_<NAME>__` in the source
// (each declared in host/unsafe.d.ts). The published bundles define every one as `false`, so
// esbuild drops the branch it guards and the switch is not in the package at all. The test build
// in build/unsafe/ (node, etcd, the demo's KV service) reads them at run time instead:
// LEASE_CORE_UNSAFE=retake-without-catch-up,... turns on __UNSAFE_RETAKE_WITHOUT_CATCH_UP__, ...
function unsafeSwitches() {
  const names = new Set();
  const scan = (dir) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = join(dir, e.name);
      if (e.isDirectory()) scan(rel);
      else if (e.name.endsWith(".ts")) for (const m of readFileSync(join(root, rel), "utf8").matchAll(/__UNSAFE_([A-Z0-9_]+)__/g)) names.add(m[1]);
    }
  };
  for (const dir of ["host", "demo"]) scan(dir);
  return [...names].sort();
}
const SWITCHES = unsafeSwitches();
const PUBLISHED_DEFINE = Object.fromEntries(SWITCHES.map((n) => [`__UNSAFE_${n}__`, "false"]));
// In the test build each switch reads a property of one global object, filled once from the
// environment by a banner (a test in the same process may also set the property itself).
const UNSAFE_DEFINE = Object.fromEntries(SWITCHES.map((n) => [`__UNSAFE_${n}__`, `globalThis.__leaseCoreUnsafe.${n}`]));
const UNSAFE_BANNER =
  'globalThis.__leaseCoreUnsafe ??= Object.fromEntries((globalThis.process?.env?.LEASE_CORE_UNSAFE ?? "").split(",")' +
  '.filter(Boolean).map((n) => [n.trim().toUpperCase().replaceAll("-", "_"), true]));';

for (const entry of ENTRIES) {
  const source = entry.source;
  await build({
    define: entry.inlineWasm
      ? { ...PUBLISHED_DEFINE, __LEASE_CORE_WASM_BASE64__: JSON.stringify(readFileSync(join(root, "build", "lease-core.wasm")).toString("base64")) }
      : PUBLISHED_DEFINE,
    minifySyntax: true, // drops the `if (false)` branches the switches leave (names and layout stay)
    absWorkingDir: root,
    entryPoints: { [entry.name]: source },
    outdir: "build",
    bundle: true,
    format: "esm",
    platform: entry.platform,
    target: "es2022",
    external: [...(entry.external ?? []), ...(entry.shareCore ? ["lease-core", "lease-core/*"] : [])],
    plugins: entry.shareCore ? [shareCore] : [],
    // No code splitting: each bundle must sit directly in build/, beside lease-core.wasm and
    // lease_clock.node, which it finds relative to its own import.meta.url.
    logLevel: "warning",
  });
}
// The test build: flat in build/unsafe/, each bundle importing the core as ./node.js (one set
// of classes), beside its own copies of the modules and the shim it loads relative to itself.
const UNSAFE_ENTRIES = [
  { name: "node", source: "host/runtime/node.ts", external: [] },
  { name: "etcd", source: "host/etcd/index.ts", external: ["etcd3"] },
  { name: "kv-service", source: "demo/kv-service.ts", external: ["etcd3"] },
];
const unsafeDir = join(root, "build", "unsafe");
mkdirSync(unsafeDir, { recursive: true });
for (const file of ["lease-core.wasm", "lease-core.shared.wasm", "lease_clock.node"]) {
  if (existsSync(join(root, "build", file))) copyFileSync(join(root, "build", file), join(unsafeDir, file));
}
const shareUnsafeCore = {
  name: "share-unsafe-core",
  setup(b) {
    b.onResolve({ filter: /^(\.\.?\/|lease-core)/ }, (args) => {
      if (args.kind === "entry-point") return undefined;
      if (args.path === "lease-core") return { path: "./node.js", external: true };
      if (args.path === "lease-core/etcd") return { path: "./etcd.js", external: true };
      const target = resolve(args.resolveDir, args.path).replace(/\.(js|ts)$/, "");
      if (target === join(root, "host", "etcd", "index")) return { path: "./etcd.js", external: true };
      if (isCoreModule(target) && !isCoreModule(args.importer)) return { path: "./node.js", external: true };
      return undefined;
    });
  },
};
for (const entry of UNSAFE_ENTRIES) {
  await build({
    define: UNSAFE_DEFINE,
    banner: { js: UNSAFE_BANNER },
    absWorkingDir: root,
    entryPoints: { [entry.name]: entry.source },
    outdir: unsafeDir,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "es2022",
    external: entry.external,
    plugins: entry.name === "node" ? [] : [shareUnsafeCore],
    logLevel: "warning",
  });
}

// From scratch: a declaration left behind by a moved source file would otherwise ship.
rmSync(join(root, "build", "types"), { recursive: true, force: true });
run(bin("tsc"), ["-p", "tsconfig.json", "--emitDeclarationOnly"]);
