#!/usr/bin/env bash
# Checkpoints resume in any layout: SFT with packed rows (where the sample order is the layout's
# business) on a 4-layer tiny Qwen3 with tied embeddings, 4 steps of 4 micro-batches. A checkpoint
# of step 2 written on one rank resumes on dp=2, dp=2 with ZeRO-1, tp=2, pp=2, pp=2 x tp=2 and
# dp=4 with ZeRO-1; one written on dp=2 with ZeRO-1 resumes on one rank and one written on tp=2
# on pp=2. Steps 3 and 4 continue the straight 1-rank run's curve within 1e-5 (loss, grad_norm,
# eval_loss): the same rows, the same weights and AdamW moments, summed in another order.
# medgpt checkpoint reshard writes a checkpoint in another layout's files that resumes the same.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
src="$MEDGPT_SOURCE_DIR"

tiny_sft_setup "$work"
run() {  # NAME RANKS ARGS...
  local name=$1 np=$2
  mpi "$np" "$MEDGPT" train --stage sft --model.config "$work/tied.json" --model.tokenizer "$src/inputs/tokenizer" --data.train "$work/sft.h5" \
    --data.max_length 128 --train.micro_batch_size 2 --train.global_batch_size 8 --train.max_steps 4 --train.eval_steps 2 \
    --train.save_steps 2 --train.learning_rate 3e-3 --train.peak_flops 1e11 --threads 1 --output-dir "$work/$name" "${@:3}" 2> "$work/$name.log"
}
resumed() {  # NAME FROM RANKS ARGS...: resumes FROM's step 2 in another output dir and layout
  local name=$1 from=$2 np=$3 d
  run "$name" "$np" --resume "$work/$from/checkpoints/step-00000002" "${@:4}"
  d=$(after2 "$work/straight" "$work/$name")
  check "$from's step 2 resumed as $name: steps 3-4 == straight within 1e-5 (max diff $d)" \
    'grep -q "resharding .*step-00000002 from" "$work/$name.log" && grep -q "resumed from .* at step 2" "$work/$name.log" && below "$d" 1e-5'
}

run straight 1
check "straight run: 4 steps, checkpoints at 2 and 4" \
  '[[ $(jq -s "[.[] | select(.loss)] | length" "$work/straight/metrics.jsonl") -eq 4 && -f "$work/straight/checkpoints/step-00000002/COMMITTED" ]]'
resumed dp2 straight 2
resumed dp2z straight 2 --train.zero 1
resumed tp2 straight 2 --parallel.tp 2
resumed pp2 straight 2 --parallel.pp 2
resumed pp2tp2 straight 4 --parallel.pp 2 --parallel.tp 2
resumed dp4z straight 4 --train.zero 1

run z1 2 --train.zero 1
resumed one-from-dp2z z1 1
run t1 2 --parallel.tp 2
resumed pp2-from-tp2 t1 2 --parallel.pp 2

# Each rank reads only its parts: the ZeRO-1 optimizer files hold each rank's range of a tensor.
check "ZeRO-1 optimizer files: one per dp rank, each a range of the moments by tensor name" \
  '[[ $(ls "$work/z1/checkpoints/step-00000002"/optim-tp00-of-01-pp00-of-01-dp0?-of-02.h5 | wc -l) -eq 2 ]]'

# medgpt checkpoint reshard: the same checkpoint as tp=2 x pp=2 files (one model and one optimizer
# file per rank); resuming it loads the same numbers as resuming the original, so the curve is the
# same bit for bit. A ZeRO-1 dp=2 checkpoint resharded for one rank likewise.
curve() { jq -c "[.step, .loss, .grad_norm, .eval_loss]" "$1/metrics.jsonl"; }
"$MEDGPT" checkpoint reshard --input "$work/straight/checkpoints/step-00000002" --output "$work/rs22" --tp 2 --pp 2 2> "$work/rs22.log"
check "reshard to tp=2 x pp=2: 4 model and 4 optimizer files, committed" \
  '[[ $(ls "$work"/rs22/model-tp0?-of-02-pp0?-of-02.h5 | wc -l) -eq 4 && $(ls "$work"/rs22/optim-tp0?-of-02-pp0?-of-02-dp00-of-01.h5 | wc -l) -eq 4 && -f "$work/rs22/COMMITTED" && -f "$work/rs22/config.json" ]]'
run pp2tp2-rs 4 --parallel.pp 2 --parallel.tp 2 --resume "$work/rs22"
check "resharded tp=2 x pp=2 resumed == the original resumed as tp=2 x pp=2, bit for bit" \
  'grep -q "resumed from .* at step 2" "$work/pp2tp2-rs.log" && diff <(curve "$work/pp2tp2") <(curve "$work/pp2tp2-rs")'
"$MEDGPT" checkpoint reshard --input "$work/z1/checkpoints/step-00000002" --output "$work/rs11" 2> /dev/null
run one-rs 1 --resume "$work/rs11"
check "ZeRO-1 dp=2 resharded for one rank and resumed == resumed directly, bit for bit" 'diff <(curve "$work/one-from-dp2z") <(curve "$work/one-rs")'

bad() {  # NAME PATTERN ARGS...
  local pattern=$2
  "$MEDGPT" checkpoint reshard "${@:3}" > /dev/null 2> "$work/bad.log"
  local rc=$?
  check "$1: exit $rc, one line: $(head -c 160 "$work/bad.log")" '[[ $rc -ne 0 && $(grep -c . "$work/bad.log") -eq 1 ]] && grep -q -- "$pattern" "$work/bad.log"'
}
bad "a tp the heads do not divide" "num_attention_heads (4) is not divisible by tp" --input "$work/straight/checkpoints/step-00000002" --output "$work/bad-tp" --tp 3
"$MEDGPT" import --model "$work/straight/final" --output "$work/imported" 2> /dev/null
bad "a model checkpoint" "is a model checkpoint, not a training run's" --input "$work/imported" --output "$work/bad-x"
bad "an output folder in use" "exists and is not empty" --input "$work/straight/checkpoints/step-00000002" --output "$work/rs22"
bad "a half-written folder" "is not a committed checkpoint" --input "$work/straight" --output "$work/bad-y"

finish
