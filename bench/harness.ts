/**
 * The measuring loop every runtime's bench shares. Each case is measured with mitata's `measure`
 * (batched samples, JIT warm-up, its p50), in ROUNDS: every round measures every case once, in
 * order, and a case's figure is the median of its rounds. Interleaving matters here: the machine
 * is shared, so load moves between rounds, and a floor measured in the same round as the check
 * it divides sees the same load.
 *
 * Each case's function is its own closure literal that passes its result to mitata's
 * `do_not_optimize`: a shared wrapper would make the call inside it megamorphic (one feedback
 * slot for every case) and slow some cases more than others. For the same reason each clock
 * runs in its own process (scripts/bench.mjs): `Lease.valid`'s fill call sees one target, as in
 * an application with one core.
 *
 * Output: one line `BENCH_JSON {...}` on stdout, read by scripts/bench.mjs.
 * @module
 */
import { measure } from "mitata";

export interface Case {
  /** Stable id (bench/budgets.json refers to it). */
  id: string;
  label: string;
  fn: () => unknown;
  /** Runs before each measurement of this case (e.g. re-binding a clock cell). */
  before?: () => void;
  /** The figure is divided by this (e.g. leases per batch call): ns per unit. */
  per?: number;
}

export interface Measured {
  id: string;
  label: string;
  /** Median over rounds of mitata's p50, in ns per call (or per unit when `per` is set). */
  ns: number;
  /** The smallest round's p50, same unit. */
  minNs: number;
  rounds: number[];
  per?: number;
}

export interface RuntimeReport {
  runtime: string;
  version: string;
  results: Measured[];
  extra?: Record<string, unknown>;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function runCases(cases: Case[], rounds: number, minCpuMs: number): Promise<Measured[]> {
  const samples = new Map<string, number[]>(cases.map((c) => [c.id, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      c.before?.();
      const stats = await measure(c.fn, { min_cpu_time: minCpuMs * 1e6, min_samples: 12 } as never);
      samples.get(c.id)!.push(stats.p50 / (c.per ?? 1));
    }
  }
  return cases.map((c) => {
    const rs = samples.get(c.id)!;
    const out: Measured = { id: c.id, label: c.label, ns: median(rs), minNs: Math.min(...rs), rounds: rs };
    if (c.per !== undefined) out.per = c.per;
    return out;
  });
}

export function emit(report: RuntimeReport): void {
  console.log(`BENCH_JSON ${JSON.stringify(report)}`);
}

/** Bench parameters from the environment (scripts/bench.mjs sets them; `--quick` lowers them). */
export function benchParams(env: Record<string, string | undefined>): { rounds: number; minCpuMs: number } {
  return { rounds: Number(env["BENCH_ROUNDS"] ?? 5), minCpuMs: Number(env["BENCH_MIN_CPU_MS"] ?? 40) };
}
