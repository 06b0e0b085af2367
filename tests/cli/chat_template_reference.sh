#!/usr/bin/env bash
# Live check of the chat-template reference vectors: re-renders tests/fixtures/chat/hf_cases.jsonl
# with the Jinja sources (tests/reference/render_chat.mjs, @huggingface/jinja) and compares with the
# committed tests/fixtures/chat/hf_rendered.jsonl that the unit test checks medgpt against. Where
# Python Jinja2 is installed it also renders them as transformers' apply_chat_template does.
#   --update   rewrite hf_rendered.jsonl instead of comparing (after changing cases or templates)
set -euo pipefail

src="${MEDGPT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cd "$src"
fixtures=tests/fixtures
cases=$fixtures/chat/hf_cases.jsonl
t=$fixtures/chat/templates

command -v node >/dev/null || { echo "chat_template_reference: node not found (install Node.js >= 18)" >&2; exit 1; }
[[ -d tests/reference/node_modules/@huggingface/jinja ]] ||
  { echo "chat_template_reference: run 'npm ci' in tests/reference first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

render() { node tests/reference/render_chat.mjs "$1" "$2" "$3"; }
# The tokenizers/ llama3 fixture is the first Llama-3 upload, whose generation header ignores
# add_generation_prompt; medgpt follows the current upstream template (templates/llama3_instruct.json)
# and agrees with the old one wherever add_generation_prompt is true.
grep '"add_generation_prompt": true' "$cases" >"$tmp/gen_cases.jsonl"
{
  render $t/qwen2_instruct.json "$cases" qwen
  render $t/qwen2_5_instruct.json "$cases" qwen2.5
  render $t/chatml.json "$cases" chatml
  render $t/chatml.json "$cases" yi
  render $fixtures/tokenizers/qwen3_tokenizer_config.json "$cases" qwen3
  render $t/llama3_instruct.json "$cases" llama3
  render $fixtures/tokenizers/llama3_tokenizer_config.json "$tmp/gen_cases.jsonl" llama3
  render $t/gemma3_it.json "$cases" gemma
  render $t/phi3_mini_instruct.json "$cases" phi3
  render $t/zephyr_7b_beta.json "$cases" zephyr
} >"$tmp/hf_rendered.jsonl"
if grep -q '"error"' "$tmp/hf_rendered.jsonl"; then
  echo "chat_template_reference: a template raised an error:" >&2
  grep '"error"' "$tmp/hf_rendered.jsonl" >&2
  exit 1
fi

if [[ "${1:-}" == "--update" ]]; then
  cp "$tmp/hf_rendered.jsonl" $fixtures/chat/hf_rendered.jsonl
  echo "chat_template_reference: wrote $(wc -l <$fixtures/chat/hf_rendered.jsonl) renders"
  exit 0
fi

if ! diff -q $fixtures/chat/hf_rendered.jsonl "$tmp/hf_rendered.jsonl" >/dev/null; then
  echo "chat_template_reference: hf_rendered.jsonl differs from a fresh render; first differing lines:" >&2
  diff $fixtures/chat/hf_rendered.jsonl "$tmp/hf_rendered.jsonl" | head -n 6 >&2
  exit 1
fi
echo "chat_template_reference: $(wc -l <"$tmp/hf_rendered.jsonl") @huggingface/jinja renders match"

if python3 -c 'import jinja2' 2>/dev/null; then
  python3 - $fixtures/chat/hf_rendered.jsonl <<'EOF'
# Python Jinja2 set up as transformers' apply_chat_template (trim_blocks, lstrip_blocks, sandbox).
import json, sys
import jinja2, jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.globals["raise_exception"] = raise_exception
token = lambda t: t if isinstance(t, str) or t is None else t.get("content")
compiled, bad, n = {}, 0, 0
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    cfg = json.load(open(r["config"], encoding="utf-8"))
    t = compiled.setdefault(r["config"], env.from_string(cfg["chat_template"]))
    kw = dict(messages=r["messages"], add_generation_prompt=r["add_generation_prompt"],
              bos_token=token(cfg.get("bos_token")) or "", eos_token=token(cfg.get("eos_token")) or "")
    if "enable_thinking" in r:
        kw["enable_thinking"] = r["enable_thinking"]
    n += 1
    if t.render(**kw) != r["rendered"]:
        bad += 1
        print(f"python jinja2 differs: {r['template']} / {r['id']}", file=sys.stderr)
print(f"chat_template_reference: {n - bad}/{n} renders match Python Jinja2 {jinja2.__version__}")
sys.exit(1 if bad else 0)
EOF
else
  echo "chat_template_reference: Python jinja2 not installed; skipped the transformers-style cross-check"
fi
