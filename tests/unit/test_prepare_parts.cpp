// SFT encoding's loss mask, pt packing, and the corpus format's checks.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/corpus.hpp"
#include "data/pair_encoding.hpp"
#include "data/pt_packing.hpp"
#include "data/sft_encoding.hpp"
#include "util/error.hpp"

using namespace medgpt;

namespace {

const data::Tokenizer& qwen3() {
  static const data::Tokenizer t = data::Tokenizer::load(std::string(MEDGPT_TEST_TOKENIZERS) + "/qwen3");
  return t;
}

data::SftRecord three_turns() {
  return {{{"system", "You are a careful doctor.", ""},
           {"user", "我发烧了怎么办？", ""},
           {"assistant", "多喝水，注意休息。", ""},
           {"user", "What about a cough?", ""},
           {"assistant", "Honey helps; see a doctor if it lasts.", ""},
           {"user", "谢谢", ""},
           {"assistant", "不客气。", ""}}};
}

std::string masked_text(const data::EncodedSample& s, bool trained) {
  std::vector<data::TokenId> ids;
  for (std::size_t i = 0; i < s.ids.size(); ++i)
    if (static_cast<bool>(s.mask[i]) == trained) ids.push_back(s.ids[i]);
  return qwen3().decode(ids);
}

}  // namespace

TEST(SftEncoding, LossOnEveryAnswerAndItsEndMarkerOnly) {
  const auto s = data::encode_sft(qwen3(), data::ChatTemplate::get("qwen"), three_turns(), {});
  EXPECT_EQ(masked_text(s, true), "多喝水，注意休息。<|im_end|>Honey helps; see a doctor if it lasts.<|im_end|>不客气。<|im_end|>");
  EXPECT_EQ(masked_text(s, false),
            "<|im_start|>system\nYou are a careful doctor.<|im_end|>\n<|im_start|>user\n我发烧了怎么办？<|im_end|>\n"
            "<|im_start|>assistant\n\n<|im_start|>user\nWhat about a cough?<|im_end|>\n<|im_start|>assistant\n\n"
            "<|im_start|>user\n谢谢<|im_end|>\n<|im_start|>assistant\n\n");
  // The whole sample is the template's text, token for token.
  EXPECT_EQ(qwen3().decode(s.ids), data::ChatTemplate::get("qwen").render(three_turns().messages).text);
  EXPECT_FALSE(s.truncated);
  const auto all = data::encode_sft(qwen3(), data::ChatTemplate::get("qwen"), three_turns(), {0, /*train_on_inputs=*/true});
  EXPECT_EQ(masked_text(all, false), "");
}

TEST(SftEncoding, EveryTemplateMasksExactlyItsAssistantSpans) {
  for (const auto& name : data::ChatTemplate::names()) {
    SCOPED_TRACE(name);
    const auto& t = data::ChatTemplate::get(name);
    const auto rendered = t.render(three_turns().messages);
    std::string want;
    for (const auto& [b, e] : rendered.assistant_spans) want += rendered.text.substr(b, e - b);
    const auto s = data::encode_sft(qwen3(), t, three_turns(), {});
    EXPECT_EQ(masked_text(s, true), want);
  }
}

TEST(SftEncoding, OverLongConversationsKeepWholeLeadingTurns) {
  const auto full = data::encode_sft(qwen3(), data::ChatTemplate::get("qwen"), three_turns(), {});
  // Room for the first two turns but not the third: the sample ends after answer 2's <|im_end|>.
  const auto cut = data::encode_sft(qwen3(), data::ChatTemplate::get("qwen"), three_turns(), {full.ids.size() - 5, false});
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(masked_text(cut, true), "多喝水，注意休息。<|im_end|>Honey helps; see a doctor if it lasts.<|im_end|>");
  // Shorter than the first turn: cut at the limit.
  const auto tiny = data::encode_sft(qwen3(), data::ChatTemplate::get("qwen"), three_turns(), {10, false});
  EXPECT_EQ(tiny.ids.size(), 10u);
  EXPECT_TRUE(tiny.empty);  // no answer token fits: dropped by prepare
}

TEST(PtPacking, GroupTextsWithEos) {
  data::TokenArrays docs;
  data::add_document(docs, {1, 2, 3}, 9);
  data::add_document(docs, {4, 9}, 9);  // already ends with EOS
  data::add_document(docs, {5, 6, 7, 8}, 9);
  EXPECT_EQ(docs.tokens, (std::vector<std::uint32_t>{1, 2, 3, 9, 4, 9, 5, 6, 7, 8, 9}));
  EXPECT_EQ(docs.offsets, (std::vector<std::uint64_t>{0, 4, 6, 11}));
  data::TokenArrays keep = docs, drop = docs;
  EXPECT_EQ(data::cut_blocks(keep, 4, false), 0u);
  EXPECT_EQ(keep.blocks, (std::vector<std::uint64_t>{0, 4, 8, 11}));
  EXPECT_EQ(data::cut_blocks(drop, 4, true), 3u);
  EXPECT_EQ(drop.blocks, (std::vector<std::uint64_t>{0, 4, 8}));
}

