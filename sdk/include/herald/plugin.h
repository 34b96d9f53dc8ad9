/* herald/plugin.h: the C ABI between Herald and a shared-library plugin.
 *
 * A plugin is a shared library exporting one function, `herald_plugin_entry`, that returns a
 * descriptor: its own size, the ABI version it was built for, the plugin's name, version and
 * description, and its capabilities. Each capability is a namespaced name (`mastodon.publish`),
 * a kind, a JSON Schema for its input, and an entry point that takes JSON in and gives JSON out
 * (or a structured error) through the host function table Herald passes to every call.
 *
 * Read by plugin authors (C, or C++ through herald/plugin.hpp) and by Herald's loader
 * (engine/plugins/). Pure C, standard headers only, so a plugin built with any compiler loads.
 *
 * Naming: `herald_*` types; functions the plugin implements are `*_fn` pointers in the
 * descriptor (`on_*` members); functions the host implements live in `herald_host_api`.
 * Every pointer says who owns it (OWNERSHIP) and how long it lives (LIFETIME).
 *
 * Compatibility rules (checked by the loader before any plugin code other than the entry runs):
 *  - major must equal the host's; a plugin built for a newer minor than the host is refused;
 *    patch is ignored.
 *  - structs start with their size and only ever grow at the end; the host reads only the
 *    fields the plugin's size covers, and a plugin reads only the host functions its
 *    `host->size` covers. Nothing is ever removed or reordered within a major version.
 *  - tests/unit/plugins/abi_test.cc fails when this file's declarations change and the version
 *    does not (sdk/abi/plugin-abi-history.txt records each version's hash).
 */
#ifndef HERALD_PLUGIN_H
#define HERALD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define HERALD_ABI_VERSION_MAJOR 1
#define HERALD_ABI_VERSION_MINOR 1
#define HERALD_ABI_VERSION_PATCH 0

/* The name of the exported entry point, for dlsym. */
#define HERALD_PLUGIN_ENTRY_SYMBOL "herald_plugin_entry"

#if defined(_WIN32)
#define HERALD_PLUGIN_EXPORT __declspec(dllexport)
#else
#define HERALD_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types --------------------------------------------------------------------------------- */

/* Return codes of plugin entry points and host functions. */
#define HERALD_OK 0
#define HERALD_FAILED 1

/* Capability kinds. */
#define HERALD_KIND_STEP 1           /* usable as `uses: <name>` in a workflow */
#define HERALD_KIND_TRIGGER_SOURCE 2 /* produces trigger events (polling, streams) */
#define HERALD_KIND_PROVIDER 3       /* a service other steps call (AI provider, commerce) */

/* Log levels for herald_host_api.log. */
#define HERALD_LOG_DEBUG 0
#define HERALD_LOG_INFO 1
#define HERALD_LOG_WARN 2
#define HERALD_LOG_ERROR 3

/* A byte string with its length; `data` need not be NUL-terminated (the host's always are). */
typedef struct herald_str {
  const char* data;
  size_t size;
} herald_str;

/* One invocation (a capability call, or the plugin's init). Opaque; the host's.
 * OWNERSHIP: host. LIFETIME: from the start of the plugin entry point it is passed to until that
 * entry point returns. Never keep it, never use it from another invocation. */
typedef struct herald_call herald_call;

/* A structured failure, handed to herald_host_api.set_error.
 * OWNERSHIP: the plugin's, strings included; the host copies everything during set_error. */
typedef struct herald_error {
  size_t size;              /* sizeof(herald_error) as the plugin was built */
  const char* code;         /* NUL-terminated: invalid_argument, not_found, already_exists,
                               failed_precondition, unavailable, deadline_exceeded, resource_exhausted,
                               cancelled, permission_denied, unauthenticated, internal; anything else
                               is read as internal */
  const char* message;      /* NUL-terminated UTF-8, for people */
  int32_t retryable;        /* non-zero: the runtime may try again (per the step's retry policy) */
  int64_t retry_after_ms;   /* < 0: none; otherwise wait at least this long before retrying */
  const char* details_json; /* NULL, or NUL-terminated JSON with extra facts (HTTP status ...) */
} herald_error;

/* The functions Herald offers a plugin. Append-only: a new function is added at the end with a
 * minor version bump, never inserted or removed. Before calling a function added after 1.0,
 * check HERALD_HOST_HAS(host, member).
 * OWNERSHIP: host. LIFETIME: the whole process (the same table for every call).
 * Every function may be called from any thread, with the `call` of the invocation running on
 * that thread. Results that are buffers are herald_str owned by the host and valid until the
 * invocation (`call`) ends; copy what must live longer. */
