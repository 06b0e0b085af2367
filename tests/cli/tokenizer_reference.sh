#!/usr/bin/env bash
# medgpt's tokenizer against Hugging Face's own (npm `tokenizers`, the Rust implementation) on
# 2,500 generated texts: Qwen3 and Llama-3 encode ids, decode of reference ids and of random id
# sequences (split UTF-8), a tokenizer trained by medgpt and two extended ones (loaded by HF), and
# the same output under mpirun -np 2. Every comparison must be 100%.
set -euo pipefail
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_TEST_TOKENIZERS:?}"
ref="$MEDGPT_SOURCE_DIR/tests/reference"
[[ -d "$ref/node_modules/tokenizers" ]] || { echo "reference tokenizer missing: run tools/setup.sh"; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
node "$ref/gen_texts.mjs" --count 2500 --seed 1 > "$work/texts.jsonl"

check_encode() {  # tokenizer-dir label
  node "$ref/encode.mjs" encode "$1/tokenizer.json" "$work/texts.jsonl" "$work/ref.jsonl"
  "$MEDGPT" tokenizer encode --tokenizer "$1" --input "$work/texts.jsonl" --output "$work/got.jsonl" 2>/dev/null
  echo -n "$2 encode: "; node "$ref/compare_jsonl.mjs" "$work/ref.jsonl" "$work/got.jsonl" "$work/texts.jsonl"
}
check_decode() {  # tokenizer-dir label ids-file
  for skip in "" --skip-special-tokens; do
    node "$ref/encode.mjs" decode "$1/tokenizer.json" "$3" "$work/ref_text.jsonl" $skip
    # The Rust library does not do transformers' clean-up (Llama-3's config turns it on).
    "$MEDGPT" tokenizer decode --tokenizer "$1" --input "$3" --output "$work/got_text.jsonl" $skip \
      --clean-up-tokenization-spaces false 2>/dev/null
    echo -n "$2 decode $skip: "; node "$ref/compare_jsonl.mjs" "$work/ref_text.jsonl" "$work/got_text.jsonl" "$3"
  done
}

for tok in qwen3 llama3; do
  dir="$MEDGPT_TEST_TOKENIZERS/$tok"
  check_encode "$dir" "$tok"
  check_decode "$dir" "$tok" "$work/ref.jsonl"
  node "$ref/random_ids.mjs" "$( [[ $tok == qwen3 ]] && echo 151669 || echo 128256 )" --count 1000 > "$work/random_ids.jsonl"
  check_decode "$dir" "$tok random" "$work/random_ids.jsonl"
done

# The same ids from 2 ranks as from 1 (lines split between ranks, written in order).
"$MEDGPT" tokenizer encode --tokenizer "$MEDGPT_TEST_TOKENIZERS/qwen3" --input "$work/texts.jsonl" --output "$work/np1.jsonl" 2>/dev/null
"${MPIEXEC:-mpiexec}" -np 2 --oversubscribe "$MEDGPT" tokenizer encode --tokenizer "$MEDGPT_TEST_TOKENIZERS/qwen3" \
  --input "$work/texts.jsonl" --output "$work/np2.jsonl" 2>/dev/null
cmp "$work/np1.jsonl" "$work/np2.jsonl" && echo "mpirun -np 2 encode: identical to -np 1"

# A tokenizer trained by medgpt, and extensions of Qwen3 / Llama-3, encode as HF loads them.
corpus="$MEDGPT_SOURCE_DIR/inputs/data/medical_corpus.txt"
"$MEDGPT" tokenizer train --input "$corpus" --vocab-size 6000 --output "$work/trained" 2>/dev/null
check_encode "$work/trained" "trained"
"$MEDGPT" tokenizer extend --base "$MEDGPT_TEST_TOKENIZERS/qwen3" --add "$work/trained" --output "$work/ext_qwen3" 2>/dev/null
check_encode "$work/ext_qwen3" "qwen3+trained"
"$MEDGPT" tokenizer extend --base "$MEDGPT_TEST_TOKENIZERS/llama3" --add "$MEDGPT_SOURCE_DIR/inputs/data/medical_terms.txt" \
  --output "$work/ext_llama3" 2>/dev/null
check_encode "$work/ext_llama3" "llama3+terms"

# Less common tokenizer.json features, on a variant of the trained tokenizer: legacy "a b" merges,
# GPT-2's ByteLevel(use_regex) pre-tokenizer, and added tokens with lstrip / rstrip / single_word /
# normalized flags ("é" is also a model token: Hugging Face then uses the model's id).
n=$(jq '.added_tokens | map(.id) | max + 1' "$work/trained/tokenizer.json")
mkdir -p "$work/variant"
jq --argjson n "$n" '.model.merges |= map(join(" "))
  | .pre_tokenizer = {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
  | .added_tokens += [
      {"id": $n,       "content": "[MASK]", "single_word": false, "lstrip": true,  "rstrip": false, "normalized": false, "special": true},
      {"id": ($n + 1), "content": "<sep>",  "single_word": false, "lstrip": false, "rstrip": true,  "normalized": false, "special": true},
      {"id": ($n + 2), "content": "ok",     "single_word": true,  "lstrip": false, "rstrip": false, "normalized": false, "special": false},
      {"id": ($n + 3), "content": "é",      "single_word": false, "lstrip": false, "rstrip": false, "normalized": true,  "special": false},
      {"id": ($n + 4), "content": "café",   "single_word": false, "lstrip": false, "rstrip": false, "normalized": true,  "special": false}]' \
  "$work/trained/tokenizer.json" > "$work/variant/tokenizer.json"
{
  head -n 500 "$work/texts.jsonl"
  for s in "a [MASK] b" "a   [MASK]b" "[MASK]" "x<sep>   y" "<sep>\n\nz" "ok book ok_ok okay (ok) 好ok" "e\u0301 café é" \
           "  [MASK]  <sep>  ok  " "[MASK][MASK]<sep><sep>" "ok,ok.ok" "1ok ok1"; do
    printf '{"text": "%s"}\n' "$s"
  done
} > "$work/variant_texts.jsonl"
cp "$work/variant_texts.jsonl" "$work/texts.jsonl"
check_encode "$work/variant" "variant (legacy merges, GPT-2 regex, added-token flags)"
check_decode "$work/variant" "variant" "$work/ref.jsonl"
echo "tokenizer reference: all equal"
