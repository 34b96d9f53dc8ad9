#include "engine/server/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>

#include "engine/common/time.h"
#include "engine/triggers/time_zone.h"

namespace herald::server {

namespace {

using TimePoint = store::TimePoint;
using Key = std::tuple<std::string, std::string, int>;  // workspace, workflow, trigger index

// In normal operation a fire is handled within a second or so of its time. One that is more
// overdue than this (the machine was suspended, the clock jumped forward) was missed, and goes
// through the trigger's catch_up policy like a fire missed while Herald was down.
constexpr auto kOnTimeGrace = std::chrono::seconds(60);
// After a failed store read or commit, the same work is tried again this much later.
constexpr auto kRetryDelay = std::chrono::seconds(5);
// The thread never sleeps longer than this at once, so a change of the clock is noticed.
constexpr auto kMaxSleep = std::chrono::seconds(1);

struct Fire {
  TimePoint at;  // the scheduled time
  bool late = false;
};

struct Entry {
  ScheduledWorkflow schedule;
  // False until the entry's first tick, which catches up from its stored mark (or from
  // counting_from) to that tick's now.
  bool caught_up = false;
  // When caught up: every fire at or before this has been handled (run, or skipped by policy).
  TimePoint handled_through{};
  // When caught up: the next fire after handled_through; nullopt when it never fires again (a
  // one-shot that fired, a cron with nothing within its search horizon).
  std::optional<TimePoint> next;
  // After a failed commit: not tried again before this.
  std::optional<TimePoint> retry_at;
};

Key key_of(const ScheduledWorkflow& schedule) {
  return {schedule.workspace_id, schedule.workflow_id, schedule.trigger_index};
}

// "workflow digest in workspace acme (trigger 0)", for log lines.
std::string describe(const ScheduledWorkflow& schedule) {
  return "workflow " + schedule.workflow_id + " in workspace " + schedule.workspace_id +
         " (trigger " + std::to_string(schedule.trigger_index) + ")";
}

void log_skipped(const ScheduledWorkflow& schedule, std::size_t skipped, bool lower_bound,
                 const std::string& when) {
  if (skipped == 0) return;
  spdlog::info("schedule of {}: skipped {}{} fire(s) missed {} (catch_up: {})",
               describe(schedule), skipped, lower_bound ? "+" : "", when,
               triggers::to_string(schedule.trigger.catch_up));
}

}  // namespace

struct Scheduler::Impl {
  Impl(store::Store& store, runtime::Engine& engine, Now now)
      : store(store), engine(engine), now(std::move(now)) {}

  store::Store& store;
  runtime::Engine& engine;
  Now now;

  std::mutex lifecycle_mu;  // serialises start() and stop()
  mutable std::mutex mu;    // guards everything below; held for a whole tick
  std::condition_variable cv;
  std::map<Key, Entry> entries;
  // After a failed read of the marks, catch-up waits until then.
  std::optional<TimePoint> marks_retry_at;
  bool running = false;
  bool stopping = false;
  uint64_t generation = 0;  // bumped by set_schedules, so the thread looks again
  std::thread thread;

