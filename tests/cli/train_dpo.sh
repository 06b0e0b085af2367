#!/usr/bin/env bash
# medgpt train --stage dpo on the bundled preference pairs (tiny Qwen3 pretrained for a few steps):
# - step 1, policy == reference: loss = ln 2 and every reward 0, for a full and a LoRA policy;
# - a short run separates chosen from rejected (held-out rewards/accuracies >= 0.8, >= 0.7 over
#   the last training steps, margins > 0) and the TRL metric names are logged;
# - dp=2 equals dp=1 within 1e-5; 3 + resume 3 equals 6 straight, bit for bit.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
src="$MEDGPT_SOURCE_DIR"

preference_setup "$work"
dpo=(train --stage dpo --model.path "$work/pt/final" --data.train "$work/pref.h5" --data.max_length 160
     --train.micro_batch_size 2 --train.global_batch_size 4 --train.peak_flops 1e11 --threads 1)

"$MEDGPT" "${dpo[@]}" --train.max_steps 6 --train.learning_rate 1e-3 --train.eval_steps 6 --output-dir "$work/d6" 2> "$work/d6.log"
first='select(.step == 1) | (.loss - 0.6931471805599453 | fabs) < 1e-6 and .["rewards/chosen"] == 0 and .["rewards/margins"] == 0'
check "step 1 (policy == reference): loss ln 2, rewards 0" '[[ $(jq "$first" "$work/d6/metrics.jsonl") == true ]]'
names='select(.step == 6) | [has("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "eval_loss", "eval_rewards/accuracies")] | all'
check "TRL's metric names logged (and eval_ ones)" '[[ $(jq "$names" "$work/d6/metrics.jsonl") == true ]]'
check "final/ is a Hugging Face folder" '[[ -f "$work/d6/final/model.safetensors" ]]'

"$MEDGPT" "${dpo[@]}" --train.max_steps 6 --train.learning_rate 1e-3 --train.eval_steps 6 --train.preempt_at_step 3 --output-dir "$work/r" 2>/dev/null
"$MEDGPT" "${dpo[@]}" --train.max_steps 6 --train.learning_rate 1e-3 --train.eval_steps 6 --output-dir "$work/r" 2>/dev/null
curve() { jq -c '[.step, .loss, .grad_norm, .["rewards/margins"], .eval_loss]' "$1/metrics.jsonl"; }
check "3 + resume 3 == 6 straight, bit for bit" 'diff <(curve "$work/d6") <(curve "$work/r")'

mpi 2 "$MEDGPT" "${dpo[@]}" --train.max_steps 6 --train.learning_rate 1e-3 --train.eval_steps 6 --output-dir "$work/dp2" 2>/dev/null
d=$(jq -n --slurpfile a "$work/d6/metrics.jsonl" --slurpfile b "$work/dp2/metrics.jsonl" '[range($a|length) as $i | ($a[$i].loss - $b[$i].loss), ($a[$i]["rewards/margins"] - $b[$i]["rewards/margins"]) | fabs] | max')
check "dp=2 == dp=1 within 1e-5 (max diff $d)" '[[ -n "$d" && $(jq -n "$d < 1e-5") == true ]]'

long=(train --stage dpo --model.path "$work/pt/final" --data.train "$work/pref.h5" --data.max_length 160 --train.micro_batch_size 4
      --train.global_batch_size 8 --train.max_steps 40 --train.learning_rate 3e-3 --train.lr_scheduler_type constant --train.eval_steps 40
      --train.peak_flops 1e11 --threads 2)
"$MEDGPT" "${long[@]}" --output-dir "$work/long" 2>/dev/null
acc=$(jq -s '[.[-16:][] | .["rewards/accuracies"]] | add / length' "$work/long/metrics.jsonl")
margin=$(jq -s '[.[-16:][] | .["rewards/margins"]] | add / length' "$work/long/metrics.jsonl")
held=$(jq -s 'last | .["eval_rewards/accuracies"]' "$work/long/metrics.jsonl")
check "40 steps separate chosen from rejected: held-out accuracy $held >= 0.8; last 16 steps accuracy $acc >= 0.7, margin $margin > 0" \
  '[[ $(jq -n "$held >= 0.8 and $acc >= 0.7 and $margin > 0") == true ]]'

"$MEDGPT" "${dpo[@]}" --lora.enabled --lora.r 4 --train.max_steps 2 --train.learning_rate 1e-3 --output-dir "$work/lora" 2>/dev/null
check "LoRA DPO (reference = the base under disabled adapters): step 1 loss ln 2, adapter written" \
  '[[ $(jq "$first" "$work/lora/metrics.jsonl") == true && -f "$work/lora/final/adapter_model.safetensors" ]]'

finish
