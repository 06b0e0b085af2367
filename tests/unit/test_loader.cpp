// The loader: packing with per-sample segments and positions, labels, deterministic epochs,
// disjoint dp shards covering the epoch, and exact resume from a cursor.
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

TEST(Loader, DpShardsAreDisjointAndCoverTheEpoch) {
  const auto corpus = sft_corpus(11);
  std::set<std::int64_t> seen;
  for (int r = 0; r < 2; ++r) {
    data::LoaderOptions o;
    o.rows = 1;
    o.seq_len = 6;
    o.packing = false;
    o.dp_rank = r;
    o.dp_size = 2;
    data::Loader l(corpus, data::Kind::Sft, o);
    EXPECT_EQ(l.samples_per_rank(), 5u);
    for (int k = 0; k < 5; ++k)
      for (auto s : l.next().samples) EXPECT_TRUE(seen.insert(s).second) << "sample " << s << " served twice";
  }
  EXPECT_EQ(seen.size(), 10u);  // 11 samples: one left out so both ranks take 5
}

TEST(Loader, ResumeGivesTheSameBatches) {
  const auto corpus = sft_corpus(23);
  data::LoaderOptions o;
  o.rows = 3;
  o.seq_len = 9;
  data::Loader straight(corpus, data::Kind::Sft, o);
  std::vector<std::vector<std::int64_t>> want;
  for (int k = 0; k < 12; ++k) want.push_back(straight.next().ids);  // crosses epochs
  data::Loader first(corpus, data::Kind::Sft, o);
  for (int k = 0; k < 6; ++k) EXPECT_EQ(first.next().ids, want[static_cast<std::size_t>(k)]);
  const data::LoaderCursor c = first.cursor();
  data::Loader resumed(corpus, data::Kind::Sft, o);
  resumed.restore(c);
  for (int k = 6; k < 12; ++k) EXPECT_EQ(resumed.next().ids, want[static_cast<std::size_t>(k)]);
  // Another dp size is refused.
  o.dp_size = 2;
  data::Loader other(corpus, data::Kind::Sft, o);
  EXPECT_THROW(other.restore(c), util::Error);
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
