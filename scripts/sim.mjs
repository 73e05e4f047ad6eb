// `npm run sim`: bundles the simulator (test/sim/cli.ts, TypeScript) with esbuild and runs it
// on the built core (build/, `node scripts/build.mjs --skip-native` first). "lease-core" stays
// external, pointed at build/node.js (and lease-core/testing at build/testing.js), the files
// package.json "exports" gives (the bundle sits under node_modules/.cache, where a package
// cannot import itself by name).
//   SIM_SEED=<seed> npm run sim | npm run sim -- --seeds N [--from S] | npm run sim -- --scenarios
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "node_modules", ".cache", "lease-core-sim");
mkdirSync(outDir, { recursive: true });
const outfile = join(outDir, "sim.mjs");
await build({
  absWorkingDir: root,
  entryPoints: [join(root, "test", "sim", "cli.ts")],
  outfile,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "es2022",
  plugins: [{
    name: "lease-core-self",
    setup(b) {
      b.onResolve({ filter: /^lease-core$/ }, () => ({ path: pathToFileURL(join(root, "build", "node.js")).href, external: true }));
      b.onResolve({ filter: /^lease-core\/testing$/ }, () => ({ path: pathToFileURL(join(root, "build", "testing.js")).href, external: true }));
    },
  }],
  logLevel: "warning",
});
await import(pathToFileURL(outfile).href);
