#include "tests/support/redis_server.h"

#include <chrono>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "tests/support/postgres_server.h"  // free_loopback_port

namespace herald::testing {

namespace {

using std::chrono::seconds;

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

RedisServer::RedisServer() : dir_("herald-redis") {
  // The port is free when picked but may be taken before redis binds it: then try another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (start_on(free_loopback_port())) return;
  }
  throw std::runtime_error("RedisServer: no free port after 5 tries; last output:\n" + log());
}

RedisServer::~RedisServer() {
  stop();
}

std::string RedisServer::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_);
}

bool RedisServer::running() const {
  return server_ != nullptr && server_->running();
}

void RedisServer::stop() noexcept {
  if (!server_) return;
  server_->stop(SIGTERM, std::chrono::milliseconds(5000));
  server_.reset();
}

void RedisServer::restart() {
  stop();
  // The old process has ended and redis sets SO_REUSEADDR, so the port binds again at once
  // unless someone else took it meanwhile.
  if (!start_on(port_)) {
    throw std::runtime_error("RedisServer: port " + std::to_string(port_) +
                             " was taken while redis was down:\n" + log());
  }
}

std::string RedisServer::log() const {
  std::string text;
  for (int start = 1; start <= starts_; ++start) {
    const std::string prefix = "redis-" + std::to_string(start) + ".";
    text += read_file(dir_ / (prefix + "stdout"));
    text += read_file(dir_ / (prefix + "stderr"));
  }
  return text;
}

bool RedisServer::start_on(uint16_t port) {
  ChildOptions options;
  // --save "" and --appendonly no: nothing is written to disk, so a restart starts empty.
  options.args = {"redis-server",
                  "--port",
                  std::to_string(port),
                  "--bind",
                  "127.0.0.1",
                  "--save",
                  "",
                  "--appendonly",
                  "no",
                  "--dir",
                  dir_.string(),
                  "--daemonize",
                  "no",
                  "--loglevel",
                  "notice"};
  options.output_dir = dir_.path();
  options.output_prefix = "redis-" + std::to_string(++starts_) + ".";
  server_ = std::make_unique<ChildProcess>(std::move(options));
  port_ = port;
  if (server_->wait_for_stdout("Ready to accept connections", seconds(30))) return true;
  const bool running = server_->running();
  const std::string output = server_->stdout_text() + server_->stderr_text();
  server_->stop(SIGKILL, seconds(5));
  server_.reset();
  if (!running && (contains(output, "Address already in use") || contains(output, "bind"))) {
    return false;
  }
  throw std::runtime_error("RedisServer: redis-server on port " + std::to_string(port) +
                           (running ? " did not get ready within 30 s" : " ended at start") +
                           ":\n" + output);
}

}  // namespace herald::testing
