// The `herald` binary as a user drives it: run, validate, schema, runs list/show, resume, flags,
// exit codes, and bad input on purpose.
#include <gtest/gtest.h>

#include "tests/support/herald_command.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

class CliTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> env() const { return {{"HERALD_DATA_DIR", (dir_ / "data").string()}}; }
  CommandResult herald(const std::vector<std::string>& args) { return run_herald(args, env()); }
  std::string example(const std::string& name) const {
    return (std::filesystem::path(HERALD_SOURCE_DIR) / "examples" / "workflows" / name).string();
  }
  TempDir dir_{"herald-cli-test"};
};

TEST_F(CliTest, VersionAndHelp) {
  auto version = herald({"--version"});
  EXPECT_EQ(version.code(), 0);
  EXPECT_EQ(version.out.rfind("herald ", 0), 0u) << version.out;
  auto help = herald({"--help"});
  EXPECT_EQ(help.code(), 0);
  EXPECT_NE(help.out.find("validate"), std::string::npos);
  for (auto command : {"run", "validate", "resume"}) {
    auto sub = herald({command, "--help"});
    EXPECT_EQ(sub.code(), 0) << command;
    EXPECT_NE(sub.out.find("Usage: herald"), std::string::npos) << command;
  }
  auto runs_help = herald({"runs", "show", "--help"});
  EXPECT_EQ(runs_help.code(), 0);
}

TEST_F(CliTest, UnknownCommandsAndFlagsAreClearErrors) {
  auto unknown = herald({"launch"});
  EXPECT_EQ(unknown.code(), 2);
  EXPECT_NE(unknown.err.find("unknown command 'launch'"), std::string::npos) << unknown.err;
  auto flag = herald({"run", example("hello.yaml"), "--inptu", "x=1"});
  EXPECT_EQ(flag.code(), 2);
  EXPECT_NE(flag.err.find("unknown flag '--inptu'"), std::string::npos) << flag.err;
  auto missing_value = herald({"runs", "list", "--state"});
  EXPECT_EQ(missing_value.code(), 2);
  auto bad_state = herald({"runs", "list", "--state", "sleeping"});
  EXPECT_EQ(bad_state.code(), 2);
  EXPECT_NE(bad_state.err.find("unknown state 'sleeping'"), std::string::npos);
}

TEST_F(CliTest, CronNextPrintsLocalTimesWithOffsets) {
  // 02:30 does not exist in Paris on 2026-03-29 (spring forward): it fires at 03:30 summer time.
  auto next = herald({"cron", "next", "30 2 * * *", "--tz", "Europe/Paris", "--from",
                      "2026-03-27T12:00:00Z", "-n", "3"});
  ASSERT_EQ(next.code(), 0) << next.err;
  EXPECT_EQ(next.out, "2026-03-28T02:30:00+01:00\n2026-03-29T03:30:00+02:00\n2026-03-30T02:30:00+02:00\n");
  auto bad = herald({"cron", "next", "61 * * * *"});
  EXPECT_EQ(bad.code(), 2);
  EXPECT_NE(bad.err.find("minute"), std::string::npos) << bad.err;
  EXPECT_EQ(herald({"cron", "next", "* * * * *", "--tz", "Nowhere/City"}).code(), 2);
}

TEST_F(CliTest, SchemaIsJson) {
  auto schema = herald({"schema"});
  ASSERT_EQ(schema.code(), 0);
  Json parsed = Json::parse(schema.out, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded());
  EXPECT_TRUE(parsed.contains("properties"));
}

