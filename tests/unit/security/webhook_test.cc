// The webhook signature verifier: each check (missing header, malformed, expired, in the future,
// bad signature, replayed) on its own, the window's edges, rotation headers, and the replay
// cache's bounds and atomicity.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "engine/security/hmac.h"

namespace herald::security {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

constexpr std::string_view kSecret = "whsec_test_secret";
constexpr std::string_view kBody = R"({"event":"order.paid","id":42})";
constexpr int64_t kNowSeconds = 1'700'000'000;

Clock::time_point at(int64_t seconds) {
  return Clock::time_point(std::chrono::seconds(seconds));
}

WebhookVerifyOptions options_at(int64_t seconds, ReplayCache* cache = nullptr) {
  WebhookVerifyOptions options;
  options.now = at(seconds);
  options.replay_cache = cache;
  return options;
}

std::optional<WebhookCheck> failed_check(const Result<WebhookVerified>& result) {
  if (result.ok()) return std::nullopt;
  return webhook_check_of(result.error());
}

TEST(WebhookSignTest, DocumentedScheme) {
  // The scheme exactly as documented in hmac.h, computed by hand.
  std::string expected = "sha256=" + hmac_sha256_hex(kSecret, "1700000000." + std::string(kBody));
  EXPECT_EQ(sign_webhook(kSecret, "1700000000", kBody), expected);
  EXPECT_EQ(webhook_signed_payload("12", "body"), "12.body");
}

TEST(WebhookVerifyTest, AcceptsAValidRequest) {
  std::string ts = std::to_string(kNowSeconds);
  auto result =
      verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, ts, kBody), options_at(kNowSeconds));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->timestamp, at(kNowSeconds));
  EXPECT_EQ(result->secret_index, 0u);
}

TEST(WebhookVerifyTest, AcceptsEmptyAndHugeBodies) {
  std::string ts = std::to_string(kNowSeconds);
  EXPECT_TRUE(
      verify_webhook(kSecret, "", ts, sign_webhook(kSecret, ts, ""), options_at(kNowSeconds)).ok());
  std::string huge(8 * 1024 * 1024, 'x');
  EXPECT_TRUE(
      verify_webhook(kSecret, huge, ts, sign_webhook(kSecret, ts, huge), options_at(kNowSeconds))
          .ok());
}

TEST(WebhookVerifyTest, AcceptsUppercaseHexAndSurroundingSpaces) {
  std::string ts = std::to_string(kNowSeconds);
  std::string signature = sign_webhook(kSecret, ts, kBody);
  std::string upper = "sha256=";
  for (char c : signature.substr(7)) upper += static_cast<char>(std::toupper(c));
  EXPECT_TRUE(
      verify_webhook(kSecret, kBody, " " + ts + " ", "  " + upper + " ", options_at(kNowSeconds))
          .ok());
}

TEST(WebhookVerifyTest, RefusesMissingHeaders) {
  std::string ts = std::to_string(kNowSeconds);
  std::string signature = sign_webhook(kSecret, ts, kBody);
  auto no_timestamp = verify_webhook(kSecret, kBody, "", signature, options_at(kNowSeconds));
  EXPECT_EQ(failed_check(no_timestamp), WebhookCheck::missing_header);
  EXPECT_NE(no_timestamp.error().message.find("X-Herald-Timestamp"), std::string::npos);
  auto no_signature = verify_webhook(kSecret, kBody, ts, "   ", options_at(kNowSeconds));
  EXPECT_EQ(failed_check(no_signature), WebhookCheck::missing_header);
  EXPECT_NE(no_signature.error().message.find("X-Herald-Signature"), std::string::npos);
  EXPECT_EQ(no_signature.error().code, ErrorCode::unauthenticated);
}

TEST(WebhookVerifyTest, RefusesMalformedTimestamps) {
  for (std::string ts :
       {"abc", "-5", "+1700000000", "1700000000.5", "17 00", "0x10", "1234567890123", "1e9"}) {
    auto result = verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, ts, kBody),
                                 options_at(kNowSeconds));
    EXPECT_EQ(failed_check(result), WebhookCheck::malformed) << ts;
  }
}