  Status tick_locked(TimePoint at, std::size_t& started);
  bool start_fires(const Entry& entry, const std::vector<Fire>& fires, TimePoint at,
                   std::size_t& started);
  std::optional<TimePoint> earliest_locked(TimePoint at) const;
  void loop();
};

Status Scheduler::Impl::tick_locked(TimePoint at, std::size_t& started) {
  Status result;
  bool need_marks = std::any_of(entries.begin(), entries.end(),
                                [](const auto& entry) { return !entry.second.caught_up; });
  bool have_marks = false;
  std::map<Key, TimePoint> marks;
  if (need_marks && !(marks_retry_at && at < *marks_retry_at)) {
    auto stored = store.schedule_marks();
    if (stored.ok()) {
      for (const auto& mark : *stored) {
        marks[{mark.workspace_id, mark.workflow_id, mark.trigger_index}] = mark.last_fire;
      }
      have_marks = true;
      marks_retry_at.reset();
    } else {
      spdlog::error("scheduler: reading the schedule marks failed: {}", stored.error().message);
      marks_retry_at = at + kRetryDelay;
      result = stored.error();
    }
  }

  for (auto& [key, entry] : entries) {
    if (entry.retry_at && at < *entry.retry_at) continue;
    const ScheduledWorkflow& schedule = entry.schedule;
    const triggers::ScheduleTrigger& trigger = schedule.trigger;
    std::vector<Fire> fires;
    TimePoint handled;
    if (!entry.caught_up) {
      if (!have_marks) continue;
      auto mark = marks.find(key);
      TimePoint last = mark != marks.end() ? mark->second : schedule.counting_from;
      auto missed = triggers::missed_fires(trigger, last, at);
      log_skipped(schedule, missed.skipped, missed.skipped_is_lower_bound,
                  "since " + format_iso8601(last));
      if (!missed.fires.empty()) {
        spdlog::info("schedule of {}: catching up {} missed fire(s)", describe(schedule),
                     missed.fires.size());
      }
      for (TimePoint fire : missed.fires) fires.push_back({fire, true});
      // A mark ahead of the clock (the clock went back) is not fired again.
      handled = std::max(at, last);
    } else {
      if (!entry.next || *entry.next > at) continue;
      TimePoint from = entry.handled_through;
      TimePoint cutoff = at - kOnTimeGrace;
      if (from < cutoff) {
        // Overdue by more than the grace: missed, as after a downtime.
        auto missed = triggers::missed_fires(trigger, from, cutoff);
        std::size_t skipped = missed.skipped;
        for (TimePoint fire : missed.fires) {
          if (trigger.catch_up == triggers::CatchUp::last && at - fire > trigger.window) {
            ++skipped;
            continue;
          }
          fires.push_back({fire, true});
        }
        log_skipped(schedule, skipped, missed.skipped_is_lower_bound, "by more than a minute");
        from = cutoff;
      }
      if (trigger.cron) {
        for (TimePoint fire :
             trigger.cron->fires_between(from, at, trigger.zone, triggers::kDefaultCatchUpLimit)) {
          fires.push_back({fire, false});
        }
      } else if (trigger.at && *trigger.at > from && *trigger.at <= at) {
        fires.push_back({*trigger.at, false});
      }
      handled = at;
    }

    if (!fires.empty() && !start_fires(entry, fires, at, started)) {
      entry.retry_at = at + kRetryDelay;
      continue;
    }
    entry.retry_at.reset();
    entry.caught_up = true;
    entry.handled_through = handled;
    entry.next = triggers::next_fire(trigger, handled);
  }
  return result;
}

// Starts one run per fire and records the last fire as the mark, in one commit. A fire whose run
// cannot be prepared (a required input without a default, a version that cannot be loaded) is
// logged and still counts as handled, so it is not tried again on every tick. False when the
// commit failed (nothing was stored; the caller tries again later).
bool Scheduler::Impl::start_fires(const Entry& entry, const std::vector<Fire>& fires,
                                  TimePoint at, std::size_t& started) {
  const ScheduledWorkflow& schedule = entry.schedule;
  std::string fired_at = format_iso8601(at);
  std::vector<runtime::PreparedRun> runs;
  std::optional<Error> failure;
  std::size_t failed = 0;
  for (const Fire& fire : fires) {
    runtime::RunRequest request;
    request.workspace_id = schedule.workspace_id;
    request.version_id = schedule.version_id;
    request.inputs = Json::object();
    request.trigger = Json{{"type", "schedule"},
                           {"scheduled_at", triggers::format_local(fire.at, schedule.trigger.zone)},
                           {"fired_at", fired_at},
                           {"late", fire.late},
                           {"index", schedule.trigger_index},
                           {"schedule", schedule.config}};
    auto prepared = engine.prepare_run(std::move(request));
    if (!prepared.ok()) {
      if (!failure) failure = prepared.error();
      ++failed;
      continue;
    }
    runs.push_back(std::move(prepared).value());
  }
  if (failure) {
    spdlog::error("schedule of {}: {} fire(s) started no run (recorded as fired): {}",
                  describe(schedule), failed, failure->message);
  }

  store::Commit commit;
  commit.schedule_marks.push_back(
      {schedule.workspace_id, schedule.workflow_id, schedule.trigger_index, fires.back().at});
  std::size_t count = runs.size();
  if (auto status = engine.start_prepared(std::move(runs), std::move(commit)); !status.ok()) {
    if (status.error().code == ErrorCode::failed_precondition) {
      // Another scheduler sharing the store recorded this fire first and started its runs.
      spdlog::debug("schedule of {}: {}", describe(schedule), status.error().message);
      return true;
    }
    spdlog::error("schedule of {}: storing {} fire(s) failed, trying again in {} s: {}",
                  describe(schedule), fires.size(),
                  std::chrono::duration_cast<std::chrono::seconds>(kRetryDelay).count(),
                  status.error().message);
    return false;
  }
  started += count;
  return true;
}

std::optional<TimePoint> Scheduler::Impl::earliest_locked(TimePoint at) const {
  std::optional<TimePoint> earliest;
  auto consider = [&earliest](TimePoint time) {
    if (!earliest || time < *earliest) earliest = time;
  };
  for (const auto& [key, entry] : entries) {
    std::optional<TimePoint> due;
    if (!entry.caught_up) {
      // Catch-up is due at once, or when the marks can be read again.
      due = marks_retry_at ? std::max(at, *marks_retry_at) : at;
    } else {
      due = entry.next;
    }
    if (!due) continue;
    if (entry.retry_at) due = std::max(*due, *entry.retry_at);
    consider(*due);
  }
  return earliest;
}

void Scheduler::Impl::loop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    std::size_t started = 0;
    (void)tick_locked(now(), started);  // failures are logged and retried after a delay
    TimePoint current = now();
    std::chrono::nanoseconds sleep = kMaxSleep;
    if (auto earliest = earliest_locked(current)) {
      sleep = std::clamp<std::chrono::nanoseconds>(*earliest - current,
                                                   std::chrono::nanoseconds::zero(), kMaxSleep);
    }
    if (sleep <= std::chrono::nanoseconds::zero()) continue;
    uint64_t seen = generation;
    cv.wait_for(lock, sleep, [&] { return stopping || generation != seen; });
  }
}

