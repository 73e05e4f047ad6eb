/**
 * Test-only switches that turn a fixed defect back on, for the negative controls of the nemesis
 * and the fault tests. scripts/build.mjs defines each as `false` in the published bundles (the
 * guarded branch is removed) and reads it from `LEASE_CORE_UNSAFE` (comma-separated, kebab-case
 * names) only in the test build, build/unsafe/. Declare one line per switch.
 */
declare const __UNSAFE_DEMO_STALE_READ__: boolean;
