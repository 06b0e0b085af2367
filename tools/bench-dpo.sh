#!/usr/bin/env bash
# DPO throughput of `medgpt train --stage dpo` on a Qwen2.5-0.5B-shaped model (random init, bf16,
# T <= 256): pairs/s and MFU of the training steps with the reference model run on the fly against
# --dpo.precompute_ref_log_probs, and the time of the precomputing pass. Uses the first 32 bundled
# preference pairs. The first step is not counted.
#   tools/bench-dpo.sh [steps] [threads]      (default 4 steps, 2 threads)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
steps="${1:-4}" threads="${2:-2}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$root"

head -32 inputs/data/reward/medical_pref.jsonl > "$work/pairs.jsonl"
"$medgpt" prepare --kind pref --input "$work/pairs.jsonl" --tokenizer inputs/tokenizer --max-length 256 --output "$work/pairs.h5" 2>/dev/null
global=4
for pre in false true; do
  out="$work/dpo-$pre"
  start=$(date +%s.%N)
  "$medgpt" train --stage dpo --model.config inputs/models/qwen2.5-0.5b.json --model.tokenizer inputs/tokenizer \
    --data.train "$work/pairs.h5" --data.max_length 256 --train.precision bf16 --train.micro_batch_size 1 \
    --train.global_batch_size "$global" --train.max_steps "$steps" --train.learning_rate 1e-6 --threads "$threads" \
    --dpo.precompute_ref_log_probs "$pre" --output-dir "$out" 2> "$out.log" || { echo "dpo ($pre): failed:"; tail -3 "$out.log"; exit 1; }
  total=$(jq -n "$(date +%s.%N) - $start")
  # steps 2..: pairs per second from the step times, MFU as logged
  pps=$(jq -s --argjson g "$global" '.[1:] as $r | ($r | length) * $g / ($r[-1].time_s - .[0].time_s)' "$out/metrics.jsonl")
  mfu=$(jq -s '[.[1:][] | .mfu] | add / length' "$out/metrics.jsonl")
  tps=$(jq -s '[.[1:][] | .tokens_per_s] | add / length' "$out/metrics.jsonl")
  label=$([[ $pre == true ]] && echo "precomputed reference" || echo "reference on the fly")
  printf 'dpo qwen2.5-0.5b bf16, %-22s %6.3f pairs/s  %6.1f tokens/s  MFU %5.1f%%  (run %.0f s)\n' "$label" "$pps" "$tps" "$(jq -n "$mfu * 100")" "$total"
  grep -o 'time per step: .*' "$out.log" | sed 's/^/    /'
  grep -o 'reference log-probs of .*computed' "$out.log" | sed 's/^/    /' || true
done
