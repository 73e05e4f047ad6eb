// The test-only switches (host/unsafe.d.ts): absent from every published bundle, present and
// driven by LEASE_CORE_UNSAFE in the test build (build/unsafe/), which the negative controls use.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { root } from "./etcd/support.js";

const declared = [...readFileSync(join(root, "host", "unsafe.d.ts"), "utf8").matchAll(/declare const __UNSAFE_([A-Z0-9_]+)__/g)].map((m) => m[1]!);

function publishedBundles(): string[] {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { files: string[] };
  expect(pkg.files).not.toContain("build/unsafe");
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = join(dir, e.name);
      if (e.isDirectory()) {
        if (rel !== join("build", "unsafe") && rel !== join("build", "types")) walk(rel);
      } else if (e.name.endsWith(".js")) out.push(rel);
    }
  };
  walk("build");
  return out;
}

describe("test-only switches", () => {
  it("never reach a published bundle", () => {
    const bundles = publishedBundles();
    expect(bundles.length).toBeGreaterThan(8);
    for (const file of bundles) {
      const text = readFileSync(join(root, file), "utf8");
      expect(text, file).not.toContain("__leaseCoreUnsafe");
      expect(text, file).not.toMatch(/__UNSAFE_/);
    }
  });

  it("are each declared once and used in the test build", () => {
    const unsafeBundles = readdirSync(join(root, "build", "unsafe")).filter((f) => f.endsWith(".js"));
    expect(unsafeBundles.sort()).toEqual(["etcd.js", "kv-service.js", "node.js"]);
    const text = unsafeBundles.map((f) => readFileSync(join(root, "build", "unsafe", f), "utf8")).join("\n");
    expect(new Set(declared).size).toBe(declared.length);
    for (const name of declared) expect(text, name).toContain(`__leaseCoreUnsafe.${name}`);
  });
});

describe("the group node's negative control (skip-group-confirmation, issue 17)", () => {
  it("is compiled out of the published lease-core/etcd and read from the switch in the test build", () => {
    const published = readFileSync(join(root, "build", "etcd.js"), "utf8");
    const unsafe = readFileSync(join(root, "build", "unsafe", "etcd.js"), "utf8");
    expect(declared).toContain("SKIP_GROUP_CONFIRMATION");
    expect(published).not.toContain("SKIP_GROUP_CONFIRMATION");
    // The round's per-group check is present in both; only the test build can skip it.
    expect(published).toContain("the confirmation read did not see our key");
    expect(unsafe).toContain("__leaseCoreUnsafe.SKIP_GROUP_CONFIRMATION");
  });
});
