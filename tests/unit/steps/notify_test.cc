// The `notify` step with small fake channel steps standing in for slack.post, webhook.send and
// another capability: channels resolved when the step is built, the log by default, the message
// mapped onto each step's fields, a key and the deadline per channel call, errors and their
// retry classification, and a retry that sends only to the channels that failed.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>

#include "engine/steps/builtins.h"

namespace herald::steps {
namespace {

using namespace std::chrono_literals;

// A channel step that records each call and answers from a queue of outcomes, then with
// done({"sent_by": NAME}).
class FakeChannelStep final : public Step {
 public:
  explicit FakeChannelStep(std::string name) : name_(std::move(name)) {}

  struct Call {
    Json input;
    std::string idempotency_key;
    Clock::time_point deadline;
    const std::atomic<bool>* cancelled = nullptr;
  };

  StepOutcome run(const Json& input, StepContext& context) override {
    std::lock_guard lock(mu_);
    calls_.push_back({input, context.idempotency_key, context.deadline, context.cancelled});
    if (!queue_.empty()) {
      StepOutcome next = std::move(queue_.front());
      queue_.pop_front();
      return next;
    }
    return StepOutcome::done({{"sent_by", name_}});
  }

  void answer_next(StepOutcome outcome) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(outcome));
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::string name_;
  mutable std::mutex mu_;
  std::deque<StepOutcome> queue_;
  std::vector<Call> calls_;
};

Error retryable_error(ErrorCode code, std::string message,
                      std::optional<std::chrono::milliseconds> after = std::nullopt) {
  Error error = make_error(code, std::move(message), true);
  error.retry_after = after;
  return error;
}

class NotifyTest : public ::testing::Test {
 protected:
  NotifyTest() : registry_(builtin_steps_without_notify()) {
    for (const auto& [name, step] :
         {std::pair{"slack.post", slack_}, std::pair{"webhook.send", webhook_},
          std::pair{"pager.page", pager_}}) {
      StepInfo info;
      info.name = name;
      info.step = step;
      EXPECT_TRUE(registry_.add(std::move(info)).ok());
    }
    context_.run_id = "run-1";
    context_.step_id = "tell";
    context_.idempotency_key = "run-1:tell";
    context_.cancelled = &cancelled_;
    context_.log = [this](std::string_view level, std::string_view message) {
      log_lines_.push_back(std::string(level) + " " + std::string(message));
    };
  }

  // ops (Slack), partner (webhook), pages (another capability).
  static Json channels() {
    return {{"ops", {{"uses", "slack.post"}, {"with", {{"url_secret", "SLACK_OPS_URL"}}}}},
            {"partner",
             {{"uses", "webhook.send"},
              {"with", {{"url", "https://partner.example/hooks"}, {"secret", "PARTNER_KEY"}}}}},
            {"pages", {{"uses", "pager.page"}, {"with", {{"service", "web"}}}}}};
  }

  StepInfo notify(const Json& configured = channels()) {
    auto info = make_notify_step(registry_, configured);
    EXPECT_TRUE(info.ok()) << (info.ok() ? "" : info.error().message);
    return info.ok() ? std::move(info).value() : StepInfo{};
  }

  StepOutcome run(const StepInfo& info, const Json& with) { return info.step->run(with, context_); }

