// The table and the targets of issue #6, computed from one run's JSON (scripts/bench.mjs writes
// it; scripts/bench-check.mjs re-reads it). Plain JS so both scripts import it without a build.

/** The median of one case, ns per call (or per unit), or undefined. */
export function ns(result, runtime, id) {
  for (const r of result.reports) if (r.runtime === runtime) for (const m of r.results) if (m.id === id) return m.ns;
  return undefined;
}

function extras(result, runtime, part) {
  return result.reports.filter((r) => r.runtime === runtime && r.extra?.part === part).map((r) => r.extra);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? undefined : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export function coldMs(result, runtime, key) {
  return median(extras(result, runtime, "cold").map((e) => e[key]));
}

/** A ratio of two medians of the same runtime and run. */
export function ratio(result, runtime, num, den) {
  const a = ns(result, runtime, num);
  const b = ns(result, runtime, den);
  return a === undefined || b === undefined ? undefined : a / b;
}

/** The targets of issue #6, each with its measured value. */
export function evaluateTargets(result) {
  const alloc = extras(result, "node", "alloc")[0]?.alloc;
  const shared = extras(result, "node", "shared")[0];
  const t = [
    { target: "Node: valid() / bare read of the default clock (N-API raw+sleep)", value: ratio(result, "node", "valid.default", "clock.default"), max: 1.25, unit: "×" },
    { target: "Node: valid() / TS peer on the same clock", value: ratio(result, "node", "valid.default", "peer.default"), max: 1.15, unit: "×" },
    { target: "Deno: valid() / bare raw+sleep read (3 FFI calls)", value: ratio(result, "deno", "valid.default", "clock.default"), max: 1.3, unit: "×" },
    { target: "Deno: valid() on raw / bare raw read (1 FFI call)", value: ratio(result, "deno", "valid.raw", "clock.raw"), max: 1.3, unit: "×" },
    { target: "Bun: valid() / bare raw+sleep read (3 FFI calls)", value: ratio(result, "bun", "valid.default", "clock.default"), max: 1.3, unit: "×" },
    { target: "Bun: valid() on raw / bare raw read (1 FFI call)", value: ratio(result, "bun", "valid.raw", "clock.raw"), max: 1.3, unit: "×" },
    { target: "Node: lease-read hit, sync (localRead) / valid() in the same run", value: ratio(result, "node", "localRead", "valid.default"), max: 1.5, unit: "×" },
    { target: "Node: lease-read hit, awaited (leaseRead) / valid() in the same run", value: ratio(result, "node", "leaseRead", "valid.default"), max: 1.5, unit: "×" },
    { target: "Node: batch lease-read hit per group, 1,000 groups (localReadGroups, GroupEngine-shaped engines; issue 17)", value: ns(result, "node", "sharded.batch.1000"), max: 50, unit: "ns" },
    { target: "Node: batch hit per group, 1,000 groups / valid() in the same process", value: ratio(result, "node", "sharded.batch.1000", "sharded.valid"), max: 1, unit: "×" },
    { target: "Batch, 100k leases, clock read included (Node, countValidAll)", value: ns(result, "node", "batch.countValidAll.100k"), max: 0.25, unit: "ns/lease" },
    { target: "Batch, 100k leases, clock read included (Node, leaseValidRange)", value: ns(result, "node", "batch.validRange.100k"), max: 0.25, unit: "ns/lease" },
    { target: "recordAck + republish, 5 voters (Node)", value: ns(result, "node", "recordAck.5"), max: 15, unit: "ns" },
    { target: "Contended extend, 2 workers, same lease (Node)", value: ns(result, "node", "shared.extend.contended"), max: 60, unit: "ns" },
    { target: "Contended extend: lost updates", value: shared?.lostUpdates, max: 0, unit: "" },
    { target: "Bytes allocated per valid() (Node, 10M calls)", value: alloc?.["valid.default"]?.bytesPerCall, max: 1, unit: "B/call", note: "< 1 B/call over 10M calls = 0 per call (one BigInt is >= 16 B)" },
    { target: "lease-core.wasm gzipped (the whole reader inside since issue #14)", value: result.sizes?.["build/lease-core.wasm"]?.gzipBytes, max: 6144, unit: "B" },
    { target: "Cold createLeaseCore(), first in a process (Node; compiles the module)", value: coldMs(result, "node", "firstCreateMs"), max: 1, unit: "ms" },
    { target: "createLeaseCore() with the module compiled (Node)", value: coldMs(result, "node", "secondCreateMs"), max: 1, unit: "ms" },
  ];
  return t.map((x) => ({ ...x, met: x.value === undefined ? null : x.value <= x.max }));
}

const fmt = (x, d = 2) => (x === undefined || x === null ? "—" : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(d));

/** The floor a case is compared with: its own clock's bare read, else the default clock's. */
function floorOf(id) {
  if (id === "clock.default") return "clock.performance"; // edge runtimes: the host's fill vs the bare clock
  const m = /^(?:valid|peer)\.([a-z]+)/.exec(id);
  if (m) return `clock.${m[1]}`;
  if (id.startsWith("sharded.")) return id.startsWith("sharded.valid") ? undefined : id.endsWith(".object") ? "sharded.valid.object" : "sharded.valid";
  if (id.startsWith("clock.") || id === "noop" || id === "validAt" || id.startsWith("batch.") || id.startsWith("recordAck") || id === "extend" || id.startsWith("shared.extend")) return undefined;
  return "clock.default";
}

export function formatTable(result) {
  const lines = [];
  const m = result.machine;
  lines.push(`lease-core bench, ${result.date}`);
  lines.push(`${m.cpu}, ${m.cpus} CPUs, kernel ${m.kernel}, clocksource ${m.clocksource}; load average ${m.loadAvgStart.map((x) => x.toFixed(2)).join(" ")} at start, ${m.loadAvgEnd.map((x) => x.toFixed(2)).join(" ")} at end`);
  lines.push(`${Object.entries(result.versions).map(([k, v]) => `${k} ${v}`).join(", ")}; ${result.params.rounds} rounds, median of per-round p50s; ${result.durationS.toFixed(0)} s`);
  lines.push("");
  lines.push("| runtime | case | median | min round | ratio to floor | what |");
  lines.push("|---|---|---:|---:|---:|---|");
  if (result.native) {
    for (const [k, v] of Object.entries(result.native)) {
      const floor = k.startsWith("raw_sleep") ? result.native.raw_sleep : k.startsWith("raw") ? result.native.raw : undefined;
      lines.push(`| C (cc -O2) | ${k} | ${fmt(v)} ns${k.startsWith("batch") ? "/lease" : ""} | | ${floor && k.endsWith("check") ? `${(v / floor).toFixed(2)}×` : ""} | bench/native/clock_check.c |`);
    }
  }
  for (const runtime of ["node", "deno", "bun", "chromium", "workerd"]) {
    const seen = new Set();
    for (const r of result.reports.filter((x) => x.runtime === runtime)) {
      for (const c of r.results) {
        if (seen.has(c.id)) continue;
        seen.add(c.id);
        const floorId = floorOf(c.id);
        const floor = floorId && ns(result, runtime, floorId);
        const unit = c.per ? (c.id.startsWith("sharded.") ? " ns/group" : " ns/lease") : " ns";
        // Per-unit figures get a ratio only against a per-call floor of their own part (sharded.*: ns per group / valid()).
        const ratioText = floor && (!c.per || c.id.startsWith("sharded.")) ? `${(c.ns / floor).toFixed(2)}× ${floorId}` : "";
        lines.push(`| ${runtime} ${r.version} | ${c.id} | ${fmt(c.ns)}${unit} | ${fmt(c.minNs)} | ${ratioText} | ${c.label} |`);
      }
    }
  }
  const allocs = extras(result, "node", "alloc")[0];
  if (allocs) {
    lines.push("");
    lines.push(`Bytes allocated per call (Node, ${allocs.calls} calls after warm-up; GCs during the run make it a lower bound):`);
    for (const [id, a] of Object.entries(allocs.alloc)) lines.push(`  ${id.padEnd(16)} ${a.bytesPerCall.toFixed(3)} B/call${a.exact ? "" : ` (${a.gcs} GC${a.gcs === 1 ? "" : "s"} during the run)`}`);
  }
  lines.push("");
  lines.push("Cold start (median of fresh processes), ms: import / first createLeaseCore() / second");
  for (const rt of ["node", "deno", "bun"]) {
    if (coldMs(result, rt, "firstCreateMs") === undefined) continue;
    lines.push(`  ${rt.padEnd(5)} ${fmt(coldMs(result, rt, "importMs"))} / ${fmt(coldMs(result, rt, "firstCreateMs"))} / ${fmt(coldMs(result, rt, "secondCreateMs"))}`);
  }
  lines.push("");
  lines.push("Module sizes (bytes / gzip -9):");
  for (const [f, s] of Object.entries(result.sizes ?? {})) lines.push(`  ${f.padEnd(30)} ${String(s.bytes).padStart(7)} / ${String(s.gzipBytes).padStart(6)}`);
  lines.push("");
  lines.push("| target | measured | limit | met |");
  lines.push("|---|---:|---:|---|");
  for (const t of result.targets) lines.push(`| ${t.target} | ${fmt(t.value)} ${t.unit} | ${t.max} ${t.unit} | ${t.met === null ? "not measured" : t.met ? "yes" : "**no**"} |`);
  return lines.join("\n");
}
