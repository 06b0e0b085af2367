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
  slots_ = opt_.rows / opt_.group;
  if (count_ == 0) util::fail("loader", "the corpus has no samples", "use more data");
  start_epoch(0);
}

void Loader::start_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  row_ = 0;
  // One permutation for all ranks (seed + epoch; raw 64-bit draws: the same on every platform).
  order_.resize(count_);
  for (std::size_t i = 0; i < count_; ++i) order_[i] = static_cast<std::int64_t>(i);
  std::mt19937_64 rng(opt_.seed + static_cast<std::uint64_t>(epoch));
  for (std::size_t i = count_; i > 1; --i) std::swap(order_[i - 1], order_[rng() % i]);
  // Packing SFT: as many whole samples to a row as fit, in order; a row never spans two epochs.
  row_start_.clear();
  if (kind_ == Kind::Sft && opt_.packing && opt_.group == 1) {
    std::size_t used = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      const std::size_t len = sample_size(order_[i]);
      if (i == 0 || used + len > opt_.seq_len) {
        row_start_.push_back(static_cast<std::int64_t>(i));
        used = 0;
      }
      used += len;
    }
    row_start_.push_back(static_cast<std::int64_t>(count_));
  }
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
  const auto rows = static_cast<std::int64_t>(rows_per_epoch()), dp = static_cast<std::int64_t>(opt_.dp_size);
  for (std::size_t k = 0; k < slots_; ++k) {
    const std::int64_t r = row_ + static_cast<std::int64_t>(k) * dp + opt_.dp_rank;
    if (r >= rows) return;  // the next epoch's rows: its order is not drawn yet
    for (std::int64_t i = row_start(r); i < row_start(r + 1); ++i)
      for (std::size_t m = 0; m < opt_.group; ++m) {
        const auto s = static_cast<std::size_t>(order_[static_cast<std::size_t>(i)]) * opt_.group + m;
        corpus_.tokens.prefetch(off[s], std::min<std::size_t>(off[s + 1] - off[s], opt_.seq_len));
        corpus_.loss_mask.prefetch(off[s], std::min<std::size_t>(off[s + 1] - off[s], opt_.seq_len));
      }
  }
}

void Loader::put_row(Batch& b, std::size_t slot) const {
  if (opt_.group > 1) {  // one group: its m-th sample in the m-th block of rows
    const std::int64_t g = order_[static_cast<std::size_t>(row_)];
    for (std::size_t m = 0; m < opt_.group; ++m) {
      const std::int64_t s = g * static_cast<std::int64_t>(opt_.group) + static_cast<std::int64_t>(m);
      put_sample(b, m * slots_ + slot, 0, 0, corpus_, kind_, s, sample_size(s));
    }
    return;
  }
  std::size_t used = 0;
  std::int64_t segment = 0;
  for (std::int64_t i = row_start(row_); i < row_start(row_ + 1); ++i) {
    const std::int64_t s = order_[static_cast<std::size_t>(i)];
    const std::size_t len = sample_size(s);
    put_sample(b, slot, used, segment++, corpus_, kind_, s, len);
    used += len;
  }
}

Batch Loader::next() {
  Batch b = empty_batch(opt_.rows, opt_.seq_len, opt_.pad_id);
  const auto dp = static_cast<std::size_t>(opt_.dp_size), mine = static_cast<std::size_t>(opt_.dp_rank);
  for (std::size_t k = 0; k < slots_ * dp; ++k) {
    if (row_ == static_cast<std::int64_t>(rows_per_epoch())) start_epoch(epoch_ + 1);
    if (k % dp == mine) put_row(b, k / dp);
    ++row_;
  }
  prefetch_next();
  return b;
}

LoaderCursor Loader::cursor() const {
  if (row_ == static_cast<std::int64_t>(rows_per_epoch())) return {epoch_ + 1, 0, opt_.seed};
  return {epoch_, row_start(row_), opt_.seed};
}

void Loader::restore(const LoaderCursor& c) {
  if (c.seed != opt_.seed)
    util::fail("loader cursor", "saved with seed " + std::to_string(c.seed) + ", resumed with " + std::to_string(opt_.seed), "resume with the same seed");
  if (c.epoch < 0 || c.position < 0 || c.position > static_cast<std::int64_t>(count_))
    util::fail("loader cursor", "epoch " + std::to_string(c.epoch) + " position " + std::to_string(c.position) + " is outside the corpus' " +
               std::to_string(count_) + " samples", "resume on the data the checkpoint was trained on");
  start_epoch(c.epoch);
  std::int64_t r = c.position;
  if (!row_start_.empty()) {
    const auto it = std::lower_bound(row_start_.begin(), row_start_.end(), c.position);
    if (it == row_start_.end() || *it != c.position)
      util::fail("loader cursor", "sample " + std::to_string(c.position) + " of epoch " + std::to_string(c.epoch) + " does not start a packed row",
                 "resume with the row length and data the checkpoint was trained with");
    r = it - row_start_.begin();
  }
  row_ = r;
}

}  // namespace medgpt::data
