#!/usr/bin/env bash
# --train.zero 2 and 3 train the same model as zero 0: SFT (packed rows) on a 4-layer tiny Qwen3
# with a tied head, 4 steps of 4 micro-batches, at dp 2 and dp 4, with tp 2, with activation
# checkpointing, with LoRA and in bf16. Losses within 1e-6 and gradient norms within 1e-6 relative at
# every step (fp32: the gradients are summed layer by layer and micro-batch by micro-batch instead
# of over micro-batches first, the same numbers in another order), eval losses within 1e-6.
# A ZeRO-3 checkpoint (each dp rank's master shard gathered tensor by tensor into the model file)
# resumes at dp 4 and on one rank without ZeRO, continuing the curve within 1e-5, and its final/
# is the zero 0 run's model. Layouts ZeRO-2/3 cannot run: one line each.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
src="$MEDGPT_SOURCE_DIR"

tiny_sft_setup "$work"
run() {  # NAME RANKS ARGS...
  local name=$1 np=$2
  mpi "$np" "$MEDGPT" train --stage sft --model.tokenizer "$src/inputs/tokenizer" --data.train "$work/sft.h5" \
    --data.max_length 128 --train.micro_batch_size 2 --train.global_batch_size 8 --train.max_steps 4 --train.eval_steps 2 \
    --train.save_steps 2 --train.learning_rate 3e-3 --train.peak_flops 1e11 --threads 1 --output-dir "$work/$name" "${@:3}" 2> "$work/$name.log"
}
# max over the steps of |loss a - loss b|, |grad_norm a - grad_norm b| / grad_norm a, |eval_loss a - eval_loss b|
zero_close() {
  jq -n --slurpfile a "$work/$1/metrics.jsonl" --slurpfile b "$work/$2/metrics.jsonl" \
    'if ($a|length) != ($b|length) or ($a|length) == 0 then 1e9 else
     [range($a|length) as $i | ($a[$i].loss - $b[$i].loss | fabs), (($a[$i].grad_norm - $b[$i].grad_norm) / $a[$i].grad_norm | fabs),
      (($a[$i].eval_loss // 0) - ($b[$i].eval_loss // 0) | fabs)] | max end'
}
same() {  # NAME A B
  local d
  d=$(zero_close "$2" "$3")
  check "$1: $3 == $2 (max diff $d)" 'below "$d" 1e-6'
}
T=(--model.config "$work/tied.json")

run z0 2 "${T[@]}"
run z2 2 "${T[@]}" --train.zero 2
run z3 2 "${T[@]}" --train.zero 3
same "dp 2, ZeRO-2" z0 z2
same "dp 2, ZeRO-3" z0 z3
run d4z0 4 "${T[@]}"
run d4z2 4 "${T[@]}" --train.zero 2
run d4z3 4 "${T[@]}" --train.zero 3 --train.gradient_checkpointing
same "dp 4, ZeRO-2" d4z0 d4z2
same "dp 4, ZeRO-3 with activation checkpointing" d4z0 d4z3
run t2z0 4 "${T[@]}" --parallel.tp 2
run t2z3 4 "${T[@]}" --parallel.tp 2 --train.zero 3
same "tp 2 x dp 2, ZeRO-3" t2z0 t2z3
L=(--model.path "$work/z0/final" --lora.enabled --lora.dropout 0)
run l0 2 "${L[@]}"
run l3 2 "${L[@]}" --train.zero 3
same "LoRA, ZeRO-3 (the frozen base sharded too)" l0 l3
d=$(weights "$work/l0" "$work/l3" adapter_model.safetensors)
check "LoRA, ZeRO-3: final adapters == zero 0's within 1e-5 (max diff $d)" 'below "$d" 1e-5'
run b0 2 "${T[@]}" --train.precision bf16
run b3 2 "${T[@]}" --train.precision bf16 --train.zero 3
same "bf16, ZeRO-3" b0 b3

d=$(weights "$work/z0" "$work/z3")
check "ZeRO-3 final/ (from its checkpoint) == zero 0's within 1e-5 (max diff $d)" 'below "$d" 1e-5'
check "ZeRO-3 checkpoint: one model file, one optimizer file per dp rank" \
  '[[ -f "$work/z3/checkpoints/step-00000002/model-tp00-of-01-pp00-of-01.h5" && $(ls "$work/z3/checkpoints/step-00000002"/optim-*-dp0?-of-02.h5 | wc -l) -eq 2 ]]'
# Resume a ZeRO-3 dp 2 checkpoint at dp 4 (ZeRO-3) and on one rank: steps 3-4 continue z0's curve.
for layout in "r4 4 --train.zero 3" "r1 1"; do
  read -r name np zero <<< "$layout"
  # shellcheck disable=SC2086
  run "$name" "$np" "${T[@]}" --resume "$work/z3/checkpoints/step-00000002" $zero
  d=$(after2 "$work/z0" "$work/$name")
  check "ZeRO-3 dp 2 step 2 resumed as $name: steps 3-4 == z0 within 1e-5 (max diff $d)" \
    'grep -q "resharding .*zero 3 to" "$work/$name.log" && below "$d" 1e-5'
done

# Bad input: one line, before any work.
bad() {  # NAME PATTERN ARGS...
  local name=$1 pattern=$2
  mpi 2 "$MEDGPT" train --stage sft --model.tokenizer "$src/inputs/tokenizer" --data.train "$work/sft.h5" --threads 1 \
    --output-dir "$work/bad-$name" "${@:3}" > /dev/null 2> "$work/bad-$name.log"
  local rc=$?
  check "bad input ($name): one line naming --train.zero" \
    '[[ $rc -ne 0 && $(grep -c "error:" "$work/bad-$name.log") -eq 1 ]] && grep -q "$pattern" "$work/bad-$name.log" && [[ ! -e "$work/bad-$name/metrics.jsonl" ]]'
}
bad pp "train.zero: 2 with --parallel.pp 2.*use --train.zero 1" "${T[@]}" --parallel.pp 2 --train.zero 2
bad stage "train.zero: is 5; ZeRO stages are 0, 1, 2 and 3" "${T[@]}" --train.zero 5
bad qlora "train.zero: 3 shards every parameter.*use --train.zero 2" --model.path "$work/z0/final" --qlora.enabled --train.zero 3
finish
