// LoRA / rsLoRA on the tiny fixtures: PEFT's initialisation and scaling, a fresh adapter leaves the
// model unchanged, merging equals the unmerged adapter, PEFT's file format both ways (key names,
// adapter_config.json as PEFT writes it, a PEFT-written folder with patterns and bf16 weights),
// gradients reach the adapters only, and `medgpt merge` end to end through `medgpt forward`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "model/lm_loss.hpp"
#include "model/lora.hpp"
#include "model/nf4.hpp"
#include "model/safetensors.hpp"
#include "model/transformer.hpp"
#include "util/error.hpp"
#include "util/json.hpp"

using namespace medgpt;
namespace fs = std::filesystem;

namespace {

const char* const kModels[] = {"tiny_qwen2", "tiny_qwen3", "tiny_llama"};

std::string model_dir(const std::string& name) { return std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/" + name + "/model"; }

at::Tensor input_ids(const std::string& name) {
  for (auto& [n, t] : model::read_safetensors(std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/" + name + "/ref.safetensors"))
    if (n == "input_ids") return t;
  return {};
}

std::string temp_dir(const std::string& tag) {
  const fs::path p = fs::temp_directory_path() / ("medgpt_lora_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

at::Tensor logits(const model::Transformer& m, const at::Tensor& ids) {
  at::NoGradGuard no_grad;
  return m.logits(ids);
}

model::LoraConfig config(std::int64_t r = 4, double alpha = 8, const std::string& targets = "all") {
  model::LoraConfig c;
  c.r = r;
  c.alpha = alpha;
  c.dropout = 0.0;
  c.target_modules = model::parse_lora_targets(targets);
  return c;
}

// Trained-looking adapters: B random (a fresh B is zero).
void randomize_b(model::Transformer& m, std::uint64_t seed, double std = 0.05) {
  at::NoGradGuard no_grad;
  at::manual_seed(seed);
  for (auto& [n, t] : model::lora_parameters(m))
    if (n.find("lora_B") != std::string::npos) t.normal_(0, std);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// The fixtures' shapes with transformers' default init (normal(0, 0.02)) instead of the fixtures'
// 0.2. The fixtures are chaotic: their logits move by ~150x a relative weight change, so fp32
// round-off alone (one ulp in a merged weight) moves them by up to ~1e-5. At the default init the
// fp32 noise floor is ~3e-7 and "merged == unmerged within 1e-5" is a real test of the math.
model::ModelConfig conditioned_config(const std::string& name, bool tied = false) {
  model::ModelConfig c = model::ModelConfig::load(model_dir(name));
  c.initializer_range = 0.02;
  c.tie_word_embeddings = tied;
  c.raw["initializer_range"] = 0.02;
  c.raw["tie_word_embeddings"] = tied;
  return c;
}

model::Transformer conditioned(const std::string& name, bool tied = false) {
  model::Transformer m(conditioned_config(name, tied), at::kFloat);
  m.init_random(5);
  return m;
}

// The same as a Hugging Face folder (config.json, generation_config.json, model.safetensors).
std::string conditioned_folder(const std::string& name, bool tied) {
  const std::string dir = temp_dir("base_" + name);
  const model::Transformer m = conditioned(name, tied);
  std::ofstream(dir + "/config.json") << m.config().raw.dump(2);
  fs::copy_file(model_dir(name) + "/generation_config.json", dir + "/generation_config.json");
  model::write_safetensors_dir(dir, m.named_parameters());
  return dir;
}

std::string ids_arg(const at::Tensor& ids) {
  std::string s;
  for (std::int64_t i = 0; i < ids.numel(); ++i) s += (i ? "," : "") + std::to_string(ids.view({-1})[i].item<std::int64_t>());
  return s;
}

std::pair<int, std::string> run(const std::string& args) {
  const std::string err = (fs::temp_directory_path() / ("medgpt_lora_err_" + std::to_string(::getpid()))).string();
  const int rc = std::system((std::string(MEDGPT_BINARY) + " " + args + " > /dev/null 2> " + err).c_str());
  std::ifstream in(err);
  return {WEXITSTATUS(rc), std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const util::Error& e) {
    return util::error_line(e);
  }
  return "(no error)";
}

}  // namespace

TEST(Lora, TargetsParse) {
  EXPECT_EQ(model::parse_lora_targets("all").size(), 7u);
  EXPECT_EQ(model::parse_lora_targets("v_proj, q_proj"), (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(model::parse_lora_targets("down_proj,gate_proj,up_proj"), (std::vector<std::string>{"gate_proj", "up_proj", "down_proj"}));
  const std::string err = error_of([] { model::parse_lora_targets("q_proj,lm_head"); });
  EXPECT_NE(err.find("--lora.target: \"lm_head\" is not a linear layer LoRA can adapt"), std::string::npos) << err;
}

TEST(Lora, InitialisationIsPefts) {
  model::Transformer m = model::Transformer::from_pretrained(model_dir("tiny_qwen3"), at::kFloat);
  model::apply_lora(m, config(8, 16, "q_proj,v_proj,down_proj"), 7);
  const auto params = model::lora_parameters(m);
  ASSERT_EQ(params.size(), 2u * 3 * 2);  // 2 layers x 3 modules x (A, B)
  for (const auto& blk : m.blocks()) {
    EXPECT_FALSE(blk.k.lora);
    EXPECT_FALSE(blk.gate.lora);
    for (const model::Linear* l : {&blk.q, &blk.v, &blk.down}) {
      ASSERT_TRUE(l->lora);
      const auto& a = *l->lora;
      const std::int64_t in = l->weight.size(1), out = l->weight.size(0);
      EXPECT_EQ(a.A.sizes(), (std::vector<std::int64_t>{8, in}));
      EXPECT_EQ(a.B.sizes(), (std::vector<std::int64_t>{out, 8}));
      EXPECT_EQ(a.A.scalar_type(), at::kFloat);
      EXPECT_TRUE(a.B.eq(0).all().item<bool>());
      // kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in)): std bound/sqrt(3).
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      EXPECT_LE(a.A.abs().max().item<double>(), bound);
      EXPECT_NEAR(a.A.std().item<double>(), bound / std::sqrt(3.0), 0.12 * bound / std::sqrt(3.0));
      EXPECT_EQ(a.scale, 2.0);  // alpha / r
      EXPECT_TRUE(a.A.requires_grad() && a.B.requires_grad());
    }
  }
  for (const auto& [n, p] : m.named_parameters()) EXPECT_FALSE(p.requires_grad()) << n;  // base frozen
  // Seeded: the same seed gives the same A.
  model::Transformer m2 = model::Transformer::from_pretrained(model_dir("tiny_qwen3"), at::kFloat);
  model::apply_lora(m2, config(8, 16, "q_proj,v_proj,down_proj"), 7);
  EXPECT_TRUE(at::equal(model::lora_parameters(m2)[0].second, params[0].second));
}

TEST(Lora, ZeroBLeavesTheModelExactlyAsItWas) {
  for (const std::string name : kModels) {
    SCOPED_TRACE(name);
    model::Transformer m = model::Transformer::from_pretrained(model_dir(name), at::kFloat);
    const at::Tensor ids = input_ids(name);
    const at::Tensor base = logits(m, ids);
    model::apply_lora(m, config(), 1);
    EXPECT_TRUE(at::equal(logits(m, ids), base));
    // A disabled adapter is the base model too (DPO's reference pass).
    randomize_b(m, 2);
    EXPECT_FALSE(at::equal(logits(m, ids), base));
    model::set_lora_enabled(m, false);
    EXPECT_TRUE(at::equal(logits(m, ids), base));
  }
  // A bf16 base with fp32 adapters (PEFT keeps adapters fp32): the branch runs in fp32, the sum is
  // cast back to bf16, and a zero B is still exact.
  model::Transformer m = model::Transformer::from_pretrained(model_dir("tiny_qwen2"), at::kBFloat16);
  const at::Tensor ids = input_ids("tiny_qwen2");
  const at::Tensor base = logits(m, ids);
  model::apply_lora(m, config(), 1);
  EXPECT_EQ(m.blocks()[0].q.lora->A.scalar_type(), at::kFloat);
  const at::Tensor got = logits(m, ids);
  EXPECT_EQ(got.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(got, base));
}

TEST(Lora, MergedLogitsEqualUnmerged) {
  for (const bool fixture : {false, true})
    for (const std::string name : kModels) {
      SCOPED_TRACE(name + (fixture ? " fixture" : " init 0.02"));
      model::Transformer m = fixture ? model::Transformer::from_pretrained(model_dir(name), at::kFloat) : conditioned(name);
      const at::Tensor ids = input_ids(name);
      const at::Tensor base = logits(m, ids);
      model::apply_lora(m, config(8, 16), 3);
      randomize_b(m, 4);
      const at::Tensor unmerged = logits(m, ids);
      model::merge_lora(m);
      EXPECT_TRUE(model::lora_parameters(m).empty());
      const at::Tensor merged = logits(m, ids);
      const double d = max_diff(merged, unmerged), scale = unmerged.abs().max().item<double>();
      std::printf("[   lora   ] %s (%s): merged vs unmerged logits max|d| %.2g (|logits| max %.2f; the adapter moved them by %.3f)\n",
                  name.c_str(), fixture ? "fixture, init 0.2" : "init 0.02", d, scale, max_diff(unmerged, base));
      EXPECT_GT(max_diff(unmerged, base), 0.1);
      // The fixtures sit at their fp32 noise floor (~1e-5, see conditioned_config): bound them
      // relative to the logits' scale; the well-conditioned models absolutely.
      EXPECT_LE(d, fixture ? 1e-5 * scale : 1e-5);
    }
}

TEST(Lora, RsloraScalesByAlphaOverSqrtR) {
  model::LoraConfig c = config(16, 8);
  EXPECT_EQ(c.scale(), 0.5);
  c.rslora = true;
  EXPECT_EQ(c.scale(), 2.0);
  EXPECT_EQ(model::adapter_config_json(c).at("use_rslora"), true);
  // Behaviour: rsLoRA(alpha 8, r 16) == LoRA(alpha 32, r 16), both scale 2.
  const at::Tensor ids = input_ids("tiny_llama");
  model::Transformer a = model::Transformer::from_pretrained(model_dir("tiny_llama"), at::kFloat);
  model::Transformer b = model::Transformer::from_pretrained(model_dir("tiny_llama"), at::kFloat);
  model::apply_lora(a, c, 5);
  model::apply_lora(b, config(16, 32), 5);
  randomize_b(a, 6);
  randomize_b(b, 6);
  EXPECT_EQ(a.blocks()[0].q.lora->scale, 2.0);
  EXPECT_TRUE(at::equal(logits(a, ids), logits(b, ids)));
  // And the saved rsLoRA adapter reloads with its scale.
  const std::string dir = temp_dir("rslora");
  model::save_lora(a, c, dir);
  model::Transformer r = model::Transformer::from_pretrained(model_dir("tiny_llama"), at::kFloat);
  const model::LoraConfig back = model::load_lora(r, dir);
  EXPECT_TRUE(back.rslora);
  EXPECT_EQ(r.blocks()[1].down.lora->scale, 2.0);
  EXPECT_TRUE(at::equal(logits(r, ids), logits(a, ids)));
  fs::remove_all(dir);
}

TEST(Lora, DropoutOnTheBranchInTrainingOnly) {
  model::Transformer m = model::Transformer::from_pretrained(model_dir("tiny_qwen2"), at::kFloat);
  model::LoraConfig c = config();
  c.dropout = 0.5;
  model::apply_lora(m, c, 1);
  randomize_b(m, 2);
  const at::Tensor ids = input_ids("tiny_qwen2");
  const at::Tensor eval = logits(m, ids);
  EXPECT_TRUE(at::equal(logits(m, ids), eval));
  model::set_lora_training(m, true);
  const at::Tensor train = logits(m, ids);
  EXPECT_GT(max_diff(train, eval), 1e-4);
  model::set_lora_training(m, false);
  EXPECT_TRUE(at::equal(logits(m, ids), eval));
}

TEST(Lora, GradientsReachTheAdaptersOnly) {
  for (const bool zero_b : {true, false}) {
    model::Transformer m = model::Transformer::from_pretrained(model_dir("tiny_qwen3"), at::kFloat);
    model::apply_lora(m, config(), 8);
    if (!zero_b) randomize_b(m, 9);
    const at::Tensor ids = input_ids("tiny_qwen3");
    const at::Tensor labels = model::shift_labels(ids).view({-1});
    at::Tensor h = m.hidden(ids);
    at::Tensor loss = model::lm_loss(h.view({-1, h.size(-1)}), m.lm_head(), labels,
                                     static_cast<double>(labels.ne(model::kIgnoreIndex).sum().item<std::int64_t>()));
    loss.backward();
    for (const auto& [n, p] : m.named_parameters()) EXPECT_FALSE(p.grad().defined()) << n;
    for (const auto& [n, p] : model::lora_parameters(m)) {
      ASSERT_TRUE(p.grad().defined()) << n;
      const double g = p.grad().abs().max().item<double>();
      // PEFT's fresh adapter: dL/dA = scale * B^T (...) = 0 while B = 0; B gets the gradient.
      if (zero_b && n.find("lora_A") != std::string::npos) EXPECT_EQ(g, 0.0) << n;
      else EXPECT_GT(g, 0.0) << n;
    }
  }
}

TEST(Lora, GradientCheckpointingKeepsTheAdapterGradients) {
  // The recomputed block must differentiate the adapters (the frozen base gives it nothing else),
  // with full-precision and with NF4 base weights.
  for (const bool nf4 : {false, true}) {
    SCOPED_TRACE(nf4 ? "NF4 base" : "fp32 base");
    model::Transformer plain = conditioned("tiny_qwen2"), ckpt = conditioned("tiny_qwen2");
    for (model::Transformer* m : {&plain, &ckpt}) {
      if (nf4) model::quantize_nf4(*m);
      model::apply_lora(*m, config(), 3);
      randomize_b(*m, 4);
    }
    ckpt.set_gradient_checkpointing(true);
    const at::Tensor ids = input_ids("tiny_qwen2");
    for (model::Transformer* m : {&plain, &ckpt}) m->loss(ids, ids).backward();
    const auto p = model::lora_parameters(plain), c = model::lora_parameters(ckpt);
    ASSERT_EQ(p.size(), c.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      ASSERT_TRUE(c[i].second.grad().defined()) << c[i].first;
      EXPECT_LE((c[i].second.grad() - p[i].second.grad()).norm().item<double>(), 1e-6 * p[i].second.grad().norm().item<double>())
          << c[i].first;
    }
    for (const auto& [n, t] : ckpt.named_parameters()) EXPECT_FALSE(t.grad().defined()) << n;
  }
}

TEST(Lora, PeftKeyNamesAndAdapterConfig) {
  model::Transformer m = model::Transformer::from_pretrained(model_dir("tiny_qwen2"), at::kFloat);
  model::LoraConfig c = config(4, 8);
  c.dropout = 0.05;
  c.base_model_name_or_path = "Qwen/Qwen2.5-0.5B";
  model::apply_lora(m, c, 1);
  const std::string dir = temp_dir("keys");
  model::save_lora(m, c, dir);
  EXPECT_TRUE(fs::exists(dir + "/adapter_model.safetensors"));

  std::map<std::string, std::string> meta;
  const auto saved = model::read_safetensors(dir + "/adapter_model.safetensors", &meta);
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"format", "pt"}}));
  std::map<std::string, std::vector<std::int64_t>> want;
  const std::map<std::string, std::pair<std::string, std::int64_t>> modules = {
      {"q_proj", {"self_attn", 64}}, {"k_proj", {"self_attn", 32}}, {"v_proj", {"self_attn", 32}}, {"o_proj", {"self_attn", 64}},
      {"gate_proj", {"mlp", 176}},   {"up_proj", {"mlp", 176}},     {"down_proj", {"mlp", 64}}};
  for (int l = 0; l < 2; ++l)
    for (const auto& [mod, where] : modules) {
      const std::string p = "base_model.model.model.layers." + std::to_string(l) + "." + where.first + "." + mod;
      const std::int64_t in = mod == "down_proj" ? 176 : 64;
      want[p + ".lora_A.weight"] = {4, in};
      want[p + ".lora_B.weight"] = {where.second, 4};
    }
  std::map<std::string, std::vector<std::int64_t>> got;
  for (const auto& [n, t] : saved) {
    got[n] = t.sizes().vec();
    EXPECT_EQ(t.scalar_type(), at::kFloat) << n;
  }
  EXPECT_EQ(got, want);

  // adapter_config.json byte for byte as PEFT's save_pretrained writes it (json.dumps(indent=2, sort_keys=True)).
  const std::string want_config = R"({
  "alpha_pattern": {},
  "base_model_name_or_path": "Qwen/Qwen2.5-0.5B",
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layers_pattern": null,
  "layers_to_transform": null,
  "lora_alpha": 8,
  "lora_dropout": 0.05,
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": 4,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj"
  ],
  "task_type": "CAUSAL_LM",
  "use_dora": false,
  "use_rslora": false
})";
  std::ifstream in(dir + "/adapter_config.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, want_config);
  const model::LoraConfig back = model::read_adapter_config(dir);
  EXPECT_EQ(back.r, 4);
  EXPECT_EQ(back.alpha, 8.0);
  EXPECT_EQ(back.dropout, 0.05);
  EXPECT_FALSE(back.rslora);
  EXPECT_EQ(back.target_modules, c.target_modules);
  EXPECT_EQ(back.base_model_name_or_path, "Qwen/Qwen2.5-0.5B");
  fs::remove_all(dir);
}

TEST(Lora, SavedAndReloadedAdapterGivesTheSameLogits) {
  for (const std::string name : kModels) {
    SCOPED_TRACE(name);
    model::Transformer m = model::Transformer::from_pretrained(model_dir(name), at::kFloat);
    const model::LoraConfig c = config(6, 12, "q_proj,k_proj,v_proj,up_proj");
    model::apply_lora(m, c, 10);
    randomize_b(m, 11);
    const at::Tensor ids = input_ids(name);
    const at::Tensor want = logits(m, ids);
    const std::string dir = temp_dir("reload_" + name);
    model::save_lora(m, c, dir);
    model::Transformer r = model::Transformer::from_pretrained(model_dir(name), at::kFloat);
    const model::LoraConfig back = model::load_lora(r, dir);
    EXPECT_EQ(back.target_modules, c.target_modules);
    EXPECT_TRUE(at::equal(logits(r, ids), want));
    for (const auto& [n, p] : r.named_parameters()) EXPECT_FALSE(p.requires_grad()) << n;
    for (const auto& [n, p] : model::lora_parameters(r)) EXPECT_TRUE(p.requires_grad()) << n;
    fs::remove_all(dir);
  }
}

TEST(Lora, LoadsAnAdapterAsPeftWritesIt) {
  // A folder as PEFT writes it for a bf16 run: bf16 tensors, the full config of a recent PEFT with
  // fields medgpt does not use, target_modules in set order, rank_pattern and alpha_pattern.
  const std::string name = "tiny_qwen3";
  const std::string dir = temp_dir("peft");
  const nlohmann::json cfg = nlohmann::json::parse(R"({
  "alora_invocation_tokens": null, "alpha_pattern": {"model.layers.1.self_attn.q_proj": 32}, "arrow_config": null,
  "auto_mapping": null, "base_model_name_or_path": "tiny", "bias": "none", "corda_config": null, "ensure_weight_tying": false,
  "eva_config": null, "exclude_modules": null, "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
  "layer_replication": null, "layers_pattern": null, "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 16,
  "lora_bias": false, "lora_dropout": 0.1, "megatron_config": null, "megatron_core": "megatron.core", "modules_to_save": null,
  "peft_type": "LORA", "peft_version": "0.18.0", "qalora_group_size": 16, "r": 8, "rank_pattern": {"v_proj": 2},
  "revision": null, "target_modules": ["v_proj", "q_proj"], "target_parameters": null, "task_type": "CAUSAL_LM",
  "trainable_token_indices": null, "use_dora": false, "use_qalora": false, "use_rslora": false})");
  std::ofstream(dir + "/adapter_config.json") << cfg.dump(2);
  model::Transformer base = conditioned(name);
  at::manual_seed(21);
  model::NamedTensors tensors;
  model::Transformer want = conditioned(name);  // merged by hand
  {
    at::NoGradGuard no_grad;
    for (int l = 0; l < 2; ++l)
      for (const std::string mod : {"q_proj", "v_proj"}) {
        model::Linear& lin = mod == "q_proj" ? want.blocks()[l].q : want.blocks()[l].v;
        const std::int64_t r = mod == "v_proj" ? 2 : 8;
        const at::Tensor A = (at::randn({r, 64}) * 0.1).to(at::kBFloat16), B = (at::randn({lin.weight.size(0), r}) * 0.1).to(at::kBFloat16);
        const std::string p = "base_model.model.model.layers." + std::to_string(l) + ".self_attn." + mod;
        tensors.emplace_back(p + ".lora_A.weight", A);
        tensors.emplace_back(p + ".lora_B.weight", B);
        const double scale = (l == 1 && mod == "q_proj" ? 32.0 : 16.0) / static_cast<double>(r);
        lin.weight.add_(at::matmul(B.to(at::kFloat), A.to(at::kFloat)) * scale);
      }
  }
  model::write_safetensors(dir + "/adapter_model.safetensors", tensors);
  const model::LoraConfig c = model::load_lora(base, dir);
  EXPECT_EQ(c.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(c.dropout, 0.1);
  EXPECT_EQ(base.blocks()[0].q.lora->scale, 2.0);
  EXPECT_EQ(base.blocks()[1].q.lora->scale, 4.0);  // alpha_pattern
  EXPECT_EQ(base.blocks()[0].v.lora->scale, 8.0);  // rank_pattern: r 2
  EXPECT_EQ(base.blocks()[0].v.lora->A.scalar_type(), at::kFloat);
  EXPECT_FALSE(base.blocks()[0].k.lora);
  const at::Tensor ids = input_ids(name);
  const double d = max_diff(logits(base, ids), logits(want, ids));
  std::printf("[   lora   ] PEFT-written adapter vs hand-merged weights: logits max|d| %.2g\n", d);
  EXPECT_LE(d, 1e-5);

  // What medgpt refuses, one line each naming the file and key.
  auto fails_with = [&](const std::function<void()>& edit, const std::string& want_text) {
    edit();
    model::Transformer m = model::Transformer::from_pretrained(model_dir(name), at::kFloat);
    const std::string err = error_of([&] { model::load_lora(m, dir); });
    EXPECT_NE(err.find(want_text), std::string::npos) << err;
    std::ofstream(dir + "/adapter_config.json") << cfg.dump(2);
    model::write_safetensors(dir + "/adapter_model.safetensors", tensors);
  };
  fails_with([&] { nlohmann::json j = cfg; j["use_dora"] = true; std::ofstream(dir + "/adapter_config.json") << j.dump(); },
             "adapter_config.json: use_dora: DoRA adapters are not supported");
  fails_with([&] { nlohmann::json j = cfg; j["peft_type"] = "IA3"; std::ofstream(dir + "/adapter_config.json") << j.dump(); },
             "adapter_config.json: peft_type: \"IA3\" is not LORA");
  fails_with([&] { nlohmann::json j = cfg; j["modules_to_save"] = {"lm_head"}; std::ofstream(dir + "/adapter_config.json") << j.dump(); },
             "modules_to_save: [\"lm_head\"] is not supported");
  fails_with([&] { auto t = tensors; t.pop_back(); model::write_safetensors(dir + "/adapter_model.safetensors", t); },
             "adapter_model.safetensors: base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight: missing (lora_A is there)");
  fails_with([&] { auto t = tensors; t[0].second = at::zeros({8, 48}); model::write_safetensors(dir + "/adapter_model.safetensors", t); },
             "layers.0.self_attn.q_proj.lora_A.weight: shape [8, 48] does not fit a layer of input size 64");
  fails_with([&] { auto t = tensors; t.emplace_back("base_model.model.model.layers.5.mlp.up_proj.lora_A.weight", at::zeros({8, 64}));
                   model::write_safetensors(dir + "/adapter_model.safetensors", t); },
             "layers.5.mlp.up_proj.lora_A.weight: names no linear layer of this qwen3 model (2 layers)");
  fs::remove_all(dir);
}

TEST(MergeCommand, WritesAFolderThatForwardReadsWithTheUnmergedLogits) {
  // A qwen2 folder as it comes, and a qwen3 one with tied embeddings (the output keeps no lm_head).
  for (const bool tied : {false, true}) {
    const std::string name = tied ? "tiny_qwen3" : "tiny_qwen2";
    SCOPED_TRACE(name);
    const std::string base = conditioned_folder(name, tied);
    model::Transformer m = model::Transformer::from_pretrained(base, at::kFloat);
    const model::LoraConfig c = config(8, 16);
    model::apply_lora(m, c, 31);
    randomize_b(m, 32);
    const at::Tensor ids = input_ids(name);
    const at::Tensor want = logits(m, ids);
    const std::string adapter = temp_dir("adapter"), out = temp_dir("merged");
    model::save_lora(m, c, adapter);

    auto [rc, err] = run("merge --base " + base + " --adapter " + adapter + " --output " + out);
    ASSERT_EQ(rc, 0) << err;
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
    EXPECT_EQ(util::read_file(out + "/config.json"), util::read_file(base + "/config.json"));
    std::set<std::string> names;
    for (const auto& [n, t] : model::read_safetensors(out + "/model.safetensors")) {
      names.insert(n);
      EXPECT_EQ(t.scalar_type(), at::kFloat) << n;
    }
    EXPECT_EQ(names.count("lm_head.weight"), tied ? 0u : 1u);
    EXPECT_EQ(names.size(), model::Transformer::from_pretrained(base, at::kFloat).named_parameters().size());

    const std::string logits_file = out + "/logits.safetensors";
    std::tie(rc, err) = run("forward --model " + out + " --ids " + ids_arg(ids) + " --output " + logits_file);
    ASSERT_EQ(rc, 0) << err;
    const at::Tensor got = model::read_safetensors(logits_file).at(0).second;
    const double d = max_diff(got, want);
    std::printf("[   merge  ] %s%s: medgpt forward on the merged folder vs the unmerged LoRA model: max|d| %.2g\n", name.c_str(),
                tied ? " (tied)" : "", d);
    EXPECT_LE(d, 1e-5);

    // --dtype bf16: BF16 tensors and the config says so.
    const std::string out16 = temp_dir("merged16");
    std::tie(rc, err) = run("merge --base " + base + " --adapter " + adapter + " --output " + out16 + " --dtype bf16");
    ASSERT_EQ(rc, 0) << err;
    const auto cfg16 = util::read_json_file(out16 + "/config.json");
    EXPECT_EQ(cfg16.at("torch_dtype"), "bfloat16");
    EXPECT_EQ(cfg16.at("dtype"), "bfloat16");
    for (const auto& [n, t] : model::read_safetensors(out16 + "/model.safetensors")) EXPECT_EQ(t.scalar_type(), at::kBFloat16) << n;
    for (const auto& d : {adapter, out, out16, base}) fs::remove_all(d);
  }
}

TEST(MergeCommand, BadInputIsOneClearLine) {
  auto [rc, err] = run("merge --base " + model_dir("tiny_qwen3") + " --adapter /nonexistent --output /tmp/x");
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("medgpt: error: /nonexistent/adapter_config.json: no such file"), std::string::npos) << err;
  // An adapter trained on another model: tiny_llama's q_proj is [64, 64], tiny_qwen3's [128, 64].
  model::Transformer llama = model::Transformer::from_pretrained(model_dir("tiny_llama"), at::kFloat);
  model::apply_lora(llama, config(), 1);
  const std::string adapter = temp_dir("llama_adapter");
  model::save_lora(llama, config(), adapter);
  std::tie(rc, err) = run("merge --base " + model_dir("tiny_qwen3") + " --adapter " + adapter + " --output /tmp/x");
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("layers.0.self_attn.q_proj.lora_B.weight: shape [64, 4] does not match [128, 4]"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  std::tie(rc, err) = run("merge --base " + model_dir("tiny_qwen3") + " --adapter " + adapter + " --output " + model_dir("tiny_qwen3"));
  EXPECT_NE(err.find("is the base model folder"), std::string::npos) << err;
  fs::remove_all(adapter);
}
