#!/usr/bin/env bash
# Memory per rank of `medgpt train` with ZeRO 0-3 at dp 1, 2 and 4, measured against
# `medgpt memory`'s prediction: full fine-tuning (PT) of a Qwen2.5-0.5B-shaped model (and, with
# room, a 1.5B shape) in bf16, T=256, micro-batch 1, chunked attention, one step. Each run prints
# the most any rank reached: the peak of live LibTorch tensors in training and while setting up
# (building the model whole, then sharding it), counted by an allocator in front of LibTorch's,
# and the peak resident memory (VmHWM: what a job's memory limit sees), beside the predicted total
# and the predicted model + optimizer state against one rank without ZeRO. A layout whose
# predicted total times its ranks exceeds this machine's memory is not run.
#   tools/bench-memory.sh [shapes] [zero stages]   (defaults "0.5b" and "0 1 2 3")
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
shapes="${1:-0.5b}" stages="${2:-0 1 2 3}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mpi=(mpiexec -q --oversubscribe --bind-to none)
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
export OMPI_MCA_mpi_yield_when_idle=1
cd "$root"
T=256
jq '.hidden_size = 1536 | .intermediate_size = 8960 | .num_hidden_layers = 28 | .num_attention_heads = 12' \
  inputs/models/qwen2.5-0.5b.json > "$work/1.5b.json"
cp inputs/models/qwen2.5-0.5b.json "$work/0.5b.json"
"$medgpt" prepare --kind pt --input inputs/data/pt --tokenizer inputs/tokenizer --block-size $T --output "$work/pt.h5" 2>/dev/null
machine=$(awk '/MemTotal/ {print $2 * 1024}' /proc/meminfo)
gib() { jq -n "$1 / 1073741824 * 100 | round / 100"; }

printf '%-5s %3s %4s | %9s %9s | %9s %9s %9s | %s\n' shape dp zero "predicted" "state" "training" "setup" "resident" "state vs 1 rank zero 0 (predicted)"
for shape in $shapes; do
  for dp in 1 2 4; do
    pred=$("$medgpt" memory --model "$work/$shape.json" --dp $dp --seq-len $T --attn chunked --json)
    for zero in $stages; do
      ((dp == 1 && zero > 0)) && continue
      row=$(jq -c ".[] | select(.zero == $zero)" <<< "$pred")
      total=$(jq .total_bytes <<< "$row")
      state=$(jq '.weights_bytes + .grads_bytes + .optimizer_bytes' <<< "$row")
      share=$(jq .state_vs_one_rank <<< "$row")
      if [[ $(jq -n "$total * $dp * 1.15 > $machine") == true ]]; then
        printf '%-5s %3d %4d | %9s %9s | %9s %9s %9s | %5.1f%%  (not run: %s GiB x %d ranks > this machine)\n' $shape $dp $zero "$(gib "$total")" \
          "$(gib "$state")" - - - "$(jq -n "$share * 100")" "$(gib "$total")" $dp
        continue
      fi
      out="$work/$shape-dp$dp-z$zero"
      "${mpi[@]}" -np $dp "$medgpt" train --stage pt --model.config "$work/$shape.json" --model.tokenizer inputs/tokenizer \
        --data.train "$work/pt.h5" --train.precision bf16 --model.attn_implementation chunked --train.micro_batch_size 1 \
        --train.global_batch_size $dp --train.max_steps 1 --train.zero $zero --train.save_final false --threads 1 \
        --output-dir "$out" 2> "$out.log" || { echo "$shape dp $dp zero $zero: failed"; tail -2 "$out.log"; continue; }
      line=$(grep -o 'peak resident [0-9]* MiB, LibTorch tensors at most [0-9]* MiB in training ([0-9]* MiB' "$out.log")
      read -r rss training setup <<< "$(grep -o '[0-9]* MiB' <<< "$line" | awk '{printf "%s ", $1}')"
      mib() { jq -n "$1 / 1024 * 100 | round / 100"; }
      printf '%-5s %3d %4d | %9s %9s | %9s %9s %9s | %5.1f%%\n' $shape $dp $zero "$(gib "$total")" "$(gib "$state")" \
        "$(mib "$training")" "$(mib "$setup")" "$(mib "$rss")" "$(jq -n "$share * 100")"
    done
  done
done
