#include "engine/store/store.h"

#include <array>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <system_error>
#include <utility>

#include "engine/common/time.h"
#include "engine/store/checks.h"
#include "engine/store/postgres/postgres_store.h"
#include "engine/store/sqlite/sqlite_store.h"

namespace herald::store {

namespace {

constexpr std::array<std::pair<RunState, std::string_view>, 6> kRunStateNames{{
    {RunState::queued, "queued"},
    {RunState::running, "running"},
    {RunState::waiting, "waiting"},
    {RunState::succeeded, "succeeded"},
    {RunState::failed, "failed"},
    {RunState::cancelled, "cancelled"},
}};

constexpr std::array<std::pair<StepState, std::string_view>, 8> kStepStateNames{{
    {StepState::pending, "pending"},
    {StepState::ready, "ready"},
    {StepState::running, "running"},
    {StepState::waiting, "waiting"},
    {StepState::succeeded, "succeeded"},
    {StepState::failed, "failed"},
    {StepState::skipped, "skipped"},
    {StepState::cancelled, "cancelled"},
}};

template <typename State, size_t N>
std::string_view name_of(const std::array<std::pair<State, std::string_view>, N>& names,
                         State state) {
  for (const auto& [s, name] : names) {
    if (s == state) return name;
  }
  return "unknown";
}

template <typename State, size_t N>
std::optional<State> parse_name(const std::array<std::pair<State, std::string_view>, N>& names,
                                std::string_view text) {
  for (const auto& [s, name] : names) {
    if (name == text) return s;
  }
  return std::nullopt;
}

// "scheme:" prefixes as in RFC 3986: a letter, then letters, digits, '+', '-' or '.'. A plain
// path (no scheme) starts with anything else, or has no ':' before its first '/'.
std::optional<std::string_view> scheme_of(std::string_view url) {
  size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view scheme = url.substr(0, colon);
  auto is_alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!is_alpha(scheme[0])) return std::nullopt;
  for (char c : scheme) {
    bool ok = is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    if (!ok) return std::nullopt;
  }
  return scheme;
}

Result<std::unique_ptr<Store>> open_sqlite(std::string path) {
  // "sqlite:///abs/path" is read as "/abs/path", as other tools write SQLite URLs.
  if (path.starts_with("//")) path.erase(0, 2);
  if (path.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "the store URL \"sqlite:\" names no file; write sqlite:PATH");
  }
  if (path != ":memory:") {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return make_error(ErrorCode::failed_precondition, "cannot create the folder " +
                                                              parent.string() + " for the store " +
                                                              path + ": " + ec.message());
      }
    }
  }
  auto store = SqliteStore::open(path);
  if (!store) return std::move(store).error();
  return std::unique_ptr<Store>(std::move(*store));
}

// 80 random bits as a high 16-bit and a low 64-bit part.
struct Random80 {
  uint64_t high = 0;
  uint64_t low = 0;
};

}  // namespace

std::string_view to_string(RunState state) {
  return name_of(kRunStateNames, state);
}
std::string_view to_string(StepState state) {
  return name_of(kStepStateNames, state);
}

std::optional<RunState> parse_run_state(std::string_view text) {
  return parse_name(kRunStateNames, text);
}
std::optional<StepState> parse_step_state(std::string_view text) {
  return parse_name(kStepStateNames, text);
}

bool Commit::empty() const {
  return insert_runs.empty() && !update_run && steps.empty() && attempts.empty() &&
         add_timers.empty() && delete_timers.empty() && delete_timers_of_runs.empty() &&
         add_events.empty() && consume_events.empty() && schedule_marks.empty() && !release;
}

