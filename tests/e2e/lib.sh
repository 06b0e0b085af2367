# shellcheck shell=bash
# tests/e2e/lib.sh: what the e2e tests share (sourced by tests/e2e/e2e_*.sh, not a test itself).
#
# Each test runs against a real single-node Slurm (tools/local-slurm.sh start, if it is not up yet),
# submits its jobs from a fresh work folder, polls `scontrol show job -o` every 0.2 s (never
# `sbatch --wait`, which polls slowly), stops at a deadline, and cancels its unfinished jobs on exit.
# It exits 0 on pass, 1 on fail (keeping the work folder and printing the job logs), 77 to skip
# (not root, or the Slurm packages missing).
#
# Environment:
#   MEDGPT_BIN or MEDGPT   the medgpt binary (absolute path); MEDGPT_BIN wins, so a stand-in such as
#                          tests/e2e/mock-medgpt.sh can replace the MEDGPT that ctest sets
#   MEDGPT_SOURCE_DIR      the repository (default: two folders up from this file)
#   MEDGPT_E2E_CONFIG_DIR  pt.ini, sft.ini and dpo.ini to train with (default: tiny ones, see e2e_configs)
#   MEDGPT_E2E_STEPS       --train.max_steps of each run (default 20 for the preemption test, 6 otherwise)
#   MEDGPT_E2E_ARGS        more overrides for every run (e.g. "--train.micro_batch_size 1")
#   MEDGPT_E2E_TIMEOUT     seconds before the test gives up (default 300)
#   MEDGPT_E2E_KEEP=1      keep the work folder even when the test passes
set -uo pipefail

e2e_name=$(basename "$0" .sh)
e2e_cwd=$PWD
e2e_t0=$SECONDS
e2e_failures=0
e2e_jobs=()
e2e_pids=()
e2e_work=""

say() { echo "[$e2e_name] $*"; }
skip() { say "SKIP: $*"; exit 77; }
fail() { say "FAIL: $*"; e2e_failures=$((e2e_failures + 1)); exit 1; }
# check DESCRIPTION 'CONDITION': evaluates the condition (a string, as in tests/cli), prints ok/FAIL,
# counts failures and goes on
check() {
  if eval "$2"; then say "ok   $1"; else say "FAIL $1"; e2e_failures=$((e2e_failures + 1)); fi
}

# ---- preconditions: skip (77) where a real Slurm cannot run here
[[ $(id -u) -eq 0 ]] || skip "needs root (the local Slurm's daemons run as root)"
for b in slurmctld slurmd munged sbatch scontrol scancel squeue; do
  command -v "$b" >/dev/null || skip "$b not found: the Slurm packages are missing (tools/setup.sh installs slurmctld slurmd slurm-client munge)"
done
for b in jq mpirun; do command -v "$b" >/dev/null || skip "$b not found (tools/setup.sh installs it)"; done

repo=$(cd "${MEDGPT_SOURCE_DIR:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
export MEDGPT_BIN=${MEDGPT_BIN:-${MEDGPT:-}}
[[ -n $MEDGPT_BIN ]] || fail "set MEDGPT (or MEDGPT_BIN) to the medgpt binary, e.g. MEDGPT=$repo/build/medgpt, or MEDGPT=$repo/tests/e2e/mock-medgpt.sh"
[[ -x $MEDGPT_BIN ]] || fail "MEDGPT_BIN=$MEDGPT_BIN is not executable"
MEDGPT_BIN=$(realpath "$MEDGPT_BIN")
unset MEDGPT_REPO   # the jobs must find the repository themselves, as a user's would
e2e_deadline=$((SECONDS + ${MEDGPT_E2E_TIMEOUT:-300}))
# Jobs and any reference run may share the 2 cores: idle MPI ranks must yield (spec §4).
export OMPI_MCA_mpi_yield_when_idle=1
# shellcheck disable=SC2206,SC2034  # user-given overrides, split on purpose; used by the tests
e2e_args=(${MEDGPT_E2E_ARGS:-})

if ! "$repo/tools/local-slurm.sh" status >/dev/null 2>&1; then
  say "starting the local Slurm (tools/local-slurm.sh start)"
  "$repo/tools/local-slurm.sh" start >/dev/null || fail "tools/local-slurm.sh start failed"
fi

e2e_work=$(mktemp -d "/tmp/medgpt-$e2e_name.XXXXXX")
export MEDGPT_RUNS=$e2e_work/runs
# Jobs are submitted from the repository root, as a user would: the configs in inputs/ name their
# files relative to it. Everything the tests write goes to $e2e_work (absolute paths).
cd "$repo" || exit 1

e2e_cleanup() {
  local rc=$? id st pid
  trap - EXIT INT TERM
  for pid in "${e2e_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for id in "${e2e_jobs[@]}"; do
    st=$(jstate "$id")
    case $st in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | "") ;; *) scancel "$id" 2>/dev/null ;; esac
  done
  ((e2e_failures)) && rc=1
  if ((rc == 0)); then
    [[ ${MEDGPT_E2E_KEEP:-0} == 1 ]] || rm -rf "$e2e_work"
    say "PASS in $((SECONDS - e2e_t0)) s"
  elif ((rc != 77)); then
    local f
    while IFS= read -r f; do echo "----- $f (last 30 lines)"; tail -n 30 "$f"; done < <(find "$e2e_work" -name '*.out' -o -name '*.log' | sort)
    say "FAILED ($e2e_failures check(s)) after $((SECONDS - e2e_t0)) s; work folder kept: $e2e_work"
  fi
  exit "$rc"
}
trap e2e_cleanup EXIT
trap 'say "interrupted"; exit 1' INT TERM

