/**
 * Test-only switches that turn a fixed defect back on, for the negative controls of the nemesis
 * and the fault tests. scripts/build.mjs defines each as `false` in the published bundles (the
 * guarded branch is removed) and reads it from `LEASE_CORE_UNSAFE` (comma-separated, kebab-case
 * names) only in the test build, build/unsafe/. Declare one line per switch.
 */
/** Finding 4 back: a reader lets an engine's ack sampled before the last clock fault prove a lease. */
declare const __UNSAFE_ACKS_SURVIVE_CLOCK_FAULT__: boolean;
/** Finding 2 back: a shared table reads each thread's instants on that thread's own zero (no translation, no high-water mark, clocks compared by name). */
declare const __UNSAFE_SHARED_TABLE_PER_CORE_ZERO__: boolean;
