"""Exact numeric ranges as regexes over JSON number syntax.

`minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` are regular constraints on the
*text* of a JSON number once the literal's shape is fixed, so they compile to terminal
regexes instead of being checked after generation:

- `integer_regex`: canonical JSON integers `-?(0|[1-9][0-9]*)` ("-0" is 0) in a range;
- `decimal_regex`: JSON numbers without exponent `-?(0|[1-9][0-9]*)(\\.[0-9]+)?` whose exact
  decimal value lies in a range (trailing fraction zeros allowed, "-0.0" is 0).

Both split the range into same-length decimal ranges (like XGrammar's and Outlines' range
converters) instead of enumerating values. A same-length range is built by halving the
digit string, so the regex is O(n log n) in the number of digits n with O(log n) nesting
(interegular parses recursively), and free trailing digits are factored out (a float bound
like 1.7976931348623157e308 costs its 17 significant digits, not 309). Fraction bounds are
handled one run of equal digits at a time, so 1e-300 is cheap too. Bounds may be int,
float, Decimal or str; a float is read as the shortest decimal that round-trips (`repr`),
i.e. the number the schema author wrote, and every comparison is exact (`decimal.Decimal`,
no context rounding). Both return None when no literal satisfies the bounds.

Cost note: the regexes stay small, but a bound with hundreds of digits still means literals
hundreds of digits long, and interegular's construction of such DFAs takes seconds
(~8 s for |v| <= 1.8e308); bounds up to ~1e40 compile in well under a second.

The digit-string languages themselves (halving, fraction runs) are built in digit_ranges.py.

`multiple_of_dfa` builds `multipleOf` directly as a byte DFA (its regex form is exponential):
for m = a / 10^p it reads the literal's digits tracking the scaled value mod a.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Union

import numpy as np

from .digit_ranges import _alt, _frac_lang, _nonneg_int

Number = Union[int, float, Decimal, str]

__all__ = ["integer_regex", "decimal_regex", "sign_number_regex", "multiple_of_dfa"]
MAX_MULTIPLE_STATES = 20_000


# --- bounds -----------------------------------------------------------------------------


def _to_decimal(x: Number) -> Decimal:
    """Exact Decimal of a bound (floats via their shortest round-trip repr)."""
    if isinstance(x, bool):
        raise TypeError(f"numeric bound expected, got {x!r}")
    if isinstance(x, float):
        if math.isnan(x):
            raise ValueError("NaN is not a valid bound")
        if math.isinf(x):
            return Decimal("Infinity") if x > 0 else Decimal("-Infinity")
        return Decimal(repr(x))
    if isinstance(x, (int, Decimal)):
        d = Decimal(x)
    else:
        try:
            d = Decimal(str(x).strip())
        except InvalidOperation as e:
            raise ValueError(f"not a number: {x!r}") from e
    if d.is_nan():
        raise ValueError("NaN is not a valid bound")
    return d


def _floor(d: Decimal) -> int:
    i = int(d)  # truncates toward zero, exactly
    return i - 1 if d < 0 and d != i else i


def _ceil(d: Decimal) -> int:
    return -_floor(d.copy_negate())  # copy_negate is exact; unary minus rounds to 28 digits


class _Interval:
    """A set of decimals {v : lo (<|<=) v (<|<=) hi}; None bounds are unbounded."""

    def __init__(self) -> None:
        self.lo: Decimal | None = None
        self.lo_excl = False
        self.hi: Decimal | None = None
        self.hi_excl = False
        self.empty = False

    def lower(self, bound: Number | None, exclusive: bool) -> None:
        if bound is None:
            return
        d = _to_decimal(bound)
        if d.is_infinite():
            if d > 0:
                self.empty = True
            return
        if self.lo is None or d > self.lo or (d == self.lo and exclusive):
            self.lo, self.lo_excl = d, exclusive

    def upper(self, bound: Number | None, exclusive: bool) -> None:
        if bound is None:
            return
        d = _to_decimal(bound)
        if d.is_infinite():
            if d < 0:
                self.empty = True
            return
        if self.hi is None or d < self.hi or (d == self.hi and exclusive):
            self.hi, self.hi_excl = d, exclusive

    def is_empty(self) -> bool:
        if self.empty:
            return True
        if self.lo is None or self.hi is None:
            return False
        return self.lo > self.hi or (self.lo == self.hi and (self.lo_excl or self.hi_excl))


def _interval(minimum, maximum, exclusive_minimum, exclusive_maximum) -> _Interval:
    iv = _Interval()
    iv.lower(minimum, False)
    iv.lower(exclusive_minimum, True)
    iv.upper(maximum, False)
    iv.upper(exclusive_maximum, True)
    return iv


# --- integers ---------------------------------------------------------------------------


def _int_bounds(iv: _Interval) -> tuple[int | None, int | None] | None:
    """The integer bounds [lo, hi] (None = unbounded) of an interval, or None if no integer fits."""
    if iv.is_empty():
        return None
    lo = hi = None
    if iv.lo is not None:
        lo = _floor(iv.lo) + 1 if iv.lo_excl else _ceil(iv.lo)
    if iv.hi is not None:
        hi = _ceil(iv.hi) - 1 if iv.hi_excl else _floor(iv.hi)
    if lo is not None and hi is not None and lo > hi:
        return None
    return lo, hi


def _signed(pos: str | None, neg: str | None) -> str | None:
    """Combine the regex of non-negative literals and of magnitudes written after '-'."""
    if pos is not None and pos == neg:
        return "-?" + pos
    return _alt([pos, None if neg is None else "-" + neg])


def integer_regex(minimum: Number | None = None, maximum: Number | None = None,
                  exclusive_minimum: Number | None = None,
                  exclusive_maximum: Number | None = None) -> str | None:
    """Regex of the canonical JSON integer literals whose value is within the bounds; None if none."""
    b = _int_bounds(_interval(minimum, maximum, exclusive_minimum, exclusive_maximum))
    if b is None:
        return None
    lo, hi = b
    pos = neg = None
    if hi is None or hi >= 0:
        pos = _nonneg_int(max(lo, 0) if lo is not None else 0, hi)
    if lo is None or lo <= 0:
        # "-m" has value -m; "-0" is 0, so it belongs when 0 is in range
        neg = _nonneg_int(max(-hi, 0) if hi is not None else 0, -lo if lo is not None else None)
    return _signed(pos, neg)


# --- decimals ---------------------------------------------------------------------------

_ANY_FRAC = r"(?:\.[0-9]+)?"


def _split(d: Decimal) -> tuple[int, str]:
    """(integer part, fraction digits without trailing zeros) of a non-negative Decimal."""
    s = format(d, "f")
    if "." in s:
        ip, fp = s.split(".")
    else:
        ip, fp = s, ""
    return int(ip), fp.rstrip("0")


def _with_frac(int_re: str, frac: tuple[str | None, bool]) -> str | None:
    """The integer-part regex followed by an allowed fraction (or none if value-0 is allowed)."""
    ne, empty = frac
    if ne is None:
        return int_re if empty else None
    part = r"\." + ne
    if empty:
        part = "(?:" + part + ")?"
    return int_re + part


def _magnitude(lo: Decimal | None, lo_excl: bool, hi: Decimal | None, hi_excl: bool) -> str | None:
    """Regex of unsigned decimal literals (0|[1-9][0-9]*)(\\.[0-9]+)? whose value m is in the
    interval, m >= 0 implied."""
    if lo is None or lo < 0:
        lo, lo_excl = Decimal(0), False
    if hi is not None and (hi < lo or (hi == lo and (lo_excl or hi_excl))):
        return None
    a, fa = _split(lo)
    if hi is None:
        first = _with_frac(str(a), _frac_lang(fa, lo_excl, None, False))
        rest = _nonneg_int(a + 1, None)
        return _alt([first, None if rest is None else rest + _ANY_FRAC])
    b, fb = _split(hi)
    if a == b:
        return _with_frac(str(a), _frac_lang(fa, lo_excl, fb, hi_excl))
    first = _with_frac(str(a), _frac_lang(fa, lo_excl, None, False))
    mid = _nonneg_int(a + 1, b - 1) if b - 1 >= a + 1 else None
    last = _with_frac(str(b), _frac_lang(None, False, fb, hi_excl))
    return _alt([first, None if mid is None else mid + _ANY_FRAC, last])


def decimal_regex(minimum: Number | None = None, maximum: Number | None = None,
                  exclusive_minimum: Number | None = None,
                  exclusive_maximum: Number | None = None) -> str | None:
    """Regex of the exponent-free JSON number literals whose exact value is within the bounds; None if none."""
    iv = _interval(minimum, maximum, exclusive_minimum, exclusive_maximum)
    if iv.is_empty():
        return None
    pos = neg = None
    if iv.hi is None or iv.hi >= 0:
        pos = _magnitude(iv.lo, iv.lo_excl, iv.hi, iv.hi_excl)
    if iv.lo is None or iv.lo <= 0:
        # "-m" has value -m: m lies in the mirrored interval
        neg = _magnitude(None if iv.hi is None else iv.hi.copy_negate(), iv.hi_excl,
                         None if iv.lo is None else iv.lo.copy_negate(), iv.lo_excl)
    return _signed(pos, neg)


_NONZERO = "(?:[1-9][0-9]*(?:\\.[0-9]+)?|0\\.0*[1-9][0-9]*)"  # an unsigned mantissa whose value is not 0
_ZERO = "0(?:\\.0+)?"
_EXPONENT = "(?:[eE][+-]?[0-9]+)?"


def sign_number_regex(minimum: Number | None = None, maximum: Number | None = None,
                      exclusive_minimum: Number | None = None,
                      exclusive_maximum: Number | None = None) -> str | None:
    """Regex of every JSON number literal, exponent forms too, within bounds that only fix the
    sign (each finite bound is 0: `minimum: 0`, `exclusiveMaximum: 0`, ...); None for other bounds
    or none satisfied. A literal's sign is its mantissa's, so this is exact and regular; for
    other bounds the exponent's value would have to be compared with the mantissa's length."""
    iv = _interval(minimum, maximum, exclusive_minimum, exclusive_maximum)
    if iv.is_empty() or any(b is not None and b != 0 for b in (iv.lo, iv.hi)):
        return None
    zero = (iv.lo is None or not iv.lo_excl) and (iv.hi is None or not iv.hi_excl)
    alts = [f"-?{_ZERO}"] if zero else []
    if iv.hi is None:
        alts.append(_NONZERO)
    if iv.lo is None:
        alts.append(f"-{_NONZERO}")
    return f"(?:{'|'.join(alts)}){_EXPONENT}" if alts else None


# --- multipleOf --------------------------------------------------------------------------


def multiple_of_dfa(multiple: Number, integer: bool):
    """Byte DFA of the JSON number literals without exponent (integers only if `integer`) whose
    value is a multiple of `multiple`; None when the DFA would be too large (a has too many digits).

    With m = a / 10^p (a, p integers), x is a multiple of m iff x * 10^p is an integer divisible by
    a: states track the digits read so far mod a and how many fraction digits were read; fraction
    digits beyond the p-th must be zeros."""
    from ...automata.dfa import ByteDFA, _minimise, _trim

    m = _to_decimal(multiple)
    if not m.is_finite() or m <= 0:
        raise ValueError(f"multipleOf must be a positive number, got {multiple!r}")
    sign, digits, exp = m.normalize().as_tuple()
    a = int("".join(map(str, digits))) * (10 ** exp if exp > 0 else 1)
    p = -exp if exp < 0 else 0
    if a * (p + 2) > MAX_MULTIPLE_STATES:
        return None
    # states: 0 start, 1 after '-', 2 int part "0", then int(r), dot(r), frac(r, f) for f = 1..p
    base_int, base_dot = 3, 3 + a
    base_frac = 3 + 2 * a
    n = base_frac + a * p
    trans = np.full((n, 256), -1, dtype=np.int32)
    accept = np.zeros(n, dtype=bool)
    d0 = ord("0")

    def frac(r: int, f: int) -> int:
        return base_frac + (f - 1) * a + r

    trans[0, ord("-")] = 1
    for s in (0, 1):
        trans[s, d0] = 2
        for d in range(1, 10):
            trans[s, d0 + d] = base_int + d % a
    accept[2] = True
    for r in range(a):
        accept[base_int + r] = (r * 10 ** p) % a == 0
        for d in range(10):
            trans[base_int + r, d0 + d] = base_int + (r * 10 + d) % a
    if not integer:
        # p == 0 (an integral multiple): after the point only zeros, kept in one zero-loop per remainder
        zeros = np.full((a if not p else 0, 256), -1, dtype=np.int32)
        trans[2, ord(".")] = base_dot
        for r in range(a):
            trans[base_int + r, ord(".")] = base_dot + r
            if not p:
                trans[base_dot + r, d0] = zeros[r, d0] = n + r
                continue
            for d in range(10):
                trans[base_dot + r, d0 + d] = frac((r * 10 + d) % a, 1)
            for f in range(1, p + 1):
                accept[frac(r, f)] = (r * 10 ** (p - f)) % a == 0
                for d in range(10 if f < p else 0):
                    trans[frac(r, f), d0 + d] = frac((r * 10 + d) % a, f + 1)
            trans[frac(r, p), d0] = frac(r, p)
        trans = np.concatenate([trans, zeros])
        accept = np.concatenate([accept, np.arange(len(zeros)) == 0])
    trans, accept = _minimise(trans, accept)
    return _trim(trans, accept) if accept.any() else ByteDFA(trans, accept)
