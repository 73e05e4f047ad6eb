// Every host import of the WASI builds, declared in one place, as assembly/host.ts
// does for lease_host: wasi_snapshot_preview1 and nothing else. Signatures follow the preview1
// witx (WebAssembly/WASI, legacy/preview1/witx/wasi_snapshot_preview1.witx); every call returns
// an errno (0 = success).
//
// AssemblyScript 0.28 no longer ships WASI bindings (they moved to @assemblyscript/wasi-shim,
// which patches the whole std library); the core needs three calls, so it declares them.

import { CLOCK_CELL } from "./instant";

/** clockid MONOTONIC: "cannot be adjusted, never goes backwards"; its origin is the host's
 *  (uvwasi: CLOCK_MONOTONIC since boot; Bun and Deno: process start; docs/runtime-notes.md trap 1). */
export const WASI_CLOCK_MONOTONIC: u32 = 1;
/** The precision hint of clock_time_get, in ns: ask for the finest the host has. */
const PRECISION_NS: u64 = 1;
const FD_STDERR: u32 = 2;

@external("wasi_snapshot_preview1", "clock_time_get")
declare function clock_time_get(clockId: u32, precisionNs: u64, outTimestampPtr: usize): i32;

@external("wasi_snapshot_preview1", "clock_res_get")
declare function clock_res_get(clockId: u32, outResolutionPtr: usize): i32;

/** Writes the iovecs ([ptr: u32, len: u32] each) at `iovsPtr` to `fd`; bytes written at `outNPtr`. */
@external("wasi_snapshot_preview1", "fd_write")
export declare function fd_write(fd: u32, iovsPtr: usize, iovsCount: usize, outNPtr: usize): i32;

@external("wasi_snapshot_preview1", "proc_exit")
export declare function proc_exit(code: u32): void;

/** The WASI build's clock: writes one MONOTONIC reading into the clock cell at `cellPtr`
 *  (the same [i64 rawNs, i64 sleepOffsetNs] a JS host fills). WASI has no boottime clock, so the
 *  sleep offset is always 0: no suspend is ever detected (suspendAware false, docs/abi.md).
 *  A failed call, or a timestamp past i64 (u64 in the witx), is stored as 0: "no reading", which
 *  the clock rules refuse and count. */
export function wasiReadClock(cellPtr: usize): void {
  if (clock_time_get(WASI_CLOCK_MONOTONIC, PRECISION_NS, cellPtr) != 0 || load<i64>(cellPtr) < 0) {
    store<i64>(cellPtr, 0);
  }
  store<i64>(cellPtr, 0, 8);
}

/** The resolution the host claims for MONOTONIC, in ns; 0 when it will not say. */
export function wasiClockResolutionNs(): i64 {
  // The second half of the clock cell is a scratch u64 here; callers refill the cell anyway.
  const out = CLOCK_CELL + 8;
  const resolutionNs = clock_res_get(WASI_CLOCK_MONOTONIC, out) == 0 ? load<i64>(out) : 0;
  store<i64>(out, 0);
  return resolutionNs;
}

// --- abort ---------------------------------------------------------------------------------
// Asserts stay on in release builds (a lease core that breaks an invariant must trap, not go on). The default `abort` is an `env.abort` import,
// which a plain WASI host cannot satisfy; asconfig.wasi.json routes it here with
// `--use abort=assembly/wasi-host/wasiAbort`. It writes one line to stderr, then traps: the host
// sees the call fail (a RuntimeError in JS hosts, like CoreInvariantError from the JS build),
// never a core that continues on a broken invariant. A static buffer, so an abort never grows
// memory (views held by hosts stay attached).

const ABORT_BYTES: i32 = 512;
const abortBuffer: usize = memory.data(ABORT_BYTES);
const abortIovec: usize = memory.data(12, 4); // [ptr u32, len u32] + nwritten u32

function putAscii(at: i32, text: string): i32 {
  for (let i = 0; i < text.length && at < ABORT_BYTES; i++, at++) {
    const unit = text.charCodeAt(i);
    // Printable ASCII only ("?" for the rest): the line stays one line whatever the message holds.
    store<u8>(abortBuffer + <usize>at, unit < 0x20 || unit > 0x7e ? 0x3f : <u8>unit);
  }
  return at;
}

function putDecimal(at: i32, value: u32): i32 {
  let digits = 1;
  for (let v = value; v >= 10; v /= 10) digits++;
  let end = at + digits;
  if (end > ABORT_BYTES) return at;
  for (let i = end - 1; i >= at; i--, value /= 10) store<u8>(abortBuffer + <usize>i, <u8>(0x30 + value % 10));
  return end;
}

export function wasiAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let at = putAscii(0, "lease-core abort: ");
  at = putAscii(at, message !== null ? message : "(no message)");
  at = putAscii(at, " at ");
  at = putAscii(at, fileName !== null ? fileName : "?");
  at = putAscii(at, ":");
  at = putDecimal(at, line);
  at = putAscii(at, ":");
  at = putDecimal(at, column);
  if (at == ABORT_BYTES) at--; // keep the newline: one abort, one line
  store<u8>(abortBuffer + <usize>at, 0x0a);
  at++;
  store<u32>(abortIovec, <u32>abortBuffer);
  store<u32>(abortIovec, <u32>at, 4);
  fd_write(FD_STDERR, abortIovec, 1, abortIovec + 8);
  unreachable();
}
