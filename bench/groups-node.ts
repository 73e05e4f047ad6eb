/**
 * One group node of `npm run bench:groups` (bench/groups.ts drives it), in its own process so it
 * can be killed with SIGKILL and its CPU time is its own: an `EtcdGroupNode` (lease-core/etcd,
 * the built bundle resolved through package.json "exports", as a user gets it) on its own core,
 * answering the driver's commands over the IPC channel of child_process.fork (advanced
 * serialization, so bigints pass as they are).
 *
 * Commands (each answered by `{ id, ok, value }` or `{ id, ok: false, error }`):
 * - `start`            create the core (maxLeases = groupCount + 8: a lease slot per group, and
 *                      the bench's reference lease) and the node, `start()`, `waitForAssignment()`;
 * - `snapshot`         led groups, counters, status, CPU time, the clock (process.hrtime, i.e.
 *                      CLOCK_MONOTONIC, the same in every process of the host: the driver times
 *                      a kill and the survivors' writes on it);
 * - `sampleRounds`     the engine's own round timings: `status().lastRoundMs` polled every 5 ms
 *                      for a window, one sample per completed round (while the renew interval,
 *                      TTL/4 = 500 ms, is far longer than the poll, no round is missed);
 * - `probeRounds`      the same round measured from outside, on a second etcd client in this
 *                      process: a keepalive on a lease of its own, then the round's read, a txn
 *                      of linearizable keys-only ranges of `<prefix>/g/` (every group key),
 *                      `<prefix>/n/<id>` and the meta key `<prefix>/d/` (host/etcd/groups/confirm.ts);
 * - `leaseReadBench`   mitata, in this process: `lease.valid()` (a lease of the same core,
 *                      extended an hour ahead: the single-leader figures' reference), `localRead()`
 *                      of every led group, the batch hit (`localReadGroups`, when the core has it)
 *                      and `leaseReadAllGroups(keys of the led groups)`, ns per group;
 * - `memory`           heap + external after three full GCs (`--expose-gc`);
 * - `failover`         arms a watch for `groups` (those a node about to be killed leads): each
 *                      one this node comes to lead and serve gets a fenced write
 *                      (`node.write`) as soon as it serves; answers per group when it first
 *                      served here and when its write succeeded (hrtime ns);
 * - `close`            a clean close (hand-off), then exit.
 * @module
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { do_not_optimize, measure } from "mitata";
import { Etcd3, KVClient, LeaseClient } from "etcd3";

const lc = await import("lease-core");
const etcd = await import("lease-core/etcd");

type Command = { id: number; cmd: string; args?: Record<string, unknown> };
const send = (msg: unknown) => process.send!(msg);

let node: ReturnType<typeof etcd.createEtcdGroupNode> | undefined;
let core: Awaited<ReturnType<typeof lc.createLeaseCore>> | undefined;
/** Lease slots beyond the node's own (one per group): the bench's reference lease. */
const SPARE_LEASES = 8;
let prefix = "";
let endpoints: string[] = [];
let groupCount = 0;
let id = "";

/** Keys routed to each group (found by scanning `k<i>`), for writes and `leaseReadAllGroups`. */
const keyOfGroup = new Map<number, string>();
let keyScan = 0;
function keysFor(groups: Iterable<number>): Map<number, string> {
  const want = new Set<number>();
  for (const g of groups) if (!keyOfGroup.has(g)) want.add(g);
  // FNV-1a spreads keys evenly: G·ln(G) tries find a key for every group (about 150k at 15,000).
  const limit = keyScan + 200 * groupCount + 10_000;
  while (want.size > 0 && keyScan < limit) {
    const key = `k${keyScan++}`;
    const g = node!.groupOf(key);
    if (!keyOfGroup.has(g)) keyOfGroup.set(g, key);
    want.delete(g);
  }
  if (want.size > 0) throw new Error(`no key found for ${want.size} groups`);
  const out = new Map<number, string>();
  for (const g of groups) out.set(g, keyOfGroup.get(g)!);
  return out;
}

const hrNs = () => process.hrtime.bigint();
let stopFailover = false;

