// The browser host (host/runtime/browser.ts → build/browser.js) in the real Debian Chromium
// (/usr/bin/chromium, `apt-get install chromium`), headless, driven by playwright-core. A tiny
// node:http server on 127.0.0.1 serves build/, the page script (test/runtimes/browser-page.js)
// and the vectors runner (host/cli/vectors.ts bundled here with esbuild) under four prefixes:
//   /plain/     as a normal site;
//   /isolated/  with COOP/COEP, so the page is cross-origin isolated (finer performance.now);
//   /octet/     the .wasm as application/octet-stream, which compileStreaming must refuse;
//   /flaky/     the first request for the .wasm fails with 503.
// Needs `node scripts/build.mjs --skip-native` first (npm test does it). Never runs
// `playwright install`: a missing /usr/bin/chromium is a failure.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import cases from "../vectors/core.json" with { type: "json" };

const root = fileURLToPath(new URL("..", import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const US = 1_000n;
const MS = 1_000_000n;
/** The host's constant origin offset (host/runtime/browser.ts): readings are performance.now() + 1 ms. */
const ORIGIN_OFFSET_NS = MS;

type Variant = "plain" | "isolated" | "octet" | "flaky";
const VARIANTS: readonly Variant[] = ["plain", "isolated", "octet", "flaky"];

let server: Server | undefined;
let baseUrl = "";
let context: BrowserContext | undefined;
let userDataDir: string | undefined;
let runnerJs = "";
const requests = new Map<string, number>();

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>lease-core</title><script type="module" src="page.js"></script>`;
const TYPES: Record<string, string> = { ".js": "text/javascript", ".html": "text/html; charset=utf-8", ".wasm": "application/wasm" };

async function serve(variant: Variant, path: string): Promise<{ status: number; type: string; body: string | Buffer }> {
  if (path === "/page.html") return { status: 200, type: TYPES[".html"]!, body: PAGE_HTML };
  if (path === "/page.js") return { status: 200, type: TYPES[".js"]!, body: await readFile(join(root, "test/runtimes/browser-page.js")) };
  if (path === "/vectors-runner.js") return { status: 200, type: TYPES[".js"]!, body: runnerJs };
  const file = normalize(path).replace(/^\/build\//, "");
  if (!path.startsWith("/build/") || file.includes("..") || !existsSync(join(root, "build", file))) return { status: 404, type: "text/plain", body: "not found" };
  const isWasm = extname(file) === ".wasm";
  if (isWasm && variant === "flaky" && (requests.get(`${variant}${path}`) ?? 0) === 1) {
    return { status: 503, type: "text/plain", body: "try again" };
  }
  const type = isWasm && variant === "octet" ? "application/octet-stream" : (TYPES[extname(file)] ?? "application/octet-stream");
  return { status: 200, type, body: await readFile(join(root, "build", file)) };
}

/** A fresh page on `/<variant>/page.html`, with its errors collected for failure messages. */
async function openPage(variant: Variant): Promise<{ page: Page; errors: string[] }> {
  if (!context) throw new Error("Chromium did not start");
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  await page.goto(`${baseUrl}/${variant}/page.html`);
  await page.waitForFunction(() => (window as unknown as { leaseCorePageReady?: boolean }).leaseCorePageReady === true).catch((err: unknown) => {
    throw new Error(`page did not get ready: ${String(err)}; page errors: ${errors.join(" | ")}`);
  });
  return { page, errors };
}

interface PageResult {
  crossOriginIsolated: boolean;
  info: { source: string; raw: boolean; suspendAware: boolean; resolutionNs: string; mayFreeze: boolean };
  report: { passed: number; failed: number; failures: unknown[] };
  callsAfterFirstLoad: { compileStreaming: number; compile: number };
  callsAfterSecondLoad: { compileStreaming: number; compile: number };
  readings: string[];
  extended: boolean;
  validNow: boolean;
  validAfter100ms: boolean;
  clockEvents: Record<string, string>;
}

async function runPage(variant: Variant, fetched = true): Promise<PageResult> {
  const { page, errors } = await openPage(variant);
  try {
    return await page.evaluate((f) => (window as unknown as { leaseCoreTest(fetched: boolean): Promise<PageResult> }).leaseCoreTest(f), fetched);
  } catch (err) {
    throw new Error(`${variant} page failed: ${String(err)}; page errors: ${errors.join(" | ")}`);
  } finally {
    await page.close();
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`);
  for (const file of ["build/browser.js", "build/lease-core.wasm"]) {
    if (!existsSync(join(root, file))) throw new Error(`${file} missing: run node scripts/build.mjs --skip-native`);
  }
  const runner = await build({
    stdin: {
      contents: `export { runVectors } from "./host/cli/vectors.ts";\nexport { default as cases } from "./vectors/core.json";\n`,
      resolveDir: root,
      loader: "js",
    },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "warning",
  });
  runnerJs = runner.outputFiles[0]!.text;

  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const [, variant, ...rest] = url.pathname.split("/");
    const path = `/${rest.join("/")}`;
    if (!VARIANTS.includes(variant as Variant)) {
      res.writeHead(404).end();
      return;
    }
    const key = `${variant}${path}`;
    requests.set(key, (requests.get(key) ?? 0) + 1);
    serve(variant as Variant, path).then(
      ({ status, type, body }) => {
        const headers: Record<string, string> = { "Content-Type": type, "Cache-Control": "no-store" };
        if (variant === "isolated") {
          headers["Cross-Origin-Opener-Policy"] = "same-origin";
          headers["Cross-Origin-Embedder-Policy"] = "require-corp";
        }
        res.writeHead(status, headers).end(body);
      },
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // A profile directory we create, check empty, and delete: no state leaks between runs.
  userDataDir = await mkdtemp(join(tmpdir(), "lease-core-chromium-"));
  expect(await readdir(userDataDir)).toEqual([]);
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 60_000);

afterAll(async () => {
  try {
    await context?.close();
  } finally {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  }
}, 30_000);

/** Checks common to every page that loads: vectors, clock report, readings, a real lease. */
function expectHealthyCore(r: PageResult): bigint {
  expect(r.report.failures).toEqual([]);
  expect(r.report.passed).toBe((cases as unknown[]).length);
  expect(r.info).toMatchObject({ source: "performance.now", raw: false, suspendAware: false, mayFreeze: false });
  const resolutionNs = BigInt(r.info.resolutionNs);
  const readings = r.readings.map(BigInt);
  expect(readings.length).toBeGreaterThan(10);
  for (let i = 0; i < readings.length; i++) {
    const ns = readings[i]!;
    expect(ns).toBeGreaterThan(ORIGIN_OFFSET_NS - 1n);
    // Exact integer conversion: Chromium's clamped values are whole multiples of its step
    // since the time origin; float math (Math.floor(ms * 1e6)) would land 1 ns off.
    expect((ns - ORIGIN_OFFSET_NS) % resolutionNs, `reading ${ns}`).toBe(0n);
    if (i > 0) expect(ns).toBeGreaterThan(readings[i - 1]!);
  }
  expect(r.extended).toBe(true);
  expect(r.validNow).toBe(true);
  expect(r.validAfter100ms).toBe(false);
  expect(r.clockEvents).toEqual({ zeroReadings: "0", regressions: "0", suspends: "0", suspendedNs: "0" });
  return resolutionNs;
}

describe("browser host in Chromium", () => {
  test("no wasmUrl: the module inlined in the bundle, compiled once, nothing fetched", async () => {
    const before = requests.get("plain/build/lease-core.wasm") ?? 0;
    const r = await runPage("plain", false);
    expectHealthyCore(r);
    expect(r.callsAfterFirstLoad).toEqual({ compileStreaming: 0, compile: 1 });
    expect(r.callsAfterSecondLoad).toEqual({ compileStreaming: 0, compile: 1 });
    expect(requests.get("plain/build/lease-core.wasm") ?? 0).toBe(before);
  }, 30_000);

  test("a wasmUrl that is missing or not a module: WasmLoadError, ERR_LEASE_WASM_LOAD, says what to serve", async () => {
    const { page } = await openPage("plain");
    try {
      const r = await page.evaluate(() => (window as unknown as { leaseCoreLoadErrors(): Promise<Record<string, any>> }).leaseCoreLoadErrors());
      for (const name of ["missing", "notWasm"]) {
        expect(r[name], name).toMatchObject({ name: "WasmLoadError", code: "ERR_LEASE_WASM_LOAD", typed: true });
        expect(r[name].message, name).toContain("serve node_modules/lease-core/build/lease-core.wasm at that URL as application/wasm, or omit wasmUrl");
      }
      expect(r.missing.message).toMatch(/HTTP 404/);
      expect(r.notWasm.message).toMatch(/served as text\/html/);
    } finally {
      await page.close();
    }
  }, 30_000);

  test("plain page: vectors pass, coarse clock (>= 20 µs), module compiled by compileStreaming once", async () => {
    const r = await runPage("plain");
    expect(r.crossOriginIsolated).toBe(false);
    const resolutionNs = expectHealthyCore(r);
    expect(resolutionNs).toBeGreaterThanOrEqual(20n * US);
    expect(resolutionNs).toBeLessThanOrEqual(MS);
    expect(r.callsAfterFirstLoad).toEqual({ compileStreaming: 1, compile: 0 });
    expect(r.callsAfterSecondLoad).toEqual({ compileStreaming: 1, compile: 0 });
    expect(requests.get("plain/build/lease-core.wasm")).toBe(1);
    console.info(`Chromium performance.now resolution, plain page: ${resolutionNs} ns`);
  }, 30_000);

  test("COOP/COEP page: cross-origin isolated, finer clock (<= 20 µs), vectors pass", async () => {
    const r = await runPage("isolated");
    expect(r.crossOriginIsolated).toBe(true);
    const resolutionNs = expectHealthyCore(r);
    expect(resolutionNs).toBeLessThanOrEqual(20n * US);
    expect(r.callsAfterFirstLoad).toEqual({ compileStreaming: 1, compile: 0 });
    console.info(`Chromium performance.now resolution, cross-origin isolated: ${resolutionNs} ns`);
  }, 30_000);

  test("a .wasm served with the wrong Content-Type loads through arrayBuffer + compile", async () => {
    const r = await runPage("octet");
    expectHealthyCore(r);
    expect(r.callsAfterFirstLoad).toEqual({ compileStreaming: 0, compile: 1 });
    expect(r.callsAfterSecondLoad).toEqual({ compileStreaming: 0, compile: 1 });
  }, 30_000);

  test("a failed module fetch is not cached: the next createLeaseCore retries and works", async () => {
    const { page, errors } = await openPage("flaky");
    try {
      const r = await page.evaluate(() => (window as unknown as { leaseCoreRetry(): Promise<{ firstError?: { name: string; code: string; message: string; typed: boolean }; extended: boolean; valid: boolean }> }).leaseCoreRetry());
      expect(r.firstError).toMatchObject({ name: "WasmLoadError", code: "ERR_LEASE_WASM_LOAD", typed: true });
      expect(r.firstError!.message).toMatch(/HTTP 503/);
      expect(r).toMatchObject({ extended: true, valid: true });
      expect(requests.get("flaky/build/lease-core.wasm")).toBe(2);
    } finally {
      await page.close();
    }
    expect(errors.filter((e) => !/503/.test(e))).toEqual([]);
  }, 30_000);

  test("bad options are refused with InvalidOptionError", async () => {
    const { page } = await openPage("plain");
    try {
      const r = await page.evaluate(() => (window as unknown as { leaseCoreBadOptions(): Promise<Record<string, string>> }).leaseCoreBadOptions());
      expect(r).toEqual({ emptyUrl: "InvalidOptionError", numberUrl: "InvalidOptionError", nullOptions: "InvalidOptionError" });
    } finally {
      await page.close();
    }
  }, 30_000);
});
