"""Structural tags (tool calls in free text): every preset agrees with a reference checker on a
generated suite of free text, calls, several calls and malformed calls, for tool_choice auto and
required; the free-text DFAs stop at the first trigger; XGrammar's JSON format is read."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from structgen import GrammarCompiler, GrammarMatcher, UnsupportedFeature
from structgen.frontend.structural_tag import PRESETS, free_text_dfas, parse_structural_tag, tool_calls

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"tz": {"type": "string", "maxLength": 20}, "hours": {"type": "integer"}},
        "required": ["tz"]}}},
]
GOOD = {"get_weather": [{"city": "Paris"}, {"city": "Oslo", "unit": "c"}, {"unit": "f", "city": "Lima"}, {"city": ""}],
        "get_time": [{"tz": "UTC"}, {"tz": "Europe/Paris", "hours": -2}, {"hours": 3, "tz": "X"}]}
BAD = {"get_weather": [{}, {"city": 3}, {"city": "Rome", "unit": "k"}, {"city": "A", "x": 1}],
       "get_time": [{"hours": 1}, {"tz": "a" * 21}, {"tz": None}]}
WORDS = ["Sure", ",", " let", " me", " check", ".", "\n", " {", "}", " \"name\"", " <tool", "_call", "[TOOL",
         "<｜tool", " name", ":", " The", " answer", " is", " 42"]


def _tag_at(text: str, i: int, spec) -> int | None:
    """Where a well-formed tag starting at i ends (json + jsonschema), or None."""
    for tag in spec.tags:
        if not text.startswith(tag.begin, i):
            continue
        j = i + len(tag.begin)
        try:
            value, k = json.JSONDecoder().raw_decode(text, j)
        except ValueError:
            continue
        if text[j:k] == json.dumps(value, ensure_ascii=False) and jsonschema.Draft202012Validator(
                tag.schema).is_valid(value) and text.startswith(tag.end, k):
            return k + len(tag.end)
    return None


def _reference(text: str, spec) -> bool:
    """Independent of the grammar: scan for the first trigger or excluded string, parse the tag's
    JSON with the json module (written as json.dumps writes it) and validate it with jsonschema.
    Calls only (a separator): tag (separator tag)*."""
    if spec.separator is not None:
        pos, calls = 0, 0
        while True:
            end = _tag_at(text, pos, spec)
            if end is None:
                return not text and not spec.at_least_one
            calls += 1
            if end == len(text):
                return True
            if not text.startswith(spec.separator, end):
                return False
            pos = end + len(spec.separator)
    patterns = list(spec.triggers) + list(spec.excludes)
    pos = calls = 0
    while True:
        hits = sorted((text.find(p, pos), p) for p in patterns if text.find(p, pos) >= 0)
        if not hits:
            return calls > 0 or not spec.at_least_one
        i, p = hits[0]
        if p not in spec.triggers:
            return False
        end = _tag_at(text, i, spec)
        if end is None:
            return False
        pos = end
        calls += 1


def _suite(preset: str, rng: random.Random, n: int, calls_only: bool = False) -> list[str]:
    """Free text, calls (several, with text between), and malformed calls; or, calls_only, calls
    joined by newlines (and some that are not)."""
    trigger, begin, end = PRESETS[preset]

    def free() -> str:
        return "".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 6)))

    def call(good: bool) -> str:
        name = rng.choice(list(GOOD))
        args = json.dumps(rng.choice(GOOD[name] if good else BAD[name]), ensure_ascii=False)
        return begin.format(name=name) + args + end

    def broken() -> str:
        text = call(True)
        kind = rng.randrange(5)
        if kind == 0:  # cut short
            return text[:rng.randrange(len(trigger), len(text))]
        if kind == 1:  # a character dropped
            k = rng.randrange(len(text))
            return text[:k] + text[k + 1:]
        if kind == 2:  # an unknown tool
            return begin.format(name="get_stock") + '{"city": "Paris"}' + end
        if kind == 3:  # the trigger alone
            return trigger + " hello"
        return "<think>" + free()  # an excluded string in free text

    out = []
    for _ in range(n):
        if calls_only:  # calls joined by newlines, sometimes with text or a wrong separator
            parts = []
            for k in range(rng.choice([0, 1, 1, 2, 3])):
                r = rng.random()
                sep = "" if not k else "\n" if rng.random() < 0.85 else rng.choice([" ", "\n\n", free()])
                parts.append(sep + (call(True) if r < 0.7 else call(False) if r < 0.85 else broken()))
            if rng.random() < 0.1:
                parts.append(rng.choice([free(), "\n"]))
            out.append("".join(parts))
            continue
        parts = [free()]
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            r = rng.random()
            parts += [call(True) if r < 0.6 else call(False) if r < 0.8 else broken(), free()]
        out.append("".join(parts))
    return out


@pytest.fixture(scope="module")
def compiler(tokenizer_llama3):
    return GrammarCompiler(tokenizer_llama3)


@pytest.mark.parametrize("preset", ["llama3", "hermes", "mistral", "deepseek"])
@pytest.mark.parametrize("choice", ["auto", "required"])
def test_tool_call_suite_agrees_with_the_reference(compiler, preset, choice) -> None:
    st = tool_calls(preset, TOOLS, choice)
    spec = parse_structural_tag(st)
    cg = compiler.compile_structural_tag(st, property_order="any")  # the reference takes members in any order
    rng = random.Random(f"{preset}/{choice}")
    texts = _suite(preset, rng, 240, calls_only=spec.separator is not None)
    outcomes = {True: 0, False: 0}
    for text in texts:
        want = _reference(text, spec)
        m = GrammarMatcher(cg)
        got = m.accept_string(text) and m.is_accepting()
        assert got == want, (preset, choice, text)
        outcomes[want] += 1
    assert len(texts) >= 200 and min(outcomes.values()) >= 30  # both kinds well represented


def test_named_tool_choice_allows_only_that_tool(compiler) -> None:
    st = tool_calls("hermes", TOOLS, {"type": "function", "function": {"name": "get_time"}})
    cg = compiler.compile_structural_tag(st)
    trigger, begin, end = PRESETS["hermes"]
    ok = GrammarMatcher(cg)
    assert ok.accept_string(begin.format(name="get_time") + '{"tz": "UTC"}' + end) and ok.is_accepting()
    assert not GrammarMatcher(cg).accept_string(begin.format(name="get_weather"))
    assert not GrammarMatcher(cg).accept_string("x")  # calls only
    assert not GrammarMatcher(cg).is_accepting()  # at least one


def test_free_text_stops_at_the_first_trigger() -> None:
    text, until = free_text_dfas([b"<a>", b"[b]", b"<x>"], 2)
    assert text.matches(b"hello <a") and text.matches(b"a>[b") and not text.matches(b"") and not text.matches(b"q<x>")
    assert until[0].matches(b"hi <<a>") and until[0].matches(b"<a>") and not until[0].matches(b"hi <a> <a>")
    assert until[1].matches(b"xx[b]") and not until[1].matches(b"<a>[b]") and not until[0].matches(b"<x><a>")


def test_xgrammar_format_and_refusals(compiler) -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    spec = {"type": "structural_tag", "format": {
        "type": "triggered_tags", "triggers": ["<function="], "stop_after_first": True, "at_least_one": False,
        "tags": [{"type": "tag", "begin": "<function=search>", "end": "</function>",
                  "content": {"type": "json_schema", "json_schema": schema}}]}}
    cg = compiler.compile_structural_tag(json.dumps(spec))
    m = GrammarMatcher(cg)
    assert m.accept_string('Looking it up. <function=search>{"q": "x"}</function>') and m.is_accepting()
    assert not m.accept_string(" more text")  # stop_after_first
    legacy = compiler.compile_structural_tag([{"begin": "<function=search>", "schema": json.dumps(schema),
                                               "end": "</function>"}], ["<function="])
    assert GrammarMatcher(legacy).accept_string('<function=search>{"q": "x"}</function> and <function=search>')
    with pytest.raises(UnsupportedFeature, match="qwen_xml"):
        bad = json.loads(json.dumps(spec))
        bad["format"]["tags"][0]["content"]["style"] = "qwen_xml"
        compiler.compile_structural_tag(bad)
    with pytest.raises(ValueError):
        tool_calls("nope", TOOLS)
