"""GBNF / EBNF grammar text → AST: the tokenizer and the recursive-descent `_Parser` (dialect-aware
escapes, names and classes); gbnf.py has the dialects' semantics and lowers the AST to the IR."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from ..automata.utf8 import MAX_UNICODE, SURROGATES, complement_ranges, merge_ranges
from ..errors import GrammarError, LimitExceeded, UnsupportedFeature

MAX_NESTING = 200  # parentheses nested deeper than this are refused
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_EBNF_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_DOTTED_DEF = re.compile(r"(?m)^[ \t]*([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+)[ \t]*::=")
_REPEAT = re.compile(r"\{\s*(\d*)\s*(?:(,)\s*(\d*)\s*)?\}")
_HEX = {("x", "gbnf"): re.compile(r"[0-9a-fA-F]{2}"), ("x", "ebnf"): re.compile(r"[0-9a-fA-F]+"),
        "u": re.compile(r"[0-9a-fA-F]{4}"), "U": re.compile(r"[0-9a-fA-F]{8}")}
_ESCAPES = {"n": 10, "r": 13, "t": 9, "\\": 92, '"': 34, "[": 91, "]": 93, "'": 39, "?": 63,
            "a": 7, "b": 8, "f": 12, "v": 11, "0": 0, "e": 27} | {c: ord(c) for c in "^$.*+(){}|/-"}
_POSTFIX = {"*": (0, None), "+": (1, None), "?": (0, 1)}
_MACROS = {
    "TagDispatch": "XGrammar's TagDispatch dispatches on tags inside free text; use a structural tag "
                   "(GrammarCompiler.compile_structural_tag) instead",
    "Regex": "XGrammar's Regex(...) builtin is not part of GBNF; write the pattern as GBNF rules",
    "Token": "XGrammar's Token(...) matches token ids; structgen grammars constrain text, not token ids",
    "ExcludeToken": "XGrammar's ExcludeToken(...) matches token ids; structgen grammars constrain text",
    "TokenTagDispatch": "XGrammar's TokenTagDispatch(...) dispatches on token ids; structgen grammars "
                        "constrain text",
}


@dataclass(frozen=True)
class _Tok:
    kind: str  # name str class dot ( ) (= | * + ? rep ::= toklit eof
    value: object
    pos: int
    end: int
    first: bool  # the first token on its line


class _Parser:
    """Tokens, then recursive descent into hashable AST tuples:
    ("chars", ranges) | ("ref", name) | ("seq", items) | ("alt", seqs) | ("rep", item, m, n|None)."""

    def __init__(self, text: str, dialect: str) -> None:
        self.text, self.dialect = text, dialect
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
        self.uses: dict[str, int] = {}  # referenced name -> position of its first use
        self.rule = ""  # the rule being read (for messages)
        self.depth = 0

    def where(self, pos: int) -> str:
        line = bisect_right(self.line_starts, pos)
        return f"line {line}, column {pos - self.line_starts[line - 1] + 1}"

    def fail(self, pos: int, msg: str) -> GrammarError:
        return GrammarError(f"{self.where(pos)}: {msg}")

    def lex(self) -> list[_Tok]:
        text, n, i, first, toks = self.text, len(self.text), 0, True, []
        dotted = set(_DOTTED_DEF.findall(text)) if self.dialect == "gbnf" else set()
        while i < n:
            c, start, value = text[i], i, None
            if c in " \t\r\n#":
                if c == "#":
                    while i < n and text[i] not in "\r\n":
                        i += 1
                else:
                    first, i = first or c in "\r\n", i + 1
                continue
            if c == '"':
                kind, (value, i) = "str", self.string(i)
            elif c == "[":
                kind, (value, i) = "class", self.char_class(i)
            elif text.startswith("(=", i) or text.startswith("::=", i):
                kind = "(=" if c == "(" else "::="
                i += len(kind)
                if kind == "::=" and toks and toks[-1].kind == "name":
                    self.rule = toks[-1].value  # for messages raised while lexing
            elif c in "()|*+?":
                kind, i = c, i + 1
            elif c == "{":
                m = _REPEAT.match(text, i)
                if m is None or not m.group(1) and not (m.group(2) and m.group(3)):
                    raise self.fail(i, "expected a repetition count {m}, {m,}, {m,n} or {,n}")
                lo = int(m.group(1) or 0)
                hi = lo if not m.group(2) else (int(m.group(3)) if m.group(3) else None)
                if hi is not None and hi < lo:
                    raise self.fail(i, f"repetition {{{lo},{hi}}}: the maximum is below the minimum")
                kind, value, i = "rep", (lo, hi), m.end()
            elif c == "<" or text.startswith("!<", i):
                j = text.find(">", i)
                if j < 0:
                    raise self.fail(i, "unterminated token literal <...>")
                kind, value, i = "toklit", text[i:j + 1], j + 1
            elif (m := (_EBNF_NAME if self.dialect == "ebnf" else _NAME).match(text, i)) is not None:
                name, i = m.group(), m.end()
                for d in sorted((d for d in dotted if text.startswith(d, start)), key=len)[-1:]:
                    if not _NAME.match(text, start + len(d)):  # `a.b` where rule a.b is defined
                        name, i = d, start + len(d)
                kind, value = ("dot", None) if name == "." else ("name", name)
                if name in _MACROS and re.match(r"[ \t]*\(", text[i:i + 64]) and (
                        self.dialect == "ebnf" or not re.search(rf"(?m)^[ \t]*{name}[ \t]*::=", text)):
                    raise UnsupportedFeature(f"{name}(...)", f"rule {self.rule}",
                                             f"{_MACROS[name]} ({self.where(start)})")
            elif c == ".":
                kind, i = "dot", i + 1
            else:
                raise self.fail(i, f"unexpected character {c!r} (expected a rule name, a string, a class, "
                                   "'(', ')', '|', '.', or a repetition operator)")
            toks.append(_Tok(kind, value, start, i, first))
            first = False
        return toks + [_Tok("eof", None, n, n, True)]

    def char(self, i: int) -> tuple[int, int]:
        """One character or escape at text[i]: (code point, next index)."""
        text = self.text
        if text[i] != "\\":
            return ord(text[i]), i + 1
        e = text[i + 1:i + 2]
        if e in _ESCAPES:
            return _ESCAPES[e], i + 2
        pattern = _HEX.get((e, self.dialect) if e == "x" else e)
        m = pattern.match(text, i + 2) if pattern else None
        if m is None:
            raise self.fail(i, f"unknown escape \\{e}" if pattern is None else
                            f"escape \\{e} expects {pattern.pattern[11:].strip('{}+') or 'one or more'} hex digits")
        if int(m.group(), 16) > MAX_UNICODE:
            raise self.fail(i, f"escape {text[i:m.end()]} is beyond U+10FFFF")
        return int(m.group(), 16), m.end()

    def string(self, i: int) -> tuple[tuple[int, ...], int]:
        j, cps = i + 1, []
        while j < len(self.text) and self.text[j] != '"':
            cp, j = self.char(j)
            cps.append(cp)
        if j >= len(self.text):
            raise self.fail(i, 'unterminated string literal (expected a closing ")')
        return tuple(cps), j + 1

    def char_class(self, i: int) -> tuple[tuple[tuple[int, int], ...], int]:
        """`[...]` at text[i] -> (its code points as merged ranges without surrogates, next index)."""
        text = self.text
        neg = text.startswith("^", i + 1)
        j, ranges = i + 1 + neg, []
        while j < len(text) and text[j] != "]":
            lo, j = self.char(j)
            hi = lo
            if text.startswith("-", j) and j + 1 < len(text) and text[j + 1] != "]":
                hi, j = self.char(j + 1)
                if hi < lo and self.dialect == "ebnf":
                    raise self.fail(i, f"character class range {chr(lo)!r}-{chr(hi)!r}: the end is below the start")
            ranges.append((lo, hi))
        if j >= len(text):
            raise self.fail(i, "unterminated character class (expected ])")
        got = _drop_surrogates(complement_ranges(merge_ranges(ranges)) if neg else merge_ranges(ranges))
        if not got:
            raise self.fail(i, f"character class {text[i:j + 1]} matches no character")
        return got, j + 1

    def parse(self) -> dict[str, tuple]:
        """{rule name: ("alt", ...)} in definition order."""
        self.toks, self.k = self.lex(), 0
        defs: dict[str, tuple] = {}
        while self.peek().kind != "eof":
            t = self.peek()
            if t.kind == "name" and self.peek(1).kind == "class" and self.peek(2).kind == "::=":
                raise UnsupportedFeature("rule attribute", f"rule {t.value}",
                                         "XGrammar's `name[...] ::=` attributes (max_tokens, capture) are "
                                         "not supported")
            if t.kind != "name" or self.peek(1).kind != "::=":
                raise self.fail(t.pos, "expected a rule definition `name ::= ...`")
            if not t.first:
                raise self.fail(t.pos, f"the definition of {t.value!r} must start a new line")
            self.rule, self.k = t.value, self.k + 2
            body = self.alternatives(top=True)
            if t.value in defs and self.dialect == "ebnf":
                raise self.fail(t.pos, f"rule {t.value!r} is defined more than once")
            defs.pop(t.value, None)
            defs[t.value] = body  # gbnf: the last definition wins (llama.cpp)
        return defs

    def peek(self, d: int = 0) -> _Tok:
        return self.toks[min(self.k + d, len(self.toks) - 1)]

    def alternatives(self, top: bool) -> tuple:
        seqs = [self.sequence(top)]
        while self.peek().kind == "|":
            self.k += 1
            seqs.append(self.sequence(top))
        return ("alt", tuple(seqs))

    def sequence(self, top: bool) -> tuple:
        items: list[tuple] = []
        while (t := self.peek()).kind not in ("|", ")", "eof"):
            nxt = self.peek(1).kind
            if t.kind == "name" and (nxt == "::=" or nxt == "class" and self.peek(2).kind == "::="):
                if not top:
                    raise self.fail(t.pos, "expected ')' before the next rule definition")
                if self.peek(1).kind == "::=" and not t.first:
                    raise self.fail(t.pos, f"the definition of {t.value!r} must start a new line")
                break
            if t.kind in ("*", "+", "?", "rep"):
                raise self.fail(t.pos, f"expected an element before {self.text[t.pos:t.end]!r}")
            item = self.element()
            while (op := self.peek()).kind in ("*", "+", "?", "rep"):
                self.k += 1
                item = ("rep", item, *(_POSTFIX.get(op.kind) or op.value))
            items.append(item)
        return ("seq", tuple(items))

    def element(self) -> tuple:
        t = self.peek()
        self.k += 1
        if t.kind == "str":
            for cp in t.value:
                if SURROGATES[0] <= cp <= SURROGATES[1]:
                    raise self.fail(t.pos, f"the string holds the surrogate U+{cp:04X}, which no UTF-8 text contains")
            return ("seq", tuple(("chars", ((cp, cp),)) for cp in t.value))
        if t.kind in ("class", "dot"):
            return ("chars", t.value if t.kind == "class" else _ANY)
        if t.kind == "name":
            self.uses.setdefault(t.value, t.pos)
            return ("ref", t.value)
        if t.kind == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise LimitExceeded(f"{self.where(t.pos)}: parentheses nested deeper than {MAX_NESTING}")
            body = self.alternatives(top=False)
            if self.peek().kind != ")":
                raise self.fail(self.peek().pos, "expected ')'")
            self.k, self.depth = self.k + 1, self.depth - 1
            return body
        if t.kind == "toklit":
            raise UnsupportedFeature("token literal", f"rule {self.rule}",
                                     f"{t.value} ({self.where(t.pos)}) matches a token id of a model's vocabulary; "
                                     "structgen grammars constrain text, not token ids (write the token's text as "
                                     "a string)")
        if t.kind == "(=":
            raise UnsupportedFeature("lookahead assertion", f"rule {self.rule}",
                                     f"XGrammar's `(= ...)` at {self.where(t.pos)} is not supported; "
                                     "structgen compiles context-free rules without lookahead")
        got = self.text[t.pos:t.end] or "end of text"
        raise self.fail(t.pos, f"expected an element (string, class, name, '.', or '('), got {got!r}")


def _drop_surrogates(ranges) -> tuple[tuple[int, int], ...]:
    lo_s, hi_s = SURROGATES
    return tuple(r for lo, hi in ranges for r in ((lo, min(hi, lo_s - 1)), (max(lo, hi_s + 1), hi)) if r[0] <= r[1])


_ANY = _drop_surrogates(((0, MAX_UNICODE),))
