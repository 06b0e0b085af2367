#!/usr/bin/env bash
# medgpt train on a tiny Qwen3-shaped model and the bundled data:
# - raw input is prepared once and cached (a rerun reuses it);
# - a run stopped by the stop signal at step 4 (checkpoint, exit 99) and resumed equals the
#   uninterrupted 8-step run bit for bit (loss, grad_norm, eval_loss; NEFTune on);
# - SIGUSR1 from outside stops at a step boundary with a committed checkpoint and exit 99;
# - resuming with another global batch or corpus is refused with both values; another micro-batch
#   size only warns;
# - COMMITTED records every file's size and SHA-256: a flipped byte makes --resume auto fall back to
#   the previous checkpoint (same curve), a truncated shard named with --resume is refused;
# - a half-written checkpoint (kill -9 during the write) is ignored and the run resumes from the
#   previous one, to the same curve;
# - dp=2 equals dp=1 with the same global batch within 1e-5; ZeRO-1 equals plain dp;
# - metrics.jsonl carries the contract fields; final/ is a loadable HF folder;
# - bad input gets one line each, before any training.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
curve() { jq -c '[.step, .loss, .grad_norm, .eval_loss]' "$1/metrics.jsonl"; }
# Bad input: one line, a non-zero exit, nothing trained.
bad() {  # name, expected message regex, args...
  local name=$1 want=$2; shift 2
  "$MEDGPT" "$@" 2> "$work/err" > /dev/null
  local rc=$?
  check "$name: exit $rc, one line" '[[ $rc -ne 0 && $rc -ne 99 && $(grep -c . "$work/err") -eq 1 ]] && grep -Eq "$want" "$work/err"'
}

src="$MEDGPT_SOURCE_DIR"
common=(--model.config "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" --model.tokenizer "$src/inputs/tokenizer"
      --train.micro_batch_size 2 --train.global_batch_size 4 --train.learning_rate 3e-3 --train.warmup_steps 2
      --train.peak_flops 1e11 --threads 1)
base=(train --stage pt "${common[@]}")

# Prepare once (raw input), then reuse the cached corpus.
"$MEDGPT" "${base[@]}" --output-dir "$work/prep" --data.train "$src/inputs/data/pt" --data.block_size 64 \
  --data.validation_split 40 --train.max_steps 1 2> "$work/prep.log"
corpus=$(ls "$work"/prep/data/pt-*.h5)
check "raw input prepared into OUT/data" '[[ -f "$corpus" ]]'
rm -rf "$work/prep/checkpoints" "$work/prep/final"
"$MEDGPT" "${base[@]}" --output-dir "$work/prep" --data.train "$src/inputs/data/pt" --data.block_size 64 \
  --data.validation_split 40 --train.max_steps 1 --resume never 2> "$work/prep2.log"
check "a rerun reuses the prepared corpus" 'grep -q "reusing $corpus" "$work/prep2.log"'

run8=("${base[@]}" --data.train "$corpus" --train.eval_steps 4 --train.neftune_alpha 5)
run=("${run8[@]}" --train.max_steps 8)
"$MEDGPT" "${run[@]}" --output-dir "$work/straight" 2> "$work/straight.log"
check "straight run finishes" '[[ -f "$work/straight/final/model.safetensors" && -f "$work/straight/final/config.json" && -f "$work/straight/final/tokenizer.json" ]]'
fields='select(.step == 4) | [has("step", "epoch", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "mfu", "time_s", "eval_loss", "eval_ppl")] | all'
check "metrics.jsonl has the contract fields" \
  '[[ $(jq -s "length" "$work/straight/metrics.jsonl") -eq 8 && $(jq "$fields" "$work/straight/metrics.jsonl") == true ]]'
check "TensorBoard events written" 'compgen -G "$work/straight/tb/events.out.tfevents.*" > /dev/null'
check "loss goes down" '[[ $(jq -s ".[0].loss > .[7].loss" "$work/straight/metrics.jsonl") == true ]]'

"$MEDGPT" "${run[@]}" --output-dir "$work/resumed" --train.preempt_at_step 4 2> "$work/stop.log"
rc=$?
check "stop at step 4: exit 99 with a committed checkpoint" '[[ $rc -eq 99 && -f "$work/resumed/checkpoints/step-00000004/COMMITTED" ]]'
"$MEDGPT" "${run[@]}" --output-dir "$work/resumed" 2> "$work/resume.log"
check "resume auto continues from step 4" 'grep -q "resumed from .*step-00000004 at step 4" "$work/resume.log"'
check "4 + resume 4 == 8 straight, bit for bit" 'diff <(curve "$work/straight") <(curve "$work/resumed")'
check "COMMITTED records each file's size and SHA-256" \
  '[[ $(jq -r ".files | keys | length" "$work/resumed/checkpoints/step-00000008/COMMITTED") -ge 4 ]] &&
   (cd "$work/resumed/checkpoints/step-00000008" && jq -r ".files | to_entries[] | \"\(.value.sha256)  \(.key)\"" COMMITTED | sha256sum -c --quiet)'

