// `medgpt train --stage pt|sft`: the model (a Hugging Face folder, a medgpt checkpoint, or a
// config.json from scratch), full fine-tuning or LoRA/QLoRA, the data (prepared .h5 corpora, or raw
// files prepared once and cached under OUT/data/), then train::Trainer; OUT/final/ at the end.
// Everything that can be wrong with the set-up is checked before the first step.
#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "align/reference_logps.hpp"
#include "align/stage.hpp"
#include "app/bounded_value.hpp"
#include "app/command.hpp"
#include "app/prepare_corpus.hpp"
#include "data/corpus.hpp"
#include "data/readers/readers.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "parallel/agreement.hpp"
#include "parallel/grid.hpp"
#include "parallel/pipeline_schedule.hpp"
#include "model/checkpoint.hpp"
#include "model/commit_marker.hpp"
#include "model/lora.hpp"
#include "model/nf4.hpp"
#include "model/safetensors.hpp"
#include "model/transformer.hpp"
#include "train/flat_params.hpp"
#include "train/memory_stats.hpp"
#include "train/run_checkpoint.hpp"
#include "train/schedule.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/signals.hpp"

namespace medgpt::app {

namespace {

namespace fs = std::filesystem;

bool is_corpus(const std::string& path) { return fs::path(path).extension() == ".h5"; }

// OUT/model-files/: config.json (vocabulary after any resize, dtype) and the tokenizer files that
// every checkpoint and the final model carry.
void write_model_files(const std::string& dir, const std::string& model_dir, const std::string& tokenizer_dir,
                       const model::ModelConfig& config, const std::string& dtype_label) {
  fs::create_directories(dir);
  if (!model_dir.empty()) model::copy_side_files(model_dir, dir);
  if (!tokenizer_dir.empty() && tokenizer_dir != model_dir) model::copy_tokenizer_files(tokenizer_dir, dir);
  nlohmann::ordered_json c = config.raw;
  c["vocab_size"] = config.vocab_size;
  util::write_file_atomic(dir + "/config.json", c.dump(2) + "\n");
  model::set_config_dtype(dir, dtype_label);
}

std::string tokenizer_dir_of(const std::string& path) {
  return util::is_directory(path) ? path : fs::path(path).parent_path().string();
}

// A corpus for `kind` from --data.train/--data.valid: a prepared .h5, or raw files prepared into
// OUT/data/<kind>-<key>.h5, keyed by the corpus format, the sources' sha256, the tokenizer and the
// options (a cache written by an older medgpt is prepared again, not refused).
std::string resolve_corpus(parallel::Comm& world, const std::vector<std::string>& inputs, PrepareOptions o, const std::string& tok_path,
                           const std::string& template_name, const std::string& out, const std::string& option) {
  if (inputs.size() == 1 && is_corpus(inputs[0])) {
    parallel::root_decides(world, [&] {
      if (!util::file_exists(inputs[0])) util::fail(option, inputs[0] + ": no such corpus", "run medgpt prepare, or pass the raw files");
      return true;
    });
    return inputs[0];
  }
  for (const auto& in : inputs)
    if (is_corpus(in)) util::fail(option, in + " is a prepared corpus mixed with other inputs", "pass one .h5 corpus, or raw files only");
  const std::vector<std::string> files = data::expand_record_inputs(inputs, o.kind);
  std::string key = "v" + std::to_string(data::kCorpusFormatVersion) + "|" + data::to_string(o.kind) + "|" + util::sha256_file(tok_path) + "|" + template_name + "|" +
                    std::to_string(o.max_length) + "|" + std::to_string(o.block_size) + "|" + o.validation_split + "|" +
                    std::to_string(o.seed) + "|" + std::to_string(o.train_on_inputs) + "|" + data::to_string(o.doc_sep);
  for (const auto& f : files) key += "|" + fs::path(f).filename().string() + ":" + util::sha256_file(f);
  const std::string path = out + "/data/" + data::to_string(o.kind) + "-" + util::sha256_hex(key).substr(0, 16) + ".h5";
  if (parallel::root_decides(world, [&] { return util::file_exists(path); })) {
    util::log("data: reusing " + path + " (prepared earlier from the same sources)");
    return path;
  }
  parallel::on_root(world, [&] { fs::create_directories(out + "/data"); });
  prepare_corpus(world, o, inputs, tok_path, template_name, path);
  world.barrier();
  return path;
}

// The reference log-prob cache of --dpo.precompute_ref_log_probs, keyed by what determines the
// values: the corpora, the starting model (its files, or a config and the init seed), the
// precision, the row length and LoRA.
std::string reference_cache_path(const std::string& out, const std::string& train, const std::string& valid, const std::string& model_path,
                                 const std::string& model_config, std::uint64_t seed, const std::string& precision, std::size_t seq_len, bool lora) {
  std::string key = precision + "|" + std::to_string(seq_len) + "|" + std::to_string(lora) + "|";
  key += model_path.empty() ? fs::absolute(model_config).string() + "|" + util::sha256_file(model_config) + "|seed " + std::to_string(seed)
                            : fs::absolute(model_path).string();
  for (const std::string& path : {train, valid})
    if (!path.empty()) key += "|" + fs::absolute(path).string() + ":" + std::to_string(fs::file_size(path)) + ":" +
                              std::to_string(fs::last_write_time(path).time_since_epoch().count());
  if (!model_path.empty())
    for (const auto& e : fs::directory_iterator(model_path))
      if (e.is_regular_file()) key += "|" + e.path().filename().string() + ":" + std::to_string(e.file_size()) + ":" +
                                      std::to_string(e.last_write_time().time_since_epoch().count());
  return out + "/data/ref-logps-" + util::sha256_hex(key).substr(0, 16) + ".h5";
}

void check_tokens(const data::TokenArrays& c, std::int64_t vocab, const std::string& path) {
  std::uint32_t top = 0;
  for (std::uint32_t t : c.tokens) top = std::max(top, t);
  if (!c.tokens.empty() && static_cast<std::int64_t>(top) >= vocab)
    util::fail(path, "holds token id " + std::to_string(top) + " but the model's vocabulary has " + std::to_string(vocab) + " rows",
               "prepare the data with the model's tokenizer, or pass --model.resize_vocab auto after a tokenizer extension");
}

int run_train(const po::variables_map& vm) {
  // First thing: a SIGUSR1/SIGTERM forwarded by mpirun during start-up must not kill the rank.
  util::install_stop_signal_handlers();
  train::count_tensor_memory();  // the peak of live tensors, reported at the end
  // ---- options (checked before any work) ----
  const align::Stage st = align::parse_stage(vm, vm["train.micro_batch_size"].as<std::int64_t>());
  const std::string& stage = st.name;
  // Preference stages train on sft-kind rows made from their corpus (data/pair_rows.hpp).
  const data::Kind kind = st.rows;
  const bool aligning = st.source != kind;
  const std::string out = fs::absolute(required(vm, "output-dir")).lexically_normal().string();
  const std::string precision = vm["train.precision"].as<std::string>();
  if (precision != "fp32" && precision != "bf16") util::fail("--train.precision", "\"" + precision + "\" is not fp32 or bf16", "use fp32 or bf16");
  const at::ScalarType dtype = precision == "bf16" ? at::kBFloat16 : at::kFloat;
  const bool qlora = flag(vm, "qlora.enabled"), lora = qlora || flag(vm, "lora.enabled");
  const std::string model_path = vm.count("model.path") ? vm["model.path"].as<std::string>() : "";
  const std::string model_config = vm.count("model.config") ? vm["model.config"].as<std::string>() : "";
  if (model_path.empty() == model_config.empty())
    util::fail("--model.path / --model.config", "give exactly one", "--model.path for a Hugging Face folder or checkpoint, --model.config for a new model");
  if (!model_path.empty() && !util::is_directory(model_path))
    util::fail("--model.path", model_path + ": no such folder", "pass a Hugging Face model folder, a medgpt checkpoint or the previous stage's final/");
  if (lora && !model_config.empty()) util::fail("--lora.enabled", "LoRA needs a pretrained base", "pass --model.path, or train fully");
  const std::string tokenizer_path = vm.count("model.tokenizer") ? vm["model.tokenizer"].as<std::string>() : model_path;
  if (tokenizer_path.empty()) util::fail("--model.tokenizer", "missing for a model built from --model.config", "pass the tokenizer folder (e.g. inputs/tokenizer)");
  if (!vm.count("data.train")) util::fail("--data.train", "missing", "pass a prepared .h5 corpus or raw files/folders");
  const std::string attention = vm["model.attn_implementation"].as<std::string>();
  if (attention != "eager" && attention != "chunked")
    util::fail("--model.attn_implementation", "is \"" + attention + "\"", "use eager (the [T, T] scores) or chunked (memory linear in T, for long sequences)");
  const int tp = vm["parallel.tp"].as<int>(), pp = vm["parallel.pp"].as<int>();
  if (pp > 1 && !st.pipelined)
    util::fail("--parallel.pp", "--stage " + stage + " does not run over pipeline stages (its KL term runs extra forward passes of two models)",
               "use --parallel.pp 1 (tp and dp work)");
  if (pp > 1 && st.runs_reference())
    util::fail("--parallel.pp", "--stage " + stage + " runs its reference model during training, which does not run over pipeline stages",
               "add --dpo.precompute_ref_log_probs (the reference's log-probs computed once, through the stages, before training)");
  const std::string resume = vm["resume"].as<std::string>();

  parallel::Grid grid(tp, pp);
  parallel::Comm& world = grid.world();
  train::TrainerOptions to;
  to.output_dir = out;
  to.micro_batch_size = vm["train.micro_batch_size"].as<std::int64_t>();
  to.global_batch_size = vm["train.global_batch_size"].as<std::int64_t>();
  to.max_steps = vm["train.max_steps"].as<std::int64_t>();
  to.epochs = vm["train.epochs"].as<double>();
  to.adam.lr = vm["train.learning_rate"].as<double>();
  to.adam.beta1 = vm["train.adam_beta1"].as<double>();
  to.adam.beta2 = vm["train.adam_beta2"].as<double>();
  to.adam.eps = vm["train.adam_epsilon"].as<double>();
  to.adam.weight_decay = vm["train.weight_decay"].as<double>();
  to.schedule = vm["train.lr_scheduler_type"].as<std::string>();
  to.warmup_steps = vm["train.warmup_steps"].as<std::int64_t>();
  to.warmup_ratio = vm["train.warmup_ratio"].as<double>();
  to.min_lr_rate = vm["train.min_lr_rate"].as<double>();
  to.max_grad_norm = vm["train.max_grad_norm"].as<double>();
  to.zero = vm["train.zero"].as<int>();
  train::check_zero_stage(to.zero);
  train::check_zero_layout(to.zero, pp, qlora, st.runs_reference() && !lora);
  to.logging_steps = vm["train.logging_steps"].as<std::int64_t>();
  to.eval_steps = vm["train.eval_steps"].as<std::int64_t>();
  to.save_steps = vm["train.save_steps"].as<std::int64_t>();
  to.eval_on_start = flag(vm, "train.eval_on_start");
  to.max_bad_steps = vm["train.max_bad_steps"].as<std::int64_t>();
  to.seed = vm["train.seed"].as<std::uint64_t>();
  to.peak_flops = vm["train.peak_flops"].as<double>();
  to.compute_dtype = dtype;
  to.preempt_at_step = vm["train.preempt_at_step"].as<std::int64_t>();
  to.save_final = flag(vm, "train.save_final");
  train::check_trainer_options(to, grid.dp_size());  // before any long work
  // Another run's checkpoints in the output dir: say so now, not after preparing data.
  // Which checkpoint to resume from is decided on rank 0 and broadcast: ranks must not resume from
  // different steps because their views of a shared filesystem differ.
  const std::string resume_dir = parallel::root_decides(world, [&] {
    const std::string dir = resume == "auto" ? train::newest_checkpoint(out) : resume == "never" ? "" : resume;
    if (!dir.empty()) {
      if (!model::is_committed(dir)) util::fail("--resume", dir + " is not a committed checkpoint", "pass a checkpoints/step-* folder with COMMITTED, or auto");
      if (resume != "auto")  // auto verified it already, falling back past damaged ones
        if (const std::string damage = model::verify_checkpoint(dir); !damage.empty())
          util::fail("--resume", dir + " is damaged: " + damage, "pass an intact checkpoint, or --resume auto for the newest intact one");
      train::RunLayout known{stage, lora ? "lora" : "full", precision, grid.tp_size(), grid.pp_size(), grid.dp_size(), to.zero, 0};
      known.global_batch = to.global_batch_size;
      train::check_resumable(dir, known, /*warn=*/false);
    }
    return dir;
  });
  // Starting over, or from an older step: the abandoned steps must not be resumed later.
  parallel::on_root(world, [&] {
    const int moved = train::discard_checkpoints_after(out, resume_dir.empty() ? -1 : train::checkpoint_step(resume_dir));
    if (moved > 0) util::log("moved " + std::to_string(moved) + " checkpoints of the abandoned run to " + out + "/checkpoints-discarded-*");
  });
  const data::Tokenizer tok = data::Tokenizer::load(tokenizer_path);

  // ---- model ----
  model::ModelConfig config = model::ModelConfig::load(model_path.empty() ? model_config : model_path);
  // A reward model made from a causal LM: the LM head gives way to a new score head.
  const bool new_score_head = st.reward_model && config.num_labels == 0;
  if (new_score_head) config.make_reward_model();
  const std::string config_file = model_path.empty() ? model_config : model_path + "/config.json";
  if (!st.reward_model && config.num_labels > 0)
    util::fail(config_file, "is a sequence classifier (reward model), not a causal LM", "--stage " + stage + " trains a causal LM; pass one");
  if (st.reward_model && config.num_labels != 1)
    util::fail(config_file, "is a classifier with " + std::to_string(config.num_labels) + " labels", "a reward model has one");
  // Built and loaded in fp32 whatever the precision: the fp32 master weights start exact; the bf16
  // compute copy is made once the master exists.
  // This rank's pipeline stage: its layers, the embedding on the first, the head on the last.
  const std::vector<int> layers = parallel::stage_layers(static_cast<int>(config.num_layers), grid.pp_size(), vm["parallel.pp_layers"].as<std::string>());
  model::Transformer m(config, at::kFloat, at::kCPU, grid.tp_size() > 1 ? &grid.tp() : nullptr, model::StageView::of(layers, grid.pp_rank()));
  const std::uint64_t seed = to.seed;
  if (!model_config.empty()) m.init_random(seed);
  else {
    model::NamedTensors weights = model::read_model_weights(model_path);
    if (new_score_head) weights.emplace_back("score.weight", align::new_score_weight(config, seed));
    m.load(weights, model_path);
  }
  const std::string resize = vm["model.resize_vocab"].as<std::string>();
  if (!resize.empty() && resize != "0") {
    const std::int64_t want = resize == "auto" ? static_cast<std::int64_t>(tok.max_id()) + 1 : std::stoll(resize);
    if (want != m.config().vocab_size) {
      util::log("resizing the vocabulary " + std::to_string(m.config().vocab_size) + " -> " + std::to_string(want));
      m.resize_vocab(want);
    }
  }
  config = m.config();
  model::LoraConfig lora_config;
  if (lora) {
    lora_config.r = vm["lora.r"].as<std::int64_t>();
    lora_config.alpha = vm["lora.alpha"].as<double>();
    lora_config.dropout = vm["lora.dropout"].as<double>();
    lora_config.rslora = flag(vm, "lora.rslora");
    lora_config.target_modules = model::parse_lora_targets(vm["lora.target_modules"].as<std::string>());
    lora_config.base_model_name_or_path = model_path;
    if (qlora) model::quantize_nf4(m, flag(vm, "qlora.double_quant"));
    model::apply_lora(m, lora_config, seed);
    model::set_lora_training(m, true);
  } else {
    m.set_requires_grad(true);
  }
  m.set_gradient_checkpointing(flag(vm, "train.gradient_checkpointing"));
  m.set_chunked_attention(attention == "chunked");

  // ---- data ----
  PrepareOptions prep;
  prep.kind = st.source;
  prep.max_prompt_length = vm["data.max_prompt_length"].as<std::size_t>();
  prep.max_length = vm["data.max_length"].as<std::size_t>();
  prep.block_size = vm["data.block_size"].as<std::size_t>();
  prep.train_on_inputs = flag(vm, "data.train_on_inputs");
  prep.validation_split = vm["data.validation_split"].as<std::string>();
  prep.seed = seed;
  prep.skip_bad = flag(vm, "data.skip_bad_records");
  const std::string tok_file = tok.source();
  const std::string template_name = vm["data.template"].as<std::string>();
  const std::string train_path = resolve_corpus(world, vm["data.train"].as<std::vector<std::string>>(), prep, tok_file, template_name, out, "--data.train");
  auto read_split = [&](const std::string& path, const std::string& split, data::CorpusInfo* info) { return align::read_stage_rows(st, path, split, info); };
  data::CorpusInfo info;
  data::TokenArrays train_set = read_split(train_path, "", &info);
  check_tokens(train_set, config.vocab_size, train_path);
  data::TokenArrays valid_set;
  std::string valid_path;
  if (vm.count("data.valid")) {
    prep.validation_split = "0";
    valid_path = resolve_corpus(world, vm["data.valid"].as<std::vector<std::string>>(), prep, tok_file, template_name, out, "--data.valid");
    valid_set = read_split(valid_path, "", nullptr);
  } else if (info.counts.value("samples_valid", 0) > 0) {
    valid_path = train_path;
    valid_set = read_split(train_path, "valid", nullptr);
  }
  check_tokens(valid_set, config.vocab_size, valid_path);
  train::TrainData td;
  td.train = &train_set;
  td.valid = valid_path.empty() || data::sample_count(valid_set, kind) == 0 ? nullptr : &valid_set;
  td.kind = kind;
  td.seq_len = kind == data::Kind::Pt ? info.counts.value("block_size", prep.block_size) : prep.max_length;
  td.packing = flag(vm, "data.packing") && !aligning;
  td.group = st.group;
  // Padding is masked out: any id the embedding has will do.
  td.pad_id = tok.pad_id().value_or(tok.eos_id().value_or(0));
  if (td.pad_id >= config.vocab_size) td.pad_id = 0;

  // ---- the run ----
  const std::string dtype_label = dtype == at::kBFloat16 ? "bfloat16" : "float32";
  const std::string files_dir = out + "/model-files";
  parallel::on_root(world, [&] { write_model_files(files_dir, model_path, tokenizer_dir_of(tokenizer_path), config, dtype_label); });

  model::NamedTensors trainable = lora ? model::lora_parameters(m) : m.named_parameters();
  std::vector<int> split_dims;
  for (const auto& [name, t] : trainable) split_dims.push_back(lora ? model::lora_split_dim(m, name) : m.split_dim(name));
  train::FlatParams flat(trainable, split_dims, grid.dp_size(), to.adam.decay_all, /*full_grads=*/to.zero < 2);
  to.tied_embeddings = grid.pp_size() > 1 && m.tied_head();
  if (m.holds_head_copy()) flat.mark_copy("model.embed_tokens.weight");
  if (dtype != at::kFloat) m.set_compute_dtype(dtype);
  // DPO's and KTO's reference: a frozen copy of the starting model, or (LoRA) the base under the
  // adapters; none when DPO's reference log-probs are precomputed.
  std::unique_ptr<model::Transformer> reference;
  if (st.reference && st.dpo.precompute_ref_log_probs) {
    const std::string cache = reference_cache_path(out, train_path, valid_path, model_path, model_config, seed, precision, td.seq_len, lora);
    const std::size_t rows = static_cast<std::size_t>(to.micro_batch_size) * st.group;
    align::attach_reference_logps(cache, train_set, td.valid ? &valid_set : nullptr, m, td.seq_len, td.pad_id, rows, grid);
  } else if (st.reference && !lora) {
    reference = std::make_unique<model::Transformer>(m.config(), at::kFloat, at::kCPU, grid.tp_size() > 1 ? &grid.tp() : nullptr);
    at::NoGradGuard no_grad;
    auto src = m.named_parameters(), dst = reference->named_parameters();
    for (std::size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second);
    if (dtype != at::kFloat) reference->set_compute_dtype(dtype);
    reference->set_chunked_attention(attention == "chunked");
  }

  const double n_params = static_cast<double>(config.num_parameters());
  to.flops_per_token = ((lora ? 4.0 : 6.0) + st.extra_flops_per_param()) * n_params +
                       12.0 * static_cast<double>(config.num_layers * config.num_heads * config.head_dim) * static_cast<double>(td.seq_len);

  // Trainable elements of the whole model (each stage holds its part, each tp rank its shard of a
  // split tensor; a tied head's copy counts once), the same on every rank and in every layout.
  std::int64_t own_numel = 0;
  for (std::size_t i = 0; i < flat.segments().size(); ++i) {
    const train::FlatSegment& s = flat.segments()[i];
    if (!s.copy) own_numel += s.numel * (split_dims[i] >= 0 ? grid.tp_size() : 1);
  }
  const std::int64_t trainable_numel = parallel::allreduce_int(grid.pp(), own_numel, parallel::ReduceOp::kSum);
  train::RunLayout layout{stage, lora ? "lora" : "full", precision, grid.tp_size(), grid.pp_size(), grid.dp_size(), to.zero, trainable_numel};
  layout.global_batch = to.global_batch_size;
  layout.micro_batch = to.micro_batch_size;
  layout.seq_len = static_cast<std::int64_t>(td.seq_len);
  layout.corpus = train_path;
  layout.corpus_samples = static_cast<std::int64_t>(data::sample_count(train_set, kind));
  layout.corpus_tokens = static_cast<std::int64_t>(train_set.tokens.size());
  train::RunCheckpointer checkpointer(out, grid, layout, split_dims, files_dir, options_text(vm), vm["train.save_total_limit"].as<int>());
  if (!resume_dir.empty()) parallel::root_decides(world, [&] {
      checkpointer.check_compatible(resume_dir);
      return true;
    });
  const std::unique_ptr<train::Objective> objective =
      align::make_objective(st, m, reference.get(), grid, kind == data::Kind::Sft && td.packing, vm["train.neftune_alpha"].as<double>());
  // ZeRO-2/3: gradients (and parameters) sharded over dp, layer by layer.
  std::unique_ptr<train::ZeroUnits> zero;
  if (to.zero >= 2) zero = std::make_unique<train::ZeroUnits>(m, flat, &grid.dp(), to.zero);
  train::Trainer trainer(to, grid, flat, *objective, td, checkpointer, zero.get());

  char buf[400];
  std::snprintf(buf, sizeof buf, "%s: %s %.1fM parameters (%s, %lld trainable), %s; data %s: %zu samples, valid %zu; %s",
                stage.c_str(), config.model_type.c_str(), n_params / 1e6, lora ? (qlora ? "QLoRA" : "LoRA") : "full",
                static_cast<long long>(trainable_numel), precision.c_str(), train_path.c_str(), data::sample_count(train_set, kind),
                td.valid ? data::sample_count(valid_set, kind) : 0, grid.describe().c_str());
  util::log(buf);

  const train::TrainResult r = trainer.run(resume_dir);
  if (r == train::TrainResult::kPreempted) return util::kPreemptedExitCode;
  if (r == train::TrainResult::kTooManyBadSteps)
    util::fail("train", std::to_string(to.max_bad_steps) + " steps in a row had a non-finite loss or gradient; stopped with checkpoint " +
               trainer.last_checkpoint(), "lower --train.learning_rate, check the data, or use --train.precision fp32");

  if (!to.save_final) return 0;
  // ---- OUT/final: a Hugging Face folder, or a PEFT adapter for LoRA ----
  const std::string final_dir = out + "/final", tmp = out + "/final.partial";
  if (lora) {
    parallel::on_root(world, [&] { fs::remove_all(tmp); });
    if (zero) zero->gather_trainable();  // ZeRO-3: the adapters, whole (collective over dp)
    if (grid.dp_rank() == 0) model::save_lora(m, lora_config, tmp, &grid.pp());  // collective over tp and pp
  }
  parallel::on_root(world, [&] {
    if (lora) {
      model::copy_tokenizer_files(files_dir, tmp);
    } else {  // the last checkpoint's fp32 master, in the training precision
      fs::remove_all(tmp);
      model::export_hf(trainer.last_checkpoint(), tmp, dtype, std::int64_t{5} << 30);
    }
    fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
    util::log("final model: " + final_dir + "; metrics: " + out + "/metrics.jsonl");
  });
  return 0;
}

}  // namespace

void register_train_command(std::vector<Command>& out) {
  out.push_back({"train", "train a stage (" + align::stage_list() + ") with data/tensor parallelism, checkpoints, preemption and resume",
                 [](po::options_description& d) {
                   d.add_options()
                       ("stage", po::value<std::string>(), (align::stage_list() + " (required)").c_str())
                       ("output-dir", po::value<std::string>(), "run folder: metrics.jsonl, tb/, checkpoints/, final/ (required)")
                       ("resume", po::value<std::string>()->default_value("auto"), "auto (newest committed checkpoint in the output dir, if any), never, or a checkpoint folder")
                       ("model.path", po::value<std::string>(), "Hugging Face model folder, medgpt checkpoint, or a previous stage's final/")
                       ("model.config", po::value<std::string>(), "config.json of a new model trained from scratch (seeded init)")
                       ("model.tokenizer", po::value<std::string>(), "tokenizer folder (default: --model.path)")
                       ("model.resize_vocab", po::value<std::string>()->default_value(""), "auto (the tokenizer's size) or a vocabulary size, after a tokenizer extension")
                       ("model.attn_implementation", po::value<std::string>()->default_value("eager"),
                        "eager ([T, T] scores, as transformers' eager) or chunked (FlashAttention's online softmax: memory linear in T)")
                       ("data.train", po::value<std::vector<std::string>>()->multitoken(), "prepared .h5 corpus, or raw files/folders (prepared and cached in OUT/data)")
                       ("data.valid", po::value<std::vector<std::string>>()->multitoken(), "validation corpus or raw files (default: the corpus' valid split)")
                       ("data.template", po::value<std::string>()->default_value("qwen"), "chat template for raw SFT data")
                       ("data.max_length", at_least<std::size_t>(1)->default_value(1024), "sft: tokens per row (sequence length)")
                       ("data.block_size", at_least<std::size_t>(1)->default_value(1024), "pt: tokens per block, for raw input")
                       ("data.validation_split", po::value<std::string>()->default_value("0"), "raw input: held-out samples, a fraction or a count")
                       ("data.max_prompt_length", non_negative<std::size_t>()->default_value(0), "pref/kto raw input: prompt tokens kept (the end); 0 = no limit")
                       ("data.train_on_inputs", po::value<bool>()->default_value(false)->implicit_value(true), "sft raw input: loss on prompts too")
                       ("data.packing", po::value<bool>()->default_value(true)->implicit_value(true), "sft: several samples per row (attention kept apart)")
                       ("data.skip_bad_records", po::value<bool>()->default_value(false)->implicit_value(true), "raw input: skip bad records")
                       ("lora.enabled", po::value<bool>()->default_value(false)->implicit_value(true), "train LoRA adapters on a frozen base")
                       ("lora.r", at_least<std::int64_t>(1)->default_value(8), "LoRA rank")
                       ("lora.alpha", positive()->default_value(16.0), "LoRA alpha (scale alpha / r)")
                       ("lora.dropout", in_range(0.0, 1.0, /*hi_open=*/true)->default_value(0.05), "dropout on the adapter input")
                       ("lora.target_modules", po::value<std::string>()->default_value("all"), "all, or e.g. q_proj,v_proj")
                       ("lora.rslora", po::value<bool>()->default_value(false)->implicit_value(true), "rank-stabilised scale alpha / sqrt(r)")
                       ("qlora.enabled", po::value<bool>()->default_value(false)->implicit_value(true), "QLoRA: NF4 base + LoRA adapters")
                       ("qlora.double_quant", po::value<bool>()->default_value(true)->implicit_value(true), "quantize the NF4 block scales too")
                       ("train.micro_batch_size", po::value<std::int64_t>()->default_value(1), "rows per micro-batch per rank")
                       ("train.global_batch_size", po::value<std::int64_t>()->default_value(8), "rows per optimizer step over all ranks (accumulation = global / (micro x dp))")
                       ("train.max_steps", non_negative<std::int64_t>()->default_value(0), "optimizer steps (0: from --train.epochs)")
                       ("train.epochs", non_negative<double>()->default_value(1.0), "passes over the data when max_steps is 0")
                       ("train.learning_rate", po::value<double>()->default_value(5e-5), "peak learning rate")
                       ("train.weight_decay", non_negative<double>()->default_value(0.0), "decoupled weight decay (not on norms and biases)")
                       ("train.adam_beta1", in_range(0.0, 1.0, /*hi_open=*/true)->default_value(0.9), "AdamW beta1")
                       ("train.adam_beta2", in_range(0.0, 1.0, /*hi_open=*/true)->default_value(0.999), "AdamW beta2")
                       ("train.adam_epsilon", non_negative<double>()->default_value(1e-8), "AdamW epsilon")
                       ("train.lr_scheduler_type", po::value<std::string>()->default_value("linear"), "constant, constant_with_warmup, linear, cosine, cosine_with_min_lr")
                       ("train.warmup_steps", non_negative<std::int64_t>()->default_value(0), "warmup steps (wins over the ratio)")
                       ("train.warmup_ratio", in_range(0.0, 1.0)->default_value(0.0), "warmup as a fraction of the steps")
                       ("train.min_lr_rate", in_range(0.0, 1.0)->default_value(0.0), "cosine_with_min_lr: floor as a fraction of the peak")
                       ("train.max_grad_norm", non_negative<double>()->default_value(1.0), "global-norm clipping (0: off)")
                       ("train.precision", po::value<std::string>()->default_value("fp32"), "fp32, or bf16 (bf16 compute, fp32 master weights and optimizer)")
                       ("train.gradient_checkpointing", po::value<bool>()->default_value(false)->implicit_value(true), "recompute each block in the backward pass")
                       ("train.neftune_alpha", non_negative<double>()->default_value(0.0), "NEFTune noise alpha (0: off)")
                       ("train.zero", po::value<int>()->default_value(0),
                        "ZeRO stage over data-parallel ranks: 1 optimizer state sharded, 2 gradients too, 3 parameters too (no rank holds the whole model)")
                       ("train.logging_steps", po::value<std::int64_t>()->default_value(1), "metrics.jsonl row every N steps")
                       ("train.eval_steps", non_negative<std::int64_t>()->default_value(0), "validation loss every N steps (0: never; also at the end when > 0)")
                       ("train.eval_on_start", po::value<bool>()->default_value(false)->implicit_value(true), "evaluate the starting model first (a step-0 row)")
                       ("train.save_steps", non_negative<std::int64_t>()->default_value(0), "checkpoint every N steps (0: only at the end and on preemption)")
                       ("train.save_total_limit", non_negative<int>()->default_value(0), "keep the newest N checkpoints (0: all)")
                       ("train.max_bad_steps", po::value<std::int64_t>()->default_value(10), "stop after N non-finite steps in a row")
                       ("train.seed", non_negative<std::uint64_t>()->default_value(42), "seed of the init, data order, and noise")
                       ("train.peak_flops", non_negative<double>()->default_value(0.0), "FLOP/s ceiling for MFU (0: measure once and cache)")
                       ("train.save_final", po::value<bool>()->default_value(true)->implicit_value(true),
                        "false: no final checkpoint and no final/ folder (benchmarks)")
                       ("train.preempt_at_step", non_negative<std::int64_t>()->default_value(0), "testing aid: act as if SIGUSR1 arrived after this step (checkpoint, exit 99)")
                       ("parallel.tp", at_least(1)->default_value(1), "tensor-parallel ranks")
                       ("parallel.pp", at_least(1)->default_value(1), "pipeline stages (1F1B over the accumulation micro-batches; every stage but kto, dpo with --dpo.precompute_ref_log_probs)")
                       ("parallel.pp_layers", po::value<std::string>()->default_value(""), "layers per pipeline stage, e.g. 7,9 (default: an even split)");
                   align::add_stage_options(d);
                 },
                 run_train});
}

}  // namespace medgpt::app
