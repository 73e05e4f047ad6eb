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
 * Contract: 0 means "no reading". A failed clock_gettime yields 0, never an exception.
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

/* Per-environment state: every worker thread has its own env and its own wasm memory, so the
 * bound cell must not be a process-wide global. */
typedef struct {
  int64_t *cell;    /* 8-byte aligned, CELL_BYTES long; NULL until bindCell */
  napi_ref buffer;  /* keeps the ArrayBuffer (and so its backing store) alive while bound */
} lc_state;

static int64_t read_ns(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
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

/* Sets *offset to boot - mono and returns 1, or returns 0 if either clock failed.
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

static napi_value make_bigint(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_bigint_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

static napi_value ReadRaw(napi_env env, napi_callback_info info) {
  (void)info;
  return make_bigint(env, read_raw());
}

static napi_value ReadBoottime(napi_env env, napi_callback_info info) {
  (void)info;
  return make_bigint(env, read_boot());
}

static napi_value ReadMonotonic(napi_env env, napi_callback_info info) {
  (void)info;
  return make_bigint(env, read_mono());
}

static napi_value ReadSleepOffset(napi_env env, napi_callback_info info) {
  (void)info;
  int64_t offset = 0; /* stays 0 if a clock failed */
  read_sleep_offset(&offset);
  return make_bigint(env, offset);
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
  napi_valuetype type = napi_undefined;
  char name[16];
  size_t len = 0;
  clockid_t id;
  int known = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc >= 1) napi_typeof(env, argv[0], &type);
  if (type == napi_string && napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) == napi_ok)
    known = clock_by_name(name, &id);
  if (known < 0) {
    napi_throw_type_error(env, NULL, "resolutionNs: name must be \"raw\", \"boottime\" or \"monotonic\"");
    return NULL;
  }
  /* A clock this platform lacks, or a failing clock_getres, is "no reading": 0. */
  struct timespec ts;
  int64_t ns = 0;
  if (known == 1 && clock_getres(id, &ts) == 0) ns = (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
  return make_bigint(env, ns);
}

/* Checks (buffer, byteOffset) and returns the cell's address, or NULL with a JS exception
 * pending. The buffer is meant to be a WebAssembly.Memory's; growing that memory detaches it and
 * may move the bytes, leaving the pointer dangling. The core never grows memory after init; a
 * host that does must bind again. */
