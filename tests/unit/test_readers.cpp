// Record readers (src/data/readers): every format MedicalGPT users feed, read from real files under
// tests/fixtures/data/, and every kind of bad record reported as "FILE:LINE: field: problem; hint".
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "error_of.hpp"
#include "data/readers/readers.hpp"
#include "util/error.hpp"

namespace {

using namespace medgpt;
using medgpt::test::error_of;
using namespace medgpt::data;
using json = nlohmann::json;

std::string fx(const std::string& rel) { return std::string(MEDGPT_FIXTURES_DIR) + "/data/" + rel; }

// "where: field: problem" without the "; what to do" hint.
std::string head(const std::string& msg) { return msg.substr(0, msg.find("; ")); }

struct Rec {
  json j;
  std::string where;
};

std::vector<Rec> read_all(const std::string& path, Kind kind, PtDocSep sep = PtDocSep::Line) {
  std::vector<Rec> out;
  for_each_record(path, kind, sep, [&](const json& j, const std::string& where) { out.push_back({j, where}); });
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parses each line of `path` on its own, as `medgpt prepare` does with its byte range, and returns
// the error of every line (empty for a good line).
std::vector<std::string> line_errors(const std::string& path, Kind kind) {
  const std::string text = slurp(path);
  std::vector<std::string> errors;
  std::size_t pos = 0;
  for (int line = 1; pos < text.size(); ++line) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string_view l(text.data() + pos, nl - pos);
    pos = nl + 1;
    const std::string where = util::at(path, line);
    errors.push_back(error_of([&] { check_record(kind, parse_record_line(l, where), where); }));
  }
  return errors;
}

// Each expected entry is the message head for that line ("" = the line is good); a head ending in
// "..." is a prefix (for the JSON parser's own wording).
void expect_line_errors(const std::string& rel, Kind kind, const std::vector<std::string>& expected) {
  const std::string path = fx(rel);
  const auto got = line_errors(path, kind);
  ASSERT_EQ(got.size(), expected.size()) << rel;
  for (std::size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(rel + " line " + std::to_string(i + 1) + ": " + got[i]);
    if (expected[i].empty()) {
      EXPECT_EQ(got[i], "");
      continue;
    }
    std::string want = path + ":" + std::to_string(i + 1) + ": " + expected[i];
    if (want.size() > 3 && want.compare(want.size() - 3, 3, "...") == 0) {
      want.resize(want.size() - 3);
      EXPECT_EQ(head(got[i]).substr(0, want.size()), want);
    } else {
      EXPECT_EQ(head(got[i]), want);
    }
    EXPECT_NE(got[i].find("; "), std::string::npos) << "no hint on what to do";
    EXPECT_EQ(got[i].find("; "), head(got[i]).size()) << "the problem itself contains \"; \"";
    EXPECT_EQ(got[i].find('\n'), std::string::npos) << "not one line";
  }
}

std::vector<std::pair<std::string, std::string>> roles(const std::vector<ChatMessage>& m) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& x : m) out.emplace_back(x.role, x.content);
  return out;
}
using RC = std::vector<std::pair<std::string, std::string>>;

// ---------------------------------------------------------------------------------------------
// kind names

TEST(Readers, KindAndDocSepNames) {
  for (Kind k : {Kind::Pt, Kind::Sft, Kind::Pref, Kind::Kto, Kind::Prompt}) EXPECT_EQ(parse_kind(to_string(k)), k);
  EXPECT_EQ(head(error_of([] { parse_kind("dpo"); })), "--kind: unknown data kind 'dpo'");
  EXPECT_EQ(parse_doc_sep("line"), PtDocSep::Line);
  EXPECT_EQ(parse_doc_sep("blank"), PtDocSep::Blank);
  EXPECT_STREQ(to_string(PtDocSep::Blank), "blank");
  EXPECT_EQ(head(error_of([] { parse_doc_sep("para"); })), "--pt.doc_sep: unknown document separator 'para'");
}

// ---------------------------------------------------------------------------------------------
// pt

