"""Walks shared across grammars (WalkMemo) and product states that jump into a terminal's copy.

A terminal state's walk is keyed by a digest of its canonical form, so it must be equal for
states with one language (in different grammars) and differ otherwise; a shared entry must be
what a fresh walk of that state gives. A product state where one terminal alone is alive is that
terminal's own copy (LexerTables._build), and masks through it stay exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from datasets import TOKENIZERS
from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo
from structgen.maskstore.walk import lexeme_walk


@pytest.fixture(scope="module")
def info():
    return TokenizerInfo.from_tokenizer_json(TOKENIZERS / "smollm2" / "tokenizer.json")


def _term(cg, name):
    return next(i for i, t in enumerate(cg.terminals) if t.name == name)


def _state_after(dfa, data: bytes) -> int:
    s = 0
    for b in data:
        s = int(dfa.trans[s, b])
    return s


def test_digest_is_equal_for_equal_languages_only(info):
    comp = GrammarCompiler(info)
    five = comp.compile_grammar("start: X\nX: /a{0,5}b/\n")
    seven = comp.compile_grammar("start: X\nX: /a{0,7}b/\n")
    t5, t7 = _term(five, "X"), _term(seven, "X")
    d5, d7 = five.terminals[t5].dfa, seven.terminals[t7].dfa
    # after "aa", a{0,7}b has the language a{0,5}b
    assert seven.mask_store._digest(t7, _state_after(d7, b"aa")) == five.mask_store._digest(t5, 0)
    assert seven.mask_store._digest(t7, _state_after(d7, b"a")) != five.mask_store._digest(t5, 0)
    assert seven.mask_store._digest(t7, 0) != five.mask_store._digest(t5, 0)


def test_digest_ignores_bytes_only_other_states_tell_apart(info):
    """The state after a key's quote has the same language in both grammars, though the second
    DFA splits 'i' and 'd' from the other letters (to exclude the key "id"): one digest."""
    comp = GrammarCompiler(info)
    plain = comp.compile_grammar('start: S\nS: /"[a-z]*"/\n')
    keyed = comp.compile_grammar('start: S\nS: /"([a-ce-hj-z][a-z]*|i|i[a-ce-z][a-z]*|d[a-z]*|id[a-z]+)?"/\n')
    tp, tk = _term(plain, "S"), _term(keyed, "S")
    body = keyed.mask_store._digest(tk, _state_after(keyed.terminals[tk].dfa, b'"x'))
    assert body == plain.mask_store._digest(tp, _state_after(plain.terminals[tp].dfa, b'"'))
    assert keyed.mask_store._digest(tk, _state_after(keyed.terminals[tk].dfa, b'"')) != body  # "id" is not allowed


def test_shared_component_entries_equal_fresh_walks(info):
    comp = GrammarCompiler(info)
    first = comp.compile_grammar('start: S\nS: /"[a-z ]{0,90}"/\n')
    second = comp.compile_grammar('start: "[" S "]"\nS: /"[a-z ]{0,93}"/\n')
    t1, t2 = _term(first, "S"), _term(second, "S")
    q1 = _state_after(first.terminals[t1].dfa, b'"')
    q2 = _state_after(second.terminals[t2].dfa, b'"abc')  # at most 90 more letters, as q1
    got1 = first.mask_store.component_entry(t1, q1)
    got2 = second.mask_store.component_entry(t2, q2)
    assert got2 is got1  # the second grammar walked nothing
    store = second.mask_store
    d = second.terminals[t2].dfa
    want = np.zeros(store.words, dtype=np.uint32)
    w_nodes, w_states = np.empty_like(store.trie.node_depth), np.empty_like(store.trie.node_depth)
    nb = lexeme_walk(np.int32(q2), store.trie, d.trans, np.where(d.accept, 0, -1).astype(np.int32), want,
                     w_nodes, w_states)
    bits, facc = got2
    if bits.dtype != np.uint32:
        dense = np.zeros(store.words, dtype=np.uint32)
        for t in bits.tolist():
            dense[t >> 5] |= np.uint32(1 << (t & 31))
        bits = dense
    assert np.array_equal(bits, want)
    assert np.array_equal(np.sort(facc), w_nodes[:nb])


def test_product_state_with_one_live_terminal_is_its_copy(info):
    comp = GrammarCompiler(info)
    cg = comp.compile_grammar('start: (KEY | WORD) ";"\nKEY: "abcdefghij"\nWORD: /[a-z]{1,20}/\n')
    m = GrammarMatcher(cg)
    m.next_token_bits()
    assert m.accept_string(b"abx")  # KEY died at "x": WORD alone is alive
    lx = cg.lexer
    word = _term(cg, "WORD")
    assert lx.dfa_sets[int(lx.state_dfa[m._ls])] == (word,)
    assert lx.components(m._ls) == [(word, _state_after(cg.terminals[word].dfa, b"abx"))]
    bits = m.next_token_bits()  # exact through the jump: every allowed token is accepted and ends well
    for t in np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little"))[:200].tolist():
        m2 = GrammarMatcher(cg)
        assert m2.accept_string(b"abx") and m2.accept_token(t), t
    assert GrammarMatcher(cg).accept_string(b"abcdefghij;")
    assert GrammarMatcher(cg).accept_string(b"abxyz;")
    assert not GrammarMatcher(cg).accept_string(b"abxyzabxyzabxyzabxyzq;")


def _dense(store, bits: np.ndarray) -> np.ndarray:
    if bits.dtype == np.uint32:
        return bits
    dense = np.zeros(store.words, dtype=np.uint32)
    for t in bits.tolist():
        dense[t >> 5] |= np.uint32(1 << (t & 31))
    return dense


@pytest.mark.parametrize("pattern, prefixes", [
    ('/"[^"\\\\]{0,40}"/', [b'"', b'"ab', b'"' + b"x" * 39]),  # dense: the tokens outside the ranges are cleared
    ('/[a-z]{2,6}(-[0-9]+)?/', [b"", b"ab", b"abcdef", b"ab-1"]),  # sparse: token ids
])
def test_component_walks_equal_fresh_walks(info, pattern, prefixes):
    """Every path of component_walk (through the shared subtree tables, twice so the second one
    reads them back; and without them) gives what lexeme_walk gives on the terminal's own DFA."""
    comp = GrammarCompiler(info)
    cg = comp.compile_grammar(f"start: S\nS: {pattern}\n")
    store = cg.mask_store
    t = _term(cg, "S")
    d = cg.terminals[t].dfa
    acc = np.where(d.accept, 0, -1).astype(np.int32)
    for prefix in prefixes:
        q = _state_after(d, prefix)
        want = np.zeros(store.words, dtype=np.uint32)
        w_nodes, w_states = np.empty_like(store.trie.node_depth), np.empty_like(store.trie.node_depth)
        nb = lexeme_walk(np.int32(q), store.trie, d.trans, acc, want, w_nodes, w_states)
        for memo in (store._shared, store._shared, None):
            bits, facc = store._walk(t, q, memo)
            assert np.array_equal(_dense(store, bits), want), (prefix, memo)
            assert np.array_equal(np.sort(facc), w_nodes[:nb]), (prefix, memo)


