#!/usr/bin/env bash
# Unpacks a bundled Hugging Face tokenizer (stored gzipped in tests/fixtures/tokenizers) into a
# model-folder layout: DEST/tokenizer.json + DEST/tokenizer_config.json.
#   tools/unpack-tokenizer.sh qwen3|llama3 DEST
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="${1:?usage: tools/unpack-tokenizer.sh qwen3|llama3 DEST}" dest="${2:?usage: tools/unpack-tokenizer.sh qwen3|llama3 DEST}"
mkdir -p "$dest"
gzip -dc "$root/tests/fixtures/tokenizers/${name}_tokenizer.json.gz" > "$dest/tokenizer.json"
cp "$root/tests/fixtures/tokenizers/${name}_tokenizer_config.json" "$dest/tokenizer_config.json"
