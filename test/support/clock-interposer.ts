// A test-only LD_PRELOAD library that interposes libc's clock_gettime(2), so a real process (the
// Node host through the N-API shim, the doctor, Bun and Deno through their FFI) sees the clocks a
// suspend leaves behind: CLOCK_BOOTTIME jumps ahead of CLOCK_MONOTONIC (and of
// CLOCK_MONOTONIC_RAW), which both stop while the machine sleeps (clock_gettime(2)). Built by the
// test that uses it, with the system C compiler, into a temporary directory.
//
// Bun and Deno look clock_gettime up with dlsym on libc's own handle, which a preloaded library
// cannot shadow; the library interposes dlsym as well, for that one name.
//
// Control, per process:
// - env LC_FAKE_{RAW,MONO,BOOT}_ADD_NS: constant offsets added to that clock from the start (so
//   each clock reads distinctly: a policy that reads the wrong one shows);
// - env LC_FAKE_HUGE: a bitmask (1 RAW, 2 MONOTONIC, 4 BOOTTIME) of clocks whose tv_sec is
//   INT64_MAX / 1e9 + 1, a reading whose ns count does not fit an int64;
// - file LC_FAKE_CTL (two int64, mapped once): [0] ns added to BOOTTIME from the (after)-th
//   BOOTTIME reading on, [1] = after. The process (or its parent) writes the file to suspend.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int (*real_gettime)(clockid_t, struct timespec *);
static int64_t add_raw, add_mono, add_boot;
static long huge;
static volatile int64_t *ctl; /* [0] jump ns, [1] after how many BOOTTIME reads */
static volatile int64_t boot_reads;

static int64_t env_i64(const char *name) {
  const char *v = getenv(name);
  return v == NULL ? 0 : strtoll(v, NULL, 10);
}

static void init(void) {
  add_raw = env_i64("LC_FAKE_RAW_ADD_NS");
  add_mono = env_i64("LC_FAKE_MONO_ADD_NS");
  add_boot = env_i64("LC_FAKE_BOOT_ADD_NS");
  huge = (long)env_i64("LC_FAKE_HUGE");
  const char *path = getenv("LC_FAKE_CTL");
  if (path != NULL) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
      void *p = mmap(NULL, 16, PROT_READ, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) ctl = (volatile int64_t *)p;
      close(fd);
    }
  }
  __atomic_store_n(&real_gettime, (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime"), __ATOMIC_RELEASE);
}

static void add_ns(struct timespec *ts, int64_t ns) {
  int64_t total = (int64_t)ts->tv_nsec + ns % 1000000000;
  ts->tv_sec += ns / 1000000000 + (total >= 1000000000 ? 1 : total < 0 ? -1 : 0);
  ts->tv_nsec = (long)((total % 1000000000 + 1000000000) % 1000000000);
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  if (__atomic_load_n(&real_gettime, __ATOMIC_ACQUIRE) == NULL) init();
  int rc = real_gettime(id, ts);
  if (rc != 0) return rc;
  int bit = id == CLOCK_MONOTONIC_RAW ? 1 : id == CLOCK_MONOTONIC ? 2 : id == CLOCK_BOOTTIME ? 4 : 0;
  if (bit == 1) add_ns(ts, add_raw);
  if (bit == 2) add_ns(ts, add_mono);
  if (bit == 4) {
    int64_t n = __atomic_add_fetch(&boot_reads, 1, __ATOMIC_RELAXED);
    add_ns(ts, add_boot);
    if (ctl != NULL && ctl[0] != 0 && n > ctl[1]) add_ns(ts, ctl[0]);
  }
  if (bit != 0 && (huge & bit) != 0) ts->tv_sec = (time_t)(INT64_MAX / 1000000000 + 1);
  return 0;
}

/* Bun's and Deno's FFI look clock_gettime up in the handle of dlopen("libc.so.6"), and dlsym on
 * that handle searches libc and its dependencies, never a preloaded library. So dlsym itself is
 * interposed, for that one name; everything else goes to the real one (dlvsym: dlsym(RTLD_NEXT,
 * "dlsym") would find this function again). */
void *dlsym(void *handle, const char *name) {
  static void *(*real_dlsym)(void *, const char *);
  if (real_dlsym == NULL) {
    real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (real_dlsym == NULL) real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
  }
  if (handle != RTLD_NEXT && __builtin_strcmp(name, "clock_gettime") == 0) return (void *)clock_gettime;
  return real_dlsym(handle, name);
}
`;

export interface Interposer {
  /** The shared library, for LD_PRELOAD. */
  library: string;
  /** A fresh control file (no jump yet) and the env that points the library at it. */
  control(): { path: string; env: Record<string, string>; suspend(jumpNs: bigint, afterBootReads?: bigint): void };
  /** Deletes the library and its control files. */
  dispose(): void;
}

/** Builds the library with `cc` (throws if the compiler is missing: the suspend tests need it). */
export function buildInterposer(): Interposer {
  const dir = mkdtempSync(join(tmpdir(), "lease-interposer-"));
  const source = join(dir, "fake_clock.c");
  const library = join(dir, "fake_clock.so");
  writeFileSync(source, SOURCE);
  execFileSync("cc", ["-std=gnu11", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", source, "-o", library, "-ldl"], { stdio: "pipe" });
  let n = 0;
  return {
    library,
    control() {
      const path = join(dir, `ctl-${n++}`);
      const write = (jumpNs: bigint, after: bigint) => writeFileSync(path, new Uint8Array(new BigInt64Array([jumpNs, after]).buffer));
      write(0n, 0n);
      return { path, env: { LC_FAKE_CTL: path }, suspend: (jumpNs, after = 0n) => write(jumpNs, after) };
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
