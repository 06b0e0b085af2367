// Random id sequences for decode tests (JSONL {"ids": [...]}), seeded; ids below `vocab`.
//   node random_ids.mjs VOCAB [--count N] [--seed S]
const args = process.argv.slice(2);
const vocab = Number(args[0]);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : def; };
const count = opt("--count", 1000);
let seed = opt("--seed", 1) >>> 0;
function rand() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const out = [];
for (let i = 0; i < count; ++i) {
  const n = 1 + Math.floor(rand() * 24);
  // Half the ids from the byte range (0..255), where split UTF-8 sequences live.
  const ids = Array.from({ length: n }, () => (rand() < 0.5 ? Math.floor(rand() * 256) : Math.floor(rand() * vocab)));
  out.push(JSON.stringify({ ids }));
}
process.stdout.write(out.join("\n") + "\n");
