#include "align/kto.hpp"

#include <boost/program_options.hpp>

#include "model/lora.hpp"
#include "util/error.hpp"

namespace medgpt::align {

void check_kto_options(const KtoOptions& o, const std::string& where) {
  if (o.loss_type != "kto" && o.loss_type != "apo_zero_unpaired")
    util::fail(where + ".loss_type", "unknown \"" + o.loss_type + "\"", "use kto or apo_zero_unpaired");
  if (!(o.beta > 0)) util::fail(where + ".beta", "must be positive", "e.g. 0.1");
  if (!(o.desirable_weight > 0) || !(o.undesirable_weight > 0))
    util::fail(where + ".desirable_weight / undesirable_weight", "must be positive", "e.g. 1.0");
}

void add_kto_options(po::options_description& d) {
  d.add_options()
      ("kto.loss_type", po::value<std::string>()->default_value("kto"), "kto: kto or apo_zero_unpaired")
      ("kto.beta", po::value<double>()->default_value(0.1, "0.1"), "kto: beta")
      ("kto.desirable_weight", po::value<double>()->default_value(1.0), "kto: weight of desirable examples' losses")
      ("kto.undesirable_weight", po::value<double>()->default_value(1.0), "kto: weight of undesirable examples' losses");
}

KtoOptions kto_options(const po::variables_map& vm) {
  KtoOptions o;
  o.loss_type = vm["kto.loss_type"].as<std::string>();
  o.beta = vm["kto.beta"].as<double>();
  o.desirable_weight = vm["kto.desirable_weight"].as<double>();
  o.undesirable_weight = vm["kto.undesirable_weight"].as<double>();
  check_kto_options(o, "--kto");
  return o;
}

at::Tensor kto_losses(const at::Tensor& cr, const at::Tensor& desirable, double kl, const KtoOptions& o) {
  const double b = o.beta;
  const at::Tensor good = o.loss_type == "kto" ? 1.0 - at::sigmoid(b * (cr - kl)) : 1.0 - at::sigmoid(b * cr);
  const at::Tensor bad = o.loss_type == "kto" ? 1.0 - at::sigmoid(b * (kl - cr)) : at::sigmoid(b * cr);
  return at::where(desirable, o.desirable_weight * good, o.undesirable_weight * bad);
}

data::Batch mismatched_batch(const data::Batch& b) {
  const std::size_t T = b.seq_len, R = b.rows;
  // Each row: prompt = positions before its first label, completion = labelled positions.
  std::vector<std::size_t> prompt_len(R, 0), end(R, 0);
  for (std::size_t r = 0; r < R; ++r) {
    const std::int64_t* lab = &b.labels[r * T];
    std::size_t first = T;
    for (std::size_t t = 0; t < T; ++t) {
      if (b.attention_mask[r * T + t]) end[r] = t + 1;
      if (lab[t] != -100 && first == T) first = t;
    }
    prompt_len[r] = std::min(first, end[r]);
  }
  data::Batch out = b;  // ids left where padding follows are masked out
  std::fill(out.labels.begin(), out.labels.end(), -100);
  std::fill(out.positions.begin(), out.positions.end(), 0);
  std::fill(out.segment_ids.begin(), out.segment_ids.end(), -1);
  std::fill(out.attention_mask.begin(), out.attention_mask.end(), 0);
  out.label_tokens = 0;
  for (std::size_t r = 0; r < R; ++r) {
    const std::size_t from = (r + R - 1) % R;  // the completion of the previous row
    std::size_t t = 0;
    auto put = [&](std::int64_t id, bool label) {
      const std::size_t at = r * T + t;
      out.ids[at] = id;
      out.labels[at] = label ? id : -100;
      out.label_tokens += label;
      out.positions[at] = static_cast<std::int64_t>(t);
      out.segment_ids[at] = 0;
      out.attention_mask[at] = 1;
      ++t;
    };
    for (std::size_t k = 0; k < prompt_len[r] && t < T; ++k) put(b.ids[r * T + k], false);
    for (std::size_t k = prompt_len[from]; k < end[from] && t < T; ++k) put(b.ids[from * T + k], true);
  }
  return out;
}

KtoObjective::KtoObjective(model::Transformer& policy, const model::Transformer* reference, KtoOptions o, parallel::Comm* dp)
    : policy_(policy), reference_(reference), o_(std::move(o)), dp_(dp) {
  model::set_lora_training(policy_, false);  // disable_dropout
}

at::Tensor KtoObjective::loss(const data::Batch& b, double normalizer, bool training) {
  if (b.desirable.size() != b.rows) util::fail("kto", "the batch carries no desirable labels", "train --stage kto on a kto corpus");
  const RowLogps pi = row_logps(policy_, b);
  const RowLogps ref = reference_row_logps(policy_, reference_, b);
  double kl = 0;
  if (o_.loss_type == "kto") {
    const data::Batch mis = mismatched_batch(b);
    at::Tensor sum;
    {
      at::NoGradGuard no_grad;
      sum = (row_logps(policy_, mis).sum - reference_row_logps(policy_, reference_, mis).sum).to(at::kDouble).mean().reshape({1});
    }
    at::Tensor t = at::cat({sum, at::ones({1}, at::kDouble)});
    if (training && dp_) dp_->allreduce(t, parallel::ReduceOp::kSum);
    kl = std::max(0.0, t[0].item<double>() / t[1].item<double>());
  }
  const at::Tensor desirable = at::tensor(at::ArrayRef<std::uint8_t>(b.desirable), at::kByte).to(at::kBool);
  const at::Tensor cr = pi.sum - ref.sum;
  {
    at::NoGradGuard no_grad;
    const at::Tensor r = o_.beta * cr.detach().to(at::kDouble), lp = pi.sum.detach().to(at::kDouble);
    const double n_good = desirable.sum().item<double>(), n_bad = static_cast<double>(b.rows) - n_good;
    auto mean_where = [](const at::Tensor& v, const at::Tensor& m, double n) { return n > 0 ? (v * m).sum().item<double>() / n : 0.0; };
    const at::Tensor bad = desirable.logical_not();
    const double rc = mean_where(r, desirable, n_good), rr = mean_where(r, bad, n_bad);
    // Weighted by the rows of each class: the logged value is sum over the window / count (TRL).
    record("kl", kl);
    record("rewards/chosen", rc, n_good);
    record("rewards/rejected", rr, n_bad);
    record("rewards/margins", rc - rr, n_good > 0 && n_bad > 0 ? 1.0 : 0.0);
    record("logps/chosen", mean_where(lp, desirable, n_good), n_good);
    record("logps/rejected", mean_where(lp, bad, n_bad), n_bad);
  }
  return kto_losses(cr, desirable, kl, o_).sum() / normalizer;
}

}  // namespace medgpt::align
