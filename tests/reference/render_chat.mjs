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
import { Environment, Template } from "@huggingface/jinja";

// @huggingface/jinja 0.5.11 ignores the argument of str.strip/lstrip/rstrip and always trims
// whitespace, while transformers (Python Jinja2) strips only the given characters: Qwen3's
// `content.lstrip('\n')` keeps leading spaces there. Patch the string methods to Python's rules.
function patchPythonStrip() {
  const probe = new Environment();
  probe.set("s", "");
  const StringValue = probe.lookupVariable("s").constructor;
  const descriptor = Object.getOwnPropertyDescriptor(StringValue.prototype, "builtins");
  const FunctionValue = descriptor.get.call(probe.lookupVariable("s")).get("strip").constructor;
  const strip = (s, chars, left, right) => {
    if (chars === undefined || chars === null) {
      return left && right ? s.trim() : left ? s.trimStart() : s.trimEnd();
    }
    const set = new Set(chars);
    const cps = Array.from(s);
    let b = 0, e = cps.length;
    if (left) while (b < e && set.has(cps[b])) b++;
    if (right) while (e > b && set.has(cps[e - 1])) e--;
    return cps.slice(b, e).join("");
  };
  Object.defineProperty(StringValue.prototype, "builtins", {
    get() {
      const map = descriptor.get.call(this);
      if (!map.__python_strip) {
        for (const [name, left, right] of [["strip", true, true], ["lstrip", true, false], ["rstrip", false, true]]) {
          map.set(name, new FunctionValue((args) => {
            const arg = args.length > 0 ? args[0].value : undefined;
            return new StringValue(strip(this.value, arg, left, right));
          }));
        }
        map.__python_strip = true;
      }
      return map;
    },
  });
}
patchPythonStrip();

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
    // raise_exception is built into @huggingface/jinja, as transformers adds it.
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
