// The store conformance suite, approvals part (see store_conformance.h): approvals and their
// compare-and-set writes, "pending for me", deadlines, policies, groups and delegations, tested
// through the Store interface only, so every implementation runs them.
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/unit/store/store_conformance.h"

namespace herald::store::testing {

namespace {

using std::chrono::milliseconds;


constexpr const char* kAbcSha256 =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

Json time_json(const std::optional<TimePoint>& time) {
  if (!time) return nullptr;
  return std::chrono::duration_cast<milliseconds>(time->time_since_epoch()).count();
}

Json to_json(const ApprovalRecord& a) {
  return {{"id", a.id},
          {"workspace_id", a.workspace_id},
          {"run_id", a.run_id},
          {"step_id", a.step_id},
          {"item", a.item},
          {"status", a.status},
          {"title", a.title},
          {"submitter", a.submitter},
          {"policy_name", a.policy_name},
          {"policy_version", a.policy_version},
          {"state", a.state},
          {"revision", a.revision},
          {"due_at", time_json(a.due_at)},
          {"created_at", time_json(a.created_at)},
          {"updated_at", time_json(a.updated_at)}};
}

Json to_json(const ApprovalPolicyRecord& p) {
  return {{"workspace_id", p.workspace_id},
          {"name", p.name},
          {"version", p.version},
          {"description", p.description},
          {"source", p.source},
          {"file_name", p.file_name},
          {"source_hash", p.source_hash},
          {"created_by", p.created_by},
          {"created_at", time_json(p.created_at)}};
}

Json to_json(const GroupRecord& g) {
  return {{"workspace_id", g.workspace_id},       {"name", g.name},
          {"description", g.description},         {"members", g.members},
          {"updated_by", g.updated_by},           {"created_at", time_json(g.created_at)},
          {"updated_at", time_json(g.updated_at)}};
}

Json to_json(const DelegationRecord& d) {
  return {{"workspace_id", d.workspace_id},       {"user_id", d.user_id},
          {"delegate_id", d.delegate_id},         {"starts_at", time_json(d.starts_at)},
          {"ends_at", time_json(d.ends_at)},      {"created_by", d.created_by},
          {"created_at", time_json(d.created_at)}};
}

template <typename T>
Json to_json(const std::vector<T>& records) {
  Json list = Json::array();
  for (const auto& r : records) list.push_back(to_json(r));
  return list;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Ids sort in creation order, as new ids from new_run_id() do.
std::string approval_id(int n) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "ap_%06d", n);
  return buffer;
}

ApprovalRecord make_approval(int n, const std::string& workspace_id = "acme",
                             const std::string& run_id = "run-1") {
  ApprovalRecord approval;
  approval.id = approval_id(n);
  approval.workspace_id = workspace_id;
  approval.run_id = run_id;
  approval.step_id = "review";
  approval.item = n;
  approval.status = "pending";
  approval.title = "Spring post " + std::to_string(n);
  approval.submitter = "user:sam";
  approval.policy_name = "brand";
  approval.policy_version = 2;
  approval.state = {{"levels", Json::array({{{"name", "legal"}, {"decisions", Json::array()}}})},
                    {"n", n},
                    {"text", "caf\u00e9 \"quoted\""}};
  approval.revision = 1;
  approval.created_at = at(kT0 + n);
  approval.updated_at = at(kT0 + n);
  return approval;
}

ApprovalWrite new_approval(ApprovalRecord approval, std::vector<ApprovalAssignment> awaiting = {}) {
  ApprovalWrite write;
  write.approval = std::move(approval);
  write.awaiting = std::move(awaiting);
  return write;
}

// The next revision of `approval`, as a decision writes it.
ApprovalWrite next_revision(ApprovalRecord approval,
                            std::vector<ApprovalAssignment> awaiting = {}) {
  ApprovalWrite write;
  write.expected_revision = approval.revision;
  approval.revision += 1;
  approval.updated_at += milliseconds(1000);
  write.approval = std::move(approval);
  write.awaiting = std::move(awaiting);
  return write;
}

EventRecord approval_event(const std::string& workspace_id, const std::string& name,
                           const std::string& id) {
  EventRecord event;
  event.workspace_id = workspace_id;
  event.name = name;
  event.payload = {{"approval_id", id}};
  event.source = "api:tok-1";
  event.created_at = at(kT0);
  return event;
}

AuditRecord approval_audit(const std::string& workspace_id, const std::string& id) {
  AuditRecord record;
  record.workspace_id = workspace_id;
  record.actor = "user:alice";
  record.action = "approval.decide";
  record.object_type = "approval";
  record.object_id = id;
  record.details = {{"decision", "approve"}};
  record.at = at(kT0);
  return record;
}

TimerRecord rerun_timer(const std::string& run_id, int item, int64_t due = kT0) {
  TimerRecord timer;
  timer.run_id = run_id;
  timer.step_id = "review";
  timer.item = item;
  timer.kind = "rerun";
  timer.due_at = at(due);
  return timer;
}

std::vector<std::string> ids_of(const std::vector<ApprovalRecord>& approvals) {
  std::vector<std::string> ids;
  for (const auto& approval : approvals) ids.push_back(approval.id);
  return ids;
}

ApprovalFilter awaiting(const std::string& workspace_id, std::vector<std::string> principals) {
  ApprovalFilter filter;
  filter.workspace_id = workspace_id;
  filter.awaiting = std::move(principals);
  return filter;
}

AuditFilter audit_of(const std::string& workspace_id) {
  AuditFilter filter;
  filter.workspace_id = workspace_id;
  return filter;
}

}  // namespace

