#include "align/reference_logps.hpp"

#include <filesystem>

#include "align/sequence_logps.hpp"
#include "data/loader.hpp"
#include "util/error.hpp"
#include "util/h5.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::align {

namespace {

std::string dataset(const std::string& split) { return split.empty() ? "ref_logps" : split + "/ref_logps"; }

bool read_cache(const std::string& cache, const std::string& split, data::TokenArrays& rows) {
  if (!util::file_exists(cache)) return false;
  const util::H5File f = util::H5File::open(cache);
  if (!f.has(dataset(split)) || f.dims(dataset(split)) != std::vector<std::uint64_t>{rows.size()}) return false;
  rows.ref_logps.resize(rows.size());
  f.read(dataset(split), H5T_NATIVE_DOUBLE, rows.ref_logps.data());
  return true;
}

// Adds `split`'s dataset to the cache file, rewriting it through a temporary name.
void write_cache(const std::string& cache, const std::string& split, const std::vector<double>& values) {
  std::vector<std::pair<std::string, std::vector<double>>> keep;
  if (util::file_exists(cache)) {
    const util::H5File old = util::H5File::open(cache);
    for (const std::string& s : {std::string(), std::string("valid")})
      if (s != split && old.has(dataset(s))) {
        std::vector<double> v(old.dims(dataset(s))[0]);
        old.read(dataset(s), H5T_NATIVE_DOUBLE, v.data());
        keep.emplace_back(s, std::move(v));
      }
  }
  keep.emplace_back(split, values);
  std::filesystem::create_directories(std::filesystem::path(cache).parent_path());
  const std::string tmp = cache + ".partial";
  {
    util::H5File f = util::H5File::create(tmp);
    for (const auto& [s, v] : keep) f.write(dataset(s), H5T_NATIVE_DOUBLE, {v.size()}, v.data());
  }
  std::filesystem::rename(tmp, cache);
}

}  // namespace

void attach_reference_logps(const std::string& cache, const std::string& split, data::TokenArrays& rows, model::Transformer& policy,
                            const model::Transformer* reference, std::size_t seq_len, std::int32_t pad_id, std::size_t batch_rows,
                            dist::Comm& dp) {
  if (rows.size() == 0) return;
  if (read_cache(cache, split, rows)) {
    util::log("dpo: reference log-probs of " + std::to_string(rows.size()) + " " + (split.empty() ? "train" : split) + " rows from " + cache);
    return;
  }
  // Chunks of batch_rows rows, chunk c on dp rank c % dp; the sum over ranks assembles them.
  const std::size_t n = rows.size(), chunk = std::max<std::size_t>(1, batch_rows);
  at::Tensor values = at::zeros({static_cast<std::int64_t>(n)}, at::kDouble);
  for (std::size_t c = 0, k = 0; c < n; c += chunk, ++k) {
    if (static_cast<int>(k % static_cast<std::size_t>(dp.size())) != dp.rank()) continue;
    std::vector<std::int64_t> samples;
    for (std::size_t s = c; s < std::min(n, c + chunk); ++s) samples.push_back(static_cast<std::int64_t>(s));
    const data::Batch b = data::batch_of(rows, data::Kind::Sft, samples, seq_len, pad_id);
    const at::Tensor lp = reference_row_logps(policy, reference, b).sum.to(at::kDouble);
    values.narrow(0, static_cast<std::int64_t>(c), lp.size(0)).copy_(lp);
  }
  dp.allreduce(values, dist::ReduceOp::kSum);
  rows.ref_logps.assign(values.data_ptr<double>(), values.data_ptr<double>() + n);
  if (dp.rank() == 0) write_cache(cache, split, rows.ref_logps);
  dp.barrier();
  util::log("dpo: reference log-probs of " + std::to_string(n) + " " + (split.empty() ? "train" : split) + " rows computed, cached in " + cache);
}

}  // namespace medgpt::align
