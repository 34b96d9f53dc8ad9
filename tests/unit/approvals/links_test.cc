// Signed one-click links: valid, expired, tampered, malformed, another key, key rotation, the
// data a caller needs to refuse reuse, and a link used by the wrong approver or on a closed level.
#include <gtest/gtest.h>

#include "engine/approvals/links.h"
#include "engine/security/encoding.h"
#include "tests/unit/approvals/approvals_test_util.h"

namespace herald::approvals {
namespace {

using namespace std::chrono_literals;
using testing::at;
using testing::chain_of;
using testing::Harness;
using testing::kT0;

const std::string kKey = "0123456789abcdef0123456789abcdef";

LinkClaims claims_for(std::string approver = "user:erin",
                      LinkAction action = LinkAction::approve) {
  LinkClaims claims;
  claims.approval_id = "ap-1";
  claims.level = "legal";
  claims.round = 0;
  claims.approver = std::move(approver);
  claims.action = action;
  claims.expires_at = kT0 + 48h;
  claims.nonce = new_link_nonce();
  return claims;
}

std::string token_for(const LinkClaims& claims, const std::string& key = kKey) {
  Result<std::string> token = make_link_token(key, claims);
  EXPECT_TRUE(token.ok()) << (token.ok() ? "" : token.error().message);
  return token.ok() ? *token : "";
}

std::optional<LinkCheck> check_of(const Result<LinkClaims>& verified) {
  if (verified.ok()) return std::nullopt;
  return link_check_of(verified.error());
}

TEST(LinksTest, AValidLinkGivesBackItsClaims) {
  LinkClaims claims = claims_for();
  std::string token = token_for(claims);
  EXPECT_EQ(token.rfind("hal1.", 0), 0u);
  EXPECT_LT(token.size(), 400u);  // fits in a URL and a mail client
  EXPECT_EQ(token.find_first_not_of(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."),
            std::string::npos);
  Result<LinkClaims> verified = verify_link_token(kKey, token, kT0 + 1h);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(*verified, claims);
}

TEST(LinksTest, AnExpiredLinkSaysSo) {
  std::string token = token_for(claims_for());
  EXPECT_TRUE(verify_link_token(kKey, token, kT0 + 48h - 1s).ok());
  Result<LinkClaims> expired = verify_link_token(kKey, token, kT0 + 48h);
  EXPECT_EQ(check_of(expired), LinkCheck::expired);
  EXPECT_EQ(expired.error().code, ErrorCode::unauthenticated);
  EXPECT_NE(expired.error().message.find("expired at 2026-03-04T09:00:00.000Z"), std::string::npos)
      << expired.error().message;
}

TEST(LinksTest, AnyChangeToTheTokenIsDetected) {
  LinkClaims claims = claims_for();
  std::string token = token_for(claims);
  // Rewrite the payload to another approver and a later expiry, keeping the signature.
  size_t first = token.find('.');
  size_t second = token.find('.', first + 1);
  std::string payload = *security::base64url_decode(token.substr(first + 1, second - first - 1));
  Json json = Json::parse(payload);
  json["p"] = "user:mallory";
  std::string forged = "hal1." + security::base64url_encode(json.dump()) + token.substr(second);
  EXPECT_EQ(check_of(verify_link_token(kKey, forged, kT0)), LinkCheck::tampered);
  json = Json::parse(payload);
  json["e"] = json["e"].get<int64_t>() + 86400 * 365;
  forged = "hal1." + security::base64url_encode(json.dump()) + token.substr(second);
  EXPECT_EQ(check_of(verify_link_token(kKey, forged, kT0 + 72h)), LinkCheck::tampered);
  // Every single changed character of the signature.
  for (size_t i = second + 1; i < token.size(); ++i) {
    std::string changed = token;
    changed[i] = changed[i] == 'A' ? 'B' : 'A';
    std::optional<LinkCheck> check = check_of(verify_link_token(kKey, changed, kT0));
    // The last character also carries padding bits, so a change there may not decode.
    EXPECT_TRUE(check == LinkCheck::tampered || check == LinkCheck::malformed) << i;
  }
  // Signed with another key.
  EXPECT_EQ(check_of(verify_link_token(kKey, token_for(claims, "another key"), kT0)),
            LinkCheck::tampered);
}

TEST(LinksTest, MalformedTokensAreRefusedWithoutEchoingThem) {
  for (std::string bad : std::vector<std::string>{"", "hal1", "hal1.abc", "hal2.abc.def", "hal1.a.b.c", "hal1.!!!.abc",
                          "hal1.abc.AAAA", std::string(5000, 'a')}) {
    Result<LinkClaims> verified = verify_link_token(kKey, bad, kT0);
    EXPECT_EQ(check_of(verified), LinkCheck::malformed) << bad;
    if (bad.size() > 4 && bad.size() < 100) {  // "hal1" is the format's name
      EXPECT_EQ(verified.error().message.find(bad), std::string::npos) << bad;
    }
  }
}

TEST(LinksTest, KeysMustBeSetAndMayRotate) {
  Result<std::string> unsigned_token = make_link_token("", claims_for());
  ASSERT_FALSE(unsigned_token.ok());
  EXPECT_EQ(unsigned_token.error().code, ErrorCode::failed_precondition);
  EXPECT_EQ(verify_link_token("", "hal1.a.b", kT0).error().code, ErrorCode::failed_precondition);
  LinkClaims no_nonce = claims_for();
  no_nonce.nonce.clear();
  EXPECT_EQ(make_link_token(kKey, no_nonce).error().code, ErrorCode::invalid_argument);
  LinkClaims bad_approver = claims_for("erin");
  EXPECT_EQ(make_link_token(kKey, bad_approver).error().code, ErrorCode::invalid_argument);

  // During a rotation, links signed with the old key still verify.
  std::string old_token = token_for(claims_for(), "old key");
  std::vector<std::string> keys = {"new key", "old key"};
  EXPECT_TRUE(verify_link_token(keys, old_token, kT0).ok());
  EXPECT_TRUE(verify_link_token(keys, token_for(claims_for(), "new key"), kT0).ok());
  std::vector<std::string> new_only = {"new key"};
  EXPECT_EQ(check_of(verify_link_token(new_only, old_token, kT0)), LinkCheck::tampered);
}

// Single use is the caller's: the nonce is what it records. Each link has its own; verifying the
// same token twice gives the same nonce, so a second use is recognisable.
TEST(LinksTest, ReuseIsRecognisableByTheNonce) {
  LinkClaims a = claims_for();
  LinkClaims b = claims_for();
  EXPECT_NE(a.nonce, b.nonce);
  EXPECT_EQ(security::base64url_decode(a.nonce)->size(), 16u);
  std::string token = token_for(a);
  EXPECT_EQ(verify_link_token(kKey, token, kT0)->nonce, verify_link_token(kKey, token, at(1h))->nonce);

  // decide() with the link's idempotency key answers a second use with the first result.
  Harness h;
  h.start(chain_of("  - { name: legal, approvers: [user:erin, user:frank], mode: all }\n"));
  Result<LinkDecision> link = link_decision(*verify_link_token(kKey, token, at(1h)));
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(link->actor.channel, Channel::link);
  EXPECT_EQ(link->request.level, "legal");
  EXPECT_EQ(link->request.round, 0);
  EXPECT_EQ(link->request.idempotency_key, "link:" + a.nonce);
  Result<DecideOutcome> first = decide(h.state(), link->actor, link->request, at(1h), h.context());
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->status, DecideStatus::recorded) << first->message;
  EXPECT_EQ(first->decision->channel, Channel::link);
  Result<DecideOutcome> second =
      decide(*first->state, link->actor, link->request, at(2h), h.context());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, DecideStatus::duplicate);
  EXPECT_EQ(second->decision->at, at(1h));
}

TEST(LinksTest, ALinkForSomeoneWhoIsNotAnApproverIsRefused) {
  Harness h;
  h.start(chain_of("  - { name: legal, approvers: [user:erin] }\n"));
  // A validly signed link, but for a person who is not (or no longer) an approver of the level.
  std::string token = token_for(claims_for("user:bob"));
  Result<LinkDecision> link = link_decision(*verify_link_token(kKey, token, at(1h)));
  ASSERT_TRUE(link.ok());
  Result<DecideOutcome> outcome = decide(h.state(), link->actor, link->request, at(1h), h.context());
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->status, DecideStatus::not_eligible);
}

