// Encode throughput of Hugging Face tokenizers (Rust) on a corpus held in memory, one thread
// (run with TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1).
//   node bench.mjs TOKENIZER_JSON CORPUS.jsonl [repeats]
import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { Tokenizer } = require("tokenizers");
const [tokFile, corpus, repeatsArg] = process.argv.slice(2);
const tok = Tokenizer.fromFile(tokFile);
const texts = fs.readFileSync(corpus, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l).text);
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
let best = Infinity, tokens = 0;
for (let rep = 0; rep < Number(repeatsArg || 3); ++rep) {
  tokens = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < texts.length; i += 1024) {
    const enc = await tok.encodeBatch(texts.slice(i, i + 1024), { addSpecialTokens: false });
    for (const e of enc) tokens += e.getIds().length;
  }
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
console.log(`hf tokenizers (rust) bench: ${texts.length} texts, ${(bytes / 1e6).toFixed(1)} MB, ${tokens} tokens, 1 thread: ` +
  `${best.toFixed(3)} s, ${Math.round(tokens / best)} tokens/s, ${(bytes / 1e6 / best).toFixed(2)} MB/s`);
