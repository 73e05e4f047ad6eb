// Every host import of the core, declared in one place, so a host knows exactly what to supply.
//
// The decisions never call these: time is an argument everywhere. The clock import exists
// for hosts that let the module sample for itself (`sampleNow`), and for the WASI build,
// which replaces it with `wasi_snapshot_preview1.clock_time_get`.

/** Asks the host to write one clock reading into the clock cell at `cellPtr`:
 *  i64 `rawNs` at +0 (0 = no reading), i64 `sleepOffsetNs` at +8 (0 where the host has none). */
@external("lease_host", "readClock")
export declare function hostReadClock(cellPtr: usize): void;
