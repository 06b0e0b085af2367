#!/usr/bin/env bash
# Fuzzes medgpt's parsers with libFuzzer under ASan + UBSan (a separate clang build in build-fuzz/).
#   tools/fuzz.sh TARGET SECONDS    run one target: records chat_template tokenizer safetensors config ini serve_request
#   tools/fuzz.sh all SECONDS       each target in turn, SECONDS each
#   tools/fuzz.sh --build           only build the targets
# Starts from the seeds in tests/fuzz/corpus/TARGET (never written to: new inputs go to a scratch
# corpus) and first replays tests/fuzz/regressions/TARGET/*, the inputs of crashes found and fixed.
# Prints one line per target: executions, coverage (edges, features), corpus size and crashes; a
# crash leaves its input in build-fuzz/crashes/ and the exit code is 1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MEDGPT_FUZZ_BUILD_DIR:-$root/build-fuzz}"
targets=(records chat_template tokenizer safetensors config ini serve_request)
"$root/tools/setup.sh"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEDGPT_FUZZ=ON >/dev/null
fi
cmake --build "$build" -j "${MEDGPT_BUILD_JOBS:-$(nproc)}" >/dev/null
[[ "${1:-}" == --build ]] && exit 0

what=${1:?usage: tools/fuzz.sh TARGET|all SECONDS}
secs=${2:?usage: tools/fuzz.sh TARGET|all SECONDS}
if [[ $what == all ]]; then list=("${targets[@]}"); else list=("$what"); fi
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
mkdir -p "$build/crashes"
status=0
for t in "${list[@]}"; do
  bin="$build/tests/fuzz/fuzz_$t"
  [[ -x $bin ]] || { echo "fuzz: no target '$t' (one of: ${targets[*]})" >&2; exit 2; }
  log="$build/fuzz_$t.log"
  # Regressions first: each input once.
  shopt -s nullglob
  regress=("$root"/tests/fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if ((${#regress[@]})) && ! "$bin" "${regress[@]}" > "$log" 2>&1; then
    echo "fuzz $t: a regression input fails again (see $log)"
    status=1
    continue
  fi
  scratch=$(mktemp -d)
  rc=0
  "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -max_len=8192 -timeout=10 \
    -artifact_prefix="$build/crashes/$t-" "$scratch" "$root/tests/fuzz/corpus/$t" > "$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' <<< "$last" | grep -o '[0-9]*' || echo 0)
  ft=$(grep -o 'ft: [0-9]*' <<< "$last" | grep -o '[0-9]*' || echo 0)
  corp=$(grep -o 'corp: [0-9]*' <<< "$last" | grep -o '[0-9]*' || echo 0)
  crashes=$(grep -c '^artifact_prefix\|Test unit written to' "$log" || true)
  echo "fuzz $t: ${execs} executions in ${secs} s, coverage ${cov} edges (${ft} features), corpus ${corp} inputs, crashes ${crashes}"
  if ((rc != 0)); then
    echo "fuzz $t: crash (exit $rc): $(grep -m1 -E 'ERROR|runtime error|deadly signal' "$log" || true); input in $build/crashes/ (log $log)"
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
