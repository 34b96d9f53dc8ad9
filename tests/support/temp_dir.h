// TempDir: a fresh directory for one test (its SQLite files, workflow files, child process
// output), created with mkdtemp under $TMPDIR (or /tmp) and removed with everything in it when
// the TempDir goes out of scope. Set HERALD_KEEP_TEMP=1 to keep it for a post-mortem.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace herald::testing {

class TempDir {
 public:
  // Throws std::runtime_error when the directory cannot be created.
  explicit TempDir(std::string_view prefix = "herald-test");
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string string() const { return path_.string(); }
  std::filesystem::path operator/(std::string_view relative) const { return path_ / relative; }

  // Writes `content` to `relative` (creating parent folders) and returns the full path.
  std::filesystem::path write(std::string_view relative, std::string_view content) const;
  // The content of `relative`; throws std::runtime_error when it cannot be read.
  std::string read(std::string_view relative) const;

  // Leaves the directory in place at destruction.
  void keep() { keep_ = true; }

 private:
  void remove() noexcept;

  std::filesystem::path path_;
  bool keep_ = false;
};

// The whole content of a file, "" when it does not exist or cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace herald::testing
