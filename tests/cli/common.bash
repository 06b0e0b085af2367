# shellcheck shell=bash
# Sourced by the tests/cli/*.sh scripts (not a test itself: ctest runs *.sh only).
#   check NAME CONDITION   evaluates CONDITION (a string), prints "ok   NAME" or "FAIL NAME" and counts failures
#   mpi NP CMD...          CMD on NP ranks (oversubscribed: this machine may have fewer cores)
#   finish                 prints the failure count; the script's status is 0 only without failures
#   preference_setup DIR   the preference tests' start: DIR/pt/final (the tiny Qwen3 pretrained 20 steps
#                          on the bundled corpus) and DIR/pref.h5 (the bundled pairs, rows of 160, 40 held out)
set -uo pipefail
export OMPI_MCA_mpi_yield_when_idle=1  # ranks beyond the cores must yield, or collectives crawl
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails+1)); fi; }
mpi() { "${MPIEXEC:-mpiexec}" -q -np "$1" --oversubscribe "${@:2}"; }
finish() {
  echo "$fails failed"
  [[ $fails -eq 0 ]]
}
preference_setup() {
  local src="$MEDGPT_SOURCE_DIR"
  "$MEDGPT" train --stage pt --model.config "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" --model.tokenizer "$src/inputs/tokenizer" \
    --data.train "$src/inputs/data/pt" --data.block_size 64 --train.max_steps 20 --train.micro_batch_size 8 --train.global_batch_size 8 \
    --train.learning_rate 3e-3 --train.peak_flops 1e11 --output-dir "$1/pt" 2>/dev/null
  "$MEDGPT" prepare --kind pref --input "$src/inputs/data/reward/medical_pref.jsonl" --tokenizer "$src/inputs/tokenizer" --max-length 160 \
    --validation-split 40 --output "$1/pref.h5" 2>/dev/null
}
