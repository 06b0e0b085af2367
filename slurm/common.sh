# shellcheck shell=bash
# slurm/common.sh: what every slurm/<stage>.sbatch does, in one place. Sourced, not run.
#
#   medgpt_stage STAGE CONFIG.ini [--section.key value ...]
#
# runs `medgpt train --stage STAGE --config CONFIG.ini --output-dir OUTDIR [overrides...]` on the
# job's ranks and handles preemption (specs/slurm-local.md §3, DESIGN.md §6):
#
# - OUTDIR is ${MEDGPT_RUNS:-$SLURM_SUBMIT_DIR/runs}/STAGE unless the overrides name --output-dir.
#   A relative CONFIG is read from the job's working folder (the folder sbatch was called from).
# - The binary: $MEDGPT_BIN, else `medgpt` on PATH, else <repo>/build/medgpt, where <repo> is
#   $MEDGPT_REPO (the sbatch files set it; see there how they find the repository).
# - Launch: `mpirun -np <tasks>` (MEDGPT_LAUNCHER=srun: `srun --mpi=pmix`), in the background. Bash
#   runs a trap only after its foreground child ends, so the script waits on the background launcher
#   instead, and a signal is handled at once.
# - SIGUSR1 (sent by Slurm before the time limit through `#SBATCH --signal=B:USR1@<lead>`, by a
#   preemption, or by `scancel --signal=USR1 --batch`) reaches only this shell: it is forwarded to the
#   launcher, which forwards it to the ranks. medgpt then checkpoints at the next step boundary and
#   exits 99 on every rank. On 99 this script runs `scontrol requeue $SLURM_JOB_ID` and exits 0: the
#   job goes back to the queue (held ~cred_expire seconds) and reruns with SLURM_RESTART_COUNT set;
#   medgpt's default `--resume auto` continues from the newest committed checkpoint. Slurm itself
#   never requeues a job that reaches its time limit, hence the self-requeue.
# - SIGTERM (scancel, the time limit's kill, or a requeue decided by Slurm) is forwarded as SIGUSR1 too,
#   so a checkpoint may still land within KillWait; the job is then not requeued by this script.
# - Any other exit code of medgpt is the job's exit code (a failed job: afterok dependents never run).
#
# Outside Slurm (`bash slurm/pt.sbatch CONFIG ...`) the same runs with MEDGPT_NP ranks (default 1).
# Knobs: MEDGPT_BIN, MEDGPT_RUNS, MEDGPT_NP, MEDGPT_LAUNCHER (mpirun|srun),
#        MEDGPT_MPIRUN_ARGS (default "--bind-to none": each rank uses its SLURM_CPUS_PER_TASK threads
#        without being pinned to one core).

MEDGPT_PREEMPTED_EXIT=99   # medgpt's "checkpointed after a signal, please requeue" exit code

