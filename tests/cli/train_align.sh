#!/usr/bin/env bash
# medgpt train --stage rm|orpo|simpo|kto, --dpo.precompute_ref_log_probs and medgpt score, on the
# bundled preference and KTO data (tiny Qwen3 pretrained for a few steps):
# - rm: a short run (60 steps) reaches held-out accuracy >= 0.8; final/ is a Qwen3ForSequenceClassification
#   folder with score.weight and no lm_head; `medgpt score` prints a line per pair, margin = c - r;
#   with LoRA, a PEFT SEQ_CLS adapter holding the head, equal to the full model at step 1;
# - orpo: the loss is nll_loss - beta * log_odds_ratio (TRL's logged terms); simpo separates the
#   held-out pairs; kto: step 1 (policy == reference, kl 0) loss 0.5 and rewards 0;
# - precomputed reference log-probs give the same DPO curve as the on-the-fly reference, and tp=2 the
#   same as tp=1;
# - bad input: a pair without response_rejected (file:line), chosen == rejected warned and counted,
#   prompts past --max-prompt-length truncated and counted, KTO with one row per micro-batch refused.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
src="$MEDGPT_SOURCE_DIR"

preference_setup "$work"
common=(--model.path "$work/pt/final" --data.max_length 160 --train.peak_flops 1e11 --threads 2)

# ---- reward model ----
"$MEDGPT" train --stage rm "${common[@]}" --data.train "$work/pref.h5" --train.micro_batch_size 4 --train.global_batch_size 8 \
  --train.max_steps 60 --train.learning_rate 2e-3 --train.lr_scheduler_type constant --train.eval_steps 10 --output-dir "$work/rm" 2>/dev/null
# This 64-wide model learns the style cues (unsafe, evasive answers) but few of the swapped facts: its
# held-out accuracy moves between 0.7 and 0.85 from one evaluation to the next.
best=$(jq -s '[.[] | .eval_accuracy // empty] | max' "$work/rm/metrics.jsonl")
last=$(jq -s 'last | .eval_accuracy' "$work/rm/metrics.jsonl")
check "rm: 60 steps reach held-out accuracy >= 0.8 (best $best, last $last >= 0.7)" '[[ $(jq -n "$best >= 0.8 and $last >= 0.7") == true ]]'
check "rm: accuracy, margin, mean/min/max_reward logged" \
  '[[ $(jq -s "last | [has(\"accuracy\", \"margin\", \"mean_reward\", \"min_reward\", \"max_reward\", \"eval_margin\")] | all" "$work/rm/metrics.jsonl") == true ]]'
check "rm: final/ is a Qwen3ForSequenceClassification folder with one label" \
  '[[ $(jq -r ".architectures[0] + \" \" + (.id2label | length | tostring)" "$work/rm/final/config.json") == "Qwen3ForSequenceClassification 1" ]]'
header=$(head -c 8 "$work/rm/final/model.safetensors" | od -An -tu8 | tr -d ' ')
names=$(tail -c +9 "$work/rm/final/model.safetensors" | head -c "$header" | jq -c '[keys[] | select(test("score|lm_head"))]')
check "rm: final/ holds score.weight and no lm_head ($names)" '[[ $names == "[\"score.weight\"]" ]]'
head -20 "$src/inputs/data/reward/medical_pref.jsonl" > "$work/twenty.jsonl"
"$MEDGPT" score --model "$work/rm/final" --input "$work/twenty.jsonl" --output "$work/scores.jsonl" 2> "$work/score.log"
check "score: 20 lines with where/chosen/rejected/margin, margin = chosen - rejected" \
  '[[ $(jq -s "length == 20 and all(.[]; (.margin - (.chosen - .rejected) | fabs) < 1e-12) and .[0].where == \"$work/twenty.jsonl:1\"" "$work/scores.jsonl") == true ]]'
check "score: summary line with the accuracy" 'grep -q "scored 20 pairs: accuracy" "$work/score.log"'
"$MEDGPT" score --model "$work/pt/final" --input "$work/twenty.jsonl" 2> "$work/notrm.log" >/dev/null
check "score: a causal LM is refused by name" 'grep -q "is not a reward model" "$work/notrm.log"'

# LoRA reward model: PEFT's SEQ_CLS adapter with the score head; at step 1 (B = 0, the same new head)
# it is the full reward model.
"$MEDGPT" train --stage rm "${common[@]}" --data.train "$work/pref.h5" --lora.enabled --lora.r 4 --train.micro_batch_size 4 \
  --train.global_batch_size 8 --train.max_steps 2 --train.learning_rate 2e-3 --train.lr_scheduler_type constant --output-dir "$work/rmlora" 2>/dev/null
