#include "data/corpus.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "util/error.hpp"
#include "util/h5.hpp"
#include "util/mapped_file.hpp"
#include "util/sha256.hpp"

namespace medgpt::data {

std::size_t TokenArrays::longest() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < size(); ++i) n = std::max<std::size_t>(n, offsets[i + 1] - offsets[i]);
  return n;
}

void TokenArrays::append(const std::vector<std::int32_t>& ids, const std::vector<std::uint8_t>& mask) {
  tokens.append(ids.begin(), ids.end());
  loss_mask.append(mask.begin(), mask.end());
  offsets.push_back(tokens.size());
}

void TokenArrays::append_from(const TokenArrays& o, std::size_t i) {
  const auto b = static_cast<std::ptrdiff_t>(o.offsets[i]), e = static_cast<std::ptrdiff_t>(o.offsets[i + 1]);
  tokens.append(o.tokens.begin() + b, o.tokens.begin() + e);
  if (!o.loss_mask.empty()) loss_mask.append(o.loss_mask.begin() + b, o.loss_mask.begin() + e);
  offsets.push_back(tokens.size());
}

namespace {

// Every dataset carries the SHA-256 of its bytes (attribute "sha256"), checked when it is read: a
// flipped bit in a memory-mapped token column would otherwise train on silently different data.
template <class T>
std::string_view bytes_of(const T* data, std::size_t n) {
  return {reinterpret_cast<const char*>(data), n * sizeof(T)};
}

template <class T>
void write_checked(util::H5File& f, const std::string& name, hid_t type, const T* data, std::size_t n) {
  f.write(name, type, {n}, data);
  f.set_attr(name, "sha256", util::sha256_hex(bytes_of(data, n)));
}

template <class T>
void verify(const util::H5File& f, const std::string& name, const T* data, std::size_t n) {
  if (f.attr_string(name, "sha256") != util::sha256_hex(bytes_of(data, n)))
    util::fail(f.path() + ": " + name, "does not match its checksum: the file is damaged", "restore it, or make it again with medgpt prepare");
}

void write_split(util::H5File& f, const std::string& prefix, Kind kind, const TokenArrays& a) {
  write_checked(f, prefix + "tokens", H5T_NATIVE_UINT32, a.tokens.data(), a.tokens.size());
  if (kind == Kind::Pt) {
    write_checked(f, prefix + "doc_offsets", H5T_NATIVE_UINT64, a.offsets.data(), a.offsets.size());
    write_checked(f, prefix + "block_offsets", H5T_NATIVE_UINT64, a.blocks.data(), a.blocks.size());
  } else {
    write_checked(f, prefix + "loss_mask", H5T_NATIVE_UINT8, a.loss_mask.data(), a.loss_mask.size());
    write_checked(f, prefix + "sample_offsets", H5T_NATIVE_UINT64, a.offsets.data(), a.offsets.size());
  }
}

template <class T>
std::vector<T> read_vec(const util::H5File& f, const std::string& name, hid_t type) {
  const auto dims = f.dims(name);
  std::vector<T> v(dims.empty() ? 0 : dims[0]);
  f.read(name, type, v.data());
  verify(f, name, v.data(), v.size());
  return v;
}

// A dataset as a view of the mapped file when it is stored contiguously in the native layout (as
// medgpt writes it), else read into memory.
template <class T>
Column<T> map_or_read(const util::H5File& f, const std::shared_ptr<const util::MappedFile>& file, const std::string& name, hid_t type) {
  const std::uint64_t n = f.dims(name).empty() ? 0 : f.dims(name)[0];
  const std::uint64_t at = f.contiguous_offset(name, type);
  const std::string_view bytes = file->bytes();
  if (n > 0 && at != util::H5File::kNoOffset && at % alignof(T) == 0 && at + n * sizeof(T) <= bytes.size()) {
    const T* data = reinterpret_cast<const T*>(bytes.data() + at);
    verify(f, name, data, n);
    return Column<T>::view(data, n, file);
  }
  return read_vec<T>(f, name, type);
}

void write_attributes(util::H5File& f, const CorpusInfo& info) {
  f.set_attr("", "format_version", std::vector<std::int64_t>{kCorpusFormatVersion});
  f.set_attr("", "kind", to_string(info.kind));
  f.set_attr("", "tokenizer_sha256", info.tokenizer_sha256);
  f.set_attr("", "template", info.template_name);
  f.set_attr("", "source_files", info.source_files.dump());
  f.set_attr("", "counts", info.counts.dump());
}

void finish(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    util::fail(path, "cannot rename the finished corpus: " + ec.message(), "check permissions");
  }
}

void write_column_split(util::H5File& f, const std::string& prefix, const ColumnSplit& s) {
  for (const auto& [name, a] : s.columns) {
    if (name == "label" || name == "answer") {  // bytes; a label is one value per sample: no offsets
      std::vector<std::uint8_t> bytes(a.tokens.begin(), a.tokens.end());
      write_checked(f, prefix + name, H5T_NATIVE_UINT8, bytes.data(), bytes.size());
      if (name == "label") continue;
    } else {
      write_checked(f, prefix + name, H5T_NATIVE_UINT32, a.tokens.data(), a.tokens.size());
    }
    write_checked(f, prefix + name + "_offsets", H5T_NATIVE_UINT64, a.offsets.data(), a.offsets.size());
  }
}

