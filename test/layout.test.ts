// The layout of host/ (issue #14 item 4): one folder per role, no import cycle, every file
// opening with a header comment that says what it is. The import graph is read from the sources
// (every relative `import`, `export ... from` and `import()`, type-only ones included: a cycle of
// types is still two files that cannot be read one without the other), so a new cycle fails here.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, test } from "vitest";

const root = resolve(new URL("..", import.meta.url).pathname);
const hostDir = join(root, "host");

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourcesUnder(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

/** file → the host/ files it imports (relative specifiers only; packages and assets are not edges). */
export function importGraph(files: readonly string[]): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  const specifier = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.\.?\/[^"']+)["']/g;
  for (const file of files) {
    const edges = new Set<string>();
    for (const m of readFileSync(file, "utf8").matchAll(specifier)) {
      const target = resolve(dirname(file), m[1]!).replace(/\.js$/, ".ts");
      if (known.has(target)) edges.add(target);
    }
    graph.set(file, [...edges].sort());
  }
  return graph;
}

/** Every cycle found by a depth-first search, each as the path that closes it (a → b → a). */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (node: string): void => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (state.get(node) === undefined) visit(node);
  return cycles;
}

const files = sourcesUnder(hostDir).sort();
const rel = (f: string) => relative(root, f);

describe("host/ layout", () => {
  test("the cycle finder finds a cycle (the check itself can fail)", () => {
    const graph = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
    expect(findCycles(graph)).toEqual([["a", "b", "c", "a"]]);
    expect(findCycles(new Map([["a", ["b"]], ["b", []], ["c", ["a", "b"]]]))).toEqual([]);
  });

  test("no import cycle among host/ files (type-only imports included)", () => {
    const graph = importGraph(files);
    // The graph is real: the core's main file imports the modules it wires together.
    expect(graph.get(join(hostDir, "core", "core.ts"))).toEqual(expect.arrayContaining([join(hostDir, "core", "reader.ts"), join(hostDir, "core", "lease.ts")]));
    expect(findCycles(graph).map((cycle) => cycle.map(rel).join(" → "))).toEqual([]);
  });

  test("one folder per role: no source file directly in host/ (only global declarations)", () => {
    const flat = readdirSync(hostDir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
    expect(flat.filter((name) => !name.endsWith(".d.ts")).sort()).toEqual([]);
    const folders = readdirSync(hostDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.sort()).toEqual(["cli", "core", "etcd", "generated", "metrics", "runtime", "testing"]);
  });

  test("every host/ file opens with a header comment", () => {
    const bare = files.filter((f) => !/^\s*(\/\*|\/\/)/.test(readFileSync(f, "utf8")));
    expect(bare.map(rel)).toEqual([]);
  });
});
