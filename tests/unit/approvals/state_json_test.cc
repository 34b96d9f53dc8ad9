// An approval's state survives the store: written to JSON mid-way and read back, it is the same
// state and goes on exactly as the original would; broken JSON is refused with the field named.
#include <gtest/gtest.h>

#include "tests/unit/approvals/approvals_test_util.h"

namespace herald::approvals {
namespace {

using namespace std::chrono_literals;
using testing::ask;
using testing::at;
using testing::chain_of;
using testing::FakeDirectory;
using testing::Harness;
using testing::kT0;

Chain busy_chain() {
  return chain_of("  - { name: editor, approvers: [role:editor], deadline: 4h,"
                  " on_deadline: [{ remind: { every: 1h, times: 2 } }, reject] }\n"
                  "  - name: reviews\n"
                  "    parallel:\n"
                  "      - name: legal\n"
                  "        approvers: [role:legal, counsel@example.com]\n"
                  "        mode: { quorum: 2 }\n"
                  "        when: 'true'\n"
                  "        deadline: 1d\n"
                  "        on_deadline: { escalate: [role:manager], replace: false }\n"
                  "      - { name: brand, approvers: [group:brand-team], mode: all }\n"
                  "  - { name: final, approvers: [user:gina] }\n");
}

TEST(StateJsonTest, AStateMidWayRoundTripsAndContinuesTheSame) {
  FakeDirectory directory = testing::standard_directory();
  directory.delegation("frank", "hugo", kT0, kT0 + 72h);
  Harness h(directory);
  h.context().evaluate_when = [](const Level&, const Subject&) { return Result<bool>(true); };
  Subject subject = testing::post();
  subject.extra = Json{{"campaign", "spring"}, {"publish_at", "2026-03-03T08:00:00Z"}};
  h.start(busy_chain(), subject);
  h.tick(at(4h));  // a reminder
  h.decide("user:bob", Verdict::approve, at(4h + 10min),
           ask().comment("ok").edited_text("Spring menu: oat latte is back").idempotency_key("b1"));
  h.decide("user:hugo", Verdict::approve, at(5h), ask().on_behalf_of("user:frank"));
  h.decide("email:counsel@example.com", Verdict::reject, at(5h), ask().comment("hm").level("legal"),
           Channel::link);
  h.decide("user:alice", Verdict::approve, at(6h), ask().level("brand"));
  ASSERT_EQ(h.state().status, ApprovalStatus::pending);
  ASSERT_EQ(h.level("legal"), LevelStatus::open);

  Json written = h.state().to_json();
  // Through text, as a database column would hold it.
  Result<ApprovalState> read = ApprovalState::from_json(Json::parse(written.dump()));
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->to_json(), written);
  EXPECT_EQ(read->revision, h.state().revision);
  EXPECT_EQ(read->decisions.size(), 4u);
  EXPECT_EQ(read->decisions[1].actor, "user:hugo");
  EXPECT_EQ(read->decisions[1].on_behalf_of, "user:frank");
  EXPECT_EQ(read->subject.extra["campaign"], "spring");
  EXPECT_EQ(read->chain.stages[1].levels[0].when.location.line,
            h.state().chain.stages[1].levels[0].when.location.line);
  EXPECT_EQ(read->chain.stages[1].levels[0].when.path, "chain[1].parallel[0].when");
  EXPECT_EQ(due_at(*read), due_at(h.state()));

  // The same next steps on the original and on the copy give the same states and events.
  auto finish = [&](ApprovalState state) {
    Json trail = Json::array();
    Result<DeadlineOutcome> escalated = on_deadline(state, at(4h + 10min + 24h), h.context());
    EXPECT_TRUE(escalated.ok() && escalated->state);
    state = *escalated->state;
    for (const auto& event : escalated->events) trail.push_back(event.to_json());
    for (std::string who : {"user:gina", "user:carol"}) {
      Result<DecideOutcome> decided =
          decide(state, Actor(who), ask().verdict(Verdict::approve), at(30h), h.context());
      EXPECT_TRUE(decided.ok() && decided->state) << who;
      state = *decided->state;
      for (const auto& event : decided->events) trail.push_back(event.to_json());
    }
    trail.push_back(state.to_json());
    return trail;
  };
  EXPECT_EQ(finish(*read), finish(h.state()));

