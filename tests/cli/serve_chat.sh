#!/usr/bin/env bash
# medgpt serve (a real HTTP client: curl) and medgpt chat on a tiny trained model:
# - /health, /v1/models; a greedy chat completion equals `medgpt generate` for the same prompt;
#   streamed deltas concatenate to the same text and end with `data: [DONE]`; /v1/completions;
# - stop strings cut the answer (finish_reason "stop"), max_tokens ends it ("length"), usage counts;
# - 32 clients at once over loopback: every answer complete and equal to the single one;
# - errors as OpenAI JSON with the right status: bad JSON, a wrong type, n > 1, a non-positive
#   repetition penalty, a negative top_k or seed, a prompt beyond the context, a body over the
#   limit, a wrong API key, an unknown path;
# - SIGTERM stops the server cleanly (exit 0);
# - chat from a pipe: two greedy turns, /reset, exit; a turn after /reset equals a fresh one.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_FIXTURES_DIR:?}"
work=$(mktemp -d)
src="$MEDGPT_SOURCE_DIR"
"$MEDGPT" train --stage pt --model.config "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" --model.tokenizer "$src/inputs/tokenizer" \
  --data.train "$src/inputs/data/pt" --data.block_size 64 --train.max_steps 30 --train.micro_batch_size 8 --train.global_batch_size 8 \
  --train.learning_rate 3e-3 --train.peak_flops 1e11 --output-dir "$work/run" 2>/dev/null
model="$work/run/final"
q="高血压需要做哪些检查？"

"$MEDGPT" serve --model "$model" --port 0 --max-new-tokens 24 --api-key sekret --max-body-bytes 20000 2> "$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q "serving on" "$work/serve.log" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)
check "server started ($url)" '[[ -n $url ]]'
api() { curl -s -H "Authorization: Bearer sekret" "$@"; }
status() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }

check "/health" '[[ $(curl -s "$url/health" | jq -r .status) == ok ]]'
check "/v1/models lists the model" '[[ $(api "$url/v1/models" | jq -r ".data[0].id") == final ]]'

body=$(jq -nc --arg q "$q" '{model: "final", messages: [{role: "user", content: $q}], temperature: 0}')
api "$url/v1/chat/completions" -d "$body" > "$work/one.json"
text=$(jq -r '.choices[0].message.content' "$work/one.json")
jq -nc --arg q "$q" '{prompt: $q}' > "$work/q.jsonl"
"$MEDGPT" generate --model "$model" --input "$work/q.jsonl" --output "$work/gen.jsonl" --max-new-tokens 24 2>/dev/null
check "greedy chat completion == medgpt generate" '[[ -n $text && $text == "$(jq -r .output "$work/gen.jsonl")" ]]'
check "usage: 24 completion tokens, finish_reason length" \
  '[[ $(jq ".usage.completion_tokens" "$work/one.json") == 24 && $(jq -r ".choices[0].finish_reason" "$work/one.json") == length && $(jq ".usage.total_tokens - .usage.prompt_tokens" "$work/one.json") == 24 ]]'

api -N "$url/v1/chat/completions" -d "$(jq -c '.stream = true' <<< "$body")" > "$work/stream.txt"
streamed=$(grep '^data: {' "$work/stream.txt" | sed 's/^data: //' | jq -rj '.choices[0].delta.content // ""')
check "stream: deltas concatenate to the same text" '[[ "$streamed" == "$text" ]]'
check "stream: ends with data: [DONE], finish_reason length before it" \
  '[[ $(grep -c . "$work/stream.txt" | tr -d " ") -gt 3 && $(grep "^data:" "$work/stream.txt" | tail -1) == "data: [DONE]" && $(grep "^data: {" "$work/stream.txt" | tail -1 | sed "s/^data: //" | jq -r ".choices[0].finish_reason") == length ]]'

stop=$(printf %s "$text" | cut -c3-4)   # a piece of the answer
cut=${text%%"$stop"*}
api "$url/v1/chat/completions" -d "$(jq -c --arg s "$stop" '.stop = [$s]' <<< "$body")" > "$work/stop.json"
check "stop string \"$stop\": answer cut before it, finish_reason stop" \
  '[[ $(jq -r ".choices[0].message.content" "$work/stop.json") == "$cut" && $(jq -r ".choices[0].finish_reason" "$work/stop.json") == stop ]]'
