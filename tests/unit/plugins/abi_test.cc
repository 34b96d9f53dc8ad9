// The ABI header and its version move together: sdk/abi/plugin-abi-history.txt records, for each
// ABI version, a hash of sdk/include/herald/plugin.h's declarations (comments and whitespace
// left out, so documentation can improve freely). Changing a declaration without bumping
// HERALD_ABI_VERSION_* fails here; so does bumping without recording the new hash.
#include <herald/plugin.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The header's tokens: comments removed (string literals kept whole), whitespace runs as one
// space.
std::string declarations(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 2, "/*") == 0) {
      size_t end = text.find("*/", i + 2);
      i = end == std::string::npos ? text.size() : end + 2;
      out += ' ';
    } else if (text.compare(i, 2, "//") == 0) {
      size_t end = text.find('\n', i);
      i = end == std::string::npos ? text.size() : end;
      out += ' ';
    } else if (text[i] == '"') {
      size_t j = i + 1;
      while (j < text.size() && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
      out += text.substr(i, j + 1 - i);
      i = j + 1;
    } else {
      out += text[i++];
    }
  }
  std::string squeezed;
  std::istringstream words(out);
  std::string word;
  while (words >> word) squeezed += (squeezed.empty() ? "" : " ") + word;
  return squeezed;
}

std::string fnv1a64(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash));
  return out;
}

std::string current_version() {
  return std::to_string(HERALD_ABI_VERSION_MAJOR) + "." + std::to_string(HERALD_ABI_VERSION_MINOR) +
         "." + std::to_string(HERALD_ABI_VERSION_PATCH);
}

TEST(PluginAbi, HeaderMatchesTheHashRecordedForItsVersion) {
  const std::string header = read(HERALD_SOURCE_DIR "/sdk/include/herald/plugin.h");
  ASSERT_FALSE(header.empty());
  const std::string history = read(HERALD_SOURCE_DIR "/sdk/abi/plugin-abi-history.txt");
  ASSERT_FALSE(history.empty());
  std::map<std::string, std::string> hashes;    // version -> hash
  std::map<std::string, std::string> versions;  // hash -> version
  std::istringstream lines(history);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string version, hash;
    fields >> version >> hash;
    ASSERT_FALSE(hash.empty()) << "malformed line in plugin-abi-history.txt: " << line;
    EXPECT_TRUE(hashes.emplace(version, hash).second) << "version " << version << " recorded twice";
    EXPECT_TRUE(versions.emplace(hash, version).second)
        << "versions " << versions[hash] << " and " << version << " record the same header";
  }
  const std::string hash = fnv1a64(declarations(header));
  auto recorded = hashes.find(current_version());
  ASSERT_NE(recorded, hashes.end())
      << "ABI " << current_version() << " is not in sdk/abi/plugin-abi-history.txt; append \""
      << current_version() << " " << hash << "\" (and never edit an existing line)";
  EXPECT_EQ(recorded->second, hash)
      << "sdk/include/herald/plugin.h changed but HERALD_ABI_VERSION_* did not: bump the minor "
         "version for an addition at the end of a struct or of herald_host_api, the major for "
         "anything else, then append the new version and hash "
      << hash << " to sdk/abi/plugin-abi-history.txt";
}

TEST(PluginAbi, NormalisationIgnoresCommentsAndLayoutOnly) {
  EXPECT_EQ(declarations("int  a; /* x */ // y\n int b;"), declarations("int a;\n\n int b;"));
  EXPECT_NE(declarations("int a;"), declarations("long a;"));
  EXPECT_NE(declarations("const char* s = \"/* not a comment */\";"),
            declarations("const char* s = \"\";"));
}

TEST(PluginAbi, StructsStartWithTheirSize) {
  EXPECT_EQ(offsetof(herald_plugin_descriptor, size), 0u);
  EXPECT_EQ(offsetof(herald_capability, size), 0u);
  EXPECT_EQ(offsetof(herald_host_api, size), 0u);
  EXPECT_EQ(offsetof(herald_error, size), 0u);
  EXPECT_EQ(offsetof(herald_plugin_descriptor, abi_major), sizeof(size_t));
}

}  // namespace
