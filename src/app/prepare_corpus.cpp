// Raw files -> tokenized HDF5 corpus (see app/prepare_corpus.hpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>

#include "app/prepare_corpus.hpp"

#include "data/chat_template.hpp"
#include "data/corpus.hpp"
#include "data/pair_encoding.hpp"
#include "data/pt_packing.hpp"
#include "data/readers/readers.hpp"
#include "data/sft_encoding.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "parallel/agreement.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/progress.hpp"
#include "util/sha256.hpp"

namespace medgpt::app {

namespace {

using data::Kind;
using data::TokenArrays;

// Wall time per phase, for the summary line: where a run's time went.
class Phases {
 public:
  void mark(const char* name) {
    const auto now = std::chrono::steady_clock::now();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s %.2f s", text_.empty() ? "" : ", ", name, std::chrono::duration<double>(now - t_).count());
    text_ += buf;
    t_ = now;
  }
  const std::string& text() const { return text_; }

 private:
  std::chrono::steady_clock::time_point t_ = std::chrono::steady_clock::now();
  std::string text_;
};

struct LocalResult {
  TokenArrays samples;         // pt, sft
  data::ColumnSplit columns;   // pref, kto, prompt
  std::int64_t records = 0, skipped = 0, truncated = 0, dropped_empty = 0;
  std::int64_t identical = 0;  // pref: chosen == rejected (kept, but they teach nothing)
  std::vector<std::string> skipped_at, identical_at;  // first few locations
};

// Sends rank k's arrays to rank 0 in rank order; rank 0 returns them concatenated.
TokenArrays gather_to_root(parallel::Comm& c, const TokenArrays& mine, bool with_mask) {
  TokenArrays all;
  auto append = [&](const TokenArrays& a) {
    for (std::size_t i = 0; i < a.size(); ++i) all.append_from(a, i);
  };
  if (c.rank() != 0) {
    at::Tensor sizes = at::tensor({static_cast<std::int64_t>(mine.tokens.size()), static_cast<std::int64_t>(mine.offsets.size())}, at::kLong);
    c.send(sizes, 0, 1);
    if (!mine.tokens.empty()) {
      c.send(at::from_blob(const_cast<std::uint32_t*>(mine.tokens.data()), {static_cast<std::int64_t>(mine.tokens.size())}, at::kInt), 0, 2);
      if (with_mask)
        c.send(at::from_blob(const_cast<std::uint8_t*>(mine.loss_mask.data()), {static_cast<std::int64_t>(mine.loss_mask.size())}, at::kByte), 0, 3);
    }
    c.send(at::from_blob(const_cast<std::uint64_t*>(mine.offsets.data()), {static_cast<std::int64_t>(mine.offsets.size())}, at::kLong), 0, 4);
    return all;
  }
  append(mine);
  for (int k = 1; k < c.size(); ++k) {
    at::Tensor sizes = at::empty({2}, at::kLong);
    c.recv(sizes, k, 1);
    TokenArrays part;
    const auto n = sizes[0].item<std::int64_t>(), m = sizes[1].item<std::int64_t>();
    part.tokens.resize(static_cast<std::size_t>(n));
    part.offsets.resize(static_cast<std::size_t>(m));
    if (n > 0) {
      c.recv(at::from_blob(part.tokens.data(), {n}, at::kInt), k, 2);
      if (with_mask) {
        part.loss_mask.resize(static_cast<std::size_t>(n));
        c.recv(at::from_blob(part.loss_mask.data(), {n}, at::kByte), k, 3);
      }
    }
    c.recv(at::from_blob(part.offsets.data(), {m}, at::kLong), k, 4);
    append(part);
  }
  return all;
}

// --validation-split: a fraction (< 1) or a count; which samples, by a seeded shuffle.
std::vector<bool> validation_mask(std::size_t n, const std::string& spec, std::uint64_t seed) {
  std::vector<bool> valid(n, false);
  double v = 0;
  try {
    std::size_t used = 0;
    v = std::stod(spec, &used);
    if (used != spec.size() || v < 0) throw std::invalid_argument(spec);
  } catch (const std::exception&) {
    util::fail("--validation-split", "\"" + spec + "\" is not a fraction or a count", "pass e.g. 0.01 or 200");
  }
  std::size_t k = v < 1 ? static_cast<std::size_t>(v * static_cast<double>(n) + 0.5) : static_cast<std::size_t>(v);
  if (k >= n && n > 0) util::fail("--validation-split", spec + " leaves no training samples out of " + std::to_string(n), "use a smaller split");
  // Fisher-Yates with the raw 64-bit output (same choice on every platform).
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  for (std::size_t i = 0; i < k; ++i) valid[order[i]] = true;
  return valid;
}

data::CorpusInfo corpus_info(const PrepareOptions& o, const data::Tokenizer& tok, const data::ChatTemplate* tmpl,
                             const std::vector<std::string>& files) {
  data::CorpusInfo info;
  info.kind = o.kind;
  info.tokenizer_sha256 = util::sha256_file(tok.source());
  info.template_name = tmpl ? tmpl->name() : "";
  for (const auto& f : files)
    info.source_files.push_back({{"name", f}, {"bytes", std::filesystem::file_size(f)}, {"sha256", util::sha256_file(f)}});
  return info;
}

// pref / kto / prompt: every column gathered in input order, split by the same validation mask.
void write_columnar(parallel::Comm& world, const PrepareOptions& o, const LocalResult& mine, const data::Tokenizer& tok,
                   const data::ChatTemplate* tmpl, const std::vector<std::string>& files, const std::string& output,
                   std::int64_t records, std::int64_t skipped, std::int64_t truncated, std::int64_t identical) {
  data::ColumnSplit all;
  for (const auto& [name, column] : mine.columns.columns) all[name] = gather_to_root(world, column, false);
  if (world.rank() != 0) return;
  if (all.size() == 0) util::fail(output, "no samples to write (" + std::to_string(skipped) + " bad records skipped)", "check the inputs");
  const std::vector<bool> is_valid = validation_mask(all.size(), o.validation_split, o.seed);
  data::ColumnSplit train, valid;
  std::size_t tokens = 0;
  for (const auto& [name, column] : all.columns) {
    for (std::size_t i = 0; i < column.size(); ++i) (is_valid[i] ? valid : train)[name].append_from(column, i);
    if (name != "label" && name != "answer") tokens += column.tokens.size();
  }
  data::CorpusInfo info = corpus_info(o, tok, tmpl, files);
  info.counts = {{"records", records}, {"samples_train", train.size()}, {"samples_valid", valid.size()},
                 {"tokens", tokens}, {"skipped", skipped}, {"truncated", truncated}};
  if (o.kind == Kind::Pref) info.counts["identical_pairs"] = identical;
  data::write_columns(output, info, train, valid);
  char buf[400];
  std::snprintf(buf, sizeof buf, "prepared %s: %lld records -> %zu train + %zu valid samples, %zu tokens; truncated %lld, skipped %lld bad records -> %s",
                data::to_string(o.kind), static_cast<long long>(records), train.size(), valid.size(), tokens,
                static_cast<long long>(truncated), static_cast<long long>(skipped), output.c_str());
  util::log(buf);
}

}  // namespace

void prepare_corpus(parallel::Comm& world, const PrepareOptions& o, const std::vector<std::string>& inputs, const std::string& tok_path,
                    const std::string& template_name, const std::string& output) {
  const bool columnar = o.kind != Kind::Pt && o.kind != Kind::Sft;
  // Everything that can be wrong with the set-up is checked before any tokenizing.
  if (o.kind == Kind::Pt && o.block_size == 0) util::fail("--block-size", "must be positive", "e.g. --block-size 1024");
  Phases phases;
  const data::Tokenizer tok = data::Tokenizer::load(tok_path);
  phases.mark("tokenizer load");
  const data::ChatTemplate* tmpl = o.kind != Kind::Pt ? &data::ChatTemplate::get(template_name) : nullptr;
  const auto eos = tok.eos_id();
  if (o.kind == Kind::Pt && !eos) util::fail(tok_path, "the tokenizer has no eos_token", "set eos_token in tokenizer_config.json");
  const std::vector<std::string> files = data::expand_record_inputs(inputs, o.kind);

  std::vector<std::unique_ptr<data::RecordFile>> opened;
  std::vector<std::size_t> start{0};  // each file's first byte in the joined stream
  for (const auto& f : files) {
    opened.push_back(std::make_unique<data::RecordFile>(f));
    start.push_back(start.back() + opened.back()->bytes().size());
  }
  const std::size_t total = start.back(), P = static_cast<std::size_t>(world.size()), r = static_cast<std::size_t>(world.rank());
  const std::size_t lo = total * r / P, hi = total * (r + 1) / P;

  LocalResult mine;
  std::int64_t error_key = parallel::kNoError;
  std::string error_msg;
  util::Progress progress("prepare", static_cast<double>(hi - lo));
  data::SftEncodeOptions sft_opt{o.max_length, o.train_on_inputs};
  data::PairEncodeOptions pair_opt{o.max_length, o.max_prompt_length};
  for (const auto& name : data::column_names(o.kind)) mine.columns[name];
  // A prompt and its answers, as columns; true when anything was cut.
  auto add_pair = [&](const std::vector<data::ChatMessage>& prompt, const std::vector<std::pair<const char*, const std::string*>>& answers) {
    const data::EncodedPrompt p = data::encode_prompt(tok, *tmpl, prompt, pair_opt);
    bool cut = p.truncated;
    mine.columns["prompt"].append(p.ids);
    for (const auto& [column, text] : answers) {
      const data::EncodedPrompt r = data::encode_response(tok, *tmpl, prompt, *text, p.ids.size(), pair_opt);
      cut |= r.truncated;
      mine.columns[column].append(r.ids);
    }
    return cut;
  };
  for (std::size_t i = 0; i < files.size() && error_key == parallel::kNoError; ++i) {
    const std::size_t b = std::max(lo, start[i]), e = std::min(hi, start[i + 1]);
    if (b >= e) continue;
    const data::BadLineFn skip_line = [&](const util::Error& err) {
      if (mine.skipped_at.size() < 5) mine.skipped_at.push_back(err.what());
      ++mine.skipped;
    };
    try {
      data::for_each_record_in(*opened[i], o.kind, o.doc_sep, b - start[i], e - start[i], [&](const nlohmann::json& rec, const std::string& where) {
        try {
          if (o.kind == Kind::Pt) {
            data::add_document(mine.samples, tok.encode(data::parse_pt(rec, where).text), *eos);
          } else if (o.kind == Kind::Pref) {
            const data::PrefRecord p = data::parse_pref(rec, where);
            if (p.chosen == p.rejected && mine.identical++ < 3) mine.identical_at.push_back(where);
            mine.truncated += add_pair(p.prompt, {{"chosen", &p.chosen}, {"rejected", &p.rejected}});
          } else if (o.kind == Kind::Kto) {
            const data::KtoRecord k = data::parse_kto(rec, where);
            mine.truncated += add_pair(k.prompt, {{"completion", &k.completion}});
            mine.columns["label"].append({k.label ? 1 : 0});
          } else if (o.kind == Kind::Prompt) {
            const data::PromptRecord q = data::parse_prompt(rec, where);
            mine.truncated += add_pair(q.prompt, {});
            mine.columns["answer"].append(std::vector<std::int32_t>(q.answer.begin(), q.answer.end()));
          } else {
            const data::EncodedSample s = data::encode_sft(tok, *tmpl, data::parse_sft(rec, where), sft_opt);
            if (s.empty) {
              ++mine.dropped_empty;
              return;
            }
            mine.truncated += s.truncated;
            mine.samples.append(s.ids, s.mask);
          }
          ++mine.records;
        } catch (const util::Error& err) {
          if (!o.skip_bad) throw;
          skip_line(err);
        }
        if ((mine.records & 255) == 0) progress.update(static_cast<double>(mine.records), std::to_string(mine.records) + " records");
      }, o.skip_bad ? &skip_line : nullptr);
    } catch (const util::Error& err) {
      // Earliest in input order (this rank reads no further).
      error_key = parallel::input_order_key(i, world.rank(), world.size());
      error_msg = err.what();
    }
  }
  progress.finish();
  phases.mark("read + tokenize");
  parallel::agree_on_error(world, error_key, error_msg);

  const std::int64_t records = parallel::allreduce_int(world, mine.records, parallel::ReduceOp::kSum);
  const std::int64_t skipped = parallel::allreduce_int(world, mine.skipped, parallel::ReduceOp::kSum);
  const std::int64_t truncated = parallel::allreduce_int(world, mine.truncated, parallel::ReduceOp::kSum);
  const std::int64_t empty = parallel::allreduce_int(world, mine.dropped_empty, parallel::ReduceOp::kSum);
  for (const auto& where : mine.skipped_at) util::log("skipped: " + where);  // rank 0's share
  const std::int64_t identical = parallel::allreduce_int(world, mine.identical, parallel::ReduceOp::kSum);
  for (const auto& where : mine.identical_at) util::log("warning: " + where + ": chosen and rejected are the same answer (kept; such a pair carries no preference)");
  if (identical > 0 && world.rank() == 0)
    util::log("warning: " + std::to_string(identical) + " pairs have chosen == rejected; they add nothing to rm/dpo/orpo/simpo but noise: consider removing them");
  if (columnar) {
    write_columnar(world, o, mine, tok, tmpl, files, output, records, skipped, truncated, identical);
    return;
  }
  const TokenArrays all = gather_to_root(world, mine.samples, o.kind == Kind::Sft);
  phases.mark("gather");
  if (world.rank() != 0) return;
  if (all.size() == 0) util::fail(output, "no samples to write (" + std::to_string(skipped) + " bad records skipped)", "check the inputs");

  TokenArrays train, valid;
  const std::vector<bool> is_valid = validation_mask(all.size(), o.validation_split, o.seed);
  for (std::size_t i = 0; i < all.size(); ++i) (is_valid[i] ? valid : train).append_from(all, i);
  std::size_t dropped_tail = 0;
  if (o.kind == Kind::Pt) {
    dropped_tail += data::cut_blocks(train, o.block_size, o.drop_tail);
    if (valid.size() > 0) dropped_tail += data::cut_blocks(valid, o.block_size, o.drop_tail);
  }

  phases.mark("split");
  data::CorpusInfo info = corpus_info(o, tok, tmpl, files);
  phases.mark("sha256");
  const std::size_t max_len = all.longest();
  info.counts = {{"records", records}, {"samples_train", train.size()}, {"samples_valid", valid.size()},
                 {"tokens_train", train.tokens.size()}, {"tokens_valid", valid.tokens.size()}, {"skipped", skipped},
                 {"truncated", truncated}, {"dropped_no_labels", empty}, {"max_length", max_len}};
  if (o.kind == Kind::Pt)
    info.counts.update({{"block_size", o.block_size}, {"blocks_train", train.blocks.size() - 1},
                        {"blocks_valid", valid.size() ? valid.blocks.size() - 1 : 0}, {"tail_tokens_dropped", dropped_tail}});
  data::write_corpus(output, info, train, valid);
  phases.mark("write");

  char buf[512];
  std::snprintf(buf, sizeof buf,
                "prepared %s: %lld records -> %zu train + %zu valid samples, %zu + %zu tokens (mean %.1f, max %zu); "
                "truncated %lld, skipped %lld bad records, dropped %lld without labels -> %s",
                data::to_string(o.kind), static_cast<long long>(records), train.size(), valid.size(), train.tokens.size(),
                valid.tokens.size(), static_cast<double>(all.tokens.size()) / static_cast<double>(all.size()), max_len,
                static_cast<long long>(truncated), static_cast<long long>(skipped), static_cast<long long>(empty), output.c_str());
  util::log(buf);
  util::log("prepare phases (rank 0): " + phases.text());
  }

}  // namespace medgpt::app
