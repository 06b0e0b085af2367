// The chat-template table. MedicalGPT rows copy training/template.py (shibing624/MedicalGPT
// 2f1008c) string for string; Hugging Face rows follow the model's tokenizer_config.json
// chat_template. Deliberate departures from template.py are marked "fix:" and listed in
// tests/fixtures/chat/README.md.
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "data/chat_template.hpp"

namespace medgpt::data {

namespace {

using detail::Layout;
using detail::TemplateDef;

// A table row: the names it answers to and its definition, with chainable setters.
struct Row {
  std::vector<std::string> names;
  TemplateDef def;

  // MedicalGPT Conversation: prompt ("{query}"), sep, and the eos its SFT appends after each answer
  // (template.py's stop_str; "</s>" by default).
  static Row pairs(std::vector<std::string> names, std::string prompt, std::string sep, std::string eos = "</s>") {
    Row r{std::move(names), {}};
    r.def.layout = Layout::kPairs;
    r.def.source = "MedicalGPT training/template.py '" + r.names.front() + "'";
    r.def.prompt = std::move(prompt);
    r.def.sep = std::move(sep);
    r.def.stop_strings = {eos};
    r.def.eos = std::move(eos);
    return r;
  }
  // Role turns: header ("{role}"), end-of-turn marker, text after it.
  static Row turns(std::vector<std::string> names, std::string source, std::string header, std::string eos,
                   std::string after_turn) {
    Row r{std::move(names), {}};
    r.def.layout = Layout::kTurns;
    r.def.source = std::move(source);
    r.def.header = std::move(header);
    r.def.stop_strings = {eos};
    r.def.eos = std::move(eos);
    r.def.after_turn = std::move(after_turn);
    return r;
  }
  // ChatML: <|im_start|>{role}\n{content}<|im_end|>\n.
  static Row chatml(std::vector<std::string> names, std::string source, std::string default_system = {}) {
    return turns(std::move(names), std::move(source), "<|im_start|>{role}\n", "<|im_end|>", "\n")
        .system(std::move(default_system));
  }

