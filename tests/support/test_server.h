// The standalone herald-test-server: the effects routes of LocalHttpServer in a process of their
// own, for tests that kill -9 the `herald` process and need the counts to survive it.
//
//   herald-test-server [--port N] [--host ADDR] [--delay-ms N] [--port-file PATH]
//
// On start it prints one line, {"port": N, "url": "http://127.0.0.1:N", "pid": P}, and writes
// the port to --port-file when given (atomically, so a reader never sees half a number). It
// serves /effects and everything under it (see LocalHttpServer::add_effects_route; ?delay_ms=N
// or --delay-ms holds each answer), GET /__stats (the EffectLedger stats JSON), POST /__reset,
// /status/<code> (answers that status; ?retry_after=S adds Retry-After) and /echo/* (answers the
// request as JSON). On SIGTERM or SIGINT it prints the stats JSON as one line and exits 0.
#pragma once

namespace herald::testing {

// main() of herald-test-server; returns the exit code (2 on a bad command line).
int run_test_server(int argc, char** argv);

}  // namespace herald::testing