TEST(LinksTest, ALinkForAClosedLevelSaysSo) {
  Harness h;
  h.start(chain_of("  - { name: legal, approvers: [user:erin, user:frank] }\n"));
  h.decide("user:frank", Verdict::approve, at(1h));
  Result<LinkDecision> link =
      link_decision(*verify_link_token(kKey, token_for(claims_for()), at(2h)));
  ASSERT_TRUE(link.ok());
  Result<DecideOutcome> outcome = decide(h.state(), link->actor, link->request, at(2h), h.context());
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->status, DecideStatus::level_closed);
}

TEST(LinksTest, RejectLinksNeedAReasonAndOpenLinksDecideNothing) {
  Harness h;
  h.start(chain_of("  - { name: legal, approvers: [user:erin] }\n"));
  LinkClaims reject = claims_for("user:erin", LinkAction::reject);
  Result<LinkDecision> bare = link_decision(reject);
  ASSERT_TRUE(bare.ok());
  Result<DecideOutcome> refused = decide(h.state(), bare->actor, bare->request, at(1h), h.context());
  EXPECT_EQ(refused->status, DecideStatus::invalid);
  Result<LinkDecision> reasoned = link_decision(reject, "misleading claim");
  Result<DecideOutcome> recorded =
      decide(h.state(), reasoned->actor, reasoned->request, at(1h), h.context());
  EXPECT_EQ(recorded->status, DecideStatus::recorded);
  EXPECT_EQ(recorded->state->status, ApprovalStatus::rejected);

  EXPECT_FALSE(link_decision(claims_for("user:erin", LinkAction::open)).ok());
}

}  // namespace
}  // namespace herald::approvals
