// The loader: packing with per-sample segments and positions, labels, deterministic epochs, one
// row stream whatever the layout (every dp size and micro-batch size trains the same rows each
// step), and exact resume from a cursor, in the same layout or another.
#include <gtest/gtest.h>

#include <set>

#include "data/corpus.hpp"
#include "data/loader.hpp"
#include "util/error.hpp"

using namespace medgpt;

namespace {

// 10 SFT samples of lengths 2..6; tokens encode (sample, position): 100 * sample + t.
data::TokenArrays sft_corpus(std::size_t n = 10) {
  data::TokenArrays a;
  for (std::size_t s = 0; s < n; ++s) {
    std::vector<std::int32_t> ids;
    std::vector<std::uint8_t> mask;
    for (std::size_t t = 0; t < 2 + s % 5; ++t) {
      ids.push_back(static_cast<std::int32_t>(100 * s + t));
      mask.push_back(t >= 1 ? 1 : 0);  // first token is "prompt"
    }
    a.append(ids, mask);
  }
  return a;
}

}  // namespace

TEST(Loader, PacksWholeSamplesWithSegmentsPositionsAndLabels) {
  const auto corpus = sft_corpus();
  data::LoaderOptions o;
  o.rows = 2;
  o.seq_len = 8;
  data::Loader loader(corpus, data::Kind::Sft, o);
  const data::Batch b = loader.next();
  for (std::size_t row = 0; row < b.rows; ++row) {
    std::int64_t last_segment = -1;
    for (std::size_t t = 0; t < b.seq_len; ++t) {
      const std::size_t i = row * b.seq_len + t;
      if (!b.attention_mask[i]) {
        EXPECT_EQ(b.labels[i], -100);
        EXPECT_EQ(b.segment_ids[i], -1);
        continue;
      }
      const std::int64_t sample = b.ids[i] / 100, pos = b.ids[i] % 100;
      EXPECT_EQ(b.positions[i], pos);  // positions restart in every sample
      if (pos == 0) {
        EXPECT_EQ(b.segment_ids[i], ++last_segment);
      }
      EXPECT_EQ(b.labels[i], pos >= 1 ? b.ids[i] : -100) << "sample " << sample;
    }
  }
  std::int64_t labels = 0;
  for (auto l : b.labels) labels += l != -100;
  EXPECT_EQ(labels, b.label_tokens);
  // Without packing: one sample per row.
  o.packing = false;
  data::Loader single(corpus, data::Kind::Sft, o);
  EXPECT_EQ(single.next().samples.size(), 2u);
}

// The rows of each optimizer step of `rows_per_step` global rows, as sorted row contents, served
// by dp ranks taking `micro` rows per call. After `resume_after` steps (0: never) the loaders are
// made anew and restored from `saved`, a cursor saved in another layout at that step, which must
// equal this layout's own.
std::vector<std::multiset<std::vector<std::int64_t>>> steps_of(const data::TokenArrays& corpus, data::Kind kind, data::LoaderOptions o,
                                                               int dp, std::size_t micro, std::size_t rows_per_step, int steps,
                                                               int resume_after = 0, const data::LoaderCursor* saved = nullptr) {
  std::vector<data::Loader> ranks;
  auto fresh = [&] {
    ranks.clear();
    for (int r = 0; r < dp; ++r) {
      o.rows = micro * o.group;
      o.dp_rank = r;
      o.dp_size = dp;
      ranks.emplace_back(corpus, kind, o);
    }
  };
  fresh();
  std::vector<std::multiset<std::vector<std::int64_t>>> out;
  for (int step = 0; step < steps; ++step) {
    if (step == resume_after && step > 0) {
      EXPECT_EQ(ranks.front().cursor().epoch, saved->epoch);
      EXPECT_EQ(ranks.front().cursor().position, saved->position);
      fresh();
      for (auto& l : ranks) l.restore(*saved);
    }
    std::multiset<std::vector<std::int64_t>> rows;
    for (std::size_t call = 0; call < rows_per_step / (micro * static_cast<std::size_t>(dp)); ++call)
      for (auto& l : ranks) {
        const data::Batch b = l.next();
        for (std::size_t row = 0; row < b.rows; ++row)
          rows.insert(std::vector<std::int64_t>(b.ids.begin() + static_cast<std::ptrdiff_t>(row * b.seq_len),
                                                b.ids.begin() + static_cast<std::ptrdiff_t>((row + 1) * b.seq_len)));
      }
    out.push_back(rows);
    for (const auto& l : ranks) EXPECT_EQ(l.cursor().position, ranks.front().cursor().position) << "ranks disagree on the cursor";
  }
  return out;
}

