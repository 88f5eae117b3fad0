"""ECMA-262 `pattern` regexes → full-match Python/interegular regexes over the string value.

JSON Schema's `pattern` (and `patternProperties` keys) are ECMA-262 regexes that *search*:
they match when found anywhere in the string, unless anchored by `^`/`$`. Terminals in
structgen are full-match regexes in the Python dialect interegular understands, so
`ecma_pattern_to_regex` parses the ECMA syntax and re-emits the search language:
`abc` → `[\\s\\S]*abc[\\s\\S]*`, `^abc$` → `abc`, `^ab` → `ab[\\s\\S]*`.

Semantics follow ECMA-262 with the `u` flag (code points, as JSON Schema's Test Suite
expects), no other flags:

- `\\d` `\\w` are ASCII (`[0-9]`, `[A-Za-z0-9_]`), `\\s` is ECMA WhiteSpace + LineTerminator,
  `\\D \\W \\S` their complements, `.` is anything but `\\n \\r \\u2028 \\u2029`; `$` matches only
  at the very end (no Python-style "before a final newline").
- `^` and `$` may appear anywhere (in groups, alternatives, quantified groups): the
  translation tracks whether a position is the start/end of the string, so `(^a|b)c`,
  `a$|^b`, `(?:^|,)x` and `^(a$|b)+` are exact; an anchor that can never hold (`a^b`) gives
  an empty alternative, and a pattern that can never match gives `[^\\s\\S]` (which has no
  DFA: the caller decides). Anchors inside a repetition with a count above 20 (`(^a){1,50}`)
  are unsupported (the repetition is unrolled).
- Escapes: `\\t \\n \\v \\f \\r \\0 \\cX \\xHH \\uHHHH` (surrogate pairs combine) `\\u{H...}`, `\\/` and
  escaped syntax characters; classes `[...]`, `[^...]`, `[]` (nothing), `[^]` (anything), with
  `\\b` = backspace and `\\-` inside; quantifiers `* + ? {n} {n,} {n,m}` and their lazy forms
  (laziness does not change the language); groups `(...)`, `(?:...)`, `(?<name>...)`.
- `\\p{...}`/`\\P{...}` for General_Category values (`L`, `Letter`, `gc=Lu`, `General_Category=Nd`,
  ... matched loosely, plus `digit` = `Nd`) and `Any`, `ASCII`, `Assigned`, `White_Space`, from
  Python's `unicodedata` (Unicode 14 on Python 3.11; JavaScript engines may be newer).
- Leniency beyond `u` mode, as Annex B and most engines allow: identity escapes of any ASCII
  punctuation or non-ASCII character (`\\-`, `\\@`, `\\é`), a `{` or `}` or `]` that does not form
  a quantifier/class is literal, and `[\\d-z]` means `\\d`, `-` or `z`.

Unsupported (raise `UnsupportedFeature(keyword, json_pointer, detail)`): lookahead and
lookbehind, backreferences (`\\1`, `\\k<name>`), word boundaries `\\b \\B`, Unicode properties
other than the above (scripts, `Alphabetic`, ...). Invalid patterns (unbalanced parentheses,
nothing to repeat, `{3,1}`, `\\a`, bad escapes, `(?i)`, `(?P<n>...)`) raise `RegexError`.

The output only uses constructs both Python's `re` and interegular read the same way:
`(?:...)`, classes with `\\xHH` escapes and literal non-ASCII characters (interegular has no
`\\u`), `[\\s\\S]` for "any character", `[^\\s\\S]` for "nothing". Big classes are written
negated when that is shorter, since interegular expands classes character by character.
Large bounded repetitions translate fine but may exceed the DFA budget downstream.

regex_parse.py reads the pattern into an AST (its character sets: regex_charsets.py); this module
writes the AST's search language back out as regex text.
"""

from __future__ import annotations

