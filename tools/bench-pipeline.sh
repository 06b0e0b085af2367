#!/usr/bin/env bash
# Pipeline parallelism against its ideal and against the other ways to use 2 ranks: the demo model
# (inputs/models/demo-12m, 6 layers, bf16, T=256) trained with pp=2 over m = 2, 4, 8, 16
# micro-batches per step (the measured bubble of stage 0 against 1F1B's (p-1)/(m+p-1)), then pp=2,
# dp=2 and tp=2 on the same global batch (2 ranks x 1 thread each). Prints tokens/s, step time and
# the per-phase breakdown of every run.
#   tools/bench-pipeline.sh [steps]      (default 5; the first step is not counted)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
steps="${1:-5}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mpi=(mpiexec -q --oversubscribe --bind-to none)
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
export OMPI_MCA_mpi_yield_when_idle=1
cd "$root"
model=inputs/models/demo-12m/config.json
"$medgpt" prepare --kind pt --input inputs/data/pt --tokenizer inputs/tokenizer --block-size 256 --output "$work/pt.h5" 2>/dev/null

# run NAME MICRO GLOBAL [options]: 2 ranks x 1 thread
run() {
  local name=$1 micro=$2 global=$3
  shift 3
  local out="$work/${name// /-}"
  "${mpi[@]}" -np 2 "$medgpt" train --stage pt --model.config "$model" --model.tokenizer inputs/tokenizer --data.train "$work/pt.h5" \
    --train.precision bf16 --train.micro_batch_size "$micro" --train.global_batch_size "$global" --train.max_steps "$steps" \
    --train.learning_rate 1e-4 --threads 1 --output-dir "$out" "$@" 2> "$out.log" || {
    echo "$name: failed, see the log:"; tail -3 "$out.log"; return 1; }
  local tps step
  tps=$(jq -s '[.[1:][] | .tokens_per_s] | add / length' "$out/metrics.jsonl")
  step=$(jq -s --argjson tokens $((global * 256)) '[.[1:][] | $tokens / .tokens_per_s] | add / length' "$out/metrics.jsonl")
  printf '%-28s %8.0f tokens/s  %6.3f s/step\n' "$name" "$tps" "$step"
  grep -o 'time per step: .*' "$out.log" | sed 's/^/    /'
  grep -o 'pipeline: .*' "$out.log" | sed 's/^/    /' || true
}

echo "== pp=2, micro-batch 2 rows, m micro-batches per step: measured bubble of stage 0 against (p-1)/(m+p-1)"
for m in 2 4 8 16; do
  run "pp2 m=$m" 2 $((2 * m)) --parallel.pp 2
done
echo "== the last stage also runs the LM head (8000 x 384, about 1.7 layers of work): 4 layers on the first stage, 2 on the last"
run "pp2 m=8 split 4,2" 2 16 --parallel.pp 2 --parallel.pp_layers 4,2
echo "== 2 ranks three ways, global batch 16 rows of 256 tokens"
run "pp2 (m=8)" 2 16 --parallel.pp 2
run "dp2" 2 16
run "tp2" 2 16 --parallel.tp 2
