"""Tests for the shipped grammars in ``grammars/``.

(a) every grammar builds with Lark LALR(1) + contextual lexer, with no
    shift/reduce or reduce/reduce conflicts (``strict=True``);
(b) Lark accepts every valid sample and rejects every invalid one;
(c) for json.lark, a strict ``json.loads`` agrees with Lark on every sample,
    and ``json.dumps`` output for random JSON values parses;
(d) llguidance accepts each grammar text (and, with a byte-level tokenizer,
    agrees with Lark on the samples).
"""

from __future__ import annotations

import json
import math
import re

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.grammar_samples import (
    CONTEXTUAL_QUIRKS,
    GRAMMAR_NAMES,
    INVALID,
    LLGUIDANCE_ONLY,
    VALID,
    llguidance_lark,
    load_grammar,
)

# --------------------------------------------------------------------- helpers

_PARSERS: dict[str, lark.Lark] = {}


def lark_parser(name: str) -> lark.Lark:
    if name not in _PARSERS:
        _PARSERS[name] = lark.Lark(load_grammar(name), parser="lalr", lexer="contextual")
    return _PARSERS[name]


def lark_accepts(name: str, text: str) -> bool:
    try:
        lark_parser(name).parse(text)
    except lark.exceptions.LarkError:
        return False
    return True


def _reject_constant(name: str):
    raise ValueError(f"not RFC 8259 JSON: {name}")


def strict_json_loads(text: str) -> bool:
    """``json.loads`` restricted to RFC 8259 (no NaN / Infinity / -Infinity)."""
    try:
        json.loads(text, parse_constant=_reject_constant)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return False
    return True


def _cases(samples: dict[str, list[str]]):
    return [
        pytest.param(name, text, id=f"{name}-{i}")
        for name in GRAMMAR_NAMES
        for i, text in enumerate(samples[name])
    ]


# ------------------------------------------- reference greedy contextual lexer


class GreedyLexError(Exception):
    pass


_TERMINAL_REGEXES: dict[str, dict] = {}


def _terminal_regexes(name: str) -> dict:
    """Terminal name -> compiled pattern supporting ``fullmatch(..., partial=True)``."""
    if name not in _TERMINAL_REGEXES:
        regex = pytest.importorskip("regex")  # the third-party `regex` module
        _TERMINAL_REGEXES[name] = {
            t.name: regex.compile(t.pattern.to_regexp()) for t in lark_parser(name).terminals
        }
    return _TERMINAL_REGEXES[name]


def greedy_parse(name: str, text: str) -> list[tuple[str, str]]:
    """Lex+parse ``text`` the way structgen does, using Lark's LALR tables.

    At each position only the terminals the LALR state can shift (plus the
    %ignore terminals) are tried. The lexeme is the longest prefix any of them
    matches; on a tie a string literal beats a regex. The lexer never backs up:
    if the longest *live* prefix (one that some terminal could still extend to
    a match) is longer than the longest *complete* match, that is an error --
    for a valid input it would mean the grammar needs backtracking.
    Returns the (terminal, lexeme) stream; raises GreedyLexError or a Lark error.
    """
    parser = lark_parser(name)
    terms = {t.name: t for t in parser.terminals}
    compiled = _terminal_regexes(name)
    ignore = set(parser.lexer_conf.ignore)
    ip = parser.parse_interactive("")
    state = ip.parser_state
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        allowed = [n for n in state.parse_conf.states[state.position] if n in terms] + sorted(ignore)
        best_len, best, live_len = 0, [], 0
        k = 1
        while pos + k <= len(text):
            chunk = text[pos : pos + k]
            live = [n for n in allowed if compiled[n].fullmatch(chunk, partial=True)]
            if not live:
                break
            live_len = k
            full = [n for n in live if compiled[n].fullmatch(chunk)]
            if full:
                best_len, best = k, full
            k += 1
        if not best:
            raise GreedyLexError(f"no terminal matches at {pos}: {text[pos:pos + 10]!r}")
        if live_len != best_len:
            raise GreedyLexError(
                f"would need backtracking at {pos}: {text[pos:pos + live_len]!r} is live, "
                f"only {text[pos:pos + best_len]!r} matches"
            )
        literals = [n for n in best if isinstance(terms[n].pattern, lark.lexer.PatternStr)]
        winners = literals or best
        if len(winners) != 1:
            raise GreedyLexError(f"ambiguous lexeme {text[pos:pos + best_len]!r}: {winners}")
        tname, value = winners[0], text[pos : pos + best_len]
        if tname not in ignore:
            ip.feed_token(lark.Token(tname, value))
            out.append((tname, value))
        pos += best_len
    ip.feed_eof()
    return out


