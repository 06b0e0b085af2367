#!/usr/bin/env bash
# medgpt prepare on the bundled data: the corpus is the same file on 1, 2 and 3 ranks (pt and sft);
# a bad record in the second half stops every rank with one line and leaves no .h5; with
# --skip-bad-records it is counted and the rest is written.
source "$(dirname "$0")/common.bash"
: "${MEDGPT:?}" "${MEDGPT_SOURCE_DIR:?}" "${MEDGPT_TEST_TOKENIZERS:?}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
tok="$MEDGPT_TEST_TOKENIZERS/qwen3"
data="$MEDGPT_SOURCE_DIR/inputs/data"

for np in 1 2 3; do
  mpi "$np" "$MEDGPT" prepare --kind sft --input "$data/sft" --tokenizer "$tok" --template qwen --validation-split 0.05 \
    --output "$work/sft$np.h5" 2>/dev/null
  mpi "$np" "$MEDGPT" prepare --kind pt --input "$data/pt" "$data/medical_corpus.txt" --tokenizer "$tok" --block-size 512 \
    --validation-split 20 --output "$work/pt$np.h5" 2>/dev/null
done
for np in 1 3; do
  mpi "$np" "$MEDGPT" prepare --kind pref --input "$data/reward/medical_pref.jsonl" --tokenizer "$tok" --max-length 1024 \
    --validation-split 0.05 --output "$work/pref$np.h5" 2>/dev/null
  mpi "$np" "$MEDGPT" prepare --kind kto --input "$data/reward/medical_kto.jsonl" --tokenizer "$tok" --output "$work/kto$np.h5" 2>/dev/null
  mpi "$np" "$MEDGPT" prepare --kind prompt --input "$data/grpo" --tokenizer "$tok" --output "$work/prompt$np.h5" 2>/dev/null
done
for k in pref kto prompt; do check "$k corpus identical on 1 and 3 ranks" "cmp -s \"\$work/${k}1.h5\" \"\$work/${k}3.h5\""; done
check "sft corpus identical on 1, 2, 3 ranks" 'cmp -s "$work/sft1.h5" "$work/sft2.h5" && cmp -s "$work/sft1.h5" "$work/sft3.h5"'
check "pt corpus identical on 1, 2, 3 ranks" 'cmp -s "$work/pt1.h5" "$work/pt2.h5" && cmp -s "$work/pt1.h5" "$work/pt3.h5"'

# A bad record (line 1500 of 2,366: rank 1's half under -np 2).
cp "$data/sft/medical_sft.jsonl" "$work/bad.jsonl"
sed -i '1500s/.*/{"conversations": [{"from": "human", "value": "hi"}, {"from": "human", "value": "again"}]}/' "$work/bad.jsonl"
for np in 1 2; do
  mpi "$np" "$MEDGPT" prepare --kind sft --input "$work/bad.jsonl" --tokenizer "$tok" --output "$work/bad.h5" 2> "$work/err"
  rc=$?
  check "bad record, $np rank(s): exit $rc, one line naming file:line:field" \
    '[[ $rc -ne 0 && $(grep -c . "$work/err") -eq 1 ]] && grep -q "^medgpt: error: .*bad.jsonl:1500: conversations\[1\]: two user turns in a row" "$work/err"'
  check "bad record, $np rank(s): no corpus left" '! compgen -G "$work/bad.h5*" > /dev/null'
done
sed -i '2000s/.*/{"conversations": [oops/' "$work/bad.jsonl"  # and a line that is not JSON
mpi 2 "$MEDGPT" prepare --kind sft --input "$work/bad.jsonl" --tokenizer "$tok" --output "$work/skip.h5" --skip-bad-records 2> "$work/log"
check "--skip-bad-records: 2364 records written, 2 skipped (bad turns, bad JSON)" 'grep -q "2364 records .* skipped 2 bad records" "$work/log" && [[ -f "$work/skip.h5" ]]'
"$MEDGPT" prepare --kind sft --input "$data/sft" --tokenizer "$tok" --template no-such-template --output "$work/x.h5" 2> "$work/err"
check "unknown template named" 'grep -q "no-such-template" "$work/err"'
"$MEDGPT" data inspect --input "$work/sft1.h5" --tokenizer "$tok" --sample 1 > "$work/inspect" 2>&1
check "data inspect: kind, counts, trained span marked" \
  'grep -q "sft corpus, template \"qwen\"" "$work/inspect" && grep -q "\"records\":2366" "$work/inspect" && grep -q "<|im_start|>assistant" "$work/inspect" && grep -q "\[\[.*<|im_end|>\]\]" "$work/inspect"'
"$MEDGPT" data inspect --input "$work/pt1.h5" > "$work/inspect_pt" 2>&1
check "data inspect pt: blocks" 'grep -q "pt corpus" "$work/inspect_pt" && grep -q "blocks" "$work/inspect_pt"'
finish
