// make_medical_data: generates medgpt's bundled, synthetic medical demo data
// from an authored table of conditions (inputs/data/conditions.tsv).
//
//   make_medical_data --table inputs/data/conditions.tsv --out inputs/data --seed 42
//
// Writes (relative to --out):
//   pt/medical_encyclopedia.txt     pretraining text, one document per line (zh + en)
//   sft/medical_sft.jsonl           ShareGPT conversations
//   reward/medical_pref.jsonl       MedicalGPT preference pairs
//   reward/medical_kto.jsonl        unpaired KTO examples (balanced labels)
//   grpo/medical_mcq.jsonl          multiple-choice RL prompts with gold letters
//   eval/medical_mcq_eval.jsonl     held-out multiple-choice evaluation set
//
// Output is a pure function of the table and the seed, identical on every
// platform: std::mt19937_64 is fully specified by the C++ standard, and all
// derived choices (uniform integers, shuffles) are implemented here instead of
// using std::uniform_int_distribution / std::shuffle, whose results differ
// between standard libraries. No floating point is used for decisions, no
// unordered container is iterated, and no expression draws from the RNG in two
// unsequenced operands (e.g. both sides of a +), whose order compilers choose
// differently (checked: g++/libstdc++, clang++/libstdc++, clang++/libc++).
//
// The text is synthetic demo data for smoke tests and examples, not medical
// advice.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using std::string;
using std::vector;

namespace {

[[noreturn]] void die(const string& msg) {
  std::cerr << "make_medical_data: " << msg << "\n";
  std::exit(1);
}

// ---------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------
class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  // Uniform integer in [0, n), unbiased (rejection sampling on the raw 64-bit
  // output of mt19937_64).
  size_t uniform(size_t n) {
    if (n <= 1) return 0;
    const uint64_t m = n;
    const uint64_t threshold = (0 - m) % m;  // 2^64 mod m
    uint64_t r;
    do {
      r = g_();
    } while (r < threshold);
    return static_cast<size_t>(r % m);
  }
  bool chance(unsigned percent) { return uniform(100) < percent; }
  template <class T>
  const T& pick(const vector<T>& v) {
    if (v.empty()) die("internal error: pick from an empty list");
    return v[uniform(v.size())];
  }
  template <class T>
  void shuffle(vector<T>& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform(i)]);
  }

 private:
  std::mt19937_64 g_;
};

// Independent, reproducible stream per output file.
Rng stream(uint64_t seed, uint64_t id) { return Rng(seed * 1000003ULL + id * 7919ULL + 1); }

// ---------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------
enum Field { SYM, CAU, TST, TRT, PRV, SEE, NF };
enum { ZH = 0, EN = 1 };

const char* const kFieldName[NF] = {"symptoms", "causes", "tests", "treatments", "prevention", "see_doctor"};

struct Category {
  const char* slug;
  const char* zh;   // noun, e.g. 心血管疾病
  const char* en;   // noun without article
  const char* art;  // "a" or "an"
  const char* enPl; // plural noun
};
const Category kCategories[] = {
    {"cardiovascular", "心血管疾病", "cardiovascular disease", "a", "cardiovascular diseases"},
    {"respiratory", "呼吸系统疾病", "respiratory disease", "a", "respiratory diseases"},
    {"digestive", "消化系统疾病", "digestive disorder", "a", "digestive disorders"},
    {"endocrine", "内分泌代谢疾病", "endocrine or metabolic disorder", "an", "endocrine and metabolic disorders"},
    {"renal", "肾脏和泌尿系统疾病", "kidney or urinary tract disorder", "a", "kidney and urinary tract disorders"},
    {"neurological", "神经系统疾病", "neurological disorder", "a", "neurological disorders"},
    {"psychiatric", "精神心理疾病", "mental health condition", "a", "mental health conditions"},
    {"infectious", "感染性疾病", "infectious disease", "an", "infectious diseases"},
    {"musculoskeletal", "骨骼肌肉和风湿性疾病", "musculoskeletal or rheumatic condition", "a", "musculoskeletal and rheumatic conditions"},
    {"skin", "皮肤病", "skin condition", "a", "skin conditions"},
    {"emergency", "急症", "condition that may need emergency care", "a", "conditions that may need emergency care"},
    {"eye", "眼科疾病", "eye disease", "an", "eye diseases"},
    {"ent", "耳鼻喉疾病", "ear, nose and throat condition", "an", "ear, nose and throat conditions"},
    {"dental", "口腔疾病", "oral and dental condition", "an", "oral and dental conditions"},
    {"womens", "妇科疾病", "women's health condition", "a", "women's health conditions"},
    {"pregnancy", "妊娠相关疾病", "pregnancy-related condition", "a", "pregnancy-related conditions"},
    {"pediatric", "儿童常见病", "common childhood illness", "a", "common childhood illnesses"},
    {"oncology", "恶性肿瘤", "malignant tumor", "a", "malignant tumors"},
    {"hematology", "血液系统疾病", "blood disorder", "a", "blood disorders"},
};
constexpr size_t kNumCategories = sizeof(kCategories) / sizeof(kCategories[0]);

// Category pairs whose conditions overlap too much in symptoms, tests or
// treatments to serve as distractors for each other in multiple-choice items.
const char* const kConfusable[][2] = {
    {"cardiovascular", "respiratory"}, {"cardiovascular", "endocrine"}, {"cardiovascular", "renal"},
    {"cardiovascular", "neurological"}, {"cardiovascular", "emergency"}, {"cardiovascular", "pregnancy"},
    {"cardiovascular", "hematology"}, {"cardiovascular", "pediatric"}, {"respiratory", "infectious"},
    {"respiratory", "ent"}, {"respiratory", "pediatric"}, {"respiratory", "oncology"},
    {"respiratory", "emergency"}, {"digestive", "infectious"}, {"digestive", "oncology"},
    {"digestive", "pediatric"}, {"digestive", "hematology"}, {"digestive", "pregnancy"},
    {"digestive", "womens"}, {"endocrine", "renal"}, {"endocrine", "pregnancy"},
    {"endocrine", "eye"}, {"endocrine", "womens"}, {"endocrine", "musculoskeletal"},
    {"endocrine", "psychiatric"}, {"renal", "womens"}, {"renal", "pregnancy"},
    {"renal", "oncology"}, {"neurological", "psychiatric"}, {"neurological", "infectious"},
    {"neurological", "musculoskeletal"}, {"neurological", "ent"}, {"neurological", "eye"},
    {"neurological", "emergency"}, {"neurological", "pediatric"}, {"psychiatric", "pregnancy"},
    {"psychiatric", "pediatric"}, {"infectious", "skin"}, {"infectious", "pediatric"},
    {"infectious", "ent"}, {"infectious", "womens"}, {"infectious", "hematology"},
    {"infectious", "oncology"}, {"musculoskeletal", "skin"}, {"musculoskeletal", "pediatric"},
    {"skin", "pediatric"}, {"skin", "emergency"}, {"eye", "ent"},
    {"ent", "pediatric"}, {"ent", "oncology"}, {"ent", "dental"},
    {"womens", "pregnancy"}, {"womens", "oncology"}, {"womens", "hematology"},
    {"pediatric", "hematology"}, {"oncology", "hematology"},
};

// Items (English wording) containing one of these are "generic": true of many
// conditions, so they are never used as distractors, never link two
// conditions, and are not shown in "which condition is this?" questions.
// A leading/trailing space marks a whole-word match.
const vector<string> kGeneric[NF] = {
    {"no symptoms", "symptom-free", "fever", "tired", "fatigue", "weak", "exhaust", "pain", "ache", "nausea",
     "vomit", "cough", "weight", "appetite", "dizz", "breath", "sweat", "rash", "itch", "swell", "swollen",
     "diarrh", "bleed", "blood", "mood", "sleep", "confusion", "conscious", "urinat", "urine", "constipation",
     "palpitation", "heartbeat", "heart rate", "anemia", "jaundice", "yellow", " pale", "pallor", "seizure",
     "faint", "vision", "lump", "unwell", "discomfort", "thirst", "hunger", "numb", "tingl", "hives", "welts",
     "throat", "chest", "tight", "abdom", "stomach", "heart", "food", "fluid", "light", "sensitiv", "dehydrat",
     "tolerance", "temperature", " hot"},
    {"genetic", "inherit", "family", " age", "aging", "older", "obes", "smok", "alcohol", "drink", "stress",
     "infection", "virus", "viral", "bacteri", "immun", "diet", "inactiv", "exercise", "diabetes",
     "blood pressure", "hormon", "estrogen", "pregnan", "weight", "unknown", "medicine", "drug", "steroid",
     "sleep", "injur", "surgery", "cancer", "sun", "sugar", "salt", " fat", "autoimmune", "allerg", "sitting",
     "standing", "bed rest", "chemical", "no cause", "spread", "transmission", "contact", "contaminat", "droplet",
     "saliva", "airborne", "trigger", "fluid", "water", "dehydrat", "mental health", "meat", "pickled", "salted",
     "preserved", "food"},
    {"ultrasound", "x-ray", " ct ", "-ct", " mri", "blood count", "blood test", "physical", "history", "clinical",
     "examination", "urinalysis", "urine", "culture", "biopsy", "endoscop", "ecg", "electrocardiogram",
     "imaging", "assessment", "questionnaire", "scale", "based on symptoms", "liver", "thyroid function",
     "glucose", "electrolyte", "kidney function", "inflammation", "c-reactive", "esr", "diagnosis",
     "screening", "interview", "testing", "pcr", "antibod", "viral", "allergy", "exclud", "rule", "ruling",
     "looking for", "checking", "grading", "response to", "blood gas", "oxygen", "saturation"},
    {"rest", "fluid", "pain", "antibiotic", "antiviral", "steroid", "surgery", "surgical", "exercise",
     "lifestyle", "diet", "weight", "physiotherap", "rehabilitat", "counsel", "support", "monitor",
     "follow-up", "observation", "emergency", "oxygen", "fever", "smok", "alcohol", "education", "watchful",
     "immunosuppress", "biologic", "chemotherap", "radiotherap", "nsaid", "ibuprofen", "paracetamol",
     "transplant", "hospital", "insulin", "trigger", "cause", "targeted", "immunotherap", "immune therap",
     "hormone", "cognitive behavioral", "psychotherap", "talking", "antihistamine", "immunoglobulin",
     "blood sugar", "blood pressure", "lipid", "controlling", "relaxation", "stress"},
    {"exercise", "weight", "smok", "alcohol", "drink", "diet", "hand wash", "sleep", "stress", "check",
     "screening", "follow-up", "blood pressure", "blood sugar", "salt", "fluid", "water", "sun", "hygiene",
     "balanced", "healthy", "vaccin", "treating", "medicine", "routine", "infection", "help early",
     "caffeine", "active", "regular", "allergen", "breastfeed", "feeding", "food", "meal", "eating", "binge",
     "lipid", "fiber", "meat", "fruit", "vegetable", "urine", "urinat"},
    {},  // see_doctor: never used in multiple-choice items
};