def greedy_accepts(name: str, text: str) -> bool:
    try:
        greedy_parse(name, text)
    except (GreedyLexError, lark.exceptions.LarkError):
        return False
    return True


# ---------------------------------------------------------------- (a) building


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_grammar_builds_lalr_contextual(name):
    text = load_grammar(name)
    parser = lark.Lark(text, parser="lalr", lexer="contextual")
    assert "start" in {r.origin.name for r in parser.rules}
    # strict=True turns silently-resolved shift/reduce conflicts into errors.
    lark.Lark(text, parser="lalr", lexer="contextual", strict=True)


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_grammar_has_no_unproductive_or_unreachable_rules(name):
    parser = lark_parser(name)
    rules = parser.rules
    terminals = {t.name for t in parser.terminals}
    nonterminals = {r.origin.name for r in rules}
    # productive: fixpoint over rules whose every symbol is a terminal or productive
    productive: set[str] = set()
    changed = True
    while changed:
        changed = False
        for r in rules:
            if r.origin.name in productive:
                continue
            if all(s.name in terminals or s.name in productive for s in r.expansion):
                productive.add(r.origin.name)
                changed = True
    assert productive == nonterminals
    # reachable from start
    reachable = {"start"}
    stack = ["start"]
    while stack:
        cur = stack.pop()
        for r in rules:
            if r.origin.name == cur:
                for s in r.expansion:
                    if s.name in nonterminals and s.name not in reachable:
                        reachable.add(s.name)
                        stack.append(s.name)
    assert reachable == nonterminals


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_sample_lists_are_large_enough(name):
    assert len(VALID[name]) >= 25
    assert len(INVALID[name]) >= 15
    assert not set(VALID[name]) & set(INVALID[name])


# ----------------------------------------------------------- (b) Lark samples


@pytest.mark.parametrize("name,text", _cases(VALID))
def test_lark_accepts_valid(name, text):
    lark_parser(name).parse(text)  # raises with a useful message on failure


@pytest.mark.parametrize("name,text", _cases(INVALID))
def test_lark_rejects_invalid(name, text):
    assert not lark_accepts(name, text), f"{name} grammar accepted invalid {text!r}"


@pytest.mark.parametrize("name,text", _cases(VALID))
def test_greedy_no_backtrack_lexer_accepts_valid(name, text):
    greedy_parse(name, text)  # raises with the reason on failure


@pytest.mark.parametrize("name,text", _cases(INVALID))
def test_greedy_no_backtrack_lexer_rejects_invalid(name, text):
    assert not greedy_accepts(name, text)


# Fragments from which near-valid texts are assembled, to compare Lark's own
# lexer (Python `re`, first alternative wins) with the greedy longest-match one.
_FRAGMENTS = {
    "json": ["1", "0", "-", ".", "5", "e", "E", "+", '"', "\\", "u", "a", "[", "]", "{", "}",
             ",", ":", " ", "true", "null", "\n", "\x01", "\u00e9"],
    "arithmetic": ["1", "0", ".", "5", "e", "x", "f", "(", ")", ",", "+", "-", "*", "**", "^",
                   "/", "%", " ", "\n"],
    "sql": ["*", "from", " t", "a", ".", "1", ".5", "'x'", "''", '"q"', "=", "<", ">", "!",
            "<>", "<=", ">=", " and ", " or ", "not ", "in", "(", ")", ",", " ", "is ",
            "null", " limit ", ";", "between ", "like ", "e", "as ", " order by ", "desc",
            " join ", " on ", "left ", "1e", "-", "+", "/", "%", "count(*)", "select "],
    "minilang": ["let ", "x", "=", "==", "!", "!=", "<", "<=", "1", ".", "5", ";", "(", ")",
                 "{", "}", "if ", "else ", "while ", "return ", "function ", "f", '"', "\\",
                 "/", "//", "\n", " ", "&&", "||", "[", "]", ",", "-", "+", "*", "%"],
}
_PREFIX = {"json": "", "arithmetic": "", "sql": "SELECT ", "minilang": ""}


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_lark_and_greedy_lexer_agree_on_fragments(name):
    @settings(max_examples=200, deadline=None, database=None)
    @given(st.lists(st.sampled_from(_FRAGMENTS[name]), max_size=8),
           st.lists(st.sampled_from(_FRAGMENTS[name]), max_size=4))
    def check(head, tail):
        text = _PREFIX[name] + "".join(head)
        if name == "sql":
            text += " FROM t" + "".join(tail)
        assert lark_accepts(name, text) == greedy_accepts(name, text), repr(text)

    check()