TEST(Loader, EveryLayoutTrainsTheSameRowsEachStep) {
  // Packed SFT rows, one sample per row, and preference pairs (groups of two rows), over 3+ epochs:
  // 1 rank x 12 rows, 2 x 3 (two calls each), 3 x 2, 4 x 1 (three calls each), 6 x 2 per step.
  const auto sft = sft_corpus(23);
  for (const bool packing : {true, false})
    for (const std::size_t group : {std::size_t{1}, std::size_t{2}}) {
      if (packing && group == 2) continue;
      data::LoaderOptions o;
      o.seq_len = 9;
      o.packing = packing;
      o.group = group;
      const std::size_t per_step = 12;
      const auto want = steps_of(sft, data::Kind::Sft, o, 1, 12, per_step, 9);
      o.rows = 12 * group;
      data::Loader one(sft, data::Kind::Sft, o);
      for (int step = 0; step < 4; ++step) one.next();
      const data::LoaderCursor at4 = one.cursor();  // 1 rank, step 4
      EXPECT_GT(at4.epoch, 0);                      // 48 rows: past the first epoch
      for (const auto& [dp, micro] : std::vector<std::pair<int, std::size_t>>{{2, 3}, {3, 2}, {4, 1}, {6, 2}, {1, 4}}) {
        EXPECT_EQ(steps_of(sft, data::Kind::Sft, o, dp, micro, per_step, 9), want)
            << "dp " << dp << " micro " << micro << " packing " << packing << " group " << group;
        // Saved on 1 rank at step 4, resumed in this layout.
        EXPECT_EQ(steps_of(sft, data::Kind::Sft, o, dp, micro, per_step, 9, 4, &at4), want) << "resumed: dp " << dp << " micro " << micro;
      }
    }
}

TEST(Loader, ThePackedStreamHoldsEverySampleOncePerEpoch) {
  const auto corpus = sft_corpus(23);
  data::LoaderOptions o;
  o.rows = 1;
  o.seq_len = 9;
  data::Loader l(corpus, data::Kind::Sft, o);
  std::multiset<std::int64_t> seen;
  for (std::size_t k = 0; k < l.rows_per_epoch(); ++k)
    for (const auto s : l.next().samples) seen.insert(s);
  EXPECT_EQ(seen.size(), 23u);
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()).size(), 23u);
  EXPECT_EQ(l.cursor().epoch, 1);  // the epoch's rows are used up: the cursor points at the next
  EXPECT_EQ(l.cursor().position, 0);
}

TEST(Loader, PretrainingBlocks) {
  data::TokenArrays docs;
  docs.append({1, 2, 3, 4, 5, 6, 7});
  docs.blocks = {0, 3, 6, 7};  // three blocks, the last a 1-token tail
  data::LoaderOptions o;
  o.rows = 3;
  o.seq_len = 3;
  data::Loader l(docs, data::Kind::Pt, o);
  const data::Batch b = l.next();
  std::multiset<std::int64_t> firsts;
  for (std::size_t row = 0; row < 3; ++row) firsts.insert(b.ids[row * 3]);
  EXPECT_EQ(firsts, (std::multiset<std::int64_t>{1, 4, 7}));
  EXPECT_EQ(b.label_tokens, 4);  // 2 + 2 + 0
}

TEST(Loader, MemoryMappedCorpusServesTheSameBatches) {
  // Written by write_corpus and read back, the token and mask columns are views of the mapped file
  // (a corpus larger than memory stays on disk); the batches equal the in-memory corpus's.
  const data::TokenArrays memory = sft_corpus(40);
  const std::string path = ::testing::TempDir() + "/mapped-sft.h5";
  data::CorpusInfo info;
  info.kind = data::Kind::Sft;
  data::write_corpus(path, info, memory, {});
  const data::TokenArrays mapped = data::read_corpus(path, data::Kind::Sft, "");
  EXPECT_TRUE(mapped.tokens.mapped());
  EXPECT_TRUE(mapped.loss_mask.mapped());
  EXPECT_FALSE(memory.tokens.mapped());
  EXPECT_EQ(mapped.tokens, memory.tokens);
  data::LoaderOptions o;
  o.rows = 3;
  o.seq_len = 9;
  data::Loader a(memory, data::Kind::Sft, o), b(mapped, data::Kind::Sft, o);
  for (int i = 0; i < 12; ++i) {
    const data::Batch x = a.next(), y = b.next();
    EXPECT_EQ(x.ids, y.ids);
    EXPECT_EQ(x.labels, y.labels);
    EXPECT_EQ(x.segment_ids, y.segment_ids);
  }
  // A write to a mapped column copies it into memory first; the file is untouched.
  data::TokenArrays copy = mapped;
  copy.tokens.push_back(7);
  EXPECT_FALSE(copy.tokens.mapped());
  EXPECT_EQ(copy.tokens.size(), memory.tokens.size() + 1);
  EXPECT_EQ(data::read_corpus(path, data::Kind::Sft, "").tokens, memory.tokens);
}
