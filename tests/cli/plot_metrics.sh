#!/usr/bin/env bash
# tools/plot-metrics: a small metrics.jsonl (train lines, eval lines, a resumed step) gives
# loss.png, lr.png and throughput.png, real PNGs, their paths printed (and rewards.png for a
# preference run); a run folder without
# metrics.jsonl, one without rows and one with a broken line each give one error line and a
# non-zero exit.
set -uo pipefail
: "${MEDGPT_SOURCE_DIR:?}"
tool="$MEDGPT_SOURCE_DIR/tools/plot-metrics"
for c in jq gnuplot; do command -v "$c" > /dev/null || { echo "FAIL $c missing: run tools/setup.sh"; exit 1; }; done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails+1)); }

mkdir -p "$work/run"
for s in $(seq 1 40); do
  jq -nc --argjson s "$s" '{step: $s, epoch: ($s / 20), loss: (4 / $s + 1.5), lr: (0.0003 * $s / 40),
    grad_norm: 1.1, tokens: ($s * 4096), tokens_per_s: (20000 + $s), mfu: 0.31, time_s: ($s * 0.2)}
    + (if $s % 10 == 0 then {eval_loss: (4 / $s + 1.7), eval_ppl: 6.1} else {} end)'
done > "$work/run/metrics.jsonl"
# A resumed run appends steps it had already logged: the later lines win, no error.
jq -nc '{step: 39, epoch: 1.95, loss: 1.6, lr: 0.0003, tokens_per_s: 19000, mfu: 0.3}' >> "$work/run/metrics.jsonl"

# Into OUT_DIR (created), then into RUN_DIR by default.
if "$tool" "$work/run" "$work/plots" > "$work/stdout" 2> "$work/stderr"; then ok "plot-metrics ran"
else bad "plot-metrics exit $?: $(cat "$work/stderr")"; fi
printf '%s\n' "$work/plots/loss.png" "$work/plots/lr.png" "$work/plots/throughput.png" > "$work/want"
if cmp -s "$work/want" "$work/stdout"; then ok "printed the paths written"
else bad "stdout: $(cat "$work/stdout")"; fi
for f in loss lr throughput; do
  png="$work/plots/$f.png"
  magic=$(head -c 8 "$png" 2> /dev/null | od -An -tx1 | tr -d ' \n')
  if [[ $magic == 89504e470d0a1a0a && $(stat -c %s "$png") -gt 2000 ]]; then ok "$f.png is a PNG ($(stat -c %s "$png") bytes)"
  else bad "$f.png: magic '$magic'"; fi
done
"$tool" "$work/run" > "$work/stdout" 2> "$work/stderr"
if [[ $(wc -l < "$work/stdout") -eq 3 && -s "$work/run/loss.png" ]]; then ok "OUT_DIR defaults to RUN_DIR"
else bad "default OUT_DIR: $(cat "$work/stdout" "$work/stderr")"; fi

# A preference run (rewards/* metrics) also gets rewards.png.
mkdir -p "$work/dpo"
for s in $(seq 1 10); do
  jq -nc --argjson s "$s" '{step: $s, loss: 0.69, lr: 0.0001, tokens_per_s: 900, mfu: 0.2, "rewards/chosen": ($s / 100),
    "rewards/rejected": (-$s / 100), "rewards/margins": ($s / 50)} + (if $s == 10 then {"eval_rewards/margins": 0.15} else {} end)'
done > "$work/dpo/metrics.jsonl"
"$tool" "$work/dpo" > "$work/stdout" 2> "$work/stderr"
magic=$(head -c 8 "$work/dpo/rewards.png" 2> /dev/null | od -An -tx1 | tr -d ' \n')
if [[ $magic == 89504e470d0a1a0a ]] && grep -qx "$work/dpo/rewards.png" "$work/stdout"; then ok "a preference run gets rewards.png"
else bad "rewards.png: magic '$magic', stdout $(cat "$work/stdout")"; fi

# expect_error NAME PATTERN ARGS...: non-zero exit, one stderr line "plot-metrics: error: ...PATTERN", no PNG
expect_error() {
  local name=$1 pattern=$2; shift 2
  rm -rf "$work/out"
  "$tool" "$@" "$work/out" > "$work/stdout" 2> "$work/stderr"
  local rc=$? lines; lines=$(grep -c . "$work/stderr")
  if [[ $rc -eq 0 ]]; then bad "$name: exit 0"
  elif [[ $lines -ne 1 ]]; then bad "$name: $lines stderr lines: $(cat "$work/stderr")"
  elif ! grep -qE -- "^plot-metrics: error: .*$pattern" "$work/stderr"; then bad "$name: '$(cat "$work/stderr")' lacks /$pattern/"
  elif compgen -G "$work/out/*.png" > /dev/null; then bad "$name: a PNG was written"
  else ok "$name: $(cat "$work/stderr")"; fi
}
mkdir -p "$work/empty_run" "$work/no_rows" "$work/broken"
expect_error "no metrics.jsonl" "empty_run/metrics.jsonl: no such file" "$work/empty_run"
expect_error "no run folder" "nope: no such folder" "$work/nope"
printf '{"epoch": 1}\n\n' > "$work/no_rows/metrics.jsonl"
expect_error "no rows" "no_rows/metrics.jsonl: no rows" "$work/no_rows"
printf '{"step": 1, "loss": 2}\n{"step": 2, "loss": \n' > "$work/broken/metrics.jsonl"
expect_error "broken line" "broken/metrics.jsonl: not JSON lines" "$work/broken"
"$tool" > /dev/null 2>&1
rc=$?
if [[ $rc -eq 2 ]]; then ok "no arguments: usage, exit 2"; else bad "no arguments: exit $rc, not 2"; fi

echo "$fails failures"
[[ $fails -eq 0 ]]
