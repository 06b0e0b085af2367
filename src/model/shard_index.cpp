#include "model/shard_index.hpp"

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/h5_dtype.hpp"
#include "util/error.hpp"
#include "util/h5.hpp"

namespace medgpt::model {

namespace {

std::int64_t numel_of(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (const std::int64_t d : shape) n *= d;
  return n;
}

// The overlap of two blocks along each dimension: [lo, hi) per dimension; empty when any is.
struct Overlap {
  std::vector<std::int64_t> lo, hi;
  bool empty = false;
};

Overlap overlap(const std::vector<std::int64_t>& o1, const std::vector<std::int64_t>& s1, const std::vector<std::int64_t>& o2,
                const std::vector<std::int64_t>& s2) {
  Overlap r;
  for (std::size_t d = 0; d < o1.size(); ++d) {
    r.lo.push_back(std::max(o1[d], o2[d]));
    r.hi.push_back(std::min(o1[d] + s1[d], o2[d] + s2[d]));
    if (r.hi.back() <= r.lo.back()) r.empty = true;
  }
  return r;
}

// `t` narrowed to the overlap, in coordinates relative to the block starting at `origin`.
at::Tensor narrow_to(at::Tensor t, const Overlap& o, const std::vector<std::int64_t>& origin) {
  for (std::size_t d = 0; d < o.lo.size(); ++d) t = t.narrow(static_cast<std::int64_t>(d), o.lo[d] - origin[d], o.hi[d] - o.lo[d]);
  return t;
}

// Open files of one read, each opened once.
class Files {
 public:
  explicit Files(std::string dir) : dir_(std::move(dir)) {}
  const util::H5File& at(const std::string& file) {
    auto it = open_.find(file);
    if (it == open_.end()) it = open_.emplace(file, std::make_unique<util::H5File>(util::H5File::open(dir_ + "/" + file))).first;
    return *it->second;
  }

 private:
  std::string dir_;
  std::map<std::string, std::unique_ptr<util::H5File>> open_;
};

// Fills elements [begin, end) of a block, flattened, into `out` from pieces of exactly that block
// (copies and overlapping ranges allowed). Returns false when they leave a gap.
bool fill_range(const std::vector<const TensorPiece*>& same_block, std::int64_t begin, std::int64_t end, at::Tensor out, Files& files) {
  std::vector<const TensorPiece*> sorted = same_block;
  std::sort(sorted.begin(), sorted.end(), [](const TensorPiece* a, const TensorPiece* b) { return a->begin < b->begin; });
  std::int64_t done = begin;
  for (const TensorPiece* p : sorted) {
    if (done >= end) break;
    if (p->begin > done) return false;
    const std::int64_t lo = done, hi = std::min(end, p->end);
    if (hi <= lo) continue;
    const util::H5File& f = files.at(p->file);
    at::Tensor dst = out.narrow(0, lo - begin, hi - lo);
    const hid_t type = h5_type(out.scalar_type());
    if (p->whole()) {
      // A whole N-d block: read it, then take the range (a range of a whole block is a rare request).
      if (lo == 0 && hi == numel_of(p->shape)) f.read(p->dataset, type, dst.data_ptr());
      else {
        at::Tensor all = at::empty({numel_of(p->shape)}, out.options());
        f.read(p->dataset, type, all.data_ptr());
        dst.copy_(all.narrow(0, lo, hi - lo));
      }
    } else {
      f.read_block(p->dataset, type, {static_cast<std::uint64_t>(lo - p->begin)}, {static_cast<std::uint64_t>(hi - lo)}, dst.data_ptr());
    }
    done = hi;
  }
  return done >= end;
}

}  // namespace

ShardIndex ShardIndex::scan(const std::string& dir, const std::vector<std::string>& files, const std::string& group) {
  ShardIndex index;
  index.dir_ = dir;
  for (const std::string& file : files) {
    const util::H5File f = util::H5File::open(dir + "/" + file);
    for (const std::string& name : f.datasets(group)) {
      const std::string ds = group.empty() ? name : group + "/" + name, where = dir + "/" + file + ": " + ds;
      TensorPiece p;
      p.file = file;
      p.dataset = ds;
      p.dtype = f.attr_string(ds, "dtype");
      dtype_named(p.dtype, where);
      p.logical = f.attr_ints(ds, "logical_shape");
      p.offset = f.attr_ints(ds, "offset");
      const auto dims = f.dims(ds);
      if (f.has_attr(ds, "range")) {
        p.shape = f.attr_ints(ds, "block_shape");
        const auto r = f.attr_ints(ds, "range");
        if (r.size() != 2 || dims.size() != 1 || r[0] < 0 || r[1] < r[0] || r[1] > numel_of(p.shape) ||
            static_cast<std::int64_t>(dims[0]) != r[1] - r[0])
          util::fail(where, "range does not match the stored elements", "the checkpoint is damaged");
        p.begin = r[0];
        p.end = r[1];
        p.ranged = true;
      } else {
        p.shape.assign(dims.begin(), dims.end());
        p.end = numel_of(p.shape);
      }
      if (p.logical.size() != p.shape.size() || p.offset.size() != p.shape.size())
        util::fail(where, "logical_shape/offset do not match the stored rank", "the checkpoint is damaged");
      for (std::size_t d = 0; d < p.shape.size(); ++d)
        if (p.offset[d] < 0 || p.offset[d] + p.shape[d] > p.logical[d]) util::fail(where, "offset outside the logical shape", "the checkpoint is damaged");
      auto& list = index.pieces_[name];
      if (!list.empty() && list.front().logical != p.logical)
        util::fail(where, "disagrees with " + list.front().file + " on the tensor's shape", "the checkpoint is damaged");
      list.push_back(std::move(p));
    }
  }
  return index;
}

std::string ShardIndex::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, list] : pieces_) {
    nlohmann::json& a = j[name];
    for (const TensorPiece& p : list)
      a.push_back({{"f", p.file}, {"d", p.dataset}, {"t", p.dtype}, {"l", p.logical}, {"o", p.offset}, {"s", p.shape}, {"r", {p.begin, p.end}}, {"n", p.ranged}});
  }
  return j.dump();
}

