// A tokenized corpus in HDF5 (DESIGN §5), written by `medgpt prepare` and read by the loader:
// uncompressed datasets per split ("" = train, "valid/"), with the attributes format_version,
// kind, tokenizer_sha256, template, source_files (names, sizes, sha256) and counts; each dataset
// carries the SHA-256 of its bytes ("sha256"), checked on every read (version 2).
//   pt:  tokens u32[N] (documents joined with EOS), doc_offsets u64[D+1], block_offsets u64[B+1]
//   sft: tokens u32[N], loss_mask u8[N], sample_offsets u64[S+1]
//   pref: prompt/chosen/rejected u32 with prompt_offsets/chosen_offsets/rejected_offsets u64[S+1]
//   kto: prompt, completion (+ offsets), label u8[S]
//   prompt: prompt (+ prompt_offsets), answer u8 bytes (+ answer_offsets)
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/column.hpp"
#include "data/readers/kind.hpp"

namespace medgpt::data {

constexpr std::int64_t kCorpusFormatVersion = 2;

// Token sequences laid end to end: sample i is tokens[offsets[i], offsets[i + 1]). Read from a
// corpus file, tokens and loss_mask are memory-mapped (data/column.hpp): the file may be larger
// than memory; offsets (8 bytes per sample or block) are read in.
struct TokenArrays {
  Column<std::uint32_t> tokens;
  Column<std::uint8_t> loss_mask;          // sft: 1 where the loss is taken
  std::vector<std::uint64_t> offsets{0};   // sample (sft) or document (pt) boundaries
  std::vector<std::uint64_t> blocks;       // pt: block boundaries (from 0), filled by packing
  // Per-sample values some stages attach to their rows (empty otherwise): KTO's desirable label,
  // and DPO's reference log-prob when precomputed (--dpo.precompute_ref_log_probs).
  std::vector<std::uint8_t> desirable;
  std::vector<double> ref_logps;

  std::size_t size() const { return offsets.size() - 1; }
  std::size_t longest() const;  // tokens in the longest sample (0 when empty)
  void append(const std::vector<std::int32_t>& ids, const std::vector<std::uint8_t>& mask = {});
  void append_from(const TokenArrays& other, std::size_t sample);
};

struct CorpusInfo {
  Kind kind = Kind::Pt;
  std::string tokenizer_sha256, template_name;
  nlohmann::json source_files = nlohmann::json::array();  // [{name, bytes, sha256}]
  nlohmann::json counts = nlohmann::json::object();
};

// Per-sample columns for pref/kto/prompt: each column holds one sequence per sample (a "label"
// column one 0/1 value per sample, an "answer" column the answer's bytes).
struct ColumnSplit {
  std::vector<std::pair<std::string, TokenArrays>> columns;
  std::size_t size() const { return columns.empty() ? 0 : columns.front().second.size(); }
  TokenArrays& operator[](const std::string& name);
  const TokenArrays& at(const std::string& name) const;
};

// The columns each kind stores, in order.
std::vector<std::string> column_names(Kind kind);

void write_columns(const std::string& path, const CorpusInfo& info, const ColumnSplit& train, const ColumnSplit& valid);
ColumnSplit read_columns(const std::string& path, Kind expected, const std::string& split, CorpusInfo* info = nullptr);

// Writes `path` (via a temporary name, renamed at the end): the train split and, when it has
// samples, the valid split.
void write_corpus(const std::string& path, const CorpusInfo& info, const TokenArrays& train, const TokenArrays& valid);

// Reads a split ("" or "valid") of a corpus, checking format_version and kind (util::Error says
// what it found).
TokenArrays read_corpus(const std::string& path, Kind expected, const std::string& split, CorpusInfo* info = nullptr);

}  // namespace medgpt::data