def test_walks_shared_by_level_equal_fresh_walks(info):
    """States of a long bounded string ("at most k more characters") share their groups' walks
    by level digest (structgen.maskstore.levels): every k, walked in an order that reads groups
    kept by a longer k, a shorter one, and none, gives what lexeme_walk gives."""
    comp = GrammarCompiler(info)
    cg = comp.compile_grammar('start: S\nS: /"[^"\\\\]{0,90}"/\n')
    store = cg.mask_store
    t = _term(cg, "S")
    d = cg.terminals[t].dfa
    acc = np.where(d.accept, 0, -1).astype(np.int32)
    for used in (0, 3, 2, 40, 41, 70, 66, 80, 90, 89, 1):
        for text in (b'"' + b"x" * used, b'"' + "\u00e9".encode() * (used // 2) + b"y" * (used % 2)):
            q = _state_after(d, text)
            want = np.zeros(store.words, dtype=np.uint32)
            w_nodes, w_states = np.empty_like(store.trie.node_depth), np.empty_like(store.trie.node_depth)
            nb = lexeme_walk(np.int32(q), store.trie, d.trans, acc, want, w_nodes, w_states)
            bits, facc = store._walk(t, q, store._shared)
            assert np.array_equal(_dense(store, bits), want), text
            assert np.array_equal(np.sort(facc), w_nodes[:nb]), text
