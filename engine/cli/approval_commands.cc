// herald approvals list|show|decide|policy: the approvals and approval policies of a workspace,
// on a running `herald serve` through its REST API (/api/v1/approvals,
// /api/v1/approval-policies), with an API token: the server applies the same rules, records the
// same audit entries and wakes the same runs as for any other client of the API.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "engine/cli/api_client.h"
#include "engine/cli/command.h"
#include "engine/model/workflow.h"

namespace herald::cli {

namespace {

const FlagSpec kJsonFlag = {"json", false, false, "print the server's JSON", ""};

// --url, --token and --help, after a command's own flags.
std::vector<FlagSpec> with_server_flags(std::vector<FlagSpec> specs, const std::string& permission) {
  specs.push_back({"url", true, false, "the server (HERALD_URL, default http://127.0.0.1:8080)", "URL"});
  specs.push_back({"token", true, false, "an API token with " + permission + " (HERALD_TOKEN)", "TOKEN"});
  specs.push_back({"help", false, false, "show this help", ""});
  return specs;
}

struct Server {
  Poco::URI url;
  std::string token;
};

// The server and token the flags (or HERALD_URL, HERALD_TOKEN) name; invalid_argument otherwise.
Result<Server> server_of(const ParsedArgs& args, const std::string& command) {
  std::string url_text =
      args.value("url").value_or(env_value("HERALD_URL").value_or("http://127.0.0.1:8080"));
  auto url = parse_server_url(url_text);
  if (!url.ok()) return url.error();
  auto token = args.value("token");
  if (!token) token = env_value("HERALD_TOKEN");
  if (!token) {
    return make_error(ErrorCode::invalid_argument,
                      command + " needs an API token: --token or HERALD_TOKEN (`herald token create` makes one)");
  }
  return Server{std::move(url).value(), *token};
}

// A call whose answer must be a 2xx JSON document: `exit` is kExitOk and `body` the document, or
// the exit code after the reason was printed.
struct Reply {
  int exit = kExitOk;
  int status = 0;
  Json body;
};

Reply answer_json(Io& io, const ApiAnswer& answer) {
  if (answer.status < 200 || answer.status > 299) return {api_error(io, answer), answer.status, nullptr};
  Json body = Json::parse(answer.body, nullptr, false);
  if (body.is_discarded()) {
    io.err << "error: the server answered " << answer.status << " with something that is not JSON: "
           << answer.body.substr(0, 200) << "\n";
    return {kExitFailed, answer.status, nullptr};
  }
  return {kExitOk, answer.status, std::move(body)};
}

Reply call_json(Io& io, const Server& server, const std::string& method, const std::string& path,
                const std::optional<std::string>& body = std::nullopt) {
  auto answer = call_api(server.url, method, path, server.token, body);
  if (!answer.ok()) return {report(io, answer.error()), 0, nullptr};
  return answer_json(io, *answer);
}

// The parsed flags of a subcommand, or the exit code (its --help printed, or a usage error).
struct Parsed {
  std::optional<int> exit;
  ParsedArgs args;
};

Parsed parse_command(const std::vector<std::string>& argv, const std::vector<FlagSpec>& specs,
                     const std::string& command, Io& io, const std::string& help) {
  auto args = parse_args(argv, specs, command);
  if (!args.ok()) return {usage_error(io, args.error().message), {}};
  if (args->has("help")) {
    io.out << help << "\n" << flags_help(specs);
    return {kExitOk, {}};
  }
  return {std::nullopt, std::move(args).value()};
}

// ---- reading the API's JSON -------------------------------------------------------------------

std::string text_of(const Json& object, const char* name) {
  if (!object.is_object()) return "";
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

const Json& field(const Json& object, const char* name) {
  static const Json kNull = nullptr;
  if (!object.is_object()) return kNull;
  auto it = object.find(name);
  return it == object.end() ? kNull : *it;
}

int number_of(const Json& object, const char* name) {
  const Json& value = field(object, name);
  return value.is_number_integer() ? value.get<int>() : 0;
}

std::string join(const Json& list, const std::string& separator = ", ") {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& item : list) {
    if (!out.empty()) out += separator;
    out += item.is_string() ? item.get<std::string>() : item.dump();
  }
  return out;
}

std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

// The first line of `text`, at most `max` characters (UTF-8 code points), "..." when cut.
std::string shorten(const std::string& text, size_t max) {
  size_t newline = text.find('\n');
  std::string line = text.substr(0, newline);
  size_t count = 0;
  for (size_t i = 0; i < line.size(); ++count) {
    if (count == max) return line.substr(0, i) + "...";
    auto c = static_cast<unsigned char>(line[i]);
    i += c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
  }
  return newline == std::string::npos ? line : line + "...";
}

std::string mode_text(const Json& mode) {
  if (mode.is_object() && mode.contains("quorum")) return "quorum " + mode["quorum"].dump();
  return mode.is_string() ? mode.get<std::string>() : "any";
}

std::string title_of(const Json& approval) {
  const Json& subject = field(approval, "subject");
  std::string title = text_of(subject, "title");
  return shorten(title.empty() ? text_of(subject, "text") : title, 48);
}

// "editor (2), legal (1)": the open levels and how many people they wait for.
std::string waiting_levels(const Json& approval) {
  std::string out;
  for (const auto& level : field(approval, "levels")) {
    const Json& awaiting = field(level, "awaiting");
    if (!awaiting.is_array() || awaiting.empty()) continue;
    if (!out.empty()) out += ", ";
    out += text_of(level, "name") + " (" + std::to_string(awaiting.size()) + ")";
  }
  return out;
}

// Each line of `text` after `indent`.
void print_indented(std::ostream& out, const std::string& text, const std::string& indent) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) out << indent << line << "\n";
}

