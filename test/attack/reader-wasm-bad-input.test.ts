// Attack on bad input to the APIs this branch added around the wasm decision: the frozen-clock
// budget the core now hands to wasm at construction (host/core/core.ts LeaseCore constructor ->
// configSetFreezeBudgetNs, R5 of docs/contract.md §4.1) and core.engineAckValid (contract §3).
// Standard: bad input (wrong types, NaN, non-integers) gets a typed, named error
// (host/errors.ts, an ERR_LEASE_* code) and changes nothing; never a raw TypeError from the
// wasm boundary, never a silently coerced value.
//
// - clock.info.freezeBudgetNs of a custom ClockSource is range-checked but not type-checked: a
//   Number (50_000_000, NaN, 1.5) reaches the i64 parameter and throws a bare TypeError
//   ("Cannot convert 50000000 to a BigInt"); `true` and "50" are coerced by the wasm boundary to
//   1n and 50n and accepted, and core.freezeBudgetNs then holds a boolean or a string.
// - core.engineAckValid(state, ...) checks ack, now and duration but not state: `true`, 1,
//   "LEADER" or undefined silently answer false (fails closed, but the wrong type goes unsaid).
import { describe, expect, test } from "vitest";
import { createLeaseCore, LeaseCoreError } from "lease-core";
import { ManualClock } from "../support/fakes.js";

/** What a call threw, as "typed <code>" / "untyped <class>: <message>" / "accepted". */
async function outcome(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return "accepted";
  } catch (err) {
    return err instanceof LeaseCoreError ? `typed ${(err as { code: string }).code}` : `untyped ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`;
  }
}

describe("attack: a custom clock's freezeBudgetNs of the wrong type", () => {
  for (const budget of [50_000_000, Number.NaN, 1.5, true, "50"] as unknown[]) {
    test(`freezeBudgetNs ${typeof budget} ${String(budget)}: a typed error, not a TypeError or a coerced budget`, async () => {
      const got = await outcome(() => createLeaseCore({ clock: { now: () => 5n, info: { mayFreeze: true, freezeBudgetNs: budget as bigint } } }));
      expect(got).toMatch(/^typed ERR_LEASE_/);
    });
  }

  test("control: a bigint out of range is already a typed error", async () => {
    const got = await outcome(() => createLeaseCore({ clock: { now: () => 5n, info: { mayFreeze: true, freezeBudgetNs: -1n } } }));
    expect(got).toMatch(/^typed ERR_LEASE_/);
  });
});

describe("attack: core.engineAckValid with a state that is not an EngineState", () => {
  for (const state of [true, 1, "LEADER", undefined] as unknown[]) {
    test(`state ${typeof state} ${String(state)}: a typed error, not a silent false`, async () => {
      const core = await createLeaseCore({ clock: new ManualClock() });
      const got = await outcome(() => core.engineAckValid(state as string, 5n, 6n, 10n));
      expect(got).toMatch(/^typed ERR_LEASE_/);
    });
  }

  test("control: a bad instant is already a typed error", async () => {
    const core = await createLeaseCore({ clock: new ManualClock() });
    expect(await outcome(() => core.engineAckValid("leader", -1n, 6n, 10n))).toMatch(/^typed ERR_LEASE_/);
  });
});
