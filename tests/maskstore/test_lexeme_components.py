"""MaskStore.lexeme_entry by components equals the walk of the product lexer state itself.

A product state's context-independent bits are the union of its terminals' own bits, and its
boundaries are found among the nodes where an accepting component dies; this checks both
against `lexeme_walk` on the product DFA for every lexer state a matcher reaches.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from datasets import TOKENIZERS
from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo, builtin_grammar
from structgen.maskstore.walk import lexeme_walk

SCHEMA = {  # known keys (literals) next to a generic key string, enums, patterns, nested objects
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "kind": {"enum": ["alpha", "alps", "beta"]},
        "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
        "nested": {"type": "object", "properties": {"name": {"type": "integer"}}},
    },
    "additionalProperties": {"type": "number"},
}
DOCS = [
    {"name": "Ann \u00e9\"x", "kind": "alps", "tags": ["ab", "c"], "nested": {"name": 3}, "named": 1.5, "k": -2},
    {"kind": "beta", "tags": [], "zzz": 0},
]


@pytest.fixture(scope="module")
def info():
    return TokenizerInfo.from_tokenizer_json(TOKENIZERS / "smollm2" / "tokenizer.json")


@pytest.mark.parametrize("source", ["schema", "json", "sql"])
def test_lexeme_entries_equal_product_walks(info, source):
    comp = GrammarCompiler(info)
    if source == "schema":
        cg = comp.compile_json_schema(json.dumps(SCHEMA))
        texts = [json.dumps(d, ensure_ascii=False) for d in DOCS]
    else:
        cg = comp.compile_grammar(builtin_grammar(source))
        texts = ['{"a": [1, 2.5e3, "x\\"y"], "b": {"c": null}}'] if source == "json" else \
            ["SELECT a, b FROM t WHERE a = 'it''s' AND b > 2 ORDER BY a"]
    for text in texts:
        m = GrammarMatcher(cg)
        data = text.encode()
        for i in range(len(data)):  # masks byte by byte: many lexer states, mid-lexeme ones included
            m.next_token_bits()
            assert m.accept_string(data[i:i + 1])
        m.next_token_bits()
    store = cg.mask_store
    lx = cg.lexer
    assert len(store._lexeme) > 10
    num_nodes = store.trie.node_byte.shape[0]
    w_nodes, w_states = np.empty(num_nodes, dtype=np.int32), np.empty(num_nodes, dtype=np.int32)
    for ls, (bits, bnodes, bstates) in store._lexeme.items():
        assert lx.components(ls) is not None
        want = np.zeros_like(bits)
        nb = lexeme_walk(np.int32(ls), store.trie, lx.trans, lx.accept_term, want, w_nodes, w_states)
        assert np.array_equal(bits, want), ls
        assert np.array_equal(bnodes, w_nodes[:nb]), ls
        assert np.array_equal(bstates, w_states[:nb]), ls
