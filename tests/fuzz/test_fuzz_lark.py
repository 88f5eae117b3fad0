"""Fuzz: random small Lark CFGs (ambiguous, left-recursive, non-LALR ones included: those run on
GLR) against Lark's Earley parser; on random words of each grammar (tests/ir_words.py), mutations
and random strings, the matcher accepts a word iff Earley parses it, and every prefix of an
accepted word is accepted. Terminals are a prefix-free set (strategies.LARK_TERMINALS) so greedy
lexing and Earley's dynamic lexer cut words alike (README: "greedy lexing ... known limit").
LimitExceeded (GLR parse-count bound, compile limits) is a typed, documented outcome, not a failure.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import examples
from fuzz.strategies import LARK_ALPHABET, broken_grammars, compiler, lark_grammars, mutate_string
from ir_words import random_word
from structgen import GrammarMatcher, StructgenError
from structgen.errors import LimitExceeded

lark = pytest.importorskip("lark")


def earley(grammar: str):
    """Lark's Earley parser for `grammar`, or None when Lark refuses the grammar."""
    try:
        return lark.Lark(grammar, parser="earley", lexer="dynamic")
    except lark.exceptions.LarkError:
        return None


def earley_accepts(parser, word: str) -> bool:
    try:
        parser.parse(word)
        return True
    except lark.exceptions.LarkError:
        return False


def lark_words(cg, rng: random.Random, sep: bytes = b"", n: int = 16) -> list[str]:
    """Random words of the compiled grammar (terminals joined by `sep`), their mutations and random
    strings (all short)."""
    words = [w for w in (random_word(cg.ir, rng, max_depth=5, sep=sep).decode() for _ in range(n // 2)) if len(w) <= 16]
    words += [mutate_string(rng.choice(words), rng, LARK_ALPHABET) for _ in range(n // 4)] if words else []
    words += ["".join(rng.choice(LARK_ALPHABET) for _ in range(rng.randint(0, 5))) for _ in range(n - len(words))]
    return words


def _matches(cg, word: str, rng: random.Random) -> tuple[bool, bool] | None:
    """(accepted as a prefix, complete word), or None when the GLR parse-count bound is hit. The
    word goes in as chunks of 1-4 characters, so chunk ends fall inside lexemes and between them."""
    m = GrammarMatcher(cg)
    try:
        i = 0
        while i < len(word):
            j = i + rng.randint(1, 4)
            if not m.accept_string(word[i:j]):
                return False, False
            i = j
        return True, m.is_accepting()
    except LimitExceeded:
        return None


def check_lark(grammar: str, seed: int) -> str:
    """Compile `grammar` and compare the matcher with Earley on words; AssertionError on a
    disagreement. Returns "oracle refused", "refused" (typed compile error) or "checked"."""
    parser = earley(grammar)
    if parser is None:
        return "oracle refused"
    trailing = "%ignore" in grammar  # Lark allows ignored text after the last lexeme too
    try:
        cg = compiler().compile_grammar(grammar, allow_trailing_ignore=trailing)
    except StructgenError:
        return "refused"  # unproductive rules (GrammarError), limits
    rng = random.Random(seed)
    for w in lark_words(cg, rng, b" " if trailing else b""):
        got = _matches(cg, w, rng)
        if got is None:
            continue
        inside = earley_accepts(parser, w)
        assert got[1] == inside, f"grammar={grammar!r} word={w!r}: Earley {inside}"
        if inside:
            for i in range(len(w)):
                assert _matches(cg, w[:i], rng) in (None, (True, earley_accepts(parser, w[:i]))), \
                    f"grammar={grammar!r} word={w!r}: prefix {w[:i]!r} of a word rejected"
    return "checked"


# the fuzzer's arguments (bench/fuzz.py runs check_lark on the same strategies)
FUZZ_ARGS = dict(grammar=lark_grammars(), seed=st.integers(0, 2**32 - 1))


@settings(max_examples=examples(200), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(**FUZZ_ARGS)
def test_matcher_agrees_with_earley(grammar: str, seed: int) -> None:
    check_lark(grammar, seed)


def check_lark_soup(grammar: str) -> str:
    """Any (often broken) grammar text: compile_grammar succeeds or raises a StructgenError."""
    try:
        compiler().compile_grammar(grammar)
    except StructgenError:
        return "refused"
    return "compiled"


SOUP_ARGS = dict(grammar=broken_grammars())


@settings(max_examples=examples(300), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(**SOUP_ARGS)
def test_any_grammar_text_compiles_or_is_refused_typed(grammar: str) -> None:
    check_lark_soup(grammar)


def test_glr_accept_string_is_polynomial() -> None:
    """Kernel runs for accept_string("c" * 10) against ten one-character calls (2,056 vs 39 before
    glr.advance walked each (lexer state, stack, offset) once): on `a: a a | "c"` the stacks after
    each character are few, so one call needs no more work."""
    cg = compiler().compile_grammar('start: a\na: a a | "c"\n')
    calls, run = [0], cg.runtime.run

    def counted(*args):
        calls[0] += 1
        return run(*args)

    cg.runtime.run = counted
    try:
        assert GrammarMatcher(cg).accept_string("c" * 10)
        whole, calls[0] = calls[0], 0
        m = GrammarMatcher(cg)
        assert all(m.accept_string("c") for _ in range(10))
        assert whole <= 4 * calls[0], (whole, calls[0])
    finally:
        del cg.runtime.run