// Conditions whose "prevention" column lists ways to limit flare-ups, relapses
// or complications rather than to prevent onset. Their prevention text is worded
// accordingly, and they get no "which measure prevents X" questions.
const std::set<string> kLimitedPrevention = {
    "type1_diabetes", "hyperthyroidism", "adrenal_insufficiency", "asthma", "epilepsy", "parkinsons",
    "alzheimers", "bells_palsy", "multiple_sclerosis", "bipolar", "schizophrenia", "ocd", "ibs",
    "ulcerative_colitis", "crohns_disease", "rheumatoid_arthritis", "ankylosing_spondylitis", "sle",
    "vitiligo", "endometriosis", "menopausal_syndrome", "febrile_seizure", "adhd", "kawasaki_disease"};

struct Cond {
  int line = 0;
  bool limitedPrevention = false;
  string id, cat;
  size_t catIndex = 0;
  string name[2];
  vector<string> f[NF][2];
  vector<bool> generic[NF];  // per item, from the English wording
  vector<bool> silent;       // symptom items like "usually causes no symptoms"
};

string lower(string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool isGeneric(Field f, const string& en) {
  const string padded = " " + lower(en) + " ";
  for (const auto& k : kGeneric[f])
    if (padded.find(k) != string::npos) return true;
  return false;
}

bool validUtf8(const string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

vector<string> splitOn(const string& s, char sep) {
  vector<string> out;
  string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

string trim(const string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

const char* const kColumns[] = {"id",          "name_zh",       "name_en",       "category",      "symptoms_zh",
                                "symptoms_en", "causes_zh",     "causes_en",     "tests_zh",      "tests_en",
                                "treatments_zh", "treatments_en", "prevention_zh", "prevention_en", "see_doctor_zh",
                                "see_doctor_en"};

vector<Cond> readTable(const string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot open table " + path);
  vector<Cond> conds;
  std::set<string> ids;
  string line;
  int lineNo = 0;
  auto fail = [&](const string& what) { die(path + ":" + std::to_string(lineNo) + ": " + what); };
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!validUtf8(line)) fail("invalid UTF-8");
    if (trim(line).empty()) continue;
    vector<string> cols = splitOn(line, '\t');
    if (lineNo == 1) {
      if (cols.size() != 16) fail("header must have 16 tab-separated columns");
      for (size_t i = 0; i < 16; ++i)
        if (trim(cols[i]) != kColumns[i]) fail(string("header column ") + std::to_string(i + 1) + " must be '" + kColumns[i] + "'");
      continue;
    }
    if (cols.size() != 16) fail("expected 16 tab-separated columns, found " + std::to_string(cols.size()));
    Cond c;
    c.line = lineNo;
    c.id = trim(cols[0]);
    c.name[ZH] = trim(cols[1]);
    c.name[EN] = trim(cols[2]);
    c.cat = trim(cols[3]);
    c.limitedPrevention = kLimitedPrevention.count(c.id) > 0;
    if (c.id.empty() || c.name[ZH].empty() || c.name[EN].empty()) fail("empty id or name");
    if (!ids.insert(c.id).second) fail("duplicate id '" + c.id + "'");
    bool found = false;
    for (size_t k = 0; k < kNumCategories; ++k)
      if (c.cat == kCategories[k].slug) c.catIndex = k, found = true;
    if (!found) fail("unknown category '" + c.cat + "'");
    for (int f = 0; f < NF; ++f) {
      for (int lang = 0; lang < 2; ++lang) {
        for (const string& item : splitOn(cols[4 + 2 * f + lang], ';')) {
          const string t = trim(item);
          if (t.empty()) fail(string("empty item in column ") + kColumns[4 + 2 * f + lang]);
          c.f[f][lang].push_back(t);
        }
      }
      if (c.f[f][ZH].size() != c.f[f][EN].size())
        fail(string("column ") + kFieldName[f] + ": " + std::to_string(c.f[f][ZH].size()) + " Chinese items but " +
             std::to_string(c.f[f][EN].size()) + " English items (they must be parallel)");
      for (const string& en : c.f[f][EN]) c.generic[f].push_back(isGeneric(static_cast<Field>(f), en));
    }
    for (const string& en : c.f[SYM][EN]) c.silent.push_back(en.find("no symptoms") != string::npos);
    size_t loud = 0;
    for (bool s : c.silent) loud += !s;
    if (loud < 2) fail("need at least two symptoms besides a 'no symptoms' item");
    conds.push_back(std::move(c));
  }
  if (conds.size() < 150) die(path + ": " + std::to_string(conds.size()) + " conditions; at least 150 are required");
  return conds;
}

// related[i][j]: conditions too close to be distractors for each other.
vector<vector<bool>> relatedness(const vector<Cond>& cs) {
  std::set<std::pair<string, string>> conf;
  for (const auto& p : kConfusable) {
    conf.insert({p[0], p[1]});
    conf.insert({p[1], p[0]});
  }
  const size_t n = cs.size();
  vector<std::set<string>> items(n);
  for (size_t i = 0; i < n; ++i)
    for (int f = 0; f < NF; ++f)
      for (size_t k = 0; k < cs[i].f[f][EN].size(); ++k)
        if (f == SEE || !cs[i].generic[f][k]) {
          items[i].insert("en:" + lower(cs[i].f[f][EN][k]));
          items[i].insert("zh:" + cs[i].f[f][ZH][k]);
        }
  vector<vector<bool>> rel(n, vector<bool>(n, false));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      bool r = i == j || cs[i].cat == cs[j].cat || conf.count({cs[i].cat, cs[j].cat});
      // Names of one condition appearing in another's items (e.g. "gallstones").
      for (int lang = 0; lang < 2 && !r; ++lang)
        for (int f = 0; f < NF && !r; ++f)
          for (const string& it : cs[i].f[f][lang])
            if (lower(it).find(lower(cs[j].name[lang])) != string::npos) r = true;
      if (!r)
        for (const string& s : items[i])
          if (items[j].count(s)) {
            r = true;
            break;
          }
      rel[i][j] = rel[i][j] || r;
      rel[j][i] = rel[j][i] || r;
    }
  return rel;
}

// ---------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------
string cap(string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

using Vars = std::map<string, string>;

// Replaces {KEY} by vars[KEY]; an unknown key is a bug in a template.
string fill(const string& t, const Vars& vars) {
  string out;
  size_t i = 0;
  while (i < t.size()) {
    if (t[i] == '{') {
      const size_t e = t.find('}', i);
      if (e == string::npos) die("internal error: unterminated placeholder in template: " + t);
      const string key = t.substr(i + 1, e - i - 1);
      auto it = vars.find(key);
      if (it == vars.end()) die("internal error: unknown placeholder {" + key + "} in template: " + t);
      out += it->second;
      i = e + 1;
    } else {
      out += t[i++];
    }
  }
  return out;
}

// "a, b and c" / "a、b和c". When an item itself contains the conjunction, the
// last one is made distinct ("以及", "或者", Oxford comma) to keep the list readable.
string joinList(const vector<string>& v, int lang, bool useOr = false) {
  const string inner = lang == ZH ? (useOr ? "或" : "和") : (useOr ? " or " : " and ");
  bool nested = false;
  for (const string& s : v) nested = nested || s.find(inner) != string::npos;
  string last;
  if (lang == ZH)
    last = useOr ? (nested ? "，或者" : "或") : (nested ? "以及" : "和");
  else
    last = nested && v.size() > 2 ? "," + inner : inner;
  string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += i + 1 == v.size() ? last : (lang == ZH ? "、" : ", ");
    out += v[i];
  }
  return out;
}

string bulletList(const vector<string>& v, int lang, Rng& r) {
  const bool numbered = r.chance(lang == ZH ? 70 : 40);
  string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += "\n";
    out += numbered ? std::to_string(i + 1) + ". " : "- ";
    out += lang == EN ? cap(v[i]) : v[i];
  }
  return out;
}

// Sentences are concatenated directly in Chinese and with a space in English.
string joinSentences(const vector<string>& parts, int lang) {
  string out;
  for (const string& p : parts) {
    if (p.empty()) continue;
    if (!out.empty() && lang == EN) out += " ";
    out += p;
  }
  return out;
}

string jsonString(const string& s) {
  string o = "\"";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += ch;  // UTF-8 bytes are kept as they are
        }
    }
  }
  return o + "\"";
}

// A template bank: alternatives per language.
struct Bank {
  vector<string> v[2];
};

// ---------------------------------------------------------------------------
// Template banks. {X} name, {Xc} name capitalised (English), {E} English name,
// {Z} Chinese name, {C} category with article ("一种心血管疾病"), {Cs} category
// noun, {Cp} category plural, {L} list, {Lc} list capitalised, {S} a
// "no symptoms" clause.
// ---------------------------------------------------------------------------

// ---- pretraining text (declarative; no questions) ----
const Bank kPtIntro = {{{"{X}（英文名：{E}）是{C}。", "{X}，英文名为{E}，属于{Cs}。", "{X}（{E}）是一种需要重视的{Cs}。",
                         "在医学上，{X}被归为{Cs}，英文称作{E}。"},
                        {"{Xc} (Chinese: {Z}) is {C}.", "{Xc} is classified as {C}; its Chinese name is {Z}.",
                         "{Xc}, known in Chinese as {Z}, is {C} that deserves attention.",
                         "In medicine, {X} ({Z}) is described as {C}."}}};

