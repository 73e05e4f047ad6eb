// The WASI self-test command (build/lease-core.wasi-selftest.wasm): `_start` runs the
// conformance vectors (vectors/core.json, compiled in as wasi-vectors.generated.ts) inside wasm
// and prints to stdout through fd_write, so any WASI runtime can check itself:
//
//   lease-core selftest clock: wasi monotonic <ns> ns, resolution <ns> ns, ok
//   FAIL <case>: step <i>: <what>                              (one line per failing case)
//   lease-core selftest: <steps> steps in wasm, <n> steps validated only by hosts
//   lease-core selftest: <p> passed, <f> failed                 (always the last line)
//
// then exits through proc_exit: 0 when every case passed and the clock check held, 1 otherwise.
// An assert that fails (a core bug) traps after a line on stderr (wasi-host.ts wasiAbort).
//
// The clock check samples the real WASI MONOTONIC clock twice through the core's clock rules
// (it must read non-zero and never go back); the vectors then run on a scripted clock.

import * as core from "./index";
import { CLOCK_CELL, resetClockForTest } from "./instant";
import { proc_exit, wasiClockResolutionNs, wasiReadClock } from "./wasi-host";
import { beginCase, endCase, printLine } from "./wasi-selftest-kit";
import { CASE_COUNT, CORE_STEPS, HOST_ONLY_STEPS, LEASE_CAPACITY, MAX_CASE_TRACKERS, caseName, runCase } from "./wasi-vectors.generated";

function clockCheck(): bool {
  wasiReadClock(CLOCK_CELL);
  const firstNs = core.clockObserveCell();
  wasiReadClock(CLOCK_CELL);
  const secondNs = core.clockObserveCell();
  const ok = firstNs > 0 && secondNs >= firstNs && core.clockRegressions() == 0;
  printLine(
    "lease-core selftest clock: wasi monotonic " + firstNs.toString() + " ns, resolution " +
    wasiClockResolutionNs().toString() + " ns, " + (ok ? "ok" : "FAIL (zero or backwards: then " + secondNs.toString() + " ns)"),
  );
  return ok;
}

export function _start(): void {
  core.init(LEASE_CAPACITY, MAX_CASE_TRACKERS);
  const clockOk = clockCheck();
  let passed = 0;
  let failed = 0;
  for (let i = 0; i < CASE_COUNT; i++) {
    beginCase(caseName(i), MAX_CASE_TRACKERS);
    if (runCase(i)) passed++;
    else failed++;
    endCase();
  }
  resetClockForTest();
  printLine("lease-core selftest: " + CORE_STEPS.toString() + " steps in wasm, " + HOST_ONLY_STEPS.toString() + " steps validated only by hosts");
  printLine("lease-core selftest: " + passed.toString() + " passed, " + failed.toString() + " failed");
  proc_exit(failed == 0 && clockOk ? 0 : 1);
}