Scheduler::Scheduler(store::Store& store, runtime::Engine& engine, Now now)
    : impl_(std::make_unique<Impl>(store, engine, std::move(now))) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::set_schedules(std::vector<ScheduledWorkflow> schedules) {
  std::lock_guard lock(impl_->mu);
  std::map<Key, Entry> entries;
  for (auto& schedule : schedules) {
    Key key = key_of(schedule);
    if (entries.count(key)) {
      spdlog::warn("scheduler: schedule {} given twice; the last one counts", describe(schedule));
    }
    Entry entry;
    auto old = impl_->entries.find(key);
    if (old != impl_->entries.end()) {
      const Entry& previous = old->second;
      if (previous.schedule.version_id == schedule.version_id &&
          previous.schedule.config == schedule.config) {
        // Unchanged: keeps its place (next fire, catch-up done or not).
        entry = previous;
      } else if (previous.caught_up) {
        // A new version of the workflow: carries on from what the old one handled, with the
        // new version's schedule. Its mark stays in the store.
        entry.caught_up = true;
        entry.handled_through = std::max(previous.handled_through, schedule.counting_from);
        entry.next = triggers::next_fire(schedule.trigger, entry.handled_through);
      }
      // Otherwise the old one was never caught up: the new one catches up from the mark.
    }
    entry.schedule = std::move(schedule);
    entries[key] = std::move(entry);
  }
  impl_->entries = std::move(entries);
  ++impl_->generation;
  impl_->cv.notify_all();
}

Status Scheduler::start() {
  std::lock_guard lifecycle(impl_->lifecycle_mu);
  std::lock_guard lock(impl_->mu);
  if (impl_->running) {
    return make_error(ErrorCode::failed_precondition, "the scheduler is already running");
  }
  std::size_t started = 0;
  if (auto status = impl_->tick_locked(impl_->now(), started); !status.ok()) return status;
  if (started > 0) spdlog::info("scheduler: catch-up started {} run(s)", started);
  impl_->stopping = false;
  impl_->running = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->loop(); });
  return {};
}

void Scheduler::stop() {
  std::lock_guard lifecycle(impl_->lifecycle_mu);
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->running) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  std::lock_guard lock(impl_->mu);
  impl_->running = false;
  impl_->stopping = false;
}

size_t Scheduler::tick() {
  std::lock_guard lock(impl_->mu);
  std::size_t started = 0;
  (void)impl_->tick_locked(impl_->now(), started);
  return started;
}

std::optional<store::TimePoint> Scheduler::next_fire_time() const {
  std::lock_guard lock(impl_->mu);
  return impl_->earliest_locked(impl_->now());
}

}  // namespace herald::server
