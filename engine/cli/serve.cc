// `herald serve`: the HTTP API, webhooks, the scheduler and the workers in one process, until
// SIGTERM or SIGINT; then it drains (see Service::stop).
#include <csignal>
#include <iostream>
#include <pthread.h>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "engine/cli/command.h"
#include "engine/server/admin.h"
#include "engine/server/service.h"

namespace herald::cli {

namespace {

// One JSON object per log line. Messages that already are a JSON object (the server logs run
// and step events that way, with their ids as fields) are merged; others become "msg".
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view text(msg.payload.data(), msg.payload.size());
    Json line;
    if (!text.empty() && text.front() == '{' && text.back() == '}') {
      line = Json::parse(text, nullptr, false);
      if (!line.is_object()) line = Json{{"msg", std::string(text)}};
    } else {
      line = Json{{"msg", std::string(text)}};
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    Json out = {{"ts", ms}, {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                                  spdlog::level::to_string_view(msg.level).size())}};
    out.update(line);
    std::string rendered = out.dump(-1, ' ', false, Json::error_handler_t::replace);
    rendered.push_back('\n');
    dest.append(rendered.data(), rendered.data() + rendered.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLineFormatter>(); }
};

const std::vector<FlagSpec> kServeFlags = {
    {"listen", true, false, "address to listen on (HERALD_LISTEN, default 127.0.0.1:8080)", "HOST:PORT"},
    {"workers", true, false, "worker threads (HERALD_WORKERS, default: the number of cores)", "N"},
    {"no-workers", false, false, "only the API and webhooks: `herald worker` processes run the work", ""},
};

const std::vector<FlagSpec> kWorkerFlags = {
    {"listen", true, false, "where /healthz, /readyz and /metrics answer (default: a free port)", "HOST:PORT"},
    {"workers", true, false, "worker threads (HERALD_WORKERS, default: the number of cores)", "N"},
};

// `herald serve` (api and workers, or the API alone) and `herald worker` (workers alone).
int run_service(const std::vector<std::string>& argv, Io& io, bool worker) {
  const char* name = worker ? "herald worker" : "herald serve";
  auto specs = with_store_flags(worker ? kWorkerFlags : kServeFlags);
  auto args = parse_args(argv, specs, name);
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    if (worker) {
      io.out << "Usage: herald worker [--config FILE] [--store URL]\n\n"
                "Runs workflows, the scheduler and the event triggers for every `herald serve\n"
                "--no-workers` sharing its store, without the API. Start as many as you need: they\n"
                "share the runs through leases in the store, and cron fires once across all of\n"
                "them. /healthz, /readyz and /metrics answer on --listen. SIGTERM drains like\n"
                "`herald serve`.\n\n"
             << flags_help(specs);
    } else {
      io.out << "Usage: herald serve [--config FILE] [--listen HOST:PORT] [--no-workers]\n\n"
                "Runs the REST API (/api/v1), webhooks (/hooks/WORKSPACE/PATH), /healthz, /readyz and\n"
                "/metrics, the scheduler and the workers in one process (with --no-workers, only the\n"
                "API: `herald worker` processes run the work). SIGTERM or SIGINT drains: new requests\n"
                "are refused, steps in flight get a grace period, the rest resumes on the next start.\n"
                "Logs are JSON lines on stderr.\n\n"
             << flags_help(specs);
    }
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, std::string(name) + " takes no arguments");
  auto config = load_config(args->value("config").value_or(""));
  if (!config.ok()) return report(io, config.error());
  if (auto dir = args->value("data-dir")) config->data_dir = *dir;
  if (auto url = args->value("store")) config->store_url = *url;
  // Workers on one machine would fight over the API's port: a worker listens where told, or on a
  // free port.
  if (worker) config->listen = "127.0.0.1:0";
  if (auto listen = args->value("listen")) config->listen = *listen;
  if (auto workers = args->value("workers")) {
    try {
      config->workers = std::stoi(*workers);
    } catch (const std::exception&) {
      return usage_error(io, "--workers must be a number");
    }
  }
  auto address = server::parse_listen_address(config->listen);
  if (!address.ok()) return usage_error(io, address.error().message);

  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("herald", sink);
  logger->set_formatter(std::make_unique<JsonLineFormatter>());
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config->log_level));

  // Signals are taken by sigwait on this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  server::ServiceOptions options;
  options.store_url = config->effective_store_url();
  options.data_dir = config->data_dir;
  options.engine = engine_options(*config);
  auto registry = step_registry(*config);
  if (!registry.ok()) return report(io, registry.error());
  options.steps = std::move(registry).value();
  options.engine.secrets = Json::object();  // workspace runs use their workspace's secrets
  options.http.host = address->first;
  options.http.port = address->second;
  options.http.max_body_bytes = config->max_body_bytes;
  options.public_url = config->public_url;
  options.approval_link_ttl = config->approval_link_ttl;
  options.api = !worker;
  options.workers = worker || !args->has("no-workers");
  server::Service service(std::move(options));
  auto started = service.start();
  if (!started.ok()) {
    spdlog::error("{}: {}", name, started.error().message);
    return report(io, started.error());
  }
  io.out << name << ": listening on http://" << address->first << ":" << service.port() << "\n" << std::flush;

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info(Json{{"msg", "draining"}, {"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}}.dump());
  bool drained = service.stop();
  if (!drained) {
    spdlog::warn("steps still running after the grace period; they run again on the next start");
    spdlog::shutdown();
    std::_Exit(0);
  }
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace

int cmd_serve(const std::vector<std::string>& argv, Io& io) { return run_service(argv, io, false); }

int cmd_worker(const std::vector<std::string>& argv, Io& io) { return run_service(argv, io, true); }

}  // namespace herald::cli
