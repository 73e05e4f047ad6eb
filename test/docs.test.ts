// The API reference: TypeDoc builds it from the sources' doc comments with validation on
// (typedoc.json: every exported symbol documented, no broken links, warnings are errors), so an
// undocumented public symbol fails this test. And every relative link in the docs resolves.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, expect, test } from "vitest";

const root = new URL("..", import.meta.url).pathname;

describe("documentation", () => {
  test("npm run docs: TypeDoc with zero undocumented public symbols", () => {
    const out = mkdtempSync(join(tmpdir(), "lease-docs-"));
    try {
      const run = spawnSync("npx", ["typedoc", "--out", out], { cwd: root, encoding: "utf8", timeout: 120_000 });
      expect(`${run.stdout}${run.stderr}`).not.toMatch(/does not have any documentation/);
      expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
      expect(existsSync(join(out, "index.html"))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 150_000);

  test("every relative link in README.md and docs/*.md points at a file that exists", () => {
    const pages = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(join(root, page), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue; // http:, https:, mailto:
        if (!existsSync(resolve(root, dirname(page), target!))) broken.push(`${page} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  test("every ERR_LEASE_* code the sources raise is in the docs (a user looking one up finds it)", () => {
    const sources: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
        if (entry.isDirectory()) walk(`${dir}/${entry.name}`);
        else if (entry.name.endsWith(".ts")) sources.push(readFileSync(join(root, dir, entry.name), "utf8"));
      }
    };
    walk("host");
    const codes = new Set<string>();
    for (const text of sources) for (const [code] of text.matchAll(/"ERR_LEASE_[A-Z0-9_]+"/g)) codes.add(code!.slice(1, -1));
    const docs = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)]
      .map((page) => readFileSync(join(root, page), "utf8"))
      .join("\n");
    expect(codes.size).toBeGreaterThan(10);
    expect([...codes].filter((code) => !docs.includes(`\`${code}\``)).sort()).toEqual([]);
  });
});
