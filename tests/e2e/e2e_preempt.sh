#!/usr/bin/env bash
# e2e: preemption. A pt job gets `scancel --signal=USR1 --batch` after a few steps; slurm/common.sh
# forwards the signal, medgpt checkpoints and exits 99, the script requeues the job. Checks that the job
# was requeued (Restarts >= 1), reran with SLURM_RESTART_COUNT, COMPLETED at max_steps, that the
# first run stopped on a committed checkpoint, that metrics.jsonl holds every step exactly once, and
# that its losses equal, step for step, those of an uninterrupted reference run (same binary, same 2
# ranks, run outside Slurm meanwhile). Prints the requeue latencies. Environment: tests/e2e/lib.sh.
# check and wait_for evaluate their condition strings later (single quotes; variables used there only):
# shellcheck disable=SC2016,SC2317,SC2034 source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

steps=${MEDGPT_E2E_STEPS:-20}
cfg=$(e2e_configs)
run=$e2e_work/run ref=$e2e_work/ref
say "binary $MEDGPT_BIN, config $cfg/pt.ini, $steps steps, work $e2e_work"

id=$(sbatch --parsable --output="$e2e_work/job.out" "$repo/slurm/pt.sbatch" "$cfg/pt.ini" \
  --output-dir "$run" --train.max_steps "$steps" "${e2e_args[@]}") || fail "sbatch failed"
id=${id%%;*}
track "$id"
say "submitted pt job $id"

# The uninterrupted reference, outside Slurm, at the same time, with the job's layout: as many ranks,
# as many threads per rank (float sums depend on both).
ntasks=$(jfield "$id" NumTasks) cpt=$(jfield "$id" CPUs/Task)
(
  unset SLURM_JOB_ID SLURM_NTASKS SLURM_NTASKS_PER_NODE SLURM_NNODES SLURM_CPUS_PER_TASK SLURM_RESTART_COUNT SLURM_SUBMIT_DIR
  export OMP_NUM_THREADS=${cpt:-1}
  MEDGPT_NP=${ntasks:-2} exec bash "$repo/slurm/pt.sbatch" "$cfg/pt.ini" --output-dir "$ref" --train.max_steps "$steps" "${e2e_args[@]}"
) >"$e2e_work/ref.log" 2>&1 &
ref_pid=$!
track_pid "$ref_pid"

# (each wait also ends when the job ended early, and the next line tells)
logged_3() { (($(last_step "$run/metrics.jsonl") >= 3)) || finished "$id"; }
wait_for "3 steps logged by job $id" 120 logged_3
if (($(last_step "$run/metrics.jsonl") < 3)) || finished "$id"; then
  fail "job $id logged no 3 steps while running (state $(jstate "$id"))"
fi
t_sig=$(now)
scancel --signal=USR1 --batch "$id" || fail "scancel --signal=USR1 --batch $id failed"
say "sent USR1 to the batch shell of job $id at step $(last_step "$run/metrics.jsonl")"

requeued() { (($(jfield "$id" Restarts) >= 1)) && is_state "$id" 'PENDING|REQUEUED|REQUEUE_HOLD|RUNNING'; }
wait_for "job $id to be requeued (Restarts >= 1)" 60 'requeued || finished "$id"'
requeued || fail "job $id not requeued: $(jstate "$id") Restarts=$(jfield "$id" Restarts)"
t_requeued=$(now)
# the first run is over once the job is pending again: what it logged is final
first=$(last_step "$run/metrics.jsonl")
say "requeued: $(jstate "$id") ($(jfield "$id" Reason)), Restarts=$(jfield "$id" Restarts), EligibleTime $(jfield "$id" EligibleTime)"
rerunning() { is_state "$id" 'RUNNING|COMPLETING|COMPLETED|FAILED'; }
wait_for "the rerun of job $id" 90 rerunning || fail "job $id did not run again: $(jstate "$id") ($(jfield "$id" Reason))"
t_rerun=$(now)
wait_for "job $id to finish" 200 'finished "$id"'
t_done=$(now)
wait_for "the reference run" 120 '! kill -0 "$ref_pid" 2>/dev/null'
wait "$ref_pid"
ref_rc=$?

check "job $id COMPLETED with exit 0:0 after the rerun ($(jstate "$id") $(jfield "$id" ExitCode))" \
  '[[ $(jstate "$id") == COMPLETED && $(jfield "$id" ExitCode) == 0:0 ]]'
check "job $id was requeued (Restarts=$(jfield "$id" Restarts))" '(($(jfield "$id" Restarts) >= 1))'
check "the first run forwarded USR1 and requeued itself" 'grep -q "SIGUSR1: forwarding" "$e2e_work/job.out" && grep -q "requeued job $id" "$e2e_work/job.out"'
check "the rerun saw SLURM_RESTART_COUNT=1" 'grep -q "job $id, restart 1," "$e2e_work/job.out"'
ck=$run/checkpoints/$(printf 'step-%08d' "$first")
check "the first run stopped at step $first on a committed checkpoint ($ck/COMMITTED)" '((first >= 3 && first < steps)) && [[ -f $ck/COMMITTED ]]'
check "metrics.jsonl: steps 1..$steps, each once (got: $(steps_of "$run/metrics.jsonl"))" \
  '[[ $(steps_of "$run/metrics.jsonl") == "$(seq -s " " 1 "$steps")" ]]'
check "the job wrote $run/final" '[[ -d $run/final ]]'
check "the reference run exited 0 (rc $ref_rc)" '((ref_rc == 0))'
same_losses() { cmp -s <(losses_of "$run/metrics.jsonl") <(losses_of "$ref/metrics.jsonl"); }
check "losses equal the uninterrupted run's, step for step" same_losses
same_losses || diff <(losses_of "$run/metrics.jsonl") <(losses_of "$ref/metrics.jsonl") | head -20

say "timing: USR1 -> requeued $(secs "$t_sig" "$t_requeued") s, requeued -> rerun RUNNING $(secs "$t_requeued" "$t_rerun") s (hold: cred_expire), USR1 -> COMPLETED $(secs "$t_sig" "$t_done") s"
exit $((e2e_failures > 0))
