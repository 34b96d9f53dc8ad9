/* Broken test plugins, in plain C (which also proves the header is C): one shared library per
 * HERALD_TEST_CASE_* definition, each wrong in one way the loader must report clearly. */
#include <herald/plugin.h>

#include <string.h>

/* Each case uses only some of what follows. */
#define MAYBE_UNUSED __attribute__((unused))

MAYBE_UNUSED static int32_t answer_invalid_json(void* user_data, const herald_host_api* host,
                                                herald_call* call, const char* input,
                                                size_t input_size) {
  (void)user_data;
  (void)input;
  (void)input_size;
  static const char kText[] = "{\"unterminated\": ";
  host->set_output(call, kText, sizeof kText - 1);
  return HERALD_OK;
}

MAYBE_UNUSED static int32_t answer_empty(void* user_data, const herald_host_api* host,
                                         herald_call* call, const char* input, size_t input_size) {
  (void)user_data;
  (void)input;
  (void)input_size;
  host->set_output(call, "{}", 2);
  return HERALD_OK;
}

MAYBE_UNUSED static int32_t answer_nothing(void* user_data, const herald_host_api* host,
                                           herald_call* call, const char* input,
                                           size_t input_size) {
  (void)user_data;
  (void)host;
  (void)call;
  (void)input;
  (void)input_size;
  return HERALD_OK; /* breaks the contract: no set_output */
}

MAYBE_UNUSED static int32_t refuse_init(const herald_host_api* host, herald_call* call) {
  herald_error error;
  memset(&error, 0, sizeof error);
  error.size = sizeof error;
  error.code = "failed_precondition";
  error.message = "TESTCASE_API_KEY is not set";
  error.retry_after_ms = -1;
  host->set_error(call, &error);
  return HERALD_FAILED;
}

#if defined(HERALD_TEST_CASE_bad_schema)
#define SCHEMA "{\"type\": \"strin\"}"
#elif defined(HERALD_TEST_CASE_schema_not_json)
#define SCHEMA "{\"type\": "
#else
#define SCHEMA "{\"type\": \"object\"}"
#endif

#if defined(HERALD_TEST_CASE_dup_capability)
#define PLUGIN_NAME "testgood"
#define CAPABILITY_NAME "testgood.echo"
#else
#define PLUGIN_NAME "testcase"
#define CAPABILITY_NAME "testcase.run"
#endif

MAYBE_UNUSED static const herald_capability kRun = {sizeof(herald_capability),
                                                    CAPABILITY_NAME,
                                                    HERALD_KIND_STEP,
                                                    "a test capability",
                                                    SCHEMA,
#if defined(HERALD_TEST_CASE_bad_json)
                                                    answer_invalid_json,
#elif defined(HERALD_TEST_CASE_no_output)
                                                     answer_nothing,
#else
                                                     answer_empty,
#endif
                                                    NULL};
MAYBE_UNUSED static const herald_capability kOther = {sizeof(herald_capability),
                                                      "testcase.other",
                                                      HERALD_KIND_STEP,
                                                      "another",
                                                      NULL,
                                                      answer_empty,
                                                      NULL};
MAYBE_UNUSED static const herald_capability* const kCapabilities[] = {&kRun, &kOther};

MAYBE_UNUSED static const herald_plugin_descriptor kDescriptor = {
    sizeof(herald_plugin_descriptor),
#if defined(HERALD_TEST_CASE_abi_major)
    HERALD_ABI_VERSION_MAJOR + 1,
    0,
    0,
#elif defined(HERALD_TEST_CASE_abi_minor)
    HERALD_ABI_VERSION_MAJOR,
    HERALD_ABI_VERSION_MINOR + 1,
    0,
#else
    HERALD_ABI_VERSION_MAJOR,
    HERALD_ABI_VERSION_MINOR,
    HERALD_ABI_VERSION_PATCH + 7,
#endif
    PLUGIN_NAME,
    "0.1.0",
    "a broken test plugin",
    kCapabilities,
#if defined(HERALD_TEST_CASE_dup_capability)
    1,
#else
    2,
#endif
#if defined(HERALD_TEST_CASE_init_fails)
    refuse_init,
#else
    NULL,
#endif
};

#if !defined(HERALD_TEST_CASE_no_entry)
HERALD_PLUGIN_ENTRY {
#if defined(HERALD_TEST_CASE_null_descriptor)
  return NULL;
#else
  return &kDescriptor;
#endif
}
#else
/* Exported, but not the entry point the host looks for. */
HERALD_PLUGIN_EXPORT const herald_plugin_descriptor* herald_plugin_entry_v0(void) {
  return &kDescriptor;
}
#endif
