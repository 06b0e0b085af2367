// --dpo.precompute_ref_log_probs: the reference model's sequence log-prob of every training and
// validation row, computed once before training (rows split over the data-parallel ranks) and
// cached in an HDF5 file beside the prepared data, so training runs no reference forward pass and
// keeps no reference copy in memory. The values reach the objective through data::Batch::ref_logps.
#pragma once

#include <string>

#include "data/corpus.hpp"
#include "dist/comm.hpp"
#include "model/transformer.hpp"

namespace medgpt::align {

// Fills rows.ref_logps from `cache` ("ref_logps" for the train split, "valid/ref_logps") when it
// exists and matches the rows, or computes them (reference, or the LoRA policy with adapters off)
// and rank 0 writes the cache (atomically). Collective over `dp`.
void attach_reference_logps(const std::string& cache, const std::string& split, data::TokenArrays& rows, model::Transformer& policy,
                            const model::Transformer* reference, std::size_t seq_len, std::int32_t pad_id, std::size_t batch_rows,
                            dist::Comm& dp);

}  // namespace medgpt::align
