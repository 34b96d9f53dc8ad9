#include "engine/cli/cli.h"

#include <csignal>
#include <fstream>
#include <algorithm>
#include <functional>
#include <tuple>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "engine/cli/args.h"
#include "engine/cli/command.h"
#include "engine/cli/config.h"
#include "engine/common/duration.h"
#include "engine/common/time.h"
#include "engine/runtime/engine.h"
#include "engine/steps/builtins.h"
#include "engine/triggers/cron.h"
#include "engine/triggers/time_zone.h"

namespace herald::cli {

namespace {

std::string format_ms(std::optional<std::chrono::milliseconds> duration) {
  if (!duration) return "";
  auto ms = duration->count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::ostringstream out;
  out.precision(ms < 60'000 ? 2 : 0);
  out << std::fixed << static_cast<double>(ms) / 1000.0 << "s";
  return out.str();
}

std::string step_label(const std::string& step_id, int item) {
  return item >= 0 ? step_id + "[" + std::to_string(item) + "]" : step_id;
}

// Prints progress lines: aligned text on a terminal, one JSON object per line otherwise.
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& out, bool json) : out_(out), json_(json) {}

  void operator()(const runtime::ProgressEvent& event) {
    std::lock_guard lock(mu_);
    if (json_) {
      Json line = {{"at", format_iso8601(event.at)}, {"run", event.run_id}, {"state", event.state}};
      if (!event.step_id.empty()) line["step"] = event.step_id;
      if (event.item >= 0) line["item"] = event.item;
      if (event.attempt > 0) line["attempt"] = event.attempt;
      if (event.duration) line["duration_ms"] = event.duration->count();
      if (event.error) line["error"] = event.error->to_json();
      if (!event.message.empty()) line["message"] = event.message;
      out_ << line.dump() << "\n" << std::flush;
      return;
    }
    std::string who = event.step_id.empty() ? "run " + event.run_id : step_label(event.step_id, event.item);
    std::string line = "  " + who;
    if (line.size() < 30) line.resize(30, ' ');
    line += " " + event.state;
    if (line.size() < 42) line.resize(42, ' ');
    line += " " + format_ms(event.duration);
    if (event.attempt > 1) line += "  (attempt " + std::to_string(event.attempt) + ")";
    if (!event.message.empty()) line += "  " + event.message;
    if (event.error) line += "\n      " + event.error->message;
    out_ << line << "\n" << std::flush;
  }

 private:
  std::mutex mu_;
  std::ostream& out_;
  bool json_;
};

// ---- herald validate ----------------------------------------------------------------------

int cmd_validate(const std::vector<std::string>& argv, Io& io) {
  std::vector<FlagSpec> specs = {
      {"json", false, false, "print diagnostics as JSON", ""},
      {"config", true, false, "configuration file, for plugins.paths (default ./herald.yaml)", "FILE"},
      {"help", false, false, "show this help", ""}};
  auto args = parse_args(argv, specs, "herald validate");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help") || args->positional.empty()) {
    (args->has("help") ? io.out : io.err)
        << "Usage: herald validate FILE...\n\nChecks workflow files and reports every problem as "
           "file:line:column: field: message.\n\n"
        << flags_help(specs);
    return args->has("help") ? kExitOk : kExitInvalid;
  }
  auto config = load_config(args->value("config").value_or(""));
  if (!config.ok()) return report(io, config.error());
  auto registry = step_registry(*config);
  if (!registry.ok()) return report(io, registry.error());
  auto options = runtime::workflow_parse_options(*registry);
  bool all_ok = true;
  Json report = Json::array();
  for (const auto& file : args->positional) {
    auto outcome = model::load_workflow_file(file, options);
    all_ok = all_ok && outcome.ok();
    if (args->has("json")) {
      Json entry = {{"file", file}, {"valid", outcome.ok()}, {"errors", Json::array()}};
      for (const auto& d : outcome.diagnostics) entry["errors"].push_back(d.to_json());
      report.push_back(entry);
      continue;
    }
    if (outcome.ok()) {
      io.out << file << ": ok (" << outcome.workflow->id << ", " << outcome.workflow->steps.size()
             << " steps)\n";
    } else {
      for (const auto& d : outcome.diagnostics) io.err << d.to_string() << "\n";
    }
  }
  if (args->has("json")) io.out << report.dump(2) << "\n";
  return all_ok ? kExitOk : kExitInvalid;
}

// ---- herald run ---------------------------------------------------------------------------