TEST(Readers, PtTextOneDocumentPerLine) {
  const auto recs = read_all(fx("pt/docs.txt"), Kind::Pt, PtDocSep::Line);
  ASSERT_EQ(recs.size(), 6u);  // blank and whitespace-only lines are not documents
  EXPECT_EQ(parse_pt(recs[0].j, recs[0].where).text, "Hypertension is persistently raised blood pressure.");
  EXPECT_EQ(parse_pt(recs[1].j, recs[1].where).text, "It often has no symptoms.");  // "\r\n" stripped
  EXPECT_EQ(recs[2].j["text"], "高血压是指血压持续升高。");
  EXPECT_EQ(recs[2].where, fx("pt/docs.txt") + ":4");
  EXPECT_EQ(recs[5].where, fx("pt/docs.txt") + ":8");
}

TEST(Readers, PtTextBlankLineSeparatedDocuments) {
  const auto recs = read_all(fx("pt/docs.txt"), Kind::Pt, PtDocSep::Blank);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].j["text"], "Hypertension is persistently raised blood pressure.\nIt often has no symptoms.");
  EXPECT_EQ(recs[1].j["text"], "高血压是指血压持续升高。");
  EXPECT_EQ(recs[2].j["text"], "Diabetes mellitus raises blood glucose.\nType 2 is the most common form.\nExercise helps.");
  EXPECT_EQ(recs[0].where, fx("pt/docs.txt") + ":1");
  EXPECT_EQ(recs[1].where, fx("pt/docs.txt") + ":4");
  EXPECT_EQ(recs[2].where, fx("pt/docs.txt") + ":6");  // where the document starts
}

TEST(Readers, PtJsonlAndByteOrderMark) {
  const auto recs = read_all(fx("pt/docs.jsonl"), Kind::Pt);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(parse_pt(recs[1].j, recs[1].where).text, "哮喘是一种慢性气道炎症。");  // extra fields ignored
  EXPECT_EQ(recs[1].where, fx("pt/docs.jsonl") + ":3");                             // the blank line counts
  const auto bom = read_all(fx("pt/bom.jsonl"), Kind::Pt);
  ASSERT_EQ(bom.size(), 1u);
  EXPECT_EQ(parse_pt(bom[0].j, bom[0].where).text, "A file saved with a byte-order mark.");
}

TEST(Readers, PtTextInvalidUtf8NamesLineAndColumn) {
  const std::string p = fx("pt/bad_utf8.txt");
  for (PtDocSep sep : {PtDocSep::Line, PtDocSep::Blank}) {
    const std::string e = error_of([&] { read_all(p, Kind::Pt, sep); });
    EXPECT_EQ(head(e), p + ":3: text: invalid UTF-8 (byte 0xC4 at column 5)");
    EXPECT_NE(e.find("iconv -f GBK -t UTF-8"), std::string::npos) << e;
  }
}

TEST(Readers, PtBadRecords) {
  expect_line_errors("pt/bad.jsonl", Kind::Pt,
                     {"",
                      "text: expected a string, got a number",
                      "text: missing",
                      "not valid JSON at column 24: syntax error while parsing value - invalid string: missing closing quote...",
                      "text: invalid UTF-8 (byte 0xC4 at column 20)",
                      "the record is a string, not a JSON object"});
}

// ---------------------------------------------------------------------------------------------
// sft

TEST(Readers, SftShareGpt) {
  const auto recs = read_all(fx("sft/sharegpt.jsonl"), Kind::Sft);
  ASSERT_EQ(recs.size(), 5u);
  std::vector<SftRecord> s;
  for (const auto& r : recs) s.push_back(parse_sft(r.j, r.where));
  EXPECT_EQ(roles(s[0].messages), (RC{{"user", "我最近总是头痛，怎么办？"}, {"assistant", "头痛的原因很多，建议先记录发作时间和诱因。"}}));
  EXPECT_EQ(roles(s[1].messages), (RC{{"system", "You are a careful medical assistant."},
                                     {"user", "What is a normal resting heart rate?"},
                                     {"assistant", "For adults, 60 to 100 beats per minute."},
                                     {"user", "And for athletes?"},
                                     {"assistant", "Often 40 to 60."}}));
  // user/assistant role names; the top-level system_prompt becomes the system message.
  EXPECT_EQ(roles(s[2].messages), (RC{{"system", "你是一名医生。"},
                                     {"user", "Can I take ibuprofen with a cold?"},
                                     {"assistant", "Usually yes, with food; ask a pharmacist if unsure."}}));
  // A system turn in the conversation wins over system_prompt (MedicalGPT).
  EXPECT_EQ(roles(s[3].messages), (RC{{"system", "Conversation system wins."}, {"user", "q"}, {"assistant", "a"}}));
  // function_call -> assistant "Action: ...\nAction Input: <Python json.dumps>", observation -> user.
  EXPECT_EQ(roles(s[4].messages),
            (RC{{"user", "What's the weather in Beijing for 3 days?"},
                {"assistant", "Action: get_weather\nAction Input: {\"city\": \"北京\", \"days\": 3}"},
                {"user", "Observation: {\"temp\": \"25C\"}"},
                {"assistant", "It will be around 25°C."}}));
}

