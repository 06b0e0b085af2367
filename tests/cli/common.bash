# shellcheck shell=bash
# Sourced by the tests/cli/*.sh scripts (not a test itself: ctest runs *.sh only).
#   check NAME CONDITION   evaluates CONDITION (a string), prints "ok   NAME" or "FAIL NAME" and counts failures
#   mpi NP CMD...          CMD on NP ranks (oversubscribed: this machine may have fewer cores)
#   finish                 prints the failure count; the script's status is 0 only without failures
set -uo pipefail
export OMPI_MCA_mpi_yield_when_idle=1  # ranks beyond the cores must yield, or collectives crawl
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails+1)); fi; }
mpi() { "${MPIEXEC:-mpiexec}" -q -np "$1" --oversubscribe "${@:2}"; }
finish() {
  echo "$fails failed"
  [[ $fails -eq 0 ]]
}
