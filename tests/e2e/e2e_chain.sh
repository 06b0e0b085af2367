#!/usr/bin/env bash
# e2e: slurm/pipeline.sh chains pt -> sft with --dependency=afterok on a real local Slurm. Checks that
# both jobs COMPLETE, that sft waited for pt (afterok while pending, started only after pt ended), and
# that sft trained from pt's final model (--model.path <runs>/pt/final, present before sft started).
# See tests/e2e/lib.sh for the environment it reads.
# check and wait_for evaluate their condition strings later (single quotes; variables used there only):
# shellcheck disable=SC2016,SC2317,SC2034 source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

steps=${MEDGPT_E2E_STEPS:-6}
cfg=$(e2e_configs)
runs=$MEDGPT_RUNS
say "binary $MEDGPT_BIN, configs $cfg, $steps steps per stage, work $e2e_work"

t_submit=$(now)
out=$("$repo/slurm/pipeline.sh" --from pt --to sft "$cfg" -- --train.max_steps "$steps" "${e2e_args[@]}") ||
  fail "slurm/pipeline.sh failed"
pt=$(awk '$1 == "pt" { print $2 }' <<<"$out")
sft=$(awk '$1 == "sft" { print $2 }' <<<"$out")
[[ -n $pt && -n $sft ]] || fail "pipeline printed no '<stage> <jobid>' lines for pt and sft: $out"
track "$pt" "$sft"
say "submitted pt=$pt sft=$sft"
dep=$(jfield "$sft" Dependency)
check "sft is queued with afterok on pt ($dep)" '[[ $dep == "afterok:$pt("* ]]'

wait_for "sft to finish" 280 'finished "$sft"'
t_done=$(now)
check "pt COMPLETED with exit 0:0 ($(jstate "$pt") $(jfield "$pt" ExitCode))" \
  '[[ $(jstate "$pt") == COMPLETED && $(jfield "$pt" ExitCode) == 0:0 ]]'
check "sft COMPLETED with exit 0:0 ($(jstate "$sft") $(jfield "$sft" ExitCode))" \
  '[[ $(jstate "$sft") == COMPLETED && $(jfield "$sft" ExitCode) == 0:0 ]]'
pt_end=$(jepoch "$pt" EndTime) sft_start=$(jepoch "$sft" StartTime)
check "sft started after pt ended (pt EndTime $(jfield "$pt" EndTime), sft StartTime $(jfield "$sft" StartTime))" \
  '[[ -n $pt_end && -n $sft_start ]] && ((sft_start >= pt_end))'
check "pt wrote $runs/pt/final" '[[ -d $runs/pt/final ]]'
final_mtime=$(stat -c %Y "$runs/pt/final" 2>/dev/null || echo 0)
check "pt's final existed before sft started" '((final_mtime > 0 && final_mtime <= ${sft_start:-0}))'
check "sft ran with --model.path $runs/pt/final" 'grep -qF -- "--model.path $runs/pt/final" "$runs/sft/slurm-$sft.out"'
check "sft wrote $runs/sft/final" '[[ -d $runs/sft/final ]]'
for s in pt sft; do
  check "$s metrics.jsonl has steps 1..$steps" '[[ $(steps_of "$runs/$s/metrics.jsonl") == "$(seq -s " " 1 "$steps")" ]]'
done
say "timing: submit -> sft COMPLETED $(secs "$t_submit" "$t_done") s; afterok hop (pt end -> sft start) $((sft_start - pt_end)) s (1 s resolution)"
exit $((e2e_failures > 0))
