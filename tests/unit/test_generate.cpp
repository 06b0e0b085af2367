// Generation against transformers (tests/fixtures/hf-tiny): greedy continuation with the KV cache
// equals generate() token for token, cached logits equal full recomputation, a batch of prompts of
// different lengths (left-padded) gives each the ids it gets alone, and the sampler's processors.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "infer/generator.hpp"
#include "infer/sampler.hpp"
#include "model/kv_cache.hpp"
#include "model/transformer.hpp"
#include "util/json.hpp"

using namespace medgpt;

namespace {

struct Ref {
  model::Transformer m;
  std::vector<std::int64_t> prompt, greedy;
};

Ref load(const std::string& name, at::ScalarType dtype = at::kFloat) {
  const std::string dir = std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/" + name;
  const nlohmann::json ref = util::read_json_file(dir + "/ref.json");
  return {model::Transformer::from_pretrained(dir + "/model", dtype), ref.at("input_ids").get<std::vector<std::int64_t>>(),
          ref.at("greedy_next8_generate").get<std::vector<std::int64_t>>()};
}

class Generate : public ::testing::TestWithParam<std::string> {};

TEST_P(Generate, GreedyWithKvCacheEqualsTransformers) {
  Ref r = load(GetParam());
  infer::GenerationOptions o;
  o.max_new_tokens = 8;
  EXPECT_EQ(infer::generate(r.m, {r.prompt}, o)[0], r.greedy);
  // top_k = 1 sampling is greedy whatever the seed.
  o.sampling.do_sample = true;
  o.sampling.top_k = 1;
  o.sampling.temperature = 0.7;
  o.seed = 1234;
  EXPECT_EQ(infer::generate(r.m, {r.prompt}, o)[0], r.greedy);
}

// Equal in exact arithmetic; the two paths only sum in other orders. In float64 each logit's error
// is at most a few hundred roundings (reductions of <= 10^3 terms, 2 layers) of 1.1e-16 relative to
// the magnitudes involved, < 1e-12 of max |logit|: 1e-10 holds on any BLAS kernel and thread count,
// and a wrong cache entry (an error of order 1e-1) or a float32 step in the path (1e-7) fails it.
TEST_P(Generate, CachedLogitsEqualFullRecomputation) {
  Ref r = load(GetParam(), at::kDouble);
  at::NoGradGuard no_grad;
  std::vector<std::int64_t> seq = r.prompt;
  seq.insert(seq.end(), r.greedy.begin(), r.greedy.end());
  const auto n = static_cast<std::int64_t>(seq.size()), p = static_cast<std::int64_t>(r.prompt.size());
  const at::Tensor ids = at::tensor(at::ArrayRef<std::int64_t>(seq), at::kLong).view({1, n});
  const at::Tensor full = r.m.logits(ids);
  ASSERT_EQ(full.scalar_type(), at::kDouble);
  model::KvCache cache;
  model::ForwardInputs in;
  in.cache = &cache;
  double worst = 0;
  at::Tensor step = r.m.last_logits(ids.narrow(1, 0, p), in);
  for (std::int64_t t = p; t < n; ++t) {
    worst = std::max(worst, (step[0] - full[0][t - 1]).abs().max().item<double>());
    step = r.m.last_logits(ids.narrow(1, t, 1), in);
  }
  EXPECT_EQ(cache.length, n);
  EXPECT_LE(worst, 1e-10 * std::max(1.0, full.abs().max().item<double>()));
}

TEST_P(Generate, BatchOfDifferentLengthsEqualsEachAlone) {
  Ref r = load(GetParam());
  infer::GenerationOptions o;
  o.max_new_tokens = 6;
  const std::vector<std::vector<std::int64_t>> prompts = {r.prompt, {5, 17, 99}, std::vector<std::int64_t>(r.prompt.begin(), r.prompt.begin() + 11)};
  const auto together = infer::generate(r.m, prompts, o);
  for (std::size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(together[i], infer::generate(r.m, {prompts[i]}, o)[0]) << "prompt " << i;
  EXPECT_EQ(together[0], std::vector<std::int64_t>(r.greedy.begin(), r.greedy.begin() + 6));
  // A row that reaches an EOS id stops there (its EOS kept); the others go on.
  o.eos_ids = {together[1][2]};
  const auto stop = std::find(together[1].begin(), together[1].end(), o.eos_ids[0]);
  const auto stopped = infer::generate(r.m, prompts, o);
  EXPECT_EQ(stopped[1], std::vector<std::int64_t>(together[1].begin(), stop + 1));
  EXPECT_EQ(stopped[0].size(), std::find(together[0].begin(), together[0].end(), o.eos_ids[0]) == together[0].end() ? 6u : stopped[0].size());
}

INSTANTIATE_TEST_SUITE_P(HfTiny, Generate, ::testing::Values("tiny_qwen2", "tiny_qwen3", "tiny_llama"));

}  // namespace

TEST(Sampler, ProcessorsAsTransformersDefinesThem) {
  // Repetition penalty: positive logits divided, negative multiplied, only seen ids.
  at::Tensor l = at::tensor({2.0f, -2.0f, 1.0f, 0.5f}).view({1, 4});
  infer::apply_repetition_penalty(l, {{0, 1, 1}}, 2.0);
  EXPECT_TRUE(l.equal(at::tensor({1.0f, -4.0f, 1.0f, 0.5f}).view({1, 4})));
  // Top-k keeps ties at the threshold; top-p keeps the smallest set with mass >= p.
  infer::SamplingOptions o;
  o.top_k = 2;
  const at::Tensor k = infer::warp(at::tensor({3.0f, 1.0f, 3.0f, 1.0f, 0.0f}).view({1, 5}), o);
  EXPECT_EQ(at::isinf(k).sum().item<int>(), 3);
  o.top_k = 2;
  const at::Tensor ties = infer::warp(at::tensor({3.0f, 2.0f, 2.0f, 1.0f}).view({1, 4}), o);
  EXPECT_EQ(at::isinf(ties).sum().item<int>(), 1);  // 3, 2, 2 survive
  o.top_k = 0;
  o.top_p = 0.7;  // probs 0.5, 0.3, 0.2 (log): keep 0.5 + 0.3
  const at::Tensor p = infer::warp(at::log(at::tensor({0.5f, 0.3f, 0.2f})).view({1, 3}), o);
  EXPECT_FALSE(std::isinf(p[0][0].item<float>()));
  EXPECT_FALSE(std::isinf(p[0][1].item<float>()));
  EXPECT_TRUE(std::isinf(p[0][2].item<float>()));
  o.top_p = 1.0;
  o.min_p = 0.5;  // keep p >= 0.25
  const at::Tensor mp = infer::warp(at::log(at::tensor({0.5f, 0.3f, 0.2f})).view({1, 3}), o);
  EXPECT_TRUE(std::isinf(mp[0][2].item<float>()));
  EXPECT_FALSE(std::isinf(mp[0][1].item<float>()));
}

TEST(Sampler, DrawsFollowTheProcessedSoftmax) {
  // Temperature 0.5 and top-p 0.9 over 4 tokens: the empirical frequencies of 20,000 seeded draws
  // against the processed distribution, chi-square with 2 degrees of freedom (< 13.8: p = 0.001).
  const at::Tensor logits = at::log(at::tensor({0.4f, 0.3f, 0.2f, 0.1f})).view({1, 4});
  infer::SamplingOptions o;
  o.do_sample = true;
  o.temperature = 0.5;
  o.top_p = 0.9;
  const at::Tensor want = at::softmax(infer::warp(logits.clone(), o), -1)[0];
  EXPECT_EQ(want[3].item<float>(), 0.0f);  // 0.4^2 : 0.3^2 : 0.2^2 : 0.1^2, the last beyond 0.9
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
  std::vector<int> counts(4, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[static_cast<std::size_t>(infer::next_tokens(logits, {{}}, o, gen).item<std::int64_t>())];
  EXPECT_EQ(counts[3], 0);
  double chi2 = 0;
  for (int t = 0; t < 3; ++t) {
    const double e = n * want[t].item<double>();
    chi2 += (counts[static_cast<std::size_t>(t)] - e) * (counts[static_cast<std::size_t>(t)] - e) / e;
  }
  EXPECT_LT(chi2, 13.8);
}