  StepRegistry registry_;
  std::shared_ptr<FakeChannelStep> slack_ = std::make_shared<FakeChannelStep>("slack");
  std::shared_ptr<FakeChannelStep> webhook_ = std::make_shared<FakeChannelStep>("webhook");
  std::shared_ptr<FakeChannelStep> pager_ = std::make_shared<FakeChannelStep>("pager");
  std::atomic<bool> cancelled_{false};
  StepContext context_;
  std::vector<std::string> log_lines_;
};

TEST_F(NotifyTest, WithoutToItWritesTheTextToTheRunsLog) {
  StepInfo info = notify();
  EXPECT_EQ(info.name, "notify");
  EXPECT_FALSE(info.pure);
  StepOutcome outcome = run(info, {{"text", "drafts are ready"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(log_lines_, std::vector<std::string>{"info drafts are ready"});
  EXPECT_EQ(outcome.output["sent"], Json::parse(R"([{"channel": "log", "ok": true, "attempt": 1,
                             "output": {"message": "drafts are ready", "level": "info"}}])"));
  EXPECT_EQ(outcome.output["failed"], Json::array());
  EXPECT_TRUE(slack_->calls().empty());
}

TEST_F(NotifyTest, TheLogLineCarriesTheTitleAtTheGivenLevel) {
  StepOutcome outcome =
      run(notify(),
          {{"text", "3 posts failed"}, {"title", "Publishing"}, {"level", "warn"}, {"to", "log"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(log_lines_, std::vector<std::string>{"warn Publishing: 3 posts failed"});

  StepOutcome bad = run(notify(), {{"text", "x"}, {"level", "loud"}});
  ASSERT_EQ(bad.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(bad.error.code, ErrorCode::invalid_argument);
  EXPECT_NE(bad.error.message.find("'loud' is not one of debug, info, warn, error"),
            std::string::npos);
}

TEST_F(NotifyTest, MapsTheMessageOntoEachConfiguredChannelsStep) {
  Json blocks =
      Json::parse(R"([{"type": "section", "text": {"type": "mrkdwn", "text": "*Live*"}}])");
  StepOutcome outcome = run(notify(), {{"text", "v1.2 is live"},
                                       {"title", "Deploy"},
                                       {"blocks", blocks},
                                       {"data", {{"version", "1.2"}}},
                                       {"to", {"ops", "partner", "pages"}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;

  ASSERT_EQ(slack_->calls().size(), 1u);
  EXPECT_EQ(slack_->calls()[0].input, (Json{{"url_secret", "SLACK_OPS_URL"},
                                            {"text", "*Deploy*\nv1.2 is live"},
                                            {"blocks", blocks}}));
  ASSERT_EQ(webhook_->calls().size(), 1u);
  EXPECT_EQ(webhook_->calls()[0].input, (Json{{"url", "https://partner.example/hooks"},
                                              {"secret", "PARTNER_KEY"},
                                              {"event", "herald.notify"},
                                              {"payload",
                                               {{"text", "v1.2 is live"},
                                                {"title", "Deploy"},
                                                {"data", {{"version", "1.2"}}},
                                                {"run_id", "run-1"},
                                                {"step_id", "tell"}}}}));
  ASSERT_EQ(pager_->calls().size(), 1u);
  EXPECT_EQ(pager_->calls()[0].input, (Json{{"service", "web"}, {"text", "Deploy: v1.2 is live"}}));

  const Json& sent = outcome.output["sent"];
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(
      sent[0],
      (Json{{"channel", "ops"}, {"ok", true}, {"attempt", 1}, {"output", {{"sent_by", "slack"}}}}));
  EXPECT_EQ(sent[1]["channel"], "partner");
  EXPECT_EQ(sent[1]["output"]["sent_by"], "webhook");
  EXPECT_EQ(sent[2]["channel"], "pages");
  EXPECT_TRUE(log_lines_.empty());
}

TEST_F(NotifyTest, EachChannelCallHasItsOwnKeyAndTheStepsDeadlineAndCancellation) {
  context_.deadline = Clock::now() + 5s;
  StepOutcome outcome = run(notify(), {{"text", "x"}, {"to", {"ops", "partner"}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  ASSERT_EQ(slack_->calls().size(), 1u);
  ASSERT_EQ(webhook_->calls().size(), 1u);
  EXPECT_EQ(slack_->calls()[0].idempotency_key, "run-1:tell:ops");
  EXPECT_EQ(webhook_->calls()[0].idempotency_key, "run-1:tell:partner");
  EXPECT_EQ(slack_->calls()[0].deadline, context_.deadline);
  EXPECT_EQ(webhook_->calls()[0].cancelled, &cancelled_);
  EXPECT_EQ(context_.idempotency_key, "run-1:tell");  // the step's own context is untouched
}

TEST_F(NotifyTest, AnUnknownChannelFailsForGoodNamingTheConfiguredOnes) {
  StepOutcome outcome = run(notify(), {{"text", "x"}, {"to", {"ops", "opps"}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::invalid_argument);
  EXPECT_FALSE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("with.to[1]: unknown channel 'opps'; configured channels: "
                                       "log, ops, pages, partner"),
            std::string::npos)
      << outcome.error.message;
  EXPECT_TRUE(slack_->calls().empty());  // nothing is sent when `to` is wrong

  // The registry's default notify knows only the log, and says so.
  auto builtins = StepRegistry::with_builtins();
  ASSERT_NE(builtins.find("notify"), nullptr);
  StepOutcome only_log =
      builtins.find("notify")->step->run({{"text", "x"}, {"to", "ops"}}, context_);
  ASSERT_EQ(only_log.kind, StepOutcome::Kind::failed);
  EXPECT_NE(only_log.error.message.find("unknown channel 'ops'; the only channel is log"),
            std::string::npos)
      << only_log.error.message;
}

TEST_F(NotifyTest, TheSchemaOfWithNamesTheChannelsAndStepTypes) {
  StepInfo info = notify();
  const Json& to = info.input_schema["properties"]["to"];
  EXPECT_EQ(to["pattern"], "^(log|ops|pages|partner)$");
  EXPECT_EQ(to["items"]["pattern"], "^(log|ops|pages|partner)$");
  const Json& uses = to["properties"]["uses"]["enum"];
  EXPECT_NE(std::find(uses.begin(), uses.end(), "slack.post"), uses.end());
  EXPECT_EQ(std::find(uses.begin(), uses.end(), "notify"), uses.end());
  EXPECT_EQ(info.input_schema["required"], Json::array({"text"}));
}

TEST_F(NotifyTest, ConfiguredChannelsAreCheckedWhenTheStepIsBuilt) {
  auto missing = make_notify_step(registry_, {{"chat", {{"uses", "discord.post"}}}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(missing.error().message.find(
                "notify.channels.chat: uses 'discord.post', which is not loaded"),
            std::string::npos)
      << missing.error().message;

  auto reserved = make_notify_step(registry_, {{"log", {{"uses", "slack.post"}}}});
  ASSERT_FALSE(reserved.ok());
  EXPECT_NE(reserved.error().message.find("notify.channels.log: 'log' is the run's log"),
            std::string::npos);

  auto no_uses = make_notify_step(registry_, {{"ops", {{"with", Json::object()}}}});
  ASSERT_FALSE(no_uses.ok());
  EXPECT_NE(no_uses.error().message.find("notify.channels.ops: `uses` must name the step"),
            std::string::npos);

  auto bad_name = make_notify_step(registry_, {{"ops|x", {{"uses", "slack.post"}}}});
  EXPECT_FALSE(bad_name.ok());
}

TEST_F(NotifyTest, TheCheckSeesTheInputAChannelWouldSend) {
  std::vector<Json> checked;
  ChannelInputCheck check = [&](const StepInfo& step,
                                const Json& input) -> std::optional<std::string> {
    checked.push_back(input);
    if (input.contains("url_secrt")) return step.name + " has no field 'url_secrt'";
    return std::nullopt;
  };
  auto typo = make_notify_step(
      registry_, {{"ops", {{"uses", "slack.post"}, {"with", {{"url_secrt", "X"}}}}}}, check);
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message.find(
                "notify.channels.ops: slack.post refuses these settings: slack.post has no field "
                "'url_secrt'"),
            std::string::npos)
      << typo.error().message;
  ASSERT_EQ(checked.size(), 1u);
  EXPECT_TRUE(checked[0]["text"].is_string());  // the message fields, as a call would have them

  checked.clear();
  EXPECT_TRUE(make_notify_step(registry_, channels(), check).ok());
  EXPECT_EQ(checked.size(), 3u);
}

TEST_F(NotifyTest, WhenEveryChannelFailsTheStepFailsWithThatErrorAndItsRetryClass) {
  StepInfo info = notify();
  slack_->answer_next(StepOutcome::failed(
      retryable_error(ErrorCode::resource_exhausted, "slack: the webhook answered 429", 2000ms)));
  StepOutcome limited = run(info, {{"text", "x"}, {"to", "ops"}});
  ASSERT_EQ(limited.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(limited.error.code, ErrorCode::resource_exhausted);
  EXPECT_TRUE(limited.error.retryable);
  EXPECT_EQ(limited.error.retry_after, std::optional<std::chrono::milliseconds>(2000ms));
  EXPECT_EQ(limited.error.message, "notify: channel 'ops': slack: the webhook answered 429");
  EXPECT_EQ(limited.error.details["failed"][0]["channel"], "ops");
  EXPECT_EQ(limited.error.details["failed"][0]["error"]["code"], "resource_exhausted");

  slack_->answer_next(StepOutcome::failed(
      make_error(ErrorCode::not_found, "slack: the webhook answered 404 channel_not_found")));
  context_.idempotency_key = "run-2:tell";
  StepOutcome gone = run(info, {{"text", "x"}, {"to", "ops"}});
  ASSERT_EQ(gone.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(gone.error.code, ErrorCode::not_found);
  EXPECT_FALSE(gone.error.retryable);
}

TEST_F(NotifyTest, ARetryAfterAPartialFailureSendsOnlyTheChannelsThatFailed) {
  StepInfo info = notify();
  webhook_->answer_next(
      StepOutcome::failed(retryable_error(ErrorCode::unavailable, "webhook: 503 from partner")));
  StepOutcome first = run(info, {{"text", "x"}, {"to", {"ops", "partner"}}});
  ASSERT_EQ(first.kind, StepOutcome::Kind::failed);
  EXPECT_TRUE(first.error.retryable);
  EXPECT_EQ(first.error.code, ErrorCode::unavailable);
  EXPECT_NE(first.error.message.find("1 of 2 channels failed: partner: webhook: 503 from partner "
                                     "(sent to ops, which a retry does not send again)"),
            std::string::npos)
      << first.error.message;
  EXPECT_EQ(first.error.details["sent"][0]["channel"], "ops");

  context_.attempt = 2;  // the runtime's retry: same key, next attempt
  StepOutcome second = run(info, {{"text", "x"}, {"to", {"ops", "partner"}}});
  ASSERT_EQ(second.kind, StepOutcome::Kind::done) << second.error.message;
  EXPECT_EQ(slack_->calls().size(), 1u);
  EXPECT_EQ(webhook_->calls().size(), 2u);
  EXPECT_EQ(webhook_->calls()[1].idempotency_key, "run-1:tell:partner");
  const Json& sent = second.output["sent"];
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0]["channel"], "ops");
  EXPECT_EQ(sent[0]["attempt"], 1);
  EXPECT_EQ(sent[0]["output"]["sent_by"], "slack");  // the first attempt's output, kept
  EXPECT_EQ(sent[1]["channel"], "partner");
  EXPECT_EQ(sent[1]["attempt"], 2);

  // Another step's key does not see what this one sent.
  context_.idempotency_key = "run-1:other";
  ASSERT_EQ(run(info, {{"text", "x"}, {"to", {"ops", "partner"}}}).kind, StepOutcome::Kind::done);
  EXPECT_EQ(slack_->calls().size(), 2u);
}

// The runtime's key-value store, as far as notify uses it.
class MapKeyValueStore final : public KeyValueStore {
 public:
  Result<std::optional<Json>> get(std::string_view workspace, std::string_view plugin,
                                  std::string_view key) override {
    auto found = entries.find(name(workspace, plugin, key));
    if (found == entries.end()) return std::optional<Json>();
    return std::optional<Json>(found->second);
  }
  Status put(std::string_view workspace, std::string_view plugin, std::string_view key,
             const Json& value, std::optional<std::chrono::seconds> ttl) override {
    entries[name(workspace, plugin, key)] = value;
    last_ttl = ttl;
    return ok_status();
  }
  Result<bool> remove(std::string_view workspace, std::string_view plugin,
                      std::string_view key) override {
    return entries.erase(name(workspace, plugin, key)) > 0;
  }
  static std::string name(std::string_view workspace, std::string_view plugin,
                          std::string_view key) {
    return std::string(workspace) + "|" + std::string(plugin) + "|" + std::string(key);
  }
  std::map<std::string, Json> entries;
  std::optional<std::chrono::seconds> last_ttl;
};

TEST_F(NotifyTest, WithAKeyValueStoreWhatWasSentOutlivesTheProcess) {
  MapKeyValueStore kv;
  context_.kv = &kv;
  webhook_->answer_next(
      StepOutcome::failed(retryable_error(ErrorCode::unavailable, "webhook: 503 from partner")));
  ASSERT_EQ(run(notify(), {{"text", "x"}, {"to", {"ops", "partner"}}}).kind,
            StepOutcome::Kind::failed);
  ASSERT_EQ(kv.entries.count(MapKeyValueStore::name("", "herald.notify", "run-1:tell")), 1u);
  ASSERT_TRUE(kv.last_ttl.has_value());

  // A new step (Herald restarted) retries the run: ops is not sent again.
  context_.attempt = 2;
  StepOutcome second = run(notify(), {{"text", "x"}, {"to", {"ops", "partner"}}});
  ASSERT_EQ(second.kind, StepOutcome::Kind::done) << second.error.message;
  EXPECT_EQ(slack_->calls().size(), 1u);
  EXPECT_EQ(webhook_->calls().size(), 2u);
  EXPECT_EQ(second.output["sent"][0]["output"]["sent_by"], "slack");
  // Done: the record is dropped.
  EXPECT_TRUE(kv.entries.empty());
}

TEST_F(NotifyTest, AMixOfFailuresIsRetryableWhenARetryCanHelpWithTheLongestWait) {
  slack_->answer_next(
      StepOutcome::failed(make_error(ErrorCode::invalid_argument, "slack: invalid_blocks")));
  webhook_->answer_next(
      StepOutcome::failed(retryable_error(ErrorCode::resource_exhausted, "webhook: 429", 1500ms)));
  pager_->answer_next(
      StepOutcome::failed(retryable_error(ErrorCode::unavailable, "pager: 503", 4000ms)));
  StepOutcome outcome = run(notify(), {{"text", "x"}, {"to", {"log", "ops", "partner", "pages"}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_EQ(outcome.error.code, ErrorCode::resource_exhausted);  // the first retryable one
  EXPECT_EQ(outcome.error.retry_after, std::optional<std::chrono::milliseconds>(4000ms));
  EXPECT_NE(outcome.error.message.find("3 of 4 channels failed: ops: slack: invalid_blocks; "
                                       "partner: webhook: 429; pages: pager: 503 (sent to log"),
            std::string::npos)
      << outcome.error.message;
  EXPECT_EQ(outcome.error.details["failed"].size(), 3u);
}

TEST_F(NotifyTest, ACancelledRunSendsNothingMore) {
  cancelled_ = true;
  StepOutcome outcome = run(notify(), {{"text", "x"}, {"to", "ops"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::cancelled);
  EXPECT_FALSE(outcome.error.retryable);
  EXPECT_TRUE(slack_->calls().empty());
}

TEST_F(NotifyTest, AChannelStepThatWaitsIsAFailure) {
  slack_->answer_next(StepOutcome::suspend_until(Clock::now() + 1h, Json::object()));
  StepOutcome outcome = run(notify(), {{"text", "x"}, {"to", "ops"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::failed_precondition);
  EXPECT_NE(outcome.error.message.find("slack.post asked to wait"), std::string::npos);
}

TEST_F(NotifyTest, AnInlineChannelCallsItsStepDirectly) {
  StepOutcome outcome =
      run(notify(Json::object()),
          {{"text", "x"}, {"to", {{"uses", "pager.page"}, {"with", {{"service", "api"}}}}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  ASSERT_EQ(pager_->calls().size(), 1u);
  EXPECT_EQ(pager_->calls()[0].input, (Json{{"service", "api"}, {"text", "x"}}));
  EXPECT_EQ(pager_->calls()[0].idempotency_key, "run-1:tell:pager.page");
  EXPECT_EQ(outcome.output["sent"][0]["channel"], "pager.page");

  // Two inline channels of one step type need names to be told apart.
  Json twice = {
      {"text", "x"},
      {"to", {{{"uses", "slack.post"}}, {{"uses", "slack.post"}, {"with", {{"url", "u"}}}}}}};
  StepOutcome unnamed = run(notify(), twice);
  ASSERT_EQ(unnamed.kind, StepOutcome::Kind::failed);
  EXPECT_NE(unnamed.error.message.find("with.to[1]: channel 'slack.post' is named twice"),
            std::string::npos)
      << unnamed.error.message;
  twice["to"][1]["name"] = "second";
  ASSERT_EQ(run(notify(), twice).kind, StepOutcome::Kind::done);
  EXPECT_EQ(slack_->calls().back().idempotency_key, "run-1:tell:second");

  StepOutcome unknown = run(notify(), {{"text", "x"}, {"to", {{"uses", "slak.post"}}}});
  ASSERT_EQ(unknown.kind, StepOutcome::Kind::failed);
  EXPECT_NE(
      unknown.error.message.find("with.to.uses: unknown step type 'slak.post'; known step types:"),
      std::string::npos)
      << unknown.error.message;
}

TEST_F(NotifyTest, EventsOfAChannelStepAreEmittedWithTheNotify) {
  StepOutcome outcome =
      run(notify(), {{"text", "x"}, {"to", {{"uses", "emit"}, {"with", {{"event", "notified"}}}}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  ASSERT_EQ(outcome.events.size(), 1u);
  EXPECT_EQ(outcome.events[0].name, "notified");
}

TEST_F(NotifyTest, TheInputIsChecked) {
  StepInfo info = notify();
  for (const auto& [with, expected] : std::vector<std::pair<Json, std::string>>{
           {{{"to", "ops"}}, "with.text is required"},
           {{{"text", ""}}, "with.text is required"},
           {{{"text", "x"}, {"txt", "y"}}, "unknown field 'txt' in with:"},
           {{{"text", "x"}, {"to", Json::array()}}, "with.to: give at least one channel"},
           {{{"text", "x"}, {"to", 3}}, "with.to: expected a channel name or {uses, with}"},
           {{{"text", "x"}, {"blocks", "section"}}, "with.blocks must be a list"},
           {{{"text", "x"}, {"data", "y"}}, "with.data must be a map"},
           {{{"text", "x"}, {"to", {{"uses", "pager.page"}, {"wiht", {}}}}},
            "unknown field 'wiht'"},
       }) {
    StepOutcome outcome = run(info, with);
    ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed) << with.dump();
    EXPECT_EQ(outcome.error.code, ErrorCode::invalid_argument) << with.dump();
    EXPECT_NE(outcome.error.message.find(expected), std::string::npos)
        << with.dump() << ": " << outcome.error.message;
  }
  // A template of one {{ }} keeps its type: a number is sent as its text.
  StepOutcome counted = run(info, {{"text", 3}});
  ASSERT_EQ(counted.kind, StepOutcome::Kind::done) << counted.error.message;
  EXPECT_EQ(log_lines_.back(), "info 3");
}

}  // namespace
}  // namespace herald::steps
