// Where the runtimes the tests and benchmarks drive live, once `npm ci` has run. They come from
// npm packages (never downloaded at run time), but their install scripts move the binary when
// they run: Bun's postinstall moves @oven/bun-linux-x64/bin/bun to bun/bin/bun.exe, and npm may
// or may not run it (allowScripts, CI), so each name has candidates, first real file wins.
import { statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CANDIDATES = {
  bun: ["node_modules/bun/bin/bun.exe", "node_modules/@oven/bun-linux-x64/bin/bun", "node_modules/@oven/bun-linux-x64-baseline/bin/bun"],
  deno: ["node_modules/@deno/linux-x64-glibc/deno", "node_modules/deno/deno"],
  workerd: ["node_modules/@cloudflare/workerd-linux-64/bin/workerd", "node_modules/workerd/bin/workerd"],
};

/** The absolute path of a runtime binary; throws (a missing runtime is a failure, never a skip). */
export function runtimeBinary(name) {
  const candidates = CANDIDATES[name];
  if (!candidates) throw new Error(`unknown runtime ${name}`);
  for (const candidate of candidates) {
    const path = join(root, candidate);
    try {
      // A placeholder (the packages ship small stubs before their install script runs) is not a runtime.
      if (statSync(path).size > 1_000_000) return path;
    } catch {
      // next candidate
    }
  }
  throw new Error(`${name} is not installed (looked in ${candidates.join(", ")}): run npm ci`);
}
