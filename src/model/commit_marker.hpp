// COMMITTED, written last into a checkpoint folder: a JSON object listing every file of the folder
// with its size and SHA-256, so that a damaged file (flipped bytes, a truncated shard, a disk that
// filled up behind the writer's back) is found before it is loaded, and `--resume auto` can fall
// back to an intact checkpoint. Folders of older versions hold "ok\n": committed, nothing to verify.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace medgpt::model {

struct FileDigest {
  std::string name;  // inside the folder
  std::uint64_t bytes = 0;
  std::string sha256;
};

FileDigest digest_file(const std::string& dir, const std::string& name);
// One line per digest ("name\tbytes\tsha256\n") and back: digests travel between ranks as text.
std::string to_lines(const std::vector<FileDigest>& files);
std::vector<FileDigest> from_lines(const std::string& lines);

// Writes dir/COMMITTED listing `files` (atomically, fsynced).
void write_commit_marker(const std::string& dir, const std::vector<FileDigest>& files);
// Every regular file of `dir` but COMMITTED, digested: for a folder one process wrote.
std::vector<FileDigest> digest_folder(const std::string& dir);

// "" when dir/COMMITTED exists and every file it lists is there with its size and digest;
// otherwise what is wrong with the first that is not, e.g.
// "optim-tp00-dp00-of-01.h5: 812 bytes, COMMITTED records 4096 (truncated)".
std::string verify_checkpoint(const std::string& dir);

}  // namespace medgpt::model
