#include "model/lora.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <exception>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <type_traits>

#include "parallel/agreement.hpp"
#include "parallel/tensor_parallel.hpp"
#include "model/nf4.hpp"
#include "model/safetensors.hpp"
#include "model/tp_plan.hpp"
#include "model/upcast.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"

namespace medgpt::model {

namespace {

const char* const kPrefix = "base_model.model.";  // PeftModel -> LoraModel -> the *ForCausalLM
// A reward model's head, fully trained beside the adapters (PEFT's SEQ_CLS modules_to_save).
const char* const kScoreKey = "base_model.model.score.weight";

// One adaptable Linear: its Hugging Face module path and short name.
template <typename L>
struct Module {
  std::string path;  // model.layers.3.mlp.up_proj
  std::string name;  // up_proj
  L* linear;
};

template <typename M, typename L = std::conditional_t<std::is_const_v<M>, const Linear, Linear>>
std::vector<Module<L>> modules(M& m) {
  std::vector<Module<L>> out;
  auto& blocks = m.blocks();
  for (std::size_t l = 0; l < blocks.size(); ++l) {
    auto& b = blocks[l];
    const std::string p = "model.layers." + std::to_string(m.stage().first + static_cast<std::int64_t>(l)) + ".";
    out.push_back({p + "self_attn.q_proj", "q_proj", &b.q});
    out.push_back({p + "self_attn.k_proj", "k_proj", &b.k});
    out.push_back({p + "self_attn.v_proj", "v_proj", &b.v});
    out.push_back({p + "self_attn.o_proj", "o_proj", &b.o});
    out.push_back({p + "mlp.gate_proj", "gate_proj", &b.gate});
    out.push_back({p + "mlp.up_proj", "up_proj", &b.up});
    out.push_back({p + "mlp.down_proj", "down_proj", &b.down});
  }
  return out;
}

// PEFT's get_pattern_key: the first pattern matching the end of the module name after a dot.
template <typename V>
const V* pattern_value(const std::map<std::string, V>& patterns, const std::string& module) {
  for (const auto& [key, value] : patterns)
    if (std::regex_match(module, std::regex("(.*\\.)?(" + key + ")"))) return &value;
  return nullptr;
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

int tp_size(const Transformer& m) { return m.tp() ? m.tp()->size() : 1; }
int tp_rank(const Transformer& m) { return m.tp() ? m.tp()->rank() : 0; }

// What the Linear's role makes of its adapter: which dimension of A and of B is split over tp.
struct Placement {
  int a_dim = -1, b_dim = -1;  // -1: whole on every rank
  std::int64_t in = 0, out = 0;  // the full layer's input and output sizes
};

Placement placement(const Linear& l) {
  Placement p;
  p.in = l.in_features();
  p.out = l.out_features();
  p.a_dim = lora_split_dim(l.split_dim(), true);
  p.b_dim = lora_split_dim(l.split_dim(), false);
  return p;
}

// The adapter takes the layer's role and communicator.
void place(LoraAdapter& a, const Linear& l) {
  a.role = l.role;
  a.tp = l.tp;
}

// The module path ("model.layers.0.self_attn.q_proj") and half of a PEFT key
// ("base_model.model.<path>.lora_A[.default].weight"); false when it is not one.
bool parse_key(const std::string& name, std::string* path, bool* is_a) {
  if (name.rfind(kPrefix, 0) != 0) return false;
  const std::string key = name.substr(std::string(kPrefix).size());
  for (const char* suffix : {".lora_A.weight", ".lora_A.default.weight", ".lora_B.weight", ".lora_B.default.weight"}) {
    const std::string s = suffix;
    if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) {
      *path = key.substr(0, key.size() - s.size());
      *is_a = s.find("lora_A") != std::string::npos;
      return true;
    }
  }
  return false;
}

// The full tensor from every tp rank's part split along `dim` (collective over tp).
at::Tensor gather_over_tp(const at::Tensor& part, int dim, parallel::Comm& tp) {
  return tp.allgather(part.movedim(dim, 0).contiguous()).movedim(0, dim).contiguous();
}

}  // namespace

namespace {

// at::dropout's arithmetic (a Bernoulli(1 - p) mask over the input, scaled by 1 / (1 - p)), with
// the mask drawn over the full layer input: a row-parallel adapter's input is this rank's columns,
// and the tp ranks share the generator state, so each draws the tp=1 mask and keeps its columns.
at::Tensor lora_dropout(const LoraAdapter& a, const at::Tensor& h) {
  const bool row = a.tp && a.role == ParallelRole::kRow;
  std::vector<std::int64_t> full = h.sizes().vec();
  if (row) full.back() *= a.tp->size();
  at::Tensor mask = at::empty(full, h.options()).bernoulli_(1.0 - a.dropout).div_(1.0 - a.dropout);
  if (row) mask = mask.narrow(-1, h.size(-1) * a.tp->rank(), h.size(-1));
  return h * mask;
}

}  // namespace

at::Tensor lora_delta(const LoraAdapter& a, const at::Tensor& x) {
  at::Tensor h = x.to(a.A.scalar_type());
  if (a.training && a.dropout > 0.0) h = lora_dropout(a, h);
  at::Tensor A = a.A, B = a.B;
  if (a.tp) switch (a.role) {
      case ParallelRole::kColumn:  // the full A serves this rank's rows of B: its gradient is partial
        A = parallel::copy_to_tp(A, *a.tp);
        break;
      case ParallelRole::kReplicated:  // all of A and B serve this rank's heads only
        A = parallel::copy_to_tp(A, *a.tp);
        B = parallel::copy_to_tp(B, *a.tp);
        break;
      case ParallelRole::kRow:  // this rank's input columns: partial A·x, summed (r values per token)
        return at::linear(parallel::reduce_from_tp(at::linear(h, A), *a.tp), B) * a.scale;
    }
  // PEFT: lora_B(lora_A(dropout(x))) * scaling
  return at::linear(at::linear(h, A), B) * a.scale;
}

at::Tensor Linear::with_adapter(const at::Tensor& y, const at::Tensor& x) const {
  if (!lora || !lora->enabled) return y;
  // PEFT: result = result + lora_B(lora_A(dropout(x))) * scaling; result.to(torch_result_dtype)
  return (y + lora_delta(*lora, x)).to(y.scalar_type());
}

const std::vector<std::string>& lora_module_names() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return names;
}