TEST_F(CliTest, ValidateReportsEveryErrorWithItsPlace) {
  auto good = herald({"validate", example("hello.yaml"), example("content-plan.yaml")});
  EXPECT_EQ(good.code(), 0) << good.err;
  auto file = dir_.write("bad.yaml",
                         "id: bad\n"
                         "steps:\n"
                         "  - id: a\n"
                         "    uses: sett\n"
                         "  - id: b\n"
                         "    uses: set\n"
                         "    timeout: 10 minutes\n");
  auto bad = herald({"validate", file.string()});
  EXPECT_EQ(bad.code(), 2);
  EXPECT_NE(bad.err.find(file.string() + ":4:"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("steps[0].uses"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find(file.string() + ":7:"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("steps[1].timeout"), std::string::npos) << bad.err;

  auto json = herald({"validate", "--json", file.string()});
  EXPECT_EQ(json.code(), 2);
  Json report = Json::parse(json.out, nullptr, false);
  ASSERT_TRUE(report.is_array()) << json.out;
  EXPECT_FALSE(report[0]["valid"].get<bool>());
  EXPECT_GE(report[0]["errors"].size(), 2u);

  auto missing = herald({"validate", (dir_ / "nope.yaml").string()});
  EXPECT_EQ(missing.code(), 2);
  EXPECT_NE(missing.err.find("nope.yaml"), std::string::npos);

  auto garbage = dir_.write("garbage.yaml", std::string("\x01\x02{{{: [", 8));
  EXPECT_EQ(herald({"validate", garbage.string()}).code(), 2);
}

TEST_F(CliTest, RunPrintsProgressAndTheTimelineIsStored) {
  auto run = herald({"run", example("hello.yaml"), "--input", "name=Ada"});
  ASSERT_EQ(run.code(), 0) << run.out << run.err;
  // Not a terminal: one JSON object per line.
  auto lines = json_lines(run.out);
  ASSERT_FALSE(lines.empty()) << run.out;
  std::string run_id = lines.front()["run"];
  EXPECT_EQ(lines.back()["state"], "succeeded");
  bool saw_log = false;
  for (const auto& line : lines) {
    if (line["state"] == "log") saw_log = line["message"].get<std::string>().find("HELLO, ADA!") != std::string::npos;
  }
  EXPECT_TRUE(saw_log) << run.out;

  auto list = herald({"runs", "list", "--json"});
  ASSERT_EQ(list.code(), 0);
  Json runs = Json::parse(list.out);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["id"], run_id);
  EXPECT_EQ(runs[0]["state"], "succeeded");

  auto show = herald({"runs", "show", run_id, "--json"});
  ASSERT_EQ(show.code(), 0) << show.err;
  Json timeline = Json::parse(show.out);
  ASSERT_EQ(timeline["steps"].size(), 3u);
  EXPECT_EQ(timeline["steps"][1]["output"]["loud"], "HELLO, ADA!");
  EXPECT_EQ(timeline["steps"][1]["timeline"].size(), 1u);

  auto text = herald({"runs", "show", run_id});
  EXPECT_EQ(text.code(), 0);
  EXPECT_NE(text.out.find("succeeded"), std::string::npos);

  auto filtered = herald({"runs", "list", "--workflow", "nope", "--json"});
  EXPECT_EQ(Json::parse(filtered.out).size(), 0u);
  EXPECT_EQ(herald({"runs", "show", "01NOTARUN"}).code(), 2);
}

TEST_F(CliTest, ExitCodesSayWhatHappened) {
  auto failing = dir_.write("fail.yaml",
                            "id: fail\n"
                            "steps:\n"
                            "  - id: boom\n"
                            "    uses: script\n"
                            "    with: { code: 'error(\"no luck\")' }\n");
  auto failed = herald({"run", failing.string()});
  EXPECT_EQ(failed.code(), 1) << failed.out << failed.err;
  EXPECT_NE(failed.out.find("no luck"), std::string::npos) << failed.out;

  auto required = dir_.write("required.yaml",
                             "id: req\n"
                             "inputs:\n"
                             "  topic: { type: string, required: true }\n"
                             "steps:\n"
                             "  - { id: a, uses: set, with: { t: '{{ inputs.topic }}' } }\n");
  auto missing = herald({"run", required.string()});
  EXPECT_EQ(missing.code(), 2);
  EXPECT_NE(missing.err.find("'topic'"), std::string::npos) << missing.err;
  auto unknown = herald({"run", required.string(), "--input", "topic=x", "--input", "colour=red"});
  EXPECT_EQ(unknown.code(), 2);
  EXPECT_NE(unknown.err.find("unknown input 'colour'"), std::string::npos) << unknown.err;
  auto malformed = herald({"run", required.string(), "--input", "topic"});
  EXPECT_EQ(malformed.code(), 2);
  EXPECT_EQ(herald({"run", (dir_ / "missing.yaml").string()}).code(), 2);
}

TEST_F(CliTest, ConfigFileAndEnvironmentOverride) {
  auto config = dir_.write("herald.yaml", "data_dir: " + (dir_ / "from-config").string() + "\nworkers: 3\n");
  auto run = run_herald({"run", example("hello.yaml"), "--config", config.string()}, {});
  ASSERT_EQ(run.code(), 0) << run.err;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "from-config" / "herald.db"));

  auto broken = dir_.write("broken.yaml", "data_dir: [unclosed\n");
  auto bad = run_herald({"runs", "list", "--config", broken.string()}, {});
  EXPECT_EQ(bad.code(), 2);
  EXPECT_NE(bad.err.find("broken.yaml:"), std::string::npos) << bad.err;
  auto typo = dir_.write("typo.yaml", "data_dri: x\n");
  auto unknown = run_herald({"runs", "list", "--config", typo.string()}, {});
  EXPECT_EQ(unknown.code(), 2);
  EXPECT_NE(unknown.err.find("unknown setting 'data_dri'"), std::string::npos) << unknown.err;
}

TEST_F(CliTest, SecretsFromTheEnvironmentNeverReachTheStore) {
  const std::string secret = "planted-secret-4f9a2c";
  auto file = dir_.write("secret.yaml",
                         "id: secret\n"
                         "steps:\n"
                         "  - id: use\n"
                         "    uses: set\n"
                         "    with: { auth: 'Bearer {{ secrets.TOKEN }}' }\n"
                         "  - id: say\n"
                         "    uses: log\n"
                         "    with: { message: '{{ steps.use.output.auth }}' }\n");
  auto e = env();
  e["HERALD_SECRET_TOKEN"] = secret;
  auto run = run_herald({"run", file.string()}, e);
  ASSERT_EQ(run.code(), 0) << run.err;
  EXPECT_EQ(run.out.find(secret), std::string::npos);
  EXPECT_EQ(run.err.find(secret), std::string::npos);
  std::string db = read_file(dir_ / "data" / "herald.db") + read_file(dir_ / "data" / "herald.db-wal");
  EXPECT_FALSE(db.empty());
  EXPECT_EQ(db.find(secret), std::string::npos);
  auto runs = Json::parse(herald({"runs", "list", "--json"}).out);
  auto show = herald({"runs", "show", runs[0]["id"], "--json"});
  EXPECT_EQ(show.out.find(secret), std::string::npos);
  EXPECT_NE(show.out.find("[redacted]"), std::string::npos);
}

}  // namespace
}  // namespace herald::testing
