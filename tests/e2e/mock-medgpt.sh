#!/usr/bin/env bash
# A stand-in for `medgpt train` that keeps its contract with slurm/ and the e2e tests, so the Slurm
# side can be built and tested before (and independently of) the real trainer:
#
sft --config|sft --config FILE.ini --output-dir OUT
#                  [--section.key value | --section.key=value ...] [--resume auto|never|PATH]
#
# - Reads `max_steps` and `save_steps` from the [train] section of FILE.ini; --train.max_steps and
#   --train.save_steps override them. A missing config, a non-integer max_steps, or a --model.path
#   that is not a folder: one line `medgpt: error: ...` and exit 2, as the real binary does.
# - Each step sleeps MOCK_STEP_SECONDS (default 0.3) and appends {"step":N,"loss":L} to
#   OUT/metrics.jsonl. L follows a recurrence whose state lives in the checkpoint (and starts from the
#   loss stored in --model.path's model.json, if any): a resume that lost or ignored the state would
#   give other losses than an uninterrupted run.
# - Every save_steps steps, and at the step boundary after SIGUSR1 or SIGTERM, it writes
#   OUT/checkpoints/step-XXXXXXXX/{state,COMMITTED} (COMMITTED last); after a signal it exits 99.
# - --resume auto (default) continues after the newest committed checkpoint; a fresh start truncates
#   metrics.jsonl, a resume appends to it. At the end: OUT/final/model.json, then exit 0.
# - Under mpirun only rank 0 writes; the other ranks step along and, after a signal, leave only once
#   rank 0 has committed its checkpoint (mpirun kills the rest as soon as one rank exits non-zero,
#   which is why the real trainer must also finish the checkpoint on every rank before exiting 99).
set -uo pipefail

die() { echo "medgpt: error: $*" >&2; exit 2; }

[[ ${1:-} == train ]] || die "mock-medgpt.sh only knows 'train'"
shift
declare -A opt=([resume]=auto)
while (($#)); do
  case $1 in
    --*=*) k=${1%%=*}; opt[${k#--}]=${1#*=}; shift ;;
    --*) [[ $# -ge 2 ]] || die "option $1 needs a value"; opt[${1#--}]=$2; shift 2 ;;
    *) die "unexpected argument '$1'" ;;
  esac
done
stage=${opt[stage]:-}; config=${opt[config]:-}; out=${opt[output-dir]:-}
[[ $stage =~ ^(pt|sft|rm|dpo|orpo|simpo|kto)$ ]] || die "--stage: '$stage' is not a stage"
[[ -n $config ]] || die "--config is required"
[[ -f $config ]] || die "$config: config file not found; pass an existing --config FILE.ini"
[[ -n $out ]] || die "--output-dir is required"

# [train] key from the INI, with its line number for error messages (the command line wins)
ini() { # key -> "value<TAB>line"
  awk -v key="$1" '
    /^[ \t]*\[/ { gsub(/[][ \t]/, ""); sec = $0; next }
    sec == "train" && $0 ~ "^[ \t]*" key "[ \t]*=" { v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]*$/, "", v); print v "\t" NR }
  ' "$config" | tail -1
}
int_opt() { # key default
  local v where
  if [[ -n ${opt[train.$1]+x} ]]; then
    v=${opt[train.$1]}; where="--train.$1"
  else
    IFS=$'\t' read -r v where < <(ini "$1")
    where="$config:${where:-?}: train.$1"
    v=${v:-$2}
  fi
  [[ $v =~ ^[0-9]+$ ]] || die "$where: '$v' is not an integer; give a whole number"
  echo "$v"
}
max_steps=$(int_opt max_steps 10) || exit 2
save_steps=$(int_opt save_steps 0) || exit 2

loss=10   # the recurrence's state at step 0
if [[ -n ${opt[model.path]:-} ]]; then
  [[ -d ${opt[model.path]} ]] || die "--model.path ${opt[model.path]}: no such model folder"
  if [[ -f ${opt[model.path]}/model.json ]]; then
    loss=$(jq -r .loss "${opt[model.path]}/model.json") || die "${opt[model.path]}/model.json: unreadable"
  fi
fi

rank=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}
ckpts=$out/checkpoints
step=0
case ${opt[resume]} in
  auto)
    newest=$(find "$ckpts" -mindepth 2 -maxdepth 2 -name COMMITTED 2>/dev/null | sort | tail -1)
    if [[ -n $newest ]]; then
      d=$(dirname "$newest"); step=$((10#${d##*step-})); loss=$(<"$d/state")
    fi ;;
  never) ;;
  *) [[ -f ${opt[resume]}/COMMITTED ]] || die "--resume ${opt[resume]}: not a committed checkpoint"
     step=$((10#${opt[resume]##*step-})); loss=$(<"${opt[resume]}/state") ;;
esac

stop=0
trap 'stop=1' USR1 TERM   # only a flag: acted on at the next step boundary

if ((rank == 0)); then
  mkdir -p "$out"
  if ((step == 0)); then : >"$out/metrics.jsonl"; fi
  echo "mock-medgpt: $stage from step $step to $max_steps, model ${opt[model.path]:-from scratch}" >&2
fi

checkpoint() {
  local d
  d=$ckpts/$(printf 'step-%08d' "$step")
  [[ -f $d/COMMITTED ]] && return
  mkdir -p "$d"
  echo "$loss" >"$d/state"
  echo "$step" >"$d/COMMITTED"
}

while ((step < max_steps)); do
  sleep "${MOCK_STEP_SECONDS:-0.3}"
  step=$((step + 1))
  # deterministic, state-dependent: 0.9 * previous + a step-dependent term
  loss=$(awk -v x="$loss" -v n="$step" 'BEGIN { printf "%.12f", 0.9 * x + 0.1 * (1 + ((n * 37) % 11) / 11) }')
  if ((rank == 0)); then
    printf '{"step":%d,"loss":%s}\n' "$step" "$loss" >>"$out/metrics.jsonl"
    if ((save_steps > 0 && step % save_steps == 0)); then checkpoint; fi
  fi
  if ((stop)); then
    if ((rank == 0)); then
      checkpoint
      echo "mock-medgpt: signal: checkpoint at step $step, exit 99" >&2
      echo "$step" >"$out/.mock-stopped.$PPID"   # the other ranks of this launch wait for it
    else
      for _ in $(seq 300); do [[ -f $out/.mock-stopped.$PPID ]] && break; sleep 0.1; done
    fi
    exit 99
  fi
done

if ((rank == 0)); then
  mkdir -p "$out/final.tmp"
  printf '{"stage":"%s","steps":%d,"loss":%s}\n' "$stage" "$step" "$loss" >"$out/final.tmp/model.json"
  rm -rf "$out/final" && mv "$out/final.tmp" "$out/final"
  rm -f "$out"/.mock-stopped.*
  echo "mock-medgpt: done, $out/final" >&2
fi
exit 0
