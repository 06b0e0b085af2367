#include "data/loader.hpp"

#include <algorithm>
#include <random>

#include "util/error.hpp"

namespace medgpt::data {

Loader::Loader(const TokenArrays& corpus, Kind kind, LoaderOptions opt) : corpus_(corpus), kind_(kind), opt_(opt) {
  if (kind != Kind::Pt && kind != Kind::Sft) util::fail("loader", "serves pt and sft corpora", "use a pt or sft corpus");
  if (opt_.dp_size < 1 || opt_.dp_rank < 0 || opt_.dp_rank >= opt_.dp_size) util::fail("loader", "bad dp rank/size", "check the grid");
  if (opt_.rows == 0 || opt_.seq_len == 0) util::fail("loader", "rows and seq_len must be positive", "check the batch options");
  if (opt_.group < 1 || (opt_.group > 1 && (kind != Kind::Sft || opt_.rows % opt_.group != 0)))
    util::fail("loader", "grouped samples need an sft-kind corpus and rows divisible by the group", "internal error");
  count_ = sample_count(corpus, kind) / opt_.group;  // groups (samples when group is 1)
  // Equal shards keep the ranks in step: the last count % dp_size samples of an epoch are left out.
  per_rank_ = count_ / static_cast<std::size_t>(opt_.dp_size);
  if (per_rank_ == 0)
    util::fail("loader", "the corpus has " + std::to_string(count_) + " samples, fewer than the " + std::to_string(opt_.dp_size) + " data-parallel ranks",
               "use more data or fewer ranks");
  start_epoch(0);
}

void Loader::start_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  // One permutation for all ranks (seed + epoch; raw 64-bit draws: the same on every platform).
  std::vector<std::int64_t> perm(count_);
  for (std::size_t i = 0; i < count_; ++i) perm[i] = static_cast<std::int64_t>(i);
  std::mt19937_64 rng(opt_.seed + static_cast<std::uint64_t>(epoch));
  for (std::size_t i = count_; i > 1; --i) std::swap(perm[i - 1], perm[rng() % i]);
  order_.clear();
  for (std::size_t k = 0; k < per_rank_; ++k) order_.push_back(perm[k * static_cast<std::size_t>(opt_.dp_size) + static_cast<std::size_t>(opt_.dp_rank)]);
}

namespace {

Batch empty_batch(std::size_t rows, std::size_t seq_len, std::int32_t pad_id) {
  Batch b;
  b.rows = rows;
  b.seq_len = seq_len;
  const std::size_t n = rows * seq_len;
  b.ids.assign(n, pad_id);
  b.labels.assign(n, -100);
  b.positions.assign(n, 0);
  b.segment_ids.assign(n, -1);
  b.attention_mask.assign(n, 0);
  return b;
}

// Writes the first `len` tokens of sample `s` into `row` from column `used`, as segment `segment`.
void put_sample(Batch& b, std::size_t row, std::size_t used, std::int64_t segment, const TokenArrays& corpus, Kind kind,
                std::int64_t s, std::size_t len) {
  const auto& off = kind == Kind::Pt ? corpus.blocks : corpus.offsets;
  const std::size_t start = off[static_cast<std::size_t>(s)];
  for (std::size_t t = 0; t < len; ++t) {
    const std::size_t at = row * b.seq_len + used + t;
    const std::uint32_t tok = corpus.tokens[start + t];
    b.ids[at] = tok;
    // Token t is predicted from t - 1 of the same sample: a sample's first token has no label,
    // so a packed row never trains one sample's last token to predict the next sample.
    const bool trained = t > 0 && (kind == Kind::Pt || corpus.loss_mask[start + t] != 0);
    b.labels[at] = trained ? static_cast<std::int64_t>(tok) : -100;
    b.label_tokens += trained ? 1 : 0;
    b.positions[at] = static_cast<std::int64_t>(t);
    b.segment_ids[at] = segment;
    b.attention_mask[at] = 1;
  }
  b.samples.push_back(s);
  auto per_row = [&](auto& out, const auto& column, auto empty) {
    if (column.empty()) return;
    if (out.size() != b.rows) out.assign(b.rows, empty);
    out[row] = column[static_cast<std::size_t>(s)];
  };
  per_row(b.desirable, corpus.desirable, std::uint8_t{0});
  per_row(b.ref_logps, corpus.ref_logps, 0.0);
}

std::size_t sample_length(const TokenArrays& corpus, Kind kind, std::int64_t s, std::size_t seq_len) {
  const auto i = static_cast<std::size_t>(s);
  const auto& off = kind == Kind::Pt ? corpus.blocks : corpus.offsets;
  return std::min<std::size_t>(off[i + 1] - off[i], seq_len);
}

}  // namespace

