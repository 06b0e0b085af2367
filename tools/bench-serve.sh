#!/usr/bin/env bash
# `medgpt serve` under bounded load, on loopback only: trains a tiny Qwen3 for 30 steps (or serves
# --model DIR), starts the server with an API key and a 64 KiB body limit, and runs
# build/tools/bench_serve_client: 64 concurrent clients, chat and completion requests streamed and
# not, malformed JSON, oversized bodies, a wrong API key, streams dropped mid-way and slow readers.
# Prints throughput, p50/p99 latency by kind, unexpected outcomes by kind and what happened, and the
# server's resident memory over the run; then stops the server with SIGTERM (it must exit 0).
#   tools/bench-serve.sh [--requests 10000] [--clients 64] [--max-tokens 16] [--model DIR] [--threads 2]
# Exit 0 only if every request got its expected answer, the server survived and exited cleanly, and
# its resident memory grew less than 10% from 10% of the requests to the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MEDGPT_BUILD_DIR:-$root/build}"
medgpt="$build/medgpt"
client="$build/tools/bench_serve_client"
requests=10000 clients=64 max_tokens=16 model="" threads=2
while (($#)); do
  case $1 in
    --requests) requests=$2 ;;
    --clients) clients=$2 ;;
    --max-tokens) max_tokens=$2 ;;
    --model) model=$2 ;;
    --threads) threads=$2 ;;
    *) echo "usage: tools/bench-serve.sh [--requests N] [--clients C] [--max-tokens T] [--model DIR] [--threads T]" >&2; exit 2 ;;
  esac
  shift 2
done
[[ -x $medgpt && -x $client ]] || { echo "bench-serve: build first (tools/build.sh): $medgpt or $client is missing" >&2; exit 2; }
work=$(mktemp -d)
server=""
trap '[[ -n $server ]] && kill $server 2>/dev/null; rm -rf "$work"' EXIT
if [[ -z $model ]]; then
  "$medgpt" train --stage pt --model.config "$root/tests/fixtures/train/tiny-qwen3.json" --model.tokenizer "$root/inputs/tokenizer" \
    --data.train "$root/inputs/data/pt" --data.block_size 64 --train.max_steps 30 --train.micro_batch_size 8 --train.global_batch_size 8 \
    --train.learning_rate 3e-3 --train.peak_flops 1e11 --output-dir "$work/run" 2>/dev/null
  model="$work/run/final"
fi
body_limit=65536
OMP_NUM_THREADS=$threads "$medgpt" serve --model "$model" --port 0 --api-key bench --max-body-bytes $body_limit --max-new-tokens "$max_tokens" \
  2> "$work/serve.log" &
server=$!
for _ in $(seq 300); do grep -q "serving on" "$work/serve.log" && break; sleep 0.1; done
port=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/serve.log" | head -1 | sed 's/.*://')
[[ -n $port ]] || { echo "bench-serve: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
rc=0
"$client" --port "$port" --api-key bench --requests "$requests" --clients "$clients" --max-body-bytes $body_limit \
  --max-tokens "$max_tokens" --pid "$server" || rc=$?
kill -TERM "$server"
src=0
wait "$server" || src=$?
server=""
echo "server exit status after SIGTERM: $src"
((src == 0)) || rc=1
exit $rc
