// Rendering of the chat-template table: conversation validation, the two layouts (MedicalGPT
// "pairs" and Hugging Face role turns) and the Qwen3 thinking rules, with assistant spans recorded
// while the text is built (no prefix re-rendering needed).
#include "data/chat_template.hpp"

#include <algorithm>
#include <string_view>

#include "util/error.hpp"
#include "util/utf8.hpp"

namespace medgpt::data {

namespace {

using detail::Layout;
using detail::TemplateDef;

// format with its one `placeholder` replaced by value. Only the format is searched, so a user
// message containing "{query}" or "{system}" is inserted verbatim (Python str.format does the same).
std::string fill(const std::string& format, std::string_view placeholder, const std::string& value) {
  const std::size_t at = format.find(placeholder);
  if (at == std::string::npos) return format;
  std::string out;
  out.reserve(format.size() + value.size());
  out.append(format, 0, at).append(value).append(format, at + placeholder.size(), std::string::npos);
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Python str.isspace() for one code point: Jinja's `trim` filter is Python's str.strip().
bool is_py_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Python str.strip(): Unicode whitespace off both ends (malformed bytes are never whitespace).
std::string py_strip(std::string_view s) {
  std::size_t b = 0, e = s.size(), len = 0;
  while (b < e && is_py_space(util::utf8_decode(s.substr(0, e), b, len))) b += len;
  while (e > b) {
    std::size_t start = e - 1;  // back to the lead byte of the last code point
    while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (!is_py_space(util::utf8_decode(s.substr(0, e), start, len)) || start + len != e) break;
    e = start;
  }
  return std::string(s.substr(b, e - b));
}

// Python str.lstrip(c) / rstrip(c) for one character.
std::string_view lstrip(std::string_view s, char c) {
  while (!s.empty() && s.front() == c) s.remove_prefix(1);
  return s;
}
std::string_view rstrip(std::string_view s, char c) {
  while (!s.empty() && s.back() == c) s.remove_suffix(1);
  return s;
}

// Checks: optional leading system, then user, assistant, user, … (at least one user message).
void validate(const std::string& name, const std::vector<ChatMessage>& messages) {
  const std::string where = "chat template '" + name + "'";
  if (messages.empty()) util::fail(where, "the conversation has no messages", "give at least one user message");
  const std::size_t first = messages[0].role == "system" ? 1 : 0;
  if (first == messages.size())
    util::fail(where, "the conversation has only a system message", "add a user message after it");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    const std::string at = "message " + std::to_string(i);
    if (role != "system" && role != "user" && role != "assistant")
      util::fail(where, at + " has role '" + role + "'",
                 "use system, user or assistant (tool messages are not supported yet)");
    if (i < first) continue;
    const char* expected = (i - first) % 2 == 0 ? "user" : "assistant";
    if (role != expected)
      util::fail(where, at + " has role '" + role + "' where '" + expected + "' was expected",
                 "give an optional first system message, then user and assistant messages alternating, "
                 "starting with user");
  }
}

// Appends an assistant message and its end marker, recording the span.
void add_assistant(RenderedChat& out, std::string_view content, const std::string& eos) {
  const std::size_t b = out.text.size();
  out.text.append(content).append(eos);
  out.assistant_spans.emplace_back(b, out.text.size());
}

// MedicalGPT template.py _format_example, plus the eos its SFT appends after every answer.
void render_pairs(const TemplateDef& d, const std::vector<ChatMessage>& messages, std::size_t first,
                  const std::optional<std::string>& system, RenderedChat& out) {
  // template.py: `system_prompt or self.system_prompt`, so an empty system means the default.
  const std::string sys = system && !system->empty() ? *system : d.default_system;
  std::string sys_text;
  if (!sys.empty() || d.empty_system_block) sys_text = fill(d.system_format, "{system}", sys);
  const std::string after_answer = starts_with(d.sep, d.eos) ? d.sep.substr(d.eos.size()) : d.sep;
  out.text = d.bos;
  for (std::size_t i = first; i < messages.size(); i += 2) {
    std::string query = messages[i].content;
    if (i == first) {
      if (d.system_in_first_query)
        query = sys_text + query;
      else if (!sys_text.empty())
        out.text += sys_text + d.sep;
    } else {
      out.text += after_answer;
    }
    out.text += fill(d.prompt, "{query}", query);
    if (i + 1 < messages.size()) add_assistant(out, messages[i + 1].content, d.eos);
  }
}

// Index of the last user message that is not a "<tool_response>…</tool_response>" wrapper, else
// the last index (Qwen3's ns.last_query_index).
std::size_t qwen3_last_query(const std::vector<ChatMessage>& messages) {
  for (std::size_t i = messages.size(); i-- > 0;) {
    const std::string& c = messages[i].content;
    const bool wrapper = starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>");
    if (messages[i].role == "user" && !wrapper) return i;
  }
  return messages.size() - 1;
}

// Qwen3 assistant body: reasoning from reasoning_content or a "<think>…</think>" prefix; only
// assistant turns after the last user query keep it (earlier ones lose their thinking).
std::string qwen3_assistant(const ChatMessage& m, bool after_last_query, bool is_last) {
  std::string_view content = m.content;
  std::string_view reasoning = m.reasoning_content;
  if (reasoning.empty()) {
    const std::size_t close = content.find("</think>");
    if (close != std::string_view::npos) {
      std::string_view before = rstrip(content.substr(0, close), '\n');
      const std::size_t open = before.rfind("<think>");
      if (open != std::string_view::npos) before = before.substr(open + 7);
      reasoning = lstrip(before, '\n');
      content = lstrip(content.substr(content.rfind("</think>") + 8), '\n');
    }
  }
  if (after_last_query && (is_last || !reasoning.empty())) {
    std::string body = "<think>\n";
    body.append(lstrip(rstrip(reasoning, '\n'), '\n')).append("\n</think>\n\n");
    body.append(lstrip(content, '\n'));
    return body;
  }
  return std::string(content);
}

// Hugging Face role turns (ChatML, Qwen3, Llama-3, Gemma, Phi-3, Zephyr).
void render_turns(const TemplateDef& d, const std::vector<ChatMessage>& messages, std::size_t first,
                  const std::optional<std::string>& system, const RenderOptions& opt, RenderedChat& out) {
  auto header = [&](const std::string& role) { return fill(d.header, "{role}", role); };
  auto body = [&](const std::string& s) { return d.trim ? py_strip(s) : s; };
  out.text = d.bos;
  std::string first_user_prefix;
  std::optional<std::string> sys = system;
  if (!sys && !d.default_system.empty()) sys = d.default_system;
  if (sys) {
    if (d.system_in_first_user)
      first_user_prefix = *sys + "\n\n";  // Gemma: not trimmed, unlike the content after it
    else
      out.text += header("system") + body(*sys) + d.eos + d.after_turn;
  }
  const std::size_t last_query = d.qwen3_thinking ? qwen3_last_query(messages) : 0;
  for (std::size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user") {
      out.text += header("user") + (i == first ? first_user_prefix : std::string()) + body(m.content) + d.eos +
                  d.after_turn;
      continue;
    }
    out.text += header(d.assistant_role);
    if (d.qwen3_thinking)
      add_assistant(out, qwen3_assistant(m, i > last_query, i + 1 == messages.size()), d.eos);
    else
      add_assistant(out, body(m.content), d.eos);
    out.text += d.after_turn;
  }
  if (opt.add_generation_prompt) {
    out.text += header(d.assistant_role);
    const bool thinking = opt.enable_thinking.value_or(!d.thinking_off_by_default);
    if (d.qwen3_thinking && !thinking) out.text += "<think>\n\n</think>\n\n";
  } else {
    out.text += d.end_of_text;
  }
}

}  // namespace

const ChatTemplate& ChatTemplate::get(const std::string& name) {
  for (const ChatTemplate& t : detail::registry())
    if (t.name() == name) return t;
  std::string known;
  for (const std::string& n : names()) known += (known.empty() ? "" : ", ") + n;
  util::fail("chat template", "unknown template '" + name + "'", "use one of: " + known);
}

std::vector<std::string> ChatTemplate::names() {
  std::vector<std::string> out;
  for (const ChatTemplate& t : detail::registry()) out.push_back(t.name());
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<std::string>& ChatTemplate::stop_strings() const { return def_->stop_strings; }

RenderedChat ChatTemplate::render(const std::vector<ChatMessage>& messages, const RenderOptions& options) const {
  validate(name_, messages);
  // A system message in the conversation wins over options.system, which wins over the default.
  const std::size_t first = messages[0].role == "system" ? 1 : 0;
  std::optional<std::string> system = options.system;
  if (first == 1) system = messages[0].content;
  RenderedChat out;
  if (def_->layout == Layout::kPairs)
    render_pairs(*def_, messages, first, system, out);
  else
    render_turns(*def_, messages, first, system, options, out);
  return out;
}

}  // namespace medgpt::data
