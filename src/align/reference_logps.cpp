#include "align/reference_logps.hpp"

#include <filesystem>
#include <utility>
#include <vector>

#include "align/lm.hpp"
#include "align/sequence_logps.hpp"
#include "data/loader.hpp"
#include "model/lora.hpp"
#include "parallel/agreement.hpp"
#include "util/h5.hpp"
#include "util/json.hpp"
#include "util/log.hpp"

namespace medgpt::align {

namespace {

using Splits = std::vector<std::pair<std::string, data::TokenArrays*>>;  // ("" or "valid", rows)

std::string dataset(const std::string& split) { return split.empty() ? "ref_logps" : split + "/ref_logps"; }

// Rank 0 reads the cache and broadcasts the values, so every rank takes the same path (read or
// compute, with its allreduce) whatever its view of the filesystem.
bool read_cache(const std::string& cache, const Splits& splits, parallel::Comm& world) {
  const bool usable = parallel::root_decides(world, [&] {
    if (!util::file_exists(cache)) return false;
    const util::H5File f = util::H5File::open(cache);
    for (const auto& [split, rows] : splits)
      if (!f.has(dataset(split)) || f.dims(dataset(split)) != std::vector<std::uint64_t>{rows->size()}) return false;
    for (const auto& [split, rows] : splits) {
      rows->ref_logps.resize(rows->size());
      f.read(dataset(split), H5T_NATIVE_DOUBLE, rows->ref_logps.data());
    }
    return true;
  });
  if (!usable) return false;
  for (const auto& [split, rows] : splits) {  // into the vectors rank 0 filled, in place
    rows->ref_logps.resize(rows->size());
    world.broadcast(at::from_blob(rows->ref_logps.data(), {static_cast<std::int64_t>(rows->size())}, at::kDouble), 0);
  }
  return true;
}

void write_cache(const std::string& cache, const Splits& splits) {
  std::filesystem::create_directories(std::filesystem::path(cache).parent_path());
  const std::string tmp = cache + ".partial";
  {
    util::H5File f = util::H5File::create(tmp);
    for (const auto& [split, rows] : splits) f.write(dataset(split), H5T_NATIVE_DOUBLE, {rows->ref_logps.size()}, rows->ref_logps.data());
    f.close();
  }
  std::filesystem::rename(tmp, cache);
}

// The reference's row log-probs of one batch: the policy with its adapters disabled (the starting
// model for full fine-tuning: nothing trained yet). Under pipeline parallelism the batch goes
// through the stages one after the other and the last one holds the values (zeros elsewhere).
at::Tensor batch_logps(model::Transformer& policy, const data::Batch& b, parallel::Comm& pp) {
  if (pp.size() == 1) return reference_row_logps(policy, nullptr, b).sum.to(at::kDouble);
  at::NoGradGuard no_grad;
  const model::AdaptersDisabled base_only(policy);
  const data::Batch t = trim_padding(b);
  const model::ForwardInputs in = logps_inputs(t);
  at::Tensor input = batch_tensor(t.ids, t);
  if (pp.rank() > 0) {
    input = at::empty({static_cast<std::int64_t>(t.rows), static_cast<std::int64_t>(t.seq_len), policy.config().hidden_size},
                      at::TensorOptions().dtype(policy.dtype()));
    pp.recv(input, pp.rank() - 1);
  }
  const at::Tensor h = policy.stage_forward(input, in);
  if (pp.rank() + 1 < pp.size()) {
    pp.send(h.contiguous(), pp.rank() + 1);
    return at::zeros({static_cast<std::int64_t>(t.rows)}, at::kDouble);
  }
  return row_logps_from_hidden(policy, h, t).sum.to(at::kDouble);
}

// Chunks of batch_rows rows, chunk c on dp rank c % dp; the sum over dp ranks and pipeline stages
// assembles them.
void compute(data::TokenArrays& rows, model::Transformer& policy, std::size_t seq_len, std::int32_t pad_id, std::size_t batch_rows,
             parallel::Grid& grid) {
  parallel::Comm& dp = grid.dp();
  const std::size_t n = rows.size(), chunk = std::max<std::size_t>(1, batch_rows);
  at::Tensor values = at::zeros({static_cast<std::int64_t>(n)}, at::kDouble);
  for (std::size_t c = 0, k = 0; c < n; c += chunk, ++k) {
    if (static_cast<int>(k % static_cast<std::size_t>(dp.size())) != dp.rank()) continue;
    std::vector<std::int64_t> samples;
    for (std::size_t s = c; s < std::min(n, c + chunk); ++s) samples.push_back(static_cast<std::int64_t>(s));
    const at::Tensor lp = batch_logps(policy, data::batch_of(rows, data::Kind::Sft, samples, seq_len, pad_id), grid.pp());
    values.narrow(0, static_cast<std::int64_t>(c), lp.size(0)).copy_(lp);
  }
  dp.allreduce(values, parallel::ReduceOp::kSum);
  if (grid.pp_size() > 1) grid.pp().allreduce(values, parallel::ReduceOp::kSum);
  rows.ref_logps.assign(values.data_ptr<double>(), values.data_ptr<double>() + n);
}

}  // namespace

void attach_reference_logps(const std::string& cache, data::TokenArrays& train, data::TokenArrays* valid, model::Transformer& policy,
                            std::size_t seq_len, std::int32_t pad_id, std::size_t batch_rows, parallel::Grid& grid) {
  Splits splits{{"", &train}};
  if (valid && valid->size() > 0) splits.emplace_back("valid", valid);
  std::size_t total = 0;
  for (const auto& [split, rows] : splits) total += rows->size();
  if (read_cache(cache, splits, grid.world())) {
    util::log("dpo: reference log-probs of " + std::to_string(total) + " rows from " + cache);
    return;
  }
  for (const auto& [split, rows] : splits) compute(*rows, policy, seq_len, pad_id, batch_rows, grid);
  parallel::on_root(grid.world(), [&] { write_cache(cache, splits); });  // one writer
  util::log("dpo: reference log-probs of " + std::to_string(total) + " rows computed, cached in " + cache);
}

}  // namespace medgpt::align