# A damaged newest checkpoint (one flipped byte in its model shard): --resume auto says so and falls
# back to step 4, continuing the same curve; naming it with --resume is refused with one line.
cp -r "$work/resumed" "$work/flipped"
shard=$(ls "$work"/flipped/checkpoints/step-00000008/model-*.h5)
printf '\xff' | dd of="$shard" bs=1 seek=$(($(stat -c %s "$shard") / 2)) conv=notrunc status=none
"$MEDGPT" "${run[@]}" --output-dir "$work/flipped" 2> "$work/flipped.log"
check "flipped byte: resume auto warns and falls back to step 4" \
  'grep -q "warning: checkpoint .*step-00000008 is damaged (model-.*h5: its SHA-256 differs.*falling back to .*step-00000004" "$work/flipped.log" &&
   grep -q "resumed from .*step-00000004 at step 4" "$work/flipped.log"'
check "... and continues the same curve" 'diff <(curve "$work/straight") <(curve "$work/flipped")'
cp -r "$work/resumed" "$work/truncated"
optim=$(ls "$work"/truncated/checkpoints/step-00000008/optim-*.h5)
truncate -s 100 "$optim"
bad "a truncated optimizer shard named with --resume" "step-00000008 is damaged: optim-.*h5: 100 bytes, COMMITTED records [0-9]+ \(truncated\)" \
  "${run[@]}" --output-dir "$work/truncated" --resume "$work/truncated/checkpoints/step-00000008"

# Resuming with another global batch or corpus is refused before any work (the data cursor and the
# schedule would mean something else); another micro-batch size under the same global batch warns.
cp -r "$work/straight" "$work/again"
gb8=("${common[@]}")
gb8[7]=8  # --train.global_batch_size 8
bad "resume with another global batch" "trainer.global_batch_size: is 4, this run has 8" train --stage pt "${gb8[@]}" --data.train "$corpus" \
  --train.max_steps 12 --output-dir "$work/again"
"$MEDGPT" "${base[@]}" --data.train "$src/inputs/data/pt" --data.block_size 64 --train.max_steps 8 --output-dir "$work/again" 2> "$work/again.log"
rc=$?
check "resume on another corpus: exit $rc, the corpora named" \
  '[[ $rc -ne 0 && $(grep -c "error:" "$work/again.log") -eq 1 ]] && grep -q "trainer.corpus: was .*pt-.*h5 (.* samples, .* tokens), this run trains on .*h5" "$work/again.log"'
micro1=("${common[@]}")
micro1[5]=1  # --train.micro_batch_size 1
"$MEDGPT" train --stage pt "${micro1[@]}" --data.train "$corpus" --train.max_steps 8 --output-dir "$work/again" 2> "$work/again.log"
rc=$?
check "resume with another micro-batch size: exit $rc, one warning" '[[ $rc -eq 0 && $(grep -c "warning: .*micro_batch_size is 2, this run uses 1" "$work/again.log") -eq 1 ]]'

# --resume never in a used output dir: the old run's checkpoints are moved aside, new ones written.
"$MEDGPT" "${run8[@]}" --output-dir "$work/resumed" --resume never --train.max_steps 2 2> "$work/never.log"
check "--resume never: old checkpoints moved aside, the new run's step 2 written" \
  'grep -q "moved 2 checkpoints" "$work/never.log" && compgen -G "$work/resumed/checkpoints-discarded-*/step-00000008" > /dev/null &&
   [[ -f "$work/resumed/checkpoints/step-00000002/COMMITTED" && ! -e "$work/resumed/checkpoints/step-00000008" && $(jq -s length "$work/resumed/metrics.jsonl") -eq 2 ]]'

# SIGUSR1 from outside, mid-run (slow the steps down with a longer run).
"$MEDGPT" "${run8[@]}" --train.max_steps 400 --output-dir "$work/signal" 2> "$work/signal.log" &
pid=$!
for _ in $(seq 100); do [[ -s "$work/signal/metrics.jsonl" ]] && break; sleep 0.1; done
kill -USR1 "$pid"; wait "$pid"; rc=$?
last=$(tail -1 "$work/signal/metrics.jsonl" | jq .step)
check "SIGUSR1: exit 99, checkpoint at the last logged step ($last)" '[[ $rc -eq 99 && -f "$work/signal/checkpoints/step-$(printf %08d "$last")/COMMITTED" ]]'

# kill -9 while step 6's checkpoint is written: step 3's stays the newest committed.
(MEDGPT_TEST_KILL_IN_CHECKPOINT=6 exec "$MEDGPT" "${run[@]}" --train.save_steps 3 --output-dir "$work/crash" 2> /dev/null)
check "killed mid-checkpoint: a .partial folder and no COMMITTED step 6" \
  '[[ -d "$work/crash/checkpoints/step-00000006.partial" && ! -e "$work/crash/checkpoints/step-00000006" ]]'
