"""GBNF (llama.cpp) and EBNF (XGrammar) grammar text -> grammar IR, with exact character semantics.

A GBNF grammar has no lexer: its language is a set of strings of code points. The IR's lexer is
greedy (longest match) over terminals, which would change that language if terminals overlapped or
one could extend another. So every terminal written here matches exactly ONE code point (as its
UTF-8 encoding, which is prefix-free) and terminals are pairwise disjoint: the code points are
partitioned into *atoms*, the coarsest classes such that every character set of the grammar (a
`[...]` class, a literal's character, `.`) is a union of atoms. A set of one atom is that atom's
terminal; a larger set is a nonterminal with one rule per atom; `"abc"` is the atoms of a, b, c.

Syntax (both dialects): `name ::= alternatives`; names of letters, digits, `_` and `-`; string
literals `"..."` (`""` is the empty string); classes `[...]` with ranges `a-z` and `^` negation;
`.`; groups `( ... )`; `|`; postfix `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, `{,n}` (stackable:
`x*?` is `(x*)?`); `#` comments. Escapes: `\\n \\r \\t \\\\ \\" \\[ \\]`, `\\xHH` (gbnf: exactly two
hex digits, as llama.cpp; ebnf: one or more, as XGrammar), `\\uHHHH`, `\\UHHHHHHHH`, XGrammar's
`\\' \\? \\a \\b \\f \\v \\0 \\e` and its class escapes `\\^ \\$ \\. \\* \\+ \\( \\) \\{ \\} \\| \\/ \\-`.
A rule's body runs until the next `name ::=` that starts a line, or the end of the text, so
alternatives may continue on new lines anywhere (llama.cpp only allows that after `|` or inside
parentheses; every grammar it reads means the same here).

Semantics, checked against llama.cpp's `src/llama-grammar.cpp` and XGrammar's `grammar_parser.cc`:
- `.` is any one code point, newline included (llama.cpp's CHAR_ANY matches every code point);
  `[^...]` is every code point outside the set, newline included. Code points are U+0000..U+10FFFF
  without the surrogates U+D800..U+DFFF (no UTF-8 encodes them); U+0000 is a character.
- A range `z-a` is empty in gbnf (llama.cpp) and an error in ebnf (XGrammar); a class or literal
  character that matches no code point at all (`[]`, `[z-a]`, `"\\uD800"`) is a GrammarError.
- A rule defined twice: gbnf -> the last definition replaces the earlier ones (llama.cpp's add_rule
  overwrites); ebnf -> GrammarError (XGrammar refuses).
- Names: gbnf as llama.cpp plus `_` (`a.b` is `a` then `.` then `b`, unless a rule `a.b` is
  defined); ebnf as XGrammar (`.` is a name character; a lone `.` is still any character).
- Left recursion is allowed (llama.cpp refuses it; the language is well defined). Undefined rule
  references (in any rule) are errors; rules the start rule cannot reach are not compiled.
- Refused with UnsupportedFeature: llama.cpp token literals `<...>`, `<[id]>`, `!<...>` (structgen
  grammars constrain text), XGrammar's lookahead `(= ...)`, builtins `TagDispatch(...)`, `Regex(...)`,
  `Token(...)`, `ExcludeToken(...)`, `TokenTagDispatch(...)`, and rule attributes `name[...] ::=`.

Repetitions: `x*` is R -> R x | ε (left recursion keeps LR stacks short), `x+` is R -> R x | x,
`x?` is O -> x | ε, `x{m,n}` is m copies then a chain C_k -> x C_(k-1) | ε; identical groups,
repetitions and sets share one nonterminal, and `r ::= x*` makes r itself the loop. A nullable
body under `*`/`+` loses its empty case where that is syntactic (`(a?)*` is `a*`): no ε-cycles.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..automata.fsm import (DEFAULT_MAX_STATES, MAX_UNICODE, SURROGATES, ByteDFA, complement_ranges, literal_dfa,
                            merge_ranges)
from ..budget import check as check_budget
from ..errors import GrammarError, LimitExceeded, UnsupportedFeature
from .ir import Grammar, GrammarBuilder

MAX_EXPANSION = 100_000  # symbols that counted repetitions may write in all (x{m,n} costs about n)
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


def gbnf_to_ir(text: str, start: str = "root", *, dialect: str = "gbnf",
               max_dfa_states: int = DEFAULT_MAX_STATES) -> Grammar:
    """Read GBNF ("gbnf", llama.cpp) or EBNF ("ebnf", XGrammar) text into a Grammar whose
    language is exactly the grammar's set of strings (see the module docstring)."""
    if dialect not in ("gbnf", "ebnf"):
        raise GrammarError(f"unknown grammar dialect {dialect!r} (expected 'gbnf' or 'ebnf')")
    if not isinstance(text, str) or not text.strip():
        raise GrammarError("grammar text is empty")
    parser = _Parser(text, dialect)
    defs = parser.parse()
    if start not in defs:
        raise GrammarError(f"the start rule {start!r} is not defined")
    return _Lowering(defs, parser, start, max_dfa_states).build(text)


