// Attack (round 3) on the extend-after-read fix "the shorter of the engine's answers before and
// after" (docs/contract.md §4 step 5; host/core/reader.ts #linearizable: "a lengthening during
// the read does not cover the proof taken at d.nowNs, before it"). dispatch extends from its
// pre-commit sample too (§4, dispatch), but asks the engine's lease duration only AFTER the
// commit and uses that one: an engine whose lease duration grew while the commit was in flight
// (700 ms -> 1400 ms, e.g. an election timeout raised at run time) gets its caller lease
// extended by the longer value from a sample taken under the shorter one. The same schedule
// through a linearizable read (the control) extends by 700 ms; through dispatch by 1400 ms, and
// a local read 1 s after the sample is served on a proof whose engine-declared lease had run out
// 300 ms earlier.
import { describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { FakeEngine, ManualClock, MS } from "../support/fakes.js";

async function run(path: "leaseRead" | "dispatch") {
  const clock = new ManualClock();
  const core = await createLeaseCore({ clock });
  const engine = new FakeEngine(); // leader, no engine ack (0n): only the caller lease can serve
  const reader = core.createLeaseReader(engine);
  clock.advance(100n * MS);
  const sampleNs = clock.ns;
  engine.durationNs = 700n * MS;
  const lengthen = () => {
    clock.advance(10n * MS);
    engine.durationNs = 1400n * MS; // grows while the operation is in flight
  };
  if (path === "leaseRead") {
    engine.duringRead = lengthen;
    await reader.leaseRead();
  } else {
    await reader.dispatch(async () => {
      lengthen();
      return { commitIndex: 5n };
    });
  }
  engine.durationNs = 700n * MS; // and is back to its old value
  const expiryNs = reader.lease.expiry();
  clock.ns = sampleNs + 1000n * MS; // 300 ms past sample + the duration declared at the sample
  return { sampleNs, expiryNs, served: reader.localRead() };
}

describe("attack round 3: dispatch extends by a lease duration that grew during the commit", () => {
  test("control: a linearizable read extends by the shorter duration; nothing is served 1 s after its sample", async () => {
    const r = await run("leaseRead");
    expect(r.expiryNs - r.sampleNs).toBe(700n * MS);
    expect(r.served).toBeUndefined();
  });

  test("dispatch: the extend uses the shorter of the durations before and after the commit; nothing is served 1 s after the sample", async () => {
    const r = await run("dispatch");
    expect(r.expiryNs - r.sampleNs, "caller lease extended by the duration asked after the commit").toBe(700n * MS);
    expect(r.served, "local read served 300 ms past the lease the engine declared at the sample").toBeUndefined();
  });
});
