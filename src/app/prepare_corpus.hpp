// Raw files -> tokenized HDF5 corpus, MPI-parallel (the body of `medgpt prepare`, also run by
// `medgpt train` on raw --data.train inputs). The inputs are one byte stream (files in sorted
// order); each rank takes an equal byte range, reads the records that start in it, tokenizes them,
// and sends them to rank 0, which writes them in input order, so the corpus is the same for any
// rank count. The first bad record (in input order) stops the run unless skip_bad.
#pragma once

#include <string>
#include <vector>

#include "data/readers/kind.hpp"
#include "parallel/comm.hpp"

namespace medgpt::app {

struct PrepareOptions {
  data::Kind kind = data::Kind::Pt;
  data::PtDocSep doc_sep = data::PtDocSep::Line;
  std::size_t max_length = 512, max_prompt_length = 0, block_size = 1024;
  bool drop_tail = false, train_on_inputs = false, skip_bad = false;
  std::string validation_split = "0";
  std::uint64_t seed = 42;
};

// Collective over `world`: every rank passes the same arguments.
void prepare_corpus(parallel::Comm& world, const PrepareOptions& o, const std::vector<std::string>& inputs, const std::string& tok_path,
                    const std::string& template_name, const std::string& output);

}  // namespace medgpt::app
