#!/usr/bin/env bash
# The libFuzzer targets under ASan + UBSan (tools/fuzz.sh; tools/test.sh builds them first): every
# input of tests/fuzz/regressions (crashes found and fixed) replays cleanly, and each target runs
# MEDGPT_FUZZ_SECONDS (default 10) from its seeds without a finding. Longer runs are by hand:
# tools/fuzz.sh TARGET SECONDS.
source "$(dirname "$0")/common.bash"
: "${MEDGPT_SOURCE_DIR:?}"
out=$("$MEDGPT_SOURCE_DIR/tools/fuzz.sh" all "${MEDGPT_FUZZ_SECONDS:-10}" 2>&1)
rc=$?
echo "$out" | grep -v '^setup:'
for t in records chat_template tokenizer safetensors config ini serve_request; do
  check "fuzz $t: regressions replayed, no crash" 'grep -q "^fuzz $t: [0-9]* executions.*crashes 0$" <<< "$out"'
done
check "tools/fuzz.sh exit $rc" '((rc == 0))'
finish
