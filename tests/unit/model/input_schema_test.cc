// InputSchema: the meta-schema check, closing schemas with properties, and template-aware checks.
#include <gtest/gtest.h>

#include "engine/model/input_schema.h"

namespace herald::model {
namespace {

const Json kSchema = Json::parse(R"({
  "type": "object",
  "required": ["text"],
  "properties": {
    "text": {"type": "string", "maxLength": 500},
    "media": {"type": "array", "maxItems": 4, "items": {"type": "object", "required": ["url"],
              "properties": {"url": {"type": "string"}}}},
    "visibility": {"enum": ["public", "unlisted"]}
  }
})");

TEST(InputSchema, RefusesWhatIsNotADraft7Schema) {
  auto typo = InputSchema::compile(Json::parse(R"({"type": "strnig"})"));
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message.find("not a valid JSON Schema (draft 7)"), std::string::npos);
  EXPECT_NE(typo.error().message.find("at /type"), std::string::npos) << typo.error().message;
  auto required = InputSchema::compile(Json::parse(R"({"required": "text"})"));
  EXPECT_FALSE(required.ok());
  auto remote = InputSchema::compile(Json::parse(R"({"$ref": "https://example.com/s.json"})"));
  ASSERT_FALSE(remote.ok());
  EXPECT_NE(remote.error().message.find("points outside the schema"), std::string::npos);
  EXPECT_TRUE(InputSchema::compile(Json::parse("true")).ok());
  EXPECT_TRUE(InputSchema::compile(kSchema).ok());
}

TEST(InputSchema, ClosesSchemasThatListProperties) {
  auto schema = InputSchema::compile(kSchema);
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ((*schema)->json()["additionalProperties"], false);
  auto open =
      InputSchema::compile(Json::parse(R"({"properties": {}, "additionalProperties": true})"));
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE((*open)->check({{"anything", 1}}, false).empty());
}

TEST(InputSchema, ReportsEachProblemWithItsPath) {
  auto schema = InputSchema::compile(kSchema);
  ASSERT_TRUE(schema.ok());
  auto problems = (*schema)->check(
      {{"txt", "x"}, {"media", Json::array({{{"url", 3}}, Json::object()})}, {"visibility", "all"}},
      false);
  std::vector<std::string> lines;
  for (const auto& p : problems)
    lines.push_back(p.path + ": " + p.message + (p.at_key ? " [key]" : ""));
  EXPECT_EQ(
      lines,
      (std::vector<std::string>{
          ": missing required field 'text'", "media[0].url: expected a string, got an integer (3)",
          "media[1]: missing required field 'url'",
          "txt: unknown field 'txt'; did you mean 'text'? allowed fields: media, text, "
          "visibility [key]",
          "visibility: expected one of public, unlisted; got a string ('all')"}));
}

TEST(InputSchema, TemplatesStandForAnyValue) {
  auto schema = InputSchema::compile(kSchema);
  ASSERT_TRUE(schema.ok());
  Json with = {{"text", "{{ steps.a.output }}"},
               {"media", "{{ steps.b.output.media }}"},
               {"visibility", "{{ inputs.v }}"}};
  EXPECT_TRUE((*schema)->check(with, true).empty());
  EXPECT_FALSE((*schema)->check(with, false).empty());
  Json typo = {{"text", "{{ x }}"}, {"medias", "{{ y }}"}};
  auto problems = (*schema)->check(typo, true);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "medias");
}

}  // namespace
}  // namespace herald::model