// --- Approvals ---

TEST_P(StoreConformance, ApprovalRoundTripsEveryField) {
  ApprovalRecord approval = make_approval(1);
  approval.due_at = at(kT0 + 3'600'000);
  ASSERT_OK(store().write_approval(new_approval(approval)));
  EXPECT_EQ(to_json(value_of(store().get_approval("acme", approval.id))), to_json(approval));
  auto found = value_of(store().find_step_approval("run-1", "review", 1));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(to_json(*found), to_json(approval));
  EXPECT_FALSE(value_of(store().find_step_approval("run-1", "review", 2)).has_value());
  EXPECT_FALSE(value_of(store().find_step_approval("run-1", "other", 1)).has_value());
  EXPECT_FALSE(value_of(store().find_step_approval("run-2", "review", 1)).has_value());
  EXPECT_CODE(store().get_approval("acme", "ap_missing"), ErrorCode::not_found);
  EXPECT_EQ(to_json(value_of(store().get_approval_by_id(approval.id))), to_json(approval));
  EXPECT_CODE(store().get_approval_by_id("ap_missing"), ErrorCode::not_found);

  // The workspace of `herald run`, an empty state, no policy and no deadline.
  ApprovalRecord local = make_approval(2, "", "run-local");
  local.item = -1;
  local.policy_name = "";
  local.policy_version = 0;
  local.state = Json::object();
  ASSERT_OK(store().write_approval(new_approval(local)));
  EXPECT_EQ(to_json(value_of(store().get_approval("", local.id))), to_json(local));
  EXPECT_EQ(to_json(*value_of(store().find_step_approval("run-local", "review", -1))),
            to_json(local));
}

TEST_P(StoreConformance, AnApprovalOfAnotherWorkspaceIsNotFound) {
  ApprovalRecord approval = make_approval(1);
  ASSERT_OK(store().write_approval(new_approval(approval, {{"user:alice", "legal"}})));
  EXPECT_CODE(store().get_approval("globex", approval.id), ErrorCode::not_found);
  EXPECT_CODE(store().get_approval("", approval.id), ErrorCode::not_found);
  // Signed links name no workspace: by id alone, any workspace's approval is found.
  EXPECT_EQ(value_of(store().get_approval_by_id(approval.id)).workspace_id, "acme");
  // Nor can it be written through another workspace.
  ApprovalRecord hijack = approval;
  hijack.workspace_id = "globex";
  EXPECT_CODE(store().write_approval(next_revision(hijack, {{"user:mallory", "legal"}})),
              ErrorCode::not_found);
  EXPECT_TRUE(value_of(store().list_approvals(awaiting("globex", {"user:mallory"}))).empty());
  EXPECT_EQ(to_json(value_of(store().get_approval("acme", approval.id))), to_json(approval));
  // find_step_approval is by step, whatever the workspace.
  EXPECT_TRUE(value_of(store().find_step_approval("run-1", "review", 1)).has_value());
}

TEST_P(StoreConformance, InsertingAnApprovalTwiceIsAlreadyExistsAndWritesNothing) {
  ApprovalRecord approval = make_approval(1);
  ASSERT_OK(store().write_approval(new_approval(approval, {{"user:alice", "legal"}})));

  // The same id, for another step.
  ApprovalRecord same_id = make_approval(1);
  same_id.step_id = "other";
  same_id.title = "changed";
  ApprovalWrite first = new_approval(same_id, {{"user:bob", "legal"}});
  first.events = {approval_event("acme", "approval.requested", same_id.id)};
  first.audit = {approval_audit("acme", same_id.id)};
  auto refused = store().write_approval(first);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::already_exists);
  EXPECT_TRUE(contains(refused.error().message, approval.id)) << refused.error().message;

  // Another id, for the same run step and item.
  ApprovalRecord same_step = make_approval(1);
  same_step.id = approval_id(2);
  ApprovalWrite second = new_approval(same_step, {{"user:bob", "legal"}});
  second.events = first.events;
  second.audit = first.audit;
  refused = store().write_approval(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::already_exists);
  EXPECT_TRUE(contains(refused.error().message, "run-1")) << refused.error().message;

  EXPECT_EQ(to_json(value_of(store().get_approval("acme", approval.id))), to_json(approval));
  EXPECT_CODE(store().get_approval("acme", same_step.id), ErrorCode::not_found);
  EXPECT_TRUE(value_of(store().list_approvals(awaiting("acme", {"user:bob"}))).empty());
  EXPECT_TRUE(value_of(store().pending_events(10)).empty());
  EXPECT_TRUE(value_of(store().list_audit(audit_of("acme"))).empty());
}