api -N "$url/v1/chat/completions" -d "$(jq -c --arg s "$stop" '.stop = [$s] | .stream = true' <<< "$body")" > "$work/stop.txt"
check "stop string when streaming: same cut" '[[ "$(grep "^data: {" "$work/stop.txt" | sed "s/^data: //" | jq -rj ".choices[0].delta.content // \"\"")" == "$cut" ]]'
api "$url/v1/completions" -d '{"prompt": "高血压", "max_tokens": 5, "temperature": 0}' > "$work/cmpl.json"
check "/v1/completions: text_completion with 5 tokens" '[[ $(jq -r .object "$work/cmpl.json") == text_completion && $(jq .usage.completion_tokens "$work/cmpl.json") == 5 ]]'

for i in $(seq 32); do api "$url/v1/chat/completions" -d "$body" > "$work/c$i.json" & done
wait $(jobs -p | grep -v "^$server$") 2>/dev/null
same=0
for i in $(seq 32); do [[ $(jq -r '.choices[0].message.content' "$work/c$i.json" 2>/dev/null) == "$text" ]] && same=$((same+1)); done
check "32 clients at once: $same/32 complete and equal to the single answer" '((same == 32))'

err() {  # name, expected status, expected error code or type, curl args...
  local name=$1 want=$2 what=$3; shift 3
  local got; got=$(status "$@")
  check "$name: HTTP $got, $(jq -c .error.code "$work/body" 2>/dev/null)" \
    '[[ $got == "$want" ]] && jq -e --arg w "$what" ".error.message and (.error.code == \$w or .error.type == \$w)" "$work/body" > /dev/null'
}
auth=(-H "Authorization: Bearer sekret")
err "bad JSON" 400 invalid_request_error "${auth[@]}" "$url/v1/chat/completions" -d '{"messages": ['
err "wrong type" 400 invalid_request_error "${auth[@]}" "$url/v1/chat/completions" -d '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}'
err "n > 1" 400 invalid_request_error "${auth[@]}" "$url/v1/chat/completions" -d '{"messages": [{"role": "user", "content": "hi"}], "n": 2}'
err "repetition_penalty 0" 400 invalid_request_error "${auth[@]}" "$url/v1/completions" -d '{"prompt": "hi", "repetition_penalty": 0}'
err "negative top_k" 400 invalid_request_error "${auth[@]}" "$url/v1/completions" -d '{"prompt": "hi", "top_k": -3}'
err "negative seed" 400 invalid_request_error "${auth[@]}" "$url/v1/completions" -d '{"prompt": "hi", "seed": -1}'
long=$(seq -s ' ' 1000 1400)   # ~2,000 tokens; the context is 512
err "prompt beyond the context" 400 context_length_exceeded "${auth[@]}" "$url/v1/completions" -d "{\"prompt\": \"$long\"}"
head -c 30000 /dev/zero | tr '\0' a > "$work/big"
err "body over the limit" 413 payload_too_large "${auth[@]}" "$url/v1/completions" --data-binary @"$work/big"
err "wrong API key" 401 invalid_api_key -H "Authorization: Bearer nope" "$url/v1/models"
err "unknown path" 404 not_found "${auth[@]}" "$url/v2/whatever"
check "the server survived all of it" '[[ $(curl -s "$url/health" | jq -r .status) == ok ]]'
kill -TERM "$server"
for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
wait "$server"; rc=$?
check "SIGTERM: the server stops within 10 s and exits 0 (exit $rc)" '((rc == 0))'

# chat from a pipe
printf '%s\n/reset\n%s\nexit\nnot read\n' "$q" "$q" | "$MEDGPT" chat --model "$model" --max-new-tokens 24 > "$work/chat.txt" 2>/dev/null
check "chat: the first turn equals generate" '[[ $(sed -n 1p "$work/chat.txt") == "$(jq -r .output "$work/gen.jsonl")" ]]'
check "chat: /reset acknowledged, the turn after it equals a fresh one, exit stops reading" \
  '[[ $(sed -n 2p "$work/chat.txt") == "[history cleared]" && $(sed -n 3p "$work/chat.txt") == "$(sed -n 1p "$work/chat.txt")" && $(grep -c . "$work/chat.txt") -eq 3 ]]'

finish
