/**
 * The `lease-core` command. `lease-core doctor` tells, at a glance, whether this host's clock is
 * fit for leases: which clock the core reads, raw or not, suspend-aware or not, its resolution,
 * what a fast-path check costs next to a bare read of the same clock (one run, side by side),
 * how fast the runtime's ordinary monotonic clock is slewed against the lease clock, and a
 * self-test of the contract. `lease-core doctor --json` prints the same facts as one JSON object
 * for machines, with a verdict: whether the clock is fit for leases of `--lease-ms` under a
 * safety margin covering `--drift-ppm` (docs/metrics.md "Fit for leases"); the exit status is
 * that verdict (0 fit, 1 not, 2 bad arguments).
 *
 * Portable: the launcher (bin/lease-core.js) passes the runtime's own host module (node, deno
 * or bun bundle) and its ordinary monotonic clock; nothing here touches a runtime API.
 * @module
 */
import type { LeaseCore } from "../core/core.js";
import type { ClockSource } from "../core/clock.js";
import { freezeBudgetNsOf } from "../metrics/index.js";
import { runVectors, type VectorCase } from "./vectors.js";
import vectors from "../../vectors/core.json" with { type: "json" };

/** What the launcher knows about the runtime it runs in. */
export interface CliRuntime {
  /** e.g. `node 20.20.2`. */
  name: string;
  /** The runtime host's `createLeaseCore`. */
  createLeaseCore(options?: { clock?: ClockSource; clockPolicy?: string }): Promise<LeaseCore>;
  /** The runtime's ordinary monotonic clock in ns (CLOCK_MONOTONIC: NTP-slewed), and its name. */
  monotonicNs(): bigint;
  monotonicName: string;
}

const USAGE = `usage: lease-core doctor [--json] [--lease-ms N] [--drift-ppm N] [--slew-ms N] [--policy raw+sleep|boottime|raw]

  doctor   report this host's lease clock, its cost, its slew, and self-test the contract
           --json          one JSON object on stdout (docs/metrics.md), exit 0 iff fit
           --lease-ms N    the lease duration to judge fitness for (default 700)
           --drift-ppm N   the clock rate bound the lease's safety margin covers (default 50)
           With --json, --lease-ms or --drift-ppm the exit status is 0 iff the clock is fit
           for such leases (docs/metrics.md "Fit for leases"), 1 if not.`;

interface DoctorOptions {
  slewMs: number;
  policy: "raw+sleep" | "boottime" | "raw";
  json: boolean;
  leaseMs: number;
  driftPpm: number;
  /** Whether the exit status judges fitness (--json, --lease-ms or --drift-ppm given). */
  judge: boolean;
}

/** The largest drift bound the core accepts (assembly/config.ts DRIFT_PPM_LIMIT). */
const DRIFT_PPM_LIMIT = 1_000_000;

function parseArgs(args: string[]): DoctorOptions | string {
  const options: DoctorOptions = { slewMs: 2000, policy: "raw+sleep", json: false, leaseMs: 700, driftPpm: 50, judge: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = args[i + 1];
    const integer = value !== undefined && /^\d+$/.test(value);
    if (arg === "--slew-ms" && integer) {
      options.slewMs = Number(value);
      i++;
    } else if (arg === "--policy" && (value === "raw+sleep" || value === "boottime" || value === "raw")) {
      options.policy = value;
      i++;
    } else if (arg === "--json") {
      options.json = options.judge = true;
    } else if (arg === "--lease-ms" && integer && Number.isSafeInteger(Number(value))) {
      options.leaseMs = Number(value);
      options.judge = true;
      i++;
    } else if (arg === "--drift-ppm" && integer && Number(value) <= DRIFT_PPM_LIMIT) {
      options.driftPpm = Number(value);
      options.judge = true;
      i++;
    } else {
      return `unknown or incomplete argument: ${arg}`;
    }
  }
  return options;
}

/** ns per call of `fn`: the median of `rounds` timed runs of `iterations` calls each. */
function nsPerCall(fn: () => unknown, iterations = 1_000_000, rounds = 5): number {
  let sink = 0;
  for (let i = 0; i < iterations / 10; i++) if (fn()) sink++; // warm up the JIT
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) if (fn()) sink++;
    samples.push(((performance.now() - start) * 1e6) / iterations);
  }
  if (sink < 0) console.log(sink); // keep `sink` alive
  samples.sort((a, b) => a - b);
  return samples[Math.floor(rounds / 2)]!;
}