int cmd_run(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({
      {"input", true, true, "an input value", "NAME=VALUE"},
      {"inputs", true, false, "all inputs as one JSON object", "JSON"},
      {"json", false, false, "progress as JSON lines (the default when not on a terminal)", ""},
  });
  auto args = parse_args(argv, specs, "herald run");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald run FILE [--input NAME=VALUE]...\n\nRuns one workflow to completion in "
              "the foreground, durably: a crash or Ctrl-C leaves the run in the store for "
              "`herald resume`.\nExit code: 0 succeeded, 1 failed, 2 invalid workflow or inputs.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald run takes one workflow FILE");
  const std::string& file = args->positional[0];
  std::string read_error;
  std::string source = read_text_file(file, &read_error);
  if (!read_error.empty()) return usage_error(io, read_error);
  auto inputs = parse_input_flags(*args);
  if (!inputs.ok()) return usage_error(io, inputs.error().message);
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = opened->store;
  const Config& config = opened->config;

  bool json = args->has("json") || !io.interactive;
  ProgressPrinter printer(io.out, json);
  auto options = engine_options(config);
  options.own_runs_only = true;
  options.on_progress = [&printer](const runtime::ProgressEvent& e) { printer(e); };
  auto registry = step_registry(config);
  if (!registry.ok()) return report(io, registry.error());
  runtime::Engine engine(*store, *registry, options);
  auto run_id = engine.start_run(source, file, *inputs);
  if (!run_id.ok()) {
    io.err << run_id.error().message << "\n";
    return run_id.error().code == ErrorCode::invalid_argument ? kExitInvalid : kExitFailed;
  }
  auto record = engine.wait_for_run(*run_id);
  engine.shutdown();
  if (!record.ok()) {
    io.err << "error: " << record.error().message << "\n";
    return kExitFailed;
  }
  if (!json) {
    io.out << "\nrun " << record->id << " " << store::to_string(record->state)
           << ".  Timeline: herald runs show " << record->id << "\n";
  }
  return record->state == store::RunState::succeeded ? kExitOk : kExitFailed;
}

// ---- herald resume ------------------------------------------------------------------------