std::vector<std::string> parse_lora_targets(const std::string& spec) {
  if (spec == "all" || spec == "all-linear") return lora_module_names();
  std::set<std::string> want;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    const auto comma = spec.find(',', pos);
    std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!contains(lora_module_names(), item))
      util::fail("--lora.target", "\"" + item + "\" is not a linear layer LoRA can adapt",
                 "use all or a comma-separated list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj");
    want.insert(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::vector<std::string> out;
  for (const auto& n : lora_module_names())
    if (want.count(n)) out.push_back(n);
  return out;
}

double LoraConfig::scale_for(std::int64_t rank, double lora_alpha) const {
  return rslora ? lora_alpha / std::sqrt(static_cast<double>(rank)) : lora_alpha / static_cast<double>(rank);
}

void apply_lora(Transformer& m, const LoraConfig& c, std::uint64_t seed) {
  if (c.r <= 0) util::fail("--lora.rank", std::to_string(c.r) + " is not a positive rank", "pass --lora.rank 8 (or another positive integer)");
  if (c.dropout < 0.0 || c.dropout >= 1.0)
    util::fail("--lora.dropout", std::to_string(c.dropout) + " is not a probability in [0, 1)", "pass e.g. --lora.dropout 0.05");
  for (const auto& t : c.target_modules)
    if (!contains(lora_module_names(), t)) util::fail("--lora.target", "\"" + t + "\" is not a linear layer LoRA can adapt", "see --help");
  m.set_requires_grad(false);
  remove_lora(m);
  if (m.score_head().defined()) m.score_head().requires_grad_(true);
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // A later pipeline stage first draws (and drops) the earlier layers' A matrices, so that every
  // layout starts from the adapters of one rank.
  if (m.stage().first > 0) {
    const Transformer earlier(m.config(), at::kFloat, at::kMeta, nullptr, StageView{0, m.stage().first, false, false});
    for (const auto& mod : modules(earlier)) {
      if (!contains(c.target_modules, mod.name)) continue;
      const std::int64_t* rp = pattern_value(c.rank_pattern, mod.path);
      at::empty({rp ? *rp : c.r, mod.linear->in_features()}, at::kFloat).uniform_(-1.0, 1.0, gen);
    }
  }
  for (auto& mod : modules(m)) {
    if (!contains(c.target_modules, mod.name)) continue;
    const std::int64_t* rp = pattern_value(c.rank_pattern, mod.path);
    const double* ap = pattern_value(c.alpha_pattern, mod.path);
    const std::int64_t r = rp ? *rp : c.r;
    const Placement p = placement(*mod.linear);
    auto a = std::make_shared<LoraAdapter>();
    // nn.init.kaiming_uniform_(A, a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound sqrt(3) * gain / sqrt(fan_in).
    // Under tp every rank draws the full A (same generator, same sequence as tp 1) and keeps its part.
    const double bound = std::sqrt(3.0) * (std::sqrt(2.0 / 6.0) / std::sqrt(static_cast<double>(p.in)));
    const at::Tensor A = at::empty({r, p.in}, at::kFloat).uniform_(-bound, bound, gen);
    a->A = tp_shard(A, p.a_dim, tp_rank(m), tp_size(m)).to(c.dtype).requires_grad_(true);
    a->B = at::zeros({p.b_dim == 0 ? p.out / tp_size(m) : p.out, r}, at::TensorOptions().dtype(c.dtype)).requires_grad_(true);
    a->scale = c.scale_for(r, ap ? *ap : c.alpha);
    a->dropout = c.dropout;
    place(*a, *mod.linear);
    mod.linear->lora = std::move(a);
  }
}

