import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";

// A test that imports a host module from source (test/wasi.test.ts wraps the WASI reactor in
// host/core/core.ts) gets every test-only switch as `false`, as in the published bundles
// (host/unsafe.d.ts; scripts/build.mjs). The built bundles carry no such identifier.
const UNSAFE_OFF = Object.fromEntries(
  [...readFileSync(new URL("./host/unsafe.d.ts", import.meta.url), "utf8").matchAll(/declare const (__UNSAFE_[A-Z0-9_]+__)/g)].map((m) => [m[1]!, "false"]),
);

// Tests import the package by its own name ("lease-core"), so they exercise the built bundle
// through package.json "exports", exactly as a user would (`npm test` builds first).
//
// Two groups, run one after the other: everything else first (files in parallel), then the
// tests that drive real etcd clusters, one file at a time. Those cut traffic with iptables by
// uid and time elections in hundreds of ms: they must neither share the uids with another
// cluster nor compete for the 2 cores with the simulator or spin.
export default defineConfig({
  define: UNSAFE_OFF,
  test: {
    testTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: { name: "core", include: ["test/**/*.test.ts"], exclude: ["test/etcd-*.test.ts"], sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: "etcd", include: ["test/etcd-*.test.ts"], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
