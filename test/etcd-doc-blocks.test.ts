// Every code block of README.md and docs/etcd.md runs here, so the docs cannot rot:
// - each `ts`/`js` block is type-checked (tsc strict, module nodenext: what a TypeScript user
//   compiles) and run with node, importing the package by its name. Names a block leaves to
//   the reader (`raft`, `store`, `engine`, ...) come from a small typed prelude of fakes, added
//   only for names the block uses and does not declare; a block that imports nothing of the
//   package is still run. The etcd blocks run against real one-member etcds started here (plain,
//   and TLS + authentication for the TLS example): only their endpoints, certificate paths and
//   password are substituted, and the TLS example, which only creates its node, is then started,
//   elected and closed;
// - each `sh` block's commands exist: `npm run X` / `npm start` / `npm test` are scripts,
//   `npm i` names the package or a peer, `npx lease-core X` a command of the CLI;
// - the README's table of subpaths names real exports and their declared peers.
// Needs `node scripts/build.mjs` first (npm test does it).
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestEtcd, type TestEtcd } from "./etcd/tls-etcd.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
// Inside the package directory, so `lease-core` resolves to the package itself (self-reference
// through "exports") and etcd3, prom-client... from its node_modules.
const dir = join(root, "build", "doc-blocks");
const PAGES = ["README.md", "docs/etcd.md"];

interface Block {
  page: string;
  line: number;
  lang: string;
  code: string;
}

function blocksOf(page: string): Block[] {
  const text = readFileSync(join(root, page), "utf8");
  const out: Block[] = [];
  for (const m of text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) {
    out.push({ page, line: text.slice(0, m.index).split("\n").length, lang: m[1]!, code: m[2]! });
  }
  return out;
}

const ALL = PAGES.flatMap(blocksOf);
const CODE = ALL.filter((b) => b.lang === "ts" || b.lang === "js");
const SHELL = ALL.filter((b) => b.lang === "sh");

/** The fakes, in dependency order: name → TypeScript declaration. */
const PRELUDE: [string, string][] = [
  ["raft", `class FakeRaft extends __EventEmitter {
  role: "leader" | "follower" = "leader";
  appliedIndex = 1n;
  async readIndex(_signal?: AbortSignal): Promise<bigint> { return this.appliedIndex; }
  async propose(_cmd: unknown): Promise<{ commitIndex: bigint }> { return { commitIndex: ++this.appliedIndex }; }
}
const raft = new FakeRaft();`],
  ["store", `const store = { readAt: (_fence: bigint, _key: string): string => "v" };`],
  ["key", `const key = "k";`],
  ["cmd", `const cmd = { op: "put", key: "k", value: "v" };`],
  ["voters", `const voters = 3;`],
  ["newVoters", `const newVoters = 5;`],
  ["peerId", `const peerId = 2;`],
  ["sentAtNs", `const sentAtNs = 5_000_000_000n;`],
  ["tracker", `const tracker = { quorumAck: (): bigint => 0n };`],
  ["metrics", `const metrics: { observer: __lc.LeaseObserver } = { observer: { onHit() {}, onMiss() {} } };`],
  ["engine", `const engine: __lc.LeaseEngine = {
  state: () => "leader", appliedIndex: () => 1n, linearizableRead: async () => 1n,
  leaseDurationNs: () => 700_000_000n, lastQuorumAck: () => 0n, onLeaderLoss: () => () => {},
};`],
  ["core", `const core = await __lc.createLeaseCore();`],
  ["followerQuorum", `const followerQuorum = __lc.followerQuorum;`],
];

/** The block as a module: its imports, the fakes it needs, its body. */
function moduleOf(block: Block, substitute: (code: string) => string): { source: string; cjs: boolean } {
  const code = substitute(block.code);
  const lines = code.split("\n");
  const imports = lines.filter((l) => /^import .* from ".*";$/.test(l));
  const body = lines.filter((l) => !imports.includes(l)).join("\n");
  const code_ = body.replace(/\/\/.*$/gm, ""); // names in comments are not uses
  const declared = (name: string) =>
    new RegExp(`\\b(const|let|var|class|function)[ \\t]+${name}\\b|\\([ \\t]*${name}[ \\t]*\\)[ \\t]*=>`).test(code_) || imports.some((l) => new RegExp(`\\b${name}\\b`).test(l));
  const cjs = /\brequire\(/.test(code_);
  const fakes = PRELUDE.filter(([name]) => new RegExp(`\\b${name}\\b`).test(code_) && !declared(name)).map(([, decl]) => decl);
  const header = cjs
    ? []
    : ['import { EventEmitter as __EventEmitter } from "node:events";', 'import * as __lc from "lease-core";'];
  if (cjs && fakes.length > 0) throw new Error(`${block.page}:${block.line}: a CommonJS block gets no fakes`);
  return { source: [...header, ...imports, ...fakes, body, cjs ? "" : "export {};"].join("\n"), cjs };
}

let plain: TestEtcd | undefined;
let secure: TestEtcd | undefined;
const PASSWORD = "doc-block-password";

/** What an etcd.md block needs changed to reach the etcds started here, and nothing else. */
function substitute(block: Block): (code: string) => string {
  if (block.page !== "docs/etcd.md") return (c) => c;
  return (code) => {
    const tls = /\btls:/.test(code);
    const target = tls ? secure! : plain!;
    let out = code.replace(/endpoints: \[[^\]]*\]/, `endpoints: ${JSON.stringify([target.endpoint])}`);
    out = out.replace(/readFileSync\("\/etc\/etcd\/([\w.]+)"\)/g, (_m, file: string) => `readFileSync(${JSON.stringify(join(target.dir, file))})`);
    if (tls) out += `\nawait node.start();\nawait node.waitForLeader();\nconsole.log("doc-block: elected over TLS");\nawait node.close();\n`;
    return out;
  };
}

beforeAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  [plain, secure] = await Promise.all([startTestEtcd(), startTestEtcd({ users: { root: "root-password", "kv-service": PASSWORD } })]);
}, 40_000);
afterAll(async () => {
  await Promise.all([plain?.stop(), secure?.stop()]);
  if (process.env["KEEP_DOC_BLOCKS"] !== "1") rmSync(dir, { recursive: true, force: true });
});

describe("the code blocks of README.md and docs/etcd.md", () => {
  test("there are blocks to check", () => {
    expect(CODE.filter((b) => b.page === "README.md").length).toBeGreaterThanOrEqual(5);
    expect(CODE.filter((b) => b.page === "docs/etcd.md").length).toBeGreaterThanOrEqual(2);
  });

  test("every ts block type-checks (tsc strict, nodenext), and every ts/js block runs to exit 0", async () => {
    const files = CODE.map((block, i) => {
      const { source, cjs } = moduleOf(block, substitute(block));
      const base = `block-${i}-${block.page.replace(/\W/g, "_")}-L${block.line}`;
      // ts blocks are what a TypeScript user copies: type-checked. js blocks only run.
      if (block.lang === "ts") writeFileSync(join(dir, `${base}.${cjs ? "cts" : "mts"}`), source);
      return { block, base, source, cjs };
    });
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", lib: ["es2022"], types: ["node"], noEmit: true, skipLibCheck: true },
        include: ["*.mts", "*.cts"],
      }),
    );
    const tsc = spawnSync(join(root, "node_modules", ".bin", "tsc"), ["-p", join(dir, "tsconfig.json")], { encoding: "utf8", timeout: 120_000 });
    expect(`${tsc.stdout}${tsc.stderr}`, "tsc on the doc blocks").toBe("");
    expect(tsc.status).toBe(0);

    const failures: string[] = [];
    for (const { block, base, source, cjs } of files) {
      const js = await transform(source, { loader: "ts", format: cjs ? "cjs" : "esm", target: "es2022" });
      const file = join(dir, `${base}.${cjs ? "cjs" : "mjs"}`);
      writeFileSync(file, js.code);
      const run = spawnSync(process.execPath, [file], {
        cwd: dir,
        encoding: "utf8",
        timeout: 30_000,
        env: { ...process.env, ETCD_PASSWORD: PASSWORD, LEASE_CORE_NO_NATIVE: process.env["LEASE_CORE_NO_NATIVE"] ?? "" },
      });
      if (run.status !== 0) failures.push(`${block.page}:${block.line} exited ${run.status} ${run.signal ?? ""}\n${run.stdout}\n${run.stderr}`);
      if (/tls:/.test(block.code) && block.page === "docs/etcd.md") expect(run.stdout).toContain("doc-block: elected over TLS");
    }
    expect(failures).toEqual([]);
  }, 180_000);

  test("every sh block's commands exist", () => {
    const cliUsage = readFileSync(join(root, "host", "cli", "doctor.ts"), "utf8");
    const peers = Object.keys(pkg.peerDependencies ?? {});
    const problems: string[] = [];
    for (const block of SHELL) {
      for (const raw of block.code.split("\n")) {
        const line = raw.replace(/#.*$/, "").trim();
        for (const command of line.split("&&").map((c) => c.trim()).filter(Boolean)) {
          const words = command.split(/\s+/);
          if (words[0] === "npm" && (words[1] === "run")) {
            if (!pkg.scripts[words[2]!]) problems.push(`${block.page}:${block.line}: no script ${words[2]}`);
          } else if (words[0] === "npm" && (words[1] === "start" || words[1] === "test")) {
            if (!pkg.scripts[words[1]]) problems.push(`${block.page}:${block.line}: no script ${words[1]}`);
          } else if (words[0] === "npm" && (words[1] === "i" || words[1] === "install")) {
            for (const name of words.slice(2).filter((w) => !w.startsWith("-"))) {
              if (name !== pkg.name && !peers.includes(name)) problems.push(`${block.page}:${block.line}: npm i ${name} is neither the package nor a peer`);
            }
          } else if (words[0] === "npx" && words[1] === pkg.name) {
            if (!Object.keys(pkg.bin).includes(words[1]) || !new RegExp(`usage: lease-core ${words[2]}\\b`).test(cliUsage)) problems.push(`${block.page}:${block.line}: no command ${words[2]}`);
          } else {
            problems.push(`${block.page}:${block.line}: a command this test does not know how to check: ${command}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  test("the README's subpath table names exports and their peers", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const rows = [...readme.matchAll(/^\| `(lease-core\/[\w/]+)`.*\| `npm i ([@\w/.-]+)` \|$/gm)];
    expect(rows.length).toBe(3);
    for (const [, subpath, peer] of rows) {
      expect(pkg.exports[`.${subpath!.slice("lease-core".length)}`], subpath).toBeDefined();
      expect(pkg.peerDependencies[peer!], peer).toBeDefined();
    }
  });
});
