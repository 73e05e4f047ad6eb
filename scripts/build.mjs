// Builds everything `npm ci` and `npm test` need, in order:
//   1. the wasm core: asc assembly/index.ts → build/lease-core.wasm (asserts on), and the WASI
//      builds build/lease-core.wasi.wasm (reactor) and build/lease-core.wasi-selftest.wasm;
//   2. the N-API clock shim (optional: scripts/build-native.mjs never fails the build);
//   3. the TypeScript hosts: esbuild → build/*.js (ESM), tsc → build/types/*.d.ts.
// Usage: node scripts/build.mjs [--skip-native]
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
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
// The WASI reactor and self-test command (scripts/build-wasi.mjs, docs/abi.md).
run(process.execPath, [join(root, "scripts", "build-wasi.mjs")]);
if (!process.argv.includes("--skip-native")) run(process.execPath, [join(root, "scripts", "build-native.mjs")]);

// One bundle per runtime host (package.json "exports" maps each condition to its file), the
// CLI, the optional subpath entries, and the demo. An entry whose source does not exist is skipped.
//
// Subpath entries (lease-core/etcd, lease-core/metrics/*) and the demo import the core's own
// modules as "lease-core", not as a copy: one LeaseCore, one set of error classes, so
// `instanceof NotLeaderError` holds whichever entry threw it.
const ENTRIES = [
  { name: "node", platform: "node" },
  { name: "cli", platform: "node" },
  { name: "deno", platform: "neutral" },
  { name: "bun", platform: "node", external: ["bun:ffi"] },
  { name: "browser", platform: "browser" },
  { name: "workerd", platform: "neutral", external: ["./lease-core.wasm"] },
  { name: "etcd", source: "host/etcd/index.ts", platform: "node", external: ["etcd3"], shareCore: true },
  { name: "metrics/prometheus", platform: "neutral", external: ["prom-client"], shareCore: true },
  { name: "metrics/opentelemetry", platform: "neutral", external: ["@opentelemetry/api"], shareCore: true },
  { name: "demo/start", source: "demo/start.ts", platform: "node", external: ["etcd3", "playwright-core"], shareCore: true },
  { name: "demo/kv-service", source: "demo/kv-service.ts", platform: "node", external: ["etcd3"], shareCore: true },
];

// The host modules whose exports the package's main entry re-exports (host/api.ts): a subpath
// entry importing one of them gets the package itself; host/etcd → lease-core/etcd.
const SHARED_MODULES = new Set(["abi", "api", "core", "errors", "metrics", "reader", "shared"].map((m) => join(root, "host", m)));
const shareCore = {
  name: "share-core",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.kind === "entry-point") return undefined;
      const target = resolve(args.resolveDir, args.path).replace(/\.(js|ts)$/, "");
      if (target === join(root, "host", "etcd", "index")) return { path: "lease-core/etcd", external: true };
      if (SHARED_MODULES.has(target) && dirname(args.importer) !== join(root, "host")) return { path: "lease-core", external: true };
      return undefined;
    });
  },
};

for (const entry of ENTRIES) {
  const source = entry.source ?? join("host", `${entry.name}.ts`);
  if (!existsSync(join(root, source))) continue;
  await build({
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
run(bin("tsc"), ["-p", "tsconfig.json", "--emitDeclarationOnly"]);
