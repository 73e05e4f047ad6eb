// Every host import of the core, declared in one place, so a host knows exactly what to supply.
//
// The decisions never call these: time is an argument everywhere. The clock import exists
// for hosts that let the module sample for itself (`sampleNow`), and for the WASI build,
// which replaces it with `wasi_snapshot_preview1.clock_time_get`.

/** Asks the host to write one clock reading into the clock cell at `cellPtr`:
 *  i64 `rawNs` at +0 (0 = no reading), i64 `sleepOffsetNs` at +8 (0 where the host has none). */
@external("lease_host", "readClock")
export declare function hostReadClock(cellPtr: usize): void;

// Clock hooks (the JS build only: LEASE_HOST_HOOKS is 1 there, 0 in the WASI builds, whose hosts
// have no shared lease table; asconfig*.json `--use`). They let a host carry what this instance
// learns about the clock to tables outside its memory (host/core/shared.ts, docs/shared-lease.md §6).

/** The fault floor rose to `floorNs` (assembly/fault.ts): called synchronously, before the
 *  instance hands out anything after the fault. */
@external("lease_host", "clockFault")
export declare function hostClockFault(floorNs: i64): void;

/** An instant this instance handed out, at most one call per SUSPEND_TOLERANCE_NS of clock
 *  progress, and only after `clockWatch()` (a host that keeps a high-water mark). */
@external("lease_host", "clockInstant")
export declare function hostClockInstant(instantNs: i64): void;