void remove_lora(Transformer& m) {
  for (auto& mod : modules(m)) mod.linear->lora.reset();
}

NamedTensors lora_parameters(const Transformer& m) {
  NamedTensors out;
  for (const auto& mod : modules(m)) {
    if (!mod.linear->lora) continue;
    out.emplace_back(kPrefix + mod.path + ".lora_A.weight", mod.linear->lora->A);
    out.emplace_back(kPrefix + mod.path + ".lora_B.weight", mod.linear->lora->B);
  }
  if (!out.empty() && m.score_head().defined()) out.emplace_back(kScoreKey, m.score_head());
  return out;
}

int lora_split_dim(int base_split_dim, bool is_a) {
  if (is_a) return base_split_dim == 1 ? 1 : -1;  // row-parallel: A [r, in/tp] split like W
  return base_split_dim == 0 ? 0 : -1;             // column-parallel: B [out/tp, r] split like W
}

bool lora_base_weight(const std::string& key, std::string* weight, bool* is_a) {
  std::string path;
  if (!parse_key(key, &path, is_a)) return false;
  *weight = path + ".weight";
  return true;
}

int lora_split_dim(const Transformer& m, const std::string& name) {
  if (name == kScoreKey) return -1;  // replicated, as the model's own head
  std::string path;
  bool is_a = false;
  if (!parse_key(name, &path, &is_a)) util::fail(name, "is not a LoRA parameter name", "pass a name from lora_parameters()");
  for (const auto& mod : modules(m))
    if (mod.path == path) {
      const Placement p = placement(*mod.linear);
      return is_a ? p.a_dim : p.b_dim;
    }
  util::fail(name, "names no linear layer of this model", "pass a name from lora_parameters()");
}

void set_lora_enabled(Transformer& m, bool on) {
  for (auto& mod : modules(m))
    if (mod.linear->lora) mod.linear->lora->enabled = on;
}

void set_lora_training(Transformer& m, bool on) {
  for (auto& mod : modules(m))
    if (mod.linear->lora) mod.linear->lora->training = on;
}

