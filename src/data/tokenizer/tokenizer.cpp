#include "data/tokenizer/tokenizer.hpp"

#include <sys/stat.h>

#include "data/tokenizer/byte_level.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/utf8.hpp"

namespace medgpt::data {

namespace {

// "<|x|>" or {"content": "<|x|>", ...} -> the content; null/absent -> nullopt.
std::optional<std::string> token_content(const nlohmann::ordered_json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// transformers' clean_up_tokenization (applied when clean_up_tokenization_spaces is true).
std::string clean_up_tokenization(std::string s) {
  static const std::pair<const char*, const char*> rules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : rules) {
    const std::string f(from), t(to);
    std::string out;
    std::size_t pos = 0, hit;
    while ((hit = s.find(f, pos)) != std::string::npos) {
      out.append(s, pos, hit - pos);
      out += t;
      pos = hit + f.size();
    }
    out.append(s, pos, std::string::npos);
    s.swap(out);
  }
  return s;
}

void check_decoder(const nlohmann::json& d, const std::string& where) {
  if (d.is_null()) return;
  const std::string type = d.value("type", "");
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    for (const auto& x : d.at("decoders")) check_decoder(x, where);
    return;
  }
  util::fail(where, "decoder: unsupported type \"" + type + "\"", "medgpt reads byte-level BPE tokenizers (ByteLevel decoder)");
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) {
  std::string file = path, dir;
  if (util::is_directory(path)) {
    dir = path;
    file = path + "/tokenizer.json";
    if (!util::file_exists(file))
      util::fail(path, "no tokenizer.json in this folder", "pass a Hugging Face model folder or a tokenizer.json file");
  } else {
    if (!util::file_exists(path))
      util::fail(path, "no such file or folder", "pass a tokenizer.json file or a folder holding one");
    const auto slash = path.find_last_of('/');
    dir = slash == std::string::npos ? "." : path.substr(0, slash);
  }
  const nlohmann::json j = util::read_json_file(file);
  if (!j.is_object()) util::fail(file, "not a JSON object", "pass a Hugging Face tokenizer.json");
  if (!j.contains("model")) util::fail(file, "model: missing", "pass a Hugging Face tokenizer.json");

  Tokenizer t;
  t.source_ = file;
  // The parts name what they refuse; a shape none of them checks (a missing key, a wrong type deep
  // inside) still ends as one line naming the file.
  try {
    t.read_parts(j, file);
  } catch (const nlohmann::json::exception& e) {
    util::fail(file, std::string("not a tokenizer.json medgpt can read: ") + e.what(), "pass a Hugging Face tokenizer.json");
  }

  const std::string config_file = dir + "/tokenizer_config.json";
  if (util::file_exists(config_file))
    t.config_ = nlohmann::ordered_json::parse(util::read_json_file(config_file).dump());
  try {
    t.apply_config(config_file);
  } catch (const nlohmann::json::exception& e) {
    util::fail(config_file, std::string("not a tokenizer_config.json medgpt can read: ") + e.what(), "fix or remove the file");
  }
  return t;
}

void Tokenizer::read_parts(const nlohmann::json& j, const std::string& file) {
  Tokenizer& t = *this;
  t.model_ = Bpe::from_json(j["model"], file);
  t.added_ = AddedVocabulary::from_json(j.contains("added_tokens") ? j["added_tokens"] : nlohmann::json(), file);
  t.added_.assign_ids_like_hf(t.model_);
  t.norm_ = Normalizer::from_json(j.contains("normalizer") ? j["normalizer"] : nlohmann::json(), file);
  t.pre_ = PreTokenizer::from_json(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : nlohmann::json(), file);
  check_decoder(j.contains("decoder") ? j["decoder"] : nlohmann::json(), file);
  if (j.contains("post_processor")) t.post_processor_ = nlohmann::ordered_json::parse(j["post_processor"].dump());
}

Tokenizer Tokenizer::from_parts(Bpe model, AddedVocabulary added, Normalizer norm, std::unique_ptr<PreTokenizer> pre,
                                nlohmann::ordered_json config, nlohmann::ordered_json post_processor) {
  Tokenizer t;
  t.model_ = std::move(model);
  t.added_ = std::move(added);
  t.norm_ = norm;
  t.pre_ = std::move(pre);
  t.post_processor_ = post_processor.is_null() ? nlohmann::ordered_json{{"type", "ByteLevel"}, {"add_prefix_space", false},
                                                                        {"trim_offsets", false}, {"use_regex", false}}
                                               : std::move(post_processor);
  t.config_ = std::move(config);
  t.apply_config("tokenizer_config.json");
  return t;
}

void Tokenizer::apply_config(const std::string& where) {
  auto id_of = [&](const char* key) -> std::optional<TokenId> {
    auto content = token_content(config_, key);
    if (!content) return std::nullopt;
    const TokenId id = token_to_id(*content);
    if (id < 0) util::fail(where, std::string(key) + ": \"" + *content + "\" is not a token of this tokenizer", "fix tokenizer_config.json");
    return id;
  };
  bos_ = id_of("bos_token");
  eos_ = id_of("eos_token");
  pad_ = id_of("pad_token");
  clean_up_ = config_.value("clean_up_tokenization_spaces", false);
  chat_template_.clear();
  if (config_.contains("chat_template")) {
    const auto& ct = config_["chat_template"];
    if (ct.is_string()) chat_template_ = ct.get<std::string>();
    else if (ct.is_array())
      for (const auto& e : ct)
        if (e.value("name", "") == "default") chat_template_ = e.value("template", "");
  }

  // Special tokens added by encode(add_special_tokens=true). A TemplateProcessing post-processor
  // says it explicitly; otherwise transformers' add_bos_token/add_eos_token rule applies (default:
  // BOS when the tokenizer has one, except GPT-2/Qwen-style classes that never add it).
  prefix_.clear();
  suffix_.clear();
  bool templated = false;
  std::vector<nlohmann::ordered_json> procs;
  if (post_processor_.is_object()) {
    if (post_processor_.value("type", "") == "Sequence")
      for (const auto& p : post_processor_["processors"]) procs.push_back(p);
    else
      procs.push_back(post_processor_);
  }
  for (const auto& p : procs) {
    const std::string type = p.value("type", "");
    if (type == "ByteLevel") continue;
    if (type != "TemplateProcessing")
      util::fail(source_.empty() ? where : source_, "post_processor: unsupported type \"" + type + "\"",
                 "medgpt supports ByteLevel and TemplateProcessing post-processors");
    templated = true;
    bool after = false;
    for (const auto& item : p.at("single")) {
      if (item.contains("Sequence")) {
        after = true;
        continue;
      }
      const std::string name = item.at("SpecialToken").at("id").get<std::string>();
      for (const auto& id : p.at("special_tokens").at(name).at("ids")) (after ? suffix_ : prefix_).push_back(id.get<TokenId>());
    }
  }
  if (!templated) {
    const std::string cls = config_.value("tokenizer_class", "");
    const bool never_bos = cls.rfind("Qwen", 0) == 0 || cls.rfind("GPT2", 0) == 0;
    const bool add_bos = config_.contains("add_bos_token") && config_["add_bos_token"].is_boolean()
                             ? config_["add_bos_token"].get<bool>()
                             : (bos_.has_value() && !never_bos);
    const bool add_eos = config_.value("add_eos_token", false);
    if (add_bos && bos_) prefix_.push_back(*bos_);
    if (add_eos && eos_) suffix_.push_back(*eos_);
  }
}

void Tokenizer::encode_text(std::string_view piece, std::vector<TokenId>& out) const {
  thread_local std::vector<std::string_view> pieces;
  const std::string normalized = norm_.apply(piece);
  auto run_model = [&](std::string_view text) {
    pieces.clear();
    pre_->split(text, pieces);
    for (auto p : pieces) model_.encode_word(p, out);
  };
  if (!added_.has_normalized()) {
    run_model(normalized);
    return;
  }
  std::vector<Segment> segs;
  added_.split(normalized, /*normalized_pass=*/true, segs);
  for (const auto& s : segs) {
    if (s.id >= 0) out.push_back(s.id);
    else run_model(s.text);
  }
}

void Tokenizer::encode(std::string_view text, bool add_special_tokens, std::vector<TokenId>& out) const {
  std::string repaired;
  if (!util::utf8_valid(text)) {
    repaired = util::utf8_lossy(text);
    text = repaired;
  }
  if (add_special_tokens) out.insert(out.end(), prefix_.begin(), prefix_.end());
  std::vector<Segment> segs;
  added_.split(text, /*normalized_pass=*/false, segs);
  for (const auto& s : segs) {
    if (s.id >= 0) out.push_back(s.id);
    else encode_text(s.text, out);
  }
  if (add_special_tokens) out.insert(out.end(), suffix_.begin(), suffix_.end());
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<TokenId> out;
  encode(text, add_special_tokens, out);
  return out;
}

std::string Tokenizer::id_to_token(TokenId id) const {
  if (const AddedToken* a = added_.find(id)) return a->content;
  return model_.token(id);
}

TokenId Tokenizer::token_to_id(const std::string& token) const {
  const TokenId a = added_.id_of(token);
  return a >= 0 ? a : model_.id(token);
}

std::size_t Tokenizer::size() const {
  std::size_t n = model_.vocab_size();
  for (const auto& t : added_.tokens())
    if (model_.token(t.id).empty()) ++n;
  return n;
}

TokenId Tokenizer::max_id() const {
  TokenId m = model_.max_id();
  for (const auto& t : added_.tokens()) m = std::max(m, t.id);
  return m;
}

std::string Tokenizer::token_bytes(TokenId id, bool skip_special_tokens) const {
  const std::string tok = id_to_token(id);
  if (tok.empty()) return {};
  if (skip_special_tokens && added_.is_special(tok)) return {};
  // ByteLevel decoder: a token made only of byte characters becomes those bytes; any other token
  // (e.g. an added token with a space) is taken as its UTF-8 text.
  if (auto raw = ByteLevel::get().decode(tok)) return *raw;
  return tok;
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool skip_special_tokens, std::optional<bool> clean_up) const {
  std::string bytes;
  for (TokenId id : ids) bytes += token_bytes(id, skip_special_tokens);
  std::string text = util::utf8_lossy(bytes);
  return clean_up.value_or(clean_up_) ? clean_up_tokenization(std::move(text)) : text;
}

void Tokenizer::save(const std::string& dir) const {
  ::mkdir(dir.c_str(), 0755);
  if (!util::is_directory(dir)) util::fail(dir, "cannot create the output folder", "check the path and permissions");
  nlohmann::ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added_.to_json();
  j["normalizer"] = norm_.to_json();
  j["pre_tokenizer"] = pre_->to_json();
  j["post_processor"] = post_processor_;
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  j["model"] = model_.to_json();
  util::write_file_atomic(dir + "/tokenizer.json", j.dump(2, ' ', false) + "\n");
  util::write_file_atomic(dir + "/tokenizer_config.json", config_.dump(2, ' ', false) + "\n");
}

}  // namespace medgpt::data
