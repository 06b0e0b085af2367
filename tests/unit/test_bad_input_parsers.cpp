// Inputs the fuzzers (tests/fuzz) found or aim at: each is refused with one util::Error that names
// the file (and field), never a library exception, a crash or an overflow.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/readers/record_line.hpp"
#include "error_of.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "model/config.hpp"
#include "model/safetensors_header.hpp"
#include "util/error.hpp"
#include "util/ini.hpp"
#include "util/json.hpp"

using namespace medgpt;
using medgpt::test::error_of;

namespace {

nlohmann::json qwen3_config() {
  return {{"model_type", "qwen3"}, {"vocab_size", 64}, {"hidden_size", 16}, {"intermediate_size", 32}, {"num_hidden_layers", 1},
          {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"head_dim", 8}};
}

TEST(BadInput, ConfigFieldsOfTheWrongTypeOrSize) {
  EXPECT_NE(error_of([] { model::ModelConfig::from_json(8, "c.json"); }).find("c.json: is not a JSON object"), std::string::npos);
  nlohmann::json j = qwen3_config();
  EXPECT_EQ(error_of([&] { model::ModelConfig::from_json(j, "c.json"); }), "");
  j["rms_norm_eps"] = "tiny";
  EXPECT_NE(error_of([&] { model::ModelConfig::from_json(j, "c.json"); }).find("c.json: rms_norm_eps: has the wrong type"), std::string::npos);
  j = qwen3_config();
  j["rope_scaling"] = {{"rope_type", 3}};
  EXPECT_NE(error_of([&] { model::ModelConfig::from_json(j, "c.json"); }).find("rope_type"), std::string::npos);
  j = qwen3_config();
  j["hidden_size"] = std::int64_t{1} << 40;  // would overflow the parameter count
  EXPECT_NE(error_of([&] { model::ModelConfig::from_json(j, "c.json"); }).find("hidden_size: must be an integer from 1 to"), std::string::npos);
}

TEST(BadInput, NumbersPastADouble) {
  EXPECT_NE(error_of([] { data::parse_record_line(R"({"text": 1e999})", "f.jsonl:3"); }).find("f.jsonl:3: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { util::parse_json(R"({"a": [2E610]})", "x.json"); }).find("x.json: malformed JSON"), std::string::npos);
}

std::string safetensors(const std::string& header, std::size_t data) {
  std::string s(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(s.data(), &n, 8);
  return s + header + std::string(data, '\0');
}

TEST(BadInput, SafetensorsHeaders) {
  // A shape whose element count overflows 64 bits must not wrap around to the byte range.
  const std::string wrap = safetensors(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})", 0);
  EXPECT_NE(error_of([&] { model::parse_safetensors_header(wrap, "m.safetensors"); }).find("m.safetensors: a: data_offsets"), std::string::npos);
  const std::string big = safetensors(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 2E610]}})", 8);
  EXPECT_NE(error_of([&] { model::parse_safetensors_header(big, "m.safetensors"); }).find("header is not valid JSON"), std::string::npos);
  const std::string ok = safetensors(R"({"b": {"dtype": "BF16", "shape": [3], "data_offsets": [8, 14]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 14);
  const model::SafetensorsHeader h = model::parse_safetensors_header(ok, "m.safetensors");
  ASSERT_EQ(h.entries.size(), 2u);
  EXPECT_EQ(h.entries[0].name, "a");  // data order
  EXPECT_EQ(h.entries[1].shape, std::vector<std::int64_t>{3});
}

TEST(BadInput, IniLines) {
  const auto e = util::parse_ini("top = 1\n# c\n[train]\n; c\n  micro_batch_size = 4  \n\n[lora]\nr=8\n", "a.ini");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].key, "top");
  EXPECT_EQ(e[1].key, "train.micro_batch_size");
  EXPECT_EQ(e[1].value, "4");
  EXPECT_EQ(e[1].line, 5);
  EXPECT_EQ(e[2].key, "lora.r");
  EXPECT_NE(error_of([] { util::parse_ini("[train\n", "a.ini"); }).find("a.ini:1: malformed section header"), std::string::npos);
  EXPECT_NE(error_of([] { util::parse_ini("\n\nlr 3\n", "a.ini"); }).find("a.ini:3: expected key = value"), std::string::npos);
  EXPECT_NE(error_of([] { util::parse_ini("= 3\n", "a.ini"); }).find("a.ini:1: a value without a key"), std::string::npos);
  EXPECT_EQ(error_of([] { util::parse_ini("[]\nx = 1\n", "a.ini"); }), "");  // an empty section: keys at the top level
}

TEST(BadInput, TokenizerJsonMissingAKey) {
  // The bundled tokenizer with a Sequence pre-tokenizer that lacks its list.
  nlohmann::json t = util::read_json_file(std::string(MEDGPT_SOURCE_DIR) + "/inputs/tokenizer/tokenizer.json");
  t["pre_tokenizer"] = {{"type", "Sequence"}};
  const auto dir = std::filesystem::temp_directory_path() / ("medgpt_bad_tok_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << t.dump();
  const std::string msg = error_of([&] { data::Tokenizer::load((dir / "tokenizer.json").string()); });
  std::filesystem::remove_all(dir);
  EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pretokenizers"), std::string::npos) << msg;
}

}  // namespace