TEST(WebhookVerifyTest, RefusesMalformedSignatures) {
  std::string ts = std::to_string(kNowSeconds);
  std::string good = sign_webhook(kSecret, ts, kBody);
  for (std::string signature :
       {std::string("sha256="), std::string("sha256=abc"),
        std::string("sha256=") + std::string(64, 'g'), good + "0", good.substr(0, good.size() - 1),
        good.substr(7), std::string("garbage"),
        std::string("v2=abc"),  // only an unknown scheme: nothing to check
        std::string(",,,"), good + ",nonsense"}) {
    auto result = verify_webhook(kSecret, kBody, ts, signature, options_at(kNowSeconds));
    EXPECT_EQ(failed_check(result), WebhookCheck::malformed) << signature;
  }
}

TEST(WebhookVerifyTest, RefusesWrongSecretBodyOrTimestamp) {
  std::string ts = std::to_string(kNowSeconds);
  std::string other_ts = std::to_string(kNowSeconds - 1);
  auto wrong_secret =
      verify_webhook(kSecret, kBody, ts, sign_webhook("other", ts, kBody), options_at(kNowSeconds));
  EXPECT_EQ(failed_check(wrong_secret), WebhookCheck::bad_signature);
  auto wrong_body = verify_webhook(kSecret, std::string(kBody) + " ", ts,
                                   sign_webhook(kSecret, ts, kBody), options_at(kNowSeconds));
  EXPECT_EQ(failed_check(wrong_body), WebhookCheck::bad_signature);
  // A signature from one timestamp cannot be carried to another (moving an old request into
  // the window).
  auto moved = verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, other_ts, kBody),
                              options_at(kNowSeconds));
  EXPECT_EQ(failed_check(moved), WebhookCheck::bad_signature);
  // A leading zero changes the signed text, so it is a different request.
  auto padded = verify_webhook(kSecret, kBody, "0" + ts, sign_webhook(kSecret, ts, kBody),
                               options_at(kNowSeconds));
  EXPECT_EQ(failed_check(padded), WebhookCheck::bad_signature);
}

TEST(WebhookVerifyTest, WindowEdges) {
  auto verify_sent_at = [](int64_t sent) {
    std::string ts = std::to_string(sent);
    return verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, ts, kBody),
                          options_at(kNowSeconds));
  };
  EXPECT_TRUE(verify_sent_at(kNowSeconds - 300).ok());
  EXPECT_TRUE(verify_sent_at(kNowSeconds + 300).ok());
  auto old = verify_sent_at(kNowSeconds - 301);
  EXPECT_EQ(failed_check(old), WebhookCheck::expired);
  EXPECT_NE(old.error().message.find("301 s old"), std::string::npos) << old.error().message;
  EXPECT_EQ(failed_check(verify_sent_at(kNowSeconds + 301)), WebhookCheck::in_future);
  EXPECT_EQ(failed_check(verify_sent_at(0)), WebhookCheck::expired);
  EXPECT_EQ(failed_check(verify_sent_at(999'999'999'999)), WebhookCheck::in_future);
}

TEST(WebhookVerifyTest, TimeWindowIsCheckedBeforeTheSignature) {
  std::string ts = std::to_string(kNowSeconds - 3600);
  auto result =
      verify_webhook(kSecret, kBody, ts, "sha256=" + std::string(64, '0'), options_at(kNowSeconds));
  EXPECT_EQ(failed_check(result), WebhookCheck::expired);
}

TEST(WebhookVerifyTest, CustomTolerance) {
  std::string ts = std::to_string(kNowSeconds - 20);
  auto options = options_at(kNowSeconds);
  options.tolerance = 10s;
  EXPECT_EQ(
      failed_check(verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, ts, kBody), options)),
      WebhookCheck::expired);
  options.tolerance = 30s;
  EXPECT_TRUE(verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, ts, kBody), options).ok());
  options.tolerance = -1s;
  auto negative = verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, ts, kBody), options);
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().code, ErrorCode::failed_precondition);
}

TEST(WebhookVerifyTest, UsesTheSystemClockByDefault) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch());
  std::string ts = std::to_string(now.count());
  EXPECT_TRUE(verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, ts, kBody)).ok());
}

