#!/usr/bin/env bash
# e2e: slurm/pipeline.sh --align dpo chains pt -> sft -> dpo with --dependency=afterok on a real local
# Slurm. Checks that the jobs COMPLETE, that each waited for its parent (afterok while pending, started
# only after the parent ended), and that each trained from its parent's final model
# (--model.path <runs>/<parent>/final, present before it started).
# See tests/e2e/lib.sh for the environment it reads.
# check and wait_for evaluate their condition strings later (single quotes; variables used there only):
# shellcheck disable=SC2016,SC2317,SC2034 source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

steps=${MEDGPT_E2E_STEPS:-6}
cfg=$(e2e_configs)
runs=$MEDGPT_RUNS
say "binary $MEDGPT_BIN, configs $cfg, $steps steps per stage, work $e2e_work"

t_submit=$(now)
out=$("$repo/slurm/pipeline.sh" --align dpo "$cfg" -- --train.max_steps "$steps" "${e2e_args[@]}") ||
  fail "slurm/pipeline.sh failed"
pt=$(awk '$1 == "pt" { print $2 }' <<<"$out")
sft=$(awk '$1 == "sft" { print $2 }' <<<"$out")
dpo=$(awk '$1 == "dpo" { print $2 }' <<<"$out")
[[ -n $pt && -n $sft && -n $dpo ]] || fail "pipeline printed no '<stage> <jobid>' lines for pt, sft and dpo: $out"
track "$pt" "$sft" "$dpo"
say "submitted pt=$pt sft=$sft dpo=$dpo"
declare -A job=([pt]=$pt [sft]=$sft [dpo]=$dpo)
for pair in pt:sft sft:dpo; do
  parent=${pair%%:*} child=${pair##*:}
  dep=$(jfield "${job[$child]}" Dependency)
  check "$child is queued with afterok on $parent ($dep)" '[[ $dep == "afterok:${job[$parent]}("* ]]'
done

wait_for "dpo to finish" 280 'finished "$dpo"'
t_done=$(now)
for s in pt sft dpo; do
  check "$s COMPLETED with exit 0:0 ($(jstate "${job[$s]}") $(jfield "${job[$s]}" ExitCode))" \
    '[[ $(jstate "${job[$s]}") == COMPLETED && $(jfield "${job[$s]}" ExitCode) == 0:0 ]]'
done
for pair in pt:sft sft:dpo; do
  parent=${pair%%:*} child=${pair##*:}
  p_end=$(jepoch "${job[$parent]}" EndTime) c_start=$(jepoch "${job[$child]}" StartTime)
  check "$child started after $parent ended ($parent EndTime $(jfield "${job[$parent]}" EndTime), $child StartTime $(jfield "${job[$child]}" StartTime))" \
    '[[ -n $p_end && -n $c_start ]] && ((c_start >= p_end))'
  final_mtime=$(stat -c %Y "$runs/$parent/final" 2>/dev/null || echo 0)
  check "$parent's final existed before $child started" '((final_mtime > 0 && final_mtime <= ${c_start:-0}))'
  check "$child ran with --model.path $runs/$parent/final" 'grep -qF -- "--model.path $runs/$parent/final" "$runs/$child/slurm-${job[$child]}.out"'
done
for s in pt sft dpo; do
  check "$s wrote $runs/$s/final" '[[ -d $runs/$s/final ]]'
  check "$s metrics.jsonl has steps 1..$steps" '[[ $(steps_of "$runs/$s/metrics.jsonl") == "$(seq -s " " 1 "$steps")" ]]'
done
pt_end=$(jepoch "$pt" EndTime) sft_start=$(jepoch "$sft" StartTime)
say "timing: submit -> dpo COMPLETED $(secs "$t_submit" "$t_done") s; afterok hop (pt end -> sft start) $((sft_start - pt_end)) s (1 s resolution)"
exit $((e2e_failures > 0))