  // The idempotency key survived too.
  Result<DecideOutcome> retry = decide(*read, Actor("user:bob"),
                                       ask().verdict(Verdict::approve).idempotency_key("b1"),
                                       at(7h), h.context());
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->status, DecideStatus::duplicate);
}

TEST(StateJsonTest, AFinishedAndAFailedStateRoundTrip) {
  Harness done;
  done.start(chain_of("  - { name: editor, approvers: [user:alice] }\n"));
  done.decide("user:alice", Verdict::approve, at(1h));
  Result<ApprovalState> read = ApprovalState::from_json(done.state().to_json());
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->finished_at, at(1h));
  EXPECT_EQ(result(*read)->to_json(), result(done.state())->to_json());

  Harness failed;
  failed.start(chain_of("  - { name: editor, approvers: [user:ghost] }\n"));
  ASSERT_EQ(failed.state().status, ApprovalStatus::failed);
  read = ApprovalState::from_json(failed.state().to_json());
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read->failure.has_value());
  EXPECT_EQ(read->failure->message, failed.state().failure->message);
  EXPECT_EQ(read->to_json(), failed.state().to_json());
}

TEST(StateJsonTest, TimesAreKeptToTheMillisecond) {
  Harness h;
  // A clock with microseconds: stored times are whole milliseconds, so what is read back from
  // the store equals what was computed.
  h.start(chain_of("  - { name: editor, approvers: [user:alice], deadline: 1h }\n"), testing::post(),
          "user:sam", kT0 + std::chrono::microseconds(1500));
  EXPECT_EQ(h.state().created_at, kT0 + 1ms);
  Result<ApprovalState> read = ApprovalState::from_json(h.state().to_json());
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->created_at, h.state().created_at);
  EXPECT_EQ(read->levels[0].deadline, h.state().levels[0].deadline);
}

TEST(StateJsonTest, BrokenJsonIsRefusedWithTheFieldNamed) {
  Harness h;
  h.start(chain_of("  - { name: editor, approvers: [user:alice] }\n"
                   "  - { name: final, approvers: [user:gina] }\n"));
  Json good = h.state().to_json();
  auto refused = [](const Json& json) {
    Result<ApprovalState> read = ApprovalState::from_json(json);
    EXPECT_FALSE(read.ok());
    return read.ok() ? std::string() : read.error().message;
  };
  Json j = good;
  j["levels"][1]["status"] = "opne";
  EXPECT_EQ(refused(j), "levels[1].status: expected a level status, got 'opne'");
  j = good;
  j["decisions"] = Json::array({Json{{"level", "editor"}}});
  EXPECT_EQ(refused(j), "decisions[0].round: expected a value (missing)");
  j = good;
  j["created_at"] = "yesterday";
  EXPECT_NE(refused(j).find("created_at: expected an ISO-8601 time"), std::string::npos);
  j = good;
  j["levels"].erase(1);
  EXPECT_EQ(refused(j), "levels: expected one entry per level of the chain");
  j = good;
  j["levels"][0]["name"] = "other";
  EXPECT_EQ(refused(j), "levels[0]: expected level 'editor' of stage 0");
  j = good;
  j["chain"]["chain"][0]["mode"] = "most";
  EXPECT_NE(refused(j).find("chain.chain[0].mode: expected a valid chain"), std::string::npos);
  j = good;
  j["format"] = 2;
  EXPECT_EQ(refused(j), "format: expected format 1");
  EXPECT_EQ(refused(Json::array()), "(document): expected an object");
}

TEST(StateJsonTest, SubjectJson) {
  Result<Subject> subject = Subject::from_json(
      Json::parse(R"({"text": "hi", "title": "t", "accounts": ["x:@a"], "media": [{"id": 1}]})"));
  ASSERT_TRUE(subject.ok());
  EXPECT_EQ(subject->accounts, (std::vector<std::string>{"x:@a"}));
  EXPECT_EQ(subject->to_json()["media"][0]["id"], 1);
  Result<Subject> missing = Subject::from_json(Json{{"title", "no text"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "subject.text: expected a value (missing)");
  Result<Subject> bad = Subject::from_json(Json{{"text", "x"}, {"accounts", {1}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "subject.accounts[0]: expected a string");
}

}  // namespace
}  // namespace herald::approvals