int cmd_resume(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({{"json", false, false, "progress as JSON lines", ""}});
  auto args = parse_args(argv, specs, "herald resume");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald resume\n\nContinues every unfinished run in the store (what a restart "
              "does) and returns when none is left, waiting ones included. It takes runs over from\n"
              "any engine, even one whose lease looks alive: run it after a crash, not next to a\n"
              "running `herald serve` or `herald worker`.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald resume takes no arguments");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = opened->store;
  const Config& config = opened->config;
  ProgressPrinter printer(io.out, args->has("json") || !io.interactive);
  auto options = engine_options(config);
  options.on_progress = [&printer](const runtime::ProgressEvent& e) { printer(e); };
  // After a crash the dead process's leases would hold its runs until they end.
  options.take_over_leases = true;
  auto registry = step_registry(config);
  if (!registry.ok()) return report(io, registry.error());
  runtime::Engine engine(*store, *registry, options);
  if (auto status = engine.resume_all(); !status.ok()) {
    io.err << "error: " << status.error().message << "\n";
    return kExitFailed;
  }
  auto idle = engine.wait_until_idle();
  engine.shutdown();
  if (!idle.ok()) {
    io.err << "error: " << idle.error().message << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

// ---- herald runs --------------------------------------------------------------------------

std::string time_or_dash(const std::optional<store::TimePoint>& time) {
  return time ? format_iso8601(*time) : "-";
}

Json run_json(const store::RunRecord& run) {
  Json json = {{"id", run.id},
               {"workspace", run.workspace_id},
               {"workflow", run.workflow_id},
               {"workflow_version_id", run.workflow_version_id},
               {"state", std::string(store::to_string(run.state))},
               {"inputs", run.inputs},
               {"trigger", run.trigger},
               {"created_at", format_iso8601(run.created_at)},
               {"started_at", run.started_at ? Json(format_iso8601(*run.started_at)) : Json()},
               {"finished_at", run.finished_at ? Json(format_iso8601(*run.finished_at)) : Json()}};
  if (!run.error.is_null()) json["error"] = run.error;
  return json;
}

int cmd_runs_list(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({
      {"workspace", true, false, "only runs of this workspace (HERALD_WORKSPACE)", "ID"},
      {"workflow", true, false, "only runs of this workflow", "ID"},
      {"state", true, false, "only runs in this state (queued, running, waiting, succeeded, failed, cancelled)", "STATE"},
      {"limit", true, false, "at most this many (default 50)", "N"},
      {"cursor", true, false, "runs older than this run id (for paging)", "RUN_ID"},
      {"json", false, false, "print JSON", ""},
  });
  auto args = parse_args(argv, specs, "herald runs list");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald runs list [--workspace ID] [--workflow ID] [--state STATE]\n\n"
              "Newest first; every workspace's runs (and those of `herald run`, workspace -) "
              "unless --workspace or HERALD_WORKSPACE names one.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  store::RunFilter filter;
  filter.workspace_id = workspace_of(*args);
  filter.workflow_id = args->value("workflow");
  filter.before_id = args->value("cursor");
  if (auto state = args->value("state")) {
    filter.state = store::parse_run_state(*state);
    if (!filter.state) {
      return usage_error(io, "unknown state '" + *state +
                                 "'; expected queued, running, waiting, succeeded, failed or cancelled");
    }
  }
  if (auto limit = args->value("limit")) {
    char* end = nullptr;
    long n = std::strtol(limit->c_str(), &end, 10);
    if (limit->empty() || *end != '\0' || n < 1 || n > 1000) return usage_error(io, "--limit must be 1..1000");
    filter.limit = static_cast<int>(n);
  }
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = opened->store;
  if (filter.workspace_id) {
    if (auto status = require_workspace(*store, *filter.workspace_id); !status.ok()) {
      return report(io, status.error());
    }
  }
  auto runs = store->list_runs(filter);
  if (!runs.ok()) {
    io.err << "error: " << runs.error().message << "\n";
    return kExitFailed;
  }
  if (args->has("json")) {
    Json list = Json::array();
    for (const auto& run : *runs) list.push_back(run_json(run));
    io.out << list.dump(2) << "\n";
    return kExitOk;
  }
  io.out << "RUN                         WORKSPACE         WORKFLOW                  STATE       CREATED                   DURATION\n";
  for (const auto& run : *runs) {
    std::string line = run.id + "  ";
    std::string workspace = run.workspace_id.empty() ? "-" : run.workspace_id;
    workspace.resize(std::max<size_t>(workspace.size(), 16), ' ');
    line += workspace + "  ";
    std::string wf = run.workflow_id;
    wf.resize(std::max<size_t>(wf.size(), 24), ' ');
    std::string state(store::to_string(run.state));
    state.resize(10, ' ');
    line += wf + "  " + state + "  " + format_iso8601(run.created_at) + "  ";
    if (run.started_at && run.finished_at) {
      line += format_ms(std::chrono::duration_cast<std::chrono::milliseconds>(*run.finished_at - *run.started_at));
    }
    io.out << line << "\n";
  }
  if (runs->size() == static_cast<size_t>(filter.limit)) {
    io.out << "(more: --cursor " << runs->back().id << ")\n";
  }
  return kExitOk;
}

int cmd_runs_show(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({{"json", false, false, "print JSON", ""}});
  auto args = parse_args(argv, specs, "herald runs show");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald runs show RUN_ID\n\nThe run's timeline: each step, its attempts, "
              "durations, inputs, outputs and errors (secrets redacted).\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald runs show takes one RUN_ID");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = opened->store;
  auto run = store->get_run(args->positional[0]);
  if (!run.ok()) {
    io.err << "error: " << run.error().message << "\n";
    return run.error().code == ErrorCode::not_found ? kExitInvalid : kExitFailed;
  }
  auto steps = store->get_steps(run->id);
  auto attempts = store->get_attempts(run->id);
  if (!steps.ok() || !attempts.ok()) {
    io.err << "error: " << (!steps.ok() ? steps.error().message : attempts.error().message) << "\n";
    return kExitFailed;
  }
  // Steps in the order the workflow file gives them, on_error steps last.
  std::map<std::string, size_t> position;
  if (auto version = store->get_workflow_version(run->workflow_version_id); version.ok()) {
    auto parsed = model::parse_workflow(version->source, version->file_name, {});
    if (parsed.workflow) {
      for (size_t i = 0; i < parsed.workflow->steps.size(); ++i) position[parsed.workflow->steps[i].id] = i;
    }
  }
  std::stable_sort(steps->begin(), steps->end(), [&position](const store::StepRecord& a, const store::StepRecord& b) {
    auto key = [&position](const store::StepRecord& r) {
      auto it = position.find(r.step_id);
      return std::make_tuple(r.on_error, it == position.end() ? position.size() : it->second, r.item);
    };
    return key(a) < key(b);
  });
  if (args->has("json")) {
    Json json = run_json(*run);
    json["steps"] = Json::array();
    for (const auto& step : *steps) {
      Json s = {{"step", step.step_id},
                {"item", step.item},
                {"on_error", step.on_error},
                {"state", std::string(store::to_string(step.state))},
                {"attempts", step.attempt},
                {"input", step.input},
                {"output", step.output},
                {"error", step.error},
                {"idempotency_key", step.idempotency_key},
                {"started_at", time_or_dash(step.started_at)},
                {"finished_at", time_or_dash(step.finished_at)},
                {"timeline", Json::array()}};
      std::string attempt_id = (step.on_error ? "on_error." : "") + step.step_id;
      for (const auto& a : *attempts) {
        if (a.step_id != attempt_id || a.item != step.item) continue;
        Json entry = {{"attempt", a.attempt},
                      {"state", std::string(store::to_string(a.state))},
                      {"started_at", format_iso8601(a.started_at)},
                      {"finished_at", time_or_dash(a.finished_at)},
                      {"input", a.input},
                      {"output", a.output},
                      {"error", a.error}};
        if (!a.logs.is_null()) entry["logs"] = a.logs;
        if (a.finished_at) {
          entry["duration_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(*a.finished_at - a.started_at).count();
        }
        s["timeline"].push_back(entry);
      }
      json["steps"].push_back(s);
    }
    io.out << json.dump(2) << "\n";
    return kExitOk;
  }
  io.out << "run       " << run->id << "\n"
         << "workflow  " << run->workflow_id << " (version id " << run->workflow_version_id << ")\n"
         << "state     " << store::to_string(run->state) << "\n"
         << "created   " << format_iso8601(run->created_at) << "\n"
         << "started   " << time_or_dash(run->started_at) << "\n"
         << "finished  " << time_or_dash(run->finished_at) << "\n"
         << "inputs    " << run->inputs.dump() << "\n";
  if (!run->error.is_null()) io.out << "error     " << run->error.value("message", run->error.dump()) << "\n";
  io.out << "\nsteps\n";
  for (const auto& a : *attempts) {
    std::string label = step_label(a.step_id, a.item);
    std::string line = "  " + label;
    if (line.size() < 30) line.resize(30, ' ');
    std::string state(store::to_string(a.state));
    line += " #" + std::to_string(a.attempt) + "  " + state;
    if (line.size() < 48) line.resize(48, ' ');
    if (a.finished_at) line += format_ms(std::chrono::duration_cast<std::chrono::milliseconds>(*a.finished_at - a.started_at));
    io.out << line << "\n";
    if (!a.input.is_null()) io.out << "      input:  " << a.input.dump() << "\n";
    if (!a.output.is_null()) io.out << "      output: " << a.output.dump() << "\n";
    if (!a.error.is_null()) io.out << "      error:  " << a.error.value("message", a.error.dump()) << "\n";
    if (a.logs.is_array()) {
      for (const auto& line : a.logs) {
        io.out << "      log:    " << line.value("level", "info") << ": "
               << line.value("message", "") << "\n";
      }
    }
  }
  for (const auto& step : *steps) {
    if (step.state == store::StepState::skipped || step.state == store::StepState::cancelled ||
        step.state == store::StepState::pending) {
      io.out << "  " << step_label(step.step_id, step.item) << "  " << store::to_string(step.state) << "\n";
    }
  }
  return kExitOk;
}

int cmd_runs(const std::vector<std::string>& argv, Io& io) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") {
    (argv.empty() ? io.err : io.out) << "Usage: herald runs list|show ...\n\n"
                                        "  list    runs, newest first, with filters\n"
                                        "  show    one run's timeline\n";
    return argv.empty() ? kExitInvalid : kExitOk;
  }
  std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (argv[0] == "list") return cmd_runs_list(rest, io);
  if (argv[0] == "show") return cmd_runs_show(rest, io);
  return usage_error(io, "unknown command 'herald runs " + argv[0] + "'; expected list or show");
}

