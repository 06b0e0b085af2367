// Compares two JSONL files record by record (parsed, so JSON spelling does not matter).
//   node compare_jsonl.mjs EXPECTED.jsonl GOT.jsonl [INPUT.jsonl]
// Exit 0 when equal; otherwise prints the first differences (with the input line) and exits 1.
import fs from "node:fs";
const [expFile, gotFile, inFile] = process.argv.slice(2);
const read = (f) => fs.readFileSync(f, "utf8").split("\n").filter((l) => l.length > 0);
const exp = read(expFile), got = read(gotFile), inp = inFile ? read(inFile) : [];
let bad = 0;
if (exp.length !== got.length) {
  console.error(`line count differs: expected ${exp.length}, got ${got.length}`);
  process.exit(1);
}
for (let i = 0; i < exp.length; ++i) {
  const a = JSON.stringify(JSON.parse(exp[i])), b = JSON.stringify(JSON.parse(got[i]));
  if (a !== b) {
    if (++bad <= 3) console.error(`line ${i + 1}: expected ${a}\n        got ${b}` + (inp[i] ? `\n      input ${inp[i]}` : ""));
  }
}
console.log(`${exp.length - bad}/${exp.length} equal (${((100 * (exp.length - bad)) / exp.length).toFixed(2)}%)`);
process.exit(bad ? 1 : 0);
