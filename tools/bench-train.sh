#!/usr/bin/env bash
# Training throughput of `medgpt train` itself (data, forward, backward, all-reduce, optimizer):
# tokens/s and MFU in fp32 and bf16 for the demo model (12.5M, T=256) and a Qwen2.5-0.5B-shaped model
# (T=512), and data-parallel scaling of the demo model: 1 rank x 2 threads against 2 ranks x 1
# thread with the same global batch. Prints one line per run and the per-phase time breakdown.
#   tools/bench-train.sh [steps]      (default 6; the first step is not counted)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
steps="${1:-6}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mpi=(mpiexec -q --oversubscribe --bind-to none)  # Open MPI binds -np <= 2 to one core each by default
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
export OMPI_MCA_mpi_yield_when_idle=1
cd "$root"

"$medgpt" prepare --kind pt --input inputs/data/pt --tokenizer inputs/tokenizer --block-size 512 --output "$work/pt512.h5" 2>/dev/null
"$medgpt" prepare --kind pt --input inputs/data/pt --tokenizer inputs/tokenizer --block-size 256 --output "$work/pt256.h5" 2>/dev/null

# run NAME NP THREADS MODEL_CONFIG CORPUS PRECISION MICRO GLOBAL [more options]
run() {
  local name=$1 np=$2 threads=$3 config=$4 corpus=$5 precision=$6 micro=$7 global=$8
  shift 8
  local out="$work/$name"
  "${mpi[@]}" -np "$np" "$medgpt" train --stage pt --model.config "$config" --model.tokenizer inputs/tokenizer \
    --data.train "$corpus" --train.precision "$precision" --train.micro_batch_size "$micro" --train.global_batch_size "$global" \
    --train.max_steps "$steps" --train.learning_rate 1e-4 --threads "$threads" --output-dir "$out" "$@" 2> "$out.log" || {
    echo "$name: failed, see the log:"; tail -3 "$out.log"; return 1; }
  # steady state: steps 2.. (the first warms up)
  local tps mfu
  tps=$(jq -s '[.[1:][] | .tokens_per_s] | add / length' "$out/metrics.jsonl")
  mfu=$(jq -s '[.[1:][] | .mfu] | add / length' "$out/metrics.jsonl")
  printf '%-34s %3d rank(s) x %d thread(s)  %8.0f tokens/s  MFU %5.1f%%\n' "$name" "$np" "$threads" "$tps" "$(jq -n "$mfu * 100")"
  grep -o 'time per step: .*' "$out.log" | sed 's/^/    /'
  grep -o 'ceiling [0-9.]* GFLOP/s' "$out.log" | head -1 | sed 's/^/    /'
  echo "$tps" > "$out.tps"
}

echo "== demo model (inputs/models/demo-12m, 12.5M), T=256, global batch 16"
for p in fp32 bf16; do
  run "demo-12m $p" 1 2 inputs/models/demo-12m/config.json "$work/pt256.h5" "$p" 8 16
done
echo "== data-parallel scaling, demo model bf16, same global batch"
run "demo-12m bf16 dp2" 2 1 inputs/models/demo-12m/config.json "$work/pt256.h5" bf16 8 16
run "demo-12m bf16 dp2 zero1" 2 1 inputs/models/demo-12m/config.json "$work/pt256.h5" bf16 8 16 --train.zero 1
printf '    dp efficiency (2 ranks x 1 thread / 1 rank x 2 threads): %.1f%%\n' \
  "$(jq -n "$(cat "$work/demo-12m bf16 dp2.tps") / $(cat "$work/demo-12m bf16.tps") * 100")"

echo "== Qwen2.5-0.5B shape (inputs/models/qwen2.5-0.5b.json), T=512, global batch 2, 3 steps"
steps=3
for p in fp32 bf16; do
  run "qwen2.5-0.5b $p" 1 2 inputs/models/qwen2.5-0.5b.json "$work/pt512.h5" "$p" 1 2
done