const yesNo = (b: boolean) => (b ? "yes" : "no ");
const fmtNs = (ns: number) => `${ns.toFixed(1).padStart(6)} ns`;
const pad = (s: string) => s.padEnd(52);

/** What `doctor --json` prints (docs/metrics.md): everything the readable report says. Bigints are strings. */
export interface DoctorReport {
  schema: "lease-core-doctor/1";
  runtime: string;
  clock: { source: string; raw: boolean; suspendAware: boolean; resolutionNs: string; mayFreeze: boolean; freezeBudgetNs: string | null };
  /** ns per call, medians of 5 × 1M calls in this run. */
  costNs: { bareRead: number; ordinaryMonotonic: number; check: number; checkAt: number };
  ordinaryMonotonicClock: string;
  /** The ordinary monotonic clock's slew against the lease clock (`ppm` null: not measured, `reason` says why). */
  slew: { overMs: number; ppm: number | null; reason: string | null };
  selfTest: { passed: number; failed: number; steps: number; failures: { name: string; step: number; message: string }[] };
  clockEvents: { zeroReadings: string; regressions: string; suspends: string; suspendedNs: string };
  verdict: Fitness;
}

/** One condition of "fit for leases" (docs/metrics.md). */
export interface FitnessCheck {
  name: "contract" | "lease" | "readings" | "monotonic" | "suspend" | "rate" | "resolution" | "freeze" | "cost";
  ok: boolean;
  detail: string;
}

/** Whether the clock is fit for leases of `leaseMs` with a safety margin covering `driftPpm`. */
export interface Fitness {
  fit: boolean;
  leaseMs: number;
  driftPpm: number;
  checks: FitnessCheck[];
  /** Things worth knowing that do not decide fitness (e.g. a large NTP correction). */
  warnings: string[];
}

/**
 * The rate a slewed (non-raw) clock can be off by: adjtimex(2) bounds the kernel PLL's
 * frequency correction at ±500 ppm (MAXFREQ, include/linux/timex.h) and ntpd/timesyncd slew at
 * most that; chrony's default maxslewrate (83333 ppm, through ADJ_TICK) is beyond any bound.
 */
export const SLEWED_CLOCK_PPM = 500;
/** A clock step may cost one step of lease at each end: keep it within 1% of the lease. */
export const RESOLUTION_PER_LEASE = 100;
/** A check costing more than 10 µs means a broken clock path (a syscall per read, an emulated clock source). */
export const CHECK_COST_MAX_NS = 10_000;

