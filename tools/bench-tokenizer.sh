#!/usr/bin/env bash
# Tokenizer throughput on the same >=20 MB corpus: Hugging Face tokenizers (Rust, one thread),
# medgpt (one thread), medgpt on 2 MPI ranks. Corpus: 120,000 generated mixed texts (see
# tests/reference/gen_texts.mjs) plus the bundled medical corpus 20 times.
#   tools/bench-tokenizer.sh [TOKENIZER_DIR]   (default: the Qwen3 tokenizer from tests/fixtures)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
ref="$root/tests/reference"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
tok="${1:-}"
if [[ -z "$tok" ]]; then
  tok="$work/qwen3"
  "$root/tools/unpack-tokenizer.sh" qwen3 "$tok"
fi
node "$ref/gen_texts.mjs" --count 120000 --seed 7 > "$work/corpus.jsonl"
for _ in $(seq 20); do jq -cR '{text: .}' "$root/inputs/data/medical_corpus.txt"; done >> "$work/corpus.jsonl"
echo "corpus: $(wc -l < "$work/corpus.jsonl") texts, $(du -m "$work/corpus.jsonl" | cut -f1) MB of JSONL; tokenizer: $tok"
TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 node "$ref/bench.mjs" "$tok/tokenizer.json" "$work/corpus.jsonl"
"$medgpt" tokenizer bench --threads 1 --tokenizer "$tok" --input "$work/corpus.jsonl"
OMPI_MCA_mpi_yield_when_idle=1 mpiexec -q --allow-run-as-root -np 2 --oversubscribe \
  "$medgpt" tokenizer bench --threads 1 --tokenizer "$tok" --input "$work/corpus.jsonl"
