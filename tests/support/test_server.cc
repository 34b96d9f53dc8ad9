#include "tests/support/test_server.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "tests/support/local_http_server.h"

namespace herald::testing {
namespace {

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::chrono::milliseconds delay{0};
  std::string port_file;
};

constexpr const char* kUsage =
    "usage: herald-test-server [--port N] [--host ADDR] [--delay-ms N] [--port-file PATH]\n";

std::optional<long> parse_number(const std::string& text, long max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
      text.size() > 9) {
    return std::nullopt;
  }
  long value = std::stol(text);
  return value <= max ? std::optional<long>(value) : std::nullopt;
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::cerr << "herald-test-server: " << flag << " needs a value (or is unknown)\n" << kUsage;
      return std::nullopt;
    }
    std::string value = argv[++i];
    if (flag == "--host") {
      options.host = value;
    } else if (flag == "--port-file") {
      options.port_file = value;
    } else if (flag == "--port" || flag == "--delay-ms") {
      auto number = parse_number(value, flag == "--port" ? 65535 : 3'600'000);
      if (!number) {
        std::cerr << "herald-test-server: " << flag << " '" << value << "' is not a valid number\n";
        return std::nullopt;
      }
      if (flag == "--port")
        options.port = static_cast<uint16_t>(*number);
      else
        options.delay = std::chrono::milliseconds(*number);
    } else {
      std::cerr << "herald-test-server: unknown flag " << flag << "\n" << kUsage;
      return std::nullopt;
    }
  }
  return options;
}

void add_helper_routes(LocalHttpServer& server) {
  server.route("GET", "/__stats", [&server](const RecordedRequest&) {
    return Response::json(200, server.effects().stats());
  });
  server.route("POST", "/__reset", [&server](const RecordedRequest&) {
    server.effects().clear();
    server.clear_requests();
    return Response::json(200, {{"reset", true}});
  });
  server.route("*", "/status/*", [](const RecordedRequest& request) {
    constexpr std::string_view kPrefix = "/status/";
    std::string code =
        request.path.size() > kPrefix.size() ? request.path.substr(kPrefix.size()) : "";
    auto status = parse_number(code, 599);
    if (!status || *status < 100) return Response::text(400, "expected /status/<100-599>");
    Response response = Response::json(static_cast<int>(*status), {{"status", *status}});
    auto params = request.query_params();
    if (auto it = params.find("retry_after"); it != params.end()) {
      response.with_header("Retry-After", it->second);
    }
    return response;
  });
  server.route("*", "/echo/*", [](const RecordedRequest& request) {
    return Response::json(200, {{"method", request.method},
                                {"path", request.path},
                                {"query", request.query},
                                {"headers", request.headers},
                                {"body", request.body}});
  });
}

bool write_port_file(const std::string& path, uint16_t port) {
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << "\n";
    if (!out) return false;
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  return !error;
}

}  // namespace

int run_test_server(int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (!options) return 2;

  // Block the stop signals before the server starts its threads (they inherit the mask), so
  // sigwait below is the only place they land and no handler runs inside Poco's code.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::optional<LocalHttpServer> server;
  try {
    server.emplace(options->host, options->port);
  } catch (const std::exception& e) {
    std::cerr << "herald-test-server: " << e.what() << "\n";
    return 1;
  }
  server->add_effects_route("/effects", options->delay);
  add_helper_routes(*server);

  if (!options->port_file.empty() && !write_port_file(options->port_file, server->port())) {
    std::cerr << "herald-test-server: cannot write " << options->port_file << "\n";
    return 1;
  }
  Json started = {{"port", server->port()}, {"url", server->url()}, {"pid", getpid()}};
  std::cout << started.dump() << std::endl;

  int received = 0;
  sigwait(&stop_signals, &received);
  server->stop();
  std::cout << server->effects().stats().dump() << std::endl;
  return 0;
}

}  // namespace herald::testing
