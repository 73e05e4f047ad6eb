/*
 * lease_clock: the raw monotonic clock and the suspend signal for the Node and Bun hosts.
 *
 * Node's process.hrtime.bigint() reads CLOCK_MONOTONIC, which NTP may slew (adjtimex(2); POSIX
 * allows 500 ppm). Lease safety must not rest on NTP behaving (contract §1.1, docs/safety.md),
 * so this shim reads CLOCK_MONOTONIC_RAW, and reports the sleep offset CLOCK_BOOTTIME -
 * CLOCK_MONOTONIC, which grows only while the machine is suspended (clock_gettime(2); contract
 * §1.2, docs/safety.md).
 *
 * It uses only node_api.h (no libuv, no node-addon-api) so that Bun can load the same binary.
 * Contract: 0 means "no reading". A failed clock_gettime, or a reading whose ns count does not
 * fit an int64, yields 0, never an exception and never a wrapped value. Every other failure
 * throws: no function returns NULL without a pending JS exception (a bare NULL makes the call
 * evaluate to `undefined`, which a caller expecting a bigint would not recognise as a failure).
 *
 * The cell is never written through a remembered pointer. A binding keeps a reference to its
 * ArrayBuffer and the cell's offset, and re-reads the buffer's address and length before every
 * write. A buffer detached since it was bound (transferred, posted to a worker, or the old
 * buffer of a WebAssembly.Memory after memory.grow(), which may move the bytes) has length 0:
 * the fill then throws ERR_LEASE_CLOCK_STALE_BINDING and writes nothing. Before this check it
 * wrote into freed memory (AddressSanitizer: heap-use-after-free WRITE of size 8).
 *
 * Built with -DLC_TEST_FAULTS (only the test build of test/native-shim.test.ts), every N-API
 * call that can fail goes through LC_NAPI, and `__failNapiCall(n)` makes the n-th one from then
 * on fail, so the test drives every failure path.
 *
 * macOS: CLOCK_UPTIME_RAW stops during sleep and is not slewed (it is mach_absolute_time, what
 * hrtime reads there); CLOCK_MONOTONIC_RAW keeps counting during sleep. So there "raw" and
 * "monotonic" are CLOCK_UPTIME_RAW, "boottime" is CLOCK_MONOTONIC_RAW, and the sleep offset is
 * CLOCK_MONOTONIC_RAW - CLOCK_UPTIME_RAW (clock_gettime(3) on macOS).
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__APPLE__)
#define LC_RAW CLOCK_UPTIME_RAW
#define LC_BOOT CLOCK_MONOTONIC_RAW
#define LC_MONO CLOCK_UPTIME_RAW
#else
#define LC_MONO CLOCK_MONOTONIC
#ifdef CLOCK_MONOTONIC_RAW
#define LC_RAW CLOCK_MONOTONIC_RAW
#endif
#ifdef CLOCK_BOOTTIME
#define LC_BOOT CLOCK_BOOTTIME
#endif
#endif

#define CELL_BYTES 16

#ifdef LC_TEST_FAULTS
/* The n-th LC_NAPI call after __failNapiCall(n) fails (0: none). Test builds only. */
static int lc_fail_countdown = 0;
static int lc_fault(void) { return lc_fail_countdown > 0 && --lc_fail_countdown == 0; }
#define LC_NAPI(call) (lc_fault() ? napi_generic_failure : (call))
#else
#define LC_NAPI(call) (call)
#endif

/* Leaves a JS exception pending, then returns NULL: the one way every failure returns. A failed
 * N-API call may have thrown already (keep that one) or may leave none; its reason comes from
 * napi_get_last_error_info, read first because any further N-API call resets it. */
static napi_value fail(napi_env env, const char *who) {
  const napi_extended_error_info *info = NULL;
  const char *why = "an N-API call failed";
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_code != napi_ok && info->error_message != NULL) why = info->error_message;
  char message[200];
  snprintf(message, sizeof message, "%s: %s", who, why);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;
  napi_throw_error(env, "ERR_LEASE_CLOCK_NATIVE", message);
  return NULL;
}

