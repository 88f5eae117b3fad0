"""parser.acceptable_terms (every terminal of a state's row at once, reductions shared) against its
definition: can_shift run for each terminal alone (not $END), a depth-first search over conflict cells.

Stacks come from random words of the non-LALR suite and of GBNF data grammars whose characters are
ambiguous at almost every step (GLR), and of a JSON grammar (LALR), each prefix of each word.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from datasets import DATA, REPO, tiered
from ir_words import random_word
from structgen import GrammarCompiler, GrammarMatcher
from structgen.automata.parser import NEED_STATE, TOO_MANY, StackPool, acceptable_terms, can_shift
from grammar_samples import NON_LALR

GBNF = ["llama_extreme", "hcl_terraform", "sparql_small", "llama_json"]


def _retrying(rt, fn):
    """fn() again after building the parametric state it asked for."""
    while True:
        got = fn()
        if got != NEED_STATE:
            return got
        rt._build_state()


def _by_can_shift(rt, pool: StackPool, top: int) -> set[int] | int:
    P = rt.parser.view()
    st = int(pool.state[top])
    out = set()
    for t in P.row_terms[P.row_ptr[st]:P.row_ptr[st + 1]]:
        if t == P.action.shape[1] - 1:  # $END: can_end's question, not acceptable_terms'
            continue
        if P.action[st, t] > 0:
            out.add(int(t))
            continue
        got = _retrying(rt, lambda: can_shift(np.int32(t), np.int32(top), pool.view(), rt.parser.view()))
        if got == TOO_MANY:
            return TOO_MANY
        if got == 1:
            out.add(int(t))
    return out


def _by_rows(rt, pool: StackPool, top: int) -> set[int] | int:
    words = np.zeros_like(rt.words)
    got = _retrying(rt, lambda: acceptable_terms(np.int32(top), pool.view(), rt.parser.view(), words))
    if got == TOO_MANY:
        return TOO_MANY
    return {t for t in range(64 * len(words)) if int(words[t >> 6]) >> (t & 63) & 1}


def _grammars():
    out = [(name, "lark", g) for name, g, _, _ in NON_LALR]
    out += [(name, "gbnf", (DATA / "gbnf" / f"{name}.gbnf").read_text(encoding="utf-8")) for name in GBNF]
    out.append(("json.lark", "lark", (REPO / "grammars" / "json.lark").read_text(encoding="utf-8")))
    return out


@pytest.mark.parametrize("name, syntax, grammar", tiered(_grammars(), set(),
                                                          key=lambda g: g[0]))
def test_rows_equal_terminal_by_terminal(tokenizer_llama3, name: str, syntax: str, grammar: str) -> None:
    cg = GrammarCompiler(tokenizer_llama3).compile_grammar(grammar, syntax=syntax)
    rt = cg.runtime
    rng = random.Random(0)
    checked = 0
    for _ in range(6):
        word = random_word(cg.ir, rng, max_depth=6)[:60]
        m = GrammarMatcher(cg)
        for i in range(len(word) + 1):
            for _, stack in m._branches:
                pool = StackPool()
                top, _ = pool.load(stack)
                assert _by_rows(rt, pool, top) == _by_can_shift(rt, pool, top), (name, word[:i], stack)
                checked += 1
            if i < len(word) and not m.accept_string(word[i:i + 1]):
                break
    assert checked > 5
