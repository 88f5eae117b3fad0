"""Regex → byte DFA: agrees with Python's re on UTF-8 bytes; UTF-8 range splitting is exact."""

from __future__ import annotations

import json
import random
import re

import pytest

from structgen.automata.dfa import ANY_CHAR, difference, literal_dfa, without_empty
from structgen.automata.word_sets import literals_dfa, minus_words
from structgen.automata.utf8 import utf8_sequences
from structgen.automata.regex_dfa import json_string_dfa, literal_dfa_ignorecase, minus, quoted_dfa, regex_dfa

PATTERNS = [
    r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"',
    r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?",
    r"(?i:select)",
    r"[^a]",
    r".",
    r"[é-ü]+x",
    r"(ab|a)*b?",
]
ALPHABET = ["a", "b", '"', "\\", "é", "ü", "x", "0", "1", "-", ".", "e", "E", "中", "😀", "\n", "u", "F", "s", "S",
            "L", "T", "c", "\x01"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_regex_dfa_agrees_with_python_re(pattern: str) -> None:
    dfa = regex_dfa(pattern)
    rx = re.compile(pattern)
    rng = random.Random(pattern)
    for _ in range(3000):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))
        assert dfa.matches(s.encode()) == bool(rx.fullmatch(s)), (pattern, s)


def test_dot_accepts_exactly_valid_utf8_characters() -> None:
    dfa = regex_dfa(".")
    rng = random.Random(1)
    for _ in range(20000):
        cp = rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xFFFF),
                         rng.randint(0x10000, 0x10FFFF)])
        if 0xD800 <= cp <= 0xDFFF:
            continue
        assert dfa.matches(chr(cp).encode()) == (cp != 0x0A)
    for bad in [b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xc3"]:
        assert not dfa.matches(bad)


@pytest.mark.parametrize("lo, hi", [(0, 0x10FFFF), (0x80, 0x800), (0xE9, 0xFC), (0xD000, 0xE100)])
def test_utf8_sequences_cover_the_range_exactly(lo: int, hi: int) -> None:
    total = 0
    for seq in utf8_sequences(lo, hi):
        n = 1
        for a, b in seq:
            n *= b - a + 1
        total += n
    surrogates = max(0, min(hi, 0xDFFF) - max(lo, 0xD800) + 1)
    assert total == hi - lo + 1 - surrogates


def test_literals_and_case_folding() -> None:
    assert literal_dfa(b"true").matches(b"true") and not literal_dfa(b"true").matches(b"tru")
    d = literal_dfa_ignorecase("select")
    for word, ok in [("SELECT", True), ("SeLeCt", True), ("ſelect", True), ("selec", False), ("xselect", False)]:
        assert d.matches(word.encode()) == ok == bool(re.fullmatch("(?i:select)", word))
    assert literal_dfa_ignorecase("like").matches("li\u212ae".encode())


def test_without_empty() -> None:
    d = without_empty(regex_dfa("(ab)*"))
    assert not d.matches(b"") and d.matches(b"ab") and d.matches(b"abab") and not d.matches(b"a")


@pytest.mark.parametrize("declared", [{"a"}, {"name", "named", ""},
                                      {'q"uote', "back\\slash", "nl\n", "ctl\x01", "\u00e9", "\u65e5\u672c", "\x7f",
                                       "emoji\U0001f600"}])
def test_byte_difference_equals_the_regex_one(declared):
    """`other_key`'s construction: enc(any) - enc(names) with the names as json.dumps writes them
    equals the difference of the quoted regex languages (each string value has one encoding)."""
    names = "|".join(re.escape(k) for k in sorted(declared))
    want = minus(quoted_dfa(ANY_CHAR + "*"), quoted_dfa(f"({names})"))
    got = difference(json_string_dfa([]), literals_dfa([json.dumps(k, ensure_ascii=False).encode() for k in declared]))
    assert difference(want, got).num_states == 0 and difference(got, want).num_states == 0
    assert got.matches(b'"other"') and not any(got.matches(json.dumps(k, ensure_ascii=False).encode())
                                               for k in declared)


@pytest.mark.parametrize("base", ["json_string", "short_strings", "regex"])
def test_minus_words_is_the_difference(base: str) -> None:
    """minus_words (the trie in front of a's states) accepts what difference(a, literals_dfa(words))
    does; on the JSON string DFA it is minimal too (as many states as the minimised product)."""
    a = {"json_string": lambda: json_string_dfa([]), "short_strings": lambda: quoted_dfa("[ab]{0,3}"),
         "regex": lambda: regex_dfa(r"(ab|a)*b?")}[base]()
    rng = random.Random(base)
    alphabet = ["a", "b", "ab", '"', "\\", "\n", "é", "😀", "\x01"] if base == "json_string" else ["a", "b", "c"]
    probes = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(400)]
    for _ in range(300):
        keys = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(rng.randint(1, 9))})
        words = [json.dumps(k, ensure_ascii=False).encode() if base != "regex" else k.encode() for k in keys]
        got, want = minus_words(a, words), difference(a, literals_dfa(words))
        assert difference(got, want).num_states == 0 and difference(want, got).num_states == 0, keys
        assert bool(((got.trans >= 0).any(axis=1) | got.accept).all()), keys  # no state without a way on
        if base == "json_string":
            assert got.num_states == want.num_states, keys
        for p in probes:
            w = json.dumps(p, ensure_ascii=False).encode() if base != "regex" else p.encode()
            assert got.matches(w) == (a.matches(w) and w not in words), (keys, p)


def _naive_classes(trans, accept) -> int:
    """The number of Myhill-Nerode classes of the live states, by plain Python Moore refinement."""
    n = len(accept)
    cls = [int(a) for a in accept]
    while True:
        sig = [(cls[s],) + tuple(cls[t] if t >= 0 else -1 for t in trans[s]) for s in range(n)]
        ids = {v: i for i, v in enumerate(dict.fromkeys(sig))}
        new = [ids[v] for v in sig]
        if len(ids) == len(set(cls)):
            return len(ids)
        cls = new


@pytest.mark.parametrize("acyclic", [False, True])
def test_minimisation_is_minimal_and_keeps_the_language(acyclic: bool) -> None:
    import numpy as np

    from structgen.automata.dfa import _minimise, _trim

    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 40)
        trans = np.full((n, 256), -1, dtype=np.int32)
        for s in range(n):
            for b in range(97, 97 + rng.randint(1, 4)):
                if rng.random() < 0.7 and (not acyclic or s + 1 < n):
                    trans[s, b] = rng.randint(s + 1, n - 1) if acyclic else rng.randint(0, n - 1)
        accept = np.array([rng.random() < 0.3 for _ in range(n)])
        if not accept.any():
            continue
        full = _trim(trans, accept)
        if full.num_states == 0:
            continue
        small = _trim(*_minimise(full.trans, full.accept))
        assert small.num_states == _naive_classes(full.trans.tolist(), full.accept.tolist())
        assert difference(full, small).num_states == 0 and difference(small, full).num_states == 0


def test_byte_classes_are_computed_once_per_dfa() -> None:
    import numpy as np

    from structgen.automata.dfa import byte_classes
    from structgen.automata.product import column_classes

    d = regex_dfa("[a-c]x|[0-9]+")
    rep, cls = byte_classes(d)
    want_rep, want_cls = column_classes(d.trans)
    assert np.array_equal(rep, want_rep) and np.array_equal(cls, want_cls)
    assert byte_classes(d)[1] is cls  # kept on the DFA object
    assert cls[ord("a")] == cls[ord("b")] != cls[ord("x")] and cls[ord("0")] == cls[ord("9")]
