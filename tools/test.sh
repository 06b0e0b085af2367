#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian 12 machine: packages, build, then ctest
# (unit tests, MPI tests under mpirun -np 2 and -np 4, command-line and reference tests, the fuzz
# targets' regressions and a short run of each).
#   tools/test.sh [ctest args, e.g. -L unit or -R tokenizer]
#   tools/test.sh --sanitize [ctest args]
#       the same suite built with ASan + UBSan (build-asan/; any report fails its test), then the
#       serve and batch-worker tests built with TSan (build-tsan/). By hand: two more full builds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Ranks may outnumber cores in the MPI tests: yield instead of spinning (10x faster collectives).
export OMPI_MCA_mpi_yield_when_idle=1
"$root/tools/setup.sh"
# The libFuzzer targets (clang, ASan + UBSan, build-fuzz/): tests/cli/fuzz.sh runs each briefly.
"$root/tools/fuzz.sh" --build

if [[ "${1:-}" != --sanitize ]]; then
  "$root/tools/build.sh"
  cd "${MEDGPT_BUILD_DIR:-$root/build}"
  ctest --output-on-failure -j "$(nproc)" "$@"
  exit
fi
shift
supp="$root/tests/sanitize"
status=0

# ASan + UBSan: the whole suite. Leaks inside Open MPI's one-time state are theirs (lsan.supp); its
# components stay loaded (no_dlclose.c, preloaded) so that LeakSanitizer can name their frames.
asan="${MEDGPT_ASAN_BUILD_DIR:-$root/build-asan}"
MEDGPT_BUILD_DIR="$asan" "$root/tools/build.sh" -DMEDGPT_SANITIZE=address -DCMAKE_BUILD_TYPE=RelWithDebInfo
cc -shared -fPIC -O2 -o "$asan/libno_dlclose.so" "$supp/no_dlclose.c"
(
  cd "$asan"
  export LD_PRELOAD="$asan/libno_dlclose.so"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_odr_violation=0:verify_asan_link_order=0:suppressions=$supp/asan.supp"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
  ctest --output-on-failure -j "$(nproc)" --timeout 2400 "$@"
) || status=1

# TSan: the threads of `medgpt serve` (HTTP handlers, the batch worker, stream finishers, the stop
# watcher) and BatchWorker's own tests. One OpenMP thread: libgomp is not instrumented, and TSan
# cannot see its barriers.
tsan="${MEDGPT_TSAN_BUILD_DIR:-$root/build-tsan}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
[[ -f "$tsan/CMakeCache.txt" ]] || cmake -S "$root" -B "$tsan" "${generator[@]}" -DMEDGPT_SANITIZE=thread -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$tsan" -j "${MEDGPT_BUILD_JOBS:-$(nproc)}" --target medgpt medgpt_unit_tests bench_serve_client
(
  cd "$tsan"
  export OMP_NUM_THREADS=1
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
  ctest --output-on-failure -R 'BatchWorker|ServeRequest|StopText|cli_serve_chat'
) || status=1
exit $status
