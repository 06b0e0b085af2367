#!/usr/bin/env bash
# Pipeline parallelism (1F1B) against one rank, on a 4-layer tiny Qwen3 (tied and untied embeddings),
# bundled data, 4 micro-batches per step: losses, gradient norms and eval losses within 1e-5 and
# the final weights within 1e-5 for pp=2 (even and uneven layer splits), pp=4, pp=2 x tp=2,
# pp=2 x dp=2 (also ZeRO-1; against the same tp/dp without pp), activation checkpointing,
# bf16 against its own 1-rank run, SFT, LoRA and QLoRA (the adapters);
# a preempted pp=2 run resumes bit for bit; bad input gets one line each.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
src="$MEDGPT_SOURCE_DIR"

jq '.num_hidden_layers = 4' "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" > "$work/tied.json"
jq '.num_hidden_layers = 4 | .tie_word_embeddings = false' "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" > "$work/untied.json"
"$MEDGPT" prepare --kind pt --input "$src/inputs/data/pt" --tokenizer "$src/inputs/tokenizer" --block-size 64 \
  --validation-split 16 --output "$work/pt.h5" 2>/dev/null
run() {  # NAME RANKS CONFIG ARGS...: 4 steps, 4 micro-batches of 2 rows each (over the dp ranks)
  local name=$1 np=$2 config=$3
  mpi "$np" "$MEDGPT" train --stage pt --model.config "$work/$config.json" --model.tokenizer "$src/inputs/tokenizer" --data.train "$work/pt.h5" \
    --train.micro_batch_size 2 --train.global_batch_size 8 --train.max_steps 4 --train.eval_steps 2 --train.learning_rate 3e-3 \
    --train.peak_flops 1e11 --threads 1 --output-dir "$work/$name" "${@:4}" 2> "$work/$name.log"
}
same() {  # NAME A B [FILE]: metrics and final weights within 1e-5
  local m w
  m=$(close "$work/$2" "$work/$3"); w=$(weights "$work/$2" "$work/$3" "${4:-}")
  check "$1 == 1 rank within 1e-5 (metrics $m, weights $w)" 'below "$m" 1e-5 && below "$w" 1e-5'
}

for tie in tied untied; do
  run "$tie-1" 1 "$tie"
  run "$tie-pp2" 2 "$tie" --parallel.pp 2
  same "$tie: pp=2" "$tie-1" "$tie-pp2"
done
check "the run line counts the whole model's parameters, names the layout and the bubble" \
  'grep -q "$(grep -o "(full, [0-9]* trainable)" "$work/tied-1.log")" "$work/tied-pp2.log" && grep -q "pp 0/2" "$work/tied-pp2.log" && grep -q "pipeline: 2 stages, 4 micro-batches: .* bubble" "$work/tied-pp2.log"'
run untied-pp2-13 2 untied --parallel.pp 2 --parallel.pp_layers 1,3
same "untied: pp=2 split 1,3" untied-1 untied-pp2-13
run tied-pp4 4 tied --parallel.pp 4
same "tied: pp=4 (one layer per stage)" tied-1 tied-pp4
# With tp or dp the gradient sums run in another order (last bits, and which bits depends on the
# BLAS kernels: 1.0e-5 from one rank under SkylakeX's), and AdamW's m / sqrt(v) turns such
# differences in near-zero gradients into weight differences up to ~lr. What pp adds is checked
# against the same tp or dp layout without pp; dp and tp against one rank are cli_train's and
# cli_train_variants' business. The 1-rank difference is printed.
mixed() {  # NAME RUN SAME-LAYOUT-WITHOUT-PP
  local m w one
  m=$(close "$work/$3" "$work/$2"); w=$(weights "$work/$3" "$work/$2"); one=$(close "$work/tied-1" "$work/$2")
  check "$1 == the same tp/dp without pp within 1e-5 (metrics $m, weights $w; 1 rank: $one)" 'below "$m" 1e-5 && below "$w" 1e-5'
}
run tied-tp2 2 tied --parallel.tp 2
run tied-pp2tp2 4 tied --parallel.pp 2 --parallel.tp 2
mixed "tied: pp=2 x tp=2" tied-pp2tp2 tied-tp2
run tied-dp2 2 tied
run tied-pp2dp2 4 tied --parallel.pp 2
mixed "tied: pp=2 x dp=2" tied-pp2dp2 tied-dp2
run tied-dp2z 2 tied --train.zero 1
run tied-pp2dp2z 4 tied --parallel.pp 2 --train.zero 1
mixed "tied: pp=2 x dp=2, ZeRO-1" tied-pp2dp2z tied-dp2z
run tied-pp2ckpt 2 tied --parallel.pp 2 --train.gradient_checkpointing
same "tied: pp=2 with activation checkpointing" tied-1 tied-pp2ckpt
run bf16-1 1 untied --train.precision bf16
run bf16-pp2 2 untied --train.precision bf16 --parallel.pp 2
d=$(close "$work/bf16-1" "$work/bf16-pp2")
check "bf16: pp=2 == 1 rank in bf16 within 1e-5 (max diff $d; the same operations in the same order)" 'below "$d" 1e-5'

# SFT rows (padding, packed samples) through the stages.
sft=(train --stage sft --model.config "$work/untied.json" --model.tokenizer "$src/inputs/tokenizer" --data.train "$src/inputs/data/sft"
     --data.max_length 128 --train.micro_batch_size 2 --train.global_batch_size 8 --train.max_steps 3 --train.learning_rate 3e-3
     --train.peak_flops 1e11 --threads 1)