from ..automata.utf8 import complement_ranges as _complement
from ..automata.utf8 import merge_ranges as _norm
from .regex_charsets import MAX_CP, Ranges, _is_single, _size
from .regex_parse import _alt, _cat, _Node, _Parser, _rep
from .regex_text import closing_bracket, split_alternatives

__all__ = ["ecma_pattern_to_regex"]

ANY_CHAR = r"[\s\S]"
NO_CHAR = r"[^\s\S]"
ANY_STAR = ANY_CHAR + "*"


# --- emission ---------------------------------------------------------------------------
# A piece is (text, kind): kind "atom" (repeatable as is), "seq" (needs a group to be
# repeated), "alt" (needs a group to be concatenated or repeated). None is the empty language.

Piece = tuple[str, str]
EMPTY: Piece = ("", "seq")


_SPECIAL_OUT = set(".^$*+?{}[]\\|()/")


def _esc(cp: int) -> str:
    """One code point as a regex atom outside classes."""
    c = chr(cp)
    if c in _SPECIAL_OUT:
        return "\\" + c
    if 0x20 <= cp < 0x7F:
        return c
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    return c  # interegular has no \u escapes: written literally


def _class_char(cp: int) -> str:
    c = chr(cp)
    if c in "\\]^-[":
        return "\\" + c
    if 0x20 < cp < 0x7F:
        return c
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    return c


def _emit_chars(r: Ranges) -> Piece | None:
    r = _norm([(lo, hi) for lo, hi in _intersect_not_surrogates(r)])
    if not r:
        return None
    if r == _norm([(0, 0xD7FF), (0xE000, MAX_CP)]):
        return (ANY_CHAR, "atom")
    if _is_single(r):
        return (_esc(r[0][0]), "atom")
    comp = _norm(_intersect_not_surrogates(_complement(r)))
    negate = _size(comp) < _size(r)
    body = []
    for lo, hi in comp if negate else r:
        if lo == hi:
            body.append(_class_char(lo))
        elif hi == lo + 1:
            body.append(_class_char(lo) + _class_char(hi))
        else:
            body.append(_class_char(lo) + "-" + _class_char(hi))
    return ("[" + ("^" if negate else "") + "".join(body) + "]", "atom")


def _intersect_not_surrogates(r: Ranges) -> list[tuple[int, int]]:
    out = []
    for lo, hi in r:
        if hi < 0xD800 or lo > 0xDFFF:
            out.append((lo, hi))
        else:
            if lo < 0xD800:
                out.append((lo, 0xD7FF))
            if hi > 0xDFFF:
                out.append((0xE000, hi))
    return out


def _group(p: Piece) -> str:
    return p[0] if p[1] == "atom" else "(?:" + p[0] + ")"


def _concat(pieces: list[Piece | None]) -> Piece | None:
    if any(p is None for p in pieces):
        return None
    parts: list[Piece] = []
    for p in pieces:
        if p[0] == "" or (p[0] == ANY_STAR and parts and parts[-1][0] == ANY_STAR):
            continue
        parts.append(p)
    if not parts:
        return EMPTY
    if len(parts) == 1:
        return parts[0]
    return ("".join(p[0] if p[1] != "alt" else "(?:" + p[0] + ")" for p in parts), "seq")


def _union_pieces(pieces: list[Piece | None]) -> Piece | None:
    seen: dict[str, None] = {}  # ordered set: a list's `in` made 20,000 alternatives quadratic
    for p in pieces:
        if p is not None:
            seen.update(dict.fromkeys(_split_alt(p)))
    texts = list(seen)
    if not texts:
        return None
    if len(texts) == 1:
        return _piece(texts[0])
    if "" in texts:  # (?:a|b|) reads better as (?:a|b)?
        rest = [t for t in texts if t != ""]
        if len(rest) == 1 and _piece(rest[0])[1] == "atom":
            return (rest[0] + "?", "seq")
        return ("(?:" + "|".join(rest) + ")?", "seq")
    return ("|".join(texts), "alt")


