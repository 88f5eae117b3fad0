"""GLR masks are memoized by the top of the stack they read, as LALR ones are: a mask the store returns
from its memo equals the mask computed afresh, along random words of grammars with conflict cells and
lexer ties (the key's depth is the deepest stack position any step of the walk, its forks, or the end
check read: configs.fork, runtime.can_end)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from datasets import DATA, SLOW, tiered
from ir_words import random_word
from structgen import GrammarCompiler, GrammarMatcher
from grammar_samples import NON_LALR

GBNF = ["llama_json", "sparql_small", "cdtool_asl", "hcl_terraform"]
# anyOf branches whose key strings overlap (a lexer tie) and whose values differ
SCHEMAS = {"anyof_objects": {"anyOf": [{"type": "object", "properties": {"foo": {"type": "string"}}},
                                       {"type": "object", "properties": {"baz": {"type": "object", "properties": {
                                           "bar": {"type": "number"}}}}}]},
           "anyof_nested": {"type": "array", "items": {"anyOf": [{"type": "array", "items": {"type": "integer"}},
                                                                 {"type": "array", "items": {"type": "number"}}]}}}
CASES = ([("lark", name, g) for name, g, _, _ in NON_LALR]
         + [("gbnf", name, (DATA / "gbnf" / f"{name}.gbnf").read_text()) for name in GBNF]
         + [("json", name, s) for name, s in SCHEMAS.items()])


def _compile(llama3, kind: str, text, salt: str):
    compiler = GrammarCompiler(llama3)
    if kind == "json":
        return compiler.compile_json_schema(text, max_whitespace=16 + len(salt))  # another cache key
    return compiler.compile_grammar(text + salt, syntax=kind)


def _texts(kind: str, cg, rng: random.Random, n: int) -> list[str]:
    if kind == "json":
        docs = ['{"foo": "a", "baz": {"bar": 1.5}}', '{"baz": {"bar": 2, "q": 1}, "x": [1]}', '{"foo": "x"}',
                "[[1, 2], [3.5], [], [4, [5]]]", "[[1], [2.0, 3]]"]
        return docs
    return [random_word(cg.ir, rng, max_depth=6)[:60].decode("utf-8", "ignore") for _ in range(n)]


@pytest.mark.parametrize("kind, name, text", tiered(CASES, {"hcl_terraform", "cdtool_asl"}, key=lambda c: c[1]))
def test_memoized_glr_masks_equal_fresh_ones(tokenizer_llama3, kind, name, text):
    llama3 = tokenizer_llama3
    cg = _compile(llama3, kind, text, "\n")  # the memo builds up over every word
    fresh = _compile(llama3, kind, text, "\n\n")  # its memo is emptied before every mask
    store = fresh.mask_store
    rng = random.Random(1)
    hits = 0
    for word in _texts(kind, cg, rng, 8 if SLOW else 4):
        a, b = GrammarMatcher(cg), GrammarMatcher(fresh)
        for tid in llama3.encoder(word)[:40]:
            before = cg.mask_store.hits
            got = a.next_token_bits()
            hits += cg.mask_store.hits > before
            store.forget()
            want = b.next_token_bits()
            assert np.array_equal(got, want), f"{name}: {word!r} at token {tid}"
            if not (a.accept_token(tid) and b.accept_token(tid)):
                break
    assert cg.runtime.forks or name == "nullable_cycle"  # (no conflict cell: its cycle is in the tables)
    assert hits  # the memo answered some of them
