"""GrammarCompiler: regexes (vs Python's re and llguidance), Lark features, and clear errors."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from datasets import TOKENIZERS
from structgen import GrammarCompiler, GrammarError, GrammarMatcher, RegexError, TokenizerInfo

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"

REGEXES = [
    r"[0-9]{3}-[0-9]{4}",
    r"(ab|cd)*e?",
    r"[a-z]+@[a-z]+\.(com|org)",
    r"-?(0|[1-9][0-9]*)(\.[0-9]+)?",
    r"[é-ü]+x|中文",
    r"a/b",
    r"(?i:select)",
    r"\d\d?:\d\d",
]
ALPHABET = list("0123456789-abcdeé中文x@.:/ SsoLErtü")


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    return GrammarCompiler(TokenizerInfo.from_tokenizer_json(LLAMA3))


def _full_match(compiler: GrammarCompiler, pattern: str, text: str) -> bool:
    m = GrammarMatcher(compiler.compile_regex(pattern))
    return m.accept_string(text) and m.is_accepting()


@pytest.mark.parametrize("pattern", REGEXES)
def test_regex_full_match_agrees_with_python_re(compiler: GrammarCompiler, pattern: str) -> None:
    rng = random.Random(pattern)
    rx = re.compile(pattern)
    samples = [
        "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 8))) for _ in range(400)
    ] + ["555-1234", "abcde", "", "x@y.com", "-0.5", "éüx", "中文", "a/b", "SeLeCt", "9:30", "12:30"]
    for s in samples:
        assert _full_match(compiler, pattern, s) == bool(rx.fullmatch(s)), (pattern, s)


def test_regex_masks_match_llguidance(compiler: GrammarCompiler) -> None:
    llguidance = pytest.importorskip("llguidance")
    from peers import llguidance_fill

    tok = compiler.tokenizer_info
    lltok = llguidance.LLTokenizer(str(LLAMA3), n_vocab=tok.vocab_size, eos_token=tok.stop_token_ids, slices=[])
    htok = pytest.importorskip("tokenizers").Tokenizer.from_file(str(LLAMA3))
    words = (tok.vocab_size + 31) // 32
    a, b = np.zeros((1, words), np.int32), np.zeros((1, words), np.int32)
    cases = {r"[0-9]{3}-[0-9]{4}": "555-1234", r"[a-z]+@[a-z]+\.(com|org)": "ada@math.org",
             r"-?(0|[1-9][0-9]*)(\.[0-9]+)?": "-12.75", r"(ab|cd)*e?": "abcdabe"}
    for pattern, text in cases.items():
        m = GrammarMatcher(compiler.compile_regex(pattern))
        ll = llguidance.LLMatcher(lltok, llguidance.LLMatcher.grammar_from_regex(pattern), log_level=0)
        for t in htok.encode(text, add_special_tokens=False).ids + [tok.stop_token_ids[0]]:
            m.fill_next_token_bitmask(a)
            llguidance_fill(ll, b)
            assert np.array_equal(a, b), (pattern, text, t)
            assert m.accept_token(t) and ll.consume_token(t)


def test_regex_matching_empty_allows_immediate_stop(compiler: GrammarCompiler) -> None:
    m = GrammarMatcher(compiler.compile_regex("(ab)*"))
    assert m.is_accepting()
    assert m.accept_string("ab") and m.is_accepting()
    assert m.accept_string("a") and not m.is_accepting()


def test_lark_features(compiler: GrammarCompiler) -> None:
    grammar = r"""
    %import common.WS
    %import common.SIGNED_NUMBER
    %ignore WS
    start: pair ("," pair)*
    ?pair: key "=" value
    key: NAME
    value: SIGNED_NUMBER | list{SIGNED_NUMBER}
    list{item}: "[" item ("," item)* "]"
    NAME.2: /[a-z]+/
    """
    m = GrammarMatcher(compiler.compile_grammar(grammar))
    assert m.accept_string("a = 1, bc=[1, -2.5e3]")
    assert m.is_accepting()
    assert not m.accept_string("=")


@pytest.mark.parametrize(
    "grammar, error, message",
    [
        ("", GrammarError, "empty"),
        ('start: "a" (', GrammarError, "invalid Lark grammar"),
        ('start: "x" start', GrammarError, "unproductive"),
        ("start: R\nR: /a*/", GrammarError, "matches the empty string"),
        ("start: R\nR: /(?<=a)b/", GrammarError, "R"),
    ],
)
def test_grammar_errors_are_clear(compiler: GrammarCompiler, grammar: str, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        compiler.compile_grammar(grammar)


def test_invalid_regex(compiler: GrammarCompiler) -> None:
    with pytest.raises(RegexError):
        compiler.compile_regex("[unclosed")


def test_conflicts_run_on_the_glr_path_unless_prefer_shift(compiler: GrammarCompiler) -> None:
    grammar = 'start: e\ne: e "+" e | "x"'
    cg = compiler.compile_grammar(grammar)  # ambiguous: every conflict is kept (GLR) and recorded
    assert cg.parser.glr and any("shift/reduce conflict on PLUS" in c for c in cg.parser.conflicts)
    m = GrammarMatcher(cg)
    assert m.accept_string("x+x+x") and m.is_accepting()
    cg = compiler.compile_grammar(grammar, prefer_shift=True)  # the opt-in is recorded
    assert not cg.parser.glr and "resolved: shift (prefer_shift)" in cg.parser.conflicts[0]
    m = GrammarMatcher(cg)
    assert m.accept_string("x+x+x") and m.is_accepting()


def test_reduce_reduce_conflicts_keep_both_rules(compiler: GrammarCompiler) -> None:
    cg = compiler.compile_grammar('start: a "1" | b "2"\na: "x"\nb: "x"')
    m = GrammarMatcher(cg)
    assert m.accept_string("x2") and m.is_accepting()
    m.reset()
    assert m.accept_string("x1") and m.is_accepting()


@pytest.mark.parametrize("grammar, word", [
    # Lark resolves these conflicts as shifts and then rejects the word; the GLR path keeps it
    ('start: x | y\nx: "a" x? "b"\ny: "a" y? "b" "b"', "aaaaabbbbb"),
    ('start: a\na: b a "x" | "y"\nb: "z"?', "yxxxxxxxx"),
])
def test_conflicts_keep_the_language(compiler: GrammarCompiler, grammar: str, word: str) -> None:
    import lark

    assert lark.Lark(grammar, parser="earley").parse(word)  # the word is in the language
    m = GrammarMatcher(compiler.compile_grammar(grammar))
    assert m.accept_string(word) and m.is_accepting()
    cg = compiler.compile_grammar(grammar, prefer_shift=True)  # Lark's choice, on request: loses the word
    m = GrammarMatcher(cg)
    assert not (m.accept_string(word) and m.is_accepting())


def test_compile_is_cached_and_deterministic(compiler: GrammarCompiler) -> None:
    from datasets import grammar_text

    text = grammar_text("json")
    assert compiler.compile_grammar(text) is compiler.compile_grammar(text)
    other = GrammarCompiler(compiler.tokenizer_info).compile_grammar(text)
    words = (compiler.tokenizer_info.vocab_size + 31) // 32
    for prefix in ['', '{"a": [1, ', '{"k": "v', "[true, nu"]:
        a, b = np.zeros((1, words), np.int32), np.zeros((1, words), np.int32)
        m1, m2 = GrammarMatcher(compiler.compile_grammar(text)), GrammarMatcher(other)
        assert m1.accept_string(prefix) and m2.accept_string(prefix)
        m1.fill_next_token_bitmask(a)
        m2.fill_next_token_bitmask(b)
        assert a.tobytes() == b.tobytes()


def test_memory_cache_keeps_the_most_recently_used(compiler: GrammarCompiler) -> None:
    import gc
    import weakref

    small = GrammarCompiler(compiler.tokenizer_info, max_cached=2)
    a, b = small.compile_regex("a+"), small.compile_regex("b+")
    assert small.compile_regex("a+") is a  # a is now the most recently used
    small.compile_regex("c+")  # drops b
    assert small.compile_regex("a+") is a
    gone = weakref.ref(b)
    assert small.compile_regex("b+") is not b
    gc.disable()
    try:
        del b
        assert gone() is None  # freed by reference counting alone (no cycle through its mask store)
    finally:
        gc.enable()


def test_state_explosion_is_a_clean_limit(compiler: GrammarCompiler) -> None:
    from structgen import LimitExceeded

    with pytest.raises(LimitExceeded, match="DFA states"):
        compiler.compile_regex("(a|b)*a(a|b){20}")  # the minimal DFA has 2**21 states


def test_compiles_leave_the_garbage_collector_as_they_found_it(compiler: GrammarCompiler) -> None:
    """A compile pauses the cyclic GC and collects its young garbage at the end; it restores the
    GC's state, also when the compile is refused, and leaves a disabled GC alone."""
    import gc

    from structgen import StructgenError

    assert gc.isenabled()
    compiler.compile_grammar('start: "a" X\nX: /[0-9]{1,3}/\n')
    assert gc.isenabled()
    with pytest.raises(StructgenError):
        compiler.compile_grammar("start: missing_rule\n")
    assert gc.isenabled()
    gc.disable()
    try:
        compiler.compile_grammar('start: "b" X\nX: /[0-9]{1,4}/\n')
        assert not gc.isenabled()
    finally:
        gc.enable()
