// Shared by the etcd tests: checks the demo bundles are built, and small helpers.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Etcd3 } from "etcd3";
import type { EtcdLeaseNode } from "lease-core/etcd";
import type { FaultProxy } from "../../demo/proxy.js";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** build/etcd.js and build/demo/*.js come from scripts/build.mjs, which `npm test` runs first. */
export function buildDemo(): void {
  for (const file of ["etcd.js", "demo/start.js", "demo/kv-service.js"]) {
    if (!existsSync(join(root, "build", file))) throw new Error(`build/${file} is missing: run node scripts/build.mjs first`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `cond` holds, polling every `pollMs`; throws naming `what` after `timeoutMs`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, pollMs = 10): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}

/**
 * Which proxy carries `n`'s data watch (etcd3 picks a random endpoint per call and per
 * stream): each proxy in turn delays etcd's answers while a key is written under the prefix;
 * the one whose delay holds the write back from `n`'s local state is it.
 */
export async function dataWatchProxy(n: EtcdLeaseNode, a: Etcd3, prefix: string, list: FaultProxy[]): Promise<number> {
  for (let i = 0; i < list.length; i++) {
    list[i]!.set("down", { kind: "delay", delayMs: 1500 });
    const key = `probe-${i}-${Math.random().toString(36).slice(2)}`;
    await a.put(`${prefix}/d/${key}`).value("1");
    await sleep(600);
    const held = n.peek(key) === null;
    list[i]!.heal();
    await until(`the probe ${key}`, () => n.peek(key) !== null, 5000);
    if (held) return i;
  }
  throw new Error("no proxy carries the data watch");
}
