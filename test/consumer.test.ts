// lease-core as a user gets it: `npm pack`, then the tarball installed into fresh temp projects
// (npm install --prefer-offline: the package has no dependencies, so nothing but the tarball is
// installed and no network is needed), and the README's own first example (extracted from
// README.md, so the two cannot drift) run in each place the README names:
//   Node ESM; CommonJS `require` (the README's CommonJS block); TypeScript strict + nodenext
//   (tsc on the example as a .mts); Deno (--allow-read --allow-ffi); Bun; and browser bundles
//   built by esbuild and by Vite with no configuration, opened in Chromium.
// Also: the shim build at install (one line of advice when it fails, repeated by the run-time
// warning), and the tarball itself: no TS sources, a LICENSE, every README/docs link resolving
// inside the package or to a public URL. The tools (tsc, esbuild, vite, deno, bun) are the
// repository's; only lease-core is installed in the projects.
// CONSUMER_TARBALL=/path/to.tgz runs the same checks on another tarball (e.g. one missing a file).
// Needs `node scripts/build.mjs` first (npm test does it).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { chromium, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runtimeBinary } from "../scripts/runtimes.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "lease-core-consumer-"));
const readme = readFileSync(join(root, "README.md"), "utf8");

/** The README's first example (the first js block of "Install and use") and its CommonJS block. */
function readmeBlocks(): { esm: string; cjs: string } {
  const install = readme.slice(readme.indexOf("## Install and use"));
  const blocks = [...install.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  const esm = blocks.find((b) => /^import .* from "lease-core";$/m.test(b));
  const cjs = blocks.find((b) => /require\("lease-core"\)/.test(b));
  if (!esm || !cjs) throw new Error("README.md: no ESM or CommonJS example under Install and use");
  return { esm, cjs };
}
const EXAMPLE = readmeBlocks();
/** What the example prints when its lease holds. */
const VALID_LINE = "lease valid: true";

interface Run {
  status: number | null;
  out: string;
}

function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 120_000): Run {
  const r = spawnSync(command, args, { cwd, encoding: "utf8", timeout: timeoutMs, env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env } });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

function expectOk(r: Run, what: string): void {
  expect(r.status, `${what}:\n${r.out}`).toBe(0);
}

let tarball = "";
let packFiles: string[] = [];

/** A fresh project with the tarball installed; `pkg` is its package.json. */
function project(name: string, pkg: Record<string, unknown>, env: Record<string, string> = {}): { dir: string; install: Run } {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `consumer-${name}`, version: "1.0.0", private: true, ...pkg }, null, 2));
  const install = run("npm", ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund", "--foreground-scripts", "--loglevel", "error"], dir, env);
  return { dir, install };
}

let esmDir = "";