TEST(Readers, SftGzipReadsLikeThePlainFile) {
  const auto plain = read_all(fx("sft/sharegpt.jsonl"), Kind::Sft);
  const auto gz = read_all(fx("sft/sharegpt.jsonl.gz"), Kind::Sft);
  ASSERT_EQ(gz.size(), plain.size());
  for (std::size_t i = 0; i < gz.size(); ++i) {
    EXPECT_EQ(gz[i].j, plain[i].j);
    EXPECT_EQ(gz[i].where, fx("sft/sharegpt.jsonl.gz") + ":" + std::to_string(i + 1));
  }
  const std::string e = error_of([] { read_all(fx("sft/truncated.jsonl.gz"), Kind::Sft); });
  EXPECT_EQ(e.rfind(fx("sft/truncated.jsonl.gz") + ": cannot decompress", 0), 0u) << e;
}

TEST(Readers, SftOpenAiMessages) {
  const auto recs = read_all(fx("sft/openai.jsonl"), Kind::Sft);
  ASSERT_EQ(recs.size(), 2u);
  const SftRecord a = parse_sft(recs[0].j, recs[0].where);
  EXPECT_EQ(roles(a.messages), (RC{{"system", "Be brief."}, {"user", "Is fever always an infection?"}, {"assistant", "No."}}));
  EXPECT_EQ(a.messages[2].reasoning_content, "Fever has other causes.");
  EXPECT_EQ(parse_sft(recs[1].j, recs[1].where).messages.size(), 4u);
}

TEST(Readers, SftAlpacaJsonArray) {
  const std::string p = fx("sft/alpaca.json");
  const auto recs = read_all(p, Kind::Sft);
  ASSERT_EQ(recs.size(), 3u);
  // A .json array: the line the element starts on, and its number in the array.
  EXPECT_EQ(recs[0].where, p + ":2 (record 1)");
  EXPECT_EQ(recs[1].where, p + ":7 (record 2)");
  EXPECT_EQ(recs[2].where, p + ":19 (record 3)");
  EXPECT_EQ(roles(parse_sft(recs[0].j, recs[0].where).messages),
            (RC{{"user", "解释什么是贫血。"}, {"assistant", "贫血是指血液中红细胞或血红蛋白低于正常。"}}));
  // instruction + "\n\n" + input (MedicalGPT's convert_dataset.py); history before; system first.
  EXPECT_EQ(roles(parse_sft(recs[1].j, recs[1].where).messages),
            (RC{{"system", "You are a translator."},
                {"user", "What do you do?"},
                {"assistant", "I translate."},
                {"user", "Translate to English.\n\n发烧"},
                {"assistant", "Fever"}}));
  // MedicalGPT's "qa" form: input/output only.
  EXPECT_EQ(roles(parse_sft(recs[2].j, recs[2].where).messages),
            (RC{{"user", "什么是感冒？"}, {"assistant", "感冒是上呼吸道病毒感染。"}}));
}

TEST(Readers, SftOneLineJsonArrayTellsRecordsApart) {
  const std::string p = fx("sft/one_line.json");
  const auto recs = read_all(p, Kind::Sft);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].where, p + ":1 (record 1)");
  EXPECT_EQ(recs[1].where, p + ":1 (record 2)");
  EXPECT_EQ(parse_sft(recs[1].j, recs[1].where).messages.size(), 5u);
}

