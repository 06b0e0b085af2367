#!/usr/bin/env bash
# The main job on the bundled data, from a fresh Debian 12 machine: set up, build, then MedicalGPT's
# pipeline on a 12.5M-parameter Qwen3-shaped model and the bundled 8,000-token medical tokenizer:
#   1. prepare the pretraining and SFT corpora (HDF5, 2 MPI ranks),
#   2. pretrain (PT) from scratch, 2 data-parallel ranks, bf16,            inputs/pt.ini
#   3. fine-tune (SFT) the PT model on medical dialogues, Qwen template,   inputs/sft.ini
#   4. align the SFT model with DPO on the bundled preference pairs,      inputs/dpo.ini
#   5. answer the bundled questions with the PT, SFT and DPO models,
#   6. plot the curves; print the chosen/rejected reward margin before and after DPO.
# Outputs go to runs/demo/ (or $1). About 8-10 minutes of training on 2 cores after the build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:-$root/runs/demo}" && cd "${1:-$root/runs/demo}" && pwd)"
"$root/tools/setup.sh"
"$root/tools/build.sh" >/dev/null
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
cd "$root"  # the configs name the bundled inputs relative to the repository
mpi=(mpiexec -q -np 2 --oversubscribe)
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
export OMPI_MCA_mpi_yield_when_idle=1
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }

echo "== 1. prepare the corpora (2 ranks)"
"${mpi[@]}" "$medgpt" prepare --kind pt --input inputs/data/pt --tokenizer inputs/tokenizer --block-size 256 \
  --validation-split 0.02 --output "$out/pt.h5"
"${mpi[@]}" "$medgpt" prepare --kind sft --input inputs/data/sft --tokenizer inputs/tokenizer --template qwen \
  --max-length 512 --validation-split 0.05 --output "$out/sft.h5"

echo "== 2. pretrain (2 data-parallel ranks) [$(elapsed)]"
"${mpi[@]}" "$medgpt" train --stage pt --config inputs/pt.ini --data.train "$out/pt.h5" --output-dir "$out/pt" --threads 1

echo "== 3. supervised fine-tuning of the PT model [$(elapsed)]"
"${mpi[@]}" "$medgpt" train --stage sft --config inputs/sft.ini --model.path "$out/pt/final" --data.train "$out/sft.h5" \
  --output-dir "$out/sft" --threads 1

echo "== 4. DPO of the SFT model on preference pairs (2 data-parallel ranks) [$(elapsed)]"
"${mpi[@]}" "$medgpt" train --stage dpo --config inputs/dpo.ini --model.path "$out/sft/final" --train.eval_on_start \
  --output-dir "$out/dpo" --threads 1

echo "== 5. answers to inputs/data/questions.jsonl [$(elapsed)]"
for stage in pt sft dpo; do
  "$medgpt" generate --model "$out/$stage/final" --input inputs/data/questions.jsonl --output "$out/answers-$stage.jsonl" \
    --max-new-tokens 96 --do-sample --temperature 0.7 --top-p 0.9 --repetition-penalty 1.2 --seed 42
done
for stage in pt sft dpo; do
  echo "-- $stage model:"
  jq -r '"Q: \(.prompt)\nA: \(.output | gsub("\n"; " ") | .[0:240])"' "$out/answers-$stage.jsonl"
done

echo "== 6. curves"
for stage in pt sft dpo; do "$root/tools/plot-metrics" "$out/$stage" >/dev/null; done
pt_eval=$(jq -s 'map(select(.eval_loss)) | last | .eval_loss' "$out/pt/metrics.jsonl")
sft_start=$(jq -s 'map(select(.step == 0)) | first | .eval_loss' "$out/sft/metrics.jsonl")
sft_eval=$(jq -s 'map(select(.eval_loss)) | last | .eval_loss' "$out/sft/metrics.jsonl")
printf 'PT  eval loss (encyclopedia valid split): %.3f\n' "$pt_eval"
printf 'SFT eval loss (dialogue valid split): PT model %.3f -> SFT model %.3f\n' "$sft_start" "$sft_eval"
jq -s -r '(map(select(.step == 0)) | first) as $a | (map(select(.["eval_rewards/margins"] and .step > 0)) | last) as $b |
  (map(select(.loss)) | .[0:10] | map(.["rewards/margins"]) | add / length) as $m0 |
  (map(select(.loss)) | .[-10:] | map(.["rewards/margins"]) | add / length) as $m1 |
  "DPO reward margin chosen - rejected, held-out pairs: \($a["eval_rewards/margins"] | . * 1000 | round / 1000) (accuracy \($a["eval_rewards/accuracies"] | . * 1000 | round / 1000)) at the start -> \($b["eval_rewards/margins"] | . * 1000 | round / 1000) (accuracy \($b["eval_rewards/accuracies"] | . * 1000 | round / 1000)) after \($b.step) steps\n" +
  "DPO reward margin, training batches: first 10 steps \($m0 | . * 1000 | round / 1000) -> last 10 steps \($m1 | . * 1000 | round / 1000)"' "$out/dpo/metrics.jsonl"
echo "done in $(elapsed). metrics: $out/{pt,sft,dpo}/metrics.jsonl, plots: $out/{pt,sft,dpo}/*.png, TensorBoard: $out/{pt,sft,dpo}/tb,"
echo "models: $out/{pt,sft,dpo}/final (Hugging Face folders), answers: $out/answers-{pt,sft,dpo}.jsonl"
