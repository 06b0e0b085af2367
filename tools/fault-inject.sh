#!/usr/bin/env bash
# Fault injection over checkpoints and data, on the tiny Qwen3 test model and the bundled corpus;
# prints a tally (cases tried, survived, lost) per fault. Needs tools/build.sh first.
#   tools/fault-inject.sh [KILLS]      KILLS: kill -9 runs (default 20)
# - kill -9 at KILLS random points of writing a checkpoint (a random step, one of the eight points of
#   the write), and KILLS times from outside at random moments of a run that checkpoints every step:
#   the rerun resumes from the last committed step and ends on the uninterrupted run's loss curve,
#   bit for bit;
# - a full disk during a checkpoint (the run's folder on a small tmpfs; needs root for mount): one
#   error line, the previous checkpoint intact, and after more room the run resumes to the same curve;
# - flipped bytes and truncation in a checkpoint's files: --resume auto falls back to the previous
#   checkpoint, same curve;
# - a truncated or byte-flipped HDF5 corpus: refused with one line, or (a flip in bytes no sample
#   reads) the same curve; a crash, a stack trace or a changed curve counts as lost.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MEDGPT=${MEDGPT:-$root/build/medgpt}
[[ -x $MEDGPT ]] || { echo "fault-inject: build first (tools/build.sh)" >&2; exit 2; }
kills=${1:-20}
work=$(mktemp -d)
mnt="$work/small-disk"
cleanup() { mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"; rm -rf "$work"; }
trap cleanup EXIT
RANDOM=7  # reproducible fault points

curve() { jq -c '[.step, .loss, .grad_norm]' "$1/metrics.jsonl" 2>/dev/null; }
declare -A tried survived lost
note() { tried[$1]=$((${tried[$1]:-0} + 1)); if [[ $2 == ok ]]; then survived[$1]=$((${survived[$1]:-0} + 1)); else lost[$1]=$((${lost[$1]:-0} + 1)); echo "  lost: $1: $3"; fi; }

"$MEDGPT" prepare --kind pt --input "$root/inputs/data/pt" --tokenizer "$root/inputs/tokenizer" --block-size 64 --output "$work/corpus.h5" 2>/dev/null
run=(train --stage pt --model.config "$root/tests/fixtures/train/tiny-qwen3.json" --model.tokenizer "$root/inputs/tokenizer"
     --data.train "$work/corpus.h5" --train.micro_batch_size 2 --train.global_batch_size 4 --train.learning_rate 3e-3
     --train.warmup_steps 2 --train.peak_flops 1e11 --threads 1 --train.save_steps 1 --train.max_steps 12)
start=$(date +%s.%N)
"$MEDGPT" "${run[@]}" --output-dir "$work/straight" 2> "$work/straight.log" || { echo "fault-inject: the clean run failed" >&2; cat "$work/straight.log" >&2; exit 1; }
took=$(echo "$(date +%s.%N) - $start" | bc)
want=$(curve "$work/straight")

# 1a. kill -9 at random points of writing a checkpoint: a random step and one of the eight points of
# the write (MEDGPT_TEST_KILL_IN_CHECKPOINT); the rerun must resume from the last committed step.
points=(start model optim digests side meta committed renamed)
for i in $(seq "$kills"); do
  out="$work/point-$i"
  step=$((2 + RANDOM % 10)) point=${points[$((RANDOM % 8))]}
  MEDGPT_TEST_KILL_IN_CHECKPOINT="$step:$point" "$MEDGPT" "${run[@]}" --output-dir "$out" 2> /dev/null &
  wait $! 2> /dev/null
  killed=$?
  [[ $point == renamed ]] && expect=$step || expect=$((step - 1))
  "$MEDGPT" "${run[@]}" --output-dir "$out" 2> "$out.log"
  if [[ $? -eq 0 && $killed -eq 137 && $(curve "$out") == "$want" ]] && grep -q "resumed from .*step-$(printf %08d "$expect") " "$out.log"; then
    note kill-in-write ok
  else
    note kill-in-write bad "step $step at $point (exit $killed): $(grep -m1 -E "error|resumed" "$out.log")"
  fi
  rm -rf "$out"
done

# 1b. kill -9 from outside at random times of a run (checkpoints every step).
during=0
for i in $(seq "$kills"); do
  out="$work/kill-$i"
  "$MEDGPT" "${run[@]}" --output-dir "$out" 2> /dev/null &
  pid=$!
  sleep "$(echo "scale=3; 0.8 + $took * $((RANDOM % 1000)) / 1000" | bc)"
  kill -9 "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
  compgen -G "$out/checkpoints/*.partial" > /dev/null && during=$((during + 1))
  "$MEDGPT" "${run[@]}" --output-dir "$out" 2> "$out.log"
  if [[ $? -eq 0 && $(curve "$out") == "$want" ]]; then note kill ok; else note kill bad "run $i: $(grep -m1 error "$out.log")"; fi
  rm -rf "$out"
done

# 2. A full disk during a checkpoint.
if mkdir -p "$mnt" && mount -t tmpfs -o size=64m tmpfs "$mnt" 2> /dev/null; then
  ckpt=$(du -sk "$work/straight/checkpoints/step-00000001" | cut -f1)
  used=$(( $(du -sk "$work/straight" | cut -f1) - $(du -sk "$work/straight/checkpoints" | cut -f1) ))
  umount "$mnt"
  for room in 1.5 2.3 3.7; do  # checkpoints that fit, so the disk fills at a different point of a write
    size=$(echo "($used + $ckpt * $room) / 1" | bc)
    mount -t tmpfs -o size="${size}k" tmpfs "$mnt"
    "$MEDGPT" "${run[@]}" --output-dir "$mnt/run" 2> "$work/full.log"
    rc=$?
    lines=$(grep -c "error:" "$work/full.log")
    last=$(ls -d "$mnt"/run/checkpoints/step-* 2> /dev/null | grep -v partial | tail -1)
    mount -o remount,size=256m "$mnt"
    "$MEDGPT" "${run[@]}" --output-dir "$mnt/run" 2> "$work/full2.log"
    rc2=$?
    if [[ $rc -ne 0 && $lines -eq 1 && -n $last && $rc2 -eq 0 && $(curve "$mnt/run") == "$want" ]] &&
       grep -q "resumed from $last" "$work/full2.log" && ! grep -q "Traceback\|HDF5-DIAG\|terminate called" "$work/full.log"; then
      note full-disk ok
      echo "  full disk at $room checkpoints: $(grep error: "$work/full.log" | cut -c1-160)"
    else
      note full-disk bad "room $room: exit $rc, $lines error lines, last $last, rerun exit $rc2: $(grep -m1 error: "$work/full.log" "$work/full2.log")"
    fi
    umount "$mnt"
  done
else
  echo "  full disk: skipped (mounting a tmpfs needs root)"
fi

# 3. Damaged checkpoint files: flipped bytes and truncation in the newest checkpoint.
for i in $(seq 10); do
  out="$work/damaged-$i"
  cp -r "$work/straight" "$out"
  rm -rf "$out/checkpoints/step-00000012" "$out/final"
  # step 11 is now the newest; resume must notice the damage and fall back to step 10.
  files=("$out"/checkpoints/step-00000011/*)
  f=${files[$((RANDOM % ${#files[@]}))]}
  bytes=$(stat -c %s "$f")
  if ((i % 2)); then
    printf "\\x$(printf %02x $((RANDOM % 256)))" | dd of="$f" bs=1 seek=$((RANDOM * 32768 % bytes)) conv=notrunc status=none
    # The same byte value would be no damage: flip another bit pattern then.
    cmp -s "$f" "$work/straight/checkpoints/step-00000011/$(basename "$f")" && printf '\x5a' | dd of="$f" bs=1 seek=0 conv=notrunc status=none
    what="flip in $(basename "$f")"
  else
    truncate -s $((RANDOM * 32768 % bytes)) "$f"
    what="truncated $(basename "$f")"
  fi
  "$MEDGPT" "${run[@]}" --output-dir "$out" 2> "$out.log"
  if [[ $? -eq 0 && $(curve "$out") == "$want" ]] && grep -q "step-00000011 is damaged" "$out.log" && grep -q "resumed from .*step-00000010" "$out.log"; then
    note checkpoint ok
  else
    note checkpoint bad "$what: $(grep -m1 -E "error|damaged" "$out.log")"
  fi
  rm -rf "$out"
done

# 4. A truncated or byte-flipped corpus.
clean=$(mktemp -d -p "$work")
short=(train --stage pt --model.config "$root/tests/fixtures/train/tiny-qwen3.json" --model.tokenizer "$root/inputs/tokenizer"
       --train.micro_batch_size 2 --train.global_batch_size 4 --train.peak_flops 1e11 --threads 1 --train.max_steps 3)
"$MEDGPT" "${short[@]}" --data.train "$work/corpus.h5" --output-dir "$clean" 2> /dev/null
clean_curve=$(curve "$clean")
refused=0 unchanged=0
corpus_bytes=$(stat -c %s "$work/corpus.h5")
for i in $(seq 20); do
  bad="$work/bad-$i.h5"
  cp "$work/corpus.h5" "$bad"
  if ((i % 2)); then
    truncate -s $((RANDOM * 32768 % corpus_bytes)) "$bad"
    what="truncated to $(stat -c %s "$bad") bytes"
  else
    at=$((RANDOM * 32768 % corpus_bytes))
    printf '\xa5' | dd of="$bad" bs=1 seek="$at" conv=notrunc status=none
    what="byte $at flipped"
  fi
  out=$(mktemp -d -p "$work")
  "$MEDGPT" "${short[@]}" --data.train "$bad" --output-dir "$out" 2> "$out.log"
  rc=$?
  if ((rc == 0)) && [[ $(curve "$out") == "$clean_curve" ]]; then
    note corpus ok  # the flip hit bytes no sample reads
    unchanged=$((unchanged + 1))
  elif ((rc == 1)) && [[ $(grep -c . "$out.log") -eq 1 ]] && grep -q "^medgpt: error: " "$out.log"; then
    note corpus ok
    refused=$((refused + 1))
    [[ $refused -le 3 ]] && echo "  corpus $what: $(cut -c1-150 "$out.log")"
  else
    note corpus bad "$what: exit $rc, $(grep -c . "$out.log") lines: $(head -c 300 "$out.log" | tr '\n' ' ')"
  fi
  rm -rf "$out" "$bad"
done

echo "fault injection (tiny Qwen3, a checkpoint every step; of the kills from outside, $during landed during a checkpoint write):"
for k in kill-in-write kill full-disk checkpoint corpus; do
  [[ -n ${tried[$k]:-} ]] && echo "  $k: ${tried[$k]} tried, ${survived[$k]:-0} survived, ${lost[$k]:-0} lost"
done
echo "  (corpus: $refused refused with one line, $unchanged flips in bytes no sample reads: the same curve)"
total_lost=0
for k in "${!lost[@]}"; do total_lost=$((total_lost + lost[$k])); done
((total_lost == 0))
