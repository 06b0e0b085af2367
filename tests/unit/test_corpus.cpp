// The corpus file's integrity: every dataset is checked against the SHA-256 stored beside it, so
// one flipped byte anywhere in the data (mapped or read in) is refused, naming the file and the
// dataset, instead of training on different tokens.
#include <gtest/gtest.h>

#include <fstream>

#include "data/corpus.hpp"
#include "util/error.hpp"
#include "util/h5.hpp"

using namespace medgpt;

namespace {

data::TokenArrays sft_samples() {
  data::TokenArrays a;
  for (int s = 0; s < 20; ++s) a.append({100 * s, 100 * s + 1, 100 * s + 2}, {0, 1, 1});
  return a;
}

// Flips the byte `at` bytes into dataset `name` of the file at `path`.
void flip(const std::string& path, const std::string& name, hid_t type, std::uint64_t at) {
  std::uint64_t offset = 0;
  {
    const util::H5File f = util::H5File::open(path);
    offset = f.contiguous_offset(name, type);
  }
  ASSERT_NE(offset, util::H5File::kNoOffset);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset + at));
  char c = 0;
  file.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  file.seekp(static_cast<std::streamoff>(offset + at));
  file.write(&c, 1);
}

std::string read_error(const std::string& path, data::Kind kind) {
  try {
    if (kind == data::Kind::Pref)
      data::read_columns(path, kind, "");
    else
      data::read_corpus(path, kind, "");
  } catch (const util::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Corpus, AFlippedByteInAnyDatasetIsRefusedByItsChecksum) {
  data::CorpusInfo info;
  info.kind = data::Kind::Sft;
  const std::string path = ::testing::TempDir() + "/checked-sft.h5";
  const struct {
    const char* name;
    hid_t type;
    std::uint64_t at;
  } cases[] = {{"tokens", H5T_NATIVE_UINT32, 37}, {"loss_mask", H5T_NATIVE_UINT8, 5}, {"sample_offsets", H5T_NATIVE_UINT64, 8}};
  for (const auto& c : cases) {
    data::write_corpus(path, info, sft_samples(), {});
    EXPECT_EQ(read_error(path, data::Kind::Sft), "") << "an intact corpus reads";
    flip(path, c.name, c.type, c.at);
    EXPECT_EQ(read_error(path, data::Kind::Sft), path + ": " + c.name +
                                                     ": does not match its checksum: the file is damaged; restore it, or make it again with medgpt prepare")
        << c.name;
  }
}

TEST(Corpus, PreferenceColumnsAreCheckedToo) {
  data::ColumnSplit train;
  for (int s = 0; s < 4; ++s) {
    train["prompt"].append({s, s + 1});
    train["chosen"].append({7});
    train["rejected"].append({8, 9});
  }
  data::CorpusInfo info;
  info.kind = data::Kind::Pref;
  const std::string path = ::testing::TempDir() + "/checked-pref.h5";
  data::write_columns(path, info, train, {});
  const data::ColumnSplit back = data::read_columns(path, data::Kind::Pref, "");
  EXPECT_EQ(back.at("rejected").tokens.vec(), (std::vector<std::uint32_t>{8, 9, 8, 9, 8, 9, 8, 9}));
  flip(path, "rejected_offsets", H5T_NATIVE_UINT64, 9);
  EXPECT_NE(read_error(path, data::Kind::Pref).find(": rejected_offsets: does not match its checksum"), std::string::npos);
}