def _piece(t: str) -> Piece:
    """A text with its kind: a single atom, a sequence, or a top-level alternation."""
    if len(_split_alt((t, "alt"))) > 1:
        return (t, "alt")
    if len(t) == 1 or (t.startswith("\\") and (len(t) == 2 or (t[1] == "x" and len(t) == 4))):
        return (t, "atom")
    if t[:1] in ("[", "(") and closing_bracket(t, 0) == len(t) - 1:
        return (t, "atom")
    return (t, "seq")


def _split_alt(p: Piece) -> list[str]:
    return split_alternatives(p[0]) if p[1] == "alt" else [p[0]]


def _repeat(p: Piece | None, lo: int, hi: int | None) -> Piece | None:
    if hi == 0:
        return EMPTY
    if p is None:
        return EMPTY if lo == 0 else None
    if p[0] == "":
        return EMPTY
    if lo == 1 and hi == 1:
        return p
    base = _group(p)
    if hi is None:
        suffix = {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    elif lo == 0 and hi == 1:
        suffix = "?"
    elif lo == hi:
        suffix = f"{{{lo}}}"
    else:
        suffix = f"{{{lo},{hi}}}"
    return (base + suffix, "seq")


class _Emitter:
    """L(node, at_start, at_end): the strings a node can match given whether its start is the
    start of the whole string and its end the end of it (so ^ and $ are decided)."""

    MAX_UNROLL = 20

    def __init__(self, parser: _Parser) -> None:
        self.parser = parser
        # keyed by the node objects themselves (identity hash), which keeps them alive
        self.memo: dict[tuple[_Node, bool, bool], Piece | None] = {}
        self.null_memo: dict[tuple[_Node, bool, bool], bool] = {}

    def plain(self, node: _Node) -> Piece | None:
        return self.lang(node, False, False)

    def nullable(self, node: _Node, a: bool, b: bool) -> bool:
        a, b = a and node.bol, b and node.eol
        key = (node, a, b)
        if key not in self.null_memo:
            k = node.kind
            if k == "chars":
                v = False
            elif k == "bol":
                v = a
            elif k == "eol":
                v = b
            elif k == "cat":
                v = all(self.nullable(x, a, b) for x in node.items)  # all at one position
            elif k == "alt":
                v = any(self.nullable(x, a, b) for x in node.items)
            else:
                v = node.lo == 0 or self.nullable(node.items[0], a, b)
            self.null_memo[key] = v
        return self.null_memo[key]

    def lang(self, node: _Node, a: bool, b: bool) -> Piece | None:
        a, b = a and node.bol, b and node.eol  # a context only matters to an anchor that reads it
        key = (node, a, b)
        if key in self.memo:
            return self.memo[key]
        k = node.kind
        if k == "chars":
            out = _emit_chars(node.chars)
        elif k == "bol":
            out = EMPTY if a else None
        elif k == "eol":
            out = EMPTY if b else None
        elif k == "alt":
            out = _union_pieces([self.lang(x, a, b) for x in node.items])
        elif k == "cat":
            out = self.cat(node, a, b)
        else:
            out = self.rep(node, a, b)
        self.memo[key] = out
        return out

    def cat(self, node: _Node, a: bool, b: bool) -> Piece | None:
        items = node.items
        if not node.anchored:
            return _concat([self.lang(x, False, False) for x in items])
        if not items:
            return EMPTY
        if len(items) == 1:
            return self.lang(items[0], a, b)
        # X . Y (Y = the rest), split on whether X or Y matched the empty string
        # (the other terms are subsets of the first unless X has a $ or Y a ^ to satisfy)
        x, rest = _split(node)
        terms = [_concat([self.lang(x, a, False), self.lang(rest, False, b)])]
        if a and rest.bol and self.nullable(x, a, False):
            terms.append(self.lang(rest, a, b))
        if b and x.eol and self.nullable(rest, False, b):
            terms.append(self.lang(x, a, b))
        if a and b and x.eol and rest.bol and self.nullable(x, a, b) and self.nullable(rest, a, b):
            terms.append(EMPTY)
        return _union_pieces(terms)

    def rep(self, node: _Node, a: bool, b: bool) -> Piece | None:
        x, lo, hi = node.items[0], node.lo, node.hi
        if not node.anchored:
            return _repeat(self.plain(x), lo, hi)
        if max(lo, hi or 0) > self.MAX_UNROLL:
            raise self.parser.unsupported(f"an anchor inside a repetition {{{lo},{'' if hi is None else hi}}}")
        if hi is not None:  # unroll: X X ... (X|) (X|)
            opt = _alt([x, _cat([])])
            return self.lang(_cat([x] * lo + [opt] * (hi - lo)), a, b)
        if lo:  # X{n,} = X ... X X*
            return self.lang(_cat([x] * lo + [_rep(x, 0, None)]), a, b)
        # X* = empty | X | X X* X, where only the first iteration can start the string and
        # only the last can end it (empty iterations add nothing)
        return _union_pieces([
            EMPTY,
            self.lang(x, a, b),
            _concat([self.lang(x, a, False), _repeat(self.lang(x, False, False), 0, None), self.lang(x, False, b)]),
        ])


def _split(node: _Node) -> tuple[_Node, _Node]:
    """A cat node as X . Y, X being its leading run of anchor-free items (or its first item),
    built once per node so that results are memoized and recursion follows the anchors only."""
    if node.rest is None:
        items = node.items
        k = 0
        while k < len(items) - 1 and not items[k].anchored:
            k += 1
        k = max(k, 1)
        node.rest = (items[0] if k == 1 else _cat(items[:k]), _cat(items[k:]))
    return node.rest


def _strip_edge(node: _Node, lead: bool) -> _Node:
    """A node N' with Σ*·N = Σ*·N' (lead) or N·Σ* = N'·Σ* (trail): optional repetitions next to
    the unanchored side shrink to their minimum (`[\\s\\S]*a{1,1000}` = `[\\s\\S]*a`)."""
    if node.kind == "alt":
        return _alt([_strip_edge(x, lead) for x in node.items])
    if node.kind == "rep" and not node.anchored and node.hi != node.lo:
        return _rep(node.items[0], node.lo, node.lo) if node.lo else _cat([])
    if node.kind == "cat" and node.items:
        items = list(node.items)
        while items:
            idx = 0 if lead else len(items) - 1
            edge = items[idx]
            if edge.anchored:
                break
            new = _strip_edge(edge, lead)
            if new.kind == "cat" and not new.items:  # dropped: strip the next one too
                items.pop(idx)
                continue
            items[idx] = new
            break
        return _cat(items)
    return node


def ecma_pattern_to_regex(pattern: str, keyword: str = "pattern", json_pointer: str = "") -> str:
    """Full-match Python/interegular regex of the strings an ECMA-262 `pattern` is found in."""
    parser = _Parser(pattern, keyword, json_pointer)
    root = parser.parse()
    em = _Emitter(parser)
    any_star: Piece = (ANY_STAR, "seq")
    has_bol = _has(root, "bol")
    has_eol = _has(root, "eol")
    terms: list[Piece | None] = []
    for bs in (True, False) if has_bol else (False,):
        for be in (True, False) if has_eol else (False,):
            node = root
            if not bs:
                node = _strip_edge(node, lead=True)
            if not be:
                node = _strip_edge(node, lead=False)
            body = em.lang(node, bs, be)
            terms.append(_concat([EMPTY if bs else any_star, body, EMPTY if be else any_star]))
    result = _union_pieces(terms)
    if result is None:
        return NO_CHAR  # the pattern can never match
    return result[0]


def _has(node: _Node, kind: str) -> bool:
    return node.kind == kind or any(_has(x, kind) for x in node.items)
