// What generate, chat and serve share: the model to run (a Hugging Face folder, a checkpoint or a
// run's final/, optionally a LoRA adapter on top), its tokenizer, and the generation options
// (the model's generation_config.json, overridden by the command line).
#pragma once

#include "app/command.hpp"
#include "data/chat_template.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "infer/generator.hpp"
#include "model/transformer.hpp"

namespace medgpt::app {

// --model --adapter --tokenizer --template --system --dtype --nf4 --max-new-tokens --do-sample
// --temperature --top-p --top-k --min-p --repetition-penalty --seed
void add_generation_options(po::options_description& d);
model::Transformer load_inference_model(const po::variables_map& vm);
data::Tokenizer load_inference_tokenizer(const po::variables_map& vm);
infer::GenerationOptions generation_options(const po::variables_map& vm, const std::string& model_dir, const data::Tokenizer& tok,
                                            const data::ChatTemplate* tmpl);

}  // namespace medgpt::app