typedef struct herald_host_api {
  size_t size; /* sizeof(herald_host_api) as the host was built */
  uint16_t abi_major, abi_minor, abi_patch;

  /* -- 1.0 -- */

  /* Writes a line to the run's timeline and Herald's log, tagged with the run and step ids of
   * `call`; it is kept with the step's attempt (GET /api/v1/runs/{id}, herald runs show). Secrets
   * are redacted by the host.
   * message: OWNERSHIP plugin; read during the call only. */
  void (*log)(herald_call* call, int32_t level, const char* message, size_t message_size);

  /* Sends one HTTP request through Herald's client: the request JSON has the same fields as the
   * `http` step's `with:` (method, url, headers, query, json or body, timeout, expect,
   * idempotency, max_response_bytes, follow_redirects) and an optional `rate_limit`
   * ({key, requests, per}: a token bucket every call naming `key` shares); the call's deadline
   * and cancellation bound it, and it is recorded in the run's timeline with secrets redacted.
   * After a 429/503 with Retry-After, calls to that host with that credential fail at once
   * (retryable, with retry_after) until the wait is over.
   * HERALD_OK: *response = {"status", "headers", "body", "duration_ms", "url"} (body parsed
   * when JSON). HERALD_FAILED: *response = an error object {"code", "message", "retryable",
   * "retry_after_ms"?, "details"?} (timeouts, refused connections, unexpected statuses).
   * request: OWNERSHIP plugin; read during the call only.
   * *response: OWNERSHIP host; LIFETIME until the invocation ends. */
  int32_t (*http)(herald_call* call, const char* request_json, size_t request_size,
                  herald_str* response);

  /* Looks up a secret of the run's workspace by name (what `{{ secrets.NAME }}` gives).
   * HERALD_OK: *value = the secret's text. HERALD_FAILED: *value = an error object (not_found).
   * The host redacts the value wherever it would be stored or logged.
   * *value: OWNERSHIP host; LIFETIME until the invocation ends. */
  int32_t (*secret)(herald_call* call, const char* name, size_t name_size, herald_str* value);

  /* Emits an event in the run's workspace (as the `emit` step does). Events are committed with
   * the step's result, so they are emitted exactly once and only if the invocation succeeds.
   * HERALD_FAILED: *error = an error object (an invalid name or payload).
   * name, payload_json: OWNERSHIP plugin; read during the call only.
   * *error: OWNERSHIP host; LIFETIME until the invocation ends. May be NULL. */
  int32_t (*emit)(herald_call* call, const char* name, size_t name_size, const char* payload_json,
                  size_t payload_size, herald_str* error);

  /* The invocation's idempotency key: stable for (run, step, item) across retries and restarts;
   * send it to APIs that deduplicate (Idempotency-Key). Empty outside a run step.
   * OWNERSHIP host; LIFETIME until the invocation ends. */
  herald_str (*idempotency_key)(herald_call* call);

  /* Non-zero once the run is cancelled or the step's deadline has passed: stop and fail. */
  int32_t (*cancelled)(herald_call* call);

  /* The invocation's context as JSON: {"run_id", "step_id", "item", "attempt", "workspace_id",
   * "idempotency_key", "deadline_ms" (time left, absent when unbounded), "plugin"}.
   * OWNERSHIP host; LIFETIME until the invocation ends. */
  herald_str (*context)(herald_call* call);

  /* The invocation's result: call exactly one of these, once, before returning. set_output
   * takes any JSON value; the entry point then returns HERALD_OK. set_error takes a
   * herald_error; the entry point then returns HERALD_FAILED.
   * output_json, *error: OWNERSHIP plugin; copied during the call. */
  void (*set_output)(herald_call* call, const char* output_json, size_t output_size);
  void (*set_error)(herald_call* call, const herald_error* error);

  /* -- 1.1 -- */

  /* A small key-value store of the plugin's, scoped to the plugin and the run's workspace: a
   * polling cursor, a cached access token. Keys are 1 to 256 bytes; values are JSON text of at
   * most 64 KiB. A write happens at once: it stays even when the invocation then fails.
   * kv_get: HERALD_OK: *value = the stored JSON text, or an empty string (size 0) when there is
   *   no such entry (or it expired). HERALD_FAILED: *value = an error object.
   * kv_set: ttl_seconds 0: kept until deleted or replaced; > 0: gone after that many seconds.
   * kv_delete: HERALD_OK whether or not there was an entry.
   * kv_set, kv_delete: HERALD_FAILED: *error = an error object (*error may be NULL).
   * key, value_json: OWNERSHIP plugin; read during the call only.
   * *value, *error: OWNERSHIP host; LIFETIME until the invocation ends. */
  int32_t (*kv_get)(herald_call* call, const char* key, size_t key_size, herald_str* value);
  int32_t (*kv_set)(herald_call* call, const char* key, size_t key_size, const char* value_json,
                    size_t value_size, int64_t ttl_seconds, herald_str* error);
  int32_t (*kv_delete)(herald_call* call, const char* key, size_t key_size, herald_str* error);
} herald_host_api;