std::size_t Loader::sample_size(std::int64_t s) const { return sample_length(corpus_, kind_, s, opt_.seq_len); }

std::size_t sample_count(const TokenArrays& corpus, Kind kind) {
  return kind == Kind::Pt ? (corpus.blocks.empty() ? 0 : corpus.blocks.size() - 1) : corpus.size();
}

Batch batch_of(const TokenArrays& corpus, Kind kind, const std::vector<std::int64_t>& samples, std::size_t seq_len, std::int32_t pad_id) {
  Batch b = empty_batch(samples.size(), seq_len, pad_id);
  for (std::size_t row = 0; row < samples.size(); ++row)
    put_sample(b, row, 0, 0, corpus, kind, samples[row], sample_length(corpus, kind, samples[row], seq_len));
  return b;
}

void Loader::prefetch_next() const {
  if (!corpus_.tokens.mapped()) return;
  const auto& off = kind_ == Kind::Pt ? corpus_.blocks : corpus_.offsets;
  const std::size_t n = std::min(order_.size(), static_cast<std::size_t>(position_) + opt_.rows);
  for (std::size_t k = static_cast<std::size_t>(position_); k < n; ++k)
    for (std::size_t m = 0; m < opt_.group; ++m) {
      const auto s = static_cast<std::size_t>(order_[k]) * opt_.group + m;
      corpus_.tokens.prefetch(off[s], std::min<std::size_t>(off[s + 1] - off[s], opt_.seq_len));
      corpus_.loss_mask.prefetch(off[s], std::min<std::size_t>(off[s + 1] - off[s], opt_.seq_len));
    }
}

Batch Loader::next() {
  Batch b = opt_.group > 1 ? next_groups() : next_rows();
  prefetch_next();
  return b;
}

Batch Loader::next_rows() {
  Batch b = empty_batch(opt_.rows, opt_.seq_len, opt_.pad_id);
  for (std::size_t row = 0; row < b.rows; ++row) {
    std::size_t used = 0;
    std::int64_t segment = 0;
    while (true) {
      if (position_ >= static_cast<std::int64_t>(order_.size())) start_epoch(epoch_ + 1);
      const std::int64_t s = order_[static_cast<std::size_t>(position_)];
      const std::size_t len = sample_size(s);
      // A row takes one sample, or (packing SFT) as many whole samples as fit.
      if (used > 0 && (kind_ == Kind::Pt || !opt_.packing || used + len > b.seq_len)) break;
      put_sample(b, row, used, segment, corpus_, kind_, s, len);
      used += len;
      ++segment;
      ++position_;
      if (used >= b.seq_len) break;
    }
  }
  return b;
}

Batch Loader::next_groups() {
  Batch b = empty_batch(opt_.rows, opt_.seq_len, opt_.pad_id);
  const std::size_t n = opt_.rows / opt_.group;
  for (std::size_t k = 0; k < n; ++k) {
    if (position_ >= static_cast<std::int64_t>(order_.size())) start_epoch(epoch_ + 1);
    const std::int64_t g = order_[static_cast<std::size_t>(position_++)];
    for (std::size_t m = 0; m < opt_.group; ++m) {
      const std::int64_t s = g * static_cast<std::int64_t>(opt_.group) + static_cast<std::int64_t>(m);
      put_sample(b, m * n + k, 0, 0, corpus_, kind_, s, sample_size(s));
    }
  }
  return b;
}

std::size_t Loader::rows_per_epoch() const {
  if (kind_ == Kind::Pt || !opt_.packing || opt_.group > 1) return per_rank_;
  std::size_t rows = 0, used = 0;
  for (const std::int64_t s : order_) {
    const std::size_t len = sample_size(s);
    if (used == 0 || used + len > opt_.seq_len) {
      ++rows;
      used = 0;
    }
    used += len;
  }
  return rows;
}

LoaderCursor Loader::cursor() const { return {epoch_, position_, opt_.seed, opt_.dp_size}; }

void Loader::restore(const LoaderCursor& c) {
  if (c.dp_size != opt_.dp_size)
    util::fail("loader cursor", "saved with " + std::to_string(c.dp_size) + " data-parallel ranks, resumed with " + std::to_string(opt_.dp_size),
               "resume with the same number of data-parallel ranks (resharding the loader is not supported yet)");
  if (c.seed != opt_.seed)
    util::fail("loader cursor", "saved with seed " + std::to_string(c.seed) + ", resumed with " + std::to_string(opt_.seed), "resume with the same seed");
  start_epoch(c.epoch);
  if (c.position < 0 || c.position > static_cast<std::int64_t>(order_.size())) util::fail("loader cursor", "position out of range", "the checkpoint is damaged");
  position_ = c.position;
}

}  // namespace medgpt::data
