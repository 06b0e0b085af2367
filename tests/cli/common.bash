# shellcheck shell=bash
# Sourced by the tests/cli/*.sh scripts (not a test itself: ctest runs *.sh only).
#   check NAME CONDITION   evaluates CONDITION (a string), prints "ok   NAME" or "FAIL NAME" and counts failures
#   mpi NP CMD...          CMD on NP ranks (oversubscribed: this machine may have fewer cores)
#   finish                 prints the failure count; the script's status is 0 only without failures
#   below X LIMIT          X is a number below LIMIT
#   close A B [KEYS]       max |a-b| of loss, grad_norm, eval_loss (and the metrics named in KEYS, a
#                          jq array) over two runs' metrics.jsonl, row by row (1e9 if the rows differ)
#   after2 A B             the same over the steps after 2 only (a run resumed from step 2 against the straight one)
#   weights A B [FILE]     max |a-b| over every tensor of two final/ folders (FILE: another file in them)
#   tiny_sft_setup DIR     DIR/tied.json (the tiny Qwen3 with 4 layers, tied head) and DIR/sft.h5 (the bundled
#                          SFT dialogues, rows of 128, 8 held out)
#   preference_setup DIR   the preference tests' start: DIR/pt/final (the tiny Qwen3 pretrained 20 steps
#                          on the bundled corpus) and DIR/pref.h5 (the bundled pairs, rows of 160, 40 held out)
set -uo pipefail
export OMPI_MCA_mpi_yield_when_idle=1  # ranks beyond the cores must yield, or collectives crawl
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails+1)); fi; }
mpi() { "${MPIEXEC:-mpiexec}" -q -np "$1" --oversubscribe "${@:2}"; }
finish() {
  echo "$fails failed"
  [[ $fails -eq 0 ]]
}
below() { [[ -n $1 && $(jq -n "$1 < $2") == true ]]; }
close() {
  jq -n --slurpfile a "$1/metrics.jsonl" --slurpfile b "$2/metrics.jsonl" --argjson keys "${3:-[]}" \
    'if ($a|length) != ($b|length) or ($a|length) == 0 then 1e9 else
     [range($a|length) as $i | ($a[$i].loss - $b[$i].loss), ($a[$i].grad_norm - $b[$i].grad_norm),
      (($a[$i].eval_loss // 0) - ($b[$i].eval_loss // 0)), ($keys[] as $k | ($a[$i][$k] // 0) - ($b[$i][$k] // 0)) | fabs] | max end'
}
after2() {
  jq -n --slurpfile a "$1/metrics.jsonl" --slurpfile b "$2/metrics.jsonl" \
    '[$a[] | select(.step > 2)] as $x | [$b[] | select(.step > 2)] as $y |
     if ($x|length) != ($y|length) or ($x|length) == 0 then 1e9 else
     [range($x|length) as $i | ($x[$i].loss - $y[$i].loss), ($x[$i].grad_norm - $y[$i].grad_norm),
      (($x[$i].eval_loss // 0) - ($y[$i].eval_loss // 0)) | fabs] | max end'
}
weights() {  # fp32 or bf16 safetensors
  python3 - "$1/final/${3:-model.safetensors}" "$2/final/${3:-model.safetensors}" <<'EOF'
import json, struct, sys
from array import array
def load(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        head = json.loads(f.read(n)); data = f.read()
    out = {}
    for name, t in head.items():
        if name == '__metadata__': continue
        b, e = t['data_offsets']; raw = data[b:e]
        if t['dtype'] == 'F32': out[name] = array('f', raw)
        elif t['dtype'] == 'BF16': out[name] = array('f', b''.join(b'\0\0' + raw[i:i + 2] for i in range(0, len(raw), 2)))
        else: sys.exit('dtype ' + t['dtype'])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
if a.keys() != b.keys(): print(1e9); sys.exit()
print(max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a))
EOF
}
tiny_sft_setup() {
  jq '.num_hidden_layers = 4' "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" > "$1/tied.json"
  "$MEDGPT" prepare --kind sft --input "$MEDGPT_SOURCE_DIR/inputs/data/sft" --tokenizer "$MEDGPT_SOURCE_DIR/inputs/tokenizer" --max-length 128 \
    --validation-split 8 --output "$1/sft.h5" 2>/dev/null
}
preference_setup() {
  local src="$MEDGPT_SOURCE_DIR"
  "$MEDGPT" train --stage pt --model.config "$MEDGPT_FIXTURES_DIR/train/tiny-qwen3.json" --model.tokenizer "$src/inputs/tokenizer" \
    --data.train "$src/inputs/data/pt" --data.block_size 64 --train.max_steps 20 --train.micro_batch_size 8 --train.global_batch_size 8 \
    --train.learning_rate 3e-3 --train.peak_flops 1e11 --output-dir "$1/pt" 2>/dev/null
  "$MEDGPT" prepare --kind pref --input "$src/inputs/data/reward/medical_pref.jsonl" --tokenizer "$src/inputs/tokenizer" --max-length 160 \
    --validation-split 40 --output "$1/pref.h5" 2>/dev/null
}