TEST(Readers, SftBadRecords) {
  expect_line_errors(
      "sft/bad.jsonl", Kind::Sft,
      {"",
       "not valid JSON at column 55: syntax error while parsing array - unexpected end of input...",
       "conversations[0].value: missing",
       "conversations[0].value: expected a string, got a number",
       "conversations: empty conversation (no turns)",
       "conversations[2]: two assistant turns in a row (conversations[1] and conversations[2]), but turns must "
       "alternate user/assistant",
       "conversations[1].value: invalid UTF-8 (byte 0xC4 at column 80)",
       "conversations[0]: the conversation starts with an assistant turn, but turns must alternate user/assistant "
       "starting with the user",
       "conversations[1].from: unknown role 'bot'",
       "conversations[2]: the conversation ends with a user turn that has no answer",
       "conversations: expected a list of turns, got a string",
       "the record is a list, not a JSON object",
       "conversations: missing (no conversations, messages or instruction/output field)",
       "messages[1]: a system turn after the first turn",
       "output: missing",
       "history[0]: expected a [question, answer] pair, got a list of 1",
       "conversations[1].value: a function_call turn does not hold JSON",
       "messages[0].content: is null",
       "conversations: the conversation has no user turn"});
}

TEST(Readers, SftLeadingAssistantMessageSaysWhatToDo) {
  const auto errors = line_errors(fx("sft/bad.jsonl"), Kind::Sft);
  EXPECT_NE(errors[7].find("starts with an assistant turn, but turns must alternate user/assistant starting with "
                           "the user; add the user turn it answers, or remove it (MedicalGPT drops a leading "
                           "assistant turn silently)"),
            std::string::npos)
      << errors[7];
  EXPECT_NE(errors[5].find("(conversations[1] and conversations[2]), but turns must alternate user/assistant; "
                           "merge them into one turn or add the missing user turn between them"), std::string::npos)
      << errors[5];
}

TEST(Readers, SftMedicalGptLenientRules) {
  const auto recs = read_all(fx("sft/lenient.jsonl"), Kind::Sft);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_NE(error_of([&] { parse_sft(recs[0].j, recs[0].where); }), "");  // strict by default
  TurnRules rules;
  rules.drop_leading_assistant = rules.merge_same_role = rules.drop_unanswered_user = true;
  EXPECT_EQ(roles(parse_sft(recs[0].j, recs[0].where, rules).messages),
            (RC{{"user", "q1\nq1 more"}, {"assistant", "a1\na1 more"}}));
}

TEST(Readers, SftStopsAtTheFirstBadLineOfAFile) {
  const std::string p = fx("sft/bad.jsonl");
  const std::string e = error_of([&] { read_all(p, Kind::Sft); });
  EXPECT_EQ(e.rfind(p + ":2: not valid JSON", 0), 0u) << e;
}

TEST(Readers, JsonArrayErrors) {
  const std::string bad = fx("sft/array_bad.json");
  const auto recs = read_all(bad, Kind::Sft);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(head(error_of([&] { parse_sft(recs[1].j, recs[1].where); })),
            bad + ":14 (record 2): conversations[0].value: expected a string, got a number");
  const std::string unclosed = fx("sft/array_unclosed.json");
  EXPECT_EQ(head(error_of([&] { read_all(unclosed, Kind::Sft); })),
            unclosed + ":3: the JSON array is not closed (no ']' at the end)");
}

TEST(Readers, EmptyFilesHaveNoRecords) {
  for (const char* rel : {"sft/empty.jsonl", "sft/blank.jsonl", "sft/array_empty.json"}) {
    const std::string p = fx(rel);
    EXPECT_EQ(head(error_of([&] { read_all(p, Kind::Sft); })), p + ": no records") << rel;
  }
}

TEST(Readers, TextFilesAreOnlyForPt) {
  const std::string p = fx("pt/docs.txt");
  EXPECT_EQ(error_of([&] { read_all(p, Kind::Sft); }),
            p + ": a .txt file holds plain text, which only --kind pt reads; give sft data as .jsonl (one JSON "
                "object per line) or .json");
}

// ---------------------------------------------------------------------------------------------
// pref

