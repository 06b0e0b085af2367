#!/usr/bin/env bash
# medgpt train beyond full fine-tuning on one layout (tiny Qwen3, bundled data):
# - tensor parallelism: tp=2 equals tp=1 within 1e-5 on the loss curve; tp=2 x dp=2 on 4 ranks
#   equals dp=2;
# - LoRA SFT from a pretrained final/: a PEFT adapter in final/, only adapters trained, resume of a
#   LoRA run bit-exact; QLoRA (NF4 base) runs and lowers the loss, and under tp=2 tracks tp=1;
# - --model.resize_vocab auto grows the vocabulary to the tokenizer's size;
# - bf16 runs and tracks fp32.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
close() {  # max |a-b| of loss and grad_norm over two runs' metrics
  jq -n --slurpfile a "$1/metrics.jsonl" --slurpfile b "$2/metrics.jsonl" \
    '[range($a|length) as $i | ($a[$i].loss - $b[$i].loss), ($a[$i].grad_norm - $b[$i].grad_norm) | fabs] | max'
}
src="$MEDGPT_SOURCE_DIR"
tiny="$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json"

"$MEDGPT" prepare --kind pt --input "$src/inputs/data/pt" --tokenizer "$src/inputs/tokenizer" --block-size 64 --output "$work/pt.h5" 2>/dev/null
"$MEDGPT" prepare --kind sft --input "$src/inputs/data/sft" --tokenizer "$src/inputs/tokenizer" --max-length 128 \
  --validation-split 20 --output "$work/sft.h5" 2>/dev/null
pt=(train --stage pt --model.config "$tiny" --model.tokenizer "$src/inputs/tokenizer" --data.train "$work/pt.h5"
    --train.micro_batch_size 2 --train.global_batch_size 4 --train.max_steps 5 --train.learning_rate 3e-3 --train.peak_flops 1e11)

# Tensor parallelism.
"$MEDGPT" "${pt[@]}" --threads 1 --output-dir "$work/tp1" 2>/dev/null
mpi 2 "$MEDGPT" "${pt[@]}" --threads 1 --parallel.tp 2 --output-dir "$work/tp2" 2>/dev/null
d=$(close "$work/tp1" "$work/tp2")
check "tp=2 == tp=1 within 1e-5 (max diff $d)" 'below "$d" 1e-5'
mpi 2 "$MEDGPT" "${pt[@]}" --threads 1 --output-dir "$work/dp2" 2>/dev/null
mpi 4 "$MEDGPT" "${pt[@]}" --threads 1 --parallel.tp 2 --output-dir "$work/tp2dp2" 2>/dev/null
d=$(close "$work/dp2" "$work/tp2dp2")
check "tp=2 x dp=2 == dp=2 within 1e-5 (max diff $d)" 'below "$d" 1e-5'
check "a tp=2 run's final/ is one whole Hugging Face model" \
  '[[ -f "$work/tp2/final/model.safetensors" ]] && cmp -s <(jq -S . "$work/tp1/final/config.json") <(jq -S . "$work/tp2/final/config.json")'

# LoRA SFT on the pretrained model, stopped and resumed.
sft=(train --stage sft --model.path "$work/tp1/final" --data.train "$work/sft.h5" --data.max_length 128 --lora.enabled
     --lora.r 4 --lora.alpha 8 --train.micro_batch_size 2 --train.global_batch_size 4 --train.learning_rate 5e-3
     --train.eval_steps 3 --train.peak_flops 1e11 --threads 1)
"$MEDGPT" "${sft[@]}" --train.max_steps 6 --output-dir "$work/lora" 2> "$work/lora.log"
check "LoRA: final/ is a PEFT adapter" '[[ -f "$work/lora/final/adapter_model.safetensors" && -f "$work/lora/final/adapter_config.json" && ! -e "$work/lora/final/model.safetensors" ]]'
check "LoRA: only the adapters are trainable" 'grep -q "LoRA, [0-9]* trainable" "$work/lora.log" && ! grep -q "LoRA, 586112 trainable" "$work/lora.log"'
check "LoRA: the adapter config names r 4" '[[ $(jq .r "$work/lora/final/adapter_config.json") == 4 ]]'
"$MEDGPT" "${sft[@]}" --train.max_steps 6 --train.preempt_at_step 3 --output-dir "$work/lora-r" 2>/dev/null
"$MEDGPT" "${sft[@]}" --train.max_steps 6 --output-dir "$work/lora-r" 2>/dev/null
check "LoRA: 3 + resume 3 == 6 straight, bit for bit" \
  'diff <(jq -c "[.step, .loss, .grad_norm, .eval_loss]" "$work/lora/metrics.jsonl") <(jq -c "[.step, .loss, .grad_norm, .eval_loss]" "$work/lora-r/metrics.jsonl")'
