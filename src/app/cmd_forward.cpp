// `medgpt forward`: logits of one id sequence, written as safetensors (tensor "logits", F32,
// [1, T, V]), for tests and for users checking a conversion against transformers.
#include <ATen/ATen.h>

#include "app/command.hpp"
#include "model/safetensors.hpp"
#include "model/transformer.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace medgpt::app {

namespace {

std::vector<std::int64_t> parse_ids(const std::string& s) {
  std::vector<std::int64_t> ids;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const auto comma = s.find(',', pos);
    const std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      std::size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      ids.push_back(v);
    } catch (const std::exception&) {
      util::fail("--ids", "\"" + item + "\" is not a token id", "pass comma-separated non-negative integers, e.g. --ids 1,2,3");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

int run_forward(const po::variables_map& vm) {
  const auto ids = parse_ids(required(vm, "ids"));
  const std::string dir = required(vm, "model");
  const at::ScalarType dtype = model::parse_dtype(vm["dtype"].as<std::string>());
  const model::Transformer m = model::Transformer::from_pretrained(dir, dtype);
  for (auto id : ids)
    if (id >= m.config().vocab_size)
      util::fail("--ids", std::to_string(id) + " is beyond the vocabulary (" + std::to_string(m.config().vocab_size) + ")",
                 "pass ids of this model's tokenizer");
  at::NoGradGuard no_grad;
  const at::Tensor input = at::tensor(ids, at::kLong).unsqueeze(0);
  const at::Tensor logits = m.logits(input).to(at::kFloat);
  model::write_safetensors(required(vm, "output"), {{"logits", logits}});
  util::log("logits " + c10::str(logits.sizes()) + " -> " + required(vm, "output"));
  return 0;
}

}  // namespace

void register_model_commands(std::vector<Command>& out) {
  out.push_back({"forward", "logits of an id sequence from a Hugging Face model folder, as safetensors",
                 [](po::options_description& d) {
                   d.add_options()
                       ("model", po::value<std::string>(), "Hugging Face model folder: config.json + *.safetensors (required)")
                       ("ids", po::value<std::string>(), "token ids, comma-separated, e.g. 1,2,3 (required)")
                       ("dtype", po::value<std::string>()->default_value("fp32"), "compute dtype: fp32 or bf16")
                       ("output", po::value<std::string>(), "output .safetensors holding tensor \"logits\" [1, T, V] F32 (required)");
                 },
                 run_forward});
}

}  // namespace medgpt::app
