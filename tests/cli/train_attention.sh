#!/usr/bin/env bash
# --model.attn_implementation chunked (online softmax, memory linear in T) trains the same model as
# eager: SFT with packed rows (segments and padding), with activation checkpointing, and DPO on
# padded pairs (rows that see no key included), 3 steps each: losses, gradient norms, eval losses
# and final weights within 1e-5 (fp32: the same sums in another order). A bad value: one line.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
src="$MEDGPT_SOURCE_DIR"
preference_setup "$work"
"$MEDGPT" prepare --kind sft --input "$src/inputs/data/sft" --tokenizer "$src/inputs/tokenizer" --max-length 128 \
  --validation-split 8 --output "$work/sft.h5" 2>/dev/null

sft=(train --stage sft --model.path "$work/pt/final" --data.train "$work/sft.h5" --data.max_length 128 --train.micro_batch_size 2
     --train.global_batch_size 4 --train.max_steps 3 --train.eval_steps 3 --train.learning_rate 1e-4 --train.peak_flops 1e11 --threads 1)
dpo=(train --stage dpo --model.path "$work/pt/final" --data.train "$work/pref.h5" --data.max_length 160 --train.micro_batch_size 2
     --train.global_batch_size 4 --train.max_steps 3 --train.eval_steps 3 --train.learning_rate 1e-4 --train.peak_flops 1e11 --threads 1)
same() {  # NAME A B [FILE]
  local m w
  m=$(close "$work/$2" "$work/$3"); w=$(weights "$work/$2" "$work/$3" "${4:-}")
  check "$1: chunked == eager within 1e-5 (metrics $m, weights $w)" 'below "$m" 1e-5 && below "$w" 1e-5'
}
"$MEDGPT" "${sft[@]}" --output-dir "$work/sft-eager" 2> /dev/null
"$MEDGPT" "${sft[@]}" --model.attn_implementation chunked --output-dir "$work/sft-chunked" 2> /dev/null
same "sft, packed rows" sft-eager sft-chunked
"$MEDGPT" "${sft[@]}" --model.attn_implementation chunked --train.gradient_checkpointing --output-dir "$work/sft-chunked-ckpt" 2> /dev/null
same "sft, packed rows, activation checkpointing" sft-eager sft-chunked-ckpt
"$MEDGPT" "${dpo[@]}" --output-dir "$work/dpo-eager" 2> /dev/null
"$MEDGPT" "${dpo[@]}" --model.attn_implementation chunked --output-dir "$work/dpo-chunked" 2> /dev/null
same "dpo, padded pairs and a live reference" dpo-eager dpo-chunked

"$MEDGPT" "${sft[@]}" --model.attn_implementation flash --output-dir "$work/bad" > /dev/null 2> "$work/bad.log"
rc=$?
check "an unknown attention: exit $rc, one line: $(head -c 160 "$work/bad.log")" \
  '[[ $rc -ne 0 && $(grep -c . "$work/bad.log") -eq 1 ]] && grep -q "model.attn_implementation" "$work/bad.log"'
finish
