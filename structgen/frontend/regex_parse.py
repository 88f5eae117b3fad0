"""ECMA-262 pattern syntax → AST: the `_Node` tree (character sets, concatenation, alternation,
repetition, `^`/`$` anchors) and the recursive-descent `_Parser` that builds it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..automata.utf8 import complement_ranges as _complement
from ..budget import check as check_budget
from ..errors import RegexError, UnsupportedFeature, shown
from .regex_charsets import DIGIT, DOT, MAX_CP, SPACE, WORD, Ranges, _cp, _is_single, _property, _union
from .regex_text import scan

_SYNTAX_CHARS = set("^$\\.*+?()[]{}|/")
_CLASS_ESCAPES = {"d": DIGIT, "D": _complement(DIGIT), "w": WORD, "W": _complement(WORD),
                  "s": SPACE, "S": _complement(SPACE)}
_CONTROL_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D}


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
        for i, c, _, in_class in scan(p):
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
