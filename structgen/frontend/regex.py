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
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from ..automata.fsm import MAX_UNICODE
from ..automata.fsm import complement_ranges as _complement
from ..automata.fsm import merge_ranges as _norm
from ..budget import check as check_budget
from ..errors import RegexError, UnsupportedFeature, shown

__all__ = ["ecma_pattern_to_regex"]

MAX_CP = MAX_UNICODE
Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, non-adjacent inclusive ranges

ANY_CHAR = r"[\s\S]"
NO_CHAR = r"[^\s\S]"
ANY_STAR = ANY_CHAR + "*"
_SYNTAX_CHARS = set("^$\\.*+?()[]{}|/")


# --- character sets ---------------------------------------------------------------------


def _union(*sets: Ranges) -> Ranges:
    return _norm([x for s in sets for x in s])


def _size(r: Ranges) -> int:
    return sum(hi - lo + 1 for lo, hi in r)


def _cp(c: str) -> Ranges:
    return ((ord(c), ord(c)),)


DIGIT = ((0x30, 0x39),)
WORD = _norm([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
SPACE = _norm([(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
               (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)])
LINE_TERMINATORS = _norm([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])
DOT = _complement(LINE_TERMINATORS)
ALL = ((0, MAX_CP),)
SURROGATES = ((0xD800, 0xDFFF),)

_CLASS_ESCAPES = {"d": DIGIT, "D": _complement(DIGIT), "w": WORD, "W": _complement(WORD),
                  "s": SPACE, "S": _complement(SPACE)}
_CONTROL_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D}

_GC_NAMES = {
    "L": "Letter", "LC": "Cased_Letter", "Lu": "Uppercase_Letter", "Ll": "Lowercase_Letter",
    "Lt": "Titlecase_Letter", "Lm": "Modifier_Letter", "Lo": "Other_Letter", "M": "Mark",
    "Mn": "Nonspacing_Mark", "Mc": "Spacing_Mark", "Me": "Enclosing_Mark", "N": "Number",
    "Nd": "Decimal_Number", "Nl": "Letter_Number", "No": "Other_Number", "P": "Punctuation",
    "Pc": "Connector_Punctuation", "Pd": "Dash_Punctuation", "Ps": "Open_Punctuation",
    "Pe": "Close_Punctuation", "Pi": "Initial_Punctuation", "Pf": "Final_Punctuation",
    "Po": "Other_Punctuation", "S": "Symbol", "Sm": "Math_Symbol", "Sc": "Currency_Symbol",
    "Sk": "Modifier_Symbol", "So": "Other_Symbol", "Z": "Separator", "Zs": "Space_Separator",
    "Zl": "Line_Separator", "Zp": "Paragraph_Separator", "C": "Other", "Cc": "Control",
    "Cf": "Format", "Cs": "Surrogate", "Co": "Private_Use", "Cn": "Unassigned",
}
_GC_ALIASES = {"digit": "Nd", "combining_mark": "M", "punct": "P", "cntrl": "Cc"}


def _loose(name: str) -> str:
    return name.replace("_", "").replace("-", "").replace(" ", "").lower()


@lru_cache(maxsize=1)
def _categories() -> dict[str, Ranges]:
    """General_Category → code point ranges (one pass over unicodedata)."""
    acc: dict[str, list[tuple[int, int]]] = {}
    start, cur = 0, unicodedata.category(chr(0))
    for cp in range(1, MAX_CP + 2):
        cat = unicodedata.category(chr(cp)) if cp <= MAX_CP else None
        if cat != cur:
            acc.setdefault(cur, []).append((start, cp - 1))
            start, cur = cp, cat
    return {k: _norm(v) for k, v in acc.items()}


def _property(body: str) -> Ranges | None:
    """The set of a `\\p{body}` property, or None if not supported."""
    name, _, value = body.partition("=")
    if value:
        if _loose(name) not in ("gc", "generalcategory"):
            return None
        body = value
    key = _loose(body)
    lookup = {}
    for short, long in _GC_NAMES.items():
        lookup[_loose(short)] = short
        lookup[_loose(long)] = short
    for alias, short in _GC_ALIASES.items():
        lookup[_loose(alias)] = short
    if not value:
        if key == "any":
            return ALL
        if key == "ascii":
            return ((0, 0x7F),)
        if key == "assigned":
            return _complement(_categories().get("Cn", ()))
        if key in ("whitespace", "space"):
            return _norm([(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
                          (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
                          (0x3000, 0x3000)])
    short = lookup.get(key)
    if short is None:
        return None
    cats = _categories()
    if short == "LC":
        return _union(cats.get("Lu", ()), cats.get("Ll", ()), cats.get("Lt", ()))
    if len(short) == 1:
        return _union(*(v for k, v in cats.items() if k[0] == short))
    return cats.get(short, ())


# --- AST --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    kind: str  # "chars" | "cat" | "alt" | "rep" | "bol" | "eol"
    chars: Ranges = ()
    items: list["_Node"] = field(default_factory=list)
    lo: int = 0
    hi: int | None = 0
    bol: bool = False  # contains ^
    eol: bool = False  # contains $
    rest: "tuple[_Node, _Node] | None" = None  # cat only: cached split, see _split


    @property
    def anchored(self) -> bool:
        return self.bol or self.eol


def _chars(r: Ranges) -> _Node:
    return _Node("chars", chars=r)


def _cat(items: list[_Node]) -> _Node:
    return _Node("cat", items=items, bol=any(i.bol for i in items), eol=any(i.eol for i in items))


def _alt(items: list[_Node]) -> _Node:
    return _Node("alt", items=items, bol=any(i.bol for i in items), eol=any(i.eol for i in items))


def _rep(node: _Node, lo: int, hi: int | None) -> _Node:
    return _Node("rep", items=[node], lo=lo, hi=hi, bol=node.bol, eol=node.eol)


# --- parser -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, pattern: str, keyword: str, pointer: str) -> None:
        self.p = pattern
        self.i = 0
        self.keyword = keyword
        self.pointer = pointer
        self.groups, self.named = self._scan_groups()

    def error(self, msg: str) -> RegexError:
        return RegexError(f"invalid ECMA-262 pattern {self.p!r}: {msg} (at offset {self.i})")

    def unsupported(self, what: str) -> UnsupportedFeature:
        return UnsupportedFeature(self.keyword, self.pointer, f"{what} in pattern {self.p!r} is not supported")

    def _scan_groups(self) -> tuple[int, bool]:
        """Number of capturing groups and whether any is named (decides what \\1 / \\k mean)."""
        n, named, p = 0, False, self.p
        for i, c, _, in_class in _scan(p):
            if c == "(" and not in_class:
                if not p.startswith("?", i + 1):
                    n += 1
                elif p.startswith("?<", i + 1) and not p.startswith(("?<=", "?<!"), i + 1):
                    n += 1
                    named = True
        return n, named

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def eat(self, s: str) -> bool:
        if self.p.startswith(s, self.i):
            self.i += len(s)
            return True
        return False

    def parse(self) -> _Node:
        node = self.disjunction()
        if self.i < len(self.p):
            raise self.error("unmatched ')'")
        return node

    def disjunction(self) -> _Node:
        alts = [self.alternative()]
        while self.eat("|"):
            alts.append(self.alternative())
        return alts[0] if len(alts) == 1 else _alt(alts)

    def alternative(self) -> _Node:
        check_budget(lambda: f"regex {shown(self.p)}")
        items = []
        while self.i < len(self.p) and self.peek() not in "|)":
            items.append(self.term())
        return items[0] if len(items) == 1 else _cat(items)

    def term(self) -> _Node:
        if self.eat("^"):
            return self.no_quantifier(_Node("bol", bol=True))
        if self.eat("$"):
            return self.no_quantifier(_Node("eol", eol=True))
        if self.p.startswith(("\\b", "\\B"), self.i):
            raise self.unsupported("the word boundary " + self.p[self.i : self.i + 2])
        for look in ("(?=", "(?!", "(?<=", "(?<!"):
            if self.p.startswith(look, self.i):
                raise self.unsupported("the lookaround " + look + "...)")
        return self.quantified(self.atom())

    def no_quantifier(self, node: _Node) -> _Node:
        if self.peek() in ("*", "+", "?") or self.quantifier_ahead():
            raise self.error("nothing to repeat")
        return node

    def quantifier_ahead(self) -> tuple[int, int | None, int] | None:
        """A `{n}`, `{n,}` or `{n,m}` at the cursor: (min, max, length), else None."""
        p, j = self.p, self.i
        if not p.startswith("{", j):
            return None
        k = j + 1
        while k < len(p) and p[k].isdigit() and p[k].isascii():
            k += 1
        if k == j + 1:
            return None
        lo = int(p[j + 1 : k])
        hi: int | None = lo
        if p.startswith(",", k):
            m = k + 1
            while m < len(p) and p[m].isdigit() and p[m].isascii():
                m += 1
            hi = int(p[k + 1 : m]) if m > k + 1 else None
            k = m
        if not p.startswith("}", k):
            return None
        return lo, hi, k + 1 - j

    def quantified(self, atom: _Node) -> _Node:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        else:
            q = self.quantifier_ahead()
            if q is None:
                return atom
            lo, hi, length = q
            if hi is not None and hi < lo:
                raise self.error("numbers out of order in {} quantifier")
            self.i += length
        self.eat("?")  # lazy: same language
        if self.peek() in ("*", "+", "?") or self.quantifier_ahead():
            raise self.error("nothing to repeat")
        return _rep(atom, lo, hi)

    def atom(self) -> _Node:
        c = self.peek()
        if c == ".":
            self.i += 1
            return _chars(DOT)
        if c == "(":
            return self.group()
        if c == "[":
            self.i += 1
            return _chars(self.char_class())
        if c == "\\":
            self.i += 1
            return _chars(self.escape(in_class=False))
        if c in ("*", "+", "?") or self.quantifier_ahead():
            raise self.error("nothing to repeat")
        self.i += 1
        return _chars(_cp(c))  # includes a lone { } ] (Annex B)

    def group(self) -> _Node:
        self.i += 1
        if self.eat("?:"):
            pass
        elif self.peek() == "?" and self.peek(1) == "<":
            j = self.p.find(">", self.i)
            name = self.p[self.i + 2 : j] if j > 0 else ""
            if not name or not all(ch.isalnum() or ch in "_$" for ch in name) or name[0].isdigit():
                raise self.error("invalid group name")
            self.i = j + 1
        elif self.peek() == "?":
            raise self.error("invalid group (only (?:...), (?<name>...) and lookarounds exist)")
        node = self.disjunction()
        if not self.eat(")"):
            raise self.error("missing ')'")
        return node

    def char_class(self) -> Ranges:
        negate = self.eat("^")
        parts: list[Ranges] = []
        while True:
            if self.i >= len(self.p):
                raise self.error("missing ']'")
            if self.eat("]"):
                break
            first = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                second = self.class_atom()
                if _is_single(first) and _is_single(second):
                    lo, hi = first[0][0], second[0][0]
                    if lo > hi:
                        raise self.error("range out of order in character class")
                    parts.append(((lo, hi),))
                else:  # Annex B: a class escape next to '-' makes the '-' literal
                    parts += [first, _cp("-"), second]
            else:
                parts.append(first)
        r = _union(*parts)
        return _complement(r) if negate else r

    def class_atom(self) -> Ranges:
        c = self.peek()
        self.i += 1
        if c != "\\":
            return _cp(c)
        if self.eat("b"):
            return ((0x08, 0x08),)
        if self.eat("-"):
            return _cp("-")
        return self.escape(in_class=True)

    def escape(self, in_class: bool) -> Ranges:
        """The set of the escape after a backslash (cursor past the backslash)."""
        p = self.p
        c = self.peek()
        if not c:
            raise self.error("\\ at end of pattern")
        if c in _CLASS_ESCAPES:
            self.i += 1
            return _CLASS_ESCAPES[c]
        if c in _CONTROL_ESCAPES:
            self.i += 1
            return ((_CONTROL_ESCAPES[c],) * 2,)
        if c == "c":
            letter = self.peek(1)
            if letter.isascii() and letter.isalpha():
                self.i += 2
                return ((ord(letter) % 32,) * 2,)
            raise self.error("\\c must be followed by an ASCII letter")
        if c == "0" and not self.peek(1).isdigit():
            self.i += 1
            return ((0, 0),)
        if c.isdigit() and c.isascii():
            j = self.i
            while j < len(p) and p[j].isdigit():
                j += 1
            n = int(p[self.i : j])
            if 0 < n <= self.groups:
                raise self.unsupported(f"the backreference \\{n}")
            raise self.error(f"invalid escape \\{p[self.i:j]}")
        if c == "k":
            if self.named:
                raise self.unsupported("the named backreference \\k<...>")
            raise self.error("invalid escape \\k")
        if c == "x":
            h = p[self.i + 1 : self.i + 3]
            if len(h) == 2 and _is_hex(h):
                self.i += 3
                return ((int(h, 16),) * 2,)
            raise self.error("\\x must be followed by two hex digits")
        if c == "u":
            return ((self.unicode_escape(),) * 2,)
        if c in ("p", "P"):
            if not self.eat(c + "{"):
                self.i += 1
                raise self.error(f"\\{c} must be followed by {{...}}")
            j = p.find("}", self.i)
            if j < 0:
                raise self.error("missing '}' after \\p{")
            body = p[self.i : j]
            self.i = j + 1
            r = _property(body)
            if r is None:
                raise self.unsupported(f"the Unicode property \\{c}{{{body}}}")
            return _complement(r) if c == "P" else r
        if c in _SYNTAX_CHARS or (c.isascii() and not c.isalnum()) or not c.isascii():
            self.i += 1  # identity escape (lenient: any ASCII punctuation or non-ASCII)
            return _cp(c)
        raise self.error(f"invalid escape \\{c}")

    def unicode_escape(self) -> int:
        p = self.p
        if p.startswith("u{", self.i):
            j = p.find("}", self.i)
            h = p[self.i + 2 : j] if j > 0 else ""
            if not h or not _is_hex(h) or int(h, 16) > MAX_CP:
                raise self.error("invalid \\u{...} escape")
            self.i = j + 1
            return int(h, 16)
        h = p[self.i + 1 : self.i + 5]
        if len(h) != 4 or not _is_hex(h):
            raise self.error("\\u must be followed by four hex digits")
        self.i += 5
        cp = int(h, 16)
        if 0xD800 <= cp <= 0xDBFF and p.startswith("\\u", self.i):
            h2 = p[self.i + 2 : self.i + 6]
            if len(h2) == 4 and _is_hex(h2) and 0xDC00 <= int(h2, 16) <= 0xDFFF:
                self.i += 6
                return 0x10000 + ((cp - 0xD800) << 10) + (int(h2, 16) - 0xDC00)
        return cp


def _is_hex(s: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in s)


def _is_single(r: Ranges) -> bool:
    return len(r) == 1 and r[0][0] == r[0][1]


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


def _scan(t: str):
    """(index, char, group depth after it, inside a class after it) for each unescaped character."""
    depth, in_class, i = 0, False, 0
    while i < len(t):
        c = t[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        else:
            depth += (c == "(") - (c == ")")
        yield i, c, depth, in_class
        i += 1


def closing_bracket(t: str, i: int) -> int:
    """Index of the bracket closing the class or group opened at t[i] (-1 if none)."""
    for j, c, depth, in_class in _scan(t[i:]):
        if (c == "]" and t[i] == "[" and not in_class) or (c == ")" and t[i] == "(" and depth == 0):
            return i + j
    return -1


def split_alternatives(t: str) -> list[str]:
    """The top-level alternatives of a regex text (outside groups and classes)."""
    out, start = [], 0
    for i, c, depth, in_class in _scan(t):
        if c == "|" and depth == 0 and not in_class:
            out.append(t[start:i])
            start = i + 1
    return out + [t[start:]]


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
