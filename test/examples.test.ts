// Every program in examples/ runs here, as a user would run it: a spawned process (Node, Deno,
// Bun) that imports the package by its name, or the Worker bundled as wrangler bundles it and
// served by workerd through miniflare; the etcd service against a real one-member etcd started
// here. Each must exit 0 (the examples assert their own claims) and print its key line.
// A missing runtime or etcd is a failure, not a skip. Needs `node scripts/build.mjs` first
// (npm test does it).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runtimeBinary } from "../scripts/runtimes.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const EXAMPLE_TIMEOUT_MS = 15_000;

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs one example to completion, bounded; never inherits a terminal. */
function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: root, timeout: EXAMPLE_TIMEOUT_MS, killSignal: "SIGKILL", env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        if (error && code === null && !error.signal) return reject(error); // could not start at all
        resolve({ code, signal: error?.signal ?? null, stdout, stderr });
      },
    );
  });
}

/** Exit 0, with the output shown when not (so a failing claim reads in the test report). */
function expectSuccess(result: Run): void {
  expect(result, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toMatchObject({ code: 0, signal: null });
}

beforeAll(() => {
  for (const file of ["node.js", "deno.js", "bun.js", "workerd.js", "etcd.js", "lease-core.wasm", "lease-core.shared.wasm", "lease-core.wasi.wasm"]) {
    if (!existsSync(join(root, "build", file))) throw new Error(`build/${file} missing: run node scripts/build.mjs --skip-native`);
  }
});

describe("examples on Node", () => {
  test("raft-adapter.mjs: ReadIndex then local reads, dispatch, expiry when cut off, step-down", async () => {
    const r = await run(process.execPath, ["examples/raft-adapter.mjs"]);
    expectSuccess(r);
    expect(r.stdout).toContain("read 1: served ReadIndex (expired), fence 0");
    expect(r.stdout).toContain("read 2: served local (valid), fence 0");
    expect(r.stdout).toContain("write x=1: committed at 1, lease valid true");
    expect(r.stdout).toContain("leaseReadThen: x = 1 at index 1, served local (valid)");
    expect(r.stdout).toContain("cut off for 710 ms: lease expired, read refused (ReadIndex: no quorum answered)");
    expect(r.stdout).toContain("step-down: lease valid false, read NotLeaderError, write NotLeaderError (not proposed)");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("raft-adapter: ok");
  });

  test("worker-threads.mjs: two workers see the main thread's extend, then its invalidate", async () => {
    const r = await run(process.execPath, ["examples/worker-threads.mjs"]);
    expectSuccess(r);
    const lines = r.stdout.trimEnd().split("\n");
    const step = lines.indexOf("main: step-down, lease 0 invalidated");
    expect(lines[0]).toBe("main: lease 0 extended by 700 ms");
    expect(step).toBeGreaterThan(0);
    expect(lines.slice(1, step).sort()).toEqual(["worker 1: lease 0 valid true", "worker 2: lease 0 valid true"]);
    expect(lines.slice(step + 1, -1).sort()).toEqual(["worker 1: lease 0 valid false", "worker 2: lease 0 valid false"]);
    expect(lines.at(-1)).toBe("worker-threads: ok");
  });

  test("wasi-host.mjs: the reactor under node:wasi reads its clock and keeps a 50 ms lease", async () => {
    const r = await run(process.execPath, ["examples/wasi-host.mjs"]);
    expectSuccess(r);
    expect(r.stdout).toMatch(/^wasi: clockSample\(\) = [1-9]\d* ns$/m);
    expect(r.stdout).toContain("wasi: lease 0 of 50 ms valid now true, after 100 ms false");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("wasi-host: ok");
  });
});

describe("examples on Deno and Bun", () => {
  // The raw clock through FFI proves the runtime's own export condition was taken: the Node
  // bundle would need the N-API shim, and a fallback would report performance.now.
  const clockLine = (name: string) => `${name}: clock CLOCK_MONOTONIC_RAW+sleep-offset, raw true, suspend-aware true, resolution 1 ns`;

  test("deno.ts under deno run --allow-read --allow-ffi --allow-env", async () => {
    const r = await run(runtimeBinary("deno"), ["run", "--no-lock", "--allow-read", "--allow-ffi", "--allow-env", "examples/deno.ts"]);
    expectSuccess(r);
    expect(r.stdout).toContain(clockLine("deno"));
    expect(r.stdout).toContain("deno: lease of 50 ms valid now true, after 100 ms false (expired)");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("deno: ok");
  });

  test("bun.ts under bun", async () => {
    const r = await run(runtimeBinary("bun"), ["examples/bun.ts"]);
    expectSuccess(r);
    expect(r.stdout).toContain(clockLine("bun"));
    expect(r.stdout).toContain("bun: lease of 50 ms valid now true, after 100 ms false (expired)");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("bun: ok");
  });
});

async function freePort(exclude: number[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000); // never etcd's 2379/2380
    if (exclude.includes(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port");
}

describe("etcd-service.mjs against a real etcd", () => {
  const ELECTION_TIMEOUT_MS = 300;
  let etcd: ChildProcess | undefined;
  let dataDir: string | undefined;
  let endpoint = "";

  beforeAll(async () => {
    const bin = process.env["ETCD_BIN"] ?? "/usr/bin/etcd";
    if (!existsSync(bin)) throw new Error(`etcd missing at ${bin}: apt-get install -y etcd-server (or set ETCD_BIN)`);
    const clientPort = await freePort([]);
    const peerPort = await freePort([clientPort]);
    // tmpfs when there is one: etcd fsyncs its WAL on every commit.
    dataDir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "lease-core-examples-etcd-"));
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    etcd = spawn(bin, [
      "--name", "m0", "--data-dir", join(dataDir, "m0"),
      "--listen-client-urls", client, "--advertise-client-urls", client,
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", `m0=${peer}`, "--initial-cluster-state", "new",
      "--heartbeat-interval", "50", "--election-timeout", String(ELECTION_TIMEOUT_MS),
      "--logger", "zap", "--log-outputs", "/dev/null",
    ], { stdio: "ignore" });
    const exited = new Promise<never>((_, reject) => etcd!.once("exit", (code) => reject(new Error(`etcd exited early (${code})`))));
    exited.catch(() => {});
    // /health answers {"health":"true"} once the member has a leader (itself).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const healthy = await Promise.race([
        fetch(`${client}/health`).then((r) => r.json()).then((b: { health?: string }) => b.health === "true", () => false),
        exited,
      ]);
      if (healthy) break;
      if (Date.now() > deadline) throw new Error("etcd not healthy after 15 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    endpoint = `127.0.0.1:${clientPort}`;
  }, 20_000);

  afterAll(async () => {
    if (etcd && etcd.exitCode === null && etcd.signalCode === null) {
      const gone = new Promise((r) => etcd!.once("exit", r));
      etcd.kill("SIGKILL");
      await gone;
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test("becomes leader, writes, reads locally under the lease, closes cleanly", async () => {
    const r = await run(process.execPath, ["examples/etcd-service.mjs"], { ETCD_ENDPOINTS: endpoint, ETCD_ELECTION_TIMEOUT_MS: String(ELECTION_TIMEOUT_MS) });
    expectSuccess(r);
    // docs/etcd.md §3: margin = election timeout + ceil(2 · TTL · 500 ppm) + 1 ms = 300 + 2 + 1.
    expect(r.stdout).toMatch(/^kv-0 leads \(epoch \d+\); lease = TTL 2000 ms - margin 303 ms$/m);
    expect(r.stdout).toMatch(/^read greeting=hello: served local \(valid\) at revision \d+$/m);
    expect(r.stdout).toContain("event: closed");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("etcd-service: ok");
  });

  test("without ETCD_ENDPOINTS it says what to set and exits 2", async () => {
    const r = await run(process.execPath, ["examples/etcd-service.mjs"], { ETCD_ENDPOINTS: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("set ETCD_ENDPOINTS");
  });
});

describe("cloudflare-worker/ in workerd", () => {
  const dir = join(root, "examples", "cloudflare-worker");
  let mf: Miniflare | undefined;
  const previousWorkerdPath = process.env["MINIFLARE_WORKERD_PATH"];

  /** The keys of wrangler.toml this test relies on (flat `key = "value"` lines). */
  function wranglerValue(toml: string, key: string): string {
    const match = toml.match(new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, "m"));
    if (!match) throw new Error(`wrangler.toml has no ${key}`);
    return match[1]!;
  }

  beforeAll(async () => {
    // The workerd the project pins, not the copy miniflare nests (as test/workerd.test.ts).
    process.env["MINIFLARE_WORKERD_PATH"] = runtimeBinary("workerd");
    const toml = readFileSync(join(dir, "wrangler.toml"), "utf8");
    expect(toml).toMatch(/\[\[rules\]\]\s*\ntype\s*=\s*"CompiledWasm"\s*\nglobs\s*=\s*\["\*\*\/\*\.wasm"\]/);
    // Bundled as wrangler does: its export conditions (workerd, worker, browser), every .wasm
    // import left as a module import and shipped beside the bundle as CompiledWasm.
    const wasm = new Map<string, string>();
    const wasmModules: Plugin = {
      name: "compiled-wasm",
      setup(b) {
        b.onResolve({ filter: /\.wasm$/ }, (args) => {
          const file = join(args.resolveDir, args.path);
          wasm.set(basename(file), file);
          return { path: `./${basename(file)}`, external: true };
        });
      },
    };
    const bundle = await build({
      entryPoints: [join(dir, wranglerValue(toml, "main"))],
      bundle: true, format: "esm", platform: "neutral", target: "es2022", write: false, logLevel: "warning",
      conditions: ["workerd", "worker", "browser"], plugins: [wasmModules],
    });
    expect([...wasm.values()]).toEqual([join(root, "build", "lease-core.wasm")]);
    mf = new Miniflare({
      compatibilityDate: wranglerValue(toml, "compatibility_date"),
      modulesRoot: "/",
      modules: [
        { type: "ESModule", path: "/worker.js", contents: bundle.outputFiles[0]!.text },
        ...[...wasm].map(([name, file]) => ({ type: "CompiledWasm" as const, path: `/${name}`, contents: readFileSync(file) })),
      ],
    });
    await mf.ready;
  }, 30_000);

  afterAll(async () => {
    await mf?.dispose();
    if (previousWorkerdPath === undefined) delete process.env["MINIFLARE_WORKERD_PATH"];
    else process.env["MINIFLARE_WORKERD_PATH"] = previousWorkerdPath;
  });

  test("answers a request with its lease state, on workerd's frozen-capable clock", async () => {
    if (!mf) throw new Error("miniflare did not start");
    for (let i = 0; i < 2; i++) {
      const response = await mf.dispatchFetch("http://example.test/");
      expect(response.headers.get("content-type")).toBe("application/json");
      const body = (await response.json()) as Record<string, any>;
      expect(response.status, JSON.stringify(body)).toBe(200);
      expect(body.clock).toEqual({
        source: "performance.now (frozen-clock budget 50 ms)",
        raw: false,
        suspendAware: false,
        resolutionNs: "1000000",
        mayFreeze: true,
        freezeBudgetNs: "50000000",
      });
      expect(body).toMatchObject({ extended: true, valid: true, reason: "valid", freezeBudgetNs: "50000000" });
      const remainingNs = BigInt(body.remainingNs);
      expect(remainingNs).toBeGreaterThan(0n);
      expect(remainingNs).toBeLessThanOrEqual(200_000_000n);
    }
  });
});
