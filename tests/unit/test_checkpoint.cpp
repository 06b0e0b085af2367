// medgpt import / export: Hugging Face folder -> checkpoint (tp 1 and 2) -> folder keeps every
// tensor bit for bit and the names; tied embeddings stay tied; bf16 survives; broken or
// half-written checkpoints are refused by name.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "model/checkpoint.hpp"
#include "model/safetensors.hpp"
#include "util/error.hpp"
#include "util/json.hpp"

using namespace medgpt;
namespace fs = std::filesystem;

namespace {

std::string fixture_model(const std::string& name) { return std::string(MEDGPT_FIXTURES_DIR) + "/hf-tiny/" + name + "/model"; }

std::string fresh_dir(const std::string& tag) {
  const fs::path p = fs::temp_directory_path() / ("medgpt_ck_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

int run_medgpt(const std::string& args) {
  return WEXITSTATUS(std::system((std::string(MEDGPT_BINARY) + " " + args + " 2>/dev/null").c_str()));
}

std::map<std::string, at::Tensor> as_map(const model::NamedTensors& t) { return {t.begin(), t.end()}; }

void expect_bit_identical(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(b.count(name));
    const at::Tensor& u = b.at(name);
    ASSERT_EQ(t.scalar_type(), u.scalar_type());
    ASSERT_EQ(t.sizes(), u.sizes());
    EXPECT_EQ(std::memcmp(t.data_ptr(), u.data_ptr(), t.numel() * t.element_size()), 0);
  }
}

}  // namespace

TEST(Checkpoint, ImportExportRoundTripIsBitExact) {
  for (const std::string name : {"tiny_qwen2", "tiny_qwen3", "tiny_llama"})
    for (int tp : {1, 2}) {
      SCOPED_TRACE(name + " tp " + std::to_string(tp));
      const std::string ck = fresh_dir(name + "_ck" + std::to_string(tp)), hf = fresh_dir(name + "_hf" + std::to_string(tp));
      ASSERT_EQ(run_medgpt("import --model " + fixture_model(name) + " --output " + ck + " --tp " + std::to_string(tp)), 0);
      EXPECT_TRUE(model::is_committed(ck));
      EXPECT_EQ(util::read_json_file(ck + "/meta.json")["tp"], tp);
      ASSERT_EQ(run_medgpt("export --checkpoint " + ck + " --output " + hf), 0);
      expect_bit_identical(as_map(model::read_safetensors_dir(fixture_model(name))), as_map(model::read_safetensors_dir(hf)));
      for (const char* f : {"config.json", "generation_config.json"})
        EXPECT_EQ(util::read_file(fixture_model(name) + "/" + f), util::read_file(hf + "/" + f));
    }
}

TEST(Checkpoint, TiedEmbeddingsStayTiedAndBf16Survives) {
  // A tied variant of tiny_qwen3: no lm_head.weight in the files, tie_word_embeddings true.
  const std::string src = fresh_dir("tied_src");
  fs::create_directories(src);
  auto w = model::read_safetensors_dir(fixture_model("tiny_qwen3"));
  w.erase(std::remove_if(w.begin(), w.end(), [](const auto& x) { return x.first == "lm_head.weight"; }), w.end());
  model::write_safetensors(src + "/model.safetensors", w);
  auto config = util::read_json_file(fixture_model("tiny_qwen3") + "/config.json");
  config["tie_word_embeddings"] = true;
  std::ofstream(src + "/config.json") << config.dump(2);

  const std::string ck = fresh_dir("tied_ck"), hf = fresh_dir("tied_hf");
  ASSERT_EQ(run_medgpt("import --model " + src + " --output " + ck + " --tp 2 --dtype bf16"), 0);
  ASSERT_EQ(run_medgpt("export --checkpoint " + ck + " --output " + hf), 0);
  auto out = as_map(model::read_safetensors_dir(hf));
  EXPECT_EQ(out.count("lm_head.weight"), 0u);
  std::map<std::string, at::Tensor> want;
  for (auto& [n, t] : w) want[n] = t.to(at::kBFloat16);
  expect_bit_identical(want, out);
  EXPECT_EQ(util::read_json_file(hf + "/config.json")["torch_dtype"], "bfloat16");
  // Back to fp32 on export: bf16 values widen exactly.
  const std::string hf32 = fresh_dir("tied_hf32");
  ASSERT_EQ(run_medgpt("export --checkpoint " + ck + " --output " + hf32 + " --dtype fp32"), 0);
  for (auto& [n, t] : as_map(model::read_safetensors_dir(hf32))) EXPECT_TRUE(t.equal(want.at(n).to(at::kFloat))) << n;
}

TEST(Checkpoint, RefusesHalfWrittenAndDamagedCheckpoints) {
  const std::string ck = fresh_dir("damaged");
  ASSERT_EQ(run_medgpt("import --model " + fixture_model("tiny_llama") + " --output " + ck + " --tp 2"), 0);
  fs::remove(ck + "/COMMITTED");
  try {
    model::read_model_full(ck);
    FAIL() << "no error";
  } catch (const util::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no COMMITTED marker"), std::string::npos) << e.what();
  }
  std::ofstream(ck + "/COMMITTED") << "ok\n";
  fs::remove(ck + "/" + model::shard_file({1, 2, 0, 1}));
  try {
    model::read_model_full(ck);
    FAIL() << "no error";
  } catch (const util::Error& e) {
    EXPECT_NE(std::string(e.what()).find("model-tp01-of-02-pp00-of-01.h5: missing or not an HDF5 file"), std::string::npos) << e.what();
  }
  // tp that does not divide the heads
  EXPECT_NE(run_medgpt("import --model " + fixture_model("tiny_llama") + " --output " + fresh_dir("tp3") + " --tp 3"), 0);
}
