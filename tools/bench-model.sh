#!/usr/bin/env bash
# Forward+backward throughput and MFU at T=512 on 2 threads, fp32 and bf16, for a ~30M model and
# a Qwen2.5-0.5B-shaped one (random weights). MFU is against the matmul ceiling measured first.
#   tools/bench-model.sh [threads]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
threads="${1:-2}"
for model in bench-30m qwen2.5-0.5b; do
  for dtype in fp32 bf16; do
    steps=3; [[ $model == qwen2.5-0.5b ]] && steps=1
    "$medgpt" model bench --threads "$threads" --config-json "$root/inputs/models/$model.json" --dtype "$dtype" \
      --seq-len 512 --batch 1 --steps "$steps"
  done
done
