// One source for every constant shared by the wasm core and the TypeScript hosts (issue #14
// item 5): host/generated/constants.ts is generated from the module's exported globals
// (scripts/gen-constants.mjs), and the published types carry no @internal member.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
// @ts-expect-error: a build script, plain JS
import { TARGET, generateConstants } from "../scripts/gen-constants.mjs";

const root = new URL("..", import.meta.url).pathname;

describe("constants shared by wasm and hosts", () => {
  test("host/generated/constants.ts is what the built wasm exports (no drift)", async () => {
    const fresh: string = await generateConstants();
    expect(readFileSync(TARGET, "utf8")).toBe(fresh);
    // Not vacuous: the file names the codes the hosts switch on.
    for (const name of ["REASON_SUSPECT", "CONFIG_DRIFT_TOO_LARGE", "ACK_TERM_MISMATCH", "MAY_EXTEND", "ANSWER_TRANSFERRING"]) {
      expect(fresh).toMatch(new RegExp(`export const ${name} = `));
    }
  });

  test("no host module spells a config code or an outcome flag as a bare literal", () => {
    const host = join(root, "host");
    const offenders: string[] = [];
    for (const file of readdirSync(host)) {
      if (!file.endsWith(".ts")) continue;
      const text = readFileSync(join(host, file), "utf8");
      if (/case [0-7]: (return|throw)/.test(text)) offenders.push(`${file}: bare config code`);
      if (/0x[124]00\b/.test(text)) offenders.push(`${file}: bare outcome flag`);
    }
    expect(offenders).toEqual([]);
  });

  test("the published .d.ts files carry no @internal member", () => {
    const found: string[] = [];
    const scan = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) scan(p);
        else if (e.name.endsWith(".d.ts") && readFileSync(p, "utf8").includes("@internal")) found.push(p);
      }
    };
    scan(join(root, "build", "types"));
    expect(found).toEqual([]);
  });
});