medgpt_log() { # "[medgpt-slurm 2026-11-23 14:38:10.123] ..." on stderr (the job log)
  local t=${EPOCHREALTIME:-$(date +%s.%N)}
  printf '[medgpt-slurm %(%F %T)T.%s] %s\n' "${t%.*}" "$(printf %.3s "${t#*.}")" "$*" >&2
}

# The binary: $MEDGPT_BIN, `medgpt` on PATH, <repo>/build/medgpt.
medgpt_find_bin() {
  local b
  for b in "${MEDGPT_BIN:-}" "$(command -v medgpt 2>/dev/null)" "${MEDGPT_REPO:-.}/build/medgpt"; do
    if [[ -n $b && -x $b && ! -d $b ]]; then
      realpath -- "$b"
      return 0
    fi
  done
  medgpt_log "error: no medgpt binary: set MEDGPT_BIN, put medgpt on PATH, or build ${MEDGPT_REPO:-<repo>}/build/medgpt (tools/build.sh)"
  return 1
}

# Ranks: the job's tasks under Slurm (sbatch sets SLURM_NTASKS only when -n/--ntasks-per-node is given).
medgpt_ntasks() {
  if [[ -n ${SLURM_NTASKS:-} ]]; then
    echo "$SLURM_NTASKS"
  elif [[ -n ${SLURM_NTASKS_PER_NODE:-} && -n ${SLURM_NNODES:-} ]]; then
    local per=${SLURM_NTASKS_PER_NODE%%[!0-9]*}   # "2" or "2(x3)"
    echo $((per * SLURM_NNODES))
  elif [[ -n ${SLURM_JOB_ID:-} ]]; then
    echo "${SLURM_NNODES:-1}"
  else
    echo "${MEDGPT_NP:-1}"
  fi
}

medgpt_stage() {
  local stage=$1
  shift
  if [[ $# -lt 1 || $1 == -* ]]; then
    medgpt_log "usage: sbatch slurm/$stage.sbatch CONFIG.ini [--section.key value ...]"
    return 2
  fi
  local config=$1
  shift
  if [[ ! -f $config ]]; then
    medgpt_log "error: config $config not found (relative paths are read from $PWD); give an existing CONFIG.ini"
    return 2
  fi
  config=$(realpath -- "$config")

  local bin
  bin=$(medgpt_find_bin) || return 2

  # --output-dir from the overrides, else the default
  local outdir="" a prev=""
  for a in "$@"; do
    [[ $prev == --output-dir ]] && outdir=$a
    [[ $a == --output-dir=* ]] && outdir=${a#--output-dir=}
    prev=$a
  done
  local extra=()
  if [[ -z $outdir ]]; then
    outdir=${MEDGPT_RUNS:-${SLURM_SUBMIT_DIR:-$PWD}/runs}/$stage
    extra=(--output-dir "$outdir")
  fi

  local np cores per_node cpt
  np=$(medgpt_ntasks)
  cores=$(getconf _NPROCESSORS_ONLN)
  per_node=$(((np + ${SLURM_NNODES:-1} - 1) / ${SLURM_NNODES:-1}))
  # Threads per rank (medgpt's --threads default reads OMP_NUM_THREADS first): the job's cpus-per-task
  # (over an OMP_NUM_THREADS that sbatch copied from the submitting shell), else OMP_NUM_THREADS, else
  # the node's CPUs shared out among its ranks (the ranks are not bound, so the affinity mask would
  # give each rank every core). The same layout gives the same losses.
  if [[ -n ${SLURM_CPUS_PER_TASK:-} ]]; then
    export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
  elif [[ -z ${OMP_NUM_THREADS:-} ]]; then
    local avail=${SLURM_CPUS_ON_NODE:-$cores}
    export OMP_NUM_THREADS=$(((avail / per_node) > 0 ? avail / per_node : 1))
  fi
  cpt=${OMP_NUM_THREADS:-1}

  # Open MPI refuses to run as root unless told.
  if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
  # More ranks (x threads) than cores on a node: idle ranks must yield, or collectives run ~10x slower
  # (inside Slurm, Open MPI does not know it is oversubscribed).
  if ((per_node * cpt > cores)) && [[ -z ${OMPI_MCA_mpi_yield_when_idle:-} ]]; then
    export OMPI_MCA_mpi_yield_when_idle=1
  fi
  # Large allreduces: keep freed buffers instead of a fresh mmap (page faults) per call, ~8x faster.
  export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-2147483647}
  export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-4294967295}

  local launch=()
  if [[ ${MEDGPT_LAUNCHER:-mpirun} == srun && -n ${SLURM_JOB_ID:-} ]]; then
    launch=(srun --mpi=pmix --kill-on-bad-exit=1 -n "$np")
  else
    # shellcheck disable=SC2206  # a list of options, split on purpose
    launch=(mpirun -np "$np" ${MEDGPT_MPIRUN_ARGS---bind-to none}
            -x MALLOC_MMAP_THRESHOLD_ -x MALLOC_TRIM_THRESHOLD_)
    [[ -n ${OMP_NUM_THREADS:-} ]] && launch+=(-x OMP_NUM_THREADS)
    # outside Slurm there are no slots to count: allow more ranks than cores
    [[ -z ${SLURM_JOB_ID:-} ]] && ((np > cores)) && launch+=(--oversubscribe)
  fi
  local cmd=("${launch[@]}" "$bin" train --stage "$stage" --config "$config" "${extra[@]}" "$@")

  medgpt_log "stage $stage, job ${SLURM_JOB_ID:-(not under Slurm)}, restart ${SLURM_RESTART_COUNT:-0}, $np rank(s) x $cpt cpu(s) on ${SLURM_JOB_NODELIST:-$(hostname -s)}, output $outdir"
  medgpt_log "run: $(printf '%q ' "${cmd[@]}")"

  # Traps first: a signal before the launcher exists must not kill this shell (USR1's default action).
  local child="" got_usr1=0 got_term=0 interrupted=0
  trap 'interrupted=1; got_usr1=1; medgpt_log "SIGUSR1: forwarding to medgpt (checkpoint at the next step, then exit $MEDGPT_PREEMPTED_EXIT)"; [[ -n $child ]] && kill -USR1 "$child" 2>/dev/null' USR1
  trap 'interrupted=1; got_term=1; medgpt_log "SIGTERM: asking medgpt to checkpoint before Slurm kills the job"; [[ -n $child ]] && kill -USR1 "$child" 2>/dev/null' TERM

  "${cmd[@]}" &
  child=$!
  ((got_usr1 || got_term)) && kill -USR1 "$child" 2>/dev/null

  # A trapped signal makes `wait` return early (status > 128) while the launcher still runs: wait
  # again. bash keeps the launcher's status, so the next `wait` returns it even once it has ended.
  local rc
  while :; do
    interrupted=0
    wait "$child"
    rc=$?
    ((interrupted && rc > 128)) || break
  done
  # From here on a signal changes nothing (e.g. the SIGTERM that follows our own requeue).
  trap '' USR1 TERM
  medgpt_log "medgpt exited with $rc"

  if ((rc == MEDGPT_PREEMPTED_EXIT)); then
    if ((got_term)); then
      medgpt_log "checkpointed after SIGTERM: cancelled, timed out or requeued by Slurm; not requeueing"
      return "$rc"
    fi
    if [[ -z ${SLURM_JOB_ID:-} ]]; then
      medgpt_log "checkpointed and stopped; run the same command again to resume"
      return "$rc"
    fi
    if scontrol requeue "$SLURM_JOB_ID"; then
      medgpt_log "checkpointed; requeued job $SLURM_JOB_ID (the rerun resumes from the newest checkpoint)"
      return 0
    fi
    medgpt_log "error: scontrol requeue $SLURM_JOB_ID failed (job submitted with --no-requeue?); resume by submitting again"
  fi
  return "$rc"
}