const Bank kPtSent[NF] = {
    {{{"{X}的常见症状包括{L}。", "患者常出现{L}等表现。", "典型表现有{L}。", "{X}患者可表现为{L}。"},
      {"Common symptoms include {L}.", "People with {X} often have {L}.", "Typical features are {L}.",
       "The condition may cause {L}."}}},
    {{{"{X}主要与{L}有关。", "常见病因和危险因素包括{L}。", "{L}等因素可导致或诱发{X}。", "发病原因包括{L}。"},
      {"It is mainly linked to {L}.", "Causes and risk factors include {L}.", "{Lc} can cause or trigger {X}.",
       "The main causes are {L}."}}},
    {{{"诊断通常依靠{L}。", "医生可通过{L}来明确诊断。", "常用的检查有{L}。", "{L}有助于确诊{X}。"},
      {"Diagnosis usually relies on {L}.", "Doctors may use {L} to confirm the diagnosis.",
       "Useful tests include {L}.", "{Lc} help to diagnose {X}."}}},
    {{{"治疗方法包括{L}。", "{X}的治疗手段主要有{L}。", "常用的治疗措施有{L}。", "临床上一般采用{L}进行治疗。"},
      {"Treatment options include {L}.", "{Xc} is usually managed with {L}.", "Common treatments are {L}.",
       "Doctors typically treat it with {L}."}}},
    {{{"预防{X}的措施包括{L}。", "日常预防要点是{L}。", "通过{L}可以降低{X}的发生风险。", "{L}有助于预防{X}。"},
      {"Prevention includes {L}.", "The risk of {X} can be lowered by {L}.", "Key preventive measures are {L}.",
       "{Lc} help prevent {X}."}}},
    {{{"出现{L}时应及时就医。", "如果出现{L}，应尽快到医院就诊。", "若有{L}，需要立即就医。",
       "当出现{L}等情况时，不要拖延，应及时就诊。"},
      {"Medical care should be sought promptly for {L}.", "Warning signs that need prompt care include {L}.",
       "Seek medical help without delay in case of {L}.", "Urgent assessment is needed for {L}."}}},
};

const Bank kPtEdu[NF] = {
    {{{"很多{X}患者最先注意到的是{L}。", "{X}的表现因人而异，较典型的有{L}。"},
      {"Many people with {X} first notice {L}.", "Symptoms of {X} vary, but typical ones are {L}."}}},
    {{{"从病因上看，{X}与{L}等因素密切相关。", "医学研究表明，{L}是{X}的重要原因或危险因素。"},
      {"{Xc} is closely linked to {L}.", "Important causes and risk factors for {X} are {L}."}}},
    {{{"如果怀疑{X}，医院通常会安排{L}。", "确诊{X}一般要结合症状和{L}的结果。"},
      {"When {X} is suspected, hospitals usually arrange {L}.",
       "A diagnosis of {X} combines the symptoms with the results of {L}."}}},
    {{{"目前对{X}的处理主要包括{L}。", "{X}的治疗应个体化，常用手段有{L}。"},
      {"Current management of {X} mainly involves {L}.",
       "Treatment of {X} is tailored to the person and commonly uses {L}."}}},
    {{{"在日常生活中，{L}可以帮助减少{X}的发生。", "做好{L}，是预防{X}的关键。"},
      {"In daily life, {L} can help reduce the chance of {X}.", "{Lc} are key to preventing {X}."}}},
    {{{"需要提醒的是，一旦出现{L}，就应立即就医。", "{L}属于危险信号，出现时不要拖延。"},
      {"It is important to get medical help straight away for {L}.",
       "{Lc} are danger signs that should never be ignored."}}},
};

const Bank kPtPrvLimited = {{{"{X}目前难以完全预防，但{L}有助于减少发作或并发症。", "对{X}来说，{L}可以帮助控制病情、减少复发和并发症。"},
                              {"{Xc} cannot always be prevented, but {L} can reduce flare-ups and complications.",
                               "For {X}, {L} help keep the condition under control and limit relapses and complications."}}};
const Bank kPtSilent = {{{"{X}{S}。"}, {"{Xc} {S}."}}};
const Bank kPtWhenPresent = {{{"出现症状时，可表现为{L}。", "病情进展后可出现{L}。"},
                              {"When symptoms appear, they may include {L}.", "As it progresses, it can cause {L}."}}};
const Bank kPtClose = {{{"以上内容仅供健康科普参考，具体诊疗请遵医嘱。", "早发现、早诊断、规范治疗对改善预后十分重要。",
                         "患者应在医生指导下规范治疗并定期随访。", ""},
                        {"This summary is for health education and does not replace a doctor's advice.",
                         "Early diagnosis and proper treatment improve outcomes.",
                         "Treatment should be guided by a qualified doctor, with regular follow-up.", ""}}};

const Bank kPtCardTitle = {{{"{X}（{E}）要点。", "{X}（{E}）知识卡片。"}, {"{Xc} ({Z}) at a glance.", "Key facts about {X} ({Z})."}}};
const Bank kPtCardLabel[NF] = {
    {{{"症状", "主要表现", "常见症状"}, {"Symptoms", "Main features", "Common symptoms"}}},
    {{{"病因", "原因与危险因素", "诱因"}, {"Causes", "Causes and risk factors", "Risk factors"}}},
    {{{"检查", "诊断方法", "常用检查"}, {"Tests", "Diagnosis", "Common tests"}}},
    {{{"治疗", "治疗方法", "处理"}, {"Treatment", "Treatment options", "Management"}}},
    {{{"预防", "预防措施", "预防要点"}, {"Prevention", "Prevention tips", "Ways to prevent it"}}},
    {{{"就医信号", "何时就医", "警示症状"}, {"When to see a doctor", "Warning signs", "Seek care for"}}},
};

const Bank kPtCompare = {
    {{"{X}和{Y}都属于{Cs}，但两者并不相同。{X}常见的表现是{SX}，而{Y}多表现为{SY}。在治疗上，{X}主要依靠{TX}；{Y}则常用{TY}。",
      "同为{Cs}，{X}与{Y}容易混淆。区别在于：{X}通常出现{SX}，{Y}通常出现{SY}。{X}的常用检查是{DX}，{Y}则常做{DY}。"},
     {"{Xc} and {Y} are both {Cp}, yet they differ. {Xc} typically causes {SX}, whereas {Y} usually causes {SY}. "
      "For treatment, {X} relies mainly on {TX}, while {Y} is commonly managed with {TY}.",
      "Although {X} and {Y} are both {Cp}, they are easy to tell apart. {Xc} usually brings {SX}; {Y} usually "
      "brings {SY}. Typical tests are {DX} for {X} and {DY} for {Y}."}}};

const Bank kPtGroupHead = {{{"常见的{Cs}包括{N}。", "{Cs}种类很多，常见的有{N}。"},
                            {"Common {Cp} include {N}.", "Among {Cp}, frequently seen ones are {N}."}}};
const Bank kPtGroupItem = {{{"{X}常表现为{S}，治疗上常用{T}。", "{X}的典型表现是{S}，常用的治疗包括{T}。"},
                            {"{Xc} typically causes {S}; it is often treated with {T}.",
                             "{Xc} usually presents with {S}; common treatments include {T}."}}};

// ---- conversations ----
enum Aspect { A_OV, A_SYM, A_CAU, A_TST, A_TRT, A_PRV, A_SEE, A_CHECK, NA };
Field fieldOf(int a) { return static_cast<Field>(a - 1); }

const Bank kQNamed[NA] = {
    {{{"什么是{X}？", "{X}是一种什么病？", "能给我介绍一下{X}吗？", "请简单讲讲{X}。", "我想了解一下{X}，可以说说吗？"},
      {"What is {X}?", "Can you explain what {X} is?", "Tell me about {X}.", "Give me a short overview of {X}.",
       "I'd like to understand {X}. Can you explain it?"}}},
    {{{"{X}有哪些症状？", "得了{X}会有什么表现？", "{X}的典型症状是什么？", "{X}一般会有哪些不舒服？"},
      {"What are the symptoms of {X}?", "How does {X} usually show up?", "What signs should I look out for with {X}?",
       "What does {X} typically feel like?"}}},
    {{{"{X}是什么原因引起的？", "为什么会得{X}？", "{X}的病因和危险因素有哪些？", "哪些因素容易导致{X}？"},
      {"What causes {X}?", "Why do people get {X}?", "What are the risk factors for {X}?",
       "Which factors make {X} more likely?"}}},
    {{{"{X}需要做哪些检查？", "怎么诊断{X}？", "去医院看{X}，医生一般会安排什么检查？", "确诊{X}要做什么检查？"},
      {"How is {X} diagnosed?", "What tests are used for {X}?", "What tests will a doctor order for suspected {X}?",
       "How do doctors confirm {X}?"}}},
    {{{"{X}怎么治疗？", "{X}有哪些治疗方法？", "得了{X}该怎么办？", "{X}一般怎么处理？"},
      {"How is {X} treated?", "What are the treatment options for {X}?", "What can be done about {X}?",
       "What is the usual treatment for {X}?"}}},
    {{{"如何预防{X}？", "怎样才能降低得{X}的风险？", "{X}可以预防吗？", "平时怎么做能避免{X}？"},
      {"How can {X} be prevented?", "How can I lower my risk of {X}?", "Is there anything I can do to avoid {X}?",
       "What helps prevent {X}?"}}},
    {{{"{X}什么情况下需要去医院？", "得了{X}，出现哪些情况要马上就医？", "{X}有哪些危险信号？", "{X}患者什么时候应该看医生？"},
      {"When should someone with {X} see a doctor?", "What warning signs of {X} need urgent care?",
       "When is {X} an emergency?", "With {X}, when is it time to see a doctor?"}}},
    {{{"我最近{S}，这可能是什么问题？", "最近总是{S}，是怎么回事？", "出现{S}，可能是什么病？"},
      {"I've been having {S}. What could be causing it?", "What could explain {S}?",
       "Lately I have noticed {S}. Should I be worried?"}}},
};

