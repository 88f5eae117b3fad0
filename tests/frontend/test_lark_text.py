"""Grammars printed as standalone Lark text (`structgen compile --emit-lark`): terminals as regexes
recovered from their DFAs, exactly, and the printed grammar compiles back to the same language."""

from __future__ import annotations

import json

import pytest

from datasets import DATA, SLOW
from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo
from structgen.automata.dfa import difference, literal_dfa
from structgen.automata.regex_dfa import regex_dfa
from structgen.automata.to_regex import dfa_to_regex
from structgen.cli import _lark_text
from structgen.evaluation.datasets import load_rows, sample
from structgen.frontend.json_schema import schema_to_grammar
from structgen.options import CompileOptions


def same_language(a, b) -> bool:
    return difference(a, b).num_states == 0 and difference(b, a).num_states == 0


@pytest.mark.parametrize("pattern", ["é+", "[a-zé-ü]{2,3}x?", "[\U0001F600-\U0001F64F]|\\u2603", "(ab|a)*c", "",
                                     "[^\"\\\\]*", "\\d+(\\.\\d+)?", "/\\*.*\\*/"])
def test_regexes_come_back_exactly(pattern):
    dfa = regex_dfa(pattern)
    got = dfa_to_regex(dfa)
    assert got is not None and same_language(regex_dfa(got), dfa), got


def test_bytes_that_are_not_characters_give_no_regex():
    assert dfa_to_regex(literal_dfa(b"\xc3")) is None  # half of "é"


def test_maskbench_terminals_come_back_exactly():
    """Every terminal of 40 MaskBench schemas (15 in the default tier; up to 150 DFA states): regex -> DFA is the
    same language."""
    checked = 0
    for row in sample(load_rows(DATA / "maskbench"), 1000, 0)[:40 if SLOW else 15]:
        try:
            ir = schema_to_grammar(row["schema"], options=CompileOptions()).ir
        except Exception:  # noqa: BLE001 - refused schemas have no terminals to print
            continue
        for t in ir.terminals:
            if t.dfa.num_states <= 150:
                got = dfa_to_regex(t.dfa)
                assert got is not None and same_language(regex_dfa(got), t.dfa), (row["id"], t.name, got)
                checked += 1
    assert checked > 200


SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer",
     "minimum": 0, "maximum": 120}, "tags": {"type": "array", "items": {"enum": ["a", "é", "x y"]}}},
     "required": ["name"], "additionalProperties": False},
    {"type": "object", "properties": {f"p{i}": {"type": ["number", "null"]} for i in range(9)}},  # parametric
    {"anyOf": [{"type": "string", "pattern": "^[A-Z]{2}$"}, {"type": "boolean"}]},
]
INSTANCES = [{"name": "Ada"}, {"name": "Ada", "age": 36}, {"age": 36}, {"name": "toolongname"}, {"name": "x", "tags": ["é"]},
             {"name": "x", "tags": ["b"]}, {"p0": 1.5, "p3": None}, {"p8": "x"}, {}, "AB", "abc",
             True, None, {"name": "x", "age": 121}]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_printed_grammar_has_the_schemas_language(schema, tokenizer_llama3: TokenizerInfo):
    compiler = GrammarCompiler(tokenizer_llama3)
    cg = compiler.compile_json_schema(schema)
    text = _lark_text(cg, schema)
    assert "<dfa" not in text and "%declare" not in text
    again = compiler.compile_grammar(text)
    for inst in INSTANCES:
        s = json.dumps(inst, ensure_ascii=False)
        m1, m2 = GrammarMatcher(cg), GrammarMatcher(again)
        want = m1.accept_string(s) and m1.is_accepting()
        got = m2.accept_string(s) and m2.is_accepting()
        assert got == want, (s, text)