# ---- job state through `scontrol show job -o` (no accounting needed; kept for MinJobAge=3600 s)
jfield() { scontrol show job -o "$1" 2>/dev/null | sed -n "s|.* $2=\([^ ]*\).*|\1|p"; }
jstate() { jfield "$1" JobState; }
jepoch() { local t; t=$(jfield "$1" "$2"); [[ $t =~ ^[0-9]{4}- ]] && date -d "$t" +%s; }
# track ID...: cancelled on exit unless finished; track_pid PID...: background runs, killed on exit
track() { e2e_jobs+=("$@"); }
track_pid() { e2e_pids+=("$@"); }
# wait_for DESCRIPTION SECONDS 'CONDITION': poll every 0.2 s until the condition (evaluated) holds;
# 1 on timeout (or at the test's deadline)
wait_for() {
  local what=$1 limit=$2 cond=$3
  local end=$((SECONDS + limit))
  ((end > e2e_deadline)) && end=$e2e_deadline
  until eval "$cond"; do
    if ((SECONDS >= end)); then say "timed out after ${limit} s waiting for $what"; return 1; fi
    sleep 0.2
  done
}
is_state() { [[ $(jstate "$1") =~ ^($2)$ ]]; }   # is_state ID 'COMPLETED|FAILED'
finished() { is_state "$1" 'COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The config folder: MEDGPT_E2E_CONFIG_DIR, else tiny pt/sft configs written here: the 0.6M-parameter
# Qwen3 of tests/fixtures/train on the bundled data and tokenizer (absolute paths: jobs run in the
# folder sbatch was called from), 2 ranks x 1 thread, steps of ~0.1-0.3 s.
e2e_configs() {
  if [[ -n ${MEDGPT_E2E_CONFIG_DIR:-} ]]; then
    (cd "$e2e_cwd" && cd "$MEDGPT_E2E_CONFIG_DIR" && pwd)
    return
  fi
  mkdir -p "$e2e_work/configs"
  cat >"$e2e_work/configs/pt.ini" <<INI
[model]
config = $repo/tests/fixtures/train/tiny-qwen3.json
tokenizer = $repo/inputs/tokenizer
[data]
train = $repo/inputs/data/pt
block_size = 64
[train]
micro_batch_size = 8
global_batch_size = 16
learning_rate = 3e-3
save_steps = 10
peak_flops = 1e11
INI
  cat >"$e2e_work/configs/sft.ini" <<INI
[data]
train = $repo/inputs/data/sft
max_length = 128
[train]
micro_batch_size = 4
global_batch_size = 8
learning_rate = 1e-3
peak_flops = 1e11
INI
  cat >"$e2e_work/configs/dpo.ini" <<INI
[data]
train = $repo/inputs/data/reward/medical_pref.jsonl
max_length = 128
[train]
micro_batch_size = 2
global_batch_size = 4
learning_rate = 1e-3
peak_flops = 1e11
INI
  echo "$e2e_work/configs"
}

# Training steps in a metrics.jsonl (lines with a loss; a line being written is skipped): "1 2 3 ..."
steps_of() { jq -R -r 'fromjson? | select(.loss != null) | .step' "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
# [step, loss] of each training step, one per line
losses_of() { jq -R -c 'fromjson? | select(.loss != null) | [.step, .loss]' "$1" 2>/dev/null; }
# the last training step logged, 0 if none
last_step() { local s; s=$(steps_of "$1"); s=${s##* }; echo "${s:-0}"; }