"$MEDGPT" merge --base "$work/tp1/final" --adapter "$work/lora/final" --output "$work/merged" 2>/dev/null
check "LoRA: medgpt merge folds the trained adapter" '[[ -f "$work/merged/model.safetensors" ]]'
printf '{"prompt": "高血压需要做哪些检查？"}\n{"input_ids": [5, 17, 99]}\n' > "$work/q.jsonl"
"$MEDGPT" generate --model "$work/tp1/final" --adapter "$work/lora/final" --input "$work/q.jsonl" --output "$work/adapter.jsonl" --max-new-tokens 12 2>/dev/null
"$MEDGPT" generate --model "$work/merged" --input "$work/q.jsonl" --output "$work/merged.jsonl" --max-new-tokens 12 2>/dev/null
check "generate --adapter == generate on the merged model (greedy)" \
  '[[ -s "$work/adapter.jsonl" ]] && diff <(jq -c .output_ids "$work/adapter.jsonl") <(jq -c .output_ids "$work/merged.jsonl")'
"$MEDGPT" generate --model "$work/merged" --nf4 --input "$work/q.jsonl" --output "$work/nf4.jsonl" --max-new-tokens 12 2>/dev/null
check "generate --nf4 answers every line" '[[ $(jq -s "map(.output_ids | length) | min" "$work/nf4.jsonl") -ge 1 ]]'

"$MEDGPT" "${sft[@]}" --qlora.enabled --train.max_steps 6 --output-dir "$work/qlora" 2> "$work/qlora.log"
check "QLoRA: runs, loss goes down, adapter written" \
  '[[ -f "$work/qlora/final/adapter_model.safetensors" && $(jq -s ".[0].loss > .[5].loss" "$work/qlora/metrics.jsonl") == true ]] && grep -q QLoRA "$work/qlora.log"'
# Under tp each rank quantizes its shard; this model's 32-column row-parallel shards are not whole
# 64-element blocks, so the 4-bit values differ slightly from tp=1's (the exact case is an MPI test).
mpi 2 "$MEDGPT" "${sft[@]}" --qlora.enabled --parallel.tp 2 --train.max_steps 6 --output-dir "$work/qlora-tp2" 2>/dev/null
d=$(jq -n --slurpfile a "$work/qlora/metrics.jsonl" --slurpfile b "$work/qlora-tp2/metrics.jsonl" '[range($a|length) as $i | ($a[$i].loss - $b[$i].loss) | fabs] | max')
check "QLoRA tp=2 tracks tp=1 (max loss diff $d < 1e-2) and writes the same adapter layout" \
  'below "$d" 1e-2 && [[ $(stat -c %s "$work/qlora/final/adapter_model.safetensors") == $(stat -c %s "$work/qlora-tp2/final/adapter_model.safetensors") ]]'

# A bigger vocabulary after a tokenizer extension: resize_vocab auto takes the tokenizer's size.
jq '.vocab_size = 7000' "$tiny" > "$work/small-vocab.json"
"$MEDGPT" train --stage pt --model.config "$work/small-vocab.json" --model.tokenizer "$src/inputs/tokenizer" --data.train "$work/pt.h5" \
  --train.max_steps 1 --train.micro_batch_size 2 --train.global_batch_size 2 --output-dir "$work/novocab" 2> "$work/novocab.log"
check "ids beyond the vocabulary are refused before training" 'grep -q "model.resize_vocab auto" "$work/novocab.log" && [[ ! -d "$work/novocab/checkpoints" ]]'
"$MEDGPT" train --stage pt --model.config "$work/small-vocab.json" --model.tokenizer "$src/inputs/tokenizer" --data.train "$work/pt.h5" \
  --model.resize_vocab auto --train.max_steps 1 --train.micro_batch_size 2 --train.global_batch_size 2 --output-dir "$work/resized" 2>/dev/null
check "resize_vocab auto: final config has the tokenizer's 8000 rows" '[[ $(jq .vocab_size "$work/resized/final/config.json") == 8000 ]]'

# bf16 compute with fp32 master weights.
"$MEDGPT" "${pt[@]}" --train.precision bf16 --output-dir "$work/bf16" 2>/dev/null
d=$(jq -n --slurpfile a "$work/tp1/metrics.jsonl" --slurpfile b "$work/bf16/metrics.jsonl" '[range($a|length) as $i | ($a[$i].loss - $b[$i].loss) | fabs] | max')
check "bf16 tracks fp32 (max loss diff $d < 0.05)" 'below "$d" 0.05'
check "bf16 final/ is stored in bf16" '[[ $(jq -r .torch_dtype "$work/bf16/final/config.json") == bfloat16 ]]'

finish
