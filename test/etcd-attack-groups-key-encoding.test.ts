// Attack on the group node's key handling (lease-core/etcd createEtcdGroupNode: write, read,
// readLinearizable), on a real 3-member etcd.
//
// Inputs: one node "a" leading the only group (G = 1); a key that is a JavaScript string but not
// well-formed UTF-16: "k\uD800" (a lone surrogate).
// Contract: a read after an acknowledged write of the same key returns the written value (docs/
// etcd.md §4: "a read after a write always sees it"); a key the node cannot store faithfully is
// bad input, refused with a typed, named error before anything is sent (InvalidOptionError, as
// an empty key is).
// What happened: write("k\uD800", "v1") was acknowledged (etcd stores the UTF-8 encoding, in
// which the lone surrogate becomes U+FFFD), then read("k\uD800") and readLinearizable("k\uD800")
// both answered null: the local copy keeps the key as etcd's bytes decode ("k\uFFFD") and looks
// the JavaScript string up as given. And "k\uFFFD", a different key, reads "v1".
import { afterEach, describe, expect, test } from "vitest";
import { createLeaseCore } from "lease-core";
import { createEtcdGroupNode, type EtcdGroupNode } from "lease-core/etcd";
import { startEtcdCluster, type EtcdCluster } from "../demo/cluster.js";

let cluster: EtcdCluster | undefined;
const nodes: EtcdGroupNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close().catch(() => undefined)));
  await cluster?.stop();
  cluster = undefined;
});

describe("attack: keys that are not well-formed UTF-16", () => {
  test("a lone-surrogate key is refused by name, or reads back what was written to it", async () => {
    cluster = await startEtcdCluster({ electionTimeoutMs: 300, heartbeatMs: 50 });
    const prefix = `/atk-gk-${Math.random().toString(36).slice(2)}`;
    const a = createEtcdGroupNode({ core: await createLeaseCore(), id: "a", prefix, endpoints: cluster.clientEndpoints, ttlS: 2, etcdElectionTimeoutMs: 300, groupCount: 1 });
    nodes.push(a);
    await a.start();
    await a.waitForAssignment(20_000);
    const key = "k\uD800";
    const written = await a.write(key, "v1").then(
      () => "acknowledged",
      (err: Error & { code?: string }) => `${err.name} ${err.code ?? ""}`,
    );
    if (written !== "acknowledged") {
      // Refused: it must be the typed bad-input error, and nothing stored.
      expect(written).toBe("InvalidOptionError ERR_LEASE_INVALID_OPTION");
      expect(a.peek("k\uFFFD")).toBe(null);
      return;
    }
    // Acknowledged: the key reads back what was written to it, locally and through etcd, and a
    // different key does not.
    const local = await a.read(key);
    const linearizable = await a.readLinearizable(key);
    const other = await a.readLinearizable("k\uFFFD");
    expect({ local: local.value, linearizable: linearizable.value, other: other.value }).toEqual({ local: "v1", linearizable: "v1", other: null });
  }, 60_000);
});
