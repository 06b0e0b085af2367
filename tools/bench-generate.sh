#!/usr/bin/env bash
# KV-cache generation throughput on 2 threads: prefill tokens/s (128-token prompts) and decode
# tokens/s (64 new tokens) at batch 1 and 8, fp32 and bf16, for a Qwen2.5-0.5B-shaped model with
# random weights (inputs/models/qwen2.5-0.5b.json) and the demo model.
#   tools/bench-generate.sh [threads]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
threads="${1:-2}"
for model in models/demo-12m/config.json models/qwen2.5-0.5b.json; do
  for dtype in fp32 bf16; do
    for batch in 1 8; do
      "$medgpt" model bench-generate --threads "$threads" --config-json "$root/inputs/$model" --dtype "$dtype" --batch "$batch" \
        --prompt-len 128 --new-tokens 64
    done
  done
done
