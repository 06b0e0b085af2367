// `medgpt forward` end to end (the binary, as a user runs it), bf16 weights against the fp32
// reference, and clear errors for models that do not match their config.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "model/safetensors.hpp"
#include "model/transformer.hpp"
#include "util/error.hpp"
#include "util/json.hpp"

using namespace medgpt;
namespace fs = std::filesystem;

namespace {

std::string fixture_dir(const std::string& name) { return std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/" + name; }

at::Tensor ref_tensor(const std::string& name, const std::string& tensor) {
  for (auto& [n, t] : model::read_safetensors(fixture_dir(name) + "/ref.safetensors"))
    if (n == tensor) return t;
  return {};
}

std::string ids_arg(const at::Tensor& ids) {
  std::string s;
  for (std::int64_t i = 0; i < ids.numel(); ++i) s += (i ? "," : "") + std::to_string(ids.view({-1})[i].item<std::int64_t>());
  return s;
}

// Runs the medgpt binary; returns its exit code and stderr.
std::pair<int, std::string> run(const std::string& args) {
  const std::string err = (fs::temp_directory_path() / ("medgpt_cli_err_" + std::to_string(::getpid()))).string();
  const int rc = std::system((std::string(MEDGPT_BINARY) + " " + args + " 2> " + err).c_str());
  std::ifstream in(err);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return {WEXITSTATUS(rc), text};
}

}  // namespace

TEST(ForwardCommand, WritesTheLogitsTransformersComputes) {
  for (const std::string name : {"tiny_qwen2", "tiny_qwen3", "tiny_llama"}) {
    SCOPED_TRACE(name);
    const std::string out = (fs::temp_directory_path() / ("medgpt_logits_" + name + "_" + std::to_string(::getpid()) + ".safetensors")).string();
    const auto [rc, err] = run("forward --model " + fixture_dir(name) + "/model --ids " + ids_arg(ref_tensor(name, "input_ids")) +
                               " --output " + out);
    ASSERT_EQ(rc, 0) << err;
    const auto got = model::read_safetensors(out);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, "logits");
    EXPECT_EQ(got[0].second.scalar_type(), at::kFloat);
    const at::Tensor want = ref_tensor(name, "logits");
    EXPECT_EQ(got[0].second.sizes(), want.sizes());
    EXPECT_LE((got[0].second - want).abs().max().item<double>(), 1e-4);
  }
}

TEST(ForwardCommand, Bf16WeightsStayWithinBf16Precision) {
  // bf16 keeps 8 significant bits (relative step 2^-8). Two effects, bounded separately:
  // rounding the weights (measured by running fp32 math on bf16-rounded weights) and rounding
  // the activations (bf16 math vs that). These tiny models have large random weights (init 0.2)
  // and logits up to ~7, so weight rounding alone moves logits by up to ~0.3.
  for (const std::string name : {"tiny_qwen2", "tiny_qwen3", "tiny_llama"}) {
    SCOPED_TRACE(name);
    const std::string dir = fixture_dir(name) + "/model";
    auto bf16 = model::Transformer::from_pretrained(dir, at::kBFloat16);
    auto rounded = model::Transformer(model::ModelConfig::load(dir), at::kFloat);
    model::NamedTensors w = model::read_safetensors_dir(dir);
    for (auto& [n, t] : w) t = t.to(at::kBFloat16).to(at::kFloat);
    rounded.load(w, dir);
    at::NoGradGuard no_grad;
    const at::Tensor ids = ref_tensor(name, "input_ids");
    const at::Tensor got = bf16.logits(ids).to(at::kFloat), mid = rounded.logits(ids), want = ref_tensor(name, "logits");
    const double activation_err = (got - mid).abs().max().item<double>();
    const double weight_err = (mid - want).abs().max().item<double>();
    const double total_err = (got - want).abs().max().item<double>();
    std::printf("[   bf16   ] %s: max|logits - fp32| %.3f (weights %.3f, activations %.3f), |logits| max %.2f\n", name.c_str(),
                total_err, weight_err, activation_err, want.abs().max().item<double>());
    EXPECT_LE(activation_err, 0.35);
    EXPECT_LE(weight_err, 0.35);
    EXPECT_LE(total_err, 0.5);
    EXPECT_GT(activation_err, 0.0);  // it really ran in bf16
    const double agree = got.argmax(-1).eq(want.argmax(-1)).to(at::kFloat).mean().item<double>();
    EXPECT_GE(agree, 0.9);
  }
}

TEST(ForwardCommand, BadInputIsOneClearLine) {
  const std::string model = fixture_dir("tiny_qwen3") + "/model";
  auto [rc, err] = run("forward --model " + model + " --ids 1,x,3 --output /tmp/x.safetensors");
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("medgpt: error: --ids: \"x\" is not a token id"), std::string::npos) << err;
  std::tie(rc, err) = run("forward --model " + model + " --ids 1,5000 --output /tmp/x.safetensors");
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("5000 is beyond the vocabulary (1000)"), std::string::npos) << err;

  // A config that does not match the weights, and one missing a key.
  const fs::path dir = fs::temp_directory_path() / ("medgpt_badmodel_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(model + "/model.safetensors", dir / "model.safetensors", fs::copy_options::overwrite_existing);
  auto config = util::read_json_file(model + "/config.json");
  config["intermediate_size"] = 100;
  std::ofstream(dir / "config.json") << config.dump();
  std::tie(rc, err) = run("forward --model " + dir.string() + " --ids 1,2 --output /tmp/x.safetensors");
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("model.layers.0.mlp.gate_proj.weight: shape [176, 64] does not match [100, 64]"), std::string::npos) << err;
  config.erase("hidden_size");
  std::ofstream(dir / "config.json") << config.dump();
  std::tie(rc, err) = run("forward --model " + dir.string() + " --ids 1,2 --output /tmp/x.safetensors");
  EXPECT_NE(err.find("config.json: hidden_size: missing"), std::string::npos) << err;
  config["hidden_size"] = 64;
  config["model_type"] = "mixtral";
  std::ofstream(dir / "config.json") << config.dump();
  std::tie(rc, err) = run("forward --model " + dir.string() + " --ids 1,2 --output /tmp/x.safetensors");
  EXPECT_NE(err.find("model_type: \"mixtral\" is not supported"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}