beforeAll(() => {
  for (const file of ["build/node.js", "build/browser.js", "build/lease-core.wasm"]) {
    if (!existsSync(join(root, file))) throw new Error(`${file} missing: run node scripts/build.mjs`);
  }
  if (process.env["CONSUMER_TARBALL"]) {
    tarball = process.env["CONSUMER_TARBALL"];
  } else {
    const packed = JSON.parse(execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { cwd: root, encoding: "utf8" }))[0];
    tarball = join(work, packed.filename);
    console.info(`lease-core tarball: ${packed.size} B packed, ${packed.unpackedSize} B unpacked, ${packed.entryCount} files`);
  }
  packFiles = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).trim().split("\n").map((f) => f.replace(/^package\//, ""));
  const esm = project("esm", { type: "module" });
  expectOk(esm.install, "npm install (ESM project)");
  esmDir = esm.dir;
  writeFileSync(join(esmDir, "main.mjs"), EXAMPLE.esm);
}, 180_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe("the packed tarball", () => {
  test("holds what a consumer needs and nothing of the sources", () => {
    for (const file of ["package.json", "README.md", "LICENSE", "build/node.js", "build/browser.js", "build/lease-core.wasm", "build/types/host/runtime/node.d.ts", "bin/lease-core.js", "native/lease_clock.c", "scripts/build-native.mjs"]) {
      expect(packFiles, file).toContain(file);
    }
    expect(packFiles.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    expect(packFiles.filter((f) => /selftest|native\/build\/|\.map$/.test(f))).toEqual([]);
  });

  test("every link in README.md and docs/*.md resolves inside the package or is a public URL", () => {
    const pages = packFiles.filter((f) => f === "README.md" || /^docs\/.*\.md$/.test(f));
    expect(pages.length).toBeGreaterThan(5);
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(join(root, page), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
        if (/^https:\/\//.test(target!)) continue;
        if (/^[a-z]+:/.test(target!)) {
          broken.push(`${page} → ${target} (not https)`);
          continue;
        }
        const resolved = posix.normalize(posix.join(posix.dirname(page), target!));
        if (!packFiles.includes(resolved) && !packFiles.some((f) => f.startsWith(`${resolved}/`))) broken.push(`${page} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe("the README's example, from the installed tarball", () => {
  test("Node, ESM: the shim was built at install, the raw clock is used, the lease holds", () => {
    expect(existsSync(join(esmDir, "node_modules", "lease-core", "build", "lease_clock.node"))).toBe(true);
    expect(existsSync(join(esmDir, "node_modules", "lease-core", "native", "build"))).toBe(false);
    const r = run(process.execPath, ["main.mjs"], esmDir);
    expectOk(r, "node main.mjs");
    expect(r.out).toContain("CLOCK_MONOTONIC_RAW+sleep-offset true");
    expect(r.out).toContain(VALID_LINE);
    expect(r.out).not.toContain("LEASE_CORE_CLOCK_FALLBACK");
  });

  test("CommonJS: require('lease-core') in a project without \"type\": \"module\"", () => {
    const { dir, install } = project("cjs", {});
    expectOk(install, "npm install (CommonJS project)");
    writeFileSync(join(dir, "main.js"), EXAMPLE.cjs);
    const r = run(process.execPath, ["main.js"], dir);
    expectOk(r, "node main.js");
    expect(r.out).toContain(VALID_LINE);
  }, 120_000);

  test("TypeScript strict + nodenext: the example type-checks against the shipped types", () => {
    writeFileSync(join(esmDir, "main-ts.mts"), EXAMPLE.esm);
    writeFileSync(
      join(esmDir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", noEmit: true,
          noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true,
          types: ["node"], typeRoots: [join(root, "node_modules", "@types")],
        },
        files: ["main-ts.mts"],
      }),
    );
    const r = run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], esmDir);
    expectOk(r, "tsc");
  }, 120_000); // tsc loads all of @types/node: ~20 s alone, more on a shared machine

  test("Deno, --allow-read --allow-ffi: the deno entry and the raw clock through FFI", { timeout: 60_000 }, () => {
    const r = run(runtimeBinary("deno"), ["run", "--no-lock", "--allow-read", "--allow-ffi", "main.mjs"], esmDir);
    expectOk(r, "deno run");
    expect(r.out).toContain("CLOCK_MONOTONIC_RAW+sleep-offset true");
    expect(r.out).toContain(VALID_LINE);
  });

  test("Bun: the bun entry and the raw clock through bun:ffi", { timeout: 60_000 }, () => {
    const r = run(runtimeBinary("bun"), ["main.mjs"], esmDir);
    expectOk(r, "bun");
    expect(r.out).toContain("CLOCK_MONOTONIC_RAW+sleep-offset true");
    expect(r.out).toContain(VALID_LINE);
  });
});

describe("browser bundles as they come, in Chromium", () => {
  let server: Server | undefined;
  let base = "";
  let context: BrowserContext | undefined;
  let userDataDir = "";
  let siteDir = "";
  const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };

  beforeAll(async () => {
    // The two builds, each from the untouched example and no bundler configuration.
    const page = join(esmDir, "web");
    mkdirSync(page, { recursive: true });
    writeFileSync(join(page, "main.js"), EXAMPLE.esm);
    writeFileSync(join(page, "index.html"), `<!doctype html><meta charset="utf-8"><title>consumer</title><script type="module" src="./main.js"></script>`);
    await build({ absWorkingDir: esmDir, entryPoints: ["web/main.js"], bundle: true, format: "esm", platform: "browser", outfile: "dist-esbuild/main.js", logLevel: "warning" });
    writeFileSync(join(esmDir, "dist-esbuild", "index.html"), readFileSync(join(page, "index.html")));
    const vite = run(process.execPath, [join(root, "node_modules", "vite", "bin", "vite.js"), "build", "web", "--outDir", "../dist-vite", "--emptyOutDir", "--logLevel", "warn"], esmDir);
    expectOk(vite, "vite build");

    // Each build served at the site's root, as deployed (Vite's default base is "/").
    server = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
      const file = join(siteDir, path.endsWith("/") ? `${path}index.html` : path);
      if (!file.startsWith(siteDir) || !existsSync(file)) return void res.writeHead(404).end("not found");
      res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    userDataDir = mkdtempSync(join(tmpdir(), "lease-core-consumer-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      timeout: 30_000,
      args: ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run", "--disable-component-update", "--disable-sync"],
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  }, 30_000);

  test.each(["esbuild", "vite"])("%s bundle: the example runs, nothing but the page and its scripts fetched", async (bundler) => {
    const p = await context!.newPage();
    const lines: string[] = [];
    const errors: string[] = [];
    const fetched: string[] = [];
    p.on("console", (m) => lines.push(m.text()));
    p.on("pageerror", (e) => errors.push(String(e)));
    p.on("request", (r) => fetched.push(new URL(r.url()).pathname));
    try {
      siteDir = join(esmDir, `dist-${bundler}`);
      await p.goto(`${base}/`);
      const deadline = Date.now() + 15_000;
      while (!lines.some((l) => l.includes(VALID_LINE)) && errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(errors).toEqual([]);
      expect(lines.join("\n")).toContain(VALID_LINE);
      expect(lines.join("\n")).toContain("performance.now false");
      expect(fetched.filter((f) => f.endsWith(".wasm"))).toEqual([]);
    } finally {
      await p.close();
    }
  }, 30_000);
});

describe("Deno without --allow-read", () => {
  test("a WasmLoadError that names both flags, not Deno's bare permission error", { timeout: 60_000 }, () => {
    writeFileSync(join(esmDir, "deno-no-read.mjs"), `import { createLeaseCore } from "lease-core";\ntry { await createLeaseCore(); } catch (e) { console.log(e.name, e.code, e.message); }\n`);
    const r = run(runtimeBinary("deno"), ["run", "--no-lock", "--allow-ffi", "deno-no-read.mjs"], esmDir);
    expect(r.out).toContain("WasmLoadError ERR_LEASE_WASM_LOAD lease-core: reading lease-core.wasm needs --allow-read (run: deno run --allow-read --allow-ffi");
  });
});

describe("workerd, bundled from the installed package", () => {
  const WORKER = `import { createLeaseCore } from "lease-core";
export default {
  async fetch() {
    try {
      const core = await createLeaseCore();
      const lease = core.createLease();
      lease.extend(core.now() + 700_000_000n, lease.generation());
      return new Response("lease valid: " + lease.valid());
    } catch (e) {
      return new Response(e.name + " " + e.code + " " + e.message, { status: 500 });
    }
  },
};
`;

  /** esbuild with wrangler's conditions; `wasm`: how the .wasm import is bundled. */
  async function serveWorker(wasm: "compiled" | "binary"): Promise<{ status: number; body: string }> {
    writeFileSync(join(esmDir, "worker.mjs"), WORKER);
    const wasmFiles: string[] = [];
    const bundle = await build({
      absWorkingDir: esmDir, entryPoints: ["worker.mjs"], bundle: true, format: "esm", platform: "neutral", write: false, logLevel: "silent",
      conditions: ["workerd", "worker", "browser"],
      ...(wasm === "binary"
        ? { loader: { ".wasm": "binary" as const } }
        : { plugins: [{ name: "compiled-wasm", setup(b) { b.onResolve({ filter: /\.wasm$/ }, (a) => { wasmFiles.push(join(a.resolveDir, a.path)); return { path: "./lease-core.wasm", external: true }; }); } }] }),
    });
    const previous = process.env["MINIFLARE_WORKERD_PATH"];
    process.env["MINIFLARE_WORKERD_PATH"] = runtimeBinary("workerd");
    const mf = new Miniflare({
      compatibilityDate: "2025-06-01",
      modulesRoot: "/",
      modules: [
        { type: "ESModule", path: "/worker.js", contents: bundle.outputFiles[0]!.text },
        ...wasmFiles.map((f) => ({ type: "CompiledWasm" as const, path: "/lease-core.wasm", contents: readFileSync(f) })),
      ],
    });
    try {
      const response = await mf.dispatchFetch("http://example.test/");
      return { status: response.status, body: await response.text() };
    } finally {
      await mf.dispose();
      if (previous === undefined) delete process.env["MINIFLARE_WORKERD_PATH"];
      else process.env["MINIFLARE_WORKERD_PATH"] = previous;
    }
  }

  test("as wrangler bundles it (the .wasm a CompiledWasm module): the lease holds", async () => {
    expect(await serveWorker("compiled")).toEqual({ status: 200, body: VALID_LINE });
  }, 60_000);

  test("with the .wasm turned into bytes: a WasmLoadError that says how to bundle it", async () => {
    const r = await serveWorker("binary");
    expect(r.status).toBe(500);
    expect(r.body).toMatch(/^WasmLoadError ERR_LEASE_WASM_LOAD .*gave bytes, not a compiled WebAssembly.Module.*bundle with wrangler/);
  }, 60_000);
});

describe("a shim that cannot be built at install (no C compiler)", () => {
  test("npm install succeeds and says why, what to install and npm rebuild lease-core; the run-time warning repeats it", () => {
    const { dir, install } = project("no-compiler", { type: "module" }, { CC: "/bin/false", CXX: "/bin/false" });
    expectOk(install, "npm install (no compiler)");
    const advice = install.out.split("\n").filter((l) => l.includes("lease-core: native clock shim not built"));
    expect(advice, install.out).toHaveLength(1);
    expect(advice[0]).toMatch(/Install a C compiler, make and Python 3 .*then run: npm rebuild lease-core$/);
    expect(existsSync(join(dir, "node_modules", "lease-core", "build", "lease_clock.node"))).toBe(false);
    writeFileSync(join(dir, "main.mjs"), EXAMPLE.esm);
    const r = run(process.execPath, ["main.mjs"], dir);
    expectOk(r, "node main.mjs without the shim");
    expect(r.out).toContain(VALID_LINE);
    expect(r.out).toMatch(/LEASE_CORE_CLOCK_FALLBACK.*the shim was not built at install: .*then run: npm rebuild lease-core/);
  }, 120_000);
});
