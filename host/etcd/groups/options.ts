/**
 * The options of `createEtcdGroupNode` (`lease-core/etcd`, docs/etcd.md "Many groups on one
 * lease") and their check at creation: every option of the single-leader node that makes sense
 * for a node of many groups (checked by the same `checkOptions`), plus `groupCount` and
 * `maxTxnOps`, and the core's lease capacity (one lease slot per group). Each bad value is
 * refused by name, with a typed error, before anything is built.
 * @module
 */
import { InvalidOptionError } from "../../core/errors.js";
import { checkOptions, type CheckedOptions, type EtcdLeaseNodeOptions } from "../options.js";
import { checkGroupCount } from "./assign.js";

/** Options of `createEtcdGroupNode`. */
export interface EtcdGroupNodeOptions extends Omit<EtcdLeaseNodeOptions, "unsafe"> {
  /** G: how many groups the prefix is cut into; an integer in [1, 65536], the same on every
   *  node of a prefix. The core must have been created with `maxLeases >= groupCount`. */
  groupCount: number;
  /** The most operations one campaign or handoff txn may carry (etcd's `--max-txn-ops`,
   *  default 128); an integer >= 4 (a group's nested txn carries up to 3 ops). */
  maxTxnOps?: number;
}

/** The checked options with their defaults. */
export interface CheckedGroupOptions extends CheckedOptions {
  groupCount: number;
  maxTxnOps: number;
}

/** Checks `options` as `createEtcdGroupNode` receives them: the first bad one throws, by name. */
export function checkGroupOptions(options: EtcdGroupNodeOptions): CheckedGroupOptions {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError("options", "an object", options);
  const { groupCount, maxTxnOps, ...rest } = options as EtcdGroupNodeOptions & { unsafe?: unknown };
  // The single-leader node's test-only `unsafe` option has no meaning here: refused as unknown.
  if ("unsafe" in rest) throw new InvalidOptionError("unsafe", "absent (the group node has no unsafe option)", rest.unsafe);
  const checked = checkOptions(rest as EtcdLeaseNodeOptions);
  const count = checkGroupCount(groupCount);
  const ops = maxTxnOps ?? 128;
  if (typeof ops !== "number" || !Number.isInteger(ops) || ops < 4) throw new InvalidOptionError("maxTxnOps", "an integer >= 4 (etcd --max-txn-ops)", ops);
  // One lease slot per group in the core's table (createLeaseCore({ maxLeases }), default 4096).
  const capacity = (checked.core as unknown as { exports?: { leaseCapacity?: () => number } }).exports?.leaseCapacity?.();
  if (typeof capacity === "number" && capacity < count) {
    throw new InvalidOptionError("core", `a core created with maxLeases >= groupCount (${count}): createLeaseCore({ maxLeases: ${count} })`, `a core with maxLeases ${capacity}`);
  }
  return { ...checked, groupCount: count, maxTxnOps: ops };
}