// ---- herald cron -------------------------------------------------------------------------

int cmd_cron(const std::vector<std::string>& argv, Io& io) {
  std::vector<FlagSpec> specs = {
      {"tz", true, false, "IANA time zone the expression is read in (default UTC)", "ZONE"},
      {"from", true, false, "list fire times after this ISO-8601 time (default now)", "TIME"},
      {"n", true, false, "how many fire times (default 5, at most 1000)", "COUNT"},
      {"help", false, false, "show this help", ""},
  };
  if (argv.empty() || argv[0] != "next") {
    if (!argv.empty() && (argv[0] == "--help" || argv[0] == "-h")) {
      io.out << "Usage: herald cron next \"EXPR\" [--tz ZONE] [--from TIME] [-n COUNT]\n";
      return kExitOk;
    }
    return usage_error(io, "expected 'herald cron next \"EXPR\"'; see 'herald cron --help'");
  }
  auto args = parse_args(std::vector<std::string>(argv.begin() + 1, argv.end()), specs, "herald cron next");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald cron next \"EXPR\" [--tz ZONE] [--from TIME] [-n COUNT]\n\n"
              "Prints the next fire times of a cron expression, one ISO-8601 time with its UTC offset "
              "per line.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald cron next takes one EXPR (quote it)");
  std::string zone = args->value("tz").value_or("UTC");
  auto from = store::Clock::now();
  if (auto text = args->value("from")) {
    auto parsed = parse_iso8601(*text);
    if (!parsed.ok()) return usage_error(io, "--from: " + parsed.error().message);
    from = *parsed;
  }
  long count = 5;
  if (auto text = args->value("n")) {
    char* end = nullptr;
    count = std::strtol(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0' || count < 1 || count > 1000) return usage_error(io, "-n must be 1..1000");
  }
  auto located = triggers::TimeZone::locate(zone);
  if (!located.ok()) return usage_error(io, located.error().message);
  auto times = triggers::next_fire_times(args->positional[0], zone, from, static_cast<size_t>(count));
  if (!times.ok()) return usage_error(io, times.error().message);
  for (const auto& time : *times) io.out << triggers::format_local(time, *located) << "\n";
  return kExitOk;
}

