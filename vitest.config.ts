import { defineConfig } from "vitest/config";

// Tests import the package by its own name ("lease-core"), so they exercise the built bundle
// through package.json "exports", exactly as a user would (`npm test` builds first).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
  },
});
