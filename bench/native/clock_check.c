/*
 * The native floor (issue #6): what a lease check costs in C, with nothing between the program
 * and the vDSO. Built by scripts/bench.mjs with `cc -O2` into a temp dir and run as its own
 * process. Prints one JSON object: ns per operation, the median of ROUNDS rounds.
 *
 * - raw:            clock_gettime(CLOCK_MONOTONIC_RAW)            (clock_gettime(2), vDSO)
 * - raw_check:      the same + the lease rule (now != 0 && expiry != 0 && now < expiry)
 * - raw_sleep:      RAW, then BOOTTIME, then MONOTONIC: the raw+sleep sample the hosts take
 * - raw_sleep_check the same + the sleep-offset rule and the lease rule
 * - monotonic:      clock_gettime(CLOCK_MONOTONIC) (what process.hrtime reads)
 * - batch_100k:     one RAW read + the rule over 100k [expiry, generation] slots (16 B each, as
 *                   the wasm table), ns per lease: the memory floor of a batch check.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 7
#define ITER 2000000
#define SLOTS 100000

static volatile int64_t expiry_ns = INT64_MAX / 2; /* volatile: the check cannot be folded */
static volatile int64_t sink;

static inline int64_t read_ns(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void) { return read_ns(CLOCK_MONOTONIC); }

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *xs) {
  qsort(xs, ROUNDS, sizeof xs[0], cmp);
  return xs[ROUNDS / 2];
}

static int64_t last_offset;

static double run(int which, int64_t *slots) {
  double r[ROUNDS];
  for (int k = 0; k < ROUNDS; k++) {
    int64_t acc = 0;
    int iter = which == 5 ? 200 : ITER;
    int64_t t0 = now_ns();
    for (int i = 0; i < iter; i++) {
      switch (which) {
        case 0: acc += read_ns(CLOCK_MONOTONIC_RAW); break;
        case 1: {
          int64_t now = read_ns(CLOCK_MONOTONIC_RAW), e = expiry_ns;
          acc += (now != 0) & (e != 0) & (now < e);
          break;
        }
        case 2: acc += read_ns(CLOCK_MONOTONIC_RAW) + read_ns(CLOCK_BOOTTIME) - read_ns(CLOCK_MONOTONIC); break;
        case 3: {
          int64_t raw = read_ns(CLOCK_MONOTONIC_RAW);
          int64_t off = read_ns(CLOCK_BOOTTIME) - read_ns(CLOCK_MONOTONIC);
          if (off > last_offset) last_offset = off; /* running maximum, as the core keeps */
          int64_t now = raw + last_offset, e = expiry_ns;
          acc += (raw != 0) & (e != 0) & (now < e);
          break;
        }
        case 4: acc += read_ns(CLOCK_MONOTONIC); break;
        case 5: {
          int64_t now = read_ns(CLOCK_MONOTONIC_RAW);
          int32_t valid = 0;
          for (int s = 0; s < SLOTS; s++) valid += slots[2 * s] > now;
          acc += valid;
          break;
        }
      }
    }
    r[k] = (double)(now_ns() - t0) / iter / (which == 5 ? SLOTS : 1);
    sink = acc;
  }
  return median(r);
}

int main(void) {
  int64_t *slots = aligned_alloc(64, (size_t)SLOTS * 16);
  if (slots == NULL) return 1;
  int64_t base = read_ns(CLOCK_MONOTONIC_RAW);
  for (int s = 0; s < SLOTS; s++) {
    slots[2 * s] = s % 2 == 0 ? base + 3600000000000LL : 0;
    slots[2 * s + 1] = 0;
  }
  const char *names[] = {"raw", "raw_check", "raw_sleep", "raw_sleep_check", "monotonic", "batch_100k"};
  printf("{");
  for (int w = 0; w < 6; w++) printf("%s\"%s\": %.3f", w ? ", " : "", names[w], run(w, slots));
  printf("}\n");
  free(slots);
  return 0;
}