TEST(Readers, PrefMedicalGptFormat) {
  const auto recs = read_all(fx("pref/medicalgpt.jsonl"), Kind::Pref);
  ASSERT_EQ(recs.size(), 2u);
  const PrefRecord a = parse_pref(recs[0].j, recs[0].where);
  EXPECT_EQ(roles(a.prompt), (RC{{"user", "感冒了需要吃抗生素吗？"}}));  // "system": "" is no system prompt
  EXPECT_EQ(a.chosen, "普通感冒多由病毒引起，抗生素无效，不建议使用。");
  EXPECT_EQ(a.rejected, "需要，马上吃阿莫西林。");
  const PrefRecord b = parse_pref(recs[1].j, recs[1].where);
  EXPECT_EQ(roles(b.prompt), (RC{{"system", "你是医生。"}, {"user", "我发烧了"}, {"assistant", "体温多少？"}, {"user", "38.5度"}}));
}

TEST(Readers, PrefConversationsFormat) {
  const auto recs = read_all(fx("pref/conversations.jsonl"), Kind::Pref);
  ASSERT_EQ(recs.size(), 2u);
  const PrefRecord a = parse_pref(recs[0].j, recs[0].where);
  EXPECT_EQ(roles(a.prompt), (RC{{"user", "Is aspirin safe for children?"}}));
  EXPECT_EQ(a.chosen, "Not for children with viral illness: risk of Reye's syndrome.");
  EXPECT_EQ(a.rejected, "Yes, always.");
  const PrefRecord b = parse_pref(recs[1].j, recs[1].where);
  EXPECT_EQ(roles(b.prompt), (RC{{"system", "Be safe."}, {"user", "q1"}, {"assistant", "a1"}, {"user", "q2"}}));
  EXPECT_EQ(b.chosen, "good");
}

TEST(Readers, PrefTrlFormats) {
  const auto recs = read_all(fx("pref/trl.jsonl"), Kind::Pref);
  ASSERT_EQ(recs.size(), 3u);
  const PrefRecord a = parse_pref(recs[0].j, recs[0].where);  // strings
  EXPECT_EQ(roles(a.prompt), (RC{{"user", "What lowers LDL cholesterol?"}}));
  EXPECT_EQ(a.rejected, "Eating more butter.");
  const PrefRecord b = parse_pref(recs[1].j, recs[1].where);  // message lists
  EXPECT_EQ(roles(b.prompt), (RC{{"user", "Dose of paracetamol for adults?"}}));
  EXPECT_EQ(b.chosen, "Up to 4 g a day.");
  EXPECT_EQ(b.rejected, "As much as you like.");
  const PrefRecord c = parse_pref(recs[2].j, recs[2].where);  // implicit prompt
  EXPECT_EQ(roles(c.prompt), (RC{{"user", "Can I drink alcohol with metronidazole?"}}));
  EXPECT_EQ(c.chosen, "No.");
  EXPECT_EQ(c.rejected, "Sure.");
}

TEST(Readers, PrefBadRecords) {
  expect_line_errors("pref/bad.jsonl", Kind::Pref,
                     {"",
                      "response_rejected: missing",
                      "history: expected a list of [question, answer] pairs, got a string",
                      "conversations[1]: the prompt ends with an assistant turn",
                      "conversations: empty prompt (no turns)",
                      "chosen: expected a string or a list with one assistant message, got a number",
                      "chosen[0]: the answer is a user message, not an assistant message",
                      "prompt[1]: two user turns in a row (prompt[0] and prompt[1]), but turns must alternate user/assistant",
                      "response_chosen: invalid UTF-8 (byte 0xC4 at column 39)",
                      "rejected[0]: differs from chosen[0]",
                      "not valid JSON at column 68: syntax error while parsing object key - unexpected '}'...",
                      "question: missing (no question/response_chosen/response_rejected, conversations/chosen/rejected "
                      "or prompt/chosen/rejected field)"});
}

// ---------------------------------------------------------------------------------------------
// kto

TEST(Readers, KtoRecords) {
  const auto recs = read_all(fx("kto/good.jsonl"), Kind::Kto);
  ASSERT_EQ(recs.size(), 2u);
  const KtoRecord a = parse_kto(recs[0].j, recs[0].where);
  EXPECT_EQ(roles(a.prompt), (RC{{"user", "Should I finish my antibiotics course?"}}));
  EXPECT_EQ(a.completion, "Yes, unless your doctor says otherwise.");
  EXPECT_TRUE(a.label);
  const KtoRecord b = parse_kto(recs[1].j, recs[1].where);
  EXPECT_EQ(roles(b.prompt), (RC{{"system", "Be safe."}, {"user", "Can I double my insulin dose?"}}));
  EXPECT_EQ(b.completion, "Sure, why not.");
  EXPECT_FALSE(b.label);
}