d=$(jq -n --slurpfile a "$work/rm/metrics.jsonl" --slurpfile b "$work/rmlora/metrics.jsonl" '($a[0].loss - $b[0].loss) | fabs')
check "rm with LoRA: step 1 equals the full reward model's ($d)" '[[ -n "$d" && $(jq -n "$d < 1e-6") == true ]]'
check "rm with LoRA: adapter_config task_type SEQ_CLS, modules_to_save [score]" \
  '[[ $(jq -c "[.task_type, .modules_to_save]" "$work/rmlora/final/adapter_config.json") == "[\"SEQ_CLS\",[\"score\"]]" ]]'
"$MEDGPT" score --model "$work/pt/final" --adapter "$work/rmlora/final" --input "$work/twenty.jsonl" --output "$work/scores-lora.jsonl" 2>/dev/null
check "score --adapter: the base plus the reward adapter scores the 20 pairs" '[[ $(jq -s "length" "$work/scores-lora.jsonl") == 20 ]]'

# ---- ORPO ----
"$MEDGPT" train --stage orpo "${common[@]}" --data.train "$work/pref.h5" --train.micro_batch_size 2 --train.global_batch_size 4 \
  --train.max_steps 3 --train.learning_rate 1e-3 --orpo.beta 0.25 --output-dir "$work/orpo" 2>/dev/null
d=$(jq -s '[.[] | (.loss - (.nll_loss - 0.25 * .log_odds_ratio)) | fabs] | max' "$work/orpo/metrics.jsonl")
check "orpo: loss = nll_loss - beta * log_odds_ratio at every step (max diff $d)" '[[ $(jq -n "$d < 1e-5") == true ]]'

# ---- SimPO ----
"$MEDGPT" train --stage simpo "${common[@]}" --data.train "$work/pref.h5" --train.micro_batch_size 4 --train.global_batch_size 8 \
  --train.max_steps 20 --train.learning_rate 2e-3 --train.lr_scheduler_type constant --train.eval_steps 20 --output-dir "$work/simpo" 2>/dev/null
acc=$(jq -s 'last | .["eval_rewards/accuracies"]' "$work/simpo/metrics.jsonl")
check "simpo: 20 steps separate the held-out pairs (accuracy $acc >= 0.8)" '[[ $(jq -n "$acc >= 0.8") == true ]]'

# ---- KTO ----
"$MEDGPT" prepare --kind kto --input "$src/inputs/data/reward/medical_kto.jsonl" --tokenizer "$src/inputs/tokenizer" --max-length 160 \
  --validation-split 40 --output "$work/kto.h5" 2>/dev/null
"$MEDGPT" train --stage kto "${common[@]}" --data.train "$work/kto.h5" --train.micro_batch_size 4 --train.global_batch_size 8 \
  --train.max_steps 3 --train.learning_rate 1e-3 --train.eval_steps 3 --output-dir "$work/kto" 2>/dev/null
first='select(.step == 1) | .loss == 0.5 and .kl == 0 and .["rewards/chosen"] == 0 and .["rewards/rejected"] == 0'
check "kto: step 1 (policy == reference) loss 0.5, kl 0, rewards 0" '[[ $(jq "$first" "$work/kto/metrics.jsonl") == true ]]'
check "kto: kl and eval_kl logged, never negative" '[[ $(jq -s "last | .kl >= 0 and .eval_kl >= 0" "$work/kto/metrics.jsonl") == true ]]'
mpi 2 "$MEDGPT" train --stage kto "${common[@]}" --data.train "$work/kto.h5" --train.micro_batch_size 4 --train.global_batch_size 8 \
  --train.max_steps 2 --train.eval_steps 2 --output-dir "$work/kto2" 2>/dev/null
check "kto on 2 dp ranks (KL averaged over ranks) runs through evaluation" '[[ -f "$work/kto2/final/model.safetensors" ]]'
"$MEDGPT" train --stage kto "${common[@]}" --data.train "$work/kto.h5" --train.micro_batch_size 1 --output-dir "$work/kto1" 2> "$work/kto1.log"
check "kto: one row per micro-batch refused with the reason" '[[ $? -ne 0 ]] && grep -q "KTO needs at least 2 rows per micro-batch" "$work/kto1.log"'

# ---- DPO with precomputed reference log-probs ----
dpo=(train --stage dpo "${common[@]}" --data.train "$work/pref.h5" --train.micro_batch_size 2 --train.global_batch_size 4
     --train.max_steps 4 --train.learning_rate 1e-3 --train.eval_steps 4 --train.eval_on_start)
