#include "data/tokenizer/bpe_trainer.hpp"

#include <algorithm>
#include <queue>
#include <unordered_set>

#include "data/tokenizer/byte_level.hpp"
#include "util/error.hpp"
#include "util/utf8.hpp"

namespace medgpt::data {

namespace {

using Pair = std::uint64_t;
Pair make_pair_key(TokenId a, TokenId b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}
TokenId first_of(Pair p) { return static_cast<TokenId>(p >> 32); }
TokenId second_of(Pair p) { return static_cast<TokenId>(p & 0xffffffffu); }

struct Candidate {
  std::int64_t count;
  Pair pair;
  // Max-heap: the higher count first; on a tie the smaller pair (as Hugging Face's trainer).
  bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

AddedVocabulary special_vocab(const std::vector<std::string>& specials, TokenId first_id) {
  AddedVocabulary v;
  for (std::size_t i = 0; i < specials.size(); ++i) {
    AddedToken t;
    t.id = first_id + static_cast<TokenId>(i);
    t.content = specials[i];
    t.special = true;
    v.add(std::move(t));
  }
  return v;
}

}  // namespace

WordCounter::WordCounter(const BpeTrainerOptions& opt)
    : norm_(opt.nfc ? Normalizer::Form::NFC : Normalizer::Form::None),
      pre_(PreTokenizer::with_pattern(opt.pattern.empty() ? kQwenSplitPattern : opt.pattern)),
      specials_(special_vocab(opt.special_tokens, 0)) {}

void WordCounter::add(std::string_view text) {
  segs_.clear();
  specials_.split(text, false, segs_);
  for (const auto& s : segs_) {
    if (s.id >= 0) continue;
    const std::string normalized = norm_.apply(s.text);
    pieces_.clear();
    pre_->split(normalized, pieces_);
    for (auto p : pieces_) ++counts_[std::string(p)];
  }
}

Tokenizer train_bpe(const std::unordered_map<std::string, std::int64_t>& word_counts, const BpeTrainerOptions& opt,
                    const std::function<void(std::size_t, std::size_t)>& progress) {
  const std::size_t n_special = opt.special_tokens.size();
  if (opt.vocab_size < 256 + n_special)
    util::fail("--vocab-size", std::to_string(opt.vocab_size) + " is too small",
               "a byte-level vocabulary needs at least 256 + the special tokens (" + std::to_string(256 + n_special) + ")");
  const ByteLevel& bl = ByteLevel::get();

  // The alphabet: all 256 byte characters, ordered by code point (as tokenizers sorts it).
  std::vector<unsigned char> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[static_cast<std::size_t>(b)] = static_cast<unsigned char>(b);
  auto code_point = [&](unsigned char b) {
    std::size_t len;
    return util::utf8_decode(bl.char_of(b), 0, len);
  };
  std::sort(bytes.begin(), bytes.end(), [&](unsigned char a, unsigned char b) { return code_point(a) < code_point(b); });
  TokenId byte_id[256];
  std::vector<std::string> tokens;  // id -> byte-level string
  std::unordered_map<std::string, TokenId> id_of;
  for (unsigned char b : bytes) {
    byte_id[b] = static_cast<TokenId>(tokens.size());
    id_of[bl.char_of(b)] = byte_id[b];
    tokens.push_back(bl.char_of(b));
  }

  // Words as id sequences, in a deterministic order (sorted by bytes).
  std::vector<std::pair<std::string, std::int64_t>> sorted(word_counts.begin(), word_counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<TokenId>> words(sorted.size());
  std::vector<std::int64_t> counts(sorted.size());
  std::unordered_map<Pair, std::int64_t> pair_count;
  std::unordered_map<Pair, std::vector<std::uint32_t>> where;
  for (std::size_t w = 0; w < sorted.size(); ++w) {
    for (unsigned char c : sorted[w].first) words[w].push_back(byte_id[c]);
    counts[w] = sorted[w].second;
    for (std::size_t i = 0; i + 1 < words[w].size(); ++i) {
      const Pair p = make_pair_key(words[w][i], words[w][i + 1]);
      pair_count[p] += counts[w];
      where[p].push_back(static_cast<std::uint32_t>(w));
    }
  }
  std::priority_queue<Candidate> heap;
  for (const auto& [p, c] : pair_count) heap.push({c, p});

  std::vector<std::pair<std::string, std::string>> merges;
  const std::size_t target = opt.vocab_size - n_special;
  const std::size_t merges_target = target > tokens.size() ? target - tokens.size() : 0;
  while (tokens.size() < target && !heap.empty()) {
    Candidate top = heap.top();
    heap.pop();
    const std::int64_t current = pair_count[top.pair];
    if (top.count != current) {  // stale: requeue with the live count
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (top.count < 1 || top.count < opt.min_frequency) break;

    const TokenId a = first_of(top.pair), b = second_of(top.pair);
    const std::string merged = tokens[static_cast<std::size_t>(a)] + tokens[static_cast<std::size_t>(b)];
    TokenId m;
    if (auto it = id_of.find(merged); it != id_of.end()) {
      m = it->second;
    } else {
      m = static_cast<TokenId>(tokens.size());
      tokens.push_back(merged);
      id_of.emplace(merged, m);
    }
    merges.emplace_back(tokens[static_cast<std::size_t>(a)], tokens[static_cast<std::size_t>(b)]);

    // Rewrite every word holding the pair, left to right, tracking the neighbouring pair counts.
    std::unordered_map<Pair, std::int64_t> delta;
    std::vector<std::uint32_t> ws = std::move(where[top.pair]);
    where.erase(top.pair);
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    for (std::uint32_t w : ws) {
      auto& s = words[w];
      const std::int64_t c = counts[w];
      std::vector<TokenId> out;
      out.reserve(s.size());
      bool changed = false;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          if (!out.empty()) {
            delta[make_pair_key(out.back(), a)] -= c;
            delta[make_pair_key(out.back(), m)] += c;
          }
          if (i + 2 < s.size()) {
            delta[make_pair_key(b, s[i + 2])] -= c;
            delta[make_pair_key(m, s[i + 2])] += c;
          }
          delta[top.pair] -= c;
          out.push_back(m);
          ++i;
          changed = true;
        } else {
          out.push_back(s[i]);
        }
      }
      if (!changed) continue;
      s.swap(out);
      for (std::size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == m || s[i + 1] == m) where[make_pair_key(s[i], s[i + 1])].push_back(w);
    }
    for (const auto& [p, d] : delta) {
      std::int64_t& pc = pair_count[p];
      pc += d;
      if (d > 0) heap.push({pc, p});
    }
    pair_count.erase(top.pair);
    if (progress && (merges.size() & 255) == 0) progress(merges.size(), merges_target);
  }

  std::vector<std::pair<std::string, TokenId>> vocab_entries;
  for (std::size_t i = 0; i < tokens.size(); ++i) vocab_entries.emplace_back(tokens[i], static_cast<TokenId>(i));
  Bpe model = Bpe::from_parts(std::move(vocab_entries), std::move(merges), false, "tokenizer train");
  AddedVocabulary added = special_vocab(opt.special_tokens, static_cast<TokenId>(tokens.size()));

  nlohmann::ordered_json config;
  config["add_bos_token"] = false;
  config["add_prefix_space"] = false;
  nlohmann::ordered_json decoder_map = nlohmann::ordered_json::object();
  for (const auto& t : added.tokens())
    decoder_map[std::to_string(t.id)] = {{"content", t.content}, {"lstrip", false}, {"normalized", false},
                                         {"rstrip", false}, {"single_word", false}, {"special", true}};
  config["added_tokens_decoder"] = decoder_map;
  config["bos_token"] = nullptr;
  config["clean_up_tokenization_spaces"] = false;
  // ChatML-style end of turn when present (the Qwen instruct convention), else the first special.
  auto special_or_first = [&](const char* preferred) -> nlohmann::ordered_json {
    if (opt.special_tokens.empty()) return nullptr;
    for (const auto& t : opt.special_tokens)
      if (t == preferred) return t;
    return opt.special_tokens[0];
  };
  config["eos_token"] = special_or_first("<|im_end|>");
  config["errors"] = "replace";
  config["model_max_length"] = opt.model_max_length;
  config["pad_token"] = special_or_first("<|endoftext|>");
  config["split_special_tokens"] = false;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  config["unk_token"] = nullptr;
  return Tokenizer::from_parts(std::move(model), std::move(added),
                               Normalizer(opt.nfc ? Normalizer::Form::NFC : Normalizer::Form::None),
                               PreTokenizer::with_pattern(opt.pattern.empty() ? kQwenSplitPattern : opt.pattern), std::move(config));
}

}  // namespace medgpt::data