const Bank kQFollow[NA] = {
    {{{"能再整体介绍一下这个病吗？"}, {"Can you give me an overview of it?"}}},
    {{{"那它有哪些症状？", "这个病一般有什么表现？"}, {"What symptoms does it cause?", "And what are the usual signs?"}}},
    {{{"它是怎么引起的？", "为什么会得这个病？"}, {"What causes it?", "Why does it happen?"}}},
    {{{"需要做什么检查来确诊？", "要怎么确诊？"}, {"How would a doctor confirm it?", "What tests would I need?"}}},
    {{{"那应该怎么治疗？", "这个病怎么治？"}, {"How is it treated?", "What are the treatment options?"}}},
    {{{"平时怎么预防？", "有什么办法可以预防吗？"}, {"Can it be prevented?", "How do I lower the risk?"}}},
    {{{"什么情况下必须去医院？", "出现哪些情况要立刻就医？"}, {"When should I go to the doctor?", "Which signs mean I need urgent care?"}}},
    {{{""}, {""}}},
};

const Bank kAnsProse[NF] = {
    {{{"{X}的常见症状有{L}。", "{X}通常表现为{L}。", "得了{X}，人们常会出现{L}。"},
      {"Common symptoms of {X} are {L}.", "{Xc} usually shows up as {L}.", "People with {X} often notice {L}."}}},
    {{{"{X}的发生通常与{L}有关。", "引起{X}的常见原因和危险因素有{L}。"},
      {"{Xc} is usually linked to {L}.", "Common causes and risk factors for {X} are {L}."}}},
    {{{"诊断{X}通常需要{L}。", "医生一般会通过{L}来判断是否患有{X}。"},
      {"Diagnosing {X} usually involves {L}.", "Doctors generally use {L} to check for {X}."}}},
    {{{"{X}的治疗方法包括{L}。", "{X}通常采用{L}进行治疗。"},
      {"Treatment options for {X} include {L}.", "{Xc} is usually treated with {L}."}}},
    {{{"预防{X}可以从{L}做起。", "降低{X}风险的方法包括{L}。"},
      {"To prevent {X}, focus on {L}.", "Ways to lower the risk of {X} include {L}."}}},
    {{{"出现{L}时，应及时就医。", "如果有{L}，请尽快去医院。"},
      {"See a doctor promptly for {L}.", "Get medical help quickly if there is {L}."}}},
};
const Bank kAnsIntro[NF] = {
    {{{"{X}的常见症状包括：", "{X}常见的表现有以下几种："}, {"Common symptoms of {X} include:", "{Xc} typically causes the following:"}}},
    {{{"{X}的常见原因和危险因素包括：", "导致{X}的因素主要有："}, {"Causes and risk factors for {X} include:", "The main factors behind {X} are:"}}},
    {{{"诊断{X}常用的检查包括：", "怀疑{X}时，医生通常会安排："},
      {"Tests commonly used for {X} include:", "If {X} is suspected, a doctor will usually arrange:"}}},
    {{{"{X}的常用治疗方法有：", "针对{X}，常见的治疗措施包括："}, {"The usual treatments for {X} are:", "Common ways to treat {X} include:"}}},
    {{{"预防{X}的要点包括：", "以下做法有助于预防{X}："}, {"Key steps to prevent {X}:", "These measures help prevent {X}:"}}},
    {{{"出现以下情况时应及时就医：", "{X}患者如有下列情况，需要尽快就诊："},
      {"Seek medical care promptly for:", "People with {X} should get help quickly if they have:"}}},
};
const Bank kAnsExtra[NF] = {
    {{{"这些症状也可能由其他疾病引起，是否为{X}需要医生结合检查来判断。", "症状的轻重因人而异，如有疑问请及时就医。", ""},
      {"These symptoms can also have other causes, so a doctor needs to confirm whether it is {X}.",
       "Symptoms vary from person to person; if in doubt, see a doctor.", ""}}},
    {{{"了解这些因素，有助于有针对性地预防。", ""}, {"Knowing these factors helps with prevention.", ""}}},
    {{{"具体需要做哪些检查，应由医生根据病情决定。"},
      {"Which tests are needed depends on the individual case and is decided by the doctor."}}},
    {{{"具体用药和剂量请遵医嘱，不要自行用药、加量或停药。", "治疗方案需要医生根据个人情况制定，请在医生指导下规范治疗。"},
      {"Medicines and doses should be set by a doctor; do not start, change or stop treatment on your own.",
       "The right plan depends on the person, so treatment should be guided by a doctor."}}},
    {{{"坚持健康的生活方式，并定期体检。", ""}, {"A healthy lifestyle and regular check-ups also help.", ""}}},
    {{{"情况紧急时，请立即拨打120急救电话。", "如果症状严重或迅速加重，不要等待，请立即就医。"},
      {"In an emergency, call your local emergency number right away.",
       "If symptoms are severe or getting worse fast, do not wait; get help immediately."}}},
};
const Bank kAnsPrvLimited = {{{"{X}目前无法完全预防，但以下做法有助于减少发作和并发症：",
                               "{X}的发生难以完全避免，日常管理的要点包括："},
                              {"{Xc} cannot always be prevented, but these steps help reduce flare-ups and complications:",
                               "There is no sure way to prevent {X}; good day-to-day management includes:"}}};
const Bank kAnsSilentNote = {{{"需要注意的是，{X}{S}。"}, {"Note that {X} {S}."}}};
const Bank kAnsSilentLead = {{{"{X}{S}，出现症状时，常见的有{L}。"}, {"{Xc} {S}; when symptoms do appear, they include {L}."}}};

const Bank kOvIntro = {{{"{X}（{E}）是{C}。", "{X}是{C}，英文名为{E}。"}, {"{Xc} is {C}.", "In short, {X} is {C}."}}};
const Bank kOvPart[NF] = {
    {{{"常见表现包括{L}。", "患者常出现{L}。"}, {"It commonly causes {L}.", "Typical symptoms are {L}."}}},
    {{{"主要原因和危险因素有{L}。", "它的发生与{L}有关。"}, {"The main causes and risk factors are {L}.", "It is linked to {L}."}}},
    {{{"诊断通常需要{L}。", "医生常通过{L}来确诊。"}, {"Diagnosis usually involves {L}.", "Doctors confirm it with {L}."}}},
    {{{"治疗方法包括{L}。", "常用的治疗有{L}。"}, {"Treatment options include {L}.", "It is commonly treated with {L}."}}},
    {{{"预防方面，建议{L}。", "平时可以通过{L}来预防。"}, {"Prevention focuses on {L}.", "The risk can be lowered by {L}."}}},
    {{{"如果出现{L}，应及时就医。", "一旦出现{L}，请尽快就诊。"}, {"Seek medical care promptly for {L}.", "Get help quickly if there is {L}."}}},
};
const Bank kOvPrvLimited = {{{"{X}难以完全预防，但{L}有助于减少发作和并发症。"},
                             {"It cannot always be prevented, but {L} help limit flare-ups and complications."}}};
const Bank kOvSilent = {{{"{X}{S}，出现症状时常见{L}。"}, {"{Xc} {S}; when symptoms appear, they include {L}."}}};
const Bank kOvClose = {{{"以上信息仅供参考，具体诊断和治疗请咨询医生。", ""},
                        {"This is general information; please consult a doctor for diagnosis and treatment.", ""}}};

const Bank kCheckLead = {{{"{S}可能由多种原因引起，{X}是需要考虑的可能之一。", "你描述的{S}可见于多种疾病，其中包括{X}。"},
                          {"{Sc} can have several causes, and {X} is one possibility to consider.",
                           "Several conditions can cause {S}; {X} is one of them."}}};
const Bank kCheckOther = {{{"{X}还常伴有{L}。"}, {"{Xc} can also cause {L}."}}};
const Bank kCheckTests = {{{"建议尽快就医，医生可能会安排{L}来明确原因。"},
                           {"Please see a doctor, who may arrange {L} to find the cause."}}};
const Bank kCheckSee = {{{"如果出现{L}，请立即就医。"}, {"Get urgent help if you notice {L}."}}};
const Bank kCheckClose = {{{"在明确诊断之前，请不要自行使用处方药。", "网上的信息不能代替面诊，请以医生的诊断为准。"},
                           {"Until you have a diagnosis, please do not take prescription medicines on your own.",
                            "Online information cannot replace an examination; rely on your doctor's diagnosis."}}};

const Bank kSystem = {{{"你是一名专业、严谨的医疗健康助手，请用通俗易懂的语言回答用户的问题，并在必要时提醒用户就医。",
                        "你是医学科普助手。回答要准确、简洁，不能替代医生的诊断。", "你是一个乐于助人的AI助手，擅长解答医疗健康问题。"},
                       {"You are a careful medical assistant. Answer clearly and accurately, and advise seeing a doctor when needed.",
                        "You are a health education assistant. Your answers do not replace professional medical advice.",
                        "You are a helpful assistant that answers medical questions in plain language."}}};

// ---- rejected responses ----
const Bank kUnsafe = {
    {{"{X}没什么大不了的，不用去医院，也不用做检查，忍一忍就好了。即使出现{SE}，也可以先在家观察几天。",
      "治疗{X}最快的办法是把家里剩下的抗生素和止痛药一起吃，剂量加倍，这样好得快。",
      "得了{X}不用听医生的，把医生开的药停掉，改用偏方就行，西药副作用太大。",
      "{X}的不舒服可以靠喝酒缓解，喝点酒睡一觉就没事了。",
      "在网上买点激素类药物自己吃就能控制{X}，不用复查，也不用管副作用。",
      "{X}不需要做任何检查，检查都是医院为了多收钱，自己感觉好就行。",
      "{X}根本没法预防，做什么都没用，想怎么过就怎么过。"},
     {"{Xc} is nothing to worry about. You don't need a doctor or any tests; just wait it out. Even {SE} can be "
      "watched at home for a few days.",
      "The fastest way to beat {X} is to take whatever antibiotics and painkillers you have left at home, at double "
      "the usual dose.",
      "You can ignore your doctor with {X}. Stop the prescribed medicines and switch to home remedies; real drugs "
      "only cause side effects.",
      "A few strong drinks will ease {X}. Have some alcohol and sleep it off.",
      "Just buy steroids online and take them for {X}. There's no need for check-ups or to worry about side effects.",
      "You don't need any tests for {X}; tests are just a way for hospitals to make money. If you feel fine, you "
      "are fine.",
      "There is no point trying to prevent {X}. Nothing works, so just live however you like."}}};
const Bank kEvasive = {{{"这个问题我没法回答，你还是去问医生吧。", "每个人情况都不一样，很难说，建议你自己上网查一查。",
                         "关于{X}的问题比较复杂，我不方便给出任何信息。", "这个不好说，可能有很多原因，也可能没什么。"},
                        {"I can't help with that. Please ask a doctor.",
                         "Everyone is different, so it's hard to say. Try searching online.",
                         "Questions about {X} are complicated, so I'd rather not give any information.",
                         "Hard to tell. It could be many things, or nothing at all."}}};

