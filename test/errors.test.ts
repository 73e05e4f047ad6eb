// Every error lease-core exports is typed: its own name, a stable code, and instanceof its base.
import { describe, expect, test } from "vitest";
import * as api from "lease-core";

const errorClasses = Object.entries(api).filter(
  ([name, value]) => typeof value === "function" && name.endsWith("Error") && value.prototype instanceof Error,
) as [string, new (...args: never[]) => Error][];

const make = (name: string, Class: unknown) =>
  new (Class as new (...args: unknown[]) => Error & { code: string })(...(name === "PartialLeaseCapabilityError" ? [["onLeaderLoss"]] : ["x", 1, 2]));

describe("errors", () => {
  test("there are errors to check", () => {
    expect(errorClasses.length).toBeGreaterThanOrEqual(25);
  });

  test.each(errorClasses)("%s has its own name and an ERR_LEASE_ code", (name, Class) => {
    const err = make(name, Class);
    expect(err).toBeInstanceOf(api.LeaseCoreError);
    expect(err.name).toBe(name);
    if (name !== "LeaseCoreError" && name !== "LeaseConfigError") expect(err.code).toMatch(/^ERR_LEASE_[A-Z_]+$/);
  });

  test("codes are unique", () => {
    const codes = errorClasses
      .filter(([name]) => name !== "LeaseCoreError" && name !== "LeaseConfigError")
      .map(([name, Class]) => make(name, Class).code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  test.each([
    [new api.NotLeaderError(), true],
    [new api.LeadershipLostError(), true],
    [new api.LeadershipTransferInProgressError(), true],
    [{ code: "ERR_LEASE_LEADERSHIP_LOST" }, true],
    [new Error("not leader"), false],
    [new api.ReaderClosedError(), false],
    [{ code: 42 }, false],
    [null, false],
    ["ERR_LEASE_NOT_LEADER", false],
  ])("isLeadershipLossError(%s) is %s", (err, expected) => {
    expect(api.isLeadershipLossError(err)).toBe(expected);
  });
});