nlohmann::json adapter_config_json(const LoraConfig& c) {
  nlohmann::json j = nlohmann::json::object();  // keys sorted, as json.dumps(sort_keys=True)
  j["peft_type"] = "LORA";
  j["task_type"] = c.task_type;
  j["base_model_name_or_path"] = c.base_model_name_or_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.base_model_name_or_path);
  j["r"] = c.r;
  if (c.alpha == std::floor(c.alpha) && std::fabs(c.alpha) < 1e15) j["lora_alpha"] = static_cast<std::int64_t>(c.alpha);
  else j["lora_alpha"] = c.alpha;
  j["lora_dropout"] = c.dropout;
  j["target_modules"] = c.target_modules;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["use_rslora"] = c.rslora;
  j["use_dora"] = false;
  j["modules_to_save"] = c.task_type == "SEQ_CLS" ? nlohmann::json{"score"} : nlohmann::json(nullptr);
  j["init_lora_weights"] = true;
  j["inference_mode"] = true;
  j["layers_to_transform"] = nullptr;
  j["layers_pattern"] = nullptr;
  j["rank_pattern"] = nlohmann::json::object();
  for (const auto& [k, v] : c.rank_pattern) j["rank_pattern"][k] = v;
  j["alpha_pattern"] = nlohmann::json::object();
  for (const auto& [k, v] : c.alpha_pattern) j["alpha_pattern"][k] = v;
  j["revision"] = nullptr;
  return j;
}

LoraConfig read_adapter_config(const std::string& dir) {
  const std::string file = dir + "/adapter_config.json";
  if (!util::file_exists(file)) util::fail(file, "no such file", "pass a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)");
  const nlohmann::json j = util::read_json_file(file);
  auto where = [&](const char* key) { return file + ": " + key; };
  auto is = [&](const char* key, auto pred) { return j.contains(key) && !j[key].is_null() && pred(j[key]); };
  auto flag = [&](const char* key) { return j.contains(key) && j[key].is_boolean() && j[key].get<bool>(); };
  LoraConfig c;
  const std::string type = is("peft_type", [](const auto& v) { return v.is_string(); }) ? j["peft_type"].get<std::string>() : "";
  if (type != "LORA") util::fail(where("peft_type"), "\"" + type + "\" is not LORA", "medgpt loads LoRA adapters only");
  if (!is("r", [](const auto& v) { return v.is_number_integer() && v.template get<std::int64_t>() > 0; }))
    util::fail(where("r"), "missing or not a positive integer", "fix adapter_config.json");
  c.r = j["r"].get<std::int64_t>();
  c.alpha = is("lora_alpha", [](const auto& v) { return v.is_number(); }) ? j["lora_alpha"].get<double>() : 8.0;
  c.dropout = is("lora_dropout", [](const auto& v) { return v.is_number(); }) ? j["lora_dropout"].get<double>() : 0.0;
  c.rslora = flag("use_rslora");
  if (flag("use_dora")) util::fail(where("use_dora"), "DoRA adapters are not supported", "merge it with PEFT first");
  if (flag("fan_in_fan_out")) util::fail(where("fan_in_fan_out"), "true is not supported", "it applies to GPT-2 Conv1D layers only");
  if (flag("lora_bias")) util::fail(where("lora_bias"), "LoRA biases are not supported", "train without lora_bias");
  const std::string bias = is("bias", [](const auto& v) { return v.is_string(); }) ? j["bias"].get<std::string>() : "none";
  if (bias != "none") util::fail(where("bias"), "\"" + bias + "\" is not supported", "medgpt adapters train no biases (bias \"none\")");
  if (is("task_type", [](const auto& v) { return v.is_string(); })) c.task_type = j["task_type"];
  // A reward model's adapter carries its score head (transformers' *ForSequenceClassification).
  if (is("modules_to_save", [](const auto& v) { return !v.empty(); }))
    for (const auto& name : j["modules_to_save"])
      if (c.task_type != "SEQ_CLS" || !name.is_string() || (name != "score" && name != "classifier"))
        util::fail(where("modules_to_save"), j["modules_to_save"].dump() + " is not supported",
                   "medgpt adapters hold LoRA weights (and, for a SEQ_CLS reward model, its score head) only");
  if (is("target_modules", [](const auto& v) { return v.is_array(); })) {
    c.target_modules.clear();
    for (const auto& t : j["target_modules"])
      if (t.is_string()) c.target_modules.push_back(t);
  }
  if (is("base_model_name_or_path", [](const auto& v) { return v.is_string(); })) c.base_model_name_or_path = j["base_model_name_or_path"];
  if (is("rank_pattern", [](const auto& v) { return v.is_object(); }))
    for (const auto& [k, v] : j["rank_pattern"].items()) c.rank_pattern[k] = v.get<std::int64_t>();
  if (is("alpha_pattern", [](const auto& v) { return v.is_object(); }))
    for (const auto& [k, v] : j["alpha_pattern"].items()) c.alpha_pattern[k] = v.get<double>();
  return c;
}