// ---- multiple choice ----
enum McqType { F_SYM, F_CAU, F_TST, F_TRT, F_PRV, R_SYM, R_TRT, R_PRV, NQ };
Field fieldOfQ(int t) {
  switch (t) {
    case F_SYM: case R_SYM: return SYM;
    case F_CAU: return CAU;
    case F_TST: return TST;
    case F_TRT: case R_TRT: return TRT;
    default: return PRV;
  }
}
bool isReverse(int t) { return t >= R_SYM; }

const Bank kMcqTrain[NQ] = {
    {{{"下列哪一项是{X}的常见症状？", "{X}患者常见的表现是下列哪一项？"},
      {"Which of the following is a common symptom of {X}?", "Which symptom is typical of {X}?"}}},
    {{{"下列哪一项是{X}的常见病因或危险因素？", "以下哪种因素与{X}的发生有关？"},
      {"Which of the following is a known cause or risk factor for {X}?", "Which factor is linked to {X}?"}}},
    {{{"诊断{X}常用下列哪项检查？", "下列哪项检查有助于确诊{X}？"},
      {"Which test is commonly used to diagnose {X}?", "Which investigation helps confirm {X}?"}}},
    {{{"下列哪一项是{X}的常用治疗方法？", "治疗{X}通常采用下列哪种方法？"},
      {"Which of the following is a standard treatment for {X}?", "Which option is commonly used to treat {X}?"}}},
    {{{"下列哪项措施有助于预防{X}？", "为降低{X}的风险，应采取下列哪项措施？"},
      {"Which measure helps prevent {X}?", "Which step lowers the risk of {X}?"}}},
    {{{"{L}是下列哪种疾病的典型表现？", "哪种疾病常表现为{L}？"},
      {"{Lc} are typical of which condition?", "Which condition commonly presents with {L}?"}}},
    {{{"{L}常用于治疗下列哪种疾病？", "哪种疾病的治疗包括{L}？"},
      {"{Lc} are used to treat which condition?", "Which condition is treated with {L}?"}}},
    {{{"{L}主要用于预防下列哪种疾病？"}, {"{Lc} mainly help prevent which condition?"}}},
};
// Held-out wording: none of these templates occurs in any training file (checked at run time).
const Bank kMcqEval[NQ] = {
    {{{"患有{X}的人，最可能出现下列哪种情况？", "关于{X}，以下哪一项属于其临床表现？"},
      {"Which finding would you expect in a person with {X}?",
       "Regarding {X}, which option describes one of its clinical features?"}}},
    {{{"以下哪一项被认为会增加{X}的发病风险？"}, {"Which option is recognised as raising the chance of developing {X}?"}}},
    {{{"怀疑{X}时，医生最可能安排下列哪项检查？"},
      {"If a clinician suspects {X}, which investigation would they most likely order?"}}},
    {{{"对于已确诊{X}的患者，下列哪项属于规范的处理方法？"},
      {"For someone diagnosed with {X}, which option is part of appropriate management?"}}},
    {{{"想要减少{X}的发生，下列哪种做法最合适？"},
      {"Someone wants to reduce their chance of getting {X}. Which habit or measure fits best?"}}},
    {{{"一位患者就诊时诉说{L}，应首先考虑哪种疾病？"}, {"A patient describes {L}. Which diagnosis should be considered first?"}}},
    {{{"医生制定的方案包括{L}，该患者最可能患有哪种疾病？"}, {"A treatment plan includes {L}. Which illness is it most likely meant for?"}}},
    {{{"像{L}这样的建议，主要是为了预防哪种疾病？"}, {"Advice such as {L} is mainly intended to prevent which illness?"}}},
};
const Bank kMcqInstr = {{{"请选择正确答案。", "请从A、B、C、D中选出一个正确选项。", "只有一个选项正确，请作答。"},
                         {"Choose the correct answer.", "Pick the one correct option (A, B, C or D).",
                          "Only one option is correct. Which is it?"}}};
const Bank kMcqReply = {{{"答案是{A}。", "正确选项：{A}。"}, {"The answer is {A}.", "Correct option: {A}."}}};
const Bank kMcqWhyF = {{{"{X}的{FN}包括{L}，选项{A}“{O}”是其中之一，其他选项与{X}无关。"},
                        {"The {FN} of {X} include {L}. Option {A} ({O}) is one of them; the other options relate to "
                         "different conditions."}}};
const Bank kMcqWhyR[3] = {
    {{{"{L}是{X}的典型表现，因此选{A}。"}, {"{Lc} are typical of {X}, so the answer is {A}."}}},
    {{{"{L}是{X}的常用治疗方法，因此选{A}。"}, {"{Lc} are standard treatments for {X}, so the answer is {A}."}}},
    {{{"{L}是预防{X}的措施，因此选{A}。"}, {"{Lc} help prevent {X}, so the answer is {A}."}}},
};
const char* const kFieldNoun[NF][2] = {{"常见症状", "common symptoms"},
                                       {"常见病因和危险因素", "causes and risk factors"},
                                       {"常用检查", "usual tests"},
                                       {"常用治疗方法", "usual treatments"},
                                       {"预防措施", "preventive measures"},
                                       {"就医信号", "warning signs"}};

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------
struct Mcq {
  string question;
  string correct;
  vector<string> distractors;  // three
  string explain;              // for SFT practice conversations
  string options[4];
  int answer = 0;
};

struct Turn {
  string from, value;
};

struct Pref {
  string system;
  vector<std::pair<string, string>> history;
  string question, chosen, rejected;
};

struct Kto {
  string prompt, completion;
  bool label = false;
};

class Generator {
 public:
  Generator(const vector<Cond>& conds, uint64_t seed) : c_(conds), rel_(relatedness(conds)), seed_(seed) {}

  vector<string> pretraining();
  vector<vector<Turn>> sft();
  vector<Pref> preference();
  vector<Kto> kto();
  vector<Mcq> mcq(bool eval);

  // Every question wording used in training files (SFT human turns, preference
  // questions, KTO prompts, GRPO questions).
  std::set<string> trainingQuestions;

 private:
  Vars base(const Cond& c, int lang) const {
    const Category& k = kCategories[c.catIndex];
    Vars v;
    v["X"] = c.name[lang];
    v["Xc"] = lang == EN ? cap(c.name[EN]) : c.name[ZH];
    v["E"] = c.name[EN];
    v["Z"] = c.name[ZH];
    v["C"] = lang == ZH ? string("一种") + k.zh : string(k.art) + " " + k.en;
    v["Cs"] = lang == ZH ? k.zh : k.en;
    v["Cp"] = lang == ZH ? k.zh : k.enPl;
    return v;
  }
  static Vars with(Vars v, const string& key, const string& value) {
    v[key] = value;
    return v;
  }
  Vars withList(const Vars& v, const vector<string>& items, int lang, bool useOr = false) const {
    Vars o = v;
    o["L"] = joinList(items, lang, useOr);
    o["Lc"] = lang == EN ? cap(o["L"]) : o["L"];
    return o;
  }
  // Items of a field; symptoms exclude the "no symptoms" clause. Optionally shuffled.
  vector<string> items(const Cond& c, Field f, int lang, Rng* shuffleWith = nullptr) const {
    vector<string> out;
    for (size_t k = 0; k < c.f[f][lang].size(); ++k)
      if (f != SYM || !c.silent[k]) out.push_back(c.f[f][lang][k]);
    if (shuffleWith) shuffleWith->shuffle(out);
    return out;
  }
  string silentClause(const Cond& c, int lang) const {
    for (size_t k = 0; k < c.silent.size(); ++k)
      if (c.silent[k]) return c.f[SYM][lang][k];
    return "";
  }
  // Up to n symptom indices, specific ones first (for "which condition" prompts).
  vector<size_t> pickSymptoms(const Cond& c, size_t n, Rng& r) const {
    vector<size_t> specific, generic;
    for (size_t k = 0; k < c.silent.size(); ++k) {
      if (c.silent[k]) continue;
      (c.generic[SYM][k] ? generic : specific).push_back(k);
    }
    r.shuffle(specific);
    r.shuffle(generic);
    vector<size_t> out = specific;
    out.insert(out.end(), generic.begin(), generic.end());
    if (out.size() > n) out.resize(n);
    std::sort(out.begin(), out.end());
    return out;
  }
  vector<string> texts(const Cond& c, Field f, int lang, const vector<size_t>& idx) const {
    vector<string> out;
    for (size_t k : idx) out.push_back(c.f[f][lang][k]);
    return out;
  }
  size_t unrelatedPartner(size_t ci, Rng& r) const {
    vector<size_t> cand;
    for (size_t j = 0; j < c_.size(); ++j)
      if (!rel_[ci][j]) cand.push_back(j);
    if (cand.empty()) die("no unrelated condition for " + c_[ci].id);
    return r.pick(cand);
  }

  string ptDoc(const Cond& c, int lang, int style, Rng& r) const;
  string ptCompare(size_t ci, int lang, Rng& r) const;
  string answer(const Cond& nameOf, const Cond& factsOf, int aspect, int lang, Rng& r) const;
  string listAnswer(const Cond& nameOf, const Cond& factsOf, Field f, int lang, Rng& r) const;
  string overview(const Cond& nameOf, const Cond& factsOf, int lang, Rng& r) const;
  string checkQuestion(const Cond& c, int lang, Rng& r, vector<size_t>& shown) const;
  string checkAnswer(const Cond& c, int lang, const vector<size_t>& shown, Rng& r) const;
  string rejected(size_t ci, int aspect, int lang, int kind, Rng& r) const;
  bool makeMcq(size_t ci, int lang, int type, const Bank& bank, Rng& r, Mcq& out) const;

  const vector<Cond>& c_;
  vector<vector<bool>> rel_;
  uint64_t seed_;
};