/* A binding: per environment for bindCell (every worker thread has its own env and its own wasm
 * memory, so the bound cell must not be a process-wide global), per function for bindFill. */
typedef struct {
  napi_ref buffer; /* the bound ArrayBuffer, kept alive while bound; NULL until bound */
  size_t offset;   /* the cell's byte offset in it: CELL_BYTES long, 8-byte aligned when bound */
} lc_state;

/* ns of a timespec, or 0 ("no reading") when it is not a valid non-negative time or its ns count
 * does not fit an int64 (tv_sec beyond ~292 years): signed overflow is undefined behaviour in C,
 * and a wrapped negative or small reading would look like a clock that went back. */
static int64_t ns_of(const struct timespec *ts) {
  int64_t ns;
  if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L) return 0;
  if (__builtin_mul_overflow((int64_t)ts->tv_sec, (int64_t)1000000000, &ns) ||
      __builtin_add_overflow(ns, (int64_t)ts->tv_nsec, &ns)) return 0;
  return ns;
}

static int64_t read_ns(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) return 0;
  return ns_of(&ts);
}

static int64_t read_raw(void) {
#ifdef LC_RAW
  return read_ns(LC_RAW);
#else
  return 0;
#endif
}

static int64_t read_boot(void) {
#ifdef LC_BOOT
  return read_ns(LC_BOOT);
#else
  return 0;
#endif
}

static int64_t read_mono(void) { return read_ns(LC_MONO); }

/* Sets *offset to boot - mono and returns 1, or returns 0 if either clock failed (both are then
 * in [1, INT64_MAX], so the difference cannot overflow).
 * BOOTTIME is read FIRST: a preemption between the two reads then adds to MONOTONIC only, so it
 * can make the measured offset smaller, never larger. The core keeps a running maximum of the
 * offset and treats growth as a suspend; an offset that errs low never reports a false suspend. */
static int read_sleep_offset(int64_t *offset) {
  int64_t boot = read_boot();
  if (boot == 0) return 0;
  int64_t mono = read_mono();
  if (mono == 0) return 0;
  *offset = boot - mono;
  return 1;
}

static napi_value make_bigint(napi_env env, int64_t v, const char *who) {
  napi_value out;
  if (LC_NAPI(napi_create_bigint_int64(env, v, &out)) != napi_ok) return fail(env, who);
  return out;
}

static napi_value ReadRaw(napi_env env, napi_callback_info info) {
  (void)info;
  return make_bigint(env, read_raw(), "readRaw");
}

static napi_value ReadBoottime(napi_env env, napi_callback_info info) {
  (void)info;
  return make_bigint(env, read_boot(), "readBoottime");
}

static napi_value ReadMonotonic(napi_env env, napi_callback_info info) {
  (void)info;
  return make_bigint(env, read_mono(), "readMonotonic");
}

static napi_value ReadSleepOffset(napi_env env, napi_callback_info info) {
  (void)info;
  int64_t offset = 0; /* stays 0 if a clock failed */
  read_sleep_offset(&offset);
  return make_bigint(env, offset, "readSleepOffset");
}

/* Copies a JS string argument into buf (NUL-terminated) and returns 1; 0 when it is not a string,
 * does not fit buf, or holds an embedded NUL ("raw\0anything" must not pass as "raw": its length
 * then differs from strlen); -1 with an exception pending when an N-API call failed. */
static int string_arg(napi_env env, napi_value value, char *buf, size_t size) {
  napi_valuetype type = napi_undefined;
  size_t total = 0, copied = 0;
  if (LC_NAPI(napi_typeof(env, value, &type)) != napi_ok) return fail(env, "string argument"), -1;
  if (type != napi_string) return 0;
  if (LC_NAPI(napi_get_value_string_utf8(env, value, NULL, 0, &total)) != napi_ok) return fail(env, "string argument"), -1;
  if (total >= size) return 0;
  if (LC_NAPI(napi_get_value_string_utf8(env, value, buf, size, &copied)) != napi_ok) return fail(env, "string argument"), -1;
  return copied == total && strlen(buf) == total ? 1 : 0;
}

