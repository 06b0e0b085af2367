// Reference renderer: applies a tokenizer_config.json's `chat_template` with @huggingface/jinja
// (the engine behind transformers.js, same trim_blocks/lstrip_blocks defaults as transformers'
// apply_chat_template) so medgpt's C++ chat templates can be compared with the real Jinja source.
//
// Usage:
//   node tests/reference/render_chat.mjs CONFIG.json CASES.jsonl [TEMPLATE_NAME]
// CASES.jsonl: one JSON object per line:
//   {"messages":[{"role":..,"content":..,"reasoning_content"?:..}], "add_generation_prompt":bool,
//    "enable_thinking"?: bool}         (enable_thinking absent = undefined in the template)
// Output (stdout), one JSON line per case: the case plus "template" (TEMPLATE_NAME, when given),
// "config" (CONFIG as given) and "rendered" (the text), or "error" when the template raised.
// Regenerating tests/fixtures/chat/hf_rendered.jsonl: see tests/fixtures/chat/README.md.
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const [configPath, casesPath, templateName] = process.argv.slice(2);
if (!configPath || !casesPath) {
  console.error("usage: node render_chat.mjs CONFIG.json CASES.jsonl [TEMPLATE_NAME]");
  process.exit(2);
}

const config = JSON.parse(readFileSync(configPath, "utf8"));
// Special tokens may be plain strings or AddedToken objects ({"content": ...}).
const tokenText = (t) => (t == null ? "" : typeof t === "string" ? t : t.content ?? "");
if (typeof config.chat_template !== "string") {
  console.error(`${configPath}: no string "chat_template"`);
  process.exit(2);
}
const template = new Template(config.chat_template);

const lines = readFileSync(casesPath, "utf8").split("\n").filter((l) => l.trim() !== "");
for (const line of lines) {
  const c = JSON.parse(line);
  const context = {
    messages: c.messages,
    add_generation_prompt: Boolean(c.add_generation_prompt),
    bos_token: tokenText(config.bos_token),
    eos_token: tokenText(config.eos_token),
    // transformers passes raise_exception to every template.
    raise_exception: (msg) => {
      throw new Error(msg);
    },
  };
  // Only defined when the case says so: Qwen3 tests `enable_thinking is defined`.
  if (c.enable_thinking !== undefined) context.enable_thinking = c.enable_thinking;
  const out = { ...(templateName ? { template: templateName } : {}), config: configPath, ...c };
  try {
    out.rendered = template.render(context);
  } catch (e) {
    out.error = String(e.message ?? e);
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
