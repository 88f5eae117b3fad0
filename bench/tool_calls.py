#!/usr/bin/env python
"""Tool calls from the embedded model (SmolLM2-135M-Instruct) under a structural tag.

20 prompts that each ask for one of two tools (weather, time); the tools and the Hermes/Qwen
`<tool_call>` format are described in the system message; greedy decoding, at most 96 new tokens,
transformers backend. Constrained with `tool_calls("hermes", TOOLS, "required")` (calls only, at least
one), and unconstrained for comparison. An output counts when it holds a
call whose arguments are valid for the named tool (json + jsonschema, independent of the grammar).

    python bench/tool_calls.py

Writes ``bench/results/tool_calls.json``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "description": "Current time in a city", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        "additionalProperties": False}}},
]
CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Denver", "Seoul", "Rome", "Nairobi", "Perth"]
PROMPTS = [f"What's the weather like in {c} right now?" for c in CITIES] + \
          [f"What time is it in {c}?" for c in CITIES]
SYSTEM = ("You can call tools. Tools: get_weather(city) gives the weather in a city; get_time(city) gives the "
          "time in a city. To call one, write <tool_call>\n{\"name\": NAME, \"arguments\": {\"city\": CITY}}\n"
          "</tool_call>")
CALL = re.compile(r'<tool_call>\n(\{"name": "(get_weather|get_time)", "arguments": (.*?)\})\n</tool_call>', re.S)


def valid_call(text: str) -> bool:
    """A call with arguments valid for the named tool (json + jsonschema)."""
    import jsonschema

    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    for m in CALL.finditer(text):
        try:
            args = json.loads(m.group(3))
        except ValueError:
            continue
        if jsonschema.Draft202012Validator(schemas[m.group(2)]).is_valid(args):
            return True
    return False


def main() -> int:
    import structgen
    from structgen.frontend.structural_tag import tool_calls
    from structgen.integrations.transformers import generate_transformers
    from structgen.models import chat_prompt, load_default_model, load_default_tokenizer

    hf = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(hf)
    cg = structgen.GrammarCompiler(info).compile_structural_tag(tool_calls("hermes", TOOLS, "required"))
    model = load_default_model()
    free = structgen.GrammarCompiler(info).compile_regex(r"[\s\S]*")  # unconstrained, same loop
    rows = []
    for prompt in PROMPTS:
        text = chat_prompt(hf, prompt, system=SYSTEM)
        row = {"prompt": prompt}
        for name, grammar in (("structgen", cg), ("unconstrained", free)):
            t0 = time.perf_counter()
            out, n, done = generate_transformers(model, hf, grammar, text, max_tokens=96)
            row[name] = {"output": out, "tokens": n, "terminated": done, "valid_call": valid_call(out),
                         "seconds": round(time.perf_counter() - t0, 2)}
        rows.append(row)
        print(prompt, "|", row["structgen"]["valid_call"], row["unconstrained"]["valid_call"], flush=True)
    summary = {k: {"valid_calls": sum(r[k]["valid_call"] for r in rows), "prompts": len(rows),
                   "terminated": sum(r[k]["terminated"] for r in rows)} for k in ("structgen", "unconstrained")}
    Path(REPO / "bench" / "results" / "tool_calls.json").write_text(
        json.dumps({"summary": summary, "rows": rows}, indent=1, ensure_ascii=False))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
