// `npm run bench:groups` (issue 17): shard groups on one etcd lease per node, on a real 3-member
// etcd with 3 node processes. What it measures and how: the header of bench/groups.ts.
//
// Bundles bench/groups.ts (the driver) and bench/groups-node.ts (one node process) with esbuild
// into build/bench-groups/, then runs the driver. The bundles stay inside the package (build/ is
// git-ignored and not published) so that `lease-core`, `lease-core/etcd`, `etcd3` and `mitata`
// stay external and resolve as a user's import does: the package by its own name through
// package.json "exports" (the BUILT bundles, as every test uses them) and the rest from
// node_modules. It is not a build.mjs entry: the published build carries no benchmark, and the
// bench needs nothing build.mjs does not already produce.
// Needs the build (`node scripts/build.mjs`) and etcd (apt-get install etcd-server).
// Options (passed to the driver): --groups=100,1000,2000,5000 --quick --kills=N --window=S
//   --modes=auto,never --out=FILE
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
for (const file of ["build/node.js", "build/etcd.js", "build/lease-core.wasm"]) {
  if (!existsSync(join(root, file))) {
    console.error(`bench:groups: ${file} is missing: run node scripts/build.mjs first`);
    process.exit(2);
  }
}
const outDir = join(root, "build", "bench-groups");
mkdirSync(outDir, { recursive: true });
const nodeEntry = join(outDir, "groups-node.mjs");
const driver = join(outDir, "groups.mjs");
const common = {
  bundle: true,
  format: "esm",
  platform: "node",
  target: "es2022",
  external: ["lease-core", "lease-core/*", "etcd3", "mitata"],
  logLevel: "warning",
};
await build({ ...common, entryPoints: [join(root, "bench", "groups-node.ts")], outfile: nodeEntry });
await build({ ...common, entryPoints: [join(root, "bench", "groups.ts")], outfile: driver, define: { __ROOT__: JSON.stringify(root), __NODE_ENTRY__: JSON.stringify(nodeEntry) } });
const r = spawnSync(process.execPath, [driver, ...process.argv.slice(2)], { cwd: root, stdio: "inherit" });
process.exit(r.status ?? 1);
