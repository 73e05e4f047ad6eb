// `npm run bench:groups` as a smoke run (`--quick --groups=50`: a real 3-member etcd, 3 group
// node processes, 150 groups): the harness runs to its end and what it reports is the behaviour
// it claims to measure, never a speed. Every group is led exactly once (the settle check, and the
// keys-only range of `<prefix>/g/` finding one key per group), the engine's etcd counter and
// etcd's own count both moved, rounds were timed, and after each SIGKILL every group the killed
// node led was served again by a survivor and took a fenced write, with and without the
// takeover hold. Speed is for bench/results/groups.json and BENCHMARKS.md, not for a test.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, test } from "vitest";

test("bench:groups --quick --groups=50: every group led once, every killed node's group led and written again", () => {
  const dir = mkdtempSync(join(tmpdir(), "lease-core-bench-groups-"));
  try {
    const out = join(dir, "groups.json");
    const r = spawnSync(process.execPath, ["scripts/bench-groups.mjs", "--quick", "--groups=50", `--out=${out}`], { encoding: "utf8", timeout: 85_000 });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout).toContain("| G/node |");
    expect(r.stdout).toMatch(/\n\| 50 \| 150 \| \d/);
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report.params).toMatchObject({ quick: true, groupsPerNode: [50], nodes: 3, ttlS: 2, etcdHeartbeatMs: 50, etcdElectionTimeoutMs: 300 });
    expect(report.results).toHaveLength(1);
    const e = report.results[0];
    expect(e.error).toBeUndefined();
    expect(e).toMatchObject({ groupsPerNode: 50, groupCount: 150 });

    // Assignment: the three nodes split the 150 groups (each leads some), and etcd holds one
    // leader key per group.
    expect(e.led).toHaveLength(3);
    expect(e.led.reduce((a: number, b: number) => a + b, 0)).toBe(150);
    for (const n of e.led) expect(n).toBeGreaterThan(0);
    expect(e.probe.keysPerRange).toBe(150);

    // Steady state: each node's own count of etcd requests and etcd's count moved, per node.
    expect(e.steady.perNode).toHaveLength(3);
    for (const n of e.steady.perNode) {
      expect(n.etcdRequestsPerS).toBeGreaterThan(0);
      expect(n.roundsPerS).toBeGreaterThan(0);
      expect(n.cpuPercent).toBeGreaterThan(0);
    }
    expect(e.steady.etcd.messagesPerSPerNode).toBeGreaterThan(0);
    expect(e.steady.engineRoundMs.count).toBeGreaterThan(0);
    expect(e.probe.roundMs.count).toBe(report.params.roundProbesPerNode * 3);

    // Failover, both ways: every group of the killed node was served again and written.
    for (const hold of ["auto", "never"]) {
      const f = e[`failover.${hold}`];
      expect(f.takeoverHold).toBe(hold);
      expect(f.kills).toBe(1);
      expect(f.groupsOfKilledNodes).toBeGreaterThan(0);
      expect(f.servedAgain).toBe(f.groupsOfKilledNodes);
      expect(f.written).toBe(f.groupsOfKilledNodes);
      expect(f.writtenMs.count).toBe(f.groupsOfKilledNodes);
      // No survivor served one of them before the kill (that would be two leaders of a group).
      expect(f.servedMs.min).toBeGreaterThan(0);
    }

    // The lease-read hit: every case measured on warm leases (no miss), a positive figure.
    const ids = e.leaseRead.results.map((x: { id: string }) => x.id);
    expect(ids).toEqual(expect.arrayContaining(["valid", "localRead.each", "leaseReadAllGroups", "localReadGroups"]));
    for (const x of e.leaseRead.results) {
      expect(x.misses, x.id).toBe(0);
      expect(x.nsPerGroup).toBeGreaterThan(0);
    }
    expect(e.leaseRead.groups).toBe(e.led[0]);

    // Memory: the node of 150 groups holds more than the node of 1.
    expect(e.memory.heapUsed + e.memory.external).toBeGreaterThan(report.memoryOneGroup.heapUsed + report.memoryOneGroup.external);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