ShardIndex ShardIndex::from_json(const std::string& dir, const std::string& text) {
  ShardIndex index;
  index.dir_ = dir;
  const nlohmann::json j = nlohmann::json::parse(text);  // outlives the loop's items() view
  for (const auto& [name, a] : j.items())
    for (const auto& e : a) {
      TensorPiece p;
      p.file = e.at("f");
      p.dataset = e.at("d");
      p.dtype = e.at("t");
      p.logical = e.at("l").get<std::vector<std::int64_t>>();
      p.offset = e.at("o").get<std::vector<std::int64_t>>();
      p.shape = e.at("s").get<std::vector<std::int64_t>>();
      p.begin = e.at("r").at(0);
      p.end = e.at("r").at(1);
      p.ranged = e.at("n");
      index.pieces_[name].push_back(std::move(p));
    }
  return index;
}

std::vector<std::string> ShardIndex::names() const {
  std::vector<std::string> out;
  for (const auto& [name, list] : pieces_) out.push_back(name);
  return out;
}

const std::vector<TensorPiece>& ShardIndex::pieces(const std::string& name) const {
  auto it = pieces_.find(name);
  if (it == pieces_.end()) util::fail(dir_, "has no tensor " + name, "the checkpoint belongs to another model");
  return it->second;
}

const std::vector<std::int64_t>& ShardIndex::logical_shape(const std::string& name) const { return pieces(name).front().logical; }

at::Tensor ShardIndex::read_block(const std::string& name, const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape) const {
  return read(name, offset, shape, 0, numel_of(shape)).view(shape);
}

at::Tensor ShardIndex::read(const std::string& name, const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& shape,
                            std::int64_t begin, std::int64_t end) const {
  const std::vector<TensorPiece>& all = pieces(name);
  const std::string where = dir_ + ": " + name;
  const TensorPiece& first = all.front();
  if (offset.size() != first.logical.size() || shape.size() != first.logical.size())
    util::fail(where, "has another shape than this run's parameter", "the checkpoint belongs to another model");
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (offset[d] < 0 || offset[d] + shape[d] > first.logical[d])
      util::fail(where, "has another shape than this run's parameter", "the checkpoint belongs to another model");
  const at::TensorOptions opt = at::TensorOptions().dtype(dtype_named(first.dtype, where));
  Files files(dir_);
  at::Tensor out = at::empty({end - begin}, opt);

  // The same block stored (a tp shard resumed with the same tp): only the range asked for.
  std::vector<const TensorPiece*> same;
  for (const TensorPiece& p : all)
    if (p.offset == offset && p.shape == shape) same.push_back(&p);
  if (!same.empty() && fill_range(same, begin, end, out, files)) return out;

  // Other blocks (another tp split): assemble the block from their overlaps.
  at::Tensor block = at::empty(shape, opt);
  std::int64_t filled = 0;
  std::vector<std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>> done;  // blocks taken
  for (const TensorPiece& p : all) {
    const Overlap o = overlap(p.offset, p.shape, offset, shape);
    if (o.empty || std::find(done.begin(), done.end(), std::make_pair(p.offset, p.shape)) != done.end()) continue;
    done.emplace_back(p.offset, p.shape);
    if (p.whole()) {  // only the overlap's bytes
      std::vector<std::uint64_t> start, count;
      for (std::size_t d = 0; d < o.lo.size(); ++d) {
        start.push_back(static_cast<std::uint64_t>(o.lo[d] - p.offset[d]));
        count.push_back(static_cast<std::uint64_t>(o.hi[d] - o.lo[d]));
      }
      std::vector<std::int64_t> dims(count.begin(), count.end());
      at::Tensor part = at::empty(dims, opt);
      files.at(p.file).read_block(p.dataset, h5_type(opt.dtype().toScalarType()), start, count, part.data_ptr());
      narrow_to(block, o, offset).copy_(part);
      filled += part.numel();
      continue;
    }
    std::vector<const TensorPiece*> ranges;  // the block p belongs to, from its ranges
    for (const TensorPiece& q : all)
      if (q.offset == p.offset && q.shape == p.shape) ranges.push_back(&q);
    at::Tensor theirs = at::empty({numel_of(p.shape)}, opt);
    if (!fill_range(ranges, 0, numel_of(p.shape), theirs, files))
      util::fail(where, "the stored parts of block at " + nlohmann::json(p.offset).dump() + " leave a gap", "a shard file is missing; the checkpoint is incomplete");
    const at::Tensor src = narrow_to(theirs.view(p.shape), o, p.offset);
    narrow_to(block, o, offset).copy_(src);
    filled += src.numel();
  }
  if (filled != numel_of(shape))
    util::fail(where, "the checkpoint's shards cover " + std::to_string(filled) + " of the " + std::to_string(numel_of(shape)) + " elements asked for",
               "a shard file is missing; the checkpoint is incomplete");
  out.copy_(block.reshape({-1}).narrow(0, begin, end - begin));
  return out;
}

}  // namespace medgpt::model