TEST(Readers, KtoBadRecords) {
  expect_line_errors("kto/bad.jsonl", Kind::Kto,
                     {"",
                      "label: expected true or false, got a string",
                      "completion: missing",
                      "label: missing",
                      "prompt: empty prompt (no turns)",
                      "prompt[1]: the prompt ends with an assistant turn",
                      "prompt: invalid UTF-8 (byte 0xC4 at column 13)",
                      "not valid JSON at column 48: syntax error while parsing value - invalid literal, last read: '\"label\": tru}'...",
                      "prompt: expected a string or a list of messages, got a number"});
}

// ---------------------------------------------------------------------------------------------
// prompt

TEST(Readers, PromptRecords) {
  const auto recs = read_all(fx("prompt/good.jsonl"), Kind::Prompt);
  ASSERT_EQ(recs.size(), 6u);
  std::vector<PromptRecord> p;
  for (const auto& r : recs) p.push_back(parse_prompt(r.j, r.where));
  EXPECT_EQ(roles(p[0].prompt), (RC{{"user", "肛门病变可能是什么疾病的症状?"}}));
  EXPECT_EQ(p[0].answer, "食管克罗恩病");
  EXPECT_TRUE(p[0].options.empty());
  EXPECT_EQ(p[1].answer, "46");  // a numeric answer as its JSON text
  // Multiple choice: options kept, and shown to the model under the question.
  EXPECT_EQ(p[2].answer, "C");
  EXPECT_EQ(p[2].options.size(), 5u);
  EXPECT_EQ(p[2].options.at("E"), "Vitamin K");
  EXPECT_EQ(roles(p[2].prompt), (RC{{"user", "Which vitamin deficiency causes scurvy?\nA. Vitamin A\nB. Vitamin B12\n"
                                             "C. Vitamin C\nD. Vitamin D\nE. Vitamin K"}}));
  EXPECT_EQ(roles(p[3].prompt), (RC{{"system", "Answer briefly."}, {"user", "List two symptoms of anaemia."}}));
  EXPECT_EQ(p[3].answer, "");
  // messages ending with the assistant: that turn is the reference answer.
  EXPECT_EQ(roles(p[4].prompt), (RC{{"user", "What is BMI?"}}));
  EXPECT_EQ(p[4].answer, "Weight in kg divided by height in m squared.");
  // options as a list are lettered A, B, ...; the answer letter is trimmed.
  EXPECT_EQ(p[5].options.at("B"), "no");
  EXPECT_EQ(p[5].answer, "B");
}

TEST(Readers, PromptBadRecords) {
  expect_line_errors("prompt/bad.jsonl", Kind::Prompt,
                     {"",
                      "answer: 'F' is not one of the option letters (A, B, C, D, E)",
                      "answer: missing, and a multiple-choice question needs the letter of the right option",
                      "options.1: option keys must be single capital letters",
                      "options: a multiple-choice question needs at least two options",
                      "question: expected a string, got a number",
                      "question: missing (no question, prompt or messages field)",
                      "messages: empty prompt (no turns)",
                      "answer: expected a string or a number, got a list",
                      "options.B: invalid UTF-8 (byte 0xC4 at column 48)",
                      "not valid JSON at column 25: syntax error while parsing object - unexpected string literal...",
                      "messages[1]: messages end with an assistant turn and \"answer\" is given too"});
}

// ---------------------------------------------------------------------------------------------
// records of a JSON value given directly (what prepare does with its own lines)