static int64_t *cell_of(napi_env env, size_t argc, napi_value *argv, const char *who) {
  char message[160];
  bool is_ab = false;
  if (argc >= 1) napi_is_arraybuffer(env, argv[0], &is_ab);
  if (!is_ab) {
    snprintf(message, sizeof message, "%s: buffer must be an ArrayBuffer (a SharedArrayBuffer is not accepted)", who);
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  napi_valuetype type = napi_undefined;
  double offset_d = -1;
  if (argc >= 2) napi_typeof(env, argv[1], &type);
  if (type != napi_number || napi_get_value_double(env, argv[1], &offset_d) != napi_ok ||
      !(offset_d >= 0 && offset_d <= 9007199254740991.0) || offset_d != (double)(int64_t)offset_d) {
    snprintf(message, sizeof message, "%s: byteOffset must be a non-negative integer", who);
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  uint8_t *base = NULL;
  size_t length = 0;
  if (napi_get_arraybuffer_info(env, argv[0], (void **)&base, &length) != napi_ok) return NULL;
  uint64_t offset = (uint64_t)offset_d;
  if (length < CELL_BYTES || offset > (uint64_t)(length - CELL_BYTES)) {
    snprintf(message, sizeof message, "%s: byteOffset + 16 exceeds the buffer's byteLength", who);
    napi_throw_range_error(env, NULL, message);
    return NULL;
  }
  /* Checked on the address, not only the offset: the int64 stores below need 8-byte alignment. */
  if (((uintptr_t)(base + offset) & 7u) != 0) {
    snprintf(message, sizeof message, "%s: the cell must be 8-byte aligned (byteOffset %% 8 == 0)", who);
    napi_throw_range_error(env, NULL, message);
    return NULL;
  }
  return (int64_t *)(void *)(base + offset);
}

/* bindCell(buffer, byteOffset): remember where the module-level fill* write (one cell per
 * thread: a second bindCell moves it). Kept for measurement and tests; cores use bindFill. */
static napi_value BindCell(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok) return NULL;
  lc_state *st = (lc_state *)data;
  int64_t *cell = cell_of(env, argc, argv, "bindCell");
  if (cell == NULL) return NULL;
  napi_ref ref;
  if (napi_create_reference(env, argv[0], 1, &ref) != napi_ok) return NULL;
  if (st->buffer != NULL) napi_delete_reference(env, st->buffer);
  st->buffer = ref;
  st->cell = cell;
  return NULL;
}

static napi_value FillRawSleep(napi_env env, napi_callback_info info);
static napi_value FillRaw(napi_env env, napi_callback_info info);
static napi_value FillBoottime(napi_env env, napi_callback_info info);
static napi_value FillMonotonic(napi_env env, napi_callback_info info);

/* A bound fill owns its cell: freed with the function, and its reference keeps the buffer (the
 * wasm memory) alive for as long as anyone can still call it. */
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
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int64_t *cell = cell_of(env, argc, argv, "bindFill");
  if (cell == NULL) return NULL;
  char kind[16] = {0};
  size_t kind_length = 0;
  napi_valuetype type = napi_undefined;
  if (argc >= 3) napi_typeof(env, argv[2], &type);
  if (type != napi_string || napi_get_value_string_utf8(env, argv[2], kind, sizeof kind, &kind_length) != napi_ok) kind[0] = 0;
  napi_callback fill = strcmp(kind, "raw+sleep") == 0 ? FillRawSleep
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
    napi_throw_error(env, NULL, "bindFill: out of memory");
    return NULL;
  }
  napi_value fn;
  if (napi_create_reference(env, argv[0], 1, &st->buffer) != napi_ok ||
      napi_create_function(env, kind, NAPI_AUTO_LENGTH, fill, st, &fn) != napi_ok ||
      napi_add_finalizer(env, fn, st, free_binding, NULL, NULL) != napi_ok) {
    if (st->buffer != NULL) napi_delete_reference(env, st->buffer);
    free(st);
    return NULL;
  }
  st->cell = cell;
  return fn;
}

/* The fill* functions are the hot path: no argument parsing beyond fetching the state, no
 * allocation, and returning NULL makes the call evaluate to undefined. */
static lc_state *state_of(napi_env env, napi_callback_info info) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, NULL, NULL, NULL, &data) != napi_ok) return NULL;
  return (lc_state *)data;
}

/* cell[0] = raw instant, cell[1] = sleep offset. RAW is read first: a suspend before that read
 * precedes both clock reads of the offset and shows as growth. A suspend after it is no
 * different from one after the whole sample (RAW stops in suspend, so the instant is the
 * pre-suspend one) and the next sample sees the growth. */
static napi_value FillRawSleep(napi_env env, napi_callback_info info) {
  lc_state *st = state_of(env, info);
  if (st == NULL || st->cell == NULL) return NULL;
  int64_t raw = read_raw();
  int64_t offset = 0;
  if (raw == 0 || !read_sleep_offset(&offset)) {
    raw = 0;
    offset = 0;
  }
  st->cell[0] = raw;
  st->cell[1] = offset;
  return NULL;
}

static napi_value fill_one(napi_env env, napi_callback_info info, int64_t (*read)(void)) {
  lc_state *st = state_of(env, info);
  if (st == NULL || st->cell == NULL) return NULL;
  st->cell[0] = read();
  st->cell[1] = 0;
  return NULL;
}

static napi_value FillRaw(napi_env env, napi_callback_info info) { return fill_one(env, info, read_raw); }
static napi_value FillBoottime(napi_env env, napi_callback_info info) { return fill_one(env, info, read_boot); }
static napi_value FillMonotonic(napi_env env, napi_callback_info info) { return fill_one(env, info, read_mono); }

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
    napi_throw_error(env, NULL, "lease_clock: out of memory");
    return NULL;
  }
  if (napi_set_instance_data(env, st, free_state, NULL) != napi_ok) {
    free(st);
    return NULL;
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
  };
#undef LC_FN
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