TEST_P(StoreConformance, ApprovalWritesAreCompareAndSet) {
  insert_run("run-1", "wf", RunState::waiting, "acme");
  ApprovalRecord approval = make_approval(1);
  ASSERT_OK(store().write_approval(new_approval(approval, {{"user:alice", "legal"}})));

  // A decision on revision 1: revision 2.
  ApprovalWrite decided = next_revision(approval, {{"user:bob", "brand"}});
  decided.approval.state["levels"][0]["decisions"].push_back({{"by", "user:alice"}});
  decided.approval.due_at = at(kT0 + 60'000);
  decided.events = {approval_event("acme", "approval.decided", approval.id)};
  decided.audit = {approval_audit("acme", approval.id)};
  ASSERT_OK(store().write_approval(decided));
  ApprovalRecord stored = value_of(store().get_approval("acme", approval.id));
  EXPECT_EQ(to_json(stored), to_json(decided.approval));
  EXPECT_EQ(stored.revision, 2);
  EXPECT_EQ(value_of(store().pending_events(10)).size(), 1u);
  EXPECT_EQ(value_of(store().list_audit(audit_of("acme"))).size(), 1u);

  // A second decision made on revision 1 too: it lost the race, and nothing of it is written.
  ApprovalWrite stale = next_revision(approval, {{"user:carol", "legal"}});
  stale.approval.status = "rejected";
  stale.events = {approval_event("acme", "approval.decided", approval.id)};
  stale.audit = {approval_audit("acme", approval.id)};
  stale.wake = rerun_timer("run-1", 1);
  auto refused = store().write_approval(stale);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::aborted);
  EXPECT_TRUE(contains(refused.error().message, approval.id)) << refused.error().message;
  EXPECT_TRUE(contains(refused.error().message, "revision 2")) << refused.error().message;
  EXPECT_EQ(to_json(value_of(store().get_approval("acme", approval.id))), to_json(stored));
  EXPECT_TRUE(value_of(store().list_approvals(awaiting("acme", {"user:carol"}))).empty());
  EXPECT_EQ(ids_of(value_of(store().list_approvals(awaiting("acme", {"user:bob"})))),
            std::vector<std::string>{approval.id});
  EXPECT_EQ(value_of(store().pending_events(10)).size(), 1u);
  EXPECT_EQ(value_of(store().list_audit(audit_of("acme"))).size(), 1u);
  EXPECT_TRUE(value_of(store().timers_of_run("run-1")).empty());

  // Re-read and decide again: fine.
  ApprovalWrite retried = next_revision(stored, {});
  retried.approval.status = "rejected";
  retried.approval.due_at.reset();
  ASSERT_OK(store().write_approval(retried));
  EXPECT_EQ(to_json(value_of(store().get_approval("acme", approval.id))),
            to_json(retried.approval));

  // An update of an approval that is not stored.
  EXPECT_CODE(store().write_approval(next_revision(make_approval(9))), ErrorCode::not_found);
  // A write that would not move the revision forward cannot be a compare-and-set.
  ApprovalWrite same = next_revision(retried.approval);
  same.approval.revision = *same.expected_revision;
  EXPECT_CODE(store().write_approval(same), ErrorCode::invalid_argument);
}

TEST_P(StoreConformance, EachWriteReplacesWhoTheApprovalAwaits) {
  ApprovalRecord approval = make_approval(1);
  ASSERT_OK(store().write_approval(
      new_approval(approval, {{"user:alice", "legal"}, {"user:bob", "legal"}})));
  EXPECT_EQ(value_of(store().list_approvals(awaiting("acme", {"user:alice"}))).size(), 1u);
  EXPECT_EQ(value_of(store().list_approvals(awaiting("acme", {"user:bob"}))).size(), 1u);

  // Legal approved: brand is next, and a principal named twice is one assignment.
  ApprovalWrite next = next_revision(
      approval,
      {{"user:carol", "brand"}, {"user:carol", "brand"}, {"email:ann@example.com", "brand"}});
  ASSERT_OK(store().write_approval(next));
  EXPECT_TRUE(value_of(store().list_approvals(awaiting("acme", {"user:alice"}))).empty());
  EXPECT_TRUE(value_of(store().list_approvals(awaiting("acme", {"user:bob"}))).empty());
  EXPECT_EQ(value_of(store().list_approvals(awaiting("acme", {"user:carol"}))).size(), 1u);
  EXPECT_EQ(value_of(store().list_approvals(awaiting("acme", {"email:ann@example.com"}))).size(),
            1u);

  // Finished: nobody is asked any more.
  ApprovalWrite done = next_revision(next.approval, {});
  done.approval.status = "approved";
  ASSERT_OK(store().write_approval(done));
  for (const char* who : {"user:alice", "user:bob", "user:carol", "email:ann@example.com"}) {
    EXPECT_TRUE(value_of(store().list_approvals(awaiting("acme", {who}))).empty()) << who;
  }
  EXPECT_EQ(value_of(store().get_approval("acme", approval.id)).status, "approved");
}

