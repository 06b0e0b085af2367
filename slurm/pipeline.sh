#!/usr/bin/env bash
# Submit the training stages as a chain of Slurm jobs, each starting only when the one before it
# completed successfully (--dependency=afterok), each training from the final model of the one before it.
#
#   slurm/pipeline.sh [--align STAGES] [--from STAGE] [--to STAGE] [--watch] [CONFIG_DIR] [-- OVERRIDES...]
#   e.g. slurm/pipeline.sh --from pt --to sft inputs
#        slurm/pipeline.sh --align orpo          (pt -> sft -> orpo)
#        slurm/pipeline.sh --from dpo --align dpo  (dpo alone, from dpo.ini's model.path)
#
# - Stages, in order: pt sft, then the alignment stages of --align (comma-separated, from rm dpo orpo
#   simpo kto; default dpo), each of them trained from sft's final model (not from each other).
#   A stage needs slurm/<stage>.sbatch (others in the range are skipped with a note). Default
#   range: every stage.
# - Stage S reads CONFIG_DIR/S.ini (CONFIG_DIR defaults to <repo>/inputs) and writes
#   ${MEDGPT_RUNS:-$PWD/runs}/S (its Slurm log too: slurm-<jobid>.out). pt -> sft -> alignment is
#   chained with afterok; a stage whose parent is submitted too gets --model.path <parent's
#   output>/final. OVERRIDES after `--` go to every stage.
# - Prints one line per submitted stage on stdout: `<stage> <jobid>`.
# - A failed stage leaves its dependents PENDING with Reason=DependencyNeverSatisfied for ever (Slurm
#   does not cancel them). --watch waits for the chain, prints state changes on stderr, and when a
#   stage fails cancels the dependents left pending that way and says so in one line; it exits 0 when
#   every stage COMPLETED, 1 otherwise. Without --watch: scancel the later jobs yourself.
# - MEDGPT_SBATCH_ARGS adds options to every sbatch (e.g. "--partition=urgent --time=1:00:00").
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MEDGPT_REPO=$repo   # the jobs find slurm/common.sh through it (sbatch exports the environment)
alignment=(rm dpo orpo simpo kto)

say() { echo "pipeline: $*" >&2; }
die() { say "error: $*"; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

from="" to="" watch=0 config_dir="$repo/inputs" overrides=() align=dpo
while (($#)); do
  case $1 in
    --align) align=${2:?--align needs stages, e.g. dpo or rm,dpo}; shift 2 ;;
    --from) from=${2:?--from needs a stage}; shift 2 ;;
    --to) to=${2:?--to needs a stage}; shift 2 ;;
    --watch) watch=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; overrides=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) config_dir=$1; shift ;;
  esac
done

order=(pt sft)
IFS=, read -ra chosen <<<"$align"
for a in "${chosen[@]}"; do
  [[ " ${alignment[*]} " == *" $a "* ]] || die "--align $a: not an alignment stage (${alignment[*]})"
  [[ " ${order[*]} " == *" $a "* ]] || order+=("$a")
done
parent_of() { case $1 in pt) echo "" ;; sft) echo pt ;; *) echo sft ;; esac; }

