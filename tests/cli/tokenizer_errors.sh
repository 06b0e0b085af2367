#!/usr/bin/env bash
# Bad input never crashes: one line "medgpt: error: <file>:<line>: ..." naming the file, line and
# field, a non-zero exit, and no output file left behind (one rank and two; mpiexec -q keeps
# the launcher's own notices out). Options: unknown
# options and config keys are named; the command line overrides the config file.
set -uo pipefail
: "${MEDGPT:?}" "${MEDGPT_TEST_TOKENIZERS:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fails=0
qwen="$MEDGPT_TEST_TOKENIZERS/qwen3"

# expect_error NAME PATTERN CMD...: non-zero exit, exactly one stderr line matching PATTERN, no $work/out.jsonl
expect_error() {
  local name=$1 pattern=$2; shift 2
  rm -f "$work/out.jsonl" "$work/out.jsonl.tmp"
  "$@" > /dev/null 2> "$work/err"
  local rc=$?
  local lines; lines=$(grep -c . "$work/err")
  if [[ $rc -eq 0 ]]; then echo "FAIL $name: exit 0"; fails=$((fails+1));
  elif [[ $lines -ne 1 ]]; then echo "FAIL $name: $lines stderr lines:"; cat "$work/err"; fails=$((fails+1));
  elif ! grep -qE -- "^medgpt: error: .*$pattern" "$work/err"; then echo "FAIL $name: '$(cat "$work/err")' lacks /$pattern/"; fails=$((fails+1));
  elif compgen -G "$work/out.jsonl*" > /dev/null; then echo "FAIL $name: output file left behind"; fails=$((fails+1));
  else echo "ok   $name: $(cat "$work/err")"; fi
}

printf '{"text": "a"}\n{"text": "b"}\n' > "$work/good.jsonl"
expect_error "missing tokenizer" "$work/nope: no such file" \
  "$MEDGPT" tokenizer encode --tokenizer "$work/nope" --input "$work/good.jsonl" --output "$work/out.jsonl"
mkdir -p "$work/broken"; head -c 5000 "$qwen/tokenizer.json" > "$work/broken/tokenizer.json"
expect_error "malformed tokenizer.json" "broken/tokenizer.json:[0-9]+: malformed JSON" \
  "$MEDGPT" tokenizer encode --tokenizer "$work/broken" --input "$work/good.jsonl" --output "$work/out.jsonl"
echo '{"model": {"type": "Unigram", "vocab": []}}' > "$work/broken/tokenizer.json"
expect_error "unsupported model" "broken/tokenizer.json: model.type is \"Unigram\"" \
  "$MEDGPT" tokenizer encode --tokenizer "$work/broken" --input "$work/good.jsonl" --output "$work/out.jsonl"

# A bad line in the second half of the input, so that under -np 2 rank 1 finds it.
for i in $(seq 1 40); do echo "{\"text\": \"line $i\"}"; done > "$work/in.jsonl"
sed -i '31s/.*/{"text": "x"/' "$work/in.jsonl"
expect_error "line not JSON" "in.jsonl:31: not valid JSON" \
  "$MEDGPT" tokenizer encode --tokenizer "$qwen" --input "$work/in.jsonl" --output "$work/out.jsonl"
expect_error "line not JSON, 2 ranks" "in.jsonl:31: not valid JSON" \
  "${MPIEXEC:-mpiexec}" -q -np 2 --oversubscribe "$MEDGPT" tokenizer encode --tokenizer "$qwen" --input "$work/in.jsonl" --output "$work/out.jsonl"
sed -i '31s/.*/{"txt": "x"}/' "$work/in.jsonl"
expect_error "line lacks text" "in.jsonl:31: text: missing" \
  "$MEDGPT" tokenizer encode --tokenizer "$qwen" --input "$work/in.jsonl" --output "$work/out.jsonl"
expect_error "line lacks text, 2 ranks" "in.jsonl:31: text: missing" \
  "${MPIEXEC:-mpiexec}" -q -np 2 --oversubscribe "$MEDGPT" tokenizer encode --tokenizer "$qwen" --input "$work/in.jsonl" --output "$work/out.jsonl"
echo '{"ids": [1, 2, 99999999]}' > "$work/ids.jsonl"
expect_error "id out of range" "ids.jsonl:1: ids: holds 99999999" \
  "$MEDGPT" tokenizer decode --tokenizer "$qwen" --input "$work/ids.jsonl" --output "$work/out.jsonl"
expect_error "missing input" "nope.jsonl: cannot open" \
  "$MEDGPT" tokenizer encode --tokenizer "$qwen" --input "$work/nope.jsonl" --output "$work/out.jsonl"
expect_error "output folder missing" "nodir/out.jsonl: cannot create output" \
  "$MEDGPT" tokenizer encode --tokenizer "$qwen" --input "$work/good.jsonl" --output "$work/nodir/out.jsonl"

# Options.
expect_error "unknown option" "no-such-option" "$MEDGPT" tokenizer encode --no-such-option 1
expect_error "unknown command" "unknown command 'frobnicate'" "$MEDGPT" frobnicate
printf '# comment\nvocab-size = 300\n\n[lora]\nrank = 8\n' > "$work/bad.ini"
expect_error "unknown config key" "bad.ini:5: unknown key 'lora.rank'" \
  "$MEDGPT" tokenizer train --config "$work/bad.ini" --input "$work/good.jsonl" --output "$work/t"
printf 'vocab-size = lots\n' > "$work/bad2.ini"
expect_error "bad config value" "bad2.ini:1: .*vocab-size" \
  "$MEDGPT" tokenizer train --config "$work/bad2.ini" --input "$work/good.jsonl" --output "$work/t"

# The command line overrides the file: 300 from the file, 290 from the command line.
printf 'vocab-size = 300\nmin-frequency = 1\n' > "$work/ok.ini"
corpus="${MEDGPT_SOURCE_DIR:?}/inputs/data/medical_corpus.txt"
"$MEDGPT" tokenizer train --config "$work/ok.ini" --input "$corpus" --output "$work/t300" 2>/dev/null
"$MEDGPT" tokenizer train --config "$work/ok.ini" --vocab-size 290 --input "$corpus" --output "$work/t290" 2>/dev/null
n300=$(jq '(.model.vocab | length) + (.added_tokens | length)' "$work/t300/tokenizer.json")
n290=$(jq '(.model.vocab | length) + (.added_tokens | length)' "$work/t290/tokenizer.json")
if [[ "$n300" == 300 && "$n290" == 290 ]]; then echo "ok   config + override: $n300 / $n290 tokens"
else echo "FAIL config + override: $n300 / $n290 tokens (want 300 / 290)"; fails=$((fails+1)); fi

# --help lists every option with its default.
"$MEDGPT" tokenizer train --help > "$work/help"
for opt in "--vocab-size arg (=32000)" "--min-frequency arg (=2)" "--pattern arg (=qwen)" "--threads arg (=0)" "--config"; do
  grep -qF -- "$opt" "$work/help" || { echo "FAIL help lacks '$opt'"; fails=$((fails+1)); }
done

echo "$fails failures"
[[ $fails -eq 0 ]]