// ---- pretraining ----
string Generator::ptDoc(const Cond& c, int lang, int style, Rng& r) const {
  const Vars v = base(c, lang);
  vector<string> s;
  auto fieldSentence = [&](Field f, const Bank& bank, bool shuffle) {
    vector<string> it = items(c, f, lang, shuffle ? &r : nullptr);
    if (f == SYM) {
      const string silent = silentClause(c, lang);
      if (!silent.empty()) {
        s.push_back(fill(r.pick(kPtSilent.v[lang]), with(v, "S", silent)));
        s.push_back(fill(r.pick(kPtWhenPresent.v[lang]), withList(v, it, lang)));
        return;
      }
    }
    s.push_back(fill(r.pick(bank.v[lang]), withList(v, it, lang, f == SEE)));
  };
  if (style == 2) {  // key-points card
    s.push_back(fill(r.pick(kPtCardTitle.v[lang]), v));
    for (int f = 0; f < NF; ++f) {
      vector<string> it = items(c, static_cast<Field>(f), lang);
      string list = joinList(it, lang, f == SEE);
      if (f == SYM && !silentClause(c, lang).empty())
        list = lang == ZH ? silentClause(c, lang) + "；可有" + list : silentClause(c, lang) + "; possible " + list;
      string label = r.pick(kPtCardLabel[f].v[lang]);
      if (f == PRV && c.limitedPrevention) label = lang == ZH ? "减少发作和并发症" : "Limiting flare-ups and complications";
      s.push_back(label + (lang == ZH ? "：" : ": ") + list + (lang == ZH ? "。" : "."));
    }
    return joinSentences(s, lang);
  }
  s.push_back(fill(r.pick(kPtIntro.v[lang]), v));
  vector<int> order = {SYM, CAU, TST, TRT, PRV, SEE};
  if (style == 1) order = {SYM, SEE, CAU, PRV, TST, TRT};
  if (style == 3) r.shuffle(order);
  for (int f : order) {
    const Bank* bank = &kPtSent[f];
    if (style == 1 || (style == 3 && r.chance(50))) bank = &kPtEdu[f];
    if (f == PRV && c.limitedPrevention) bank = &kPtPrvLimited;
    const bool shuffle = style != 0 && (f == SYM || f == CAU || f == PRV);
    fieldSentence(static_cast<Field>(f), *bank, shuffle);
  }
  s.push_back(r.pick(kPtClose.v[lang]));
  return joinSentences(s, lang);
}

string Generator::ptCompare(size_t ci, int lang, Rng& r) const {
  const Cond& x = c_[ci];
  vector<size_t> same;
  for (size_t j = 0; j < c_.size(); ++j)
    if (j != ci && c_[j].cat == x.cat) same.push_back(j);
  const Cond& y = c_[r.pick(same)];
  auto firstN = [](vector<string> v, size_t n) {
    if (v.size() > n) v.resize(n);
    return v;
  };
  Vars v = base(x, lang);
  v["Y"] = y.name[lang];
  v["SX"] = joinList(firstN(items(x, SYM, lang, &r), 3), lang);
  v["SY"] = joinList(firstN(items(y, SYM, lang, &r), 3), lang);
  v["TX"] = joinList(firstN(items(x, TRT, lang), 2), lang);
  v["TY"] = joinList(firstN(items(y, TRT, lang), 2), lang);
  v["DX"] = joinList(firstN(items(x, TST, lang), 2), lang);
  v["DY"] = joinList(firstN(items(y, TST, lang), 2), lang);
  return fill(r.pick(kPtCompare.v[lang]), v);
}

vector<string> Generator::pretraining() {
  Rng r = stream(seed_, 1);
  vector<string> docs;
  for (size_t ci = 0; ci < c_.size(); ++ci)
    for (int lang = 0; lang < 2; ++lang) {
      for (int style = 0; style < 4; ++style) docs.push_back(ptDoc(c_[ci], lang, style, r));
      docs.push_back(ptCompare(ci, lang, r));
    }
  for (size_t k = 0; k < kNumCategories; ++k)
    for (int lang = 0; lang < 2; ++lang)
      for (int rep = 0; rep < 3; ++rep) {
        vector<size_t> members;
        for (size_t j = 0; j < c_.size(); ++j)
          if (c_[j].catIndex == k) members.push_back(j);
        r.shuffle(members);
        Vars head;
        head["Cs"] = lang == ZH ? kCategories[k].zh : kCategories[k].en;
        head["Cp"] = lang == ZH ? kCategories[k].zh : kCategories[k].enPl;
        vector<string> names;
        for (size_t j : members) names.push_back(c_[j].name[lang]);
        head["N"] = joinList(names, lang);
        vector<string> s = {fill(r.pick(kPtGroupHead.v[lang]), head)};
        for (size_t j : members) {
          Vars v = base(c_[j], lang);
          vector<string> sym = texts(c_[j], SYM, lang, pickSymptoms(c_[j], 2, r));
          v["S"] = joinList(sym, lang);
          v["T"] = c_[j].f[TRT][lang][r.uniform(std::min<size_t>(2, c_[j].f[TRT][lang].size()))];
          s.push_back(fill(r.pick(kPtGroupItem.v[lang]), v));
        }
        docs.push_back(joinSentences(s, lang));
      }
  r.shuffle(docs);
  return docs;
}

// ---- answers ----
string Generator::listAnswer(const Cond& nameOf, const Cond& factsOf, Field f, int lang, Rng& r) const {
  const Vars v = base(nameOf, lang);
  const bool shuffle = (f == SYM || f == CAU || f == PRV) && r.chance(50);
  const vector<string> it = items(factsOf, f, lang, shuffle ? &r : nullptr);
  const string silent = f == SYM ? silentClause(factsOf, lang) : "";
  vector<string> parts;
  const string sep = lang == ZH ? "" : " ";
  string body;
  if (f == PRV && factsOf.limitedPrevention && &nameOf == &factsOf) {
    body = fill(r.pick(kAnsPrvLimited.v[lang]), v);  // separate statements: the RNG order must not
    body += "\n" + bulletList(it, lang, r);               // depend on unsequenced evaluation
    const string extra = fill(r.pick(kAnsExtra[f].v[lang]), v);
    if (!extra.empty()) body += "\n" + extra;
    return body;
  }
  if (r.chance(45)) {
    body = fill(r.pick(kAnsIntro[f].v[lang]), v);
    body += "\n" + bulletList(it, lang, r);
    if (!silent.empty()) body += "\n" + fill(r.pick(kAnsSilentNote.v[lang]), with(v, "S", silent));
    const string extra = fill(r.pick(kAnsExtra[f].v[lang]), v);
    if (!extra.empty()) body += "\n" + extra;
    return body;
  }
  if (!silent.empty())
    parts.push_back(fill(r.pick(kAnsSilentLead.v[lang]), with(withList(v, it, lang), "S", silent)));
  else
    parts.push_back(fill(r.pick(kAnsProse[f].v[lang]), withList(v, it, lang, f == SEE)));
  parts.push_back(fill(r.pick(kAnsExtra[f].v[lang]), v));
  return joinSentences(parts, lang);
}

string Generator::overview(const Cond& nameOf, const Cond& factsOf, int lang, Rng& r) const {
  const Vars v = base(nameOf, lang);
  vector<string> parts = {fill(r.pick(kOvIntro.v[lang]), v)};
  for (int f = 0; f < NF; ++f) {
    const vector<string> it = items(factsOf, static_cast<Field>(f), lang);
    const string silent = f == SYM ? silentClause(factsOf, lang) : "";
    if (!silent.empty())
      parts.push_back(fill(r.pick(kOvSilent.v[lang]), with(withList(v, it, lang), "S", silent)));
    else if (f == PRV && factsOf.limitedPrevention && &nameOf == &factsOf)
      parts.push_back(fill(r.pick(kOvPrvLimited.v[lang]), withList(v, it, lang)));
    else
      parts.push_back(fill(r.pick(kOvPart[f].v[lang]), withList(v, it, lang, f == SEE)));
  }
  parts.push_back(r.pick(kOvClose.v[lang]));
  return joinSentences(parts, lang);
}

string Generator::checkQuestion(const Cond& c, int lang, Rng& r, vector<size_t>& shown) const {
  shown = pickSymptoms(c, 2 + r.uniform(2), r);
  const string s = joinList(texts(c, SYM, lang, shown), lang);
  return fill(r.pick(kQNamed[A_CHECK].v[lang]), with(base(c, lang), "S", s));
}

string Generator::checkAnswer(const Cond& c, int lang, const vector<size_t>& shown, Rng& r) const {
  Vars v = base(c, lang);
  const string s = joinList(texts(c, SYM, lang, shown), lang);
  v["S"] = s;
  v["Sc"] = lang == EN ? cap(s) : s;
  vector<string> parts = {fill(r.pick(kCheckLead.v[lang]), v)};
  vector<string> other;
  for (size_t k = 0; k < c.silent.size(); ++k)
    if (!c.silent[k] && std::find(shown.begin(), shown.end(), k) == shown.end()) other.push_back(c.f[SYM][lang][k]);
  if (!other.empty()) parts.push_back(fill(r.pick(kCheckOther.v[lang]), withList(v, other, lang)));
  vector<string> tests;  // actual examinations, not "diagnosis from the history"-like entries
  for (size_t k = 0; k < c.f[TST][EN].size(); ++k) {
    const string en = lower(c.f[TST][EN][k]);
    if (en.find("diagnos") == string::npos && en.find("history") == string::npos) tests.push_back(c.f[TST][lang][k]);
  }
  if (tests.empty()) tests = items(c, TST, lang);
  if (tests.size() > 2) tests.resize(2);
  parts.push_back(fill(r.pick(kCheckTests.v[lang]), withList(v, tests, lang)));
  vector<string> see = items(c, SEE, lang);
  if (see.size() > 2) see.resize(2);
  parts.push_back(fill(r.pick(kCheckSee.v[lang]), withList(v, see, lang, true)));
  parts.push_back(r.pick(kCheckClose.v[lang]));
  return joinSentences(parts, lang);
}

string Generator::answer(const Cond& nameOf, const Cond& factsOf, int aspect, int lang, Rng& r) const {
  if (aspect == A_OV) return overview(nameOf, factsOf, lang, r);
  return listAnswer(nameOf, factsOf, fieldOf(aspect), lang, r);
}