TEST_P(StoreConformance, PendingForMeListsEachApprovalOnceNewestFirstAndPages) {
  // alice: 1, 2 (on two levels), 4, 6; bob: 2, 3, 4, 5; carol: 7. In globex, alice: 8.
  auto write = [&](int n, std::vector<ApprovalAssignment> who,
                   const std::string& workspace_id = "acme", const std::string& run_id = "run-1") {
    ASSERT_OK(store().write_approval(new_approval(make_approval(n, workspace_id, run_id), who)));
  };
  write(1, {{"user:alice", "legal"}});
  write(2, {{"user:alice", "legal"}, {"user:alice", "brand"}, {"user:bob", "brand"}});
  write(3, {{"user:bob", "legal"}}, "acme", "run-2");
  write(4, {{"user:bob", "legal"}, {"user:alice", "legal"}}, "acme", "run-2");
  write(5, {{"user:bob", "legal"}});
  write(6, {{"user:alice", "legal"}}, "acme", "run-2");
  write(7, {{"user:carol", "legal"}});
  write(8, {{"user:alice", "legal"}}, "globex", "run-3");

  auto ids = [&](const ApprovalFilter& filter) {
    return ids_of(value_of(store().list_approvals(filter)));
  };
  using Ids = std::vector<std::string>;
  const std::string a1 = approval_id(1), a2 = approval_id(2), a3 = approval_id(3),
                    a4 = approval_id(4), a5 = approval_id(5), a6 = approval_id(6),
                    a8 = approval_id(8);
  EXPECT_EQ(ids(awaiting("acme", {"user:alice"})), (Ids{a6, a4, a2, a1}));
  EXPECT_EQ(ids(awaiting("acme", {"user:bob"})), (Ids{a5, a4, a3, a2}));
  // Several principals (the caller and who delegated to them): each approval once.
  EXPECT_EQ(ids(awaiting("acme", {"user:alice", "user:bob"})), (Ids{a6, a5, a4, a3, a2, a1}));
  EXPECT_EQ(ids(awaiting("acme", {"user:bob", "user:alice", "user:bob", "user:nobody"})),
            (Ids{a6, a5, a4, a3, a2, a1}));
  EXPECT_TRUE(ids(awaiting("acme", {"user:nobody"})).empty());
  // Full records, state included.
  auto full = value_of(store().list_approvals(awaiting("acme", {"user:alice", "user:bob"})));
  ASSERT_EQ(full.size(), 6u);
  EXPECT_EQ(to_json(full[4]), to_json(make_approval(2)));

  // Pages of two with a cursor.
  ApprovalFilter page = awaiting("acme", {"user:alice", "user:bob"});
  page.limit = 2;
  Ids seen;
  for (int i = 0; i < 5; ++i) {
    Ids got = ids(page);
    if (got.empty()) break;
    EXPECT_LE(got.size(), 2u);
    seen.insert(seen.end(), got.begin(), got.end());
    page.before_id = got.back();
  }
  EXPECT_EQ(seen, (Ids{a6, a5, a4, a3, a2, a1}));
  page = awaiting("acme", {"user:alice"});
  page.before_id = a4;
  EXPECT_EQ(ids(page), (Ids{a2, a1}));

  // Another workspace's approvals never show, whoever asks.
  EXPECT_EQ(ids(awaiting("globex", {"user:alice", "user:bob"})), (Ids{a8}));
  EXPECT_TRUE(ids(awaiting("", {"user:alice"})).empty());

  // Combined with the other filters.
  ApprovalFilter in_run = awaiting("acme", {"user:alice", "user:bob"});
  in_run.run_id = "run-2";
  EXPECT_EQ(ids(in_run), (Ids{a6, a4, a3}));
  in_run.before_id = a6;
  in_run.limit = 1;
  EXPECT_EQ(ids(in_run), (Ids{a4}));
  in_run.run_id = "run-3";
  in_run.before_id.reset();
  EXPECT_TRUE(ids(in_run).empty());
  ApprovalFilter pending = awaiting("acme", {"user:alice"});
  pending.status = "pending";
  EXPECT_EQ(ids(pending), (Ids{a6, a4, a2, a1}));
  pending.status = "approved";
  EXPECT_TRUE(ids(pending).empty());
}

TEST_P(StoreConformance, ListApprovalsNewestFirstWithFiltersAndCursor) {
  using Ids = std::vector<std::string>;
  for (int n = 1; n <= 6; ++n) {
    ApprovalRecord approval = make_approval(n, "acme", n % 2 == 0 ? "run-even" : "run-odd");
    if (n == 3 || n == 4) approval.status = "approved";
    ASSERT_OK(store().write_approval(new_approval(approval)));
  }
  ASSERT_OK(store().write_approval(new_approval(make_approval(7, "globex", "run-g"))));
  auto ids = [&](const ApprovalFilter& filter) {
    return ids_of(value_of(store().list_approvals(filter)));
  };
  ApprovalFilter filter;
  filter.workspace_id = "acme";
  EXPECT_EQ(ids(filter), (Ids{approval_id(6), approval_id(5), approval_id(4), approval_id(3),
                              approval_id(2), approval_id(1)}));
  EXPECT_EQ(to_json(value_of(store().list_approvals(filter)).back()),
            to_json(make_approval(1, "acme", "run-odd")));
  filter.status = "pending";
  EXPECT_EQ(ids(filter), (Ids{approval_id(6), approval_id(5), approval_id(2), approval_id(1)}));
  filter.run_id = "run-even";
  EXPECT_EQ(ids(filter), (Ids{approval_id(6), approval_id(2)}));
  filter.before_id = approval_id(6);
  EXPECT_EQ(ids(filter), (Ids{approval_id(2)}));
  filter.status.reset();
  EXPECT_EQ(ids(filter), (Ids{approval_id(4), approval_id(2)}));
  filter.run_id.reset();
  filter.limit = 2;
  EXPECT_EQ(ids(filter), (Ids{approval_id(5), approval_id(4)}));
  filter.limit = 0;  // clamped to 1
  EXPECT_EQ(ids(filter), (Ids{approval_id(5)}));
  filter.limit = 5000;
  filter.before_id.reset();
  EXPECT_EQ(ids(filter).size(), 6u);
  filter.run_id = "run-g";  // another workspace's run
  EXPECT_TRUE(ids(filter).empty());
  filter.workspace_id = "globex";
  EXPECT_EQ(ids(filter), (Ids{approval_id(7)}));
  filter.workspace_id = "initech";
  filter.run_id.reset();
  EXPECT_TRUE(ids(filter).empty());
}