namespace {

// Stage 0 gets every stage's tensors, in stage order (so in layer order); the others get none.
// Names, dtypes and shapes travel as text, the values point to point.
NamedTensors gather_over_pp(const NamedTensors& mine, parallel::Comm& pp) {
  std::string meta;
  for (const auto& [name, t] : mine) {
    meta += name + " " + std::to_string(static_cast<int>(t.scalar_type()));
    for (const std::int64_t d : t.sizes()) meta += " " + std::to_string(d);
    meta += "\n";
  }
  const std::vector<std::string> all = parallel::allgather_strings(pp, meta);
  constexpr int kTag = 21;
  if (pp.rank() != 0) {
    for (const auto& [name, t] : mine) pp.send(t, 0, kTag);
    return {};
  }
  NamedTensors out = mine;
  for (int r = 1; r < pp.size(); ++r) {
    std::istringstream lines(all[static_cast<std::size_t>(r)]);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::string name;
      int dtype = 0;
      fields >> name >> dtype;
      std::vector<std::int64_t> shape;
      for (std::int64_t d = 0; fields >> d;) shape.push_back(d);
      at::Tensor t = at::empty(shape, at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype)));
      pp.recv(t, r, kTag);
      out.emplace_back(name, t);
    }
  }
  return out;
}

}  // namespace

void save_lora(const Transformer& m, const LoraConfig& config, const std::string& dir, parallel::Comm* pp) {
  LoraConfig c = config;
  NamedTensors tensors;
  for (const auto& [name, t] : lora_parameters(m)) {
    const int dim = lora_split_dim(m, name);  // collective over tp: every rank walks the same list
    tensors.emplace_back(name, dim >= 0 ? gather_over_tp(t.detach(), dim, *m.tp()) : t.detach().contiguous());
  }
  if (pp && pp->size() > 1) {
    bool score = m.score_head().defined();
    score = parallel::allreduce_int(*pp, score ? 1 : 0, parallel::ReduceOp::kMax) != 0;  // the last stage's head
    if (score) c.task_type = "SEQ_CLS";
    tensors = gather_over_pp(tensors, *pp);
    if (pp->rank() != 0) return;
  } else if (m.score_head().defined()) {
    c.task_type = "SEQ_CLS";
  }
  if (tensors.empty()) util::fail(dir, "the model has no LoRA adapters to save", "call apply_lora or load_lora first");
  auto write = [&] {
    std::filesystem::create_directories(dir);
    write_safetensors(dir + "/adapter_model.safetensors", tensors);
    util::write_file_atomic(dir + "/adapter_config.json", adapter_config_json(c).dump(2));
  };
  if (tp_size(m) <= 1) return write();
  parallel::on_root(*m.tp(), write);  // tp rank 0 writes; an error there is raised on every rank
}

bool is_reward_adapter(const std::string& dir) { return read_adapter_config(dir).task_type == "SEQ_CLS"; }

