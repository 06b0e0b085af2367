#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian 12 machine: packages, build, then ctest
# (unit tests, MPI tests under mpirun -np 2 and -np 4, command-line and reference tests, the fuzz
# targets' regressions and a short run of each).
#   tools/test.sh [ctest args, e.g. -L unit or -R tokenizer]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
"$root/tools/build.sh"
# The libFuzzer targets (clang, ASan + UBSan, build-fuzz/): tests/cli/fuzz.sh runs each briefly.
"$root/tools/fuzz.sh" --build
cd "${MEDGPT_BUILD_DIR:-$root/build}"
# Ranks may outnumber cores in the MPI tests: yield instead of spinning (10x faster collectives).
export OMPI_MCA_mpi_yield_when_idle=1
ctest --output-on-failure -j "$(nproc)" "$@"
