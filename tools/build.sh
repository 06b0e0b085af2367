#!/usr/bin/env bash
# Configures and builds medgpt into build/ (Release, Ninja, ccache when present).
#   tools/build.sh [extra cmake args, e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MEDGPT_BUILD_DIR:-$root/build}"
jobs="${MEDGPT_BUILD_JOBS:-$(nproc)}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
elif (($#)); then
  cmake "$build" "$@" >/dev/null
fi
cmake --build "$build" -j "$jobs"