/* True when the host table has `member` (a function added after 1.0 is absent on older hosts). */
#define HERALD_HOST_HAS(host, member)                                            \
  ((host)->size >= offsetof(herald_host_api, member) + sizeof((host)->member) && \
   (host)->member != NULL)

/* A capability's entry point: reads `input` (JSON, the step's rendered `with:`), calls
 * host->set_output or host->set_error once, and returns HERALD_OK or HERALD_FAILED to match.
 * Called from any of Herald's worker threads, possibly concurrently: must be thread-safe. Must
 * not throw (C++), longjmp out, or keep `call`, `host` pointers of the call, or `input`.
 * input: OWNERSHIP host; LIFETIME until the entry point returns; NUL-terminated.
 * user_data: the capability's own `user_data`, passed back as given. */
typedef int32_t (*herald_invoke_fn)(void* user_data, const herald_host_api* host, herald_call* call,
                                    const char* input, size_t input_size);

/* One capability.
 * OWNERSHIP: the plugin's, and every string in it. LIFETIME: must stay valid and unchanged for
 * the life of the process (static data is the usual choice): the host keeps pointers to it and
 * never unloads the library. */
typedef struct herald_capability {
  size_t size;              /* sizeof(herald_capability) as the plugin was built */
  const char* name;         /* namespaced: "<plugin>.<name>", lower-case [a-z0-9_.-] */
  int32_t kind;             /* HERALD_KIND_* */
  const char* description;  /* one line, for `herald plugins list` */
  const char* input_schema; /* JSON Schema (draft 7) of the input, as JSON text; NULL: any input.
                               Herald checks `with:` against it when a workflow is validated or
                               deployed, and the rendered input before each call. */
  herald_invoke_fn on_invoke;
  void* user_data; /* passed to on_invoke as is */
} herald_capability;

/* Called once, after the version check and before any capability: set up shared state, read
 * the environment, and on failure call host->set_error and return HERALD_FAILED (the plugin is
 * then refused with that message). NULL: nothing to do. */
typedef int32_t (*herald_init_fn)(const herald_host_api* host, herald_call* call);

/* What herald_plugin_entry returns.
 * OWNERSHIP: the plugin's, and everything it points to. LIFETIME: the life of the process. */
typedef struct herald_plugin_descriptor {
  size_t size; /* sizeof(herald_plugin_descriptor) as the plugin was built */
  uint16_t abi_major, abi_minor, abi_patch; /* HERALD_ABI_VERSION_* the plugin was built with */

  const char* name;        /* lower-case [a-z0-9_-], unique among loaded plugins */
  const char* version;     /* the plugin's semantic version, e.g. "1.2.0" */
  const char* description; /* one line */
  const herald_capability* const* capabilities; /* capability_count pointers */
  size_t capability_count;
  herald_init_fn on_init; /* may be NULL */
} herald_plugin_descriptor;

/* The one exported function. Must do nothing but return the descriptor (the host has not
 * checked the version yet). OWNERSHIP of the result: the plugin's (see above). */
typedef const herald_plugin_descriptor* (*herald_plugin_entry_fn)(void);

/* Declares the entry point with the right name, linkage and visibility:
 *   HERALD_PLUGIN_ENTRY { return &descriptor; } */
#ifdef __cplusplus
#define HERALD_EXTERN_C extern "C"
#else
#define HERALD_EXTERN_C
#endif
#define HERALD_PLUGIN_ENTRY \
  HERALD_EXTERN_C HERALD_PLUGIN_EXPORT const herald_plugin_descriptor* herald_plugin_entry(void)

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HERALD_PLUGIN_H */
