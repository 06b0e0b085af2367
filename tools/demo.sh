#!/usr/bin/env bash
# The main job on the bundled data, from a fresh Debian 12 machine: set up, build, then
#   1. train a medical domain tokenizer (byte-level BPE, Qwen pre-tokenizer) on the bundled corpus,
#   2. encode the corpus with it and decode it back (checked to round-trip),
#   3. extend the Qwen3 tokenizer with the domain tokens and report how much shorter the corpus gets,
#   4. prepare the bundled pretraining and SFT data into HDF5 corpora with it (2 MPI ranks) and
#      show what the SFT loss will train on.
# Outputs go to run/demo/ (or $1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/run/demo}"
"$root/tools/setup.sh"
"$root/tools/build.sh" >/dev/null
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
corpus="$root/inputs/data/medical_corpus.txt"
mkdir -p "$out"

echo "== 1. train a domain tokenizer on $(basename "$corpus")"
"$medgpt" tokenizer train --config "$root/inputs/tokenizer.ini" --input "$corpus" --output "$out/domain_tokenizer"

echo "== 2. encode the corpus with it, and decode it back"
jq -cR '{text: .}' "$corpus" > "$out/corpus.jsonl"
"$medgpt" tokenizer encode --tokenizer "$out/domain_tokenizer" --input "$out/corpus.jsonl" --output "$out/corpus.ids.jsonl"
"$medgpt" tokenizer decode --tokenizer "$out/domain_tokenizer" --input "$out/corpus.ids.jsonl" --output "$out/corpus.decoded.jsonl"
if cmp -s "$out/corpus.jsonl" "$out/corpus.decoded.jsonl"; then
  echo "round trip: identical text"
else
  echo "round trip: decoded text differs from the corpus (see $out/corpus.decoded.jsonl)" >&2
  exit 1
fi

echo "== 3. extend Qwen3's tokenizer with the domain tokens"
"$root/tools/unpack-tokenizer.sh" qwen3 "$out/qwen3"
"$medgpt" tokenizer extend --base "$out/qwen3" --add "$out/domain_tokenizer" --output "$out/qwen3_medical" --corpus "$corpus"

echo "== 4. prepare the bundled pt and sft data (2 ranks) and inspect the sft corpus"
mpi=(mpiexec -q -np 2 --oversubscribe)
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
OMPI_MCA_mpi_yield_when_idle=1 "${mpi[@]}" "$medgpt" prepare --kind pt --input "$root/inputs/data/pt" \
  --tokenizer "$out/qwen3_medical" --block-size 512 --validation-split 0.02 --output "$out/pt.h5"
OMPI_MCA_mpi_yield_when_idle=1 "${mpi[@]}" "$medgpt" prepare --kind sft --input "$root/inputs/data/sft" \
  --tokenizer "$out/qwen3_medical" --template qwen --max-length 1024 --validation-split 0.05 --output "$out/sft.h5"
"$medgpt" data inspect --input "$out/sft.h5" --tokenizer "$out/qwen3_medical" --sample 1
echo "outputs in $out"