TEST(WebhookVerifyTest, MultipleSignaturesForSenderRotation) {
  std::string ts = std::to_string(kNowSeconds);
  std::string mine = sign_webhook(kSecret, ts, kBody);
  std::string other = sign_webhook("the-old-secret", ts, kBody);
  for (std::string header : {other + "," + mine, mine + "," + other, other + " , " + mine,
                             "v2=whatever," + mine, mine + ",", "t=1," + mine}) {
    EXPECT_TRUE(verify_webhook(kSecret, kBody, ts, header, options_at(kNowSeconds)).ok()) << header;
  }
  EXPECT_EQ(failed_check(
                verify_webhook(kSecret, kBody, ts, other + "," + other, options_at(kNowSeconds))),
            WebhookCheck::bad_signature);
}

TEST(WebhookVerifyTest, BoundsTheNumberOfEntries) {
  std::string ts = std::to_string(kNowSeconds);
  std::string header;
  for (int i = 0; i < 8; ++i) header += "sha256=" + std::string(64, '0') + ",";
  header += sign_webhook(kSecret, ts, kBody);  // the 9th entry
  EXPECT_EQ(failed_check(verify_webhook(kSecret, kBody, ts, header, options_at(kNowSeconds))),
            WebhookCheck::malformed);
}

TEST(WebhookVerifyTest, SeveralSecretsForHeraldSideRotation) {
  std::string ts = std::to_string(kNowSeconds);
  std::vector<std::string> secrets = {"new-secret", "old-secret"};
  auto with_old = verify_webhook(secrets, kBody, ts, sign_webhook("old-secret", ts, kBody),
                                 options_at(kNowSeconds));
  ASSERT_TRUE(with_old.ok());
  EXPECT_EQ(with_old->secret_index, 1u);
  auto with_new = verify_webhook(secrets, kBody, ts, sign_webhook("new-secret", ts, kBody),
                                 options_at(kNowSeconds));
  ASSERT_TRUE(with_new.ok());
  EXPECT_EQ(with_new->secret_index, 0u);
  EXPECT_EQ(failed_check(verify_webhook(secrets, kBody, ts, sign_webhook("x", ts, kBody),
                                        options_at(kNowSeconds))),
            WebhookCheck::bad_signature);
}

TEST(WebhookVerifyTest, RefusesEmptySecrets) {
  std::string ts = std::to_string(kNowSeconds);
  auto empty = verify_webhook("", kBody, ts, sign_webhook("", ts, kBody), options_at(kNowSeconds));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::failed_precondition);
  EXPECT_FALSE(webhook_check_of(empty.error()).has_value());
  std::vector<std::string> none;
  EXPECT_FALSE(
      verify_webhook(none, kBody, ts, sign_webhook("", ts, kBody), options_at(kNowSeconds)).ok());
}

TEST(WebhookVerifyTest, ErrorsCarryTheCheckName) {
  std::string ts = std::to_string(kNowSeconds);
  auto result =
      verify_webhook(kSecret, kBody, ts, sign_webhook("x", ts, kBody), options_at(kNowSeconds));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().details["check"], "bad_signature");
  EXPECT_EQ(result.error().message.find(kSecret), std::string::npos);
  EXPECT_EQ(to_string(WebhookCheck::in_future), "in_future");
  EXPECT_FALSE(webhook_check_of(make_error(ErrorCode::unauthenticated, "x")).has_value());
}

TEST(WebhookReplayTest, SecondDeliveryIsRefused) {
  InMemoryReplayCache cache;
  std::string ts = std::to_string(kNowSeconds);
  std::string signature = sign_webhook(kSecret, ts, kBody);
  EXPECT_TRUE(verify_webhook(kSecret, kBody, ts, signature, options_at(kNowSeconds, &cache)).ok());
  auto again = verify_webhook(kSecret, kBody, ts, signature, options_at(kNowSeconds + 200, &cache));
  EXPECT_EQ(failed_check(again), WebhookCheck::replayed);
  // After the window the timestamp check refuses it, whatever the cache holds.
  auto late = verify_webhook(kSecret, kBody, ts, signature, options_at(kNowSeconds + 301, &cache));
  EXPECT_EQ(failed_check(late), WebhookCheck::expired);
}