/* 1: *id is the clock; 0: a known name this platform lacks; -1: not a clock name. */
static int clock_by_name(const char *name, clockid_t *id) {
  if (strcmp(name, "monotonic") == 0) { *id = LC_MONO; return 1; }
  if (strcmp(name, "raw") == 0) {
#ifdef LC_RAW
    *id = LC_RAW; return 1;
#else
    return 0;
#endif
  }
  if (strcmp(name, "boottime") == 0) {
#ifdef LC_BOOT
    *id = LC_BOOT; return 1;
#else
    return 0;
#endif
  }
  return -1;
}

static napi_value ResolutionNs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[16] = {0};
  clockid_t id;
  int known = -1;
  if (LC_NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)) != napi_ok) return fail(env, "resolutionNs");
  int named = argc >= 1 ? string_arg(env, argv[0], name, sizeof name) : 0;
  if (named < 0) return NULL;
  if (named == 1) known = clock_by_name(name, &id);
  if (known < 0) {
    napi_throw_type_error(env, NULL, "resolutionNs: name must be \"raw\", \"boottime\" or \"monotonic\"");
    return NULL;
  }
  /* A clock this platform lacks, or a failing clock_getres, is "no reading": 0. */
  struct timespec ts;
  int64_t ns = 0;
  if (known == 1 && clock_getres(id, &ts) == 0) ns = ns_of(&ts);
  return make_bigint(env, ns, "resolutionNs");
}

/* Checks (buffer, byteOffset) and sets *offset_out, or returns 0 with a JS exception pending. A
 * binding keeps the buffer and this offset, never an address (see the header). */
static int cell_of(napi_env env, size_t argc, napi_value *argv, const char *who, size_t *offset_out) {
  char message[160];
  bool is_ab = false;
  if (argc >= 1 && LC_NAPI(napi_is_arraybuffer(env, argv[0], &is_ab)) != napi_ok) return fail(env, who), 0;
  if (!is_ab) {
    snprintf(message, sizeof message, "%s: buffer must be an ArrayBuffer (a SharedArrayBuffer is not accepted)", who);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  napi_valuetype type = napi_undefined;
  double offset_d = -1;
  if (argc >= 2 && LC_NAPI(napi_typeof(env, argv[1], &type)) != napi_ok) return fail(env, who), 0;
  if (type == napi_number && LC_NAPI(napi_get_value_double(env, argv[1], &offset_d)) != napi_ok) return fail(env, who), 0;
  if (type != napi_number || !(offset_d >= 0 && offset_d <= 9007199254740991.0) || offset_d != (double)(int64_t)offset_d) {
    snprintf(message, sizeof message, "%s: byteOffset must be a non-negative integer", who);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  uint8_t *base = NULL;
  size_t length = 0;
  if (LC_NAPI(napi_get_arraybuffer_info(env, argv[0], (void **)&base, &length)) != napi_ok) return fail(env, who), 0;
  uint64_t offset = (uint64_t)offset_d;
  if (base == NULL || length < CELL_BYTES || offset > (uint64_t)(length - CELL_BYTES)) {
    snprintf(message, sizeof message, "%s: byteOffset + 16 exceeds the buffer's byteLength (or the buffer is detached)", who);
    napi_throw_range_error(env, NULL, message);
    return 0;
  }
  /* Checked on the address, not only the offset: the int64 stores below need 8-byte alignment. */
  if (((uintptr_t)(base + offset) & 7u) != 0) {
    snprintf(message, sizeof message, "%s: the cell must be 8-byte aligned (byteOffset %% 8 == 0)", who);
    napi_throw_range_error(env, NULL, message);
    return 0;
  }
  *offset_out = (size_t)offset;
  return 1;
}

/* bindCell(buffer, byteOffset): remember where the module-level fill* write (one cell per
 * thread: a second bindCell moves it). Kept for measurement and tests; cores use bindFill. */
static napi_value BindCell(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *data = NULL;
  if (LC_NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, &data)) != napi_ok || data == NULL) return fail(env, "bindCell");
  lc_state *st = (lc_state *)data;
  size_t offset = 0;
  if (!cell_of(env, argc, argv, "bindCell", &offset)) return NULL;
  napi_ref ref;
  if (LC_NAPI(napi_create_reference(env, argv[0], 1, &ref)) != napi_ok) return fail(env, "bindCell");
  if (st->buffer != NULL) napi_delete_reference(env, st->buffer);
  st->buffer = ref;
  st->offset = offset;
  return NULL;
}

