// Serves [B, T] training batches of a prepared corpus to one data-parallel rank. The row stream
// does not depend on the layout: a seeded shuffle per epoch, SFT samples packed several to a row
// (attention kept inside each sample: segment ids, positions restarting) or one per row, labels
// -100 where there is no loss. Each call of next() takes the stream's next dp_size x B rows and
// keeps every dp_size-th of them, so an optimizer step trains on the same rows with any number of
// ranks or micro-batch size. The cursor (epoch, position, seed) is the same on every rank and
// restores exactly the batches an uninterrupted run would see, in any layout.
#pragma once

#include <cstdint>
#include <vector>

#include "data/corpus.hpp"

namespace medgpt::data {

struct LoaderOptions {
  std::size_t rows = 8;           // B: sequences per batch on this rank
  std::size_t seq_len = 1024;     // T
  bool packing = true;            // sft: several samples per row
  std::uint64_t seed = 42;
  int dp_rank = 0, dp_size = 1;
  std::int32_t pad_id = 0;
  // Samples that travel together: 2 for preference pairs (samples 2g and 2g+1: chosen and
  // rejected). A batch of `rows / group` groups puts every group's first sample in the first half
  // of the rows and its second in the second half (TRL's [chosen..., rejected...] layout); the
  // epoch order, dp shards and cursors count groups. No packing.
  std::size_t group = 1;
};

// Row-major [rows, seq_len] arrays.
struct Batch {
  std::size_t rows = 0, seq_len = 0;
  std::vector<std::int64_t> ids, labels, positions, segment_ids;
  std::vector<std::uint8_t> attention_mask;  // 1 = real token
  std::int64_t label_tokens = 0;             // labels != -100 (for the loss normaliser)
  std::vector<std::int64_t> samples;         // corpus sample indices in the batch, in order
  // Per row, when the corpus carries them (TokenArrays::desirable, ::ref_logps).
  std::vector<std::uint8_t> desirable;
  std::vector<double> ref_logps;
};

struct LoaderCursor {
  std::int64_t epoch = 0, position = 0;  // position: samples (groups) of the epoch's order consumed
  std::uint64_t seed = 0;
};

// Samples in a corpus: pt blocks or sft conversations (or pair rows).
std::size_t sample_count(const TokenArrays& corpus, Kind kind);
// One sample per row, in the given order, cut to seq_len (evaluation).
// For pairs pass [chosen samples..., rejected samples...].
Batch batch_of(const TokenArrays& corpus, Kind kind, const std::vector<std::int64_t>& samples, std::size_t seq_len, std::int32_t pad_id);

class Loader {
 public:
  // kind: Pt (samples = the corpus' blocks) or Sft (samples = conversations).
  Loader(const TokenArrays& corpus, Kind kind, LoaderOptions opt);
  Batch next();
  LoaderCursor cursor() const;
  // util::Error when the cursor was saved with another seed, or does not fall on a row of its epoch
  // (another corpus or row length).
  void restore(const LoaderCursor& c);
  // Samples (groups, for grouped samples) in an epoch.
  std::size_t samples_per_epoch() const { return count_; }
  // Rows of the whole stream in an epoch (packing fits several SFT samples in a row; groups, for
  // grouped samples), for all ranks together.
  std::size_t rows_per_epoch() const { return row_start_.empty() ? count_ : row_start_.size() - 1; }

 private:
  void start_epoch(std::int64_t epoch);
  std::size_t sample_size(std::int64_t s) const;
  // Where row r of the epoch starts in order_ (rows end where the next one starts).
  std::int64_t row_start(std::int64_t r) const { return row_start_.empty() ? r : row_start_[static_cast<std::size_t>(r)]; }
  // Writes row row_ of the epoch into this rank's batch slot `slot`.
  void put_row(Batch& b, std::size_t slot) const;
  // Starts reading the samples of this rank's next batch from a memory-mapped corpus (disk I/O
  // overlaps the training step).
  void prefetch_next() const;

  const TokenArrays& corpus_;
  Kind kind_;
  LoaderOptions opt_;
  std::size_t count_ = 0, slots_ = 0;   // samples (groups) per epoch; rows (groups) per batch
  std::vector<std::int64_t> order_;      // the epoch's samples (groups), shuffled
  std::vector<std::int64_t> row_start_;  // packing: each row's first index in order_, then order_.size()
  std::int64_t epoch_ = 0, row_ = 0;     // the stream's next row
};

}  // namespace medgpt::data
