// Where the pieces of each tensor lie in a checkpoint's shard files, and reading any part of a
// tensor from them: what lets a run resume in another (tp, pp, dp, ZeRO) layout while each rank
// reads only the bytes of the parts it holds.
//
// A piece is a block of the tensor's logical shape (offset + shape: a tp shard, or the whole
// tensor), stored whole as an N-d dataset (model shards), or as elements [begin, end) of that block
// flattened, a 1-d dataset (an optimizer shard under ZeRO). The same block may be stored more than
// once (a replicated tensor by every tp rank, a tied embedding by the first and the last stage);
// copies are taken as equal.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace medgpt::model {

struct TensorPiece {
  std::string file, dataset;  // file relative to the checkpoint folder
  std::string dtype;          // model/checkpoint's names: "float32", "bfloat16", ...
  std::vector<std::int64_t> logical, offset, shape;
  std::int64_t begin = 0, end = 0;  // of the block, flattened; [0, numel) when stored whole
  bool ranged = false;              // a 1-d range of the block, not the N-d block itself
  bool whole() const { return !ranged; }
};

class ShardIndex {
 public:
  // Scans the datasets of `group` ("" for the root) in `files` (relative to `dir`): attributes only.
  // Each dataset carries dtype, logical_shape and offset; a 1-d piece of a block also block_shape
  // and range [begin, end).
  static ShardIndex scan(const std::string& dir, const std::vector<std::string>& files, const std::string& group);
  // For a broadcast: rank 0 scans, every rank reads the same index.
  std::string to_json() const;
  static ShardIndex from_json(const std::string& dir, const std::string& text);

  bool has(const std::string& name) const { return pieces_.count(name) > 0; }
  std::vector<std::string> names() const;
  const std::vector<std::int64_t>& logical_shape(const std::string& name) const;
  const std::vector<TensorPiece>& pieces(const std::string& name) const;

  // Elements [begin, end) of the block (offset, shape) of tensor `name`, flattened, in its stored
  // dtype. Reads only the pieces that overlap the block (and only the overlap of a whole stored
  // block). util::Error naming the checkpoint and tensor when the pieces do not cover it.
  at::Tensor read(const std::string& name, const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape,
                  std::int64_t begin, std::int64_t end) const;
  // The whole block.
  at::Tensor read_block(const std::string& name, const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape) const;

 private:
  std::string dir_;
  std::map<std::string, std::vector<TensorPiece>> pieces_;
};

}  // namespace medgpt::model
