#include "model/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "model/safetensors_header.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/mapped_file.hpp"

namespace medgpt::model {

namespace {

// Element widths live with the header parser (safetensors_dtype_bytes).
struct DType {
  const char* name;
  at::ScalarType type;
  int align_rank;  // writer order: larger first (U64, I64, F64 ... as the reference sorts)
};
const DType kDTypes[] = {
    {"F64", at::kDouble, 9}, {"I64", at::kLong, 10}, {"F32", at::kFloat, 7}, {"I32", at::kInt, 6},
    {"BF16", at::kBFloat16, 5}, {"F16", at::kHalf, 4}, {"I16", at::kShort, 3},
    {"U8", at::kByte, 1}, {"I8", at::kChar, 1}, {"BOOL", at::kBool, 0},
};

const DType* by_name(const std::string& n) {
  for (const auto& d : kDTypes)
    if (n == d.name) return &d;
  return nullptr;
}
const DType& by_type(at::ScalarType t, const std::string& name) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d;
  util::fail(name, std::string("dtype ") + c10::toString(t) + " has no safetensors encoding", "convert the tensor");
}

}  // namespace

const char* safetensors_dtype(at::ScalarType t) { return by_type(t, "tensor").name; }

NamedTensors read_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  util::MappedFile file(path);
  const std::string_view bytes = file.bytes();
  SafetensorsHeader h = parse_safetensors_header(bytes, path);
  if (metadata)
    for (auto& [k, v] : h.metadata) (*metadata)[k] = std::move(v);
  NamedTensors out;
  out.reserve(h.entries.size());
  for (const SafetensorsEntry& e : h.entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(by_name(e.dtype)->type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), bytes.data() + h.data_start + e.begin, e.end - e.begin);
    out.emplace_back(e.name, std::move(t));
  }
  return out;
}

NamedTensors read_safetensors_dir(const std::string& dir) {
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (util::file_exists(index)) {
    const nlohmann::json j = util::read_json_file(index);
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      util::fail(index + ": weight_map", "missing", "the index must map tensor names to shard files");
    std::set<std::string> shards;
    for (const auto& [name, file] : j["weight_map"].items()) shards.insert(file.get<std::string>());
    NamedTensors all;
    std::set<std::string> seen;
    for (const auto& s : shards) {
      for (auto& nt : read_safetensors(dir + "/" + s)) {
        if (!seen.insert(nt.first).second) util::fail(dir + "/" + s + ": " + nt.first, "appears in two shards", "the checkpoint is corrupt");
        all.push_back(std::move(nt));
      }
    }
    for (const auto& [name, file] : j["weight_map"].items())
      if (!seen.count(name)) util::fail(index + ": " + name, "listed in weight_map but absent from " + file.get<std::string>(), "the checkpoint is incomplete");
    return all;
  }
  if (util::file_exists(single)) return read_safetensors(single);
  util::fail(dir, "no model.safetensors or model.safetensors.index.json", "pass a Hugging Face model folder");
}

void write_safetensors(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                       const TensorLoader& load) {
  std::vector<std::pair<const std::string*, at::Tensor>> order;
  for (const auto& [name, t] : tensors) order.emplace_back(&name, load ? t : t.contiguous().cpu());
  std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    const int ra = by_type(a.second.scalar_type(), *a.first).align_rank, rb = by_type(b.second.scalar_type(), *b.first).align_rank;
    return ra != rb ? ra > rb : *a.first < *b.first;
  });
  nlohmann::ordered_json header;
  nlohmann::ordered_json meta = {{"format", "pt"}};
  for (const auto& [k, v] : metadata) meta[k] = v;
  header["__metadata__"] = meta;
  std::uint64_t off = 0;
  for (const auto& [name, t] : order) {
    const std::uint64_t len = static_cast<std::uint64_t>(t.numel()) * t.element_size();
    header[*name] = {{"dtype", by_type(t.scalar_type(), *name).name}, {"shape", t.sizes().vec()}, {"data_offsets", {off, off + len}}};
    off += len;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  util::AtomicFile f(path);
  const std::uint64_t n = text.size();
  f.stream().write(reinterpret_cast<const char*>(&n), 8);
  f.stream().write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& [name, t] : order) {
    at::Tensor data = t;
    if (load) {
      data = load(*name).contiguous().cpu();
      if (data.sizes() != t.sizes() || data.scalar_type() != t.scalar_type())
        util::fail(path + ": " + *name, "the loaded tensor is not the announced " + c10::str(t.sizes()), "internal error");
    }
    f.stream().write(static_cast<const char*>(data.data_ptr()), static_cast<std::streamsize>(data.numel() * data.element_size()));
  }
  f.commit();
}

void write_safetensors_dir(const std::string& dir, const NamedTensors& tensors, std::int64_t max_shard_bytes, const TensorLoader& load) {
  std::vector<NamedTensors> shards(1);
  std::int64_t current = 0, total = 0;
  for (const auto& nt : tensors) {
    const std::int64_t size = nt.second.numel() * static_cast<std::int64_t>(nt.second.element_size());
    total += size;
    if (!shards.back().empty() && current + size > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(nt);
    current += size;
  }
  if (shards.size() == 1) {
    write_safetensors(dir + "/model.safetensors", tensors, {}, load);
    return;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  char name[64];
  for (std::size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    write_safetensors(dir + "/" + name, shards[i], {}, load);
    for (const auto& nt : shards[i]) weight_map[nt.first] = name;
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  util::write_file_atomic(dir + "/model.safetensors.index.json", index.dump(2) + "\n");
}

}  // namespace medgpt::model
