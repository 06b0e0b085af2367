#!/usr/bin/env bash
# The one place that names the packages medgpt needs (Debian 12). Idempotent: when everything is
# installed it only checks and returns; otherwise one `apt-get update`, then one install.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config git
  # libFuzzer + ASan/UBSan for tools/fuzz.sh (clang pulls its sanitizer runtimes)
  clang
  # tensors (LibTorch 1.13 CPU) and a fast BLAS: Debian's LibTorch links the reference BLAS,
  # fp32 matmul runs 15x slower without OpenBLAS' OpenMP build
  libtorch-dev libopenblas0-openmp
  # launch, process groups and CPU collectives
  libopenmpi-dev openmpi-bin
  # corpora and checkpoints
  libhdf5-dev
  # a real single-node Slurm for slurm/*.sbatch and the e2e tests (tools/local-slurm.sh; no accounting)
  slurmctld slurmd slurm-client munge
  # HTTP server of `medgpt serve` (cpp-httplib)
  libcpp-httplib-dev
  # options (INI + command line)
  libboost-program-options-dev
  # tests
  libgtest-dev libgmock-dev
  # JSON, Unicode regex (pre-tokenizer \p{L}/\p{N}), Unicode normalization (NFC)
  nlohmann-json3-dev libpcre2-dev libutf8proc-dev
  # gzip-compressed JSONL inputs; SHA-256 of corpus sources and tokenizers
  zlib1g-dev libssl-dev
  # reference tokenizer for the tests only (npm package `tokenizers`, HF's Rust implementation)
  nodejs npm
  # misc tools the scripts use; gnuplot for tools/plot-metrics
  jq python3 gzip bc gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# node/npm may come from outside Debian (nodesource, nvm): accept a working one
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if command -v python3 >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == python3 ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present" >&2
fi

# Test-time reference implementations (npm registry): Hugging Face `tokenizers` (Rust, Node binding)
# and `@huggingface/jinja`, pinned by tests/reference/package-lock.json.
ref_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/reference"
if [[ ! -d "$ref_dir/node_modules/tokenizers" || ! -d "$ref_dir/node_modules/@huggingface/jinja" ||
      ! -d "$ref_dir/node_modules/protobufjs" || ! -d "$ref_dir/node_modules/crc-32" ]]; then
  echo "setup: npm ci in tests/reference" >&2
  (cd "$ref_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