# --- syntax --------------------------------------------------------------------------------------


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


# --- atoms ----------------------------------------------------------------------------------------


def atoms_of(sets: list[tuple[tuple[int, int], ...]]) -> tuple[list[tuple[tuple[int, int], ...]], list[list[int]]]:
    """The coarsest partition of the code points the sets cover, such that each set is a union of
    atoms: (the atoms' ranges, for each set the indices of its atoms). One sweep over the sorted
    range boundaries; each elementary interval's membership is a bitmask over the sets."""
    points = sorted({p for s in sets for lo, hi in s for p in (lo, hi + 1)})
    index = {p: i for i, p in enumerate(points)}
    diff = [0] * (len(points) + 1)
    for k, s in enumerate(sets):
        for lo, hi in s:
            diff[index[lo]] += 1 << k
            diff[index[hi + 1]] -= 1 << k
    groups: dict[int, list[tuple[int, int]]] = {}
    cur = 0
    for i in range(len(points) - 1):
        cur += diff[i]
        if cur:
            got = groups.setdefault(cur, [])
            if got and got[-1][1] + 1 == points[i]:
                got[-1] = (got[-1][0], points[i + 1] - 1)
            else:
                got.append((points[i], points[i + 1] - 1))
    atoms, members = [], [[] for _ in sets]
    for mask, ranges in groups.items():  # dicts keep insertion order: atoms by first code point
        atoms.append(tuple(ranges))
        while mask:
            low = mask & -mask
            members[low.bit_length() - 1].append(len(atoms) - 1)
            mask ^= low
    return atoms, members


# lead bytes: (byte, bytes in the character, lowest and highest code point it can start, payload base)
_LEADS = [(b, 1, b, b, b) for b in range(0x80)] + \
    [(b, 2, (b & 0x1F) << 6, (b & 0x1F) << 6 | 0x3F, (b & 0x1F) << 6) for b in range(0xC2, 0xE0)] + \
    [(b, 3, max((b & 0x0F) << 12, 0x800), (b & 0x0F) << 12 | 0xFFF, (b & 0x0F) << 12) for b in range(0xE0, 0xF0)] + \
    [(b, 4, max((b & 7) << 18, 0x10000), min((b & 7) << 18 | 0x3FFFF, MAX_UNICODE), (b & 7) << 18)
     for b in range(0xF0, 0xF5)]


def _clip(ranges: tuple[tuple[int, int], ...], lo: int, hi: int, base: int) -> tuple[tuple[int, int], ...]:
    """ranges ∩ [lo, hi], shifted down by base."""
    k = max(bisect_right(ranges, (lo, MAX_UNICODE + 1)) - 1, 0)
    out = []
    while k < len(ranges) and ranges[k][0] <= hi:
        if ranges[k][1] >= lo:
            out.append((max(ranges[k][0], lo) - base, min(ranges[k][1], hi) - base))
        k += 1
    return tuple(out)


@lru_cache(maxsize=8192)
def utf8_class_dfa(ranges: tuple[tuple[int, int], ...]) -> ByteDFA:
    """The minimal, trimmed byte DFA of the UTF-8 encodings of the code points in `ranges` (merged,
    no surrogates). A state is a residual: (continuation bytes left, the code points still possible
    relative to their common prefix); equal residuals are equal languages, so it is minimal."""
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return literal_dfa(chr(ranges[0][0]).encode("utf-8"))
    done = (0, ((0, 0),))
    ids: dict[tuple, int] = {}
    rows: list[dict[int, int]] = [{}]
    todo: list[tuple] = []

    def state(key: tuple) -> int:
        if key not in ids:
            ids[key] = len(rows)
            rows.append({})
            todo.append(key)
        return ids[key]

    for b, n, lo, hi, base in _LEADS:
        got = _clip(ranges, lo, hi, base)
        if got:
            rows[0][b] = state((n - 1, got) if n > 1 else done)
    while todo:
        key = todo.pop()
        k, rel = key
        size = 1 << (6 * (k - 1)) if k else 0
        for c in range(64 if k else 0):
            got = _clip(rel, c * size, c * size + size - 1, c * size)
            if got:
                rows[ids[key]][0x80 | c] = state((k - 1, got) if k > 1 else done)
    trans = np.full((len(rows), 256), -1, dtype=np.int32)
    for s, row in enumerate(rows):
        trans[s, list(row)] = list(row.values())
    accept = np.zeros(len(rows), dtype=bool)
    accept[ids.get(done, 0)] = done in ids
    trans.flags.writeable = accept.flags.writeable = False
    return ByteDFA(trans, accept)


