// Pieces of the tokenizer checked against hand-worked values: lossy UTF-8 and incomplete tails,
// streaming decode, BPE training on a textbook example, thread defaults.
#include <gtest/gtest.h>

#include <cstdlib>

#include "data/tokenizer/bpe_trainer.hpp"
#include "data/tokenizer/stream_decoder.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "util/error.hpp"
#include "util/threads.hpp"
#include "util/utf8.hpp"

using namespace medgpt;

TEST(Utf8, LossyFollowsMaximalSubparts) {
  EXPECT_EQ(util::utf8_lossy("abc"), "abc");
  EXPECT_EQ(util::utf8_lossy("a\xC3"), "a\xEF\xBF\xBD");                    // truncated 2-byte sequence
  EXPECT_EQ(util::utf8_lossy("\xF0\x9F\x98x"), "\xEF\xBF\xBDx");            // one U+FFFD for a valid prefix
  EXPECT_EQ(util::utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: 3
  EXPECT_EQ(util::utf8_lossy("\xFF\xC3\xA9"), "\xEF\xBF\xBD\xC3\xA9");
  EXPECT_FALSE(util::utf8_valid("\xC0\xAF"));  // overlong
  EXPECT_TRUE(util::utf8_valid("\xE7\xB3\x96\xF0\x9F\x98\x80"));
}

TEST(Utf8, IncompleteTail) {
  EXPECT_EQ(util::utf8_incomplete_tail("ab"), 0u);
  EXPECT_EQ(util::utf8_incomplete_tail("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(util::utf8_incomplete_tail("a\xE7"), 1u);
  EXPECT_EQ(util::utf8_incomplete_tail("a\xE7\xB3\x96"), 0u);  // complete
  EXPECT_EQ(util::utf8_incomplete_tail("a\xFF"), 0u);          // never completes: not held back
  EXPECT_EQ(util::utf8_incomplete_tail("a\xE0\x80"), 0u);      // invalid second byte
}

TEST(StreamDecoder, HoldsBackSplitCharacters) {
  const auto tok = data::Tokenizer::load(std::string(MEDGPT_TEST_TOKENIZERS) + "/llama3");
  const std::string text = "😀👍🏽 糖尿病 ok";
  const auto ids = tok.encode(text);
  ASSERT_GT(ids.size(), 6u);  // Llama-3 splits these emoji over several byte tokens
  data::StreamDecoder dec(tok);
  std::string streamed;
  for (auto id : ids) {
    const std::string piece = dec.push(id);
    EXPECT_TRUE(util::utf8_valid(piece));
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "a half character was released";
    streamed += piece;
  }
  streamed += dec.flush();
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(streamed, tok.decode(ids));
  // An unfinished character at the end comes out as the full decode shows it.
  data::StreamDecoder cut(tok);
  std::string partial;
  for (std::size_t i = 0; i < 2; ++i) partial += cut.push(ids[i]);
  partial += cut.flush();
  EXPECT_EQ(partial, tok.decode({ids[0], ids[1]}));
}

TEST(BpeTrainer, TextbookExample) {
  // "aaabdaaabac": (a,a) is most frequent (4); then (a,b) and (aa,a) tie at 2 and the smaller
  // pair of ids wins (a=64 and b=65 in the byte alphabet); then (aa,ab) at 2.
  data::BpeTrainerOptions opt;
  opt.vocab_size = 256 + 3 + 3;  // alphabet + 3 merges + 3 special tokens
  opt.min_frequency = 2;
  data::WordCounter counter(opt);
  counter.add("aaabdaaabac");
  const auto tok = data::train_bpe(counter.counts(), opt);
  const auto& merges = tok.model().merges();
  ASSERT_EQ(merges.size(), 3u);
  EXPECT_EQ(merges[0], (std::pair<std::string, std::string>{"a", "a"}));
  EXPECT_EQ(merges[1], (std::pair<std::string, std::string>{"a", "b"}));
  EXPECT_EQ(merges[2], (std::pair<std::string, std::string>{"aa", "ab"}));
  EXPECT_EQ(tok.token_to_id("a"), 64);
  EXPECT_EQ(tok.token_to_id("aa"), 256);
  EXPECT_EQ(tok.token_to_id("aaab"), 258);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 259);
  EXPECT_EQ(tok.encode("aaabdaaabac"), (std::vector<data::TokenId>{258, tok.token_to_id("d"), 258, 64, tok.token_to_id("c")}));
  EXPECT_EQ(tok.eos_id().value(), tok.token_to_id("<|im_end|>"));
  // Special-token strings in the corpus are not counted as words.
  data::WordCounter c2(opt);
  c2.add("x<|im_end|>y");
  EXPECT_EQ(c2.counts().size(), 2u);
  EXPECT_EQ(c2.counts().count("<|im_end|>"), 0u);
}

TEST(BpeTrainer, RefusesTooSmallVocabulary) {
  data::BpeTrainerOptions opt;
  opt.vocab_size = 100;
  data::WordCounter counter(opt);
  counter.add("abc");
  EXPECT_THROW(data::train_bpe(counter.counts(), opt), util::Error);
}

TEST(Threads, EnvironmentDecides) {
  ::setenv("OMP_NUM_THREADS", "3", 1);
  ::setenv("SLURM_CPUS_PER_TASK", "5", 1);
  EXPECT_EQ(util::default_threads(), 3);
  ::unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(util::default_threads(), 5);
  ::unsetenv("SLURM_CPUS_PER_TASK");
  EXPECT_GE(util::default_threads(), 1);
}
