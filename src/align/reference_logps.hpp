// --dpo.precompute_ref_log_probs: the reference model's sequence log-prob of every training and
// validation row, computed once before training (rows split over the data-parallel ranks, through
// the pipeline stages one batch at a time) and
// cached in an HDF5 file beside the prepared data, so training runs no reference forward pass and
// keeps no reference copy in memory. The values reach the objective through data::Batch::ref_logps.
#pragma once

#include <string>

#include "data/corpus.hpp"
#include "parallel/grid.hpp"
#include "model/transformer.hpp"

namespace medgpt::align {

// Fills train.ref_logps (and valid->ref_logps when given) from `cache` ("ref_logps",
// "valid/ref_logps") when it holds every split at the right length; otherwise computes them with
// `policy` before any training step (the starting model; with LoRA, its adapters disabled: the base)
// and rank 0 writes the cache once, atomically. Collective over the world.
void attach_reference_logps(const std::string& cache, data::TokenArrays& train, data::TokenArrays* valid, model::Transformer& policy,
                            std::size_t seq_len, std::int32_t pad_id, std::size_t batch_rows, parallel::Grid& grid);

}  // namespace medgpt::align