def render_ranges(ranges: tuple[tuple[int, int], ...], limit: int = 40) -> str:
    """A readable name for a code point set: `"a"` for one character, else `[a-z0-9]` (shortened)."""
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    special = '"\\' if single else "\\[]-^"

    def ch(cp: int) -> str:
        c = chr(cp)
        if c in special:
            return "\\" + c
        if cp < 0x20 or 0x7F <= cp < 0xA0:
            return f"\\x{cp:02X}"
        return c if cp <= 0xFFFF and c.isprintable() else f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}"
    if single:
        return '"' + ch(ranges[0][0]) + '"'
    body = "".join(ch(lo) if lo == hi else f"{ch(lo)}-{ch(hi)}" for lo, hi in ranges)
    return "[" + (body if len(body) <= limit else body[:limit] + "…") + "]"


# --- lowering to the IR ---------------------------------------------------------------------------


class _Lowering:
    """AST -> rules. Nonterminals of the reachable named rules first (so synthesized names never
    shadow them), then atoms, then each body; groups, repetitions and sets are memoized."""

    def __init__(self, defs: dict[str, tuple], parser: _Parser, start: str, max_dfa_states: int) -> None:
        self.defs, self.start, self.max_dfa_states = defs, start, max_dfa_states
        undefined = sorted((pos, name) for name, pos in parser.uses.items() if name not in defs)
        if undefined:
            names = ", ".join(repr(n) for _, n in undefined)
            raise GrammarError(f"undefined rule{'s' if len(undefined) > 1 else ''} {names} "
                               f"(first used at {parser.where(undefined[0][0])})")
        rank = {name: i for i, name in enumerate(defs)}
        self.order = sorted(self._reachable(), key=rank.__getitem__)
        self.b = GrammarBuilder()
        self.nt = {name: self.b.named(name) for name in self.order}
        sets: dict[tuple, int] = {}
        for name in self.order:
            for x in _walk(defs[name]):
                if x[0] == "chars":
                    sets.setdefault(x[1], len(sets))
        self.set_index = sets
        self.atoms, self.members = atoms_of(list(sets))
        self.names: set[str] = set()
        self.atom_term: dict[int, int] = {}
        self.memo: dict[tuple, list[int]] = {}
        self.expanded = 0
        self.rule = start
        self.own: tuple[tuple, int] | None = None  # (repetition, the named rule that is its loop)

    def _reachable(self) -> set[str]:
        seen, todo = {self.start}, [self.start]
        while todo:
            for x in _walk(self.defs[todo.pop()]):
                if x[0] == "ref" and x[1] not in seen:
                    seen.add(x[1])
                    todo.append(x[1])
        return seen

    def build(self, text: str) -> Grammar:
        for name in self.order:
            check_budget(f"rule {name}")
            self.rule, nt = name, self.nt[name]
            alts = _alternatives(self.defs[name])
            only = alts[0][1][0] if len(alts) == 1 and len(alts[0][1]) == 1 else None
            if only is not None and only[0] == "rep" and only not in self.memo:
                self.own = (only, nt)  # `r ::= x*`: r itself is the loop, no unit rule
                got = self.symbols(only)
                self.own = None
                if got != [nt]:
                    self.b.rule(nt, got)
                continue
            for seq in alts:
                self.b.rule(nt, self.symbols(seq))
        return self.b.build(self.nt[self.start], source=text)

    def atom(self, a: int) -> int:
        t = self.atom_term.get(a)
        if t is None:
            ranges = self.atoms[a]
            dfa = utf8_class_dfa(ranges)
            if dfa.num_states > self.max_dfa_states:
                raise LimitExceeded(f"a character class needs {dfa.num_states} DFA states", limit="max_dfa_states",
                                    where=f"rule {self.rule}")
            name = render_ranges(ranges)
            name = f"{name}#{a}" if name in self.names else name
            self.names.add(name)
            single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
            t = self.atom_term[a] = self.b.terminal(name, dfa, key=("atom", ranges), is_literal=single)
        return t

    def symbols(self, node: tuple) -> list[int]:
        """The symbol sequence that derives exactly node's strings."""
        kind = node[0]
        if kind == "chars":
            atoms = self.members[self.set_index[node[1]]]
            if len(atoms) == 1:
                return [self.atom(atoms[0])]
            return self.memoized(node, render_ranges(node[1]),
                                 lambda nt: [self.b.rule(nt, [self.atom(a)]) for a in atoms])
        if kind == "ref":
            return [self.nt[node[1]]]
        if kind == "seq":
            return [s for item in node[1] for s in self.symbols(item)]
        if kind == "alt":
            if len(node[1]) == 1:
                return self.symbols(node[1][0])
            return self.memoized(node, "alt",
                                 lambda nt: [self.b.rule(nt, self.symbols(s)) for s in _alternatives(node)])
        return self.repeat(node)

    def memoized(self, key: tuple, name: str, fill) -> list[int]:
        got = self.memo.get(key)
        if got is None:
            if self.own is not None and self.own[0] == key:
                nt = self.own[1]
            else:
                nt = self.b.nonterminal(name if key[0] == "chars" else f"{self.rule}__{name}")
            got = self.memo[key] = [nt]
            fill(nt)
        return got

    def repeat(self, node: tuple) -> list[int]:
        _, item, m, n = node
        if n == 0:
            return []
        if n is None or n > 1:  # a nullable body under a loop: drop its empty case where easy
            stripped = _nonempty(item)
            if stripped is None:
                return []
            if stripped is not item:
                return self.repeat(("rep", stripped, 0, n))
            if item[0] == "rep" and item[2] == 1 and item[3] is None and n is None:  # (x+)* = x*, (x+)+ = x+
                return self.repeat(("rep", item[1], m, None))
        x = self.symbols(item)
        if not x or (m, n) == (1, 1):
            return x
        if n is None and m <= 1:
            return self.memoized(node, "star" if m == 0 else "plus",
                                 lambda nt: (self.b.rule(nt, [nt, *x]), self.b.rule(nt, x if m else [])))
        if (m, n) == (0, 1):
            return self.memoized(node, "opt", lambda nt: (self.b.rule(nt, x), self.b.rule(nt, [])))
        self.expanded += m + (n - m if n is not None else 1)
        if self.expanded > MAX_EXPANSION:
            raise LimitExceeded(f"rule {self.rule}: counted repetitions expand to more than {MAX_EXPANSION} symbols")
        if len(x) > 1:
            x = self.memoized(("seq-of", item), "seq", lambda nt: self.b.rule(nt, x))
        if n is None:
            return x * m + self.repeat(("rep", item, 0, None))
        tail: list[int] = []  # C_j -> x C_(j-1) | ε: up to n - m more copies, unambiguously
        for j in range(1, n - m + 1):
            tail = self.memoized(("chain", item, j), f"upto{j}",
                                 lambda nt: (self.b.rule(nt, x + tail), self.b.rule(nt, [])))
        return x * m + tail


