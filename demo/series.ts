/**
 * The dashboard's per-second series, in bounded memory: each second's client-side latencies
 * (read served locally, read through etcd, write) reduced to p50/p99 and counts, plus each
 * instance's lease remaining sampled once a second; the last `keepS` seconds are kept in a ring.
 * Whole-run percentiles come from a log-bucketed histogram (2% wide buckets, fixed size), not
 * from the operations, which are not kept.
 * @module
 */
import type { RecordedOp, ServiceStatus } from "./harness.js";

/** One second of the run. Latencies in ms (null: no such op that second); lease in ms per
 *  instance (null: the instance did not answer). `t` is the second's end, Unix seconds. */
export interface SecondRow {
  t: number;
  localP50: number | null;
  localP99: number | null;
  etcdP50: number | null;
  etcdP99: number | null;
  writeP50: number | null;
  writeP99: number | null;
  localPerS: number;
  etcdPerS: number;
  writePerS: number;
  /** Writes whose outcome is unknown (timed out / failed after being sent). */
  unknownPerS: number;
  leaseMs: (number | null)[];
}

/** A fixed-size log histogram of ms values: bucket i holds [B·g^i, B·g^(i+1)). */
export class LogHistogram {
  static readonly BASE_MS = 0.01;
  static readonly GROWTH = 1.02;
  readonly #counts = new Float64Array(1024);
  #n = 0;

  add(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    const i = ms <= LogHistogram.BASE_MS ? 0 : Math.min(this.#counts.length - 1, Math.floor(Math.log(ms / LogHistogram.BASE_MS) / Math.log(LogHistogram.GROWTH)));
    this.#counts[i]!++;
    this.#n++;
  }

  get count(): number {
    return this.#n;
  }

  /** The p-quantile (nearest rank), as its bucket's upper bound: within 2% above the truth. */
  quantile(p: number): number {
    if (this.#n === 0) return 0;
    const rank = Math.min(this.#n, Math.floor(p * this.#n) + 1);
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return LogHistogram.BASE_MS * LogHistogram.GROWTH ** (i + 1);
    }
    return Infinity;
  }
}

/** p-th quantile (nearest rank) of a small array, sorted in place. */
function quantile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export class SecondSeries {
  readonly keepS: number;
  readonly rows: SecondRow[] = [];
  readonly total = { local: new LogHistogram(), etcd: new LogHistogram(), write: new LogHistogram(), unknownWrites: 0, ops: 0 };
  #local: number[] = [];
  #etcd: number[] = [];
  #write: number[] = [];
  #unknown = 0;

  constructor(keepS = 900) {
    if (!Number.isInteger(keepS) || keepS < 1) throw new RangeError(`keepS must be a positive integer, got ${keepS}`);
    this.keepS = keepS;
  }

  record(op: RecordedOp): void {
    this.total.ops++;
    if (op.returnAt === Infinity) {
      this.#unknown++;
      this.total.unknownWrites++;
      return;
    }
    const ms = op.returnAt - op.callAt;
    if (op.kind === "write") {
      this.#write.push(ms);
      this.total.write.add(ms);
    } else if (op.served === "etcd") {
      this.#etcd.push(ms);
      this.total.etcd.add(ms);
    } else {
      this.#local.push(ms);
      this.total.local.add(ms);
    }
  }

  /** Closes the second: reduces what was recorded since the last call, samples the leases. */
  sample(statuses: readonly (ServiceStatus | null)[], nowWallMs = Date.now()): SecondRow {
    const sort = (a: number[]) => a.sort((x, y) => x - y);
    const [local, etcd, write] = [sort(this.#local), sort(this.#etcd), sort(this.#write)];
    const row: SecondRow = {
      t: Math.round(nowWallMs / 1000),
      localP50: quantile(local, 0.5),
      localP99: quantile(local, 0.99),
      etcdP50: quantile(etcd, 0.5),
      etcdP99: quantile(etcd, 0.99),
      writeP50: quantile(write, 0.5),
      writeP99: quantile(write, 0.99),
      localPerS: local.length,
      etcdPerS: etcd.length,
      writePerS: write.length,
      unknownPerS: this.#unknown,
      leaseMs: statuses.map((st) => (st === null ? null : Math.max(0, Number(BigInt(st.remainingNs)) / 1e6))),
    };
    this.#local = [];
    this.#etcd = [];
    this.#write = [];
    this.#unknown = 0;
    this.rows.push(row);
    if (this.rows.length > this.keepS) this.rows.shift();
    return row;
  }

  /** Rows with t > sinceS. */
  since(sinceS: number): SecondRow[] {
    let i = this.rows.length;
    while (i > 0 && this.rows[i - 1]!.t > sinceS) i--;
    return this.rows.slice(i);
  }
}