TEST_P(StoreConformance, DueApprovalsArePendingOnesSoonestFirst) {
  auto write = [&](int n, std::optional<int64_t> due, const std::string& status = "pending",
                   const std::string& workspace_id = "acme") {
    ApprovalRecord approval = make_approval(n, workspace_id);
    approval.status = status;
    if (due) approval.due_at = at(*due);
    ASSERT_OK(store().write_approval(new_approval(approval)));
  };
  write(1, kT0 + 300);
  write(2, kT0 + 100);
  write(3, std::nullopt);                    // nothing waits on time
  write(4, kT0 + 50, "approved");            // finished: its deadline no longer matters
  write(5, kT0 + 200, "pending", "globex");  // every workspace
  write(6, kT0 + 100);                       // the same time as 2: by id
  write(7, kT0 + 10'000);                    // not due yet

  using Ids = std::vector<std::string>;
  EXPECT_EQ(ids_of(value_of(store().due_approvals(at(kT0 + 300), 10))),
            (Ids{approval_id(2), approval_id(6), approval_id(5), approval_id(1)}));
  EXPECT_EQ(ids_of(value_of(store().due_approvals(at(kT0 + 300), 2))),
            (Ids{approval_id(2), approval_id(6)}));
  EXPECT_EQ(ids_of(value_of(store().due_approvals(at(kT0 + 99), 10))), Ids{});
  EXPECT_TRUE(value_of(store().due_approvals(at(kT0 + 300), 0)).empty());
  EXPECT_TRUE(value_of(store().due_approvals(at(kT0 + 300), -1)).empty());
  auto due = value_of(store().due_approvals(at(kT0 + 100), 10));
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].due_at, at(kT0 + 100));
  EXPECT_EQ(due[0].state, make_approval(2).state);

  // Expired: no longer pending, no longer due.
  ApprovalRecord second = value_of(store().get_approval("acme", approval_id(2)));
  ApprovalWrite expired = next_revision(second);
  expired.approval.status = "expired";
  ASSERT_OK(store().write_approval(expired));
  EXPECT_EQ(ids_of(value_of(store().due_approvals(at(kT0 + 100), 10))), Ids{approval_id(6)});
}

TEST_P(StoreConformance, AnApprovalWritesItsEventsAuditAndWakeTimer) {
  insert_run("run-1", "wf", RunState::waiting, "acme");
  ApprovalRecord approval = make_approval(1);
  ApprovalWrite write = new_approval(approval, {{"user:alice", "legal"}});
  write.events = {approval_event("acme", "approval.requested", approval.id),
                  approval_event("acme", "approval.assigned", approval.id)};
  write.audit = {approval_audit("acme", approval.id)};
  ASSERT_OK(store().write_approval(write));
  auto events = value_of(store().pending_events(10));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "approval.requested");
  EXPECT_EQ(events[1].name, "approval.assigned");
  EXPECT_LT(events[0].id, events[1].id);
  EXPECT_EQ(events[0].payload, Json({{"approval_id", approval.id}}));
  auto audit = value_of(store().list_audit(audit_of("acme")));
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "approval.decide");
  EXPECT_EQ(audit[0].details, Json({{"decision", "approve"}}));
  EXPECT_TRUE(value_of(store().timers_of_run("run-1")).empty());

  // A decision through the API wakes the step, with a timer of the new kind "rerun".
  ApprovalWrite decided = next_revision(approval);
  decided.approval.status = "approved";
  decided.wake = rerun_timer("run-1", 1, kT0 + 5);
  ASSERT_OK(store().write_approval(decided));
  auto timers = value_of(store().timers_of_run("run-1"));
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_GT(timers[0].id, 0);
  EXPECT_EQ(timers[0].kind, "rerun");
  EXPECT_EQ(timers[0].step_id, "review");
  EXPECT_EQ(timers[0].item, 1);
  EXPECT_EQ(timers[0].due_at, at(kT0 + 5));
  auto due = value_of(store().due_timers(at(kT0 + 5), 10));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].kind, "rerun");
}

