#!/usr/bin/env bash
# `medgpt plan`'s predictions against measured runs on this machine: the demo model
# (inputs/models/demo-12m, bf16, T=256, global batch 16 rows, micro-batch 2) planned for 2 ranks
# (the probes run on the same 2 ranks x 1 thread as the runs), then each layout trained for a few
# steps: predicted and measured step time, and the error; likewise 1 rank x 2 threads.
#   tools/bench-plan.sh [steps]      (default 5; the first step is not counted)
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
common=(--seq-len 256 --micro-batch 2 --global-batch 16 --precision bf16)

# measure NP THREADS LAYOUT-OPTIONS...: mean step time of steps 2.. (seconds)
measure() {
  local np=$1 threads=$2 out="$work/run-$RANDOM"
  shift 2
  "${mpi[@]}" -np "$np" "$medgpt" train --stage pt --model.config "$model" --model.tokenizer inputs/tokenizer --data.train "$work/pt.h5" \
    --train.precision bf16 --train.micro_batch_size 2 --train.global_batch_size 16 --train.max_steps "$steps" \
    --train.learning_rate 1e-4 --threads "$threads" --output-dir "$out" "$@" 2> "$out.log" || { echo "failed: $*" >&2; tail -2 "$out.log" >&2; return 1; }
  jq -s '[.[1:][] | 16 * 256 / .tokens_per_s] | add / length' "$out/metrics.jsonl"
}

report() {  # PLAN-JSON NP THREADS
  local plan=$1 np=$2 threads=$3
  printf '  %-26s %10s %10s %8s\n' layout predicted measured error
  jq -c '.[] | select(.zero == 0)' "$plan" | while read -r row; do
    local tp pp dp ck predicted opts measured
    tp=$(jq .tp <<< "$row"); pp=$(jq .pp <<< "$row"); dp=$(jq .dp <<< "$row"); ck=$(jq .checkpointing <<< "$row")
    predicted=$(jq .step_s <<< "$row")
    opts=(--parallel.tp "$tp" --parallel.pp "$pp")
    [[ $ck == true ]] && opts+=(--train.gradient_checkpointing)
    measured=$(measure "$np" "$threads" "${opts[@]}" < /dev/null) || continue  # mpiexec would eat the rows
    printf '  %-26s %9.3fs %9.3fs %+7.1f%%\n' "tp $tp pp $pp dp $dp ckpt $ck" "$predicted" "$measured" "$(jq -n "($predicted - $measured) / $measured * 100")"
  done
}

echo "== 2 ranks x 1 thread"
"${mpi[@]}" -np 2 "$medgpt" plan --model "$model" --world 2 "${common[@]}" --threads 1 2>/dev/null | sed -n 1,2p
"${mpi[@]}" -np 2 "$medgpt" plan --model "$model" --world 2 "${common[@]}" --threads 1 --json 2>/dev/null > "$work/plan2.json"
report "$work/plan2.json" 2 1
echo "== 1 rank x 2 threads"
"$medgpt" plan --model "$model" --world 1 "${common[@]}" --threads 2 2>/dev/null | sed -n 1,2p
"$medgpt" plan --model "$model" --world 1 "${common[@]}" --threads 2 --json 2>/dev/null > "$work/plan1.json"
report "$work/plan1.json" 1 2
