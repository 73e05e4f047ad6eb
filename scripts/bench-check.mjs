// `npm run bench:check`: fails (exit 1) when a ratio or figure of the last bench run
// (bench/results/latest.json, or the file given) is past its budget in bench/budgets.json.
// Budgets are ratios within one run wherever possible (check / floor of the same runtime),
// so they hold across machines; the absolute ones (ns, bytes, ms) are noted as such.
// It only reads the JSON: run `npm run bench` first. Never part of the timed unit tests.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { coldMs, ns, ratio } from "../bench/report.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const file = resolve(root, process.argv[2] ?? "bench/results/latest.json");
const result = JSON.parse(readFileSync(file, "utf8"));
const { budgets } = JSON.parse(readFileSync(join(root, "bench/budgets.json"), "utf8"));

function measure(b) {
  switch (b.kind) {
    case "ratio": return ratio(result, b.runtime, b.num, b.den);
    case "ns": return ns(result, b.runtime, b.id);
    case "size": return result.sizes?.[b.file]?.gzipBytes;
    case "alloc": return result.reports.find((r) => r.extra?.part === "alloc")?.extra.alloc[b.id]?.bytesPerCall;
    case "lost": return result.reports.find((r) => r.extra?.part === "shared")?.extra.lostUpdates;
    case "cold": return coldMs(result, b.runtime, b.key);
    default: throw new Error(`bench/budgets.json: unknown kind ${b.kind}`);
  }
}

let failed = 0;
console.log(`bench:check ${file} (${result.date}, load average ${result.machine.loadAvgStart.map((x) => x.toFixed(2)).join(" ")})`);
for (const b of budgets) {
  const value = measure(b);
  const ok = value !== undefined && value <= b.max;
  if (!ok) failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${b.name}: ${value === undefined ? "not measured" : value.toFixed(3)} (budget ${b.max})`);
}
if (failed) {
  console.error(`bench:check: ${failed} of ${budgets.length} past budget`);
  process.exit(1);
}
console.log(`bench:check: all ${budgets.length} within budget`);