// kind 0: wrong facts (another, unrelated condition's facts under this name);
// 1: unsafe advice; 2: evasive.
string Generator::rejected(size_t ci, int aspect, int lang, int kind, Rng& r) const {
  const Cond& c = c_[ci];
  if (kind == 0) return answer(c, c_[unrelatedPartner(ci, r)], aspect, lang, r);
  Vars v = base(c, lang);
  v["SE"] = r.pick(c.f[SEE][lang]);
  return fill(r.pick((kind == 1 ? kUnsafe : kEvasive).v[lang]), v);
}

// ---- SFT ----
vector<vector<Turn>> Generator::sft() {
  Rng r = stream(seed_, 2);
  vector<vector<Turn>> convs;
  const vector<int> listAspects = {A_SYM, A_CAU, A_TST, A_TRT, A_PRV, A_SEE};
  for (size_t ci = 0; ci < c_.size(); ++ci)
    for (int lang = 0; lang < 2; ++lang) {
      const Cond& c = c_[ci];
      const Vars v = base(c, lang);
      vector<int> singles = {A_OV, A_SYM, A_CAU, A_TST, A_TRT, A_PRV, A_SEE, A_CHECK};
      r.shuffle(singles);
      for (int k = 0; k < 6; ++k) {
        vector<Turn> t;
        if (r.chance(10)) t.push_back({"system", r.pick(kSystem.v[lang])});
        if (k >= 2) {  // single-turn
          const int a = singles[k - 2];
          if (a == A_CHECK) {
            vector<size_t> shown;
            t.push_back({"human", checkQuestion(c, lang, r, shown)});
            t.push_back({"gpt", checkAnswer(c, lang, shown, r)});
          } else {
            t.push_back({"human", fill(r.pick(kQNamed[a].v[lang]), v)});
            t.push_back({"gpt", answer(c, c, a, lang, r)});
          }
        } else {  // multi-turn, 2 to 4 rounds
          const size_t rounds = 2 + r.uniform(3);
          const vector<int> firsts = {A_OV, A_SYM, A_CHECK, A_CAU, A_TRT};
          const int first = r.pick(firsts);
          vector<int> rest;
          for (int a : listAspects)
            if (a != first) rest.push_back(a);
          r.shuffle(rest);
          if (first == A_CHECK) {
            vector<size_t> shown;
            t.push_back({"human", checkQuestion(c, lang, r, shown)});
            t.push_back({"gpt", checkAnswer(c, lang, shown, r)});
          } else {
            t.push_back({"human", fill(r.pick(kQNamed[first].v[lang]), v)});
            t.push_back({"gpt", answer(c, c, first, lang, r)});
          }
          for (size_t i = 0; i + 1 < rounds; ++i) {
            const int a = rest[i];
            const bool pronoun = first != A_CHECK && r.chance(70);
            t.push_back({"human", fill(r.pick((pronoun ? kQFollow[a] : kQNamed[a]).v[lang]), v)});
            t.push_back({"gpt", answer(c, c, a, lang, r)});
          }
        }
        convs.push_back(std::move(t));
      }
      // One multiple-choice practice conversation, with the training wording.
      Mcq q;
      vector<int> types = {F_SYM, F_CAU, F_TST, F_TRT, F_PRV, R_SYM, R_TRT, R_PRV};
      r.shuffle(types);
      for (int type : types)
        if (makeMcq(ci, lang, type, kMcqTrain[type], r, q)) break;
      if (q.question.empty()) die("no multiple-choice question possible for " + c.id);
      const int ans = static_cast<int>(r.uniform(4));
      vector<string> opts = q.distractors;
      r.shuffle(opts);
      opts.insert(opts.begin() + ans, q.correct);
      string human = q.question;
      for (int i = 0; i < 4; ++i) human += string("\n") + static_cast<char>('A' + i) + ". " + opts[i];
      human += "\n" + r.pick(kMcqInstr.v[lang]);
      const string letter(1, static_cast<char>('A' + ans));
      Vars rv;
      rv["A"] = letter;
      string explain = fill(q.explain, rv);
      vector<Turn> t;
      if (r.chance(10)) t.push_back({"system", r.pick(kSystem.v[lang])});
      t.push_back({"human", human});
      t.push_back({"gpt", joinSentences({fill(r.pick(kMcqReply.v[lang]), rv), explain}, lang)});
      trainingQuestions.insert(q.question);
      convs.push_back(std::move(t));
    }
  r.shuffle(convs);
  for (const auto& t : convs)
    for (const auto& turn : t)
      if (turn.from == "human") trainingQuestions.insert(turn.value);
  return convs;
}

// ---- preference and KTO ----
vector<Pref> Generator::preference() {
  Rng r = stream(seed_, 3);
  vector<Pref> out;
  for (size_t ci = 0; ci < c_.size(); ++ci)
    for (int lang = 0; lang < 2; ++lang) {
      const Cond& c = c_[ci];
      const Vars v = base(c, lang);
      vector<int> aspects = {A_OV, A_SYM, A_CAU, A_TST, A_TRT, A_PRV, A_SEE};
      r.shuffle(aspects);
      for (int k = 0; k < 4; ++k) {
        const int a = aspects[k];
        Pref p;
        if (r.chance(10)) p.system = r.pick(kSystem.v[lang]);
        const bool history = r.chance(12);
        if (history) {
          const int h = aspects[4 + r.uniform(3)];
          const string hq = fill(r.pick(kQNamed[h].v[lang]), v);
          const string ha = answer(c, c, h, lang, r);
          p.history.push_back({hq, ha});
          p.question = fill(r.pick(kQFollow[a].v[lang]), v);
        } else {
          p.question = fill(r.pick(kQNamed[a].v[lang]), v);
        }
        p.chosen = answer(c, c, a, lang, r);
        const size_t roll = r.uniform(10);
        const int kind = roll < 4 ? 0 : roll < 7 ? 1 : 2;
        p.rejected = rejected(ci, a, lang, kind, r);
        trainingQuestions.insert(p.question);
        for (const auto& h : p.history) trainingQuestions.insert(h.first);
        out.push_back(std::move(p));
      }
    }
  r.shuffle(out);
  return out;
}

vector<Kto> Generator::kto() {
  Rng r = stream(seed_, 4);
  vector<Kto> out;
  for (size_t ci = 0; ci < c_.size(); ++ci)
    for (int lang = 0; lang < 2; ++lang) {
      const Cond& c = c_[ci];
      vector<int> aspects = {A_OV, A_SYM, A_CAU, A_TST, A_TRT, A_PRV, A_SEE};
      r.shuffle(aspects);
      for (int k = 0; k < 4; ++k) {
        const int a = aspects[k];
        Kto e;
        e.prompt = fill(r.pick(kQNamed[a].v[lang]), base(c, lang));
        e.label = (out.size() % 2) == 0;
        if (e.label) {
          e.completion = answer(c, c, a, lang, r);
        } else {
          const size_t roll = r.uniform(10);
          e.completion = rejected(ci, a, lang, roll < 4 ? 0 : roll < 7 ? 1 : 2, r);
        }
        trainingQuestions.insert(e.prompt);
        out.push_back(std::move(e));
      }
    }
  r.shuffle(out);
  return out;
}

// ---- multiple choice ----
bool Generator::makeMcq(size_t ci, int lang, int type, const Bank& bank, Rng& r, Mcq& out) const {
  const Cond& x = c_[ci];
  const Field f = fieldOfQ(type);
  Vars v = base(x, lang);
  Mcq q;
  if (f == PRV && x.limitedPrevention) return false;
  if (!isReverse(type)) {
    // Correct answer: one of the condition's own items (never a "no symptoms"
    // clause, nor "clinical diagnosis"-like entries for test questions).
    vector<size_t> own;
    for (size_t k = 0; k < x.f[f][lang].size(); ++k) {
      const string en = lower(x.f[f][EN][k]);
      if (f == SYM && x.silent[k]) continue;
      if (f == TST && (en.find("diagnos") != string::npos || en.find("history") != string::npos)) continue;
      if (f == CAU && (en.find("unknown") != string::npos || en.find("no cause") != string::npos)) continue;
      own.push_back(k);
    }
    if (own.empty()) return false;
    const size_t k0 = r.pick(own);
    std::set<string> taken;
    for (int g = 0; g < NF; ++g)
      for (int l = 0; l < 2; ++l)
        for (const string& s : x.f[g][l]) taken.insert(lower(s));
    // Distractors: specific items of the same field from unrelated conditions.
    vector<std::pair<size_t, size_t>> pool;
    for (size_t j = 0; j < c_.size(); ++j) {
      if (rel_[ci][j]) continue;
      for (size_t k = 0; k < c_[j].f[f][lang].size(); ++k) {
        if (c_[j].generic[f][k] || (f == SYM && c_[j].silent[k])) continue;
        if (taken.count(lower(c_[j].f[f][EN][k])) || taken.count(c_[j].f[f][ZH][k])) continue;
        pool.push_back({j, k});
      }
    }
    r.shuffle(pool);
    std::set<size_t> usedConds;
    std::set<string> usedText = {lower(x.f[f][lang][k0])};
    for (const auto& [j, k] : pool) {
      if (q.distractors.size() == 3) break;
      const string t = c_[j].f[f][lang][k];
      if (usedConds.count(j) || usedText.count(lower(t))) continue;
      usedConds.insert(j);
      usedText.insert(lower(t));
      q.distractors.push_back(lang == EN ? cap(t) : t);
    }
    if (q.distractors.size() < 3) return false;
    q.correct = lang == EN ? cap(x.f[f][lang][k0]) : x.f[f][lang][k0];
    q.question = fill(r.pick(bank.v[lang]), v);
    Vars e = withList(v, items(x, f, lang), lang);
    e["FN"] = kFieldNoun[f][lang];
    e["O"] = q.correct;
    e["A"] = "{A}";
    q.explain = fill(kMcqWhyF.v[lang][0], e);
  } else {
    // Show two or three specific items; options are condition names.
    vector<size_t> spec;
    for (size_t k = 0; k < x.f[f][lang].size(); ++k)
      if (!x.generic[f][k] && (f != SYM || !x.silent[k])) spec.push_back(k);
    if (spec.size() < 2) return false;
    r.shuffle(spec);
    spec.resize(std::min<size_t>(spec.size(), 2 + r.uniform(2)));
    std::sort(spec.begin(), spec.end());
    const vector<string> shown = texts(x, f, lang, spec);
    vector<size_t> cand;
    for (size_t j = 0; j < c_.size(); ++j)
      if (!rel_[ci][j]) cand.push_back(j);
    r.shuffle(cand);
    std::set<size_t> usedCats;
    for (size_t j : cand) {
      if (q.distractors.size() == 3) break;
      if (usedCats.count(c_[j].catIndex)) continue;
      usedCats.insert(c_[j].catIndex);
      q.distractors.push_back(lang == EN ? cap(c_[j].name[EN]) : c_[j].name[ZH]);
    }
    if (q.distractors.size() < 3) return false;
    q.correct = lang == EN ? cap(x.name[EN]) : x.name[ZH];
    const Vars lv = withList(v, shown, lang);
    q.question = fill(r.pick(bank.v[lang]), lv);
    Vars e = lv;
    e["A"] = "{A}";
    q.explain = fill(kMcqWhyR[type - R_SYM].v[lang][0], e);
  }
  out = std::move(q);
  return true;
}

