// The shard index reads any block of a tensor, or any range of a block, from the pieces another
// layout stored: whole tp shards (model files) and ranges of them (ZeRO optimizer files), with
// copies and overlapping ranges; a gap is one error naming the tensor. Values checked against
// the tensor they were cut from.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/checkpoint.hpp"
#include "model/shard_index.hpp"
#include "train/run_checkpoint.hpp"
#include "util/error.hpp"

using namespace medgpt;
namespace fs = std::filesystem;

namespace {

std::string fresh_dir(const std::string& tag) {
  const fs::path p = fs::temp_directory_path() / ("medgpt_si_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// W [6, 4] = 0..23 stored by a tp=2 layout split along rows: two model shards of 3 rows each.
at::Tensor full() { return at::arange(24, at::kFloat).view({6, 4}); }

void write_tp2_rows(const std::string& dir) {
  const at::Tensor w = full();
  for (int r = 0; r < 2; ++r)
    model::write_model_shard(dir, {r, 2, 0, 1}, {{"w", w.narrow(0, 3 * r, 3)}}, {{6, 4}}, {{3 * r, 0}});
}

}  // namespace

TEST(ShardIndex, ReadsAnyBlockFromAnotherTpSplit) {
  const std::string dir = fresh_dir("tp");
  write_tp2_rows(dir);
  const model::ShardIndex index = model::ShardIndex::scan(dir, {model::shard_file({0, 2, 0, 1}), model::shard_file({1, 2, 0, 1})}, "");
  EXPECT_EQ(index.logical_shape("w"), (std::vector<std::int64_t>{6, 4}));
  // The same shard; the whole tensor (tp 1); a column split (tp 2 along dim 1); rows 1..4 across both shards.
  EXPECT_TRUE(index.read_block("w", {3, 0}, {3, 4}).equal(full().narrow(0, 3, 3)));
  EXPECT_TRUE(index.read_block("w", {0, 0}, {6, 4}).equal(full()));
  EXPECT_TRUE(index.read_block("w", {0, 2}, {6, 2}).equal(full().narrow(1, 2, 2)));
  EXPECT_TRUE(index.read_block("w", {1, 0}, {4, 4}).equal(full().narrow(0, 1, 4)));
  // A range of a block, flattened (a ZeRO shard of the tp=1 tensor): elements 5..17.
  EXPECT_TRUE(index.read("w", {0, 0}, {6, 4}, 5, 17).equal(full().reshape({-1}).narrow(0, 5, 12)));
  // Broadcast to every rank as text, the index reads the same.
  const model::ShardIndex copy = model::ShardIndex::from_json(dir, index.to_json());
  EXPECT_TRUE(copy.read_block("w", {0, 0}, {6, 2}).equal(full().narrow(1, 0, 2)));
  EXPECT_THROW(index.read_block("w", {0, 0}, {7, 4}), util::Error);  // another model's shape
  EXPECT_THROW(index.read_block("v", {0, 0}, {6, 4}), util::Error);  // no such tensor
  fs::remove_all(dir);
}

TEST(ShardIndex, RangesOfABlockWithCopiesOverlapsAndGaps) {
  // The moments of W's tp=1 block as ZeRO ranges; one range stored twice and one overlapping
  // others (a tied head's copy on another stage), then one range missing.
  const std::string dir = fresh_dir("ranges");
  const at::Tensor w = full(), flat = w.reshape({-1});
  const train::TensorBlock block{{6, 4}, {0, 0}, {6, 4}};
  auto piece = [&](std::int64_t b, std::int64_t e) {
    return train::MomentPiece{"w", block, b, e, flat.narrow(0, b, e - b), flat.narrow(0, b, e - b) * 2};
  };
  // One piece of a tensor per file, as each rank writes: [0, 10) twice, [5, 12) over [0, 10) and [10, 16).
  const std::vector<std::pair<std::string, std::pair<std::int64_t, std::int64_t>>> files = {
      {"optim-a.h5", {0, 10}}, {"optim-b.h5", {10, 16}}, {"optim-c.h5", {5, 12}}, {"optim-d.h5", {16, 24}}, {"optim-e.h5", {0, 10}}};
  std::vector<std::string> names;
  for (const auto& [file, range] : files) {
    train::write_optimizer_file(dir + "/" + file, 7, {piece(range.first, range.second)});
    names.push_back(file);
  }
  const model::ShardIndex m = model::ShardIndex::scan(dir, names, "exp_avg");
  const model::ShardIndex v = model::ShardIndex::scan(dir, names, "exp_avg_sq");
  EXPECT_TRUE(m.read("w", {0, 0}, {6, 4}, 0, 24).equal(flat));
  EXPECT_TRUE(v.read("w", {0, 0}, {6, 4}, 3, 20).equal(flat.narrow(0, 3, 17) * 2));
  // Another tp split of the same moments: rows 3..5 (tp 2, rank 1) and columns 0..1.
  EXPECT_TRUE(m.read_block("w", {3, 0}, {3, 4}).equal(w.narrow(0, 3, 3)));
  EXPECT_TRUE(m.read_block("w", {0, 0}, {6, 2}).equal(w.narrow(1, 0, 2)));
  // Without elements 16..23 the block has a gap: refused, naming the tensor.
  const model::ShardIndex gap = model::ShardIndex::scan(dir, {"optim-a.h5", "optim-b.h5", "optim-c.h5", "optim-e.h5"}, "exp_avg");
  EXPECT_TRUE(gap.read("w", {0, 0}, {6, 4}, 0, 16).equal(flat.narrow(0, 0, 16)));
  try {
    gap.read("w", {0, 0}, {6, 4}, 0, 24);
    FAIL() << "a gap was not refused";
  } catch (const util::Error& e) {
    EXPECT_NE(std::string(e.what()).find(": w: "), std::string::npos) << e.what();
  }
  EXPECT_THROW(gap.read_block("w", {0, 0}, {3, 4}), util::Error);  // another split needs the whole block
  fs::remove_all(dir);
}
