#!/usr/bin/env bash
# The training loader on a corpus larger than the memory it is given: writes a 2 GB synthetic pt
# corpus (medgpt data synth), then serves batches from it (medgpt data bench-loader) inside a cgroup
# limited to 512 MB of memory when this machine lets us make one (cgroup v1 or v2, as root), and
# prints batches/s, tokens/s, MB/s of corpus read and the peak resident memory.
#   tools/bench-loader.sh [GB] [BATCHES]      (default 2 GB, 20000 batches of 8 x 1024)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
medgpt="${MEDGPT_BUILD_DIR:-$root/build}/medgpt"
gb="${1:-2}" batches="${2:-20000}"
work=$(mktemp -d -p "${TMPDIR:-/var/tmp}"); group=""
cleanup() {
  rm -rf "$work"
  if [[ -n $group ]]; then rmdir "$group" 2>/dev/null || true; fi
}
trap cleanup EXIT

"$medgpt" data synth --gb "$gb" --output "$work/big.h5"
ls -l "$work/big.h5" | awk '{printf "corpus file: %.2f GB\n", $5 / 1e9}'
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true   # cold page cache when allowed

limit=$((512 * 1024 * 1024))
run=("$medgpt" data bench-loader --corpus "$work/big.h5" --batches "$batches")
if [[ $(id -u) -eq 0 && -d /sys/fs/cgroup/memory && -w /sys/fs/cgroup/memory ]]; then  # cgroup v1
  group=/sys/fs/cgroup/memory/medgpt-bench-loader-$$
  mkdir "$group" && echo "$limit" > "$group/memory.limit_in_bytes"
  echo "memory limit: 512 MB (cgroup v1 $group)"
  bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$group" "${run[@]}"
  echo "cgroup peak memory (page cache included): $(($(cat "$group/memory.max_usage_in_bytes") / 1048576)) MB"
elif [[ $(id -u) -eq 0 && -w /sys/fs/cgroup/cgroup.subtree_control ]]; then  # cgroup v2
  group=/sys/fs/cgroup/medgpt-bench-loader-$$
  mkdir "$group" && echo "$limit" > "$group/memory.max"
  echo "memory limit: 512 MB (cgroup v2 $group)"
  bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$group" "${run[@]}"
else
  echo "no memory cgroup available here: running without a limit (the peak RSS below still shows the footprint)"
  "${run[@]}"
fi
