// Test doubles: a manual clock and a scriptable engine, driving the real wasm core through the
// public API. Time never comes from the wall clock here.
import type { ClockSource, EngineState, LeaseEngine } from "lease-core";

export const MS = 1_000_000n;
export const T0 = 10_000_000_000_000n; // 10000 s: a non-zero origin, an hour back is still > 0

/** A clock the test moves by hand. */
export class ManualClock implements ClockSource {
  ns = T0;
  offsetNs = 0n;
  now(): bigint {
    return this.ns;
  }
  sleepOffsetNs(): bigint {
    return this.offsetNs;
  }
  advance(ns: bigint): void {
    this.ns += ns;
  }
}

/** The Node shim's clock, modelled: raw time stops during a suspend while the sleep offset
 *  (CLOCK_BOOTTIME - CLOCK_MONOTONIC) grows by its length. One instance is one process's clock:
 *  cores created from it at different times share it, as threads of one process do. */
export class ShimClock implements ClockSource {
  constructor(
    public rawNs = 10_000n * 1_000n * MS,
    public offsetNs = 7n * 1_000n * MS, // slept before the process started
  ) {}
  now(): bigint {
    return this.rawNs;
  }
  sleepOffsetNs(): bigint {
    return this.offsetNs;
  }
  suspend(ns: bigint): void {
    this.offsetNs += ns;
  }
}

/** A scriptable engine with the full lease capability. */
export class FakeEngine implements LeaseEngine {
  role: EngineState = "leader";
  applied = 10n;
  readIndex = 42n;
  ackNs = 0n;
  durationNs = 700n * MS;
  readError: unknown = undefined;
  reads = 0;
  /** Runs inside linearizableRead, before it resolves (to interleave events). */
  duringRead: (() => void) | undefined;
  readonly listeners = new Set<() => void>();

  state(): EngineState {
    return this.role;
  }
  appliedIndex(): bigint {
    return this.applied;
  }
  async linearizableRead(): Promise<bigint> {
    this.reads++;
    await Promise.resolve();
    this.duringRead?.();
    if (this.readError !== undefined) throw this.readError;
    return this.readIndex;
  }
  leaseDurationNs(): bigint {
    return this.durationNs;
  }
  lastQuorumAck(): bigint {
    return this.ackNs;
  }
  onLeaderLoss(callback: () => void): () => void {
    this.listeners.add(callback);
    return () => this.listeners.delete(callback);
  }
  loseLeadership(): void {
    this.role = "follower";
    for (const callback of this.listeners) callback();
  }
}

/** An engine without the lease capability. */
export function plainEngine(engine: FakeEngine): LeaseEngine {
  return {
    state: () => engine.state(),
    appliedIndex: () => engine.appliedIndex(),
    linearizableRead: () => engine.linearizableRead(),
  };
}

/** An observer counting hits and misses per reason. */
export function countingObserver() {
  const hits = new Map<string, number>();
  const misses = new Map<string, number>();
  const bump = (m: Map<string, number>, r: string) => m.set(r, (m.get(r) ?? 0) + 1);
  return {
    hits,
    misses,
    observer: { onHit: (r: string) => bump(hits, r), onMiss: (r: string) => bump(misses, r) },
    total: (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0),
  };
}
