#!/usr/bin/env bash
# e2e: a failing stage and its dependents, on a real local Slurm.
#  1. pt submitted with a config that does not exist, sft with --dependency=afterok on it: pt FAILS
#     with a non-zero exit code, sft stays PENDING with Reason=DependencyNeverSatisfied (Slurm never
#     cancels it by itself) and never runs; the test cancels it.
#  2. slurm/pipeline.sh --watch, pt failing on a bad value (--train.max_steps many): the watcher cancels
#     sft, says so in one line, and exits non-zero; sft never ran.
#  3. slurm/pipeline.sh with a config folder lacking sft.ini refuses before submitting anything.
# Environment: tests/e2e/lib.sh.
# check and wait_for evaluate their condition strings later (single quotes; variables used there only):
# shellcheck disable=SC2016,SC2317,SC2034 source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

cfg=$(e2e_configs)
say "binary $MEDGPT_BIN, configs $cfg, work $e2e_work"

# ---- 1. missing config -> FAILED; the dependent pends with DependencyNeverSatisfied until cancelled
out1=$e2e_work/direct
mkdir -p "$out1"
a=$(sbatch --parsable --output="$out1/pt-%j.out" "$repo/slurm/pt.sbatch" "$e2e_work/no-such.ini" --output-dir "$out1/pt") ||
  fail "sbatch pt failed"
a=${a%%;*}
track "$a"
b=$(sbatch --parsable --output="$out1/sft-%j.out" --dependency="afterok:$a" "$repo/slurm/sft.sbatch" "$cfg/sft.ini" \
  --output-dir "$out1/sft" --model.path "$out1/pt/final" --train.max_steps 2 "${e2e_args[@]}") || fail "sbatch sft failed"
b=${b%%;*}
track "$b"
say "submitted pt=$a (missing config) and sft=$b (afterok:$a)"
t0=$(now)
wait_for "pt $a to end" 60 'finished "$a"'
check "pt FAILED with a non-zero exit code ($(jstate "$a") $(jfield "$a" ExitCode))" \
  '[[ $(jstate "$a") == FAILED && $(jfield "$a" ExitCode) != 0:0 ]]'
check "pt's log names the missing config" 'grep -q "no-such.ini not found" "$out1/pt-$a.out"'
never() { is_state "$1" PENDING && [[ $(jfield "$1" Reason) == DependencyNeverSatisfied ]]; }
wait_for "sft $b to show DependencyNeverSatisfied" 30 'never "$b" || ! is_state "$b" PENDING'
t_never=$(now)
check "sft is PENDING with DependencyNeverSatisfied ($(jstate "$b") $(jfield "$b" Reason), $(jfield "$b" Dependency))" 'never "$b"'
sleep 2   # and stays so
check "sft is still PENDING (DependencyNeverSatisfied) 2 s later" 'never "$b"'
scancel "$b"
wait_for "sft $b to be cancelled" 30 'finished "$b"'
check "sft CANCELLED by the test ($(jstate "$b"))" 'is_state "$b" CANCELLED'
check "sft never ran (no log, no output)" '[[ ! -e $out1/sft-$b.out && ! -e $out1/sft ]]'
say "timing: submit -> DependencyNeverSatisfied visible $(secs "$t0" "$t_never") s"

# ---- 2. pipeline --watch: pt fails on a bad value; the watcher cancels sft and says so
runs2=$e2e_work/runs
t0=$(now)
MEDGPT_RUNS=$runs2 "$repo/slurm/pipeline.sh" --watch --from pt --to sft "$cfg" -- --train.max_steps many "${e2e_args[@]}" \
  >"$e2e_work/pipeline.stdout" 2>"$e2e_work/pipeline.log"
rc=$?
t_watch=$(now)
pt=$(awk '$1 == "pt" { print $2 }' "$e2e_work/pipeline.stdout")
sft=$(awk '$1 == "sft" { print $2 }' "$e2e_work/pipeline.stdout")
[[ -n $pt && -n $sft ]] || fail "pipeline printed no '<stage> <jobid>' lines: $(cat "$e2e_work/pipeline.stdout" "$e2e_work/pipeline.log")"
track "$pt" "$sft"
sed 's/^/    /' "$e2e_work/pipeline.log"
check "pipeline --watch exited non-zero (rc $rc)" '((rc != 0))'
check "pt $pt FAILED ($(jstate "$pt") $(jfield "$pt" ExitCode))" 'is_state "$pt" FAILED'
check "sft $sft CANCELLED by the watcher ($(jstate "$sft"), $(jfield "$sft" Reason))" 'is_state "$sft" CANCELLED'
check "the watcher said so in one line" \
  '(($(grep -c "cancelled sft ($sft), left pending with DependencyNeverSatisfied" "$e2e_work/pipeline.log") == 1))'
check "sft never ran (no metrics, no final)" '[[ ! -e $runs2/sft/metrics.jsonl && ! -e $runs2/sft/final ]]'
say "timing: pipeline --watch submit -> failure handled $(secs "$t0" "$t_watch") s"

# ---- 3. a missing stage config stops the pipeline before anything is queued
mkdir -p "$e2e_work/half"
cp "$cfg/pt.ini" "$e2e_work/half/pt.ini"
before=$(squeue -h -o %i | wc -l)
MEDGPT_RUNS=$e2e_work/runs3 "$repo/slurm/pipeline.sh" --from pt --to sft "$e2e_work/half" >"$e2e_work/half.stdout" 2>"$e2e_work/half.log"
rc=$?
check "pipeline without sft.ini: exit 2, names the file, submits nothing ($(cat "$e2e_work/half.log"))" \
  '((rc == 2)) && grep -q "half/sft.ini" "$e2e_work/half.log" && [[ ! -s $e2e_work/half.stdout ]] && (($(squeue -h -o %i | wc -l) == before))'
exit $((e2e_failures > 0))
