// Shared by the etcd tests: checks the demo bundles are built, and small helpers.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** build/etcd.js and build/demo/*.js come from scripts/build.mjs, which `npm test` runs first. */
export function buildDemo(): void {
  for (const file of ["etcd.js", "demo/start.js", "demo/kv-service.js"]) {
    if (!existsSync(join(root, "build", file))) throw new Error(`build/${file} is missing: run node scripts/build.mjs first`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