def _alternatives(node: tuple) -> list[tuple]:
    """An "alt" node's sequences, with alternatives that are just a group spliced in and
    duplicates dropped (the same language, fewer unit rules and no identical rules)."""
    out: list[tuple] = []
    for seq in node[1]:
        for s in (_alternatives(seq[1][0]) if len(seq[1]) == 1 and seq[1][0][0] == "alt" else [seq]):
            if s not in out:
                out.append(s)
    return out


def _nonempty(node: tuple) -> tuple | None:
    """node without the empty string, when that is syntactically easy (else node itself);
    None when node matches only the empty string."""
    kind = node[0]
    if kind == "rep" and node[2] == 0:
        return ("rep", node[1], 1, node[3]) if node[3] != 1 else node[1]
    if kind == "seq" and len(node[1]) <= 1:
        if not node[1]:
            return None
        inner = _nonempty(node[1][0])
        return node if inner is node[1][0] else inner
    if kind == "alt":
        alts = [a for a in node[1] if a != ("seq", ())]
        if not alts:
            return None
        if len(alts) < len(node[1]):
            return ("alt", tuple(alts))
        if len(alts) == 1:
            inner = _nonempty(alts[0])
            return node if inner is alts[0] else inner
    return node


def _walk(node: tuple):
    stack = [node]
    while stack:
        x = stack.pop()
        yield x
        if x[0] in ("seq", "alt"):
            stack.extend(x[1])
        elif x[0] == "rep":
            stack.append(x[1])


__all__ = ["gbnf_to_ir", "atoms_of", "utf8_class_dfa", "render_ranges", "MAX_EXPANSION"]
