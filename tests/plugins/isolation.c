/* A plugin that misbehaves in the ways process isolation must survive (tests/unit/plugins/
 * isolation_test.cc, tests/integration/plugin_isolation_test.cc), plus an echo for the call
 * overhead benchmark. Plain C. Only ever called in a `herald plugin-host` child: most of these
 * would take the engine down in-process. */
#include <herald/plugin.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int32_t echo(void* user_data, const herald_host_api* host, herald_call* call,
                    const char* input, size_t input_size) {
  (void)user_data;
  host->set_output(call, input, input_size);
  return HERALD_OK;
}

static int32_t crash(void* user_data, const herald_host_api* host, herald_call* call,
                     const char* input, size_t input_size) {
  (void)user_data;
  (void)host;
  (void)call;
  (void)input;
  (void)input_size;
  raise(SIGSEGV);
  return HERALD_FAILED;
}

/* Segfaults unless the file named by the input's "marker" exists, which it creates first: the
 * first attempt crashes, the retry (in a new host) succeeds. */
static int32_t crash_once(void* user_data, const herald_host_api* host, herald_call* call,
                          const char* input, size_t input_size) {
  (void)user_data;
  (void)input_size;
  const char* key = strstr(input, "\"marker\":\"");
  char path[1024] = {0};
  if (key != NULL) {
    key += strlen("\"marker\":\"");
    const char* end = strchr(key, '"');
    size_t size = end != NULL ? (size_t)(end - key) : 0;
    if (size >= sizeof path) size = sizeof path - 1;
    memcpy(path, key, size);
  }
  if (path[0] == '\0' || access(path, F_OK) != 0) {
    FILE* file = path[0] != '\0' ? fopen(path, "w") : NULL;
    if (file != NULL) fclose(file);
    raise(SIGSEGV);
  }
  static const char kDone[] = "{\"survived\": true}";
  host->set_output(call, kDone, sizeof kDone - 1);
  return HERALD_OK;
}

static int32_t hang(void* user_data, const herald_host_api* host, herald_call* call,
                    const char* input, size_t input_size) {
  (void)user_data;
  (void)host;
  (void)call;
  (void)input;
  (void)input_size;
  for (volatile int spin = 0;; spin = spin + 1) {
  }
  return HERALD_FAILED;
}

/* Writes a frame header claiming 2 GB, then text, on the host's channel (fd 3). */
static int32_t garbage(void* user_data, const herald_host_api* host, herald_call* call,
                       const char* input, size_t input_size) {
  (void)user_data;
  (void)input;
  (void)input_size;
  static const char kGarbage[] = "\xff\xff\xff\x7fnot a frame at all";
  if (write(3, kGarbage, sizeof kGarbage - 1) < 0) return HERALD_FAILED;
  host->set_output(call, "{}", 2);
  return HERALD_OK;
}

static int32_t quit(void* user_data, const herald_host_api* host, herald_call* call,
                    const char* input, size_t input_size) {
  (void)user_data;
  (void)host;
  (void)call;
  (void)input;
  (void)input_size;
  _exit(7);
}

/* Allocates (and touches) 8 MB blocks it never frees, until an allocation fails or 8 GB are
 * held; answers how many megabytes it holds. */
static int32_t leak(void* user_data, const herald_host_api* host, herald_call* call,
                    const char* input, size_t input_size) {
  (void)user_data;
  (void)input;
  (void)input_size;
  const size_t block = 8u << 20;
  size_t held = 0;
  for (int i = 0; i < 1024; ++i) {
    char* memory = malloc(block);
    if (memory == NULL) break;
    memset(memory, 1, block);
    held += block;
  }
  char answer[64];
  int size = snprintf(answer, sizeof answer, "{\"leaked_mb\": %zu}", held >> 20);
  host->set_output(call, answer, (size_t)size);
  return HERALD_OK;
}

#define CAPABILITY(var, cap_name, fn, text) \
  static const herald_capability var = {    \
      sizeof(herald_capability), cap_name, HERALD_KIND_STEP, text, NULL, fn, NULL}

CAPABILITY(kEcho, "testiso.echo", echo, "Answers its input");
CAPABILITY(kCrash, "testiso.crash", crash, "Segfaults");
CAPABILITY(kCrashOnce, "testiso.crash_once", crash_once, "Segfaults once per marker file");
CAPABILITY(kHang, "testiso.hang", hang, "Loops forever");
CAPABILITY(kGarbage, "testiso.garbage", garbage, "Writes garbage on the host's channel");
CAPABILITY(kExit, "testiso.exit", quit, "Exits the process with status 7");
CAPABILITY(kLeak, "testiso.leak", leak, "Allocates until it cannot, never frees");

static const herald_capability* const kCapabilities[] = {
    &kEcho, &kCrash, &kCrashOnce, &kHang, &kGarbage, &kExit, &kLeak};

static const herald_plugin_descriptor kDescriptor = {
    sizeof(herald_plugin_descriptor),
    HERALD_ABI_VERSION_MAJOR,
    HERALD_ABI_VERSION_MINOR,
    HERALD_ABI_VERSION_PATCH,
    "testiso",
    "0.1.0",
    "Misbehaves for the isolation tests",
    kCapabilities,
    sizeof kCapabilities / sizeof kCapabilities[0],
    NULL,
};

HERALD_PLUGIN_ENTRY {
  return &kDescriptor;
}