# ------------------------------------------------------------- (c) JSON / RFC


@pytest.mark.parametrize("text", VALID["json"] + INVALID["json"])
def test_json_grammar_agrees_with_json_loads(text):
    assert lark_accepts("json", text) == strict_json_loads(text)


def test_json_grammar_samples_are_labelled_like_json_loads():
    assert all(strict_json_loads(t) for t in VALID["json"])
    assert not any(strict_json_loads(t) for t in INVALID["json"])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=json_values,
    indent=st.sampled_from([None, 0, 2, "\t"]),
    ensure_ascii=st.booleans(),
)
def test_json_dumps_output_parses(value, indent, ensure_ascii):
    text = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)
    assert lark_accepts("json", text), text
    assert greedy_accepts("json", text), text
    # surrounding whitespace is insignificant
    assert lark_accepts("json", f" \n\t{text}\r\n ")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from('0123456789-+.eE "\\[]{},:tfrueanlsx\n\t\x00\x1f'), max_size=12))
def test_json_grammar_agrees_with_json_loads_on_fuzz(text):
    assert lark_accepts("json", text) == strict_json_loads(text), repr(text)


@pytest.mark.parametrize(
    "number",
    ["0", "-0", "7", "-12", "0.5", "-0.0", "1e5", "1E5", "1e+5", "1e-5", "1.25E-05", "-9.75e+300"],
)
def test_json_numbers(number):
    assert lark_accepts("json", number)
    assert lark_accepts("json", f"[{number}]")
    assert math.isfinite(json.loads(number))


@pytest.mark.parametrize("cp", list(range(0x20)))
def test_json_raw_control_characters_rejected_escaped_accepted(cp):
    assert not lark_accepts("json", f'"{chr(cp)}"')
    assert lark_accepts("json", f'"\\u{cp:04x}"')


# -------------------------------------------------------------- (d) llguidance


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_llguidance_accepts_grammar(name):
    llguidance = pytest.importorskip("llguidance")
    for text in (load_grammar(name), llguidance_lark(load_grammar(name))):
        grammar = llguidance.grammar_from("lark", text)
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
        assert not is_error, messages
        assert messages == [], messages
        assert llguidance.LLMatcher.validate_grammar(grammar) == ""


# Whitespace that each grammar %ignores (minilang also ignores // comments).
_TRAILING_IGNORED = {
    "json": re.compile(r"[ \t\n\r]*\Z"),
    "arithmetic": re.compile(r"[ \t\f\r\n]*\Z"),
    "sql": re.compile(r"[ \t\r\n]*\Z"),
    "minilang": re.compile(r"[ \t\f\r\n]*\Z"),
}


@pytest.fixture(scope="module")
def llg_accepts():
    r"""Whether llguidance accepts a whole text, fed byte by byte.

    Uses a 256-byte + EOS tokenizer and the grammar text with
    ``llguidance_lark``'s ``allow_initial_skip`` prelude, so leading whitespace
    is allowed as in Lark. llguidance also allows %ignore'd text only *before a
    following lexeme*: once the grammar cannot produce another lexeme, ignored
    text after the final one (``[1] \n`` or ``1 `` in JSON, ``...;\n`` in SQL)
    is rejected, while Lark skips it. With ``allow_trailing=True`` (default)
    such a remainder made only of %ignore'd whitespace counts as accepted, so
    that comparisons are about the language; ``raw=True`` uses the grammar text
    without the prelude.
    """
    llguidance = pytest.importorskip("llguidance")

    class _ByteTokenizer:
        eos_token_id = 256
        bos_token_id = None
        tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
        special_token_ids = [256]

        def __call__(self, s):
            return list(s.encode("utf-8") if isinstance(s, str) else s)

    tok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_ByteTokenizer()), slices=[])
    compiled = {
        (name, raw): llguidance.grammar_from(
            "lark", load_grammar(name) if raw else llguidance_lark(load_grammar(name))
        )
        for name in GRAMMAR_NAMES
        for raw in (False, True)
    }

    def accepts(name: str, text: str, *, allow_trailing: bool = True, raw: bool = False) -> bool:
        matcher = llguidance.LLMatcher(tok, compiled[name, raw])
        assert not matcher.is_error(), matcher.get_error()
        data = text.encode("utf-8")
        n = matcher.validate_tokens(list(data))
        assert matcher.consume_tokens(list(data[:n]))
        if n == len(data):
            return matcher.is_accepting()
        rest = data[n:].decode("utf-8", errors="replace")
        return (
            allow_trailing
            and matcher.is_accepting()
            and _TRAILING_IGNORED[name].match(rest) is not None
        )

    return accepts