void Commit::append(Commit&& later) {
  auto move_all = [](auto& into, auto& from) {
    into.insert(into.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  };
  move_all(insert_runs, later.insert_runs);
  if (later.update_run) update_run = std::move(later.update_run);
  move_all(steps, later.steps);
  move_all(attempts, later.attempts);
  move_all(add_timers, later.add_timers);
  move_all(delete_timers, later.delete_timers);
  move_all(delete_timers_of_runs, later.delete_timers_of_runs);
  move_all(add_events, later.add_events);
  move_all(consume_events, later.consume_events);
  move_all(schedule_marks, later.schedule_marks);
  if (later.lease_inserted) lease_inserted = std::move(later.lease_inserted);
  if (later.fence) fence = std::move(later.fence);
  release = release || later.release;
}

Status check_lease_fields(const Commit& commit) {
  if (commit.release && !commit.fence) {
    return make_error(ErrorCode::invalid_argument, "a commit that releases a lease must name it");
  }
  if (commit.lease_inserted && (commit.insert_runs.empty() || commit.lease_inserted->owner.empty())) {
    return make_error(ErrorCode::invalid_argument,
                      "a lease for inserted runs needs runs to insert and an owner");
  }
  return ok_status();
}

Status check_lease_token(const RunLease& fence, int64_t stored_token) {
  if (stored_token == fence.token) return ok_status();
  return make_error(ErrorCode::aborted,
                    "the lease on run " + fence.run_id + " is lost: it was claimed again (token " +
                        std::to_string(stored_token) + ", this change was made under " +
                        std::to_string(fence.token) + ")");
}

int64_t lease_cutoff(const ClaimRequest& request) {
  if (request.take_over) return std::numeric_limits<int64_t>::max();
  return std::chrono::duration_cast<std::chrono::milliseconds>(request.now.time_since_epoch())
      .count();
}

Error schedule_mark_behind(const ScheduleMark& mark) {
  return make_error(ErrorCode::failed_precondition,
                    "schedule " + std::to_string(mark.trigger_index) + " of workflow " +
                        mark.workflow_id + " already fired at " + format_iso8601(mark.last_fire) +
                        " or later");
}

Status check_slug(std::string_view what, std::string_view id) {
  auto is_lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  bool ok = !id.empty() && id.size() <= 63 && is_lower_or_digit(id[0]);
  for (char c : id) {
    if (!ok) break;
    ok = is_lower_or_digit(c) || c == '-' || c == '_' || c == '.';
  }
  if (ok) return ok_status();
  // Quoted as JSON, so an empty id, spaces or control characters show as what they are.
  std::string message = "invalid ";
  message += what;
  message += ' ';
  message += Json(std::string(id)).dump(-1, ' ', false, Json::error_handler_t::replace);
  message +=
      ": use 1 to 63 of a-z, 0-9, '-', '_' and '.', starting with a lowercase letter or digit";
  return make_error(ErrorCode::invalid_argument, std::move(message));
}

Status check_role(std::string_view role) {
  for (std::string_view known : {"admin", "editor", "approver", "viewer", "influencer"}) {
    if (role == known) return ok_status();
  }
  std::string message = "unknown role ";
  message += Json(std::string(role)).dump(-1, ' ', false, Json::error_handler_t::replace);
  message += "; roles are admin, editor, approver, viewer and influencer";
  return make_error(ErrorCode::invalid_argument, std::move(message));
}

bool is_final(RunState state) {
  return state == RunState::succeeded || state == RunState::failed || state == RunState::cancelled;
}

bool is_final(StepState state) {
  return state == StepState::succeeded || state == StepState::failed ||
         state == StepState::skipped || state == StepState::cancelled;
}

Result<std::unique_ptr<Store>> open_store(const std::string& url) {
  if (url.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "the store URL is empty; write sqlite:PATH or a path to a file");
  }
  auto scheme = scheme_of(url);
  if (!scheme) return open_sqlite(url);
  if (*scheme == "sqlite") return open_sqlite(url.substr(scheme->size() + 1));
  if (*scheme == "postgres" || *scheme == "postgresql") {
    // The whole URL goes to libpq, which reads both schemes; errors never echo its password.
    auto store = PostgresStore::open(url);
    if (!store) return std::move(store).error();
    return std::unique_ptr<Store>(std::move(*store));
  }
  // Only the scheme is echoed: the rest of a URL may hold a password.
  return make_error(ErrorCode::invalid_argument,
                    "unknown store URL scheme \"" + std::string(*scheme) +
                        ":\"; accepted: sqlite:PATH, sqlite::memory:, a plain path, or "
                        "postgres://USER@HOST:PORT/DATABASE");
}

std::string new_run_id() {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford base32
  static std::mutex mutex;
  static std::random_device random_device;
  static uint64_t last_millis = 0;
  static Random80 last_random;

  uint64_t millis;
  Random80 random;
  {
    std::lock_guard lock(mutex);
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
            .count();
    const uint64_t now_millis = now > 0 ? static_cast<uint64_t>(now) : 0;
    if (now_millis > last_millis) {
      last_millis = now_millis;
      last_random.high = random_device() & 0xffff;
      last_random.low = (uint64_t{random_device()} << 32) | random_device();
    } else {
      // Same millisecond (or the clock stepped back): increment, so ids made in this process
      // keep strictly increasing. On the (2^80 to 1) overflow, borrow the next millisecond.
      if (++last_random.low == 0 && ++last_random.high > 0xffff) {
        last_random.high = 0;
        ++last_millis;
      }
    }
    millis = last_millis & 0xffff'ffff'ffffULL;  // 48 bits
    random = last_random;
  }

  // 128 bits (48 time + 80 random) as 26 base32 digits, most significant first; the first
  // digit carries only the top 3 bits.
  __extension__ using Uint128 = unsigned __int128;
  Uint128 rest =
      (static_cast<Uint128>(millis) << 80) | (static_cast<Uint128>(random.high) << 64) | random.low;
  std::string id(26, '0');
  for (int i = 25; i >= 0; --i) {
    id[i] = kAlphabet[static_cast<int>(rest & 31)];
    rest >>= 5;
  }
  return id;
}

}  // namespace herald::store
