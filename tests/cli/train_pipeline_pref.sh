#!/usr/bin/env bash
# The preference stages over pipeline stages, against one rank, on the bundled pairs (tiny Qwen3
# pretrained for a few steps, 2 layers: one per stage), 4 steps of 4 micro-batches of 2 pairs:
# the reward model (its score head on the last stage), ORPO, SimPO and DPO with precomputed
# reference log-probs (computed through the stages) equal one rank within 1e-5 in losses, gradient
# norms, eval losses, their reward metrics and the final weights; a LoRA DPO adapter too. KTO and
# DPO with a live reference are refused with one line each.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
preference_setup "$work"

run() {  # NAME RANKS STAGE ARGS...
  local name=$1 np=$2
  mpi "$np" "$MEDGPT" train --stage "$3" --model.path "$work/pt/final" --data.train "$work/pref.h5" --data.max_length 160 \
    --train.micro_batch_size 2 --train.global_batch_size 8 --train.max_steps 4 --train.eval_steps 2 --train.learning_rate 1e-3 \
    --train.peak_flops 1e11 --threads 1 --output-dir "$work/$name" "${@:4}" 2> "$work/$name.log"
}
same() {  # NAME STAGE KEYS [FILE] ARGS...: 1 rank and pp=2
  local name=$1 stage=$2 keys=$3 file=$4 m w
  run "$name-1" 1 "$stage" "${@:5}"
  run "$name-pp2" 2 "$stage" --parallel.pp 2 "${@:5}"
  m=$(close "$work/$name-1" "$work/$name-pp2" "$keys"); w=$(weights "$work/$name-1" "$work/$name-pp2" "$file")
  check "$name: pp=2 == 1 rank within 1e-5 (metrics $m, weights $w)" \
    'below "$m" 1e-5 && below "$w" 1e-5 && grep -q "pp 0/2" "$work/$name-pp2.log" && [[ $(jq -s length "$work/$name-pp2/metrics.jsonl") -eq 4 ]]'
}
same rm rm '["accuracy", "margin", "rewards/chosen", "rewards/rejected"]' ""
same orpo orpo '["nll_loss", "log_odds_ratio", "rewards/margins"]' ""
same simpo simpo '["nll_loss", "rewards/margins", "rewards/accuracies"]' ""
same dpo dpo '["rewards/chosen", "rewards/margins", "rewards/accuracies"]' "" --dpo.precompute_ref_log_probs
check "dpo under pp=2: the reference log-probs computed through the stages and cached" \
  'grep -q "dpo: reference log-probs of [0-9]* rows computed" "$work/dpo-pp2.log" && compgen -G "$work/dpo-pp2/data/*ref*" > /dev/null'
same dpo-lora dpo '["rewards/margins"]' adapter_model.safetensors --dpo.precompute_ref_log_probs --lora.enabled --lora.r 4 --lora.dropout 0

bad() {  # NAME PATTERN STAGE ARGS...
  local pattern=$2
  run bad 2 "$3" --parallel.pp 2 "${@:4}"
  local rc=$?
  check "$1: exit $rc, one line: $(head -c 200 "$work/bad.log")" \
    '[[ $rc -ne 0 && $(grep -c . "$work/bad.log") -eq 1 ]] && grep -q -- "$pattern" "$work/bad.log"'
}
bad "DPO with a live reference" "add --dpo.precompute_ref_log_probs" dpo
bad "KTO" "stage kto does not run over pipeline stages" kto

finish