"$MEDGPT" "${dpo[@]}" --output-dir "$work/fly" 2>/dev/null
start='select(.step == 0) | .["eval_rewards/margins"] == 0 and .["eval_rewards/accuracies"] == 0 and (has("eval_ppl") | not)'
check "dpo: eval_on_start logs the reward metrics (policy == reference: margins 0), no perplexity" '[[ $(jq "$start" "$work/fly/metrics.jsonl") == true ]]'
"$MEDGPT" "${dpo[@]}" --dpo.precompute_ref_log_probs --output-dir "$work/pre" 2> "$work/pre.log"
# Batched differently (so padded to other lengths), the reference log-probs agree to float rounding.
d=$(jq -n --slurpfile a "$work/fly/metrics.jsonl" --slurpfile b "$work/pre/metrics.jsonl" '[range($a|length) as $i | ($a[$i].loss // 0) - ($b[$i].loss // 0), ($a[$i]["rewards/margins"] // 0) - ($b[$i]["rewards/margins"] // 0), ($a[$i].eval_loss // 0) - ($b[$i].eval_loss // 0) | fabs] | max')
check "dpo: precomputed reference log-probs give the on-the-fly curve within 1e-5 (max diff $d)" '[[ -n "$d" && $(jq -n "$d < 1e-5") == true ]]'
mpi 2 "$MEDGPT" "${dpo[@]}" --parallel.tp 2 --output-dir "$work/tp2" 2>/dev/null
d=$(jq -n --slurpfile a "$work/fly/metrics.jsonl" --slurpfile b "$work/tp2/metrics.jsonl" '[range($a|length) as $i | ($a[$i].loss // 0) - ($b[$i].loss // 0), ($a[$i]["rewards/margins"] // 0) - ($b[$i]["rewards/margins"] // 0), ($a[$i].eval_loss // 0) - ($b[$i].eval_loss // 0) | fabs] | max')
check "dpo: tp=2 (vocab-parallel sequence log-probs) == tp=1 within 1e-5 (max diff $d)" '[[ -n "$d" && $(jq -n "$d < 1e-5") == true ]]'
check "dpo: the reference log-probs are cached beside the prepared data" 'ls "$work"/pre/data/ref-logps-*.h5 >/dev/null && grep -q "computed, cached" "$work/pre.log"'
# The cache read back on 2 dp ranks: rank 0 reads it and broadcasts the values; the curve is the same.
mkdir -p "$work/pre2" && cp -r "$work/pre/data" "$work/pre2/data"
mpi 2 "$MEDGPT" "${dpo[@]}" --dpo.precompute_ref_log_probs --output-dir "$work/pre2" 2> "$work/pre2.log"
d=$(jq -n --slurpfile a "$work/pre/metrics.jsonl" --slurpfile b "$work/pre2/metrics.jsonl" '[range($a|length) as $i | ($a[$i].loss // 0) - ($b[$i].loss // 0), ($a[$i]["rewards/margins"] // 0) - ($b[$i]["rewards/margins"] // 0), ($a[$i].eval_loss // 0) - ($b[$i].eval_loss // 0) | fabs] | max')
check "dpo: the cached reference log-probs read on 2 ranks give the same curve within 1e-5 (max diff $d)" \
  'grep -q "reference log-probs of .* rows from .*ref-logps-" "$work/pre2.log" && [[ -n "$d" && $(jq -n "$d < 1e-5") == true ]]'

# ---- bad input ----
{
  echo '{"question": "What lowers fever?", "response_chosen": "Paracetamol, as directed.", "response_rejected": "Nothing."}'
  echo '{"question": "Is it safe?", "response_chosen": "Ask a doctor."}'
} > "$work/missing.jsonl"
"$MEDGPT" train --stage dpo "${common[@]}" --data.train "$work/missing.jsonl" --output-dir "$work/bad" 2> "$work/bad.log"
check "a pair without response_rejected: one line naming file:line and the field" \
  '[[ $? -ne 0 ]] && grep -q "missing.jsonl:2: response_rejected" "$work/bad.log" && ! grep -q "frame #" "$work/bad.log"'
{
  echo '{"question": "What lowers fever?", "response_chosen": "Paracetamol.", "response_rejected": "Paracetamol."}'
  echo '{"question": "'"$(printf 'a very long question %.0s' {1..40})"'", "response_chosen": "Rest.", "response_rejected": "Run."}'
  echo '{"question": "Is it safe?", "response_chosen": "Ask a doctor.", "response_rejected": "Yes, always."}'
} > "$work/odd.jsonl"
"$MEDGPT" prepare --kind pref --input "$work/odd.jsonl" --tokenizer "$src/inputs/tokenizer" --max-prompt-length 48 --output "$work/odd.h5" 2> "$work/odd.log"
check "chosen == rejected: warned with its line and counted" 'grep -q "odd.jsonl:1: chosen and rejected are the same answer" "$work/odd.log" && grep -q "1 pairs have chosen == rejected" "$work/odd.log"'
check "a prompt past --max-prompt-length: truncated and counted" 'grep -q "truncated 1," "$work/odd.log"'
finish