@pytest.mark.parametrize("name,text", _cases(VALID))
def test_llguidance_accepts_valid(llg_accepts, name, text):
    assert llg_accepts(name, text)


@pytest.mark.parametrize("name,text", _cases(INVALID))
def test_llguidance_rejects_invalid(llg_accepts, name, text):
    assert not llg_accepts(name, text)


def test_llguidance_leading_and_trailing_whitespace_behaviour(llg_accepts):
    """Pin the two llguidance %ignore differences that llg_accepts works around."""
    # leading ignored text needs the allow_initial_skip prelude
    assert not llg_accepts("json", " [1]", raw=True)
    assert llg_accepts("json", " [1]")
    # trailing ignored text is refused once no further lexeme is possible ...
    assert not llg_accepts("json", "[1] \n", allow_trailing=False)
    assert not llg_accepts("json", "1 ", allow_trailing=False)
    assert not llg_accepts("sql", "SELECT a FROM t;\n", allow_trailing=False)
    # ... but is fine where another lexeme could still follow
    assert llg_accepts("sql", "SELECT a FROM t \n", allow_trailing=False)
    assert llg_accepts("arithmetic", "1 + 2 ", allow_trailing=False)
    assert llg_accepts("minilang", "let x = 1; // done\n", allow_trailing=False)
    assert llg_accepts("json", "[1] \n")
    assert not llg_accepts("json", "[1] x")


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_llguidance_language_contains_lark_language_on_fragments(llg_accepts, name):
    """Lark-valid => llguidance-valid; equality for the grammars with no NAME/keyword ties.

    In sql and minilang llguidance may also read a keyword as NAME where both
    are acceptable (see LLGUIDANCE_ONLY), so there it only accepts more.
    """
    exact = name in ("json", "arithmetic")

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.lists(st.sampled_from(_FRAGMENTS[name]), max_size=8),
           st.lists(st.sampled_from(_FRAGMENTS[name]), max_size=4))
    def check(head, tail):
        text = _PREFIX[name] + "".join(head)
        if name == "sql":
            text += " FROM t" + "".join(tail)
        lark_ok, llg_ok = lark_accepts(name, text), llg_accepts(name, text)
        if exact:
            assert lark_ok == llg_ok, repr(text)
        else:
            assert llg_ok or not lark_ok, repr(text)

    check()


def test_llguidance_json_dumps_and_control_characters(llg_accepts):
    for cp in range(0x20):
        assert not llg_accepts("json", f'"{chr(cp)}"')
        assert llg_accepts("json", f'"\\u{cp:04x}"')

    @settings(max_examples=60, deadline=None, database=None)
    @given(value=json_values, indent=st.sampled_from([None, 2]), ensure_ascii=st.booleans())
    def check(value, indent, ensure_ascii):
        text = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)
        assert llg_accepts("json", text), text

    check()


# ------------------------------------------------- documented divergences


def _quirk_cases(samples: dict[str, list[str]]):
    return [
        pytest.param(name, text, id=f"{name}-{i}")
        for name, texts in samples.items()
        for i, text in enumerate(texts)
    ]


@pytest.mark.parametrize("name,text", _quirk_cases(CONTEXTUAL_QUIRKS))
def test_contextual_lexing_quirks_are_accepted(llg_accepts, name, text):
    assert lark_accepts(name, text)
    assert greedy_accepts(name, text)
    assert llg_accepts(name, text)


@pytest.mark.parametrize("name,text", _quirk_cases(LLGUIDANCE_ONLY))
def test_keyword_as_identifier_only_in_llguidance(llg_accepts, name, text):
    assert not lark_accepts(name, text)
    assert not greedy_accepts(name, text)
    assert llg_accepts(name, text)