/** The fitness verdict on measured facts; pure, so each closed path is testable (docs/metrics.md "Fit for leases"). */
export function judgeFitness(
  facts: Pick<DoctorReport, "clock" | "costNs" | "slew" | "selfTest" | "clockEvents"> & { readingsOk: boolean },
  leaseMs: number,
  driftPpm: number,
): Fitness {
  const { clock } = facts;
  const leaseNs = BigInt(leaseMs) * 1_000_000n;
  const resolutionNs = BigInt(clock.resolutionNs);
  const checks: FitnessCheck[] = [];
  const check = (name: FitnessCheck["name"], ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const { selfTest } = facts;
  check("contract", selfTest.failed === 0, `${selfTest.passed}/${selfTest.passed + selfTest.failed} contract cases pass`);
  check("lease", leaseNs > 0n, leaseNs > 0n ? `${leaseMs} ms` : "a lease of 0 ms serves no read");
  check("readings", facts.readingsOk && facts.clockEvents.zeroReadings === "0",
    facts.readingsOk && facts.clockEvents.zeroReadings === "0" ? "the clock gave a reading every time" : `the clock gave no reading ${facts.clockEvents.zeroReadings} time(s)`);
  check("monotonic", facts.clockEvents.regressions === "0",
    facts.clockEvents.regressions === "0" ? "no reading went backwards" : `${facts.clockEvents.regressions} reading(s) went backwards during this run`);
  check("suspend", clock.suspendAware,
    clock.suspendAware ? "a suspend is counted or detected" : "a leader that sleeps through its lease will not notice, and serves stale reads on waking");
  const rateOk = clock.raw || driftPpm >= SLEWED_CLOCK_PPM;
  check("rate", rateOk,
    clock.raw ? "raw: NTP cannot slew it"
    : rateOk ? `slewed by NTP, at most ${SLEWED_CLOCK_PPM} ppm <= --drift-ppm ${driftPpm} (not with chrony's default maxslewrate)`
    : `slewed by NTP at up to ${SLEWED_CLOCK_PPM} ppm, more than --drift-ppm ${driftPpm}`);
  const resolutionOk = leaseNs > 0n && resolutionNs * BigInt(RESOLUTION_PER_LEASE) <= leaseNs;
  check("resolution", resolutionOk, `${resolutionNs} ns ${resolutionOk ? "<=" : ">"} 1% of the lease (${leaseNs / BigInt(RESOLUTION_PER_LEASE)} ns)`);
  if (clock.mayFreeze) {
    const budgetNs = clock.freezeBudgetNs === null ? undefined : BigInt(clock.freezeBudgetNs);
    const ok = budgetNs !== undefined && budgetNs > 0n && budgetNs < leaseNs;
    check("freeze", ok,
      budgetNs === undefined ? "the clock may freeze and no frozen-clock budget is known"
      : budgetNs === 0n ? "the clock may freeze and the frozen-clock budget is 0"
      : `frozen-clock budget ${budgetNs} ns ${ok ? "<" : ">="} the lease`);
  } else {
    check("freeze", true, "the clock does not freeze");
  }
  const costOk = facts.costNs.check <= CHECK_COST_MAX_NS;
  check("cost", costOk, `lease.valid() ${facts.costNs.check.toFixed(1)} ns ${costOk ? "<=" : ">"} ${CHECK_COST_MAX_NS} ns`);
  const warnings: string[] = [];
  const ppm = facts.slew.ppm;
  if (clock.raw && ppm !== null && Math.abs(ppm) > driftPpm) {
    warnings.push(
      `NTP corrects the ordinary clock by ${ppm.toFixed(2)} ppm, more than --drift-ppm ${driftPpm}: if that is frequency, not a passing phase slew, this oscillator is off by about as much`,
    );
  }
  return { fit: checks.every((c) => c.ok), leaseMs, driftPpm, checks, warnings };
}

async function doctor(runtime: CliRuntime, options: DoctorOptions): Promise<number> {
  const core = await runtime.createLeaseCore({ clockPolicy: options.policy });
  const clock = core.clock;
  const out: string[] = [];
  const line = (s = "") => out.push(s);

  line(`lease-core doctor (${runtime.name})`);
  line("");
  line("Clock");
  line(`  source          ${clock.source}`);
  line(`  raw             ${yesNo(clock.raw)}  ${clock.raw ? "immune to NTP slew" : "NTP may slew it (±500 ppm, more if misbehaving)"}`);
  line(`  suspend-aware   ${yesNo(clock.suspendAware)}  ${clock.suspendAware ? "a suspend invalidates every lease" : "a leader that sleeps through its lease will not notice"}`);
  line(`  resolution      ${clock.resolutionNs} ns`);
  line(`  may freeze      ${yesNo(clock.mayFreeze)}`);

  // Cost: the host's own clock read into the cell (the floor), and a check on top, in one run.
  line("");
  line("Cost of one check (median of 5 × 1M calls, this run)");
  const lease = core.createLease();
  lease.extend(core.now() + 3_600_000_000_000n, lease.generation());
  const fill = core.fill;
  const bareNs = nsPerCall(() => fill());
  const fallbackNs = nsPerCall(() => runtime.monotonicNs());
  const checkNs = nsPerCall(() => lease.valid());
  const now = core.now();
  const checkAtNs = nsPerCall(() => lease.valid(now));
  line(`  ${pad(`bare read of ${clock.source}`)}${fmtNs(bareNs)}`);
  line(`  ${pad(`${runtime.monotonicName} (ordinary monotonic clock)`)}${fmtNs(fallbackNs)}`);
  line(`  ${pad("lease.valid() (clock read + check)")}${fmtNs(checkNs)}   ${(checkNs / bareNs).toFixed(2)}× the bare read`);
  line(`  ${pad("lease.valid(nowNs) (check alone)")}${fmtNs(checkAtNs)}`);

  // Slew: how far the ordinary monotonic clock strays from the lease clock right now.
  line("");
  // A pair of readings is only as good as the gap between them: keep the tightest of 100.
  const pair = () => {
    let best: readonly [bigint, bigint] = [0n, 0n];
    let bestGapNs = -1n;
    for (let i = 0; i < 100; i++) {
      const before = runtime.monotonicNs();
      const leaseNs = core.now();
      const after = runtime.monotonicNs();
      if (bestGapNs < 0n || after - before < bestGapNs) {
        bestGapNs = after - before;
        best = [(before + after) / 2n, leaseNs];
      }
    }
    return best;
  };
  const [mono0, lease0] = pair();
  await new Promise((resolve) => setTimeout(resolve, options.slewMs));
  const [mono1, lease1] = pair();
  let slewPpm: number | null = null;
  let slewReason: string | null = null;
  if (clock.raw && lease0 !== 0n && lease1 !== 0n) {
    const ppm = (Number(mono1 - mono0 - (lease1 - lease0)) / Number(lease1 - lease0)) * 1e6;
    slewPpm = ppm;
    line(`Slew of ${runtime.monotonicName} against ${clock.source} over ${options.slewMs} ms: ${ppm >= 0 ? "+" : ""}${ppm.toFixed(2)} ppm`);
    line(`  (NTP's current correction of the ordinary clock; the lease clock does not follow it)`);
  } else {
    slewReason = `the lease clock ${clock.raw ? "gave no reading" : "is not raw: it is the slewed clock itself"}`;
    line(`Slew: not measured (${slewReason})`);
  }

  // Self-test: the contract's conformance vectors against this very module.
  const report = await runVectors((c) => runtime.createLeaseCore({ clock: c }), vectors as VectorCase[]);
  line("");
  line(`Self-test: ${report.passed}/${report.passed + report.failed} contract cases pass (${report.steps} steps)`);
  for (const f of report.failures) line(`  FAIL ${f.name} (step ${f.step}): ${f.message}`);
  const events = core.clockEvents();
  line(`Clock events so far: ${events.zeroReadings} zero readings, ${events.regressions} regressions, ${events.suspends} suspends`);
  line("");
  const fit = clock.raw && clock.suspendAware && report.failed === 0;
  line(
    fit
      ? "Verdict: this host's lease clock is raw and suspend-aware; the core passes its contract."
      : `Verdict: ${report.failed > 0 ? "the core FAILS its contract" : "usable, but the clock is weaker than the default (see above)"}.`,
  );

  const budgetNs = freezeBudgetNsOf(clock);
  const facts = {
    clock: {
      source: clock.source,
      raw: clock.raw,
      suspendAware: clock.suspendAware,
      resolutionNs: String(clock.resolutionNs),
      mayFreeze: clock.mayFreeze,
      freezeBudgetNs: budgetNs === undefined ? null : String(budgetNs),
    },
    costNs: { bareRead: bareNs, ordinaryMonotonic: fallbackNs, check: checkNs, checkAt: checkAtNs },
    slew: { overMs: options.slewMs, ppm: slewPpm, reason: slewReason },
    selfTest: { passed: report.passed, failed: report.failed, steps: report.steps, failures: report.failures.map((f) => ({ name: f.name, step: f.step, message: f.message })) },
    clockEvents: {
      zeroReadings: String(events.zeroReadings),
      regressions: String(events.regressions),
      suspends: String(events.suspends),
      suspendedNs: String(events.suspendedNs),
    },
  };
  const verdict = judgeFitness({ ...facts, readingsOk: lease0 !== 0n && lease1 !== 0n }, options.leaseMs, options.driftPpm);

  if (options.json) {
    const json: DoctorReport = { schema: "lease-core-doctor/1", runtime: runtime.name, ordinaryMonotonicClock: runtime.monotonicName, ...facts, verdict };
    console.log(JSON.stringify(json, null, 2));
    return verdict.fit ? 0 : 1;
  }
  if (options.judge) {
    line(`Fit for ${options.leaseMs} ms leases at ±${options.driftPpm} ppm: ${verdict.fit ? "yes" : "NO"}`);
    for (const c of verdict.checks) if (!c.ok) line(`  ${c.name}: ${c.detail}`);
    for (const w of verdict.warnings) line(`  warning: ${w}`);
  }
  console.log(out.join("\n"));
  if (options.judge) return verdict.fit ? 0 : 1;
  return report.failed === 0 ? 0 : 1;
}

/** Runs the CLI in `runtime`; resolves to the exit status. */
export async function main(args: string[], runtime: CliRuntime): Promise<number> {
  const [command, ...rest] = args;
  if (command !== "doctor") {
    console.error(USAGE);
    return command === undefined || command === "--help" || command === "-h" ? 0 : 2;
  }
  const options = parseArgs(rest);
  if (typeof options === "string") {
    console.error(`${options}\n${USAGE}`);
    return 2;
  }
  return doctor(runtime, options);
}
