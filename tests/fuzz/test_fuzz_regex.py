"""Fuzz: random regexes (literals, classes, ranges across UTF-8 lengths, negation, `.`, `\\d\\w\\s`,
alternation, groups, `* + ? {m,n}`, lazy forms) compiled with compile_regex; on words sampled from
each regex, their mutations, random strings and random bytes, the matcher agrees with the `regex`
module: a full match iff accepted-and-can-end, and a viable prefix (regex's partial match) iff the
bytes are accepted. structgen's dialect is Python's with ASCII classes, `.` not matching "\\n" and
`(?i)` folding case (automata/regex_dfa.py): the oracle gets the classes spelled out. Anchors are
refused (RegexError), by design.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import examples
from fuzz.strategies import (REGEX_ALPHABET, accepts, compiler, garbage_regexes, mutate_string, regex_asts,
                             regex_text, sample_regex_word)
from structgen import GrammarMatcher, StructgenError

regex = pytest.importorskip("regex")


def _random_bytes(rng: random.Random) -> bytes:
    """Short byte strings, often invalid UTF-8 (stray continuation bytes, surrogates, overlongs)."""
    pool = [b"a", b"\x80", b"\xc3", b"\xc3\xa9", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xff", b"\n"]
    return b"".join(rng.choice(pool) for _ in range(rng.randint(1, 4)))


def regex_words(ast: tuple, rng: random.Random, n: int = 24) -> list[str]:
    """Words of the regex, their mutations and random strings over REGEX_ALPHABET."""
    words = [sample_regex_word(ast, rng) for _ in range(n // 2)]
    words += [mutate_string(rng.choice(words), rng, REGEX_ALPHABET) for _ in range(n // 3)]
    words += ["".join(rng.choice(REGEX_ALPHABET) for _ in range(rng.randint(0, 4))) for _ in range(n - len(words))]
    return words


def check_regex(ast: tuple, seed: int, anchored: bool = False, icase: bool = False) -> str:
    """Compile the AST's regex (wrapped in `^...$` when `anchored`, after `(?i)` when `icase`) and
    compare the matcher with `regex` on words; AssertionError on a disagreement. Returns "refused"
    (a typed compile error) or "checked"."""
    pattern = regex_text(ast)
    if anchored:
        pattern = f"^{pattern}$"
    if icase:
        pattern = "(?i)" + pattern
    try:
        cg = compiler().compile_regex(pattern)
    except StructgenError:
        return "refused"  # anchors (RegexError), a pattern that matches nothing, a limit
    assert not anchored, f"pattern={pattern!r}: anchors compiled (documented as refused)"
    oracle = regex.compile(regex_text(ast, oracle=True), flags=regex.IGNORECASE if icase else 0)
    rng = random.Random(seed)
    for w in regex_words(ast, rng):
        full = oracle.fullmatch(w) is not None
        assert accepts(cg, w) == full, f"pattern={pattern!r} word={w!r}: regex fullmatch {full}"
        viable = oracle.fullmatch(w, partial=True) is not None
        assert GrammarMatcher(cg).accept_string(w) == viable, f"pattern={pattern!r} word={w!r}: prefix viable {viable}"
    for data in (_random_bytes(rng) for _ in range(4)):
        try:
            full = oracle.fullmatch(data.decode("utf-8")) is not None
        except UnicodeDecodeError:
            full = False  # the DFA reads UTF-8: no invalid sequence, no surrogate
        assert accepts(cg, data) == full, f"pattern={pattern!r} bytes={data!r}: regex fullmatch {full}"
    return "checked"


# the fuzzer's arguments (bench/fuzz.py runs check_regex on the same strategies)
FUZZ_ARGS = dict(ast=regex_asts, seed=st.integers(0, 2**32 - 1),  # k == max: rare, as hypothesis favours 0
                 anchored=st.integers(0, 15).map(lambda k: k == 15), icase=st.integers(0, 3).map(lambda k: k == 3))


@settings(max_examples=examples(1000), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(**FUZZ_ARGS)
def test_matcher_agrees_with_regex_module(ast: tuple, seed: int, anchored: bool, icase: bool) -> None:
    check_regex(ast, seed, anchored, icase)


def check_regex_soup(pattern: str, seed: int) -> str:
    """Any pattern text: compile_regex succeeds or raises a StructgenError (nothing untyped), and
    what compiles agrees with Python's re (ASCII classes) on random strings. Returns the outcome."""
    import re

    try:
        cg = compiler().compile_regex(pattern)
    except StructgenError:
        return "refused"
    if "(?i" in pattern:  # the oracle's classes are ASCII, and so would its case folding be
        return "compiled (not compared: (?i))"
    oracle = re.compile(pattern, re.ASCII)
    rng = random.Random(seed)
    for w in ["".join(rng.choice("ab019é-.,{}\n 😀") for _ in range(rng.randint(0, 5))) for _ in range(24)]:
        full = oracle.fullmatch(w) is not None
        assert accepts(cg, w) == full, f"pattern={pattern!r} word={w!r}: re fullmatch {full}"
    return "checked"


SOUP_ARGS = dict(pattern=garbage_regexes, seed=st.integers(0, 2**32 - 1))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # Python's re on `[[`, `--`, `||`: possible future set syntax
@settings(max_examples=examples(1500), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(**SOUP_ARGS)
def test_any_pattern_compiles_or_is_refused_typed(pattern: str, seed: int) -> None:
    check_regex_soup(pattern, seed)


# minimal reproducers of what this fuzzer found, now fixed (Python's re is the reference: the dialect is its own)
FIXED = [
    ("(?i)[^a-\\u4e2d]", "B"),  # a class wider than 0x3000 code points got no case variants: unsound
    ("(?i)[\\xe9-\\U0010ffff]", "É"),  # the same skip: É, the other case of é, lies below the class
    ("(?i)[\\x7f-\\uffff]", "s"),  # the same: ſ (U+017F) and K (U+212A) are in it and fold to s, k
    ("(?i)k", "\u212a"),  # re's extra folds: the Kelvin sign is k
    ("(?i)s", "ſ"),  # long s is s
    ("(?i)ß", "ẞ"),  # capital sharp s lowercases to ß
    ("(?i)a(?:\\W|[^\\x0a-\\x5f])", "ak"),  # bench/fuzz.py: \\W held the Kelvin sign, case-closed to k
]


@pytest.mark.parametrize("pattern, word", FIXED)
def test_fixed_bug_reproducers(pattern: str, word: str) -> None:
    import re

    assert accepts(compiler().compile_regex(pattern), word) == (re.fullmatch(pattern, word) is not None)
