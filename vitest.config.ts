import { defineConfig } from "vitest/config";

// Tests import the package by its own name ("lease-core"), so they exercise the built bundle
// through package.json "exports", exactly as a user would (`npm test` builds first).
//
// Two groups, run one after the other: everything else first (files in parallel), then the
// tests that drive real etcd clusters, one file at a time. Those cut traffic with iptables by
// uid and time elections in hundreds of ms: they must neither share the uids with another
// cluster nor compete for the 2 cores with the simulator or spin.
export default defineConfig({
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