static napi_value FillRawSleep(napi_env env, napi_callback_info info);
static napi_value FillRaw(napi_env env, napi_callback_info info);
static napi_value FillBoottime(napi_env env, napi_callback_info info);
static napi_value FillMonotonic(napi_env env, napi_callback_info info);

/* A bound fill owns its state: freed with the function, and its reference keeps the buffer (the
 * wasm memory's) alive for as long as anyone can still call it. */
static void free_binding(napi_env env, void *data, void *hint) {
  (void)hint;
  lc_state *st = (lc_state *)data;
  if (st->buffer != NULL) napi_delete_reference(env, st->buffer);
  free(st);
}

/* bindFill(buffer, byteOffset, kind): a new fill function writing into THIS cell only, so
 * every core has its own (a shared per-thread cell would let a second core steal the first
 * one's clock: the first would then read a frozen cell and its leases would never expire).
 * kind: "raw+sleep" | "raw" | "boottime" | "monotonic". */
static napi_value BindFill(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (LC_NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)) != napi_ok) return fail(env, "bindFill");
  size_t offset = 0;
  if (!cell_of(env, argc, argv, "bindFill", &offset)) return NULL;
  char kind[16] = {0};
  int named = argc >= 3 ? string_arg(env, argv[2], kind, sizeof kind) : 0;
  if (named < 0) return NULL;
  napi_callback fill = named == 0                       ? NULL
                     : strcmp(kind, "raw+sleep") == 0 ? FillRawSleep
                     : strcmp(kind, "raw") == 0       ? FillRaw
                     : strcmp(kind, "boottime") == 0  ? FillBoottime
                     : strcmp(kind, "monotonic") == 0 ? FillMonotonic
                                                      : NULL;
  if (fill == NULL) {
    napi_throw_type_error(env, NULL, "bindFill: kind must be \"raw+sleep\", \"raw\", \"boottime\" or \"monotonic\"");
    return NULL;
  }
  lc_state *st = (lc_state *)calloc(1, sizeof *st);
  if (st == NULL) {
    napi_throw_error(env, "ERR_LEASE_CLOCK_NATIVE", "bindFill: out of memory");
    return NULL;
  }
  st->offset = offset;
  if (LC_NAPI(napi_create_reference(env, argv[0], 1, &st->buffer)) != napi_ok) {
    free(st);
    return fail(env, "bindFill");
  }
  napi_value fn;
  if (LC_NAPI(napi_create_function(env, kind, NAPI_AUTO_LENGTH, fill, st, &fn)) != napi_ok ||
      LC_NAPI(napi_add_finalizer(env, fn, st, free_binding, NULL, NULL)) != napi_ok) {
    /* No finalizer owns st: free it here. A function created without one is never returned
     * (we throw), so nothing can call it with st as its data. */
    fail(env, "bindFill");
    napi_delete_reference(env, st->buffer);
    free(st);
    return NULL;
  }
  return fn;
}

/* The fill* functions are the hot path: no argument parsing beyond fetching the state, no
 * allocation; they return undefined. */
static lc_state *state_of(napi_env env, napi_callback_info info, const char *who) {
  void *data = NULL;
  if (LC_NAPI(napi_get_cb_info(env, info, NULL, NULL, NULL, &data)) != napi_ok || data == NULL) {
    fail(env, who);
    return NULL;
  }
  return (lc_state *)data;
}

/* The bound cell, its address read NOW from the bound buffer, or NULL with an exception pending:
 * the buffer was detached since it was bound (its length is then 0), or an N-API call failed. */