TEST_P(StoreConformance, AWakeForARunThatIsNotStoredFailsTheWholeWrite) {
  ApprovalRecord approval = make_approval(1);
  ApprovalWrite write = new_approval(approval, {{"user:alice", "legal"}});
  write.events = {approval_event("acme", "approval.requested", approval.id)};
  write.audit = {approval_audit("acme", approval.id)};
  write.wake = rerun_timer("run-1", 1);
  auto refused = store().write_approval(write);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::failed_precondition);
  EXPECT_TRUE(contains(refused.error().message, "run-1")) << refused.error().message;
  EXPECT_CODE(store().get_approval("acme", approval.id), ErrorCode::not_found);
  EXPECT_FALSE(value_of(store().find_step_approval("run-1", "review", 1)).has_value());
  EXPECT_TRUE(value_of(store().list_approvals(awaiting("acme", {"user:alice"}))).empty());
  EXPECT_TRUE(value_of(store().pending_events(10)).empty());
  EXPECT_TRUE(value_of(store().list_audit(audit_of("acme"))).empty());

  // The same for an update: the approval keeps its revision and assignments.
  write.wake.reset();
  write.events.clear();
  write.audit.clear();
  ASSERT_OK(store().write_approval(write));
  ApprovalWrite decided = next_revision(approval, {{"user:bob", "brand"}});
  decided.approval.status = "approved";
  decided.events = {approval_event("acme", "approval.decided", approval.id)};
  decided.wake = rerun_timer("run-1", 1);
  EXPECT_CODE(store().write_approval(decided), ErrorCode::failed_precondition);
  EXPECT_EQ(to_json(value_of(store().get_approval("acme", approval.id))), to_json(approval));
  EXPECT_EQ(value_of(store().list_approvals(awaiting("acme", {"user:alice"}))).size(), 1u);
  EXPECT_TRUE(value_of(store().list_approvals(awaiting("acme", {"user:bob"}))).empty());
  EXPECT_TRUE(value_of(store().pending_events(10)).empty());
  // Once the run is stored, the same write goes through.
  insert_run("run-1", "wf", RunState::waiting, "acme");
  ASSERT_OK(store().write_approval(decided));
  EXPECT_EQ(value_of(store().timers_of_run("run-1")).size(), 1u);
}

TEST_P(StoreConformance, ApprovalsSurviveReopening) {
  if (!harness().persistent()) GTEST_SKIP() << "this store does not outlive its handle";
  ApprovalRecord approval = make_approval(1);
  approval.due_at = at(kT0 + 500);
  ASSERT_OK(store().write_approval(new_approval(approval, {{"user:alice", "legal"}})));
  ApprovalPolicyRecord policy;
  policy.workspace_id = "acme";
  policy.name = "brand";
  policy.source = "levels: []";
  policy.created_at = at(kT0);
  auto stored_policy = value_of(store().put_approval_policy(policy));
  GroupRecord group{"acme", "legal", "", {"alice"}, "user:admin", at(kT0), at(kT0)};
  ASSERT_OK(store().put_group(group));
  DelegationRecord delegation{"acme",       "alice",      "bob",  std::nullopt,
                              std::nullopt, "user:alice", at(kT0)};
  ASSERT_OK(store().put_delegation(delegation));

  reopen();
  EXPECT_EQ(to_json(value_of(store().get_approval("acme", approval.id))), to_json(approval));
  EXPECT_EQ(ids_of(value_of(store().list_approvals(awaiting("acme", {"user:alice"})))),
            std::vector<std::string>{approval.id});
  EXPECT_EQ(ids_of(value_of(store().due_approvals(at(kT0 + 500), 10))),
            std::vector<std::string>{approval.id});
  EXPECT_EQ(to_json(value_of(store().get_approval_policy("acme", "brand"))),
            to_json(stored_policy));
  EXPECT_EQ(to_json(value_of(store().get_group("acme", "legal"))), to_json(group));
  EXPECT_EQ(to_json(*value_of(store().get_delegation("acme", "alice"))), to_json(delegation));
  // And the compare-and-set goes on from the stored revision.
  ASSERT_OK(store().write_approval(next_revision(approval)));
  EXPECT_CODE(store().write_approval(next_revision(approval)), ErrorCode::aborted);
}

// --- Approval policies ---

TEST_P(StoreConformance, ApprovalPoliciesGetAVersionPerChange) {
  ApprovalPolicyRecord policy;
  policy.workspace_id = "acme";
  policy.name = "brand";
  policy.description = "Brand review";
  policy.source = "abc";
  policy.file_name = "brand.yaml";
  policy.created_by = "user:alice";
  policy.created_at = at(kT0);
  auto v1 = value_of(store().put_approval_policy(policy));
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.source_hash, kAbcSha256);
  EXPECT_EQ(v1.created_at, at(kT0));
  EXPECT_EQ(v1.source, "abc");
  EXPECT_EQ(v1.created_by, "user:alice");
  EXPECT_EQ(to_json(value_of(store().get_approval_policy("acme", "brand"))), to_json(v1));

  // The same source and description: the same version, nothing written.
  ApprovalPolicyRecord again = policy;
  again.created_by = "user:bob";
  again.created_at = at(kT0 + 1000);
  EXPECT_EQ(to_json(value_of(store().put_approval_policy(again))), to_json(v1));
  EXPECT_EQ(value_of(store().list_approval_policy_versions("acme", "brand")).size(), 1u);

  // A new description, or a new source: a new version.
  ApprovalPolicyRecord described = policy;
  described.description = "Brand and legal review";
  described.created_at = at(kT0 + 2000);
  auto v2 = value_of(store().put_approval_policy(described));
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v2.source_hash, kAbcSha256);
  ApprovalPolicyRecord changed = described;
  changed.source = "abc\nlevels: [legal]";
  changed.created_at = at(kT0 + 3000);
  auto v3 = value_of(store().put_approval_policy(changed));
  EXPECT_EQ(v3.version, 3);
  EXPECT_NE(v3.source_hash, kAbcSha256);
  EXPECT_EQ(v3.source_hash.size(), 64u);
  // Back to an older source: still a new version (approvals keep the one they started with).
  auto v4 = value_of(store().put_approval_policy(policy));
  EXPECT_EQ(v4.version, 4);
  EXPECT_EQ(v4.source_hash, kAbcSha256);

  EXPECT_EQ(to_json(value_of(store().get_approval_policy("acme", "brand"))), to_json(v4));
  EXPECT_EQ(to_json(value_of(store().get_approval_policy("acme", "brand", 1))), to_json(v1));
  EXPECT_EQ(to_json(value_of(store().get_approval_policy("acme", "brand", 3))), to_json(v3));
  EXPECT_CODE(store().get_approval_policy("acme", "brand", 5), ErrorCode::not_found);
  EXPECT_CODE(store().get_approval_policy("acme", "legal"), ErrorCode::not_found);
  EXPECT_CODE(store().get_approval_policy("globex", "brand"), ErrorCode::not_found);
  EXPECT_EQ(to_json(value_of(store().list_approval_policy_versions("acme", "brand"))),
            to_json(std::vector<ApprovalPolicyRecord>{v4, v3, v2, v1}));
  EXPECT_TRUE(value_of(store().list_approval_policy_versions("acme", "legal")).empty());
  EXPECT_TRUE(value_of(store().list_approval_policy_versions("globex", "brand")).empty());
}