LoraConfig load_lora(Transformer& m, const std::string& dir, at::ScalarType dtype) {
  LoraConfig c = read_adapter_config(dir);
  const std::string file = dir + "/adapter_model.safetensors";
  if (!util::file_exists(file)) {
    if (util::file_exists(dir + "/adapter_model.bin"))
      util::fail(dir + "/adapter_model.bin", "pickled adapters are not read", "save the adapter with safe_serialization=True");
    util::fail(file, "no such file", "pass a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)");
  }
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> found;  // module path -> (A, B)
  std::map<std::string, Module<Linear>> by_path;
  for (auto& mod : modules(m)) by_path.emplace(mod.path, mod);
  at::Tensor score;
  for (auto& [name, t] : read_safetensors(file)) {
    const std::string where = file + ": " + name;
    if (name == kScoreKey) {
      if (!m.score_head().defined())
        util::fail(where, "is a reward model's score head (a SEQ_CLS adapter), and this model is a causal LM",
                   "score with `medgpt score --model BASE --adapter DIR`");
      if (t.sizes() != m.score_head().sizes())
        util::fail(where, "shape " + c10::str(t.sizes()) + " does not match the model's " + c10::str(m.score_head().sizes()), "use the base model the adapter was trained on");
      score = t;
      continue;
    }
    if (name.rfind(kPrefix, 0) != 0) util::fail(where, std::string("does not start with ") + kPrefix, "this is not a PEFT causal-LM adapter");
    bool is_a = false;
    std::string path;
    if (!parse_key(name, &path, &is_a)) util::fail(where, "is not a lora_A/lora_B weight", "medgpt loads LoRA weights only (no modules_to_save, DoRA or biases)");
    if (!by_path.count(path))
      util::fail(where, "names no linear layer of this " + m.config().model_type + " model (" + std::to_string(m.config().num_layers) + " layers)",
                 "use the base model the adapter was trained on");
    auto& slot = found[path];
    (is_a ? slot.first : slot.second) = t;
  }
  if (found.empty()) util::fail(file, "holds no LoRA weights", "pass a PEFT LoRA adapter");
  // Check everything (in layer order) before changing the model, against the full layer shapes.
  for (const auto& mod : modules(m)) {
    if (!found.count(mod.path)) continue;
    const std::string& path = mod.path;
    const auto& ab = found.at(path);
    const Linear& lin = *mod.linear;
    const std::string base = file + ": " + kPrefix + path;
    if (!ab.first.defined()) util::fail(base + ".lora_A.weight", "missing (lora_B is there)", "the adapter file is incomplete");
    if (!ab.second.defined()) util::fail(base + ".lora_B.weight", "missing (lora_A is there)", "the adapter file is incomplete");
    const Placement p = placement(lin);
    const std::int64_t in = p.in, out = p.out;
    const auto& A = ab.first;
    const auto& B = ab.second;
    if (A.dim() != 2 || A.size(1) != in)
      util::fail(base + ".lora_A.weight", "shape " + c10::str(A.sizes()) + " does not fit a layer of input size " + std::to_string(in),
                 "use the base model the adapter was trained on");
    if (B.dim() != 2 || B.size(0) != out || B.size(1) != A.size(0))
      util::fail(base + ".lora_B.weight",
                 "shape " + c10::str(B.sizes()) + " does not match [" + std::to_string(out) + ", " + std::to_string(A.size(0)) + "]",
                 "use the base model the adapter was trained on");
  }
  if (m.score_head().defined() && !score.defined())
    util::fail(file, "holds no " + std::string(kScoreKey) + " for this reward model", "pass the adapter of a reward model (medgpt train --stage rm --lora.enabled)");
  m.set_requires_grad(false);
  remove_lora(m);
  if (score.defined()) {
    at::NoGradGuard no_grad;
    m.score_head().copy_(score);
    m.score_head().requires_grad_(true);
  }
  std::set<std::string> names;
  for (const auto& [path, ab] : found) {
    const auto& mod = by_path.at(path);
    const double* ap = pattern_value(c.alpha_pattern, path);
    const Placement p = placement(*mod.linear);
    auto a = std::make_shared<LoraAdapter>();
    a->A = tp_shard(ab.first, p.a_dim, tp_rank(m), tp_size(m)).to(dtype).contiguous().requires_grad_(true);
    a->B = tp_shard(ab.second, p.b_dim, tp_rank(m), tp_size(m)).to(dtype).contiguous().requires_grad_(true);
    a->scale = c.scale_for(a->A.size(0), ap ? *ap : c.alpha);
    a->dropout = c.dropout;
    place(*a, *mod.linear);
    mod.linear->lora = std::move(a);
    names.insert(mod.name);
  }
  c.target_modules.clear();
  for (const auto& n : lora_module_names())
    if (names.count(n)) c.target_modules.push_back(n);
  c.dtype = dtype;
  return c;
}

void merge_lora(Transformer& m) {
  at::NoGradGuard no_grad;
  for (auto& mod : modules(m)) {
    Linear& l = *mod.linear;
    if (!l.lora) continue;
    if (l.nf4) util::fail(mod.path, "cannot merge an adapter into an NF4-quantized weight", "load the base model unquantized to merge");
    const LoraAdapter& a = *l.lora;
    const at::ScalarType f = upcast(l.weight.scalar_type());
    const at::Tensor delta = at::matmul(a.B.to(f), a.A.to(f)) * a.scale;
    l.weight.copy_((l.weight.to(f) + delta).to(l.weight.scalar_type()));
    l.lora.reset();
  }
}

}  // namespace medgpt::model
