"""Code point sets of ECMA-262 patterns as sorted range tuples: the class escapes' sets
(`\\d \\w \\s`, `.`) and the Unicode properties `\\p{...}` (General_Category, from unicodedata)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from ..automata.utf8 import MAX_UNICODE
from ..automata.utf8 import complement_ranges as _complement
from ..automata.utf8 import merge_ranges as _norm

MAX_CP = MAX_UNICODE
Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, non-adjacent inclusive ranges


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


def _is_single(r: Ranges) -> bool:
    return len(r) == 1 and r[0][0] == r[0][1]