TEST_P(StoreConformance, ApprovalPoliciesListTheNewestOfEachByName) {
  auto put = [&](const std::string& workspace_id, const std::string& name,
                 const std::string& source) {
    ApprovalPolicyRecord policy;
    policy.workspace_id = workspace_id;
    policy.name = name;
    policy.source = source;
    policy.file_name = name + ".yaml";
    policy.created_at = at(kT0);
    return value_of(store().put_approval_policy(policy));
  };
  put("acme", "social", "v1");
  auto social = put("acme", "social", "v2");
  auto brand = put("acme", "brand", "v1");
  put("acme", "legal", "v1");
  put("acme", "legal", "v2");
  auto legal = put("acme", "legal", "v3");
  auto other = put("globex", "brand", "globex v1");
  EXPECT_EQ(brand.version, 1);
  EXPECT_EQ(legal.version, 3);
  EXPECT_EQ(other.version, 1);  // numbered per workspace
  EXPECT_EQ(to_json(value_of(store().list_approval_policies("acme"))),
            to_json(std::vector<ApprovalPolicyRecord>{brand, legal, social}));
  EXPECT_EQ(to_json(value_of(store().list_approval_policies("globex"))),
            to_json(std::vector<ApprovalPolicyRecord>{other}));
  EXPECT_TRUE(value_of(store().list_approval_policies("initech")).empty());
}

// --- Groups ---

TEST_P(StoreConformance, GroupsUpsertKeepingCreatedAtWithMembersSortedOnce) {
  GroupRecord group{"acme",       "legal", "The legal team", {"carol", "alice", "bob", "alice"},
                    "user:admin", at(kT0), at(kT0)};
  ASSERT_OK(store().put_group(group));
  GroupRecord stored = value_of(store().get_group("acme", "legal"));
  EXPECT_EQ(stored.members, (std::vector<std::string>{"alice", "bob", "carol"}));
  EXPECT_EQ(stored.description, "The legal team");
  EXPECT_EQ(stored.updated_by, "user:admin");
  EXPECT_EQ(stored.created_at, at(kT0));
  EXPECT_EQ(stored.updated_at, at(kT0));

  GroupRecord replaced{"acme",       "legal",       "Legal",      {"dave"},
                       "user:alice", at(kT0 + 500), at(kT0 + 500)};
  ASSERT_OK(store().put_group(replaced));
  stored = value_of(store().get_group("acme", "legal"));
  EXPECT_EQ(stored.members, std::vector<std::string>{"dave"});
  EXPECT_EQ(stored.description, "Legal");
  EXPECT_EQ(stored.updated_by, "user:alice");
  EXPECT_EQ(stored.created_at, at(kT0));  // kept
  EXPECT_EQ(stored.updated_at, at(kT0 + 500));

  GroupRecord empty{"acme", "nobody", "", {}, "user:admin", at(kT0), at(kT0)};
  ASSERT_OK(store().put_group(empty));
  EXPECT_TRUE(value_of(store().get_group("acme", "nobody")).members.empty());

  // Members are user ids.
  GroupRecord bad{"acme", "bad", "", {"alice", "Not A User"}, "user:admin", at(kT0), at(kT0)};
  EXPECT_CODE(store().put_group(bad), ErrorCode::invalid_argument);
  EXPECT_CODE(store().get_group("acme", "bad"), ErrorCode::not_found);
}