const handlers: Record<string, (args: any) => Promise<unknown>> = {
  async start(args: { endpoints: string[]; prefix: string; id: string; groupCount: number; ttlS: number; etcdElectionTimeoutMs: number; takeoverHold: "auto" | "always" | "never"; assignTimeoutMs: number }) {
    ({ endpoints, prefix, id, groupCount } = args);
    core = await lc.createLeaseCore({ maxLeases: args.groupCount + SPARE_LEASES });
    const created = etcd.createEtcdGroupNode({
      core,
      endpoints,
      prefix,
      id,
      groupCount,
      ttlS: args.ttlS,
      etcdElectionTimeoutMs: args.etcdElectionTimeoutMs,
      takeoverHold: args.takeoverHold,
    });
    node = created;
    const t0 = performance.now();
    // start() may be called again after it failed (docs/etcd.md): retried up to 3 times and
    // reported (startErrors), so a transient failure on a loaded machine costs no row.
    const startErrors: string[] = [];
    for (;;) {
      try {
        await created.start();
        break;
      } catch (err) {
        startErrors.push(`${(err as { code?: string }).code ?? (err as Error).name}: ${(err as Error).message}`);
        if (startErrors.length >= 3) throw err;
        await sleep(500);
      }
    }
    const startedMs = performance.now() - t0;
    await created.waitForAssignment(args.assignTimeoutMs);
    return { startedMs, assignedMs: performance.now() - t0, clock: core.clock.source, startErrors };
  },

  async waitForAssignment(args: { timeoutMs: number }) {
    const t0 = performance.now();
    await node!.waitForAssignment(args.timeoutMs);
    return { ms: performance.now() - t0 };
  },

  async snapshot() {
    const n = node!;
    const status = n.status() as unknown as Record<string, unknown>;
    const plain = Object.fromEntries(Object.entries(status).map(([k, v]) => [k, typeof v === "bigint" ? v.toString() : v]));
    return { id, led: n.ledGroups(), counters: { ...n.counters }, status: plain, cpu: process.cpuUsage(), nowNs: hrNs() };
  },

  async sampleRounds(args: { ms: number }) {
    const n = node!;
    const samples: number[] = [];
    let last = n.status();
    const end = performance.now() + args.ms;
    while (performance.now() < end) {
      await sleep(5);
      const s = n.status();
      // A completed round changes the last duration (a float in ms: two rounds of the very same
      // duration would count once, which only loses a sample).
      if (s.lastRoundMs > 0 && s.lastRoundMs !== last.lastRoundMs) samples.push(s.lastRoundMs);
      last = s;
    }
    return { samples, rounds: last.rounds };
  },

  async probeRounds(args: { count: number; intervalMs: number }) {
    const client = new Etcd3({ hosts: endpoints });
    const pool = (client as unknown as { pool: ConstructorParameters<typeof KVClient>[0] }).pool;
    const kv = new KVClient(pool);
    const leases = new LeaseClient(pool);
    const key = Buffer.from(`${prefix}/g/`);
    const end = Buffer.from(key);
    end[end.length - 1]!++;
    const memberKey = Buffer.from(`${prefix}/n/${id}`);
    const metaKey = Buffer.from(`${prefix}/d/`);
    const roundMs: number[] = [];
    const keepaliveMs: number[] = [];
    const rangeMs: number[] = [];
    let keys = 0;
    try {
      const granted = await leases.leaseGrant({ TTL: 2 });
      const stream = (await leases.leaseKeepAlive()) as unknown as NodeJS.EventEmitter & { write(req: { ID: string }): void; end(): void };
      // One keepalive at a time on one stream, as the engine sends them: the answer is ours.
      const keepalive = () =>
        new Promise<void>((resolve, reject) => {
          const onData = () => (stream.removeListener("error", reject), resolve());
          stream.once("data", onData);
          stream.once("error", reject);
          stream.write({ ID: granted.ID });
        });
      for (let i = 0; i < args.count; i++) {
        const t0 = performance.now();
        await keepalive();
        const t1 = performance.now();
        const res = await kv.txn({
          compare: [],
          success: [
            { request_range: { key, range_end: end, keys_only: true } },
            { request_range: { key: memberKey, keys_only: true } },
            { request_range: { key: metaKey, keys_only: true } },
          ],
          failure: [],
        });
        const t2 = performance.now();
        keys = res.responses[0]?.response_range.kvs.length ?? 0;
        keepaliveMs.push(t1 - t0);
        rangeMs.push(t2 - t1);
        roundMs.push(t2 - t0);
        await sleep(args.intervalMs);
      }
      stream.end();
      await leases.leaseRevoke({ ID: granted.ID }).catch(() => undefined);
    } finally {
      client.close();
    }
    return { roundMs, keepaliveMs, rangeMs, keys };
  },

  async leaseReadBench(args: { rounds: number; minCpuMs: number }) {
    const n = node!;
    const reader = n.reader as unknown as {
      reader(g: number): { localRead(): bigint | undefined; lease: { valid(): boolean } };
      leaseReadAllGroups(keys?: Iterable<string>): Promise<Map<number, bigint>>;
      localReadGroups?: (groupIds: ArrayLike<number>, out: BigInt64Array) => number;
    };
    const led = Int32Array.from(n.ledGroups());
    const count = led.length;
    if (count === 0) throw new Error("this node leads no group");
    const readers = Array.from(led, (g) => reader.reader(g));
    // The reference: a lease of the same core extended an hour ahead, so valid() is a hit (a
    // reader's own caller-side lease is only warmed by linearizable reads: its valid() would
    // be the cheaper miss). As in bench/cases.ts.
    const lease = core!.createLease();
    if (!lease.extend(core!.now() + 3_600_000_000_000n, lease.generation())) throw new Error("bench setup: extend failed");
    const keys = [...keysFor(led).values()];
    const out = new BigInt64Array(count);
    const hasBatch = typeof reader.localReadGroups === "function";
    // Each case is its own closure literal (see bench/harness.ts: a shared wrapper would make
    // the inner call megamorphic). Each returns how many groups it served: a miss means the
    // lease was not warm and the figure would be the wrong path, so misses are counted.
    const cases: { id: string; label: string; per: number; fn: () => unknown; served: () => number }[] = [
      { id: "valid", label: "lease.valid() on the node's core (a lease extended an hour: a hit; one clock sample)", per: 1, fn: () => do_not_optimize(lease.valid()), served: () => (lease.valid() ? 1 : 0) },
      {
        id: "localRead.each",
        label: `reader.reader(g).localRead() for each of the ${count} led groups (a clock sample per group)`,
        per: count,
        fn: () => {
          let hits = 0;
          for (let i = 0; i < count; i++) if (readers[i]!.localRead() !== undefined) hits++;
          return do_not_optimize(hits);
        },
        served: () => readers.filter((r) => r.localRead() !== undefined).length,
      },
      {
        id: "leaseReadAllGroups",
        label: `await reader.leaseReadAllGroups(one key per led group), ${count} groups on one sample`,
        per: count,
        fn: () => reader.leaseReadAllGroups(keys),
        // Warm iff every group's localRead hits (the same decision, on one sample there).
        served: () => readers.filter((r) => r.localRead() !== undefined).length,
      },
    ];
    if (hasBatch) {
      cases.push({
        id: "localReadGroups",
        label: `reader.localReadGroups(${count} led groups, out): one clock sample per batch`,
        per: count,
        fn: () => do_not_optimize(reader.localReadGroups!(led, out)),
        served: () => reader.localReadGroups!(led, out),
      });
    }
    const samples = new Map<string, number[]>(cases.map((c) => [c.id, []]));
    const misses = new Map<string, number>(cases.map((c) => [c.id, 0]));
    const wallMs = new Map<string, number>();
    for (let r = 0; r < args.rounds; r++) {
      for (const c of cases) {
        // Let the renew loop run between measurements: a measurement blocks this event loop
        // for about minCpuMs (see batch_samples below), far below the lease (TTL - margin,
        // ~1.7 s at TTL 2 s).
        await sleep(20);
        const before = c.served();
        const c0 = { ...n.counters };
        const t0 = performance.now();
        let stats: { p50: number };
        try {
          // batch_samples 64 (mitata's default is 4096 calls per sample for a call under 65 µs):
          // a measurement runs without yielding to timers or I/O (an awaited promise that is
          // already resolved only runs microtasks), and 12 samples of 4096 calls of ~20-60 µs
          // (localRead over 50-100 groups) blocked this process 1-3 s: past the TTL under load,
          // so the node's etcd lease expired mid-bench (groupsLost, ERR_LEASE_ETCD_NO_LEASE).
          stats = await measure(c.fn, { min_cpu_time: args.minCpuMs * 1e6, min_samples: 12, batch_samples: 64 } as never);
        } catch (err) {
          // Say which case, how long it ran and what the node went through meanwhile.
          const moved = Object.entries(n.counters).filter(([k, v]) => v !== c0[k]).map(([k, v]) => `${k} ${c0[k]}→${v}`);
          throw new Error(`${c.id}, round ${r}, after ${(performance.now() - t0).toFixed(0)} ms: ${(err as Error).message} (${moved.join(", ")})`);
        }
        wallMs.set(c.id, Math.max(wallMs.get(c.id) ?? 0, performance.now() - t0));
        const after = c.served();
        misses.set(c.id, misses.get(c.id)! + (c.per - before) + (c.per - after));
        samples.get(c.id)!.push(stats.p50 / c.per);
      }
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const m = s.length >> 1;
      return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
    };
    const results = cases.map((c) => ({ id: c.id, label: c.label, per: c.per, nsPerGroup: median(samples.get(c.id)!), rounds: samples.get(c.id)!, misses: misses.get(c.id)!, longestMeasureMs: wallMs.get(c.id)! }));
    const valid = results[0]!.nsPerGroup;
    for (const r of results) (r as Record<string, unknown>).ratioToValid = r.nsPerGroup / valid;
    return { groups: count, hasBatch, results };
  },

  async memory() {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error("run with --expose-gc");
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(20);
    }
    const m = process.memoryUsage();
    return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
  },

  async failoverStop() {
    stopFailover = true;
    return null;
  },

  async failover(args: { groups: number[]; timeoutMs: number; concurrency: number }) {
    stopFailover = false;
    const n = node!;
    const pending = new Set(args.groups);
    const keys = keysFor(args.groups);
    const servedAtNs = new Map<number, bigint>();
    const writtenAtNs = new Map<number, bigint>();
    const writeErrors: Record<string, number> = {};
    let inFlight = 0;
    const queue: number[] = [];
    const deadline = performance.now() + args.timeoutMs;
    const pump = () => {
      while (inFlight < args.concurrency && queue.length > 0) {
        const g = queue.shift()!;
        inFlight++;
        n.write(keys.get(g)!, `failover-${Date.now()}`).then(
          () => {
            inFlight--;
            writtenAtNs.set(g, hrNs());
            fresh.push(g);
            pending.delete(g);
            pump();
          },
          (err: { code?: string; name?: string }) => {
            inFlight--;
            const code = err?.code ?? err?.name ?? "error";
            writeErrors[code] = (writeErrors[code] ?? 0) + 1;
            queued.delete(g); // asked again on the next poll, if this node still serves it
            pump();
          },
        );
      }
    };
    const queued = new Set<number>();
    const fresh: number[] = [];
    send({ event: "armed" });
    // Until the driver says stop (every group written by one survivor or the other: it hears
    // each write from the progress events) or the deadline. A group this node lost again (its
    // key gone, or the other survivor took it over) is simply not served here any more; one it
    // gets back before it was written is written then.
    while (!stopFailover && performance.now() < deadline) {
      const led = new Set(n.ledGroups());
      const now = hrNs();
      for (const g of pending) {
        if (!led.has(g) || queued.has(g)) continue;
        if (!servedAtNs.has(g)) servedAtNs.set(g, now);
        queued.add(g);
        queue.push(g);
      }
      pump();
      if (fresh.length > 0) send({ event: "failoverProgress", written: fresh.splice(0) });
      await sleep(5);
    }
    // Groups the other survivor took never show here: the driver merges both answers.
    const perGroup = [...servedAtNs.keys()].map((g) => ({ group: g, servedAtNs: servedAtNs.get(g)!, writtenAtNs: writtenAtNs.get(g) ?? null }));
    return { perGroup, writeErrors };
  },

  async close() {
    const t0 = performance.now();
    await node?.close();
    return { ms: performance.now() - t0 };
  },
};

process.on("message", (msg: Command) => {
  const handler = handlers[msg.cmd];
  if (handler === undefined) return send({ id: msg.id, ok: false, error: `unknown command ${msg.cmd}` });
  handler(msg.args ?? {}).then(
    (value) => send({ id: msg.id, ok: true, value }),
    (err: Error) => send({ id: msg.id, ok: false, error: `${err?.name ?? "Error"}: ${err?.message ?? String(err)}`, code: (err as { code?: string })?.code }),
  );
});
send({ event: "ready", pid: process.pid });