static int64_t *current_cell(napi_env env, lc_state *st, const char *who) {
  napi_value buffer = NULL;
  uint8_t *base = NULL;
  size_t length = 0;
  if (LC_NAPI(napi_get_reference_value(env, st->buffer, &buffer)) != napi_ok || buffer == NULL ||
      LC_NAPI(napi_get_arraybuffer_info(env, buffer, (void **)&base, &length)) != napi_ok) {
    fail(env, who);
    return NULL;
  }
  if (base == NULL || length < CELL_BYTES || st->offset > length - CELL_BYTES || ((uintptr_t)(base + st->offset) & 7u) != 0) {
    char message[200];
    snprintf(message, sizeof message, "%s: stale binding: the bound buffer was detached (transferred, or its WebAssembly.Memory grew); bind again", who);
    napi_throw_error(env, "ERR_LEASE_CLOCK_STALE_BINDING", message);
    return NULL;
  }
  return (int64_t *)(void *)(base + st->offset);
}

/* cell[0] = raw instant, cell[1] = sleep offset. RAW is read first: a suspend before that read
 * precedes both clock reads of the offset and shows as growth. A suspend after it is no
 * different from one after the whole sample (RAW stops in suspend, so the instant is the
 * pre-suspend one) and the next sample sees the growth. */
static napi_value FillRawSleep(napi_env env, napi_callback_info info) {
  lc_state *st = state_of(env, info, "fillRawSleep");
  if (st == NULL || st->buffer == NULL) return NULL; /* NULL state: thrown; unbound: a no-op */
  int64_t raw = read_raw();
  int64_t offset = 0;
  if (raw == 0 || !read_sleep_offset(&offset)) {
    raw = 0;
    offset = 0;
  }
  int64_t *cell = current_cell(env, st, "fillRawSleep");
  if (cell == NULL) return NULL;
  cell[0] = raw;
  cell[1] = offset;
  return NULL;
}

static napi_value fill_one(napi_env env, napi_callback_info info, int64_t (*read)(void), const char *who) {
  lc_state *st = state_of(env, info, who);
  if (st == NULL || st->buffer == NULL) return NULL; /* NULL state: thrown; unbound: a no-op */
  int64_t reading = read();
  int64_t *cell = current_cell(env, st, who);
  if (cell == NULL) return NULL;
  cell[0] = reading;
  cell[1] = 0;
  return NULL;
}

static napi_value FillRaw(napi_env env, napi_callback_info info) { return fill_one(env, info, read_raw, "fillRaw"); }
static napi_value FillBoottime(napi_env env, napi_callback_info info) { return fill_one(env, info, read_boot, "fillBoottime"); }
static napi_value FillMonotonic(napi_env env, napi_callback_info info) { return fill_one(env, info, read_mono, "fillMonotonic"); }

#ifdef LC_TEST_FAULTS
/* __failNapiCall(n): the n-th LC_NAPI call from now on fails (0 clears). Test builds only. */
static napi_value FailNapiCall(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok) return fail(env, "__failNapiCall");
  lc_fail_countdown = n;
  return NULL;
}
#endif

/* The env releases its references at teardown on its own; deleting st->buffer here could race
 * that, so only the struct is freed. */
static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

NAPI_MODULE_INIT() {
  lc_state *st = (lc_state *)calloc(1, sizeof *st);
  if (st == NULL) {
    napi_throw_error(env, "ERR_LEASE_CLOCK_NATIVE", "lease_clock: out of memory");
    return NULL;
  }
  if (napi_set_instance_data(env, st, free_state, NULL) != napi_ok) {
    free(st);
    return fail(env, "lease_clock: init");
  }
#define LC_FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, st }
  napi_property_descriptor props[] = {
    LC_FN("readRaw", ReadRaw),
    LC_FN("readBoottime", ReadBoottime),
    LC_FN("readMonotonic", ReadMonotonic),
    LC_FN("readSleepOffset", ReadSleepOffset),
    LC_FN("resolutionNs", ResolutionNs),
    LC_FN("bindCell", BindCell),
    LC_FN("bindFill", BindFill),
    LC_FN("fillRawSleep", FillRawSleep),
    LC_FN("fillBoottime", FillBoottime),
    LC_FN("fillRaw", FillRaw),
    LC_FN("fillMonotonic", FillMonotonic),
#ifdef LC_TEST_FAULTS
    LC_FN("__failNapiCall", FailNapiCall),
#endif
  };
#undef LC_FN
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return fail(env, "lease_clock: init");
  return exports;
}