available=()
for s in "${order[@]}"; do [[ -f $repo/slurm/$s.sbatch ]] && available+=("$s"); done
((${#available[@]})) || die "no slurm/<stage>.sbatch in $repo/slurm"
index() { local i; for i in "${!order[@]}"; do [[ ${order[i]} == "$1" ]] && { echo "$i"; return 0; }; done; return 1; }
from=${from:-${available[0]}}
to=${to:-${available[-1]}}
ifrom=$(index "$from") || die "--from $from: not a stage (${order[*]})"
ito=$(index "$to") || die "--to $to: not a stage (${order[*]})"
[[ -f $repo/slurm/$from.sbatch ]] || die "--from $from: no slurm/$from.sbatch yet (available: ${available[*]})"
[[ -f $repo/slurm/$to.sbatch ]] || die "--to $to: no slurm/$to.sbatch yet (available: ${available[*]})"
((ifrom <= ito)) || die "--from $from comes after --to $to"

stages=()
for s in "${order[@]:ifrom:ito-ifrom+1}"; do
  if [[ -f $repo/slurm/$s.sbatch ]]; then stages+=("$s"); else say "skipping $s: no slurm/$s.sbatch yet"; fi
done
# every config first: a missing one should stop the pipeline before anything is queued
[[ -d $config_dir ]] || die "config folder $config_dir not found"
config_dir=$(cd "$config_dir" && pwd)
for s in "${stages[@]}"; do
  [[ -f $config_dir/$s.ini ]] || die "no config $config_dir/$s.ini for stage $s"
done

runs=${MEDGPT_RUNS:-$PWD/runs}
mkdir -p "$runs"
runs=$(cd "$runs" && pwd)

ids=()
cancel_submitted() { ((${#ids[@]})) && scancel "${ids[@]}" 2>/dev/null; true; }
declare -A job_of=()
for s in "${stages[@]}"; do
  parent=$(parent_of "$s")
  prev_id="" prev_out=$runs/$parent
  [[ -n $parent ]] && prev_id=${job_of[$parent]:-}
  out=$runs/$s
  mkdir -p "$out"   # Slurm does not create the folder of --output
  args=(--parsable --output="$out/slurm-%j.out")
  # shellcheck disable=SC2206  # user-given sbatch options, split on purpose
  args+=(${MEDGPT_SBATCH_ARGS:-})
  stage_args=("$config_dir/$s.ini" --output-dir "$out")
  if [[ -n $prev_id ]]; then
    args+=(--dependency="afterok:$prev_id")
    stage_args+=(--model.path "$prev_out/final")
  fi
  if ! id=$(sbatch "${args[@]}" "$repo/slurm/$s.sbatch" "${stage_args[@]}" "${overrides[@]}"); then
    cancel_submitted
    die "sbatch failed for stage $s; cancelled the stages already submitted (${ids[*]:-none})"
  fi
  id=${id%%;*}   # --parsable prints "id" or "id;cluster"
  ids+=("$id")
  echo "$s $id"
  job_of[$s]=$id
done
((watch)) || exit 0

# ---- --watch: follow the chain until every job has ended
field() { sed -n "s|.* $2=\([^ ]*\).*|\1|p" <<<"$1"; }
declare -A shown=() ended=() unseen=()
failed="" t0=$SECONDS
while :; do
  going=0 never=() never_ids=()
  for i in "${!ids[@]}"; do
    id=${ids[i]} s=${stages[i]}
    [[ -n ${ended[$id]:-} ]] && continue   # an ended job does not change (and may be purged later)
    line=" $(scontrol show job -o "$id" 2>/dev/null || true)"
    st=$(field "$line" JobState) reason=$(field "$line" Reason) restarts=$(field "$line" Restarts)
    if [[ -z $st ]]; then
      # not known to the controller (purged after MinJobAge, or a hiccup): give up after ~10 polls
      unseen[$id]=$((${unseen[$id]:-0} + 1))
      ((${unseen[$id]} >= 10)) && st=UNKNOWN
    fi
    [[ $reason == None ]] && reason=""
    [[ $restarts == 0 ]] && restarts=""
    now="${st:-?}${reason:+ ($reason)}${restarts:+, restarts $restarts}"
    [[ ${shown[$id]:-} == "$now" ]] || { say "$s $id $now"; shown[$id]=$now; }
    case $st in
      "" | RUNNING | CONFIGURING | COMPLETING | REQUEUED | REQUEUE_FED | REQUEUE_HOLD | RESIZING | SUSPENDED | SIGNALING | STAGE_OUT)
        going=1 ;;
      PENDING)
        going=1
        if [[ $reason == DependencyNeverSatisfied ]]; then never+=("$s ($id)"); never_ids+=("$id"); fi ;;
      PREEMPTED)
        # requeued by Slurm if the job allows it, then PENDING again
        if [[ $(field "$line" Requeue) == 1 ]]; then going=1; else ended[$id]=$st; fi ;;
      *) ended[$id]=$st ;;
    esac
    if [[ -n ${ended[$id]:-} && $st != COMPLETED && -z $failed ]]; then
      failed="$s (job $id) ended $st, exit code $(field "$line" ExitCode), log $(field "$line" StdOut)"
    fi
  done
  if ((${#never_ids[@]})); then
    scancel "${never_ids[@]}" 2>/dev/null || true
    say "${failed:-an earlier stage failed}; cancelled ${never[*]}, left pending with DependencyNeverSatisfied"
  fi
  ((going)) || break
  sleep "${MEDGPT_WATCH_INTERVAL:-0.5}"
done
if [[ -n $failed ]]; then
  say "failed after $((SECONDS - t0)) s: $failed"
  exit 1
fi
say "all ${#stages[@]} stage(s) COMPLETED in $((SECONDS - t0)) s; models in $runs/<stage>/final"