const char* kMainHelp = R"(Herald: durable workflow automation for social-media operations.

Usage: herald COMMAND [FLAGS]

Commands:
  run FILE         run a workflow to completion, with live progress
  validate FILE... check workflow files; every error with file:line:column
  schema           print the JSON Schema of the workflow format
  runs list        list runs (newest first)
  runs show ID     show a run's timeline
  resume           continue every unfinished run in the store
  cron next EXPR   print the next fire times of a cron expression (--tz ZONE)
  serve            run the HTTP API, webhooks, the scheduler and the workers
  worker           run workflows, the scheduler and event triggers for `serve --no-workers`
  init             create the first workspace, its admin and a token
  workspace        create | list workspaces
  user             add | list | remove members of a workspace
  token            create | list | revoke API tokens
  secret           set | list | delete a workspace's secrets (values from stdin)
  audit            read a workspace's audit log
  trigger WORKFLOW start a deployed workflow on a running server (--input k=v)
  approvals        list | show | decide approvals, and set | show policies, on a running server
  plugins          list | inspect | call the loaded plugins and their capabilities
  version          print the version

Every command takes --help. Data lives in --data-dir (HERALD_DATA_DIR, default ./.herald);
settings come from herald.yaml and HERALD_* environment variables.
)";

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool interactive) {
  Io io{out, err, interactive};
  spdlog::set_level(spdlog::level::warn);
  if (args.empty()) {
    err << kMainHelp;
    return kExitInvalid;
  }
  const std::string& command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--help" || command == "-h" || command == "help") {
    out << kMainHelp;
    return kExitOk;
  }
  if (command == "--version" || command == "version") {
    out << "herald " << HERALD_VERSION << "\n";
    return kExitOk;
  }
  if (command == "schema") {
    if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) {
      out << "Usage: herald schema\n\nPrints the JSON Schema (draft 7) that workflow files follow.\n";
      return kExitOk;
    }
    if (!rest.empty()) return usage_error(io, "herald schema takes no arguments");
    out << model::workflow_schema_text() << "\n";
    return kExitOk;
  }
  if (command == "validate") return cmd_validate(rest, io);
  if (command == "run") return cmd_run(rest, io);
  if (command == "resume") return cmd_resume(rest, io);
  if (command == "runs") return cmd_runs(rest, io);
  if (command == "approvals") return cmd_approvals(rest, io);
  if (command == "cron") return cmd_cron(rest, io);
  if (command == "serve") return cmd_serve(rest, io);
  if (command == "worker") return cmd_worker(rest, io);
  if (command == "init") return cmd_init(rest, io);
  if (command == "workspace") return cmd_workspace(rest, io);
  if (command == "user") return cmd_user(rest, io);
  if (command == "token") return cmd_token(rest, io);
  if (command == "secret") return cmd_secret(rest, io);
  if (command == "audit") return cmd_audit(rest, io);
  if (command == "trigger") return cmd_trigger(rest, io);
  if (command == "plugins") return cmd_plugins(rest, io);
  if (command == "plugin-host") return cmd_plugin_host(rest, io);  // hidden: isolated plugins
  return usage_error(io, "unknown command '" + command + "'; see 'herald --help'");
}

}  // namespace herald::cli
