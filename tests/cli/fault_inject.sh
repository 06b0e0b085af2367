#!/usr/bin/env bash
# tools/fault-inject.sh with 5 kills of each kind (the full tally, 20 each, is a run by hand): kill -9
# inside and around checkpoint writes, a full disk during a checkpoint (a small tmpfs; skipped where
# mounting needs privileges we lack), damaged checkpoint files, a truncated or byte-flipped corpus.
# Every case must survive: the same loss curve after a resume, or one clear error line.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}"
out=$(MEDGPT="$MEDGPT" "$MEDGPT_SOURCE_DIR/tools/fault-inject.sh" "${MEDGPT_FAULT_KILLS:-5}" 2>&1)
rc=$?
echo "$out"
check "fault injection: nothing lost (exit $rc)" '((rc == 0)) && ! grep -q "lost: " <<< "$out"'
for k in kill-in-write kill checkpoint corpus; do
  check "fault injection: $k cases tried" 'grep -q "^  $k: [1-9][0-9]* tried" <<< "$out"'
done
finish
