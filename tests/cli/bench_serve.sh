#!/usr/bin/env bash
# tools/bench-serve.sh, shortened to 1,000 requests (64 clients; the full run is 10,000, by hand):
# every well-formed request answered completely, every bad one with its OpenAI error (400, 413,
# 401), dropped streams and slow readers survived, resident memory steady, SIGTERM exits 0.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}"
out=$(MEDGPT_BUILD_DIR="$(dirname "$MEDGPT")" "$MEDGPT_SOURCE_DIR/tools/bench-serve.sh" --requests 1000 2>&1)
rc=$?
echo "$out"
check "1000 requests, 0 unexpected outcomes" 'grep -q "^bench-serve: 0 unexpected outcomes$" <<< "$out"'
for kind in chat chat_stream completion malformed oversized wrong_key disconnect slow_reader; do
  check "$kind: every request as expected" 'awk -v k=$kind "\$1 == k && \$2 > 0 && \$2 == \$3 && \$4 == 0 { ok = 1 } END { exit !ok }" <<< "$out"'
done
check "the server answers /health after the run and exits 0 on SIGTERM" \
  'grep -q "answers /health" <<< "$out" && grep -q "exit status after SIGTERM: 0" <<< "$out"'
check "tools/bench-serve.sh exit $rc" '((rc == 0))'
finish