"$MEDGPT" "${sft[@]}" --output-dir "$work/sft-1" 2> /dev/null
mpi 2 "$MEDGPT" "${sft[@]}" --parallel.pp 2 --output-dir "$work/sft-pp2" 2> /dev/null
same "sft: pp=2" sft-1 sft-pp2

# LoRA and QLoRA SFT on the pretrained 4-layer model: each stage adapts its layers; final/ is one
# PEFT adapter collected from the stages.
lora=(train --stage sft --model.path "$work/tied-1/final" --data.train "$src/inputs/data/sft" --data.max_length 128
      --train.micro_batch_size 2 --train.global_batch_size 8 --train.max_steps 3 --train.learning_rate 3e-3 --train.peak_flops 1e11
      --threads 1 --lora.enabled --lora.dropout 0)
"$MEDGPT" "${lora[@]}" --output-dir "$work/lora-1" 2> /dev/null
mpi 2 "$MEDGPT" "${lora[@]}" --parallel.pp 2 --output-dir "$work/lora-pp2" 2> /dev/null
same "LoRA: pp=2" lora-1 lora-pp2 adapter_model.safetensors
"$MEDGPT" "${lora[@]}" --qlora.enabled --output-dir "$work/qlora-1" 2> /dev/null
mpi 2 "$MEDGPT" "${lora[@]}" --qlora.enabled --parallel.pp 2 --output-dir "$work/qlora-pp2" 2> /dev/null
same "QLoRA: pp=2" qlora-1 qlora-pp2 adapter_model.safetensors

# Preempted after step 2 and resumed: the same curve, bit for bit, as the straight pp=2 run.
run tied-pp2-r 2 tied --parallel.pp 2 --train.save_steps 2 --train.preempt_at_step 2
rc1=$(grep -c . "$work/tied-pp2-r/metrics.jsonl")
run tied-pp2-r 2 tied --parallel.pp 2 --train.save_steps 2
check "pp=2 preempted at step 2 ($rc1 rows) and resumed == straight, bit for bit" \
  'grep -q "resumed from" "$work/tied-pp2-r.log" && diff <(jq -c "[.step, .loss, .grad_norm, .eval_loss]" "$work/tied-pp2/metrics.jsonl") <(jq -c "[.step, .loss, .grad_norm, .eval_loss]" "$work/tied-pp2-r/metrics.jsonl")'
check "pp=2 checkpoint: a model and an optimizer file per stage" \
  '[[ -f "$work/tied-pp2-r/checkpoints/step-00000002/model-tp00-of-01-pp01-of-02.h5" && -f "$work/tied-pp2-r/checkpoints/step-00000002/optim-tp00-of-01-pp01-of-02-dp00-of-01.h5" ]]'

# Bad input: one line each, with the numbers.
bad() {  # NAME PATTERN RANKS STAGE ARGS...
  local name=$1 pattern=$2 np=$3
  mpi "$np" "$MEDGPT" train --stage "$4" --model.config "$work/tied.json" --model.tokenizer "$src/inputs/tokenizer" --data.train "$work/pt.h5" \
    --train.micro_batch_size 2 --train.global_batch_size 8 --output-dir "$work/bad" "${@:5}" > /dev/null 2> "$work/bad.log"
  local rc=$?
  check "$name: exit $rc, one line: $(head -c 160 "$work/bad.log")" \
    '[[ $rc -ne 0 && $(grep -c . "$work/bad.log") -eq 1 ]] && grep -q -- "$pattern" "$work/bad.log"'
}
bad "pp beyond the layer count" "parallel.pp: 5 stages for a model of 4 layers" 5 pt --parallel.pp 5
bad "a layer split that does not sum" 'pp_layers: "1,2" gives 2 stages and 3 layers; the model has 4 layers' 2 pt --parallel.pp 2 --parallel.pp_layers 1,2
bad "a world not divisible by tp x pp" "tp 1 x pp 2 = 2 does not divide the 3 ranks" 3 pt --parallel.pp 2
bad "a stage that is not pipelined" "stage kto does not run over pipeline stages" 2 kto --parallel.pp 2

# medgpt plan: the layouts of 4 ranks for the 4-layer model, and one line for a batch no layout divides.
"$MEDGPT" plan --model "$work/tied.json" --world 4 --seq-len 64 --micro-batch 2 --global-batch 8 --precision fp32 \
  --flops-per-rank 1 --bandwidth 1 --json > "$work/plan.json" 2> /dev/null
# (tp, pp, dp): (1,1,4) and (2,1,2) with ZeRO 0-3, (1,2,2) with ZeRO 0/1, (1,4,1) (2,2,1) (4,1,1); x checkpointing.
check "plan: 26 layouts of 4 ranks (tp 1/2/4 x pp 1/2/4 x ZeRO x checkpointing), fastest first" \
  '[[ $(jq length "$work/plan.json") -eq 26 ]] && jq -e "[.[].step_s] == ([.[].step_s] | sort)" "$work/plan.json" > /dev/null'
"$MEDGPT" plan --model "$work/tied.json" --world 2 --seq-len 64 --micro-batch 2 --memory-per-rank 0.001 > "$work/plan.txt" 2> /dev/null
check "plan table with this machine's probes; layouts over the memory limit marked" \
  'grep -q "compute .* GFLOP/s per rank (one of the model" "$work/plan.txt" && grep -q "over --memory-per-rank" "$work/plan.txt"'
"$MEDGPT" plan --model "$work/tied.json" --world 4 --micro-batch 2 --global-batch 3 > /dev/null 2> "$work/plan.err"
check "plan: a global batch no layout divides: one line" '[[ $(grep -c . "$work/plan.err") -eq 1 ]] && grep -q "error: --global-batch: 3 rows" "$work/plan.err"'

finish