std::string decision_line(const Json& d) {
  std::string actor = text_of(d, "actor");
  std::string line = text_of(d, "verdict") + "  " + actor;
  std::string whose = text_of(d, "on_behalf_of");
  if (!whose.empty() && whose != actor) line += " for " + whose;
  if (text_of(d, "channel") == "link") line += " (link)";
  line += "  " + text_of(d, "at");
  if (!field(d, "edited_text").is_null()) line += "  (edited the text)";
  std::string comment = text_of(d, "comment");
  if (!comment.empty()) line += "  \"" + shorten(comment, 200) + "\"";
  return line;
}

// What one history entry says, after its time, kind and level.
std::string history_text(const Json& entry) {
  std::string kind = text_of(entry, "kind");
  std::string actor = text_of(entry, "actor");
  const Json& d = field(entry, "details");
  if (kind == "started") {
    std::string policy = text_of(d, "policy");
    return "submitted by " + or_dash(actor) +
           (policy.empty() ? ", inline chain" : ", policy " + policy + " version " + text_of(d, "policy_version"));
  }
  if (kind == "skipped") return "when: " + text_of(d, "when") + " was false";
  if (kind == "requested") {
    std::string text = "asked " + or_dash(join(field(d, "eligible"))) + " (" + mode_text(field(d, "mode")) + ")";
    if (!text_of(d, "deadline").empty()) text += "; deadline " + text_of(d, "deadline");
    if (!field(d, "notes").empty() && field(d, "notes").is_array()) text += "; " + join(field(d, "notes"), "; ");
    return text;
  }
  if (kind == "decided") {
    std::string text = actor;
    std::string whose = text_of(d, "on_behalf_of");
    if (!whose.empty() && whose != actor) text += " for " + whose;
    text += ": " + text_of(d, "verdict");
    if (text_of(d, "channel") == "link") text += " (link)";
    if (!text_of(d, "comment").empty()) text += "  \"" + shorten(text_of(d, "comment"), 200) + "\"";
    return text;
  }
  if (kind == "edited") return actor + " edited the text";
  if (kind == "reminded") {
    std::string text = "reminder " + text_of(d, "reminder") + " of " + text_of(d, "of") + " to " +
                       or_dash(join(field(d, "pending")));
    if (field(d, "late") == true) text += " (late: recorded, not sent)";
    return text + "; next deadline " + text_of(d, "deadline");
  }
  if (kind == "escalated") {
    std::string text = "added " + or_dash(join(field(d, "added")));
    if (!field(d, "removed").empty() && field(d, "removed").is_array()) text += ", removed " + join(field(d, "removed"));
    text += "; mode " + mode_text(field(d, "mode"));
    if (!text_of(d, "deadline").empty()) text += "; deadline " + text_of(d, "deadline");
    return text;
  }
  if (kind == "level_closed") return text_of(d, "status") + (actor.empty() ? "" : " by " + actor);
  if (kind == "cancelled") return "";
  if (kind == "restarted") {
    return "round " + std::to_string(number_of(d, "round") + 1) +
           (actor.empty() ? "" : ", changes requested by " + actor);
  }
  if (kind == "finished") return text_of(d, "decision");
  if (kind == "failed") return text_of(field(d, "error"), "message");
  return d.is_object() && d.empty() ? "" : d.dump();
}

