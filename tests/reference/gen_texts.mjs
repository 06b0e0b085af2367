// Deterministic generator of varied tokenizer test texts (JSONL {"text": ...} on stdout):
// Chinese medical text, English, mixed scripts, emoji and ZWJ sequences, digit runs, code,
// whitespace runs (\r\n, tabs, trailing spaces, NBSP, ideographic space), special-token strings
// inside text, contractions in odd cases, combining marks. No lone surrogates.
//   node gen_texts.mjs [--count N] [--seed S]
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : def; };
const count = opt("--count", 2500);
let seed = opt("--seed", 1) >>> 0;

function rand() { // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const repeat = (f, n) => Array.from({ length: n }, f).join("");

const zhMedical = ["糖尿病", "高血压", "冠心病", "患者", "症状", "治疗", "药物", "胰岛素", "血糖", "头痛", "发热", "咳嗽",
  "肺炎", "抗生素", "医生", "医院", "检查", "诊断", "手术", "护理", "中医", "针灸", "感冒", "过敏", "慢性", "急性",
  "心电图", "血常规", "肝功能", "肾功能", "白细胞", "病毒", "细菌", "疫苗", "剂量", "副作用", "建议", "饮食", "运动",
  "每日三次", "饭后服用", "请问", "怎么办", "是什么原因", "需要注意什么", "孕妇", "儿童", "老年人", "甲状腺", "乳腺癌",
  "阿莫西林", "布洛芬", "二甲双胍", "阿司匹林", "维生素", "骨折", "关节炎", "失眠", "抑郁症", "焦虑"];
const zhPunct = ["，", "。", "？", "！", "、", "；", "：", "“", "”", "（", "）", "《", "》", "……", "—"];
const enWords = ["the", "patient", "presents", "with", "acute", "chest", "pain", "Diabetes", "mellitus", "type", "insulin",
  "resistance", "blood", "pressure", "mmHg", "dose", "mg", "twice", "daily", "HbA1c", "MRI", "CT", "scan", "fever",
  "COVID-19", "SARS-CoV-2", "hypertension", "myocardial", "infarction", "Hello", "world", "don't", "I'm", "it's",
  "we've", "they're", "you'll", "he'd", "IT'S", "We'RE", "You'LL", "She'D", "can't", "O'Brien", "rock'n'roll"];
const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'Ll", "’s", "’re", "'x", "''", "'"];
const scripts = ["Здравствуйте, как вы себя чувствуете?", "Γειά σου κόσμε", "مرحبا بالعالم ١٢٣", "नमस्ते दुनिया",
  "สวัสดีชาวโลก", "こんにちは、世界！カタカナ", "안녕하세요 세계", "שלום עולם", "Ærøskøbing straße Œuvre",
  "Tiếng Việt có dấu", "ǅemal ǈubljana ǋ", "ÀÉÎÕÜ àéîõü ñ ç", "ǰ ΐ ẞ ß ﬀ ﬁ ﬂ", "Ⅷ ⅷ ½ ¾ ² ³ ① ⑩ ٣ ۴ ߁ ௫"];
const emoji = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇨🇳", "🇺🇸", "❤️", "🩺", "💊", "🧬", "🦠", "👩🏻‍⚕️", "🤒", "1️⃣", "©️", "™", "⚕️"];
const specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "<|begin_of_text|>",
  "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|im_", "|>", "<|", "<think", "<|reserved_special_token_5|>",
  "<|fim_prefix|>", "<tool_response>"];
const code = ["def f(x):\n    return x**2  # ok\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
  "if x != None and y >= 3:\n        print(f\"{x!r}\")", "SELECT * FROM patients WHERE age > 65;", "<div class=\"a\">&nbsp;</div>",
  "$ ls -la /tmp && echo $?", "x = {'a': [1, 2, 3], \"b\": None}", "#include <stdio.h>\r\nint main(void){return 0;}\r\n",
  "λx. x + 1 → ∀ε>0 ∃δ", "a==b||c&&d", "   indented\n\n\n    more"];
const spaces = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n ", "\u00a0", "\u3000", "\u2003", "\u0085", "\u000b",
  "\u000c", "\u200b", "\u001c", "\u2028", " \t \n", "      "];
const digits = () => pick([repeat(() => String(int(10)), 1 + int(12)), String(int(100000)), (rand() * 1000).toFixed(int(4)),
  "１２３４５", "٠١٢٣", "2024-03-15", "12:30", "3.14159", "1,000,000", "10^6", "0x1F", "½", "Ⅻ", "①②③"]);
const combining = () => pick(["e\u0301", "a\u0308", "n\u0303", "c\u0327", "A\u030a", "o\u0302\u0323", "\u1100\u1161\u11a8", "ﬁ", "Å", "Ω"]);

function fragment() {
  switch (int(12)) {
    case 0: return repeat(() => pick(zhMedical) + (rand() < 0.3 ? pick(zhPunct) : ""), 1 + int(8));
    case 1: return repeat(() => pick(enWords) + (rand() < 0.8 ? " " : pick([",", ".", "?", "!", ";"]) + " "), 1 + int(10));
    case 2: return pick(scripts);
    case 3: return repeat(() => pick(emoji), 1 + int(4));
    case 4: return digits();
    case 5: return pick(code);
    case 6: return pick(spaces);
    case 7: return pick(specials);
    case 8: return pick(enWords) + pick(contractions) + (rand() < 0.5 ? pick(enWords) : " ");
    case 9: return combining();
    case 10: return String.fromCodePoint(pick([0x21 + int(94), 0xa1 + int(0x15e), 0x370 + int(0x90), 0x4e00 + int(0x5000),
      0x3040 + int(0x60), 0xac00 + int(0x2ba4), 0x1f300 + int(0x250), 0x2000 + int(0x70), 0xff01 + int(0x5e)]));
    default: return pick(zhMedical) + pick(enWords) + digits();
  }
}

const out = [];
for (let i = 0; i < count; ++i) {
  const n = 1 + int(i % 10 === 0 ? 40 : 8);
  let text = "";
  for (let k = 0; k < n; ++k) text += fragment() + (rand() < 0.3 ? pick(spaces) : "");
  if (rand() < 0.1) text = pick(spaces) + text;
  if (rand() < 0.1) text += pick(spaces);
  out.push(JSON.stringify({ text }));
}
process.stdout.write(out.join("\n") + "\n");
