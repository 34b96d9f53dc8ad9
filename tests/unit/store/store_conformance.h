// The store conformance suite: every Store implementation must pass the tests in
// store_conformance_test.cc. They talk to the Store interface only; an implementation joins the
// suite by providing a StoreKind (a factory of harnesses) and instantiating the suite with it, as
// sqlite_store_test.cc does:
//
//   INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance,
//                            ::testing::Values(StoreKind{"postgres", make_postgres_harness}),
//                            StoreKindName{});
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>

#include "engine/store/store.h"

namespace herald::store::testing {

// One fresh, empty store for one test, which the test may open more than once.
class StoreHarness {
 public:
  virtual ~StoreHarness() = default;
  // A handle on the harness's store; the first call creates it empty. Where the store outlives
  // its handles (a file, a server), later calls reach the same data.
  virtual Result<std::unique_ptr<Store>> open() = 0;
  // False when the data lives only as long as the handle (an in-memory database): tests that
  // close and reopen the store are skipped.
  virtual bool persistent() const = 0;
};

struct StoreKind {
  std::string name;
  std::function<std::unique_ptr<StoreHarness>()> make;
};

// Names the parameter in test listings ("GetParam() = file") instead of dumping its bytes.
inline void PrintTo(const StoreKind& kind, std::ostream* out) {
  *out << kind.name;
}

struct StoreKindName {
  std::string operator()(const ::testing::TestParamInfo<StoreKind>& info) const {
    return info.param.name;
  }
};

// A temporary folder, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Fixed times with a millisecond part, so precision loss would show.
inline TimePoint at(int64_t millis) {
  return TimePoint(std::chrono::milliseconds(millis));
}
inline constexpr int64_t kT0 = 1'700'000'000'123;

// The value of a Result the test needs, failing the test (and leaving it by an exception the
// test framework reports) when there is none.
template <typename T>
T value_of(Result<T> result) {
  EXPECT_TRUE(result.ok()) << result.error().message;
  if (!result.ok()) throw std::runtime_error(result.error().message);
  return std::move(result).value();
}

#define ASSERT_OK(expr)                                                    \
  do {                                                                     \
    auto status_ = (expr);                                                 \
    ASSERT_TRUE(status_.ok()) << #expr << ": " << status_.error().message; \
  } while (false)

#define EXPECT_CODE(expr, expected_code)                                                          \
  do {                                                                                            \
    auto result_ = (expr);                                                                        \
    EXPECT_FALSE(result_.ok()) << #expr << " succeeded";                                          \
    if (!result_.ok()) {                                                                          \
      EXPECT_EQ(result_.error().code, expected_code) << #expr << ": " << result_.error().message; \
    }                                                                                             \
  } while (false)

class StoreConformance : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store& store() { return *store_; }
  StoreHarness& harness() { return *harness_; }
  // Closes the store and opens it again on the same data.
  void reopen();

  // A stored workflow version to hang runs on.
  int64_t version_id(const std::string& workflow_id = "wf", const std::string& workspace_id = "");
  // Commits a new run (queued, created at `created_at`) and returns it as stored.
  RunRecord insert_run(const std::string& id, const std::string& workflow_id = "wf",
                       RunState state = RunState::queued, const std::string& workspace_id = "");

 private:
  std::unique_ptr<StoreHarness> harness_;
  std::unique_ptr<Store> store_;
};

}  // namespace herald::store::testing
