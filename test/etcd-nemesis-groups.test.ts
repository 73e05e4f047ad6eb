// The nemesis with multi-group nodes (demo/nemesis.ts --groups G; docs/etcd.md "Many groups on
// one lease"): a real 3-member etcd, 3 (and a joining 4th) KV processes each leading some of G
// shard groups on one etcd lease, clients over 24 keys of many groups following redirects.
// 1. A short seeded run with every fault kind of the sharded mode (node join, leave, a group key
//    deleted behind its holder's back among them) is linearizable per key, loses no acknowledged
//    write and makes progress after healing.
// 2. The negative control: the test build with skip-group-confirmation (the node round checks
//    only the raft term, not the node's group keys) lets two nodes serve one group once a group
//    key is deleted behind its holder's back while its watch lags; runs aimed at that
//    (`--faults group-key-delete`) must report a violation within a few runs.
import { expect, test } from "vitest";
import { planSchedule, runNemesis, ALL_FAULT_KINDS } from "../demo/nemesis.js";
import { buildDemo } from "./etcd/support.js";

buildDemo();

const GROUPS = 64;
const DURATION_S = 15;
/** Its schedule (planSchedule: a pure function of the seed) draws node-join second, node-leave
 *  and group-key-delete later; `NEMESIS_GROUPS_SEED` replays another. */
const SEED = Number(process.env.NEMESIS_GROUPS_SEED ?? "8");

function logger(lines: string[]) {
  return (line: string) => {
    lines.push(line);
    process.stdout.write(`${line}\n`);
  };
}

test(`a sharded run (G = ${GROUPS}, ${DURATION_S} s, seed ${SEED}, every fault kind incl. node-join/leave and group-key-delete) stays linearizable per key`, async () => {
  const kinds = planSchedule(SEED, DURATION_S, ALL_FAULT_KINDS).map((f) => f.kind);
  expect(kinds).toEqual(expect.arrayContaining(["node-join", "node-leave", "group-key-delete"]));
  const lines: string[] = [];
  const result = await runNemesis({ runs: 1, seed: SEED, durationS: DURATION_S, groups: GROUPS, log: logger(lines), verbose: true });
  const rep = result.reports[0]!;
  expect(rep.verdict, lines.join("\n")).toEqual({ ok: true });
  // It did run: ops over many keys and groups, and the sharded kinds were injected, not skipped.
  expect(rep.ops.total, lines.join("\n")).toBeGreaterThan(200);
  expect(new Set(rep.history.map((o) => o.key)).size).toBe(24);
  expect(rep.faults["node-join"] ?? 0, lines.join("\n")).toBeGreaterThan(0);
  expect((rep.faults["node-leave"] ?? 0) + (rep.faults["group-key-delete"] ?? 0), lines.join("\n")).toBeGreaterThan(0);
  // Reads went to many processes (redirects followed), not one leader.
  expect(new Set(rep.history.filter((o) => o.kind === "read" && o.served === "local").map((o) => o.by)).size).toBeGreaterThanOrEqual(2);
}, 240_000);

/** At most this many aimed runs for the control to fire: with the engine of 2026-12-01 it fired
 *  in the first run (15 s) for each of 5 seeds (401-405, 1 or 2 group-key-deletes a run, docs/
 *  safety.md §8); 3 leaves room for a loaded machine. */
const CONTROL_MAX_RUNS = 3;

test(`negative control: --unsafe skip-group-confirmation --groups ${GROUPS} --faults group-key-delete reports a violation within ${CONTROL_MAX_RUNS} runs`, async () => {
  const seed = Math.floor(Math.random() * 2 ** 32);
  const lines: string[] = [];
  const log = logger(lines);
  log(`nemesis groups control: seed ${seed}`);
  const unsafe = await runNemesis({ runs: CONTROL_MAX_RUNS, seed, durationS: DURATION_S, groups: GROUPS, unsafe: "skip-group-confirmation", faults: ["group-key-delete"], log, verbose: true });
  const fired = unsafe.reports.findIndex((r) => r.verdict.ok === false);
  expect(fired, `no violation in ${CONTROL_MAX_RUNS} aimed runs:\n${lines.join("\n")}`).toBeGreaterThanOrEqual(0);
  // A stale answer, not a run that could not recover.
  const verdict = unsafe.reports[fired]!.verdict;
  expect(verdict.ok === false ? verdict.why : "", lines.join("\n")).toBe("not linearizable");
  // Its signature: two processes served one group. A process answered a read LOCALLY while
  // another process had acknowledged a write of the same key (a lease read on the old holder of
  // a group the other one took over), not a lagging answer of one process about its own write.
  const minimal = verdict.ok === false ? (verdict.minimal ?? []) : [];
  const localReaders = new Set(minimal.filter((o) => o.from.kind === "read" && o.from.served === "local").map((o) => o.from.by));
  const ackedWriters = new Set(minimal.filter((o) => o.from.kind !== "read" && o.from.returnAt !== Infinity && o.from.ok !== false).map((o) => o.from.by));
  expect([...localReaders].some((r) => [...ackedWriters].some((w) => w !== r)), lines.join("\n")).toBe(true);
  // The published build on the same runs (same seeds, same schedules): no violation. A scenario
  // that "fires" there too would be a broken scenario (or another bug), not this control.
  const safe = await runNemesis({ runs: fired + 1, seed, durationS: DURATION_S, groups: GROUPS, faults: ["group-key-delete"], log, verbose: true });
  const failed = safe.reports.find((r) => r.verdict.ok === false);
  expect(failed === undefined ? "no violation" : lines.join("\n")).toBe("no violation");
  expect(safe.reports).toHaveLength(fired + 1);
}, 420_000);