vector<Mcq> Generator::mcq(bool eval) {
  Rng r = stream(seed_, eval ? 6 : 5);
  const Bank* bank = eval ? kMcqEval : kMcqTrain;
  const size_t perCond = eval ? 1 : 2;
  vector<Mcq> out;
  std::set<string> seen;
  for (size_t ci = 0; ci < c_.size(); ++ci)
    for (int lang = 0; lang < 2; ++lang) {
      vector<int> types = {F_SYM, F_CAU, F_TST, F_TRT, F_PRV, R_SYM, R_TRT, R_PRV};
      r.shuffle(types);
      size_t made = 0;
      for (int attempt = 0; attempt < 40 && made < perCond; ++attempt) {
        const int type = types[static_cast<size_t>(attempt) % types.size()];
        Mcq q;
        if (!makeMcq(ci, lang, type, bank[type], r, q)) continue;
        if (seen.count(q.question) || (eval && trainingQuestions.count(q.question))) continue;
        seen.insert(q.question);
        out.push_back(std::move(q));
        ++made;
      }
      if (made < perCond) die("could not make enough multiple-choice questions for " + c_[ci].id);
    }
  // Balanced answer letters: a shuffled list with each letter equally often.
  vector<int> letters;
  for (size_t i = 0; i < out.size(); ++i) letters.push_back(static_cast<int>(i % 4));
  r.shuffle(letters);
  for (size_t i = 0; i < out.size(); ++i) {
    Mcq& q = out[i];
    vector<string> d = q.distractors;
    r.shuffle(d);
    d.insert(d.begin() + letters[i], q.correct);
    for (int k = 0; k < 4; ++k) q.options[k] = d[static_cast<size_t>(k)];
    q.answer = letters[i];
  }
  r.shuffle(out);
  if (!eval)
    for (const auto& q : out) trainingQuestions.insert(q.question);
  return out;
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------
string sftLine(const vector<Turn>& t) {
  string s = "{\"conversations\":[";
  for (size_t i = 0; i < t.size(); ++i) {
    if (i) s += ",";
    s += "{\"from\":" + jsonString(t[i].from) + ",\"value\":" + jsonString(t[i].value) + "}";
  }
  return s + "]}";
}

string prefLine(const Pref& p) {
  string h = "[";
  for (size_t i = 0; i < p.history.size(); ++i) {
    if (i) h += ",";
    h += "[" + jsonString(p.history[i].first) + "," + jsonString(p.history[i].second) + "]";
  }
  h += "]";
  return "{\"system\":" + jsonString(p.system) + ",\"history\":" + h + ",\"question\":" + jsonString(p.question) +
         ",\"response_chosen\":" + jsonString(p.chosen) + ",\"response_rejected\":" + jsonString(p.rejected) + "}";
}

string ktoLine(const Kto& k) {
  return "{\"prompt\":" + jsonString(k.prompt) + ",\"completion\":" + jsonString(k.completion) +
         ",\"label\":" + (k.label ? "true" : "false") + "}";
}

string mcqLine(const Mcq& q) {
  string s = "{\"question\":" + jsonString(q.question) + ",\"options\":{";
  for (int k = 0; k < 4; ++k) {
    if (k) s += ",";
    s += string("\"") + static_cast<char>('A' + k) + "\":" + jsonString(q.options[k]);
  }
  return s + "},\"answer\":\"" + static_cast<char>('A' + q.answer) + "\"}";
}

struct Output {
  string path;  // relative to --out
  vector<string> lines;
  size_t bytes() const {
    size_t n = 0;
    for (const auto& l : lines) n += l.size() + 1;
    return n;
  }
};

void writeFile(const fs::path& p, const vector<string>& lines) {
  fs::create_directories(p.parent_path());
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
    if (!o) die("cannot write " + tmp.string());
    for (const auto& l : lines) {
      if (l.find('\n') != string::npos) die("internal error: a record contains a raw newline");
      o << l << '\n';
    }
    if (!o) die("write failed: " + tmp.string());
  }
  fs::rename(tmp, p);
}

// Literal text of a template between placeholders, longest piece first.
string longestLiteral(const string& t) {
  string best, cur;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '{') {
      if (cur.size() > best.size()) best = cur;
      cur.clear();
      i = t.find('}', i);
    } else {
      cur += t[i];
    }
  }
  if (cur.size() > best.size()) best = cur;
  return best;
}

void usage() {
  std::cout << "usage: make_medical_data [--table FILE] [--out DIR] [--seed N]\n"
               "  --table  authored condition table (default inputs/data/conditions.tsv)\n"
               "  --out    output directory (default inputs/data)\n"
               "  --seed   random seed (default 42)\n";
}

}  // namespace

int main(int argc, char** argv) {
  string table = "inputs/data/conditions.tsv", outDir = "inputs/data";
  uint64_t seed = 42;
  for (int i = 1; i < argc; ++i) {
    const string a = argv[i];
    auto value = [&]() -> string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--table") {
      table = value();
    } else if (a == "--out") {
      outDir = value();
    } else if (a == "--seed") {
      const string s = value();
      char* end = nullptr;
      seed = std::strtoull(s.c_str(), &end, 10);
      if (s.empty() || *end) die("--seed needs a non-negative integer, got '" + s + "'");
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      usage();
      die("unknown argument '" + a + "'");
    }
  }

  const vector<Cond> conds = readTable(table);
  Generator g(conds, seed);

  const vector<string> pt = g.pretraining();
  const vector<vector<Turn>> sft = g.sft();
  const vector<Pref> pref = g.preference();
  const vector<Kto> kto = g.kto();
  const vector<Mcq> train = g.mcq(false);
  const vector<Mcq> eval = g.mcq(true);

  vector<Output> outs(6);
  outs[0].path = "pt/medical_encyclopedia.txt";
  outs[0].lines = pt;
  outs[1].path = "sft/medical_sft.jsonl";
  for (const auto& t : sft) outs[1].lines.push_back(sftLine(t));
  outs[2].path = "reward/medical_pref.jsonl";
  for (const auto& p : pref) outs[2].lines.push_back(prefLine(p));
  outs[3].path = "reward/medical_kto.jsonl";
  for (const auto& k : kto) outs[3].lines.push_back(ktoLine(k));
  outs[4].path = "grpo/medical_mcq.jsonl";
  for (const auto& q : train) outs[4].lines.push_back(mcqLine(q));
  outs[5].path = "eval/medical_mcq_eval.jsonl";
  for (const auto& q : eval) outs[5].lines.push_back(mcqLine(q));

  // ---- contract checks ----
  size_t multi = 0, withSystem = 0;
  for (const auto& t : sft) {
    size_t humans = 0;
    for (const auto& turn : t) humans += turn.from == "human";
    multi += humans >= 2;
    withSystem += !t.empty() && t[0].from == "system";
  }
  size_t positives = 0;
  for (const auto& k : kto) positives += k.label;
  if (outs[0].bytes() < 1000000) die("pretraining corpus is under 1 MB");
  if (sft.size() < 2000) die("fewer than 2,000 SFT conversations");
  if (multi * 5 < sft.size()) die("fewer than 20% multi-turn SFT conversations");
  if (pref.size() < 1000) die("fewer than 1,000 preference pairs");
  if (positives * 2 != kto.size()) die("KTO labels are not balanced");
  if (train.size() < 500) die("fewer than 500 RL prompts");
  if (eval.size() < 300) die("fewer than 300 evaluation questions");
  for (const auto& q : eval)
    if (g.trainingQuestions.count(q.question)) die("evaluation question also used in training: " + q.question);
  // Held-out wording: the longest literal piece of every evaluation template
  // must not occur anywhere in the training files.
  string trainingText;
  for (size_t i = 0; i < 5; ++i)
    for (const auto& l : outs[i].lines) trainingText += l + "\n";
  for (int t = 0; t < NQ; ++t)
    for (int lang = 0; lang < 2; ++lang)
      for (const string& tmpl : kMcqEval[t].v[lang]) {
        const string lit = longestLiteral(tmpl);
        if (lit.size() < 8) die("internal error: evaluation template too short to check: " + tmpl);
        if (trainingText.find(lit) != string::npos)
          die("evaluation wording \"" + lit + "\" also appears in the training files");
      }
  for (const auto& o : outs)
    for (const auto& l : o.lines)
      if (!validUtf8(l)) die("internal error: invalid UTF-8 in " + o.path);

  for (const auto& o : outs) writeFile(fs::path(outDir) / o.path, o.lines);

  int letters[2][4] = {};
  for (const auto& q : train) ++letters[0][q.answer];
  for (const auto& q : eval) ++letters[1][q.answer];
  std::printf("conditions: %zu (seed %llu)\n", conds.size(), static_cast<unsigned long long>(seed));
  for (const auto& o : outs) std::printf("  %-32s %6zu lines %9zu bytes\n", o.path.c_str(), o.lines.size(), o.bytes());
  std::printf("sft: %zu multi-turn (%.1f%%), %zu with a system prompt (%.1f%%)\n", multi, 100.0 * multi / sft.size(),
              withSystem, 100.0 * withSystem / sft.size());
  std::printf("kto: %zu desirable, %zu undesirable\n", positives, kto.size() - positives);
  std::printf("answer letters A/B/C/D: train %d/%d/%d/%d, eval %d/%d/%d/%d\n", letters[0][0], letters[0][1],
              letters[0][2], letters[0][3], letters[1][0], letters[1][1], letters[1][2], letters[1][3]);
  return 0;
}
