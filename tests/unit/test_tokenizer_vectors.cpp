// The Qwen3 and Llama-3 tokenizers against the vectors made with Hugging Face tokenizers/transformers
// (tests/fixtures/tokenizer-vectors.json): ids, ids with special tokens, decode, skip-special decode.
#include <gtest/gtest.h>

#include "data/tokenizer/tokenizer.hpp"
#include "util/json.hpp"

using medgpt::data::TokenId;
using medgpt::data::Tokenizer;

namespace {

const Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, Tokenizer::load(std::string(MEDGPT_TEST_TOKENIZERS) + "/" + name)).first;
  return it->second;
}

const nlohmann::json& vectors() {
  static const nlohmann::json v = medgpt::util::read_json_file(std::string(MEDGPT_FIXTURES_DIR) + "/tokenizer-vectors.json");
  return v;
}

class TokenizerVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVectors, MatchHuggingFace) {
  const Tokenizer& tok = tokenizer(GetParam());
  const auto& cases = vectors().at(GetParam());
  ASSERT_EQ(cases.size(), 11u);
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    SCOPED_TRACE(text);
    const auto ids = tok.encode(text, false);
    EXPECT_EQ(ids, c.at("ids").get<std::vector<TokenId>>());
    EXPECT_EQ(tok.encode(text, true), c.at("ids_add_special").get<std::vector<TokenId>>());
    std::vector<std::string> tokens;
    for (TokenId id : ids) tokens.push_back(tok.id_to_token(id));
    EXPECT_EQ(tokens, c.at("tokens").get<std::vector<std::string>>());
    EXPECT_EQ(tok.decode(ids, false), c.at("decoded").get<std::string>());
    EXPECT_EQ(tok.decode(c.at("ids_add_special").get<std::vector<TokenId>>(), true), c.at("decoded_skip_special").get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerVectors, ::testing::Values("qwen3", "llama3"));

TEST(Tokenizer, SizesAndSpecialIds) {
  const Tokenizer& q = tokenizer("qwen3");
  EXPECT_EQ(q.size(), 151669u);
  EXPECT_FALSE(q.bos_id().has_value());
  EXPECT_EQ(q.eos_id().value(), 151645);
  EXPECT_EQ(q.pad_id().value(), 151643);
  const Tokenizer& l = tokenizer("llama3");
  EXPECT_EQ(l.size(), 128256u);
  EXPECT_EQ(l.bos_id().value(), 128000);
  EXPECT_EQ(l.eos_id().value(), 128001);
}

TEST(Tokenizer, PartialUtf8DecodeFixture) {
  const auto& p = vectors().at("partial_utf8_decode");
  const Tokenizer& q = tokenizer("qwen3");
  EXPECT_EQ(q.decode(p.at("ids").get<std::vector<TokenId>>()), p.at("first_token_only").get<std::string>());
  EXPECT_EQ(q.decode({145375}), p.at("byte_token_only").get<std::string>());
}

}  // namespace