// Opens a corpus after checking its format_version and kind (util::Error says what it found).
util::H5File open_corpus(const std::string& path, Kind expected, CorpusInfo* info) {
  util::H5File f = util::H5File::open(path);
  const auto version = f.attr_ints("", "format_version");
  if (version.size() != 1 || version[0] != kCorpusFormatVersion)
    util::fail(path, "format_version is " + (version.empty() ? std::string("missing") : std::to_string(version[0])) + ", expected " +
                         std::to_string(kCorpusFormatVersion),
               "re-run medgpt prepare with this medgpt");
  const std::string kind = f.attr_string("", "kind");
  if (kind != to_string(expected))
    util::fail(path, "is a " + kind + " corpus, not " + to_string(expected), "prepare it with --kind " + std::string(to_string(expected)));
  if (info) {
    info->kind = expected;
    info->tokenizer_sha256 = f.attr_string("", "tokenizer_sha256");
    info->template_name = f.attr_string("", "template");
    info->source_files = nlohmann::json::parse(f.attr_string("", "source_files"));
    info->counts = nlohmann::json::parse(f.attr_string("", "counts"));
  }
  return f;
}

}  // namespace

TokenArrays& ColumnSplit::operator[](const std::string& name) {
  for (auto& [n, a] : columns)
    if (n == name) return a;
  columns.emplace_back(name, TokenArrays{});
  return columns.back().second;
}

const TokenArrays& ColumnSplit::at(const std::string& name) const {
  for (const auto& [n, a] : columns)
    if (n == name) return a;
  util::fail("corpus", "no column \"" + name + "\"", "the corpus is damaged");
}

std::vector<std::string> column_names(Kind kind) {
  switch (kind) {
    case Kind::Pref: return {"prompt", "chosen", "rejected"};
    case Kind::Kto: return {"prompt", "completion", "label"};
    case Kind::Prompt: return {"prompt", "answer"};
    default: return {};
  }
}

void write_columns(const std::string& path, const CorpusInfo& info, const ColumnSplit& train, const ColumnSplit& valid) {
  const std::string tmp = path + ".tmp";
  {
    util::H5File f = util::H5File::create(tmp);
    write_attributes(f, info);
    write_column_split(f, "", train);
    if (valid.size() > 0) write_column_split(f, "valid/", valid);
    f.close();
  }
  finish(tmp, path);
}

void write_corpus(const std::string& path, const CorpusInfo& info, const TokenArrays& train, const TokenArrays& valid) {
  const std::string tmp = path + ".tmp";
  {
    util::H5File f = util::H5File::create(tmp);
    write_attributes(f, info);
    write_split(f, "", info.kind, train);
    if (valid.size() > 0) write_split(f, "valid/", info.kind, valid);
    f.close();
  }
  finish(tmp, path);
}

TokenArrays read_corpus(const std::string& path, Kind expected, const std::string& split, CorpusInfo* info) {
  const util::H5File f = open_corpus(path, expected, info);
  const std::string p = split.empty() ? "" : split + "/";
  TokenArrays a;
  if (!f.has(p + "tokens")) {
    if (split.empty()) util::fail(path, "has no tokens", "the corpus is damaged; re-run medgpt prepare");
    return a;  // no such split: empty
  }
  const auto mapped = std::make_shared<const util::MappedFile>(path, util::MappedFile::Access::kRandom);
  a.tokens = map_or_read<std::uint32_t>(f, mapped, p + "tokens", H5T_NATIVE_UINT32);
  if (expected == Kind::Pt) {
    a.offsets = read_vec<std::uint64_t>(f, p + "doc_offsets", H5T_NATIVE_UINT64);
    a.blocks = read_vec<std::uint64_t>(f, p + "block_offsets", H5T_NATIVE_UINT64);
  } else {
    a.loss_mask = map_or_read<std::uint8_t>(f, mapped, p + "loss_mask", H5T_NATIVE_UINT8);
    a.offsets = read_vec<std::uint64_t>(f, p + "sample_offsets", H5T_NATIVE_UINT64);
  }
  if (a.offsets.empty() || a.offsets.back() != a.tokens.size())
    util::fail(path + ": " + p + "offsets", "do not end at the token count", "the corpus is damaged; re-run medgpt prepare");
  return a;
}

ColumnSplit read_columns(const std::string& path, Kind expected, const std::string& split, CorpusInfo* info) {
  const util::H5File f = open_corpus(path, expected, info);
  const std::string p = split.empty() ? "" : split + "/";
  ColumnSplit out;
  for (const auto& name : column_names(expected)) {
    if (!f.has(p + name)) {
      if (split.empty()) util::fail(path + ": " + name, "column missing", "the corpus is damaged; re-run medgpt prepare");
      return {};
    }
    TokenArrays& a = out[name];
    if (name == "label" || name == "answer") {
      const auto bytes = read_vec<std::uint8_t>(f, p + name, H5T_NATIVE_UINT8);
      a.tokens.assign(bytes.begin(), bytes.end());
    } else {
      a.tokens = read_vec<std::uint32_t>(f, p + name, H5T_NATIVE_UINT32);
    }
    if (name == "label") {
      a.offsets.resize(a.tokens.size() + 1);
      for (std::size_t i = 0; i < a.offsets.size(); ++i) a.offsets[i] = i;
    } else {
      a.offsets = read_vec<std::uint64_t>(f, p + name + "_offsets", H5T_NATIVE_UINT64);
    }
    if (a.offsets.empty() || a.offsets.back() != a.tokens.size())
      util::fail(path + ": " + p + name + "_offsets", "do not end at the column's length", "the corpus is damaged; re-run medgpt prepare");
  }
  return out;
}

}  // namespace medgpt::data
