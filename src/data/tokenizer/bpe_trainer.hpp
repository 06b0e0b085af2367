// Byte-level BPE training (as Hugging Face's BpeTrainer; MedicalGPT trains its domain tokenizer
// this way): count pre-tokenized words, then repeatedly merge the most frequent adjacent pair
// (ties: the smallest pair of ids) until the vocabulary is full or pairs get rarer than
// min_frequency.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"

namespace medgpt::data {

struct BpeTrainerOptions {
  std::size_t vocab_size = 32000;  // model vocabulary + special tokens
  std::int64_t min_frequency = 2;
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  std::string pattern;  // pre-tokenizer regex; empty = Qwen's
  bool nfc = true;      // NFC normalizer, as Qwen
  std::size_t model_max_length = 131072;
};

// Counts words (pre-tokens, raw bytes) of a corpus with the trainer's normalizer and
// pre-tokenizer; special-token strings in the text are cut out first.
class WordCounter {
 public:
  explicit WordCounter(const BpeTrainerOptions& opt);
  void add(std::string_view text);
  const std::unordered_map<std::string, std::int64_t>& counts() const { return counts_; }
  std::unordered_map<std::string, std::int64_t>& counts() { return counts_; }

 private:
  Normalizer norm_;
  std::unique_ptr<PreTokenizer> pre_;
  AddedVocabulary specials_;
  std::unordered_map<std::string, std::int64_t> counts_;
  std::vector<Segment> segs_;
  std::vector<std::string_view> pieces_;
};

// progress(merges_done, merges_target) is called now and then.
Tokenizer train_bpe(const std::unordered_map<std::string, std::int64_t>& word_counts, const BpeTrainerOptions& opt,
                    const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace medgpt::data