TEST(WebhookReplayTest, ReplayWithAnotherSubsetOfRotationEntriesIsStillAReplay) {
  InMemoryReplayCache cache;
  std::string ts = std::to_string(kNowSeconds);
  std::string mine = sign_webhook(kSecret, ts, kBody);
  std::string other = sign_webhook("old", ts, kBody);
  EXPECT_TRUE(
      verify_webhook(kSecret, kBody, ts, other + "," + mine, options_at(kNowSeconds, &cache)).ok());
  EXPECT_EQ(failed_check(verify_webhook(kSecret, kBody, ts, mine, options_at(kNowSeconds, &cache))),
            WebhookCheck::replayed);
  std::vector<std::string> secrets = {std::string(kSecret), "old"};
  EXPECT_EQ(
      failed_check(verify_webhook(secrets, kBody, ts, other, options_at(kNowSeconds, &cache))),
      WebhookCheck::replayed);
}

TEST(WebhookReplayTest, FailedRequestsAreNotRecorded) {
  InMemoryReplayCache cache;
  std::string ts = std::to_string(kNowSeconds);
  EXPECT_FALSE(verify_webhook(kSecret, kBody, ts, sign_webhook("forged", ts, kBody),
                              options_at(kNowSeconds, &cache))
                   .ok());
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(verify_webhook(kSecret, kBody, ts, sign_webhook(kSecret, ts, kBody),
                             options_at(kNowSeconds, &cache))
                  .ok());
  EXPECT_EQ(cache.size(), 1u);
}

TEST(WebhookReplayTest, DistinctRequestsAreNotReplays) {
  InMemoryReplayCache cache;
  for (int i = 0; i < 50; ++i) {
    std::string ts = std::to_string(kNowSeconds - i);
    std::string body = "{\"n\":" + std::to_string(i) + "}";
    ASSERT_TRUE(verify_webhook(kSecret, body, ts, sign_webhook(kSecret, ts, body),
                               options_at(kNowSeconds, &cache))
                    .ok());
  }
  EXPECT_EQ(cache.size(), 50u);
}

TEST(WebhookReplayTest, ConcurrentDeliveriesOfOneRequestSucceedOnce) {
  InMemoryReplayCache cache;
  std::string ts = std::to_string(kNowSeconds);
  std::string signature = sign_webhook(kSecret, ts, kBody);
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (verify_webhook(kSecret, kBody, ts, signature, options_at(kNowSeconds, &cache)).ok()) {
          ++accepted;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(accepted.load(), 1);
}

TEST(InMemoryReplayCacheTest, ExpiresEntries) {
  InMemoryReplayCache cache;
  EXPECT_FALSE(cache.has_seen("a", at(100), at(0)));
  EXPECT_TRUE(cache.has_seen("a", at(100), at(99)));
  EXPECT_FALSE(cache.has_seen("a", at(300), at(100)));  // expired: recorded anew
  EXPECT_TRUE(cache.has_seen("a", at(300), at(200)));
  EXPECT_FALSE(cache.has_seen("b", at(400), at(350)));  // drops "a" on the way
  EXPECT_EQ(cache.size(), 1u);
}

TEST(InMemoryReplayCacheTest, StaysWithinCapacityDroppingTheSoonestToExpire) {
  InMemoryReplayCache cache(3);
  EXPECT_FALSE(cache.has_seen("late", at(1000), at(0)));
  EXPECT_FALSE(cache.has_seen("soon", at(10), at(0)));
  EXPECT_FALSE(cache.has_seen("mid", at(500), at(0)));
  EXPECT_FALSE(cache.has_seen("new", at(800), at(1)));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_TRUE(cache.has_seen("late", at(1000), at(2)));
  EXPECT_TRUE(cache.has_seen("mid", at(500), at(2)));
  EXPECT_TRUE(cache.has_seen("new", at(800), at(2)));
  EXPECT_FALSE(cache.has_seen("soon", at(10), at(2)));  // it was the one dropped
}

TEST(InMemoryReplayCacheTest, BoundedUnderManyEntries) {
  InMemoryReplayCache cache(1000);
  for (int i = 0; i < 20'000; ++i) {
    EXPECT_FALSE(cache.has_seen("sig-" + std::to_string(i), at(10'000 + i), at(0)));
  }
  EXPECT_LE(cache.size(), 1000u);
  EXPECT_EQ(cache.capacity(), 1000u);
}

}  // namespace
}  // namespace herald::security
