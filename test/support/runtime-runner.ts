// What test/deno.test.ts and test/bun.test.ts share: the report the FFI conformance runner
// (test/runtimes/ffi-conformance.ts) prints, the vectors runner it imports (host/cli/vectors.ts is not
// in the public API, so it is bundled for it), and a bounded spawn that parses that report.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

export const root = fileURLToPath(new URL("../..", import.meta.url));
export const at = (...parts: string[]) => join(root, ...parts);
export const SPAWN_TIMEOUT_MS = 60_000;
export const cases = JSON.parse(readFileSync(at("vectors", "core.json"), "utf8")) as unknown[];
/** The one-time warning of a host that fell back to performance.now(). */
export const WARNING = "lease-core: raw clock unavailable";
export const warnings = (stderr: string) => stderr.split(WARNING).length - 1;

export interface ClockReport {
  source: string;
  raw: boolean;
  suspendAware: boolean;
  resolutionNs: string;
  mayFreeze: boolean;
  monotone?: boolean;
  bracketed?: boolean | null;
}
export interface RunnerReport {
  runtime: string;
  version: string;
  clock: ClockReport;
  policies: Record<"raw+sleep" | "boottime" | "raw", ClockReport>;
  lease: { validAtOnce: boolean; validAfter100ms: boolean; elapsedRatio: number };
  vectors: { passed: number; failed: number; failures: unknown[] };
  fillNs: number;
  validNs: number;
  bareReadNs: number | null;
  problems: string[];
}

/** Checks the runtime and its bundle exist, bundles the vectors runner into a temp dir; returns
 *  its file URL and the cleanup. */
export async function prepareRuntime(binary: string, bundle: string): Promise<{ vectorsUrl: string; cleanup(): void }> {
  for (const file of [binary, at("build", bundle), at("build", "lease-core.wasm")]) {
    if (!existsSync(file)) throw new Error(`${file} missing (the runtimes are devDependencies; the bundles come from node scripts/build.mjs)`);
  }
  const tmp = mkdtempSync(join(tmpdir(), "lease-core-runtime-"));
  await build({ entryPoints: [at("host", "cli", "vectors.ts")], bundle: true, format: "esm", platform: "neutral", outfile: join(tmp, "vectors.js"), logLevel: "warning" });
  return { vectorsUrl: pathToFileURL(join(tmp, "vectors.js")).href, cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}

/** Runs `args` with `command`, bounded and never on a terminal (so never a permission prompt);
 *  returns the last stdout line parsed as JSON. */
export function spawnJson<T>(command: string, args: string[], env: Record<string, string> = {}): { status: number | null; report: T; stderr: string } {
  const result = spawnSync(command, args, {
    cwd: root,
    encoding: "utf8",
    timeout: SPAWN_TIMEOUT_MS,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  if (result.error) throw result.error;
  const line = result.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return { status: result.status, report: JSON.parse(line) as T, stderr: result.stderr };
  } catch {
    throw new Error(`${command} printed no JSON line (status ${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
}
