"""regex_dfa.py against Python's `re`: random regexes over a small alphabet, random strings.

The dialect is full match with ASCII `\\d \\w \\s` (compared with re.ASCII); anchors, lookarounds
and backreferences are refused. Quoted DFAs accept exactly json.dumps' literal of each value.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from structgen.automata.regex_dfa import meet, minus, quoted_dfa, regex_dfa
from structgen.errors import RegexError

ALPHABET = ["a", "b", "c", "0", "7", " ", "\n", "-", "é", "中", "😀", '"', "\\", "\x01", "A", "_"]
ATOMS = ["a", "b", "c", ".", "[ab]", "[^a]", "[a-c0-9]", "\\d", "\\w", "\\s", "\\S", "é", "[é-中]", "\\\\", '"',
         "[\\x00-\\x1f]", "(?i:a)"]


def random_regex(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if depth > 3 or r < 0.3:
        return rng.choice(ATOMS)
    if r < 0.55:
        return "".join(random_regex(rng, depth + 1) for _ in range(rng.randint(2, 3)))
    if r < 0.7:
        return "(?:" + "|".join(random_regex(rng, depth + 1) for _ in range(rng.randint(2, 3))) + ")"
    sub = random_regex(rng, depth + 1)
    q = rng.choice(["*", "+", "?", "{2}", "{0,3}", "{1,2}", "{2,}"])
    return f"(?:{sub}){q}"


def test_random_regexes_agree_with_python_re() -> None:
    rng = random.Random(11)
    for _ in range(300):
        pattern = random_regex(rng)
        rx = re.compile(pattern, re.ASCII)
        try:
            dfa = regex_dfa(pattern)
        except RegexError:  # matches nothing: no string may match
            dfa = None
        quoted = quoted_dfa(pattern)
        for _ in range(150):
            s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))
            want = bool(rx.fullmatch(s))
            assert (dfa is not None and dfa.matches(s.encode())) == want, (pattern, s)
            assert quoted.matches(json.dumps(s, ensure_ascii=False).encode()) == want, (pattern, s)


@pytest.mark.parametrize("pattern", ["^a", "a$", "(?=a)a", "(?!b)a", "(a)\\1", "\\ba", "(?>a)"])
def test_unsupported_constructs_are_refused(pattern: str) -> None:
    with pytest.raises(RegexError, match="not supported"):
        regex_dfa(pattern)


def test_counted_repetition_stays_small_and_exact() -> None:
    dfa = regex_dfa(r"(?:\S+\s+){0,99}\S+")
    words = ["w"] * 100
    assert dfa.matches(" ".join(words).encode()) and not dfa.matches(" ".join(words + ["x"]).encode())


def test_quoted_set_algebra() -> None:
    digits, letters = quoted_dfa("[0-9]+"), quoted_dfa("[a-z0-9]+")
    assert meet(digits, quoted_dfa("[a-z]+")).num_states == 0
    only_letters = minus(letters, digits)
    assert only_letters.matches(b'"a1"') and not only_letters.matches(b'"12"')
    assert quoted_dfa("[^\\s\\S]").num_states == 0  # the empty language is a DFA with no state
    assert quoted_dfa('a"b\\\\').matches(b'"a\\"b\\\\"') and not quoted_dfa('a"b').matches(b'"a"b"')


@pytest.mark.parametrize("lo,hi", [(0, 0), (0, 1), (1, 1), (2, 5), (0, 7), (5, 5), (4, 9), (0, None), (1, None),
                                   (3, None)])
def test_length_bounds_are_the_regex_route_s_dfa(lo: int, hi: int | None) -> None:
    """quoted_dfa of ANY_CHAR{lo,hi} (minLength / maxLength) is built by copying the one-character
    loop; it is the minimal DFA the regex route (Thompson NFA, subsets, minimisation) gives."""
    from structgen.automata.dfa import difference
    from structgen.automata.regex_dfa import _dfa_of, quoted_dfa

    pattern = f"[\\s\\S]{{{lo}{'' if hi == lo else ',' + ('' if hi is None else str(hi))}}}"
    got, want = quoted_dfa(pattern), _dfa_of(pattern, True, 20_000)
    assert got.num_states == want.num_states
    assert difference(got, want).num_states == 0 and difference(want, got).num_states == 0
