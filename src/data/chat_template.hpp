// Chat templates: turn a system/user/assistant conversation into the exact text a model was tuned
// on, and mark the bytes of it that are assistant output (what the SFT loss trains on). The
// templates are rows of a table (chat_template_table.cpp) read by two renderers: MedicalGPT's
// template.py "Conversation" layout and the role-tagged turns of Hugging Face chat templates.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace medgpt::data {

struct ChatMessage {
  std::string role;     // "system" (first message only), "user" or "assistant"
  std::string content;
  // Assistant thinking, rendered only by the qwen3 templates; empty means "none given" (then a
  // "<think>…</think>" prefix of content is split off, as the Qwen3 Jinja template does).
  std::string reasoning_content;
};

struct RenderOptions {
  // Append the assistant cue after the last message (inference). MedicalGPT-style templates put
  // the cue inside the user prompt, so for them a trailing user message always ends with it.
  bool add_generation_prompt = false;
  // qwen3 only: false appends "<think>\n\n</think>\n\n" to the generation prompt. Unset means the
  // template's default (qwen3: undefined = thinking; qwen3_nothink: false).
  std::optional<bool> enable_thinking;
  // Replaces the template's default system prompt when the conversation has no system message.
  std::optional<std::string> system;
};

struct RenderedChat {
  std::string text;
  // Byte ranges [b, e) of text the SFT loss trains on, one per assistant message in order:
  // the assistant content (with its think block, for qwen3) plus its end-of-turn marker
  // (e.g. "<|im_end|>", "<|eot_id|>", "</s>"), never the role header before it.
  std::vector<std::pair<std::size_t, std::size_t>> assistant_spans;
};

class ChatTemplate;

namespace detail {

// How a table row is laid out as text.
enum class Layout {
  // MedicalGPT template.py Conversation: [system_format+sep] prompt(q0) a0 eos sep' prompt(q1) a1 eos…
  // where sep' is sep without a leading eos (MedicalGPT's SFT drops that duplicate eos token).
  kPairs,
  // Hugging Face role turns: bos, header(role) content end after_turn …, generation header.
  kTurns,
};

// One template (a row of chat_template_table.cpp). Placeholders: "{query}", "{system}", "{role}".
struct TemplateDef {
  Layout layout = Layout::kTurns;
  std::string source;                   // where the strings come from (model card / template.py)
  std::string default_system;           // used when the conversation has none; "" = no system
  std::string eos;                      // end-of-turn marker after every assistant message
  std::vector<std::string> stop_strings;
  // kPairs
  std::string prompt;                   // user turn incl. assistant cue, "{query}" = user content
  std::string sep;                      // after the system text and between rounds
  std::string system_format = "{system}";
  bool system_in_first_query = false;   // system_format goes in front of the first query (Llama-2)
  bool empty_system_block = false;      // system_format is emitted even with no system (StarChat)
  // kTurns
  std::string bos;                      // text before everything
  std::string header;                   // "{role}" = role name
  std::string assistant_role = "assistant";  // role name in headers ("model" for Gemma)
  std::string after_turn;               // text after each end marker
  bool trim = false;                    // Jinja `content | trim` (Llama-3, Gemma)
  bool system_in_first_user = false;    // Gemma: system + "\n\n" opens the first user turn
  std::string end_of_text;              // appended when there is no generation prompt (Phi-3)
  bool qwen3_thinking = false;          // Qwen3 reasoning_content / <think> rules
  bool thinking_off_by_default = false; // qwen3_nothink: unset enable_thinking means false
};

// The table, one ChatTemplate per accepted name (chat_template_table.cpp).
const std::vector<ChatTemplate>& registry();

}  // namespace detail

class ChatTemplate {
 public:
  // Unknown name -> util::Error naming it and listing the known names.
  static const ChatTemplate& get(const std::string& name);
  // Every accepted name (aliases included), sorted.
  static std::vector<std::string> names();

  const std::string& name() const { return name_; }

  // Validates the conversation (optional leading system, then user/assistant alternating,
  // starting with user) and renders it. Errors (util::Error) name the offending message index.
  RenderedChat render(const std::vector<ChatMessage>& messages, const RenderOptions& options = {}) const;

  // Strings that end an assistant turn at generation time, e.g. {"<|im_end|>"}.
  const std::vector<std::string>& stop_strings() const;

  // Used by the table; callers use get().
  ChatTemplate(std::string name, const detail::TemplateDef* def) : name_(std::move(name)), def_(def) {}

 private:
  std::string name_;
  const detail::TemplateDef* def_;
};

}  // namespace medgpt::data
