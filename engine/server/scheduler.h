// The scheduler of `herald serve`: fires the `schedule` triggers of enabled deployed workflows.
// Each fire starts a run and records the fire time (a ScheduleMark) in the same transaction, so
// a fire is never run twice nor lost by a crash between the two. On start it catches up on fires
// missed while Herald was down, as each trigger's `catch_up` policy says.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/runtime/engine.h"
#include "engine/store/store.h"
#include "engine/triggers/schedule_trigger.h"

namespace herald::server {

struct ScheduledWorkflow {
  std::string workspace_id;
  std::string workflow_id;
  int64_t version_id = 0;   // the deployed version the runs start on
  int trigger_index = 0;    // position in the workflow's `triggers`
  triggers::ScheduleTrigger trigger;
  Json config = Json::object();      // the trigger as written (shown in trigger.schedule)
  store::TimePoint counting_from;    // when it was deployed: fires before this are not missed
};

class Scheduler {
 public:
  using Now = std::function<store::TimePoint()>;

  Scheduler(store::Store& store, runtime::Engine& engine,
            Now now = [] { return std::chrono::system_clock::now(); });
  ~Scheduler();  // stops
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Replaces the schedules (after a deploy, enable, disable or delete). A schedule whose
  // (workspace, workflow, trigger index) already had a mark keeps counting from it.
  void set_schedules(std::vector<ScheduledWorkflow> schedules);

  // Catches up (missed fires per policy), then starts the thread that fires each schedule at its
  // time.
  Status start();
  void stop();

  // Fires everything due at now(): catch-up the first time, due fires afterwards. Returns the
  // number of runs started. start()'s thread calls this; tests with a controlled clock call it
  // directly instead of start().
  size_t tick();

  // The next time any schedule fires, if any (for logs and tests). A schedule that has not
  // caught up yet (no tick since it was added) is due now.
  std::optional<store::TimePoint> next_fire_time() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::server