// The API's 422 for a policy: each problem as file:line:column: path: message, the way
// `herald validate` prints a workflow's, at the file the user gave.
void print_diagnostics(Io& io, const Json& errors, const std::string& file) {
  for (const auto& e : errors) {
    model::Diagnostic d;
    d.file = file;
    d.location.line = number_of(e, "line");
    d.location.column = number_of(e, "column");
    d.path = text_of(e, "path");
    d.message = text_of(e, "message");
    io.err << d.to_string() << "\n";
  }
}

// A file's content; "-" reads stdin.
std::string read_input(const std::string& path, std::string* error) {
  if (path != "-") return read_text_file(path, error);
  std::string text;
  char buffer[8192];
  while (std::cin.read(buffer, sizeof buffer) || std::cin.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(std::cin.gcount()));
  }
  return text;
}

Result<int> positive_number(const std::string& flag, const std::string& text, long max) {
  char* end = nullptr;
  long n = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || n < 1 || n > max) {
    return make_error(ErrorCode::invalid_argument, "--" + flag + " must be 1.." + std::to_string(max));
  }
  return static_cast<int>(n);
}

const std::vector<std::string> kStatuses = {"pending", "approved", "rejected", "changes_requested",
                                            "expired", "failed"};

// ---- herald approvals list ---------------------------------------------------------------------

