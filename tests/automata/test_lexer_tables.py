"""The lexer's global tables: growing keeps every installed row (remapped in place, or copied
while another view of the table is alive), and a big terminal's copy is installed at compile time.
"""

from __future__ import annotations

import numpy as np
import pytest

from datasets import TOKENIZERS
from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo
from structgen.automata.lexer import EAGER_COPY_STATES

GRAMMAR = 'start: "[" ITEM ("," ITEM)* "]"\nITEM: /"[a-z]{1,30}"/ | /[0-9]+/\n'


@pytest.fixture(scope="module")
def compiler():
    return GrammarCompiler(TokenizerInfo.from_tokenizer_json(TOKENIZERS / "smollm2" / "tokenizer.json"))


def _masks(cg, text: str) -> list[np.ndarray]:
    m = GrammarMatcher(cg)
    out = []
    for ch in text:
        out.append(m.next_token_bits().copy())
        assert m.accept_string(ch.encode())
    return out


@pytest.mark.parametrize("hold_view", [False, True])
def test_growing_keeps_installed_rows(compiler, hold_view):
    cg = compiler.compile_grammar(GRAMMAR)
    text = '["abc",12,"xyz"]'
    before = _masks(cg, text)
    lx = cg.lexer
    n, cap = lx.num_states, lx.trans.shape[0]
    rows = [a[:n].copy() for a in (lx.trans, lx.accept_term, lx.is_start, lx.is_final, lx.state_dfa)]
    view = lx.trans[:n] if hold_view else None  # a live view forces the copying path
    lx._grow(cap + 1)
    assert lx.trans.shape[0] >= cap + 1
    for want, got in zip(rows, (lx.trans, lx.accept_term, lx.is_start, lx.is_final, lx.state_dfa)):
        assert np.array_equal(want, got[:n])
    if view is not None:
        assert np.array_equal(view, rows[0])  # the old table is still readable
    fresh = compiler.compile_grammar(GRAMMAR + "\n")  # a second compile: no cache hit, tables never grown
    cg.mask_store.forget()
    cg.mask_store._lexeme.clear()
    for a, b, c in zip(before, _masks(cg, text), _masks(fresh, text)):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_big_terminal_copy_is_installed_at_compile_time(compiler):
    cg = compiler.compile_grammar('start: "<" S ">"\nS: /[\\s\\S]{1,300}/\n')  # 2,401 UTF-8 states
    t = next(i for i, term in enumerate(cg.terminals) if term.name == "S")
    assert cg.terminals[t].dfa.num_states >= EAGER_COPY_STATES
    assert t in cg.lexer._singles
    assert all(len(terms) == 1 for terms in cg.lexer.dfa_sets)  # every copy, before any product


def test_sets_share_the_product_states_they_have_in_common(compiler, monkeypatch):
    """An object's optional properties give one terminal set per position (the keys left); their
    DFAs jump into the states that an earlier set built, and lex and mask as unshared ones do,
    also after a snapshot is restored."""
    import structgen.automata.lexer as lexer

    schema = {"type": "object", "properties": {f"key{i:02d}_{'x' * i}": {"type": "integer"} for i in range(10)}}
    text = "{" + ", ".join(f'"key{i:02d}_{"x" * i}": {i}' for i in range(10)) + "}"
    shared = GrammarCompiler(compiler.tokenizer_info).compile_json_schema(schema)
    want = _masks(shared, text)
    snap = shared.lexer.snapshot()
    with monkeypatch.context() as m:
        m.setattr(lexer, "known_insert", lambda *a: a[4][2])  # nothing entered: keys as they were
        alone = GrammarCompiler(compiler.tokenizer_info).compile_json_schema(schema)
        assert all(np.array_equal(a, b) for a, b in zip(want, _masks(alone, text)))
    assert 2 * shared.lexer.num_states < alone.lexer.num_states
    restored = GrammarCompiler(compiler.tokenizer_info).compile_json_schema(schema)
    restored.lexer.restore(snap)
    assert restored.lexer.known_used[0] == shared.lexer.known_used[0]
    assert all(np.array_equal(a, b) for a, b in zip(want, _masks(restored, text)))


def test_byte_classes_read_off_single_copies(compiler):
    """The classes product DFAs refine (read off each terminal's installed rows, in one call) are
    its own DFA's byte classes: shifting a DFA to global ids keeps which columns are equal."""
    from structgen.automata.dfa import byte_classes
    from structgen.automata.lexer import _single_classes

    cg = compiler.compile_json_schema({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 40}, "n": {"type": "integer"}, "ok": {"enum": [True, "é", 1.5]},
        "at": {"type": "string", "format": "date-time"}}})
    lx = cg.lexer
    terms = np.arange(lx.num_terms, dtype=np.int32)
    got = np.zeros((lx.num_terms, 256), dtype=np.int64)
    _single_classes(lx.trans, lx.single_start[terms], lx._sizes[terms], terms, got)
    for t in terms.tolist():
        assert np.array_equal(got[t], byte_classes(lx.terminals[t].dfa)[1]), lx.terminals[t].name
