/**
 * Test-only switches that turn a fixed defect back on, for the negative controls of the nemesis
 * and the fault tests. scripts/build.mjs defines each as `false` in the published bundles (the
 * guarded branch is removed) and reads it from `LEASE_CORE_UNSAFE` (comma-separated, kebab-case
 * names) only in the test build, build/unsafe/. Declare one line per switch.
 */
/** Finding 4 back: a reader lets an engine's ack sampled before the last clock fault prove a
 *  lease, and the etcd engine keeps its anchor across a fault. */
declare const __UNSAFE_ACKS_SURVIVE_CLOCK_FAULT__: boolean;
/** Finding 2 back: a shared table reads each thread's instants on that thread's own zero (no translation, no high-water mark, clocks compared by name). */
declare const __UNSAFE_SHARED_TABLE_PER_CORE_ZERO__: boolean;
/** Finding 1 back: a node that finds its own leader key again leads without catching up. */
declare const __UNSAFE_RETAKE_WITHOUT_CATCH_UP__: boolean;
/** Finding 3 back: close() answers pending waits instead of rejecting them. */
declare const __UNSAFE_CLOSE_ANSWERS_PENDING__: boolean;
/** The demo's negative control: the KV service answers some reads with an overwritten value. */
declare const __UNSAFE_DEMO_STALE_READ__: boolean;
/** Issue 17's negative control: the group node's round does not check its group keys (only the
 *  term), and a group's anchor does not wait for a round that saw its key. */
declare const __UNSAFE_SKIP_GROUP_CONFIRMATION__: boolean;