TEST_P(StoreConformance, GroupsAreListedByNameDeletedAndScopedToTheirWorkspace) {
  for (const char* name : {"social", "brand", "legal"}) {
    ASSERT_OK(store().put_group({"acme", name, "", {"alice"}, "user:admin", at(kT0), at(kT0)}));
  }
  ASSERT_OK(store().put_group({"globex", "legal", "", {"zed"}, "user:admin", at(kT0), at(kT0)}));
  auto names = [&](const std::string& workspace_id) {
    std::vector<std::string> result;
    for (const auto& group : value_of(store().list_groups(workspace_id))) {
      result.push_back(group.name);
    }
    return result;
  };
  EXPECT_EQ(names("acme"), (std::vector<std::string>{"brand", "legal", "social"}));
  EXPECT_EQ(names("globex"), std::vector<std::string>{"legal"});
  EXPECT_EQ(value_of(store().get_group("globex", "legal")).members,
            std::vector<std::string>{"zed"});
  EXPECT_CODE(store().get_group("globex", "brand"), ErrorCode::not_found);

  ASSERT_OK(store().delete_group("acme", "legal"));
  EXPECT_CODE(store().get_group("acme", "legal"), ErrorCode::not_found);
  EXPECT_CODE(store().delete_group("acme", "legal"), ErrorCode::not_found);
  EXPECT_CODE(store().delete_group("globex", "brand"), ErrorCode::not_found);
  EXPECT_EQ(names("acme"), (std::vector<std::string>{"brand", "social"}));
  EXPECT_EQ(names("globex"), std::vector<std::string>{"legal"});
}

// --- Delegations ---

TEST_P(StoreConformance, DelegationsAreOnePerUserAndReplaced) {
  EXPECT_FALSE(value_of(store().get_delegation("acme", "alice")).has_value());
  DelegationRecord delegation{"acme",         "alice",      "bob",      at(kT0),
                              at(kT0 + 1000), "user:alice", at(kT0 - 5)};
  ASSERT_OK(store().put_delegation(delegation));
  EXPECT_EQ(to_json(*value_of(store().get_delegation("acme", "alice"))), to_json(delegation));

  DelegationRecord replaced{"acme",       "alice",      "carol",    std::nullopt,
                            std::nullopt, "user:admin", at(kT0 + 7)};
  ASSERT_OK(store().put_delegation(replaced));
  EXPECT_EQ(to_json(*value_of(store().get_delegation("acme", "alice"))), to_json(replaced));
  EXPECT_TRUE(value_of(store().delegations_to("acme", "bob", at(kT0))).empty());
  EXPECT_FALSE(value_of(store().get_delegation("globex", "alice")).has_value());

  EXPECT_CODE(store().delete_delegation("globex", "alice"), ErrorCode::not_found);
  ASSERT_OK(store().delete_delegation("acme", "alice"));
  EXPECT_FALSE(value_of(store().get_delegation("acme", "alice")).has_value());
  EXPECT_CODE(store().delete_delegation("acme", "alice"), ErrorCode::not_found);

  // Both ends are user ids.
  DelegationRecord bad = delegation;
  bad.delegate_id = "user:bob";
  EXPECT_CODE(store().put_delegation(bad), ErrorCode::invalid_argument);
  EXPECT_FALSE(value_of(store().get_delegation("acme", "alice")).has_value());
}

TEST_P(StoreConformance, DelegationsToAUserAreThoseInForceAtTheTime) {
  auto put = [&](const std::string& workspace_id, const std::string& user_id,
                 const std::string& delegate_id, std::optional<int64_t> starts,
                 std::optional<int64_t> ends) {
    DelegationRecord delegation;
    delegation.workspace_id = workspace_id;
    delegation.user_id = user_id;
    delegation.delegate_id = delegate_id;
    if (starts) delegation.starts_at = at(*starts);
    if (ends) delegation.ends_at = at(*ends);
    delegation.created_by = "user:" + user_id;
    delegation.created_at = at(kT0);
    ASSERT_OK(store().put_delegation(delegation));
  };
  put("acme", "erin", "bob", std::nullopt, std::nullopt);    // always
  put("acme", "alice", "bob", kT0 + 100, kT0 + 200);         // [100, 200)
  put("acme", "dave", "bob", std::nullopt, kT0 + 150);       // until 150
  put("acme", "carol", "bob", kT0 + 150, std::nullopt);      // from 150
  put("acme", "frank", "zoe", std::nullopt, std::nullopt);   // to someone else
  put("globex", "gina", "bob", std::nullopt, std::nullopt);  // another workspace

  auto users = [&](int64_t when) {
    std::vector<std::string> result;
    for (const auto& d : value_of(store().delegations_to("acme", "bob", at(when)))) {
      EXPECT_EQ(d.delegate_id, "bob");
      EXPECT_EQ(d.workspace_id, "acme");
      result.push_back(d.user_id);
    }
    return result;
  };
  using Users = std::vector<std::string>;
  EXPECT_EQ(users(kT0 + 99), (Users{"dave", "erin"}));
  EXPECT_EQ(users(kT0 + 100), (Users{"alice", "dave", "erin"}));  // starts_at is included
  EXPECT_EQ(users(kT0 + 149), (Users{"alice", "dave", "erin"}));
  EXPECT_EQ(users(kT0 + 150), (Users{"alice", "carol", "erin"}));  // ends_at is not
  EXPECT_EQ(users(kT0 + 200), (Users{"carol", "erin"}));
  EXPECT_TRUE(value_of(store().delegations_to("acme", "nobody", at(kT0))).empty());
  auto globex = value_of(store().delegations_to("globex", "bob", at(kT0)));
  ASSERT_EQ(globex.size(), 1u);
  EXPECT_EQ(globex[0].user_id, "gina");
}

}  // namespace herald::store::testing
