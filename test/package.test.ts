// The one import name, `lease-core`, resolved per runtime through package.json "exports":
// every condition points at a file the build produced, in the order runtimes pick them, and the
// packaging linters (publint, arethetypeswrong) pass on the packed tarball.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8"));
const targets = (value: unknown): string[] =>
  typeof value === "string" ? [value] : Object.values(value as Record<string, unknown>).flatMap(targets);

describe("package.json exports", () => {
  test("conditions come in the order runtimes must see them: types first, default last", () => {
    expect(Object.keys(pkg.exports["."])).toEqual(["types", "workerd", "deno", "bun", "node", "browser", "default"]);
    for (const nested of Object.values(pkg.exports["."]).filter((v) => typeof v === "object")) {
      expect(Object.keys(nested as object)[0]).toBe("types");
    }
  });

  test.each(Object.entries(pkg.exports).flatMap(([subpath, value]) => targets(value).map((t) => [subpath, t] as const)))(
    "%s → %s exists after the build",
    (_subpath, target) => {
      expect(existsSync(`${root}${target}`)).toBe(true);
    },
  );

  test("Node resolves lease-core to the node bundle", () => {
    expect(import.meta.resolve("lease-core")).toMatch(/\/build\/node\.js$/);
  });

  // The browser host offers no shared lease table (host/runtime/browser.ts exports none): the one
  // difference, named so that any other name missing from a bundle fails.
  const NOT_IN_BROWSER = ["InvalidLeaseIndexError", "SharedLease", "SharedLeaseTable", "SharedTableClockError", "SharedTableError", "attachSharedLeaseTable", "createSharedLeaseTable"];
  test.each(["bun", "deno", "browser"])("the %s bundle exports the same public API as the node bundle, name for name", async (entry) => {
    const node = await import(`${root}build/node.js`);
    const other = await import(`${root}build/${entry}.js`);
    const expected = Object.keys(node).filter((name) => entry !== "browser" || !NOT_IN_BROWSER.includes(name)).sort();
    expect(expected.length).toBeGreaterThan(40); // the node bundle's own API is all there
    for (const name of ["createLeaseCore", "LeaseCore", "Lease", "QuorumAckTracker", "followerQuorum", "engineLeaseAckValid", "isLeadershipLossError", "REASONS", "NotLeaderError"]) {
      expect(expected, `node: ${name}`).toContain(name);
    }
    expect(Object.keys(other).sort()).toEqual(expected);
    for (const name of expected) {
      expect(typeof other[name], `${entry}: ${name}`).not.toBe("undefined");
      expect(typeof other[name], `${entry}: ${name}`).toBe(typeof node[name]);
    }
  });

  test("no bundle uses top-level await (importing must never block on I/O)", () => {
    for (const entry of ["node", "bun", "deno", "browser", "workerd"]) {
      const code = readFileSync(`${root}build/${entry}.js`, "utf8");
      // esbuild keeps top-level statements at column 0: an `await` there is top-level.
      expect(code.split("\n").filter((line) => /^(?:var \w+ = )?await\b/.test(line)), entry).toEqual([]);
    }
  });

  test("publint and arethetypeswrong pass on the packed package", () => {
    const out = execFileSync("npm", ["run", "--silent", "lint:package"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(out).toMatch(/node16 \(from ESM\)/);
  }, 120_000);
});
