#!/usr/bin/env bash
# Attention memory against sequence length: `medgpt model bench` (one forward + backward of the
# demo model, inputs/models/demo-12m, fp32, batch 1) with eager attention (the [T, T] scores and
# probabilities of every layer kept for the backward pass) and chunked attention (online softmax:
# linear in T), each T in its own process so that its peak resident memory is its own. Longer
# sequences with chunked attention and activation checkpointing. Prints s/step, tokens/s and peak
# memory per run.
#   tools/bench-attention.sh [max T for eager] [max T for chunked]   (defaults 4096 and 32768)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
eager_max="${1:-4096}" chunked_max="${2:-32768}"
model="$root/inputs/models/demo-12m/config.json"
threads=$(nproc)

printf '%-8s %-26s %10s %10s %12s\n' T attention s/step tokens/s "peak MiB"
run() {  # T ATTN [--checkpointing]
  local line
  line=$("$medgpt" model bench --config-json "$model" --seq-len "$1" --attn "$2" --steps 1 --threads "$threads" "${@:3}" 2>/dev/null) || {
    printf '%-8s %-26s failed (out of memory?)\n' "$1" "$2${3:+ + checkpointing}"; return; }
  printf '%-8s %-26s %10s %10s %12s\n' "$1" "$2${3:+ + checkpointing}" \
    "$(grep -o '[0-9.]* s/step' <<< "$line" | cut -d' ' -f1)" "$(grep -o '[0-9]* tokens/s' <<< "$line" | cut -d' ' -f1)" \
    "$(grep -o 'peak memory [0-9]*' <<< "$line" | cut -d' ' -f3)"
}
for ((T = 512; T <= chunked_max; T *= 2)); do
  ((T <= eager_max)) && run "$T" eager
  ((T <= 8192)) && run "$T" chunked
  ((T >= 4096)) && run "$T" chunked --checkpointing
done