"$MEDGPT" "${run[@]}" --train.save_steps 3 --output-dir "$work/crash" 2> "$work/crash.log"
check "resume ignores the half-written checkpoint and continues from step 3" 'grep -q "resumed from .*step-00000003 at step 3" "$work/crash.log"'
check "crash + resume == straight" 'diff <(curve "$work/straight") <(curve "$work/crash")'
check "the .partial folder is gone after the rewrite" '[[ ! -e "$work/crash/checkpoints/step-00000006.partial" && -f "$work/crash/checkpoints/step-00000006/COMMITTED" ]]'

# Data parallelism: same global batch (4 rows) on 1 and 2 ranks; ZeRO-1 on 2 ranks.
dp=("${base[@]}" --data.train "$corpus" --train.max_steps 5 --train.eval_steps 5)
"$MEDGPT" "${dp[@]}" --output-dir "$work/dp1" 2> /dev/null
mpi 2 "$MEDGPT" "${dp[@]}" --output-dir "$work/dp2" 2> /dev/null
mpi 2 "$MEDGPT" "${dp[@]}" --train.zero 1 --output-dir "$work/dp2z" 2> /dev/null
diff12=$(close "$work/dp1" "$work/dp2")
check "dp=2 == dp=1 within 1e-5 (max diff $diff12)" '[[ -n "$diff12" && $(jq -n "$diff12 < 1e-5") == true && $(jq -s length "$work/dp2/metrics.jsonl") -eq 5 ]]'
# The sharded gradient norm sums the squares in another order: equal to the last bits only.
check "ZeRO-1 == plain dp: losses bit for bit, grad norms within 1e-12" \
  'diff <(jq -c "[.step, .loss, .eval_loss]" "$work/dp2/metrics.jsonl") <(jq -c "[.step, .loss, .eval_loss]" "$work/dp2z/metrics.jsonl") &&
   [[ $(jq -n "$(close "$work/dp2" "$work/dp2z") < 1e-12") == true ]]'

# A diverging run: every step after the first has a non-finite loss; the updates are skipped and
# counted, and after max_bad_steps in a row the run stops with a checkpoint and one clear line.
"$MEDGPT" train --stage pt --model.config "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" --model.tokenizer "$src/inputs/tokenizer" \
  --data.train "$corpus" --train.micro_batch_size 2 --train.global_batch_size 4 --train.max_steps 20 --train.learning_rate 1e30 \
  --train.max_grad_norm 0 --train.max_bad_steps 3 --train.peak_flops 1e11 --output-dir "$work/nan" 2> "$work/nan.log"
rc=$?
check "non-finite steps: exit $rc, 3 skipped, checkpoint at step 4, one error line" \
  '[[ $rc -eq 1 && -f "$work/nan/checkpoints/step-00000004/COMMITTED" && $(grep -c "update skipped" "$work/nan.log") -eq 3 ]] &&
   grep -q "error: .*3 steps in a row had a non-finite loss or gradient" "$work/nan.log" && [[ ! -e "$work/nan/final" ]]'

# Bad input: one line each, non-zero exit, before training.
printf '[train]\nmicro_batch_sise = 2\n' > "$work/typo.ini"
bad "unknown config key" "typo.ini:2.*micro_batch_sise" "${dp[@]}" --output-dir "$work/x" --config "$work/typo.ini"
printf '[train]\nwarmup_ratio = lots\n' > "$work/type.ini"
bad "wrong type" "type.ini:2.*warmup_ratio" "${dp[@]}" --output-dir "$work/x" --config "$work/type.ini"
bad "a ratio above 1" "value '1.5' of option '--train.warmup_ratio' must be in \[0, 1\]" "${base[@]}" --data.train "$corpus" --train.warmup_ratio 1.5 --output-dir "$work/x"
bad "a negative length (no wrap-around)" "value '-1' of option '--data.max_length' must be at least 1" "${base[@]}" --data.train "$corpus" --data.max_length -1 --output-dir "$work/x"
printf '[lora]\nenabled = true\ndropout = 1\n' > "$work/dropout.ini"
bad "dropout 1 in a config file" "dropout.ini:3.*'--lora.dropout' must be in \[0, 1\)" "${base[@]}" --data.train "$corpus" --output-dir "$work/x" --config "$work/dropout.ini"
mpi 2 "$MEDGPT" "${base[@]}" --data.train "$corpus" --train.max_steps -3 --output-dir "$work/x" 2> "$work/err2" > /dev/null
rc=$?
check "2 ranks, a negative step count: exit $rc, said once" '[[ $rc -ne 0 && $(grep -c "error:.*train.max_steps" "$work/err2") -eq 1 ]]'
bad "missing data file" "nope.h5: no such corpus" "${base[@]}" --data.train "$work/nope.h5" --output-dir "$work/x"
bad "another run's checkpoint in the output dir" "trainer.stage.*another run" \
  train --stage sft "${common[@]}" --data.train "$src/inputs/data/sft" --output-dir "$work/dp1"
bad "global batch not a multiple" "global_batch_size.*multiple" train --stage pt --model.config "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" \
  --model.tokenizer "$src/inputs/tokenizer" --data.train "$corpus" --train.micro_batch_size 2 --train.global_batch_size 3 --output-dir "$work/x"

finish
