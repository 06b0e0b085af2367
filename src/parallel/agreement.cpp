#include "parallel/agreement.hpp"

#include <algorithm>
#include <cstring>

#include "util/error.hpp"

namespace medgpt::parallel {

std::int64_t allreduce_int(Comm& c, std::int64_t v, ReduceOp op) {
  at::Tensor t = at::full({1}, v, at::kLong);
  c.allreduce(t, op);
  return t.item<std::int64_t>();
}

std::int64_t allreduce_min(Comm& c, std::int64_t v) { return -allreduce_int(c, -v, ReduceOp::kMax); }

std::vector<std::int64_t> allgather_int(Comm& c, std::int64_t v) {
  at::Tensor g = c.allgather(at::full({1}, v, at::kLong));
  return {g.data_ptr<std::int64_t>(), g.data_ptr<std::int64_t>() + g.numel()};
}

void agree_on_error(Comm& c, std::int64_t key, const std::string& msg) {
  const std::int64_t first = allreduce_min(c, key);
  if (first == kNoError) return;
  const std::int64_t owner = allreduce_int(c, key == first ? c.rank() : -1, ReduceOp::kMax);
  const std::int64_t len = allreduce_int(c, c.rank() == owner ? static_cast<std::int64_t>(msg.size()) : 0, ReduceOp::kMax);
  at::Tensor buf = at::zeros({len}, at::kByte);
  if (c.rank() == owner) std::memcpy(buf.data_ptr(), msg.data(), msg.size());
  c.broadcast(buf, static_cast<int>(owner));
  throw util::CollectiveError("", std::string(static_cast<const char*>(buf.data_ptr()), static_cast<std::size_t>(len)));
}

std::vector<std::string> allgather_strings(Comm& c, const std::string& s) {
  const std::vector<std::int64_t> lengths = allgather_int(c, static_cast<std::int64_t>(s.size()));
  std::int64_t longest = 0;
  for (const std::int64_t n : lengths) longest = std::max(longest, n);
  // Fixed-size slots of the longest length: one allgather, no displacements to agree on.
  at::Tensor mine = at::zeros({std::max<std::int64_t>(1, longest)}, at::kByte);
  if (!s.empty()) std::memcpy(mine.data_ptr(), s.data(), s.size());
  const at::Tensor all = c.allgather(mine);
  std::vector<std::string> out;
  for (std::size_t r = 0; r < lengths.size(); ++r)
    out.emplace_back(static_cast<const char*>(all.data_ptr()) + static_cast<std::int64_t>(r) * mine.numel(),
                     static_cast<std::size_t>(lengths[r]));
  return out;
}

std::string broadcast_string(Comm& c, const std::string& s, int root) {
  const std::int64_t len = allreduce_int(c, c.rank() == root ? static_cast<std::int64_t>(s.size()) : 0, ReduceOp::kMax);
  at::Tensor buf = at::zeros({std::max<std::int64_t>(1, len)}, at::kByte);
  if (c.rank() == root && len > 0) std::memcpy(buf.data_ptr(), s.data(), s.size());
  c.broadcast(buf, root);
  return {static_cast<const char*>(buf.data_ptr()), static_cast<std::size_t>(len)};
}

}  // namespace medgpt::parallel