int cmd_list(const std::vector<std::string>& argv, Io& io) {
  const std::string command = "herald approvals list";
  auto specs = with_server_flags(
      {
          {"mine", false, false, "only the approvals waiting for you now (yours, or as a delegate)", ""},
          {"status", true, false, "only this status: pending, approved, rejected, changes_requested, expired, failed", "STATUS"},
          {"run", true, false, "only the approvals of this run", "RUN_ID"},
          {"limit", true, false, "at most this many (default 50)", "N"},
          {"cursor", true, false, "approvals older than this id (for paging)", "ID"},
          kJsonFlag,
      },
      "approvals.read");
  auto parsed = parse_command(
      argv, specs, command, io,
      "Usage: herald approvals list [--mine] [--status STATUS] [--limit N] [--json]\n\n"
      "The workspace's approvals, newest first (GET /api/v1/approvals), with the levels that wait\n"
      "and for how many people. --mine lists what you can decide now, which needs a user's token.\n");
  if (parsed.exit) return *parsed.exit;
  const ParsedArgs& args = parsed.args;
  if (!args.positional.empty()) return usage_error(io, command + " takes no arguments");
  std::string query;
  auto add = [&query](const std::string& name, const std::string& value) {
    query += (query.empty() ? "?" : "&") + name + "=" + encode_segment(value);
  };
  bool mine = args.has("mine");
  if (mine) add("mine", "true");
  if (auto status = args.value("status")) {
    if (std::find(kStatuses.begin(), kStatuses.end(), *status) == kStatuses.end()) {
      return usage_error(io, "unknown status '" + *status +
                                 "'; expected pending, approved, rejected, changes_requested, expired or failed");
    }
    if (mine && *status != "pending") {
      return usage_error(io, "--mine lists pending approvals only; drop --status or --mine");
    }
    if (!mine) add("status", *status);
  }
  if (auto run = args.value("run")) {
    if (mine) return usage_error(io, "--mine and --run do not go together; drop one");
    add("run", *run);
  }
  if (auto limit = args.value("limit")) {
    auto n = positive_number("limit", *limit, 1000);
    if (!n.ok()) return usage_error(io, n.error().message);
    add("limit", std::to_string(*n));
  }
  if (auto cursor = args.value("cursor")) add("cursor", *cursor);
  auto server = server_of(args, command);
  if (!server.ok()) return usage_error(io, server.error().message);

  Reply reply = call_json(io, *server, "GET", "/api/v1/approvals" + query);
  if (reply.exit != kExitOk) return reply.exit;
  if (args.has("json")) {
    io.out << reply.body.dump(2) << "\n";
    return kExitOk;
  }
  const Json& items = field(reply.body, "items");
  if (!items.is_array() || items.empty()) {
    io.out << (mine ? "nothing waits for you\n" : "no approvals\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "STATUS", "TITLE", "WAITING", "CREATED"}};
  for (const auto& item : items) {
    rows.push_back({text_of(item, "id"), text_of(item, "status"), or_dash(title_of(item)),
                    or_dash(waiting_levels(item)), text_of(item, "created_at")});
  }
  print_table(io.out, rows);
  std::string next = text_of(reply.body, "next_cursor");
  if (!next.empty()) io.out << "(more: --cursor " << next << ")\n";
  return kExitOk;
}

// ---- herald approvals show ---------------------------------------------------------------------

int cmd_show(const std::vector<std::string>& argv, Io& io) {
  const std::string command = "herald approvals show";
  auto specs = with_server_flags({kJsonFlag}, "approvals.read");
  auto parsed = parse_command(
      argv, specs, command, io,
      "Usage: herald approvals show ID [--json]\n\n"
      "One approval (GET /api/v1/approvals/ID): the subject, each level with its status, who it\n"
      "waits for and who decided, what you may decide now, the history, and once it has ended\n"
      "the decision, the final text and its diff.\n");
  if (parsed.exit) return *parsed.exit;
  const ParsedArgs& args = parsed.args;
  if (args.positional.size() != 1) return usage_error(io, command + " takes one approval ID");
  const std::string& id = args.positional[0];
  auto server = server_of(args, command);
  if (!server.ok()) return usage_error(io, server.error().message);
  Reply reply = call_json(io, *server, "GET", "/api/v1/approvals/" + encode_segment(id));
  if (reply.exit != kExitOk) return reply.exit;
  const Json& a = reply.body;
  if (args.has("json")) {
    io.out << a.dump(2) << "\n";
    return kExitOk;
  }
  std::ostream& out = io.out;
  const Json& subject = field(a, "subject");
  std::string policy = text_of(a, "policy");
  std::string step = text_of(a, "step");
  if (a.contains("item")) step += "[" + text_of(a, "item") + "]";
  int round = number_of(a, "round");  // 0 until a request for changes restarts the chain
  out << "approval   " << text_of(a, "id") << "\n"
      << "status     " << text_of(a, "status")
      << (round > 0 ? " (round " + std::to_string(round + 1) + ")" : std::string()) << "\n"
      << "title      " << or_dash(text_of(subject, "title")) << "\n"
      << "submitter  " << or_dash(text_of(a, "submitter")) << "\n"
      << "policy     " << (policy.empty() ? "inline chain" : policy + " version " + text_of(a, "policy_version")) << "\n"
      << "run        " << or_dash(text_of(a, "run_id")) << " (step " << step << ")\n"
      << "created    " << text_of(a, "created_at") << "\n"
      << "updated    " << text_of(a, "updated_at") << "\n";
  if (!text_of(a, "due_at").empty()) out << "next due   " << text_of(a, "due_at") << "\n";
  out << "\ntext\n";
  print_indented(out, text_of(subject, "text"), "  ");
  if (field(subject, "accounts").is_array() && !field(subject, "accounts").empty()) {
    out << "accounts   " << join(field(subject, "accounts")) << "\n";
  }
  if (field(subject, "media").is_array() && !field(subject, "media").empty()) {
    out << "media      " << join(field(subject, "media")) << "\n";
  }
  if (field(subject, "extra").is_object() && !field(subject, "extra").empty()) {
    out << "extra      " << field(subject, "extra").dump() << "\n";
  }

  out << "\nlevels\n";
  for (const auto& level : field(a, "levels")) {
    std::string name = text_of(level, "name");
    if (!text_of(level, "group").empty()) name = text_of(level, "group") + "/" + name;
    std::string line = "  " + name + "  " + text_of(level, "status") + "  " + mode_text(field(level, "mode"));
    if (!text_of(level, "deadline").empty()) line += "  deadline " + text_of(level, "deadline");
    if (!text_of(level, "closed_by").empty()) line += "  closed by " + text_of(level, "closed_by");
    out << line << "\n";
    out << "      approvers: " << or_dash(join(field(level, "approvers")));
    if (field(level, "eligible").is_array() && !field(level, "eligible").empty()) {
      out << "; eligible: " << join(field(level, "eligible"));
    }
    out << "\n";
    if (field(level, "awaiting").is_array() && !field(level, "awaiting").empty()) {
      out << "      awaiting: " << join(field(level, "awaiting")) << "\n";
    }
    for (const auto& note : field(level, "notes")) {
      if (note.is_string()) out << "      note: " << note.get<std::string>() << "\n";
    }
    for (const auto& decision : field(level, "decisions")) out << "      " << decision_line(decision) << "\n";
  }
  const Json& choices = field(a, "my_choices");
  if (choices.is_array() && !choices.empty()) {
    out << "\nyou may decide: ";
    bool first = true;
    for (const auto& choice : choices) {
      out << (first ? "" : ", ") << text_of(choice, "level");
      if (!text_of(choice, "for").empty()) out << " (for " << text_of(choice, "for") << ")";
      first = false;
    }
    out << "\n  herald approvals decide " << text_of(a, "id") << " approve|reject|changes --comment TEXT\n";
  }

  const Json& history = field(a, "history");
  if (history.is_array() && !history.empty()) {
    out << "\nhistory\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& entry : history) {
      rows.push_back({"  " + text_of(entry, "at"), text_of(entry, "kind"), or_dash(text_of(entry, "level")),
                      history_text(entry)});
    }
    print_table(out, rows);
  }

  const Json& result = field(a, "result");
  if (result.is_object()) {
    out << "\nresult\n"
        << "  decision  " << text_of(result, "decision") << "\n"
        << "  rounds    " << text_of(result, "rounds") << "\n"
        << "  finished  " << text_of(result, "finished_at") << "\n";
    const Json& diff = field(result, "diff");
    if (field(diff, "changed") == true) {
      out << "  final text\n";
      print_indented(out, text_of(result, "text"), "    ");
      out << "  diff\n";
      print_indented(out, text_of(diff, "unified"), "    ");
    } else {
      out << "  text      unchanged\n";
    }
  }
  if (field(a, "error").is_object()) out << "\nerror: " << text_of(field(a, "error"), "message") << "\n";
  return kExitOk;
}

// ---- herald approvals decide -------------------------------------------------------------------

int cmd_decide(const std::vector<std::string>& argv, Io& io) {
  const std::string command = "herald approvals decide";
  auto specs = with_server_flags(
      {
          {"comment", true, false, "why: required to reject and to request changes", "TEXT"},
          {"text-file", true, false, "an edited text, without its final line break (with approve or changes; - reads stdin)", "FILE"},
          {"level", true, false, "the level, when you may decide on several open ones", "LEVEL"},
          {"for", true, false, "the user you decide for, as their delegate", "USER"},
          kJsonFlag,
      },
      "approvals.decide");
  auto parsed = parse_command(
      argv, specs, command, io,
      "Usage: herald approvals decide ID approve|reject|changes [--comment TEXT] [--text-file FILE]\n"
      "                               [--level LEVEL] [--for USER]\n\n"
      "Records your decision on an approval (POST /api/v1/approvals/ID/decisions) and prints it with\n"
      "the approval's status. reject needs a reason and changes (request changes) a comment saying\n"
      "what to change; approve and changes may carry an edited text. The same decision again is\n"
      "answered \"already recorded\". Needs a user's token.\n"
      "Exit code: 0 recorded (or already recorded), 2 an invalid decision, 1 refused (not an\n"
      "approver of the level, the level closed, decided otherwise before) or the server could not\n"
      "be reached.\n");
  if (parsed.exit) return *parsed.exit;
  const ParsedArgs& args = parsed.args;
  if (args.positional.size() != 2) {
    return usage_error(io, command + " takes an approval ID and a decision: approve, reject or changes");
  }
  const std::string& id = args.positional[0];
  const std::string& verdict = args.positional[1];
  std::string decision;
  if (verdict == "approve") {
    decision = "approve";
  } else if (verdict == "reject") {
    decision = "reject";
  } else if (verdict == "changes" || verdict == "request_changes" || verdict == "request-changes") {
    decision = "request_changes";
  } else {
    return usage_error(io, "unknown decision '" + verdict + "'; expected approve, reject or changes");
  }
  std::string comment = args.value("comment").value_or("");
  if (decision == "reject" && comment.empty()) {
    return usage_error(io, "reject needs a reason: --comment TEXT");
  }
  if (decision == "request_changes" && comment.empty()) {
    return usage_error(io, "changes needs a comment saying what to change: --comment TEXT");
  }
  Json body = {{"decision", decision}, {"comment", comment}};
  if (auto file = args.value("text-file")) {
    if (decision == "reject") return usage_error(io, "--text-file goes with approve or changes, not reject");
    std::string error;
    std::string text = read_input(*file, &error);
    if (!error.empty()) return usage_error(io, error);
    // A file's last line ends with a line break that is not part of the post.
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
    body["text"] = text;
  }
  if (auto level = args.value("level")) body["level"] = *level;
  if (auto whom = args.value("for")) body["on_behalf_of"] = *whom;
  auto server = server_of(args, command);
  if (!server.ok()) return usage_error(io, server.error().message);

  auto answer = call_api(server->url, "POST", "/api/v1/approvals/" + encode_segment(id) + "/decisions",
                         server->token, body.dump());
  if (!answer.ok()) return report(io, answer.error());
  if (answer->status != 201 && answer->status != 200) {
    if (answer->status >= 200 && answer->status <= 299) {
      io.err << "error: the server answered " << answer->status << " to a decision\n";
      return kExitFailed;
    }
    return api_error(io, *answer);
  }
  Reply reply = answer_json(io, *answer);
  if (reply.exit != kExitOk) return reply.exit;
  if (args.has("json")) {
    io.out << reply.body.dump(2) << "\n";
    return kExitOk;
  }
  const Json& recorded = field(reply.body, "decision");
  const Json& approval = field(reply.body, "approval");
  std::string actor = text_of(recorded, "actor");
  std::string whose = text_of(recorded, "on_behalf_of");
  io.out << (answer->status == 201 ? "recorded: " : "already recorded: ") << text_of(recorded, "verdict")
         << " on level '" << text_of(recorded, "level") << "' by " << actor;
  if (!whose.empty() && whose != actor) io.out << " for " << whose;
  if (answer->status == 200) io.out << " at " << text_of(recorded, "at");
  io.out << "\n";
  if (approval.is_object()) {
    io.out << "approval " << text_of(approval, "id") << ": " << text_of(approval, "status");
    std::string waiting = waiting_levels(approval);
    if (!waiting.empty()) io.out << ", waiting for " << waiting;
    io.out << "\n";
  }
  return kExitOk;
}

// ---- herald approvals policy -------------------------------------------------------------------

int cmd_policy_set(const std::vector<std::string>& argv, Io& io) {
  const std::string command = "herald approvals policy set";
  auto specs = with_server_flags({kJsonFlag}, "approval_chains.write");
  auto parsed = parse_command(
      argv, specs, command, io,
      "Usage: herald approvals policy set NAME FILE\n\n"
      "Saves an approval policy file (PUT /api/v1/approval-policies/NAME; FILE - reads stdin). A\n"
      "changed file is a new version; new approvals use the newest, pending ones keep theirs. The\n"
      "file's `name:` must be NAME. Every problem in the file is printed as\n"
      "file:line:column: field: message (exit code 2). See docs/approvals.md for the format.\n");
  if (parsed.exit) return *parsed.exit;
  const ParsedArgs& args = parsed.args;
  if (args.positional.size() != 2) return usage_error(io, command + " takes a policy NAME and a FILE");
  const std::string& name = args.positional[0];
  const std::string& file = args.positional[1];
  std::string error;
  std::string source = read_input(file, &error);
  if (!error.empty()) return usage_error(io, error);
  auto server = server_of(args, command);
  if (!server.ok()) return usage_error(io, server.error().message);
  auto answer = call_api(server->url, "PUT", "/api/v1/approval-policies/" + encode_segment(name),
                         server->token, source, "application/yaml");
  if (!answer.ok()) return report(io, answer.error());
  if (answer->status == 422) {
    Json body = Json::parse(answer->body, nullptr, false);
    const Json& errors = field(field(field(body, "error"), "details"), "errors");
    if (errors.is_array() && !errors.empty()) {
      print_diagnostics(io, errors, file == "-" ? "<stdin>" : file);
      return kExitInvalid;
    }
  }
  Reply reply = answer_json(io, *answer);
  if (reply.exit != kExitOk) return reply.exit;
  if (args.has("json")) {
    io.out << reply.body.dump(2) << "\n";
    return kExitOk;
  }
  io.out << "policy " << text_of(reply.body, "name") << " version " << text_of(reply.body, "version") << " ("
         << (field(reply.body, "new_version") == true ? "new" : "unchanged") << ")\n";
  return kExitOk;
}

int cmd_policy_show(const std::vector<std::string>& argv, Io& io) {
  const std::string command = "herald approvals policy show";
  auto specs = with_server_flags({{"version", true, false, "this version (default the newest)", "N"}, kJsonFlag},
                                 "approval_chains.read");
  auto parsed = parse_command(
      argv, specs, command, io,
      "Usage: herald approvals policy show NAME [--version N] [--json]\n\n"
      "Prints a policy's file as it was saved (GET /api/v1/approval-policies/NAME), after a comment\n"
      "line saying which version it is, who saved it and when; --json adds the parsed chain.\n");
  if (parsed.exit) return *parsed.exit;
  const ParsedArgs& args = parsed.args;
  if (args.positional.size() != 1) return usage_error(io, command + " takes one policy NAME");
  std::string path = "/api/v1/approval-policies/" + encode_segment(args.positional[0]);
  if (auto version = args.value("version")) {
    auto n = positive_number("version", *version, 1'000'000'000);
    if (!n.ok()) return usage_error(io, n.error().message);
    path += "?version=" + std::to_string(*n);
  }
  auto server = server_of(args, command);
  if (!server.ok()) return usage_error(io, server.error().message);
  Reply reply = call_json(io, *server, "GET", path);
  if (reply.exit != kExitOk) return reply.exit;
  const Json& p = reply.body;
  if (args.has("json")) {
    io.out << p.dump(2) << "\n";
    return kExitOk;
  }
  std::string source = text_of(p, "source");
  io.out << "# policy " << text_of(p, "name") << " version " << text_of(p, "version") << ", saved by "
         << or_dash(text_of(p, "created_by")) << " at " << text_of(p, "created_at") << "\n"
         << source << (source.empty() || source.back() == '\n' ? "" : "\n");
  return kExitOk;
}

// Every page of a list (policies are few; the server pages them by name).
Reply all_pages(Io& io, const Server& server, const std::string& path) {
  Json items = Json::array();
  std::string cursor;
  while (true) {
    std::string query = "?limit=1000" + (cursor.empty() ? "" : "&cursor=" + encode_segment(cursor));
    Reply reply = call_json(io, server, "GET", path + query);
    if (reply.exit != kExitOk) return reply;
    for (const auto& item : field(reply.body, "items")) items.push_back(item);
    std::string next = text_of(reply.body, "next_cursor");
    if (next.empty() || next == cursor) break;
    cursor = next;
  }
  return {kExitOk, 200, Json{{"items", std::move(items)}, {"next_cursor", nullptr}}};
}

int cmd_policy_list(const std::vector<std::string>& argv, Io& io) {
  const std::string command = "herald approvals policy list";
  auto specs = with_server_flags({kJsonFlag}, "approval_chains.read");
  auto parsed = parse_command(argv, specs, command, io,
                              "Usage: herald approvals policy list [--json]\n\n"
                              "The workspace's approval policies, by name, with their newest version "
                              "(GET /api/v1/approval-policies).\n");
  if (parsed.exit) return *parsed.exit;
  const ParsedArgs& args = parsed.args;
  if (!args.positional.empty()) return usage_error(io, command + " takes no arguments");
  auto server = server_of(args, command);
  if (!server.ok()) return usage_error(io, server.error().message);
  Reply reply = all_pages(io, *server, "/api/v1/approval-policies");
  if (reply.exit != kExitOk) return reply.exit;
  if (args.has("json")) {
    io.out << reply.body.dump(2) << "\n";
    return kExitOk;
  }
  const Json& items = reply.body["items"];
  if (items.empty()) {
    io.out << "no approval policies; herald approvals policy set NAME FILE adds one\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "VERSION", "SAVED", "BY", "DESCRIPTION"}};
  for (const auto& p : items) {
    rows.push_back({text_of(p, "name"), text_of(p, "version"), text_of(p, "created_at"),
                    or_dash(text_of(p, "created_by")), or_dash(shorten(text_of(p, "description"), 60))});
  }
  print_table(io.out, rows);
  return kExitOk;
}

int cmd_policy_history(const std::vector<std::string>& argv, Io& io) {
  const std::string command = "herald approvals policy history";
  auto specs = with_server_flags({kJsonFlag}, "approval_chains.read");
  auto parsed = parse_command(argv, specs, command, io,
                              "Usage: herald approvals policy history NAME [--json]\n\n"
                              "Every version of a policy, newest first (GET "
                              "/api/v1/approval-policies/NAME/versions); `policy show NAME --version "
                              "N` prints one.\n");
  if (parsed.exit) return *parsed.exit;
  const ParsedArgs& args = parsed.args;
  if (args.positional.size() != 1) return usage_error(io, command + " takes one policy NAME");
  auto server = server_of(args, command);
  if (!server.ok()) return usage_error(io, server.error().message);
  Reply reply = call_json(io, *server, "GET",
                          "/api/v1/approval-policies/" + encode_segment(args.positional[0]) + "/versions");
  if (reply.exit != kExitOk) return reply.exit;
  if (args.has("json")) {
    io.out << reply.body.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"VERSION", "SAVED", "BY", "SOURCE HASH", "DESCRIPTION"}};
  for (const auto& v : field(reply.body, "items")) {
    rows.push_back({text_of(v, "version"), text_of(v, "created_at"), or_dash(text_of(v, "created_by")),
                    or_dash(text_of(v, "source_hash").substr(0, 12)),
                    or_dash(shorten(text_of(v, "description"), 60))});
  }
  print_table(io.out, rows);
  return kExitOk;
}

int cmd_policy(const std::vector<std::string>& argv, Io& io) {
  return dispatch(argv, io, "approvals policy",
                  "Usage: herald approvals policy set|show|list|history ...\n\n"
                  "  set NAME FILE   save a policy file (a new version when it changed)\n"
                  "  show NAME       print a policy's file (--version N for an older one)\n"
                  "  list            the workspace's policies\n"
                  "  history NAME    every version of a policy\n",
                  {{"set", cmd_policy_set},
                   {"show", cmd_policy_show},
                   {"list", cmd_policy_list},
                   {"history", cmd_policy_history}});
}

}  // namespace

int cmd_approvals(const std::vector<std::string>& argv, Io& io) {
  return dispatch(argv, io, "approvals",
                  "Usage: herald approvals list|show|decide|policy ...\n\n"
                  "Approvals and approval policies on a running `herald serve`, through its REST API\n"
                  "(--url or HERALD_URL, default http://127.0.0.1:8080; --token or HERALD_TOKEN).\n\n"
                  "  list                          approvals, newest first (--mine: waiting for you)\n"
                  "  show ID                       an approval: subject, levels, decisions, history, result\n"
                  "  decide ID approve|reject|changes\n"
                  "                                record your decision (--comment, --text-file, --level, --for)\n"
                  "  policy set|show|list|history  approval policies\n",
                  {{"list", cmd_list}, {"show", cmd_show}, {"decide", cmd_decide}, {"policy", cmd_policy}});
}

}  // namespace herald::cli
