// `medgpt chat`: multi-turn conversation on the terminal or from a pipe (MedicalGPT's interactive
// inference.py). Each reply is streamed token by token, decoded UTF-8-safely. Lines starting with
// `/reset` clear the history, `/system TEXT` sets the system prompt (and clears the history),
// `exit` or `quit` (or end of input) leaves.
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "app/command.hpp"
#include "app/generation_setup.hpp"
#include "data/tokenizer/stream_decoder.hpp"
#include "parallel/grid.hpp"
#include "util/error.hpp"

namespace medgpt::app {

namespace {

int run_chat(const po::variables_map& vm) {
  const data::Tokenizer tok = load_inference_tokenizer(vm);
  const data::ChatTemplate& tmpl = data::ChatTemplate::get(vm["template"].as<std::string>());
  const infer::GenerationOptions go = generation_options(vm, required(vm, "model"), tok, &tmpl);
  parallel::Grid grid(1, 1);
  if (grid.world_size() > 1) util::fail("chat", "runs on one rank", "start it without mpirun");
  model::Transformer m = load_inference_model(vm);
  const bool tty = isatty(STDIN_FILENO) != 0;
  data::RenderOptions ro;
  ro.add_generation_prompt = true;
  if (vm.count("system")) ro.system = vm["system"].as<std::string>();
  std::vector<data::ChatMessage> history;
  if (tty) std::cerr << "medgpt chat: /reset, /system TEXT, exit\n";
  std::string line;
  std::uint64_t turn = 0;
  while (true) {
    if (tty) std::cerr << "\nuser> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    if (line == "exit" || line == "quit") break;
    if (line.empty()) continue;
    if (line == "/reset") {
      history.clear();
      std::cout << "[history cleared]" << std::endl;
      continue;
    }
    if (line.rfind("/system ", 0) == 0) {
      ro.system = line.substr(8);
      history.clear();
      std::cout << "[system prompt set, history cleared]" << std::endl;
      continue;
    }
    history.push_back({"user", line, ""});
    const auto text = tmpl.render(history, ro).text;
    const auto ids = tok.encode(text);
    if (static_cast<std::int64_t>(ids.size()) + go.max_new_tokens > m.config().max_position_embeddings) {
      history.pop_back();
      std::cout << "[the conversation is longer than the model's context; /reset to start over]" << std::endl;
      continue;
    }
    infer::GenerationOptions o = go;
    o.seed = go.seed + turn++;  // a different draw each turn, reproducible for the session
    data::StreamDecoder stream(tok, /*skip_special_tokens=*/true);
    if (tty) std::cout << "assistant> ";
    const auto out = infer::generate(m, {std::vector<std::int64_t>(ids.begin(), ids.end())}, o,
                                     [&](std::size_t, std::int64_t id) {
                                       std::cout << stream.push(static_cast<data::TokenId>(id)) << std::flush;
                                       return true;
                                     });
    std::cout << stream.flush() << std::endl;
    // The reply as the template will render it next turn: without the end-of-turn token.
    std::vector<data::TokenId> reply(out[0].begin(), out[0].end());
    while (!reply.empty() && std::find(o.eos_ids.begin(), o.eos_ids.end(), reply.back()) != o.eos_ids.end()) reply.pop_back();
    history.push_back({"assistant", tok.decode(reply, true), ""});
  }
  return 0;
}

}  // namespace

void register_chat_command(std::vector<Command>& out) {
  out.push_back({"chat", "multi-turn chat on stdin/stdout, replies streamed (/reset, /system TEXT, exit)",
                 [](po::options_description& d) { add_generation_options(d); }, run_chat});
}

}  // namespace medgpt::app
