// Reference encoder/decoder: Hugging Face `tokenizers` (the Rust implementation, Node binding).
//   node encode.mjs encode TOKENIZER_JSON IN.jsonl OUT.jsonl [--add-special-tokens]
//     IN lines {"text": ...} -> OUT lines {"ids": [...]}
//   node encode.mjs decode TOKENIZER_JSON IN.jsonl OUT.jsonl [--skip-special-tokens]
//     IN lines {"ids": [...]} -> OUT lines {"text": ...}
import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { Tokenizer } = require("tokenizers");

const [mode, tokFile, inFile, outFile, ...flags] = process.argv.slice(2);
if (!mode || !tokFile || !inFile || !outFile) {
  console.error("usage: node encode.mjs encode|decode TOKENIZER_JSON IN.jsonl OUT.jsonl [flags]");
  process.exit(2);
}
const tok = Tokenizer.fromFile(tokFile);
const lines = fs.readFileSync(inFile, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
const out = [];
const batch = 256;
for (let i = 0; i < lines.length; i += batch) {
  const chunk = lines.slice(i, i + batch);
  if (mode === "encode") {
    const enc = await tok.encodeBatch(chunk.map((l) => l.text), { addSpecialTokens: flags.includes("--add-special-tokens") });
    for (const e of enc) out.push(JSON.stringify({ ids: Array.from(e.getIds()) }));
  } else {
    const dec = await tok.decodeBatch(chunk.map((l) => l.ids), flags.includes("--skip-special-tokens"));
    for (const d of dec) out.push(JSON.stringify({ text: d }));
  }
}
fs.writeFileSync(outFile, out.join("\n") + (out.length ? "\n" : ""));
