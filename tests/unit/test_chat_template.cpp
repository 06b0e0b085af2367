// medgpt::data::ChatTemplate against reference renders: Hugging Face Jinja templates
// (tests/fixtures/chat/hf_rendered.jsonl, from tests/reference/render_chat.mjs) and MedicalGPT's
// template.py (tests/fixtures/chat/medicalgpt_expected.json); plus spans, aliases and errors.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "data/chat_template.hpp"
#include "util/error.hpp"

namespace {

using medgpt::data::ChatMessage;
using medgpt::data::ChatTemplate;
using medgpt::data::RenderedChat;
using medgpt::data::RenderOptions;
using nlohmann::json;

std::string read_fixture(const std::string& rel) {
  const std::string path = std::string(MEDGPT_FIXTURES_DIR) + "/" + rel;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<json> read_jsonl(const std::string& rel) {
  std::vector<json> out;
  std::istringstream lines(read_fixture(rel));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::vector<ChatMessage> messages_of(const json& j) {
  std::vector<ChatMessage> out;
  for (const json& m : j)
    out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>(),
                   m.value("reasoning_content", std::string())});
  return out;
}

RenderOptions options_of(const json& c) {
  RenderOptions o;
  o.add_generation_prompt = c.value("add_generation_prompt", false);
  if (c.contains("enable_thinking")) o.enable_thinking = c.at("enable_thinking").get<bool>();
  return o;
}

std::vector<ChatMessage> conv(std::initializer_list<std::pair<const char*, const char*>> m) {
  std::vector<ChatMessage> out;
  for (const auto& [role, content] : m) out.push_back({role, content, ""});
  return out;
}

std::string span_text(const RenderedChat& r, std::size_t i) {
  const auto [b, e] = r.assistant_spans.at(i);
  return r.text.substr(b, e - b);
}

std::size_t count_assistants(const std::vector<ChatMessage>& m) {
  std::size_t n = 0;
  for (const auto& x : m) n += x.role == "assistant";
  return n;
}

// Assistant header and end-of-turn marker of the Hugging Face templates, for span checks.
struct TurnMarks {
  std::string header, end;
  bool trim, qwen3;
};
const std::map<std::string, TurnMarks> kTurnMarks = {
    {"qwen", {"<|im_start|>assistant\n", "<|im_end|>", false, false}},
    {"qwen2.5", {"<|im_start|>assistant\n", "<|im_end|>", false, false}},
    {"chatml", {"<|im_start|>assistant\n", "<|im_end|>", false, false}},
    {"yi", {"<|im_start|>assistant\n", "<|im_end|>", false, false}},
    {"qwen3", {"<|im_start|>assistant\n", "<|im_end|>", false, true}},
    {"llama3", {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", true, false}},
    {"gemma", {"<start_of_turn>model\n", "<end_of_turn>", true, false}},
    {"phi3", {"<|assistant|>\n", "<|end|>", false, false}},
    {"zephyr", {"<|assistant|>\n", "</s>", false, false}},
};

// Python str.strip() for the whitespace the fixtures use.
std::string strip_ws(const std::string& s) {
  const std::vector<std::string> ws = {" ", "\t", "\n", "\r", "\u3000"};
  std::size_t b = 0, e = s.size();
  for (bool again = true; again;) {
    again = false;
    for (const auto& w : ws)
      if (e - b >= w.size() && s.compare(b, w.size(), w) == 0) b += w.size(), again = true;
  }
  for (bool again = true; again;) {
    again = false;
    for (const auto& w : ws)
      if (e - b >= w.size() && s.compare(e - w.size(), w.size(), w) == 0) e -= w.size(), again = true;
  }
  return s.substr(b, e - b);
}

// ---- Hugging Face Jinja references ----

TEST(ChatTemplate, MatchesHuggingFaceJinjaRenders) {
  const std::vector<json> records = read_jsonl("chat/hf_rendered.jsonl");
  ASSERT_GE(records.size(), 200u);
  std::map<std::string, int> per_template;
  for (const json& r : records) {
    const std::string name = r.at("template");
    const std::string id = r.at("id");
    SCOPED_TRACE(name + " / " + id + " / " + r.at("config").get<std::string>());
    ASSERT_FALSE(r.contains("error")) << r.at("error");
    const auto messages = messages_of(r.at("messages"));
    const RenderedChat out = ChatTemplate::get(name).render(messages, options_of(r));
    EXPECT_EQ(out.text, r.at("rendered").get<std::string>());
    ++per_template[name];

    // Spans: one per assistant message, each right after the assistant header, ending with the
    // end-of-turn marker; outside qwen3 exactly the (trimmed) content plus the marker.
    const TurnMarks& marks = kTurnMarks.at(name);
    ASSERT_EQ(out.assistant_spans.size(), count_assistants(messages));
    std::size_t k = 0, prev_end = 0;
    for (const ChatMessage& m : messages) {
      if (m.role != "assistant") continue;
      const auto [b, e] = out.assistant_spans[k];
      ASSERT_LE(prev_end, b);
      ASSERT_LE(e, out.text.size());
      ASSERT_GE(b, marks.header.size());
      EXPECT_EQ(out.text.substr(b - marks.header.size(), marks.header.size()), marks.header);
      const std::string span = span_text(out, k);
      if (marks.qwen3) {
        ASSERT_GE(span.size(), marks.end.size());
        EXPECT_EQ(span.substr(span.size() - marks.end.size()), marks.end);
      } else {
        EXPECT_EQ(span, (marks.trim ? strip_ws(m.content) : m.content) + marks.end);
      }
      prev_end = e;
      ++k;
    }
  }
  for (const char* name : {"qwen", "qwen2.5", "qwen3", "llama3", "gemma", "phi3", "zephyr", "chatml"})
    EXPECT_GE(per_template[name], 10) << name;
}

TEST(ChatTemplate, Qwen3NothinkIsQwen3WithThinkingOff) {
  int checked = 0;
  for (const json& r : read_jsonl("chat/hf_rendered.jsonl")) {
    if (r.at("template") != "qwen3") continue;
    SCOPED_TRACE(r.at("id").get<std::string>());
    const auto messages = messages_of(r.at("messages"));
    RenderOptions o = options_of(r);
    // Aliases render the same as their target.
    EXPECT_EQ(ChatTemplate::get("qwen3_5").render(messages, o).text, r.at("rendered").get<std::string>());
    if (!(r.contains("enable_thinking") && r.at("enable_thinking") == false)) continue;
    o.enable_thinking.reset();  // qwen3_nothink's default
    EXPECT_EQ(ChatTemplate::get("qwen3_nothink").render(messages, o).text, r.at("rendered").get<std::string>());
    EXPECT_EQ(ChatTemplate::get("qwen3_5_nothink").render(messages, o).text, r.at("rendered").get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

TEST(ChatTemplate, Qwen3GenerationPromptFollowsEnableThinking) {
  const auto m = conv({{"user", "Hi"}});
  RenderOptions o;
  o.add_generation_prompt = true;
  const std::string base = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(ChatTemplate::get("qwen3").render(m, o).text, base);
  EXPECT_EQ(ChatTemplate::get("qwen3_nothink").render(m, o).text, base + "<think>\n\n</think>\n\n");
  o.enable_thinking = true;
  EXPECT_EQ(ChatTemplate::get("qwen3_nothink").render(m, o).text, base);
  o.enable_thinking = false;
  EXPECT_EQ(ChatTemplate::get("qwen3").render(m, o).text, base + "<think>\n\n</think>\n\n");
  // Other templates ignore it.
  EXPECT_EQ(ChatTemplate::get("qwen").render(m, o).text,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + base);
}

TEST(ChatTemplate, Qwen3SpanKeepsThinkBlockOfFinalTurn) {
  const std::vector<ChatMessage> m = {{"user", "Q1", ""}, {"assistant", "A1", "R1"}, {"user", "Q2", ""},
                                      {"assistant", "A2", "R2"}};
  const RenderedChat r = ChatTemplate::get("qwen3").render(m);
  ASSERT_EQ(r.assistant_spans.size(), 2u);
  EXPECT_EQ(span_text(r, 0), "A1<|im_end|>");  // history turns lose their thinking
  EXPECT_EQ(span_text(r, 1), "<think>\nR2\n</think>\n\nA2<|im_end|>");
}

// ---- MedicalGPT template.py references ----

TEST(ChatTemplate, MatchesMedicalGptTemplates) {
  const json doc = json::parse(read_fixture("chat/medicalgpt_expected.json"));
  std::set<std::string> seen;
  for (const json& c : doc.at("cases")) {
    const std::string name = c.at("template");
    SCOPED_TRACE(name + " / " + c.at("id").get<std::string>());
    const RenderedChat out = ChatTemplate::get(name).render(messages_of(c.at("messages")), options_of(c));
    EXPECT_EQ(out.text, c.at("text").get<std::string>());
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    for (const json& s : c.at("assistant_spans")) spans.emplace_back(s.at(0), s.at(1));
    EXPECT_EQ(out.assistant_spans, spans);
    seen.insert(name);
  }
  EXPECT_GE(seen.size(), 26u);
}

TEST(ChatTemplate, VicunaByHand) {
  // Spelled out from template.py: system + sep, "USER: {query} ASSISTANT:", answers + "</s>".
  const auto m = conv({{"system", "S"}, {"user", "Q1"}, {"assistant", "A1"}, {"user", "Q2"}, {"assistant", "A2"}});
  const RenderedChat r = ChatTemplate::get("vicuna").render(m);
  EXPECT_EQ(r.text, "S</s>USER: Q1 ASSISTANT:A1</s>USER: Q2 ASSISTANT:A2</s>");
  ASSERT_EQ(r.assistant_spans.size(), 2u);
  EXPECT_EQ(span_text(r, 0), "A1</s>");
  EXPECT_EQ(span_text(r, 1), "A2</s>");
}

// ---- every template ----

TEST(ChatTemplate, EveryTemplateRendersTwoRoundsWithSystem) {
  const auto full = conv({{"system", "SYS-TEXT"}, {"user", "QUESTION-ONE"}, {"assistant", "ANSWER-ONE"},
                          {"user", "QUESTION-TWO"}, {"assistant", "ANSWER-TWO"}});
  const std::vector<ChatMessage> prompt(full.begin(), full.end() - 1);
  for (const std::string& name : ChatTemplate::names()) {
    SCOPED_TRACE(name);
    const ChatTemplate& t = ChatTemplate::get(name);
    EXPECT_EQ(t.name(), name);
    EXPECT_FALSE(t.stop_strings().empty());
    const RenderedChat r = t.render(full);
    for (const char* piece : {"SYS-TEXT", "QUESTION-ONE", "QUESTION-TWO"})
      EXPECT_NE(r.text.find(piece), std::string::npos) << piece;
    ASSERT_EQ(r.assistant_spans.size(), 2u);
    EXPECT_EQ(span_text(r, 0).rfind("ANSWER-ONE", 0), 0u) << span_text(r, 0);
    EXPECT_EQ(span_text(r, 1).rfind(name.rfind("qwen3", 0) == 0 ? "<think>\n\n</think>\n\nANSWER-TWO" : "ANSWER-TWO", 0),
              0u)
        << span_text(r, 1);
    // Nothing but the answer and its end marker is trained on.
    EXPECT_EQ(span_text(r, 0).find("QUESTION"), std::string::npos);

    // The generation prompt is the text the model continues: a prefix of the full render, and the
    // last span starts where it ends (qwen3_nothink's prompt already holds the empty think block).
    RenderOptions gen;
    gen.add_generation_prompt = true;
    const RenderedChat p = t.render(prompt, gen);
    EXPECT_EQ(r.text.compare(0, p.text.size(), p.text), 0) << p.text;
    if (name.find("nothink") == std::string::npos) {
      EXPECT_EQ(r.assistant_spans[1].first, p.text.size());
    }

    // options.system is the same as a leading system message; a system message wins over it.
    RenderOptions sys;
    sys.system = "SYS-TEXT";
    const std::vector<ChatMessage> no_system(full.begin() + 1, full.end());
    EXPECT_EQ(t.render(no_system, sys).text, r.text);
    sys.system = "OTHER";
    EXPECT_EQ(t.render(full, sys).text, r.text);
  }
}

TEST(ChatTemplate, NamesCoverTheRegistry) {
  const std::vector<std::string> names = ChatTemplate::names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  const std::set<std::string> have(names.begin(), names.end());
  EXPECT_EQ(have.size(), names.size());
  for (const char* n : {"vicuna", "base", "empty", "alpaca", "baichuan", "baichuan2", "ziya", "linly", "chatglm",
                        "chatglm2", "chatglm3", "phoenix", "belle", "aquila", "intern", "intern2", "starchat",
                        "llama2", "llama3", "llama2-zh", "mistral", "xverse", "chatml", "deepseek", "deepseek3",
                        "deepseekcoder", "yi", "orion", "cohere", "qwen", "qwen2.5", "qwen3", "qwen3_nothink",
                        "qwen3_5", "qwen3_5_nothink", "gemma", "phi3", "zephyr"})
    EXPECT_TRUE(have.count(n)) << n;
}

TEST(ChatTemplate, StopStrings) {
  using V = std::vector<std::string>;
  EXPECT_EQ(ChatTemplate::get("qwen").stop_strings(), V{"<|im_end|>"});
  EXPECT_EQ(ChatTemplate::get("qwen3_5_nothink").stop_strings(), V{"<|im_end|>"});
  EXPECT_EQ(ChatTemplate::get("llama3").stop_strings(), V{"<|eot_id|>"});
  EXPECT_EQ(ChatTemplate::get("vicuna").stop_strings(), V{"</s>"});
  EXPECT_EQ(ChatTemplate::get("chatglm3").stop_strings(), (V{"<|user|>", "</s>"}));
  EXPECT_EQ(ChatTemplate::get("deepseekcoder").stop_strings(), V{"<|EOT|>"});
  EXPECT_EQ(ChatTemplate::get("gemma").stop_strings(), V{"<end_of_turn>"});
}

TEST(ChatTemplate, Llama3TrimsLikePythonStrip) {
  // U+00A0, U+2003 and U+0085 are str.isspace(); U+FEFF is not; a stray continuation byte is kept.
  const auto m = conv({{"user", " \u00a0x\u2003\u0085"}, {"assistant", "\ufeffy\t"}, {"user", "\x85z"}});
  EXPECT_EQ(ChatTemplate::get("llama3").render(m).text,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n\ufeffy<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n\x85z<|eot_id|>");
}

TEST(ChatTemplate, PlaceholdersInContentAreLiteral) {
  const auto m = conv({{"system", "{query}"}, {"user", "{system} {query}"}, {"assistant", "{query}"}});
  EXPECT_EQ(ChatTemplate::get("llama2").render(m).text,
            "[INST] <<SYS>>\n{query}\n<</SYS>>\n\n{system} {query} [/INST]{query}</s>");
  EXPECT_EQ(ChatTemplate::get("vicuna").render(m).text, "{query}</s>USER: {system} {query} ASSISTANT:{query}</s>");
}

TEST(ChatTemplate, EmptySystemFallsBackToDefaultInMedicalGptTemplates) {
  // template.py: `system_prompt or self.system_prompt`; Hugging Face templates render it as given.
  const auto m = conv({{"system", ""}, {"user", "Q"}});
  EXPECT_EQ(ChatTemplate::get("alpaca").render(m).text,
            "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\nQ\n\n### Response:\n");
  EXPECT_EQ(ChatTemplate::get("qwen").render(m).text, "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n");
}

// ---- errors ----

std::string error_of(const std::string& name, const std::vector<ChatMessage>& m) {
  try {
    ChatTemplate::get(name).render(m);
  } catch (const medgpt::util::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ChatTemplate, UnknownNameListsKnownNames) {
  try {
    ChatTemplate::get("qwen4");
    FAIL() << "no error";
  } catch (const medgpt::util::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("unknown template 'qwen4'"), std::string::npos) << what;
    EXPECT_NE(what.find("qwen3_nothink"), std::string::npos) << what;
    EXPECT_NE(what.find("vicuna"), std::string::npos) << what;
  }
}

TEST(ChatTemplate, RejectsBadConversations) {
  auto has = [](const std::string& what, const std::string& piece) {
    return what.find(piece) != std::string::npos;
  };
  std::string e = error_of("qwen", {});
  EXPECT_TRUE(has(e, "no messages")) << e;
  e = error_of("qwen", conv({{"system", "S"}}));
  EXPECT_TRUE(has(e, "only a system message")) << e;
  e = error_of("qwen3", conv({{"user", "Q"}, {"tool", "{}"}}));
  EXPECT_TRUE(has(e, "chat template 'qwen3'") && has(e, "message 1 has role 'tool'")) << e;
  e = error_of("llama3", conv({{"user", "Q"}, {"user", "Q2"}}));
  EXPECT_TRUE(has(e, "message 1 has role 'user' where 'assistant' was expected")) << e;
  e = error_of("vicuna", conv({{"assistant", "A"}, {"user", "Q"}}));
  EXPECT_TRUE(has(e, "message 0 has role 'assistant' where 'user' was expected")) << e;
  e = error_of("gemma", conv({{"user", "Q"}, {"assistant", "A"}, {"system", "S"}}));
  EXPECT_TRUE(has(e, "message 2 has role 'system' where 'user' was expected")) << e;
  e = error_of("qwen", conv({{"user", "Q"}, {"", "A"}}));
  EXPECT_TRUE(has(e, "message 1 has role ''")) << e;
}

}  // namespace