TEST(Readers, ParseRecordLineNamesNestedFieldOfInvalidUtf8) {
  const std::string line = std::string(R"({"a": {"b": [1, {"c": "ok"}, {"d": ")") + "\xFF" + R"("}]}})";
  EXPECT_EQ(head(error_of([&] { parse_record_line(line, "x.jsonl:9"); })),
            "x.jsonl:9: a.b[2].d: invalid UTF-8 (byte 0xFF at column 37)");
  const std::string in_key = std::string(R"({"ok": 1, "k)") + "\xC3" + R"(": 2})";
  EXPECT_EQ(head(error_of([&] { parse_record_line(in_key, "x.jsonl:2"); })),
            "x.jsonl:2: a key: invalid UTF-8 (byte 0xC3 at column 13)");
  EXPECT_EQ(first_invalid_utf8("ok \xEF\xBF\xBD fine"), std::string_view::npos);  // a real U+FFFD is valid
}

// ---------------------------------------------------------------------------------------------
// byte ranges (how prepare splits a file among ranks)

std::vector<std::string> records_in_ranges(const std::string& path, Kind kind, PtDocSep sep,
                                           const std::vector<std::size_t>& cuts) {
  const RecordFile f(path);
  std::vector<std::string> out;
  std::vector<std::size_t> bounds{0};
  bounds.insert(bounds.end(), cuts.begin(), cuts.end());
  bounds.push_back(f.bytes().size());
  for (std::size_t r = 0; r + 1 < bounds.size(); ++r)
    for_each_record_in(f, kind, sep, bounds[r], bounds[r + 1],
                       [&](const json& j, const std::string& where) { out.push_back(where + " " + j.dump()); });
  return out;
}

TEST(Readers, ByteRangesSplitEveryRecordExactlyOnce) {
  const struct {
    const char* rel;
    Kind kind;
    PtDocSep sep;
  } cases[] = {{"sft/sharegpt.jsonl", Kind::Sft, PtDocSep::Line}, {"pt/docs.txt", Kind::Pt, PtDocSep::Line},
               {"pt/docs.txt", Kind::Pt, PtDocSep::Blank},       {"sft/alpaca.json", Kind::Sft, PtDocSep::Line},
               {"pt/docs.jsonl", Kind::Pt, PtDocSep::Line},      {"sft/sharegpt.jsonl.gz", Kind::Sft, PtDocSep::Line}};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.rel) + " " + to_string(c.sep));
    const std::string p = fx(c.rel);
    const auto whole = records_in_ranges(p, c.kind, c.sep, {});
    ASSERT_FALSE(whole.empty());
    const std::size_t size = RecordFile(p).bytes().size();
    for (std::size_t cut = 0; cut <= size; ++cut) ASSERT_EQ(records_in_ranges(p, c.kind, c.sep, {cut}), whole) << cut;
    for (std::size_t a = 0; a <= size; a += 7)
      for (std::size_t b = a; b <= size; b += 11) ASSERT_EQ(records_in_ranges(p, c.kind, c.sep, {a, b}), whole) << a << "," << b;
  }
}

// ---------------------------------------------------------------------------------------------
// --input folders

TEST(Readers, ExpandRecordInputs) {
  const std::string d = fx("dir");
  EXPECT_EQ(expand_record_inputs({d}, Kind::Sft),
            (std::vector<std::string>{d + "/a.jsonl", d + "/c.jsonl.gz", d + "/sub/b.json"}));  // notes.txt left out
  EXPECT_EQ(expand_record_inputs({d}, Kind::Pt),
            (std::vector<std::string>{d + "/a.jsonl", d + "/c.jsonl.gz", d + "/notes.txt", d + "/sub/b.json"}));
  std::size_t n = 0;
  for (const auto& f : expand_record_inputs({d}, Kind::Sft))
    for_each_record(f, Kind::Sft, PtDocSep::Line, [&](const json& j, const std::string& where) {
      parse_sft(j, where);
      ++n;
    });
  EXPECT_EQ(n, 3u);
  const std::string txt_only = fx("txt_only");
  EXPECT_EQ(head(error_of([&] { expand_record_inputs({txt_only}, Kind::Sft); })),
            txt_only + ": folder holds no *.jsonl or *.json file (*.txt is read only for --kind pt)");
  EXPECT_EQ(expand_record_inputs({txt_only}, Kind::Pt), std::vector<std::string>{txt_only + "/readme.txt"});
  EXPECT_EQ(head(error_of([&] { expand_record_inputs({fx("no/such/dir")}, Kind::Sft); })),
            fx("no/such/dir") + ": no such file or folder");
}

}  // namespace