TEST(Corpus, RoundTripAndKindCheck) {
  const std::string path = (std::filesystem::temp_directory_path() / ("medgpt_corpus_" + std::to_string(::getpid()) + ".h5")).string();
  data::TokenArrays train, valid;
  train.append({1, 2, 3}, {0, 1, 1});
  train.append({4}, {1});
  valid.append({7, 8}, {0, 1});
  data::CorpusInfo info;
  info.kind = data::Kind::Sft;
  info.tokenizer_sha256 = "abc";
  info.template_name = "qwen";
  info.counts = {{"records", 3}};
  data::write_corpus(path, info, train, valid);
  data::CorpusInfo got;
  const auto t = data::read_corpus(path, data::Kind::Sft, "", &got);
  EXPECT_EQ(t.tokens, train.tokens);
  EXPECT_EQ(t.loss_mask, train.loss_mask);
  EXPECT_EQ(t.offsets, train.offsets);
  EXPECT_EQ(data::read_corpus(path, data::Kind::Sft, "valid").tokens, valid.tokens);
  EXPECT_EQ(got.template_name, "qwen");
  EXPECT_EQ(got.counts["records"], 3);
  try {
    data::read_corpus(path, data::Kind::Pt, "");
    FAIL() << "no error";
  } catch (const util::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a sft corpus, not pt"), std::string::npos) << e.what();
  }
}

TEST(PairEncoding, PromptEndsWithTheCueResponseWithTheEndMarker) {
  const auto& t = data::ChatTemplate::get("qwen");
  const std::vector<data::ChatMessage> prompt = {{"user", "头痛怎么办？", ""}};
  const auto p = data::encode_prompt(qwen3(), t, prompt, {});
  EXPECT_EQ(qwen3().decode(p.ids), "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n头痛怎么办？<|im_end|>\n"
                                   "<|im_start|>assistant\n");
  const auto r = data::encode_response(qwen3(), t, prompt, "多休息。", p.ids.size(), {});
  EXPECT_EQ(qwen3().decode(r.ids), "多休息。<|im_end|>");
  // prompt + response is the rendered conversation, token for token.
  std::vector<data::TokenId> both = p.ids;
  both.insert(both.end(), r.ids.begin(), r.ids.end());
  auto full = prompt;
  full.push_back({"assistant", "多休息。", ""});
  EXPECT_EQ(qwen3().decode(both) + "\n", t.render(full).text);
  // Limits: the prompt keeps its end, the response is cut to fit.
  const auto short_prompt = data::encode_prompt(qwen3(), t, prompt, {0, 5});
  EXPECT_EQ(short_prompt.ids, std::vector<data::TokenId>(p.ids.end() - 5, p.ids.end()));
  EXPECT_TRUE(short_prompt.truncated);
  const auto cut = data::encode_response(qwen3(), t, prompt, "多休息。", p.ids.size(), {p.ids.size() + 1, 0});
  EXPECT_EQ(cut.ids.size(), 1u);
  EXPECT_TRUE(cut.truncated);
}

TEST(Corpus, ColumnsRoundTrip) {
  const std::string path = (std::filesystem::temp_directory_path() / ("medgpt_cols_" + std::to_string(::getpid()) + ".h5")).string();
  data::ColumnSplit train, valid;
  train["prompt"].append({1, 2});
  train["completion"].append({3});
  train["label"].append({1});
  train["prompt"].append({4});
  train["completion"].append({5, 6});
  train["label"].append({0});
  data::CorpusInfo info;
  info.kind = data::Kind::Kto;
  data::write_columns(path, info, train, valid);
  const auto got = data::read_columns(path, data::Kind::Kto, "");
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(got.at("completion").tokens, (std::vector<std::uint32_t>{3, 5, 6}));
  EXPECT_EQ(got.at("completion").offsets, (std::vector<std::uint64_t>{0, 1, 3}));
  EXPECT_EQ(got.at("label").tokens, (std::vector<std::uint32_t>{1, 0}));
  EXPECT_EQ(data::read_columns(path, data::Kind::Kto, "valid").size(), 0u);
  EXPECT_THROW(data::read_columns(path, data::Kind::Pref, ""), util::Error);
}