  Row& system(std::string s) { def.default_system = std::move(s); return *this; }
  Row& system_format(std::string f) { def.system_format = std::move(f); return *this; }
  Row& system_in_first_query() { def.system_in_first_query = true; return *this; }
  Row& empty_system_block() { def.empty_system_block = true; return *this; }
  Row& bos(std::string b) { def.bos = std::move(b); return *this; }
  Row& stops(std::vector<std::string> s) { def.stop_strings = std::move(s); return *this; }
  Row& assistant_role(std::string r) { def.assistant_role = std::move(r); return *this; }
  Row& trim() { def.trim = true; return *this; }
  Row& system_in_first_user() { def.system_in_first_user = true; return *this; }
  Row& end_of_text(std::string t) { def.end_of_text = std::move(t); return *this; }
  Row& qwen3(bool thinking_off_by_default) {
    def.qwen3_thinking = true;
    def.thinking_off_by_default = thinking_off_by_default;
    return *this;
  }
};

const char* const kHumanAssistantSystem =
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.";

std::vector<Row> rows() {
  std::vector<Row> t;
  // ---- MedicalGPT template.py (Conversation layout) ----
  t.push_back(Row::pairs({"vicuna"}, "USER: {query} ASSISTANT:", "</s>")
                  .system("A chat between a curious user and an artificial intelligence assistant. "
                          "The assistant gives helpful, detailed, and polite answers to the user's questions."));
  t.push_back(Row::pairs({"base", "empty"}, "{query}", "</s>"));
  t.push_back(Row::pairs({"alpaca"}, "### Instruction:\n{query}\n\n### Response:\n", "\n\n")
                  .system("Below is an instruction that describes a task. "
                          "Write a response that appropriately completes the request."));
  t.push_back(Row::pairs({"baichuan"}, "<reserved_102>{query}<reserved_103>", "</s>"));
  t.push_back(Row::pairs({"baichuan2"}, "<reserved_106>{query}<reserved_107>", "</s>"));
  t.push_back(Row::pairs({"ziya"}, "<human>:{query}\n<bot>:", "\n"));
  t.push_back(Row::pairs({"linly"}, "User: {query}\nBot: ", "\n"));
  t.push_back(Row::pairs({"chatglm"}, "问：{query}\n答：", "\n"));
  t.push_back(Row::pairs({"chatglm2"}, "问：{query}\n\n答：", "\n\n"));
  // template.py stop_str is "<|user|>", the turn that follows; the answer itself ends with the
  // tokenizer eos "</s>" MedicalGPT's SFT appends.
  t.push_back(Row::pairs({"chatglm3"}, "<|user|>\n{query}<|assistant|>", "\n", "</s>").stops({"<|user|>", "</s>"}));
  // template.py bakes "\n\n" into the default system text; here it belongs to the format so a
  // caller's system gets it too.
  t.push_back(Row::pairs({"phoenix"}, "Human: <s>{query}</s>Assistant: ", "</s>")
                  .system(kHumanAssistantSystem)
                  .system_format("{system}\n\n"));
  t.push_back(Row::pairs({"belle"}, "Human: {query}\n\nBelle: ", "\n\n"));
  t.push_back(Row::pairs({"aquila"}, "Human: {query}###Assistant:", "###").system(kHumanAssistantSystem));
  t.push_back(Row::pairs({"intern"}, "<|User|>:{query}<eoh>\n<|Bot|>:", "<eoa>\n", "<eoa>"));
  // template.py's system is "<system>\n" (shown even when empty) followed by sep "<|end|>\n".
  t.push_back(Row::pairs({"starchat"}, "<|user|>\n{query}<|end|>\n<|assistant|>\n", "<|end|>\n", "<|end|>")
                  .system_format("<system>\n{system}")
                  .empty_system_block());
  // fix: template.py puts "<<SYS>>…<</SYS>>\n\n</s>" before the first [INST]; Llama-2 (and
  // Chinese-Alpaca-2, which it cites) put it inside: "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{query} [/INST]".
  t.push_back(Row::pairs({"llama2"}, "[INST] {query} [/INST]", "</s>")
                  .system("You are a helpful, respectful and honest assistant. "
                          "Always answer as helpfully as possible, while being safe. "
                          "Your answers should not include any harmful, unethical, racist, sexist, "
                          "toxic, dangerous, or illegal content. "
                          "Please ensure that your responses are socially unbiased and positive in nature.\n\n"
                          "If a question does not make any sense, or is not factually coherent, "
                          "explain why instead of answering something not correct. "
                          "If you don't know the answer to a question, please don't share false information.")
                  .system_format("<<SYS>>\n{system}\n<</SYS>>\n\n")
                  .system_in_first_query());
  t.push_back(Row::pairs({"llama2-zh"}, "[INST] {query} [/INST]", "</s>")
                  .system("You are a helpful assistant. 你是一个乐于助人的助手。")
                  .system_format("<<SYS>>\n{system}\n<</SYS>>\n\n")
                  .system_in_first_query());
  // fix: template.py has no system slot (a caller's system lands before "</s>[INST]"); Mistral
  // models take it at the start of the first [INST].
  t.push_back(Row::pairs({"mistral"}, "[INST] {query} [/INST]", "</s>")
                  .system_format("{system}\n\n")
                  .system_in_first_query());
  t.push_back(Row::pairs({"xverse"}, "Human: {query}\n\nAssistant: ", "</s>"));
  t.push_back(Row::pairs({"deepseek"}, "User: {query}\n\nAssistant:", "</s>"));
  t.push_back(Row::pairs({"deepseek3"}, "<｜User｜>{query}<｜Assistant｜>", "</s>"));
  // fix: template.py's prompt "{{content}}" formats to the literal "{content}", dropping the query.
  t.push_back(Row::pairs({"deepseekcoder"}, "### Instruction:\n{query}\n### Response:\n", "\n", "<|EOT|>")
                  .system("You are an AI programming assistant, utilizing the Deepseek Coder model, "
                          "developed by Deepseek Company, and you only answer questions related to computer science. "
                          "For politically sensitive questions, security and privacy issues, "
                          "and other non-computer science questions, you will refuse to answer")
                  .system_format("{system}\n"));
  t.push_back(Row::pairs({"orion"}, "Human: {query}\n\nAssistant: </s>", "</s>"));
  // fix: template.py's "system" is the BOS token followed by sep "</s>"; this is Command-R's own
  // layout: <BOS_TOKEN>, optional system turn, answers closed by <|END_OF_TURN_TOKEN|>.
  t.push_back(Row::pairs({"cohere"},
                         "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{query}<|END_OF_TURN_TOKEN|>"
                         "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
                         "", "<|END_OF_TURN_TOKEN|>")
                  .bos("<BOS_TOKEN>")
                  .system_format("<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{system}<|END_OF_TURN_TOKEN|>"));

  // ---- ChatML family (Hugging Face templates) ----
  // template.py's qwen* rows put "\n" between rounds and no <|im_end|> after answers; these follow
  // the models' own chat_template instead (equal to apply_chat_template).
  t.push_back(Row::chatml({"qwen", "qwen2"}, "Qwen2-Instruct / Qwen1.5-Chat chat_template",
                          "You are a helpful assistant."));
  t.push_back(Row::chatml({"qwen2.5", "qwen2_5"}, "Qwen2.5-Instruct chat_template (no tools)",
                          "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
  t.push_back(Row::chatml({"chatml"}, "ChatML, no default system"));
  t.push_back(Row::chatml({"yi"}, "Yi-Chat chat_template (ChatML, no default system)"));
  // fix: template.py's system already ends with "<|im_end|>\n" and then gets sep "<|im_end|>\n" again.
  t.push_back(Row::chatml({"intern2"}, "InternLM2-chat (ChatML) with template.py's system",
                          "You are an AI assistant whose name is InternLM (书生·浦语).\n"));
  t.push_back(Row::chatml({"qwen3", "qwen3_5"}, "Qwen3 hybrid-thinking chat_template (no tools)").qwen3(false));
  t.push_back(Row::chatml({"qwen3_nothink", "qwen3_5_nothink"},
                          "Qwen3 chat_template with enable_thinking=false by default")
                  .qwen3(true));

  // ---- other Hugging Face templates ----
  t.push_back(Row::turns({"llama3"}, "Meta-Llama-3-Instruct chat_template",
                         "<|start_header_id|>{role}<|end_header_id|>\n\n", "<|eot_id|>", "")
                  .bos("<|begin_of_text|>")
                  .trim());
  t.push_back(Row::turns({"gemma"}, "Gemma-3-it chat_template (system folded into the first user turn)",
                         "<start_of_turn>{role}\n", "<end_of_turn>", "\n")
                  .bos("<bos>")
                  .assistant_role("model")
                  .trim()
                  .system_in_first_user());
  t.push_back(Row::turns({"phi3"}, "Phi-3-mini-instruct chat_template", "<|{role}|>\n", "<|end|>", "\n")
                  .end_of_text("<|endoftext|>")
                  .stops({"<|end|>", "<|endoftext|>"}));
  t.push_back(Row::turns({"zephyr"}, "zephyr-7b-beta chat_template", "<|{role}|>\n", "</s>", "\n"));
  return t;
}

}  // namespace

const std::vector<ChatTemplate>& detail::registry() {
  // The definitions sit in a deque so the pointers the ChatTemplates hold stay valid.
  struct Registry {
    std::deque<TemplateDef> defs;
    std::vector<ChatTemplate> templates;
  };
  static Registry reg;
  static const bool filled = [] {
    for (Row& row : rows()) {
      reg.defs.push_back(std::move(row.def));
      for (const std::string& name : row.names) reg.templates.emplace_back(name, &reg.defs.back());
    }
    return true;
  }();
  (void)filled;
  return reg.templates;
}

}  // namespace medgpt::data
