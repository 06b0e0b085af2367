#!/usr/bin/env bash
# Throughput of `medgpt prepare` (pt) on a >=50 MB generated corpus at np=1 and np=2, next to the
# tokenizer's own single-thread throughput on the same text: MB/s and tokens/s.
#   tools/bench-prepare.sh [TOKENIZER_DIR]   (default: the Qwen3 tokenizer from tests/fixtures)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
tok="${1:-}"
if [[ -z "$tok" ]]; then
  tok="$work/qwen3"
  "$root/tools/unpack-tokenizer.sh" qwen3 "$tok"
fi
# 50 MB: generated mixed texts plus the bundled encyclopedia, as JSONL {"text"} lines.
node "$root/tests/reference/gen_texts.mjs" --count 200000 --seed 11 > "$work/corpus.jsonl"
while [[ $(stat -c %s "$work/corpus.jsonl") -lt 50000000 ]]; do
  jq -cR '{text: .}' "$root/inputs/data/pt/medical_encyclopedia.txt" >> "$work/corpus.jsonl"
done
mb=$(( $(stat -c %s "$work/corpus.jsonl") / 1000000 ))
echo "corpus: $(wc -l < "$work/corpus.jsonl") documents, $mb MB"
"$medgpt" tokenizer bench --threads 1 --tokenizer "$tok" --input "$work/corpus.jsonl" --repeats 1
for np in 1 2; do
  start=$(date +%s.%N)
  OMPI_MCA_mpi_yield_when_idle=1 mpiexec -q --allow-run-as-root -np "$np" --oversubscribe \
    "$medgpt" prepare --threads 1 --kind pt --input "$work/corpus.jsonl" --tokenizer "$tok" --output "$work/pt$np.h5" 2> "$work/log$np"
  secs=$(echo "$(date +%s.%N) - $start" | bc -l)
  tokens=$(grep -o '[0-9]* + [0-9]* tokens' "$work/log$np" | awk '{print $1 + $3}')
  printf 'prepare np=%d: %.2f s, %.2f MB/s, %.0f tokens/s (wall, including tokenizer load and HDF5 write)\n' \
    "$np" "$secs" "$(echo "$mb / $secs" | bc -l)" "$(echo "$tokens / $secs" | bc -l)"
  grep -o 'prepare phases.*' "$work/log$np" | sed 's/^/    /' || true
done
cmp -s "$work/pt1.h5" "$work/pt2.h5" && echo "np=1 and np=2 corpora identical"
