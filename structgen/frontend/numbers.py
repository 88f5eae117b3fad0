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

`multiple_of_dfa` builds `multipleOf` directly as a byte DFA (its regex form is exponential):
for m = a / 10^p it reads the literal's digits tracking the scaled value mod a.
"""

from __future__ import annotations

import math

import numpy as np

from .regex import closing_bracket, split_alternatives
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Union

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


# --- regex assembly helpers -------------------------------------------------------------


def _alt(parts: list[str]) -> str | None:
    """Alternation of regexes (None = empty language is dropped); result is an atom."""
    seen: list[str] = []
    for p in parts:
        if p is None:
            continue
        for q in _top_alternatives(p):
            if q not in seen:
                seen.append(q)
    if not seen:
        return None
    if len(seen) == 1:
        return seen[0]
    return "(?:" + "|".join(seen) + ")"


def _top_alternatives(r: str) -> list[str]:
    """The alternatives of r if it is one group `(?:a|b|...)`, else [r]."""
    if not (r.startswith("(?:") and _balanced_group(r)):
        return [r]
    return split_alternatives(r[3:-1])


def _digit_class(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    if lo == 0 and hi == 9:
        return "[0-9]"
    return f"[{lo}-{hi}]" if hi > lo + 1 else f"[{lo}{hi}]"


def _rep(atom: str, n: int, m: int | None = -1) -> str:
    """atom{n} (m == -1), atom{n,m}, or atom{n,} (m None)."""
    if m == -1 or m == n:
        if n == 0:
            return ""
        return atom if n == 1 else f"{atom}{{{n}}}"
    if m is None:
        return {0: f"{atom}*", 1: f"{atom}+"}.get(n, f"{atom}{{{n},}}")
    if n == 0 and m == 1:
        return f"{atom}?"
    return f"{atom}{{{n},{m}}}"


# --- integers ---------------------------------------------------------------------------


def _lit(digits: str) -> str:
    """A digit string with long runs written as counted repetitions (0{292})."""
    out, i = [], 0
    while i < len(digits):
        j = i
        while j < len(digits) and digits[j] == digits[i]:
            j += 1
        out.append(_rep(digits[i], j - i) if j - i > 3 else digits[i:j])
        i = j
    return "".join(out)


def _any(n: int) -> str:
    return _rep("[0-9]", n)


def _ge(s: str) -> str:
    """Regex of the digit strings of length len(s) that are >= s (lexicographically = numerically).

    Split in halves (s = a b: a+1.. then anything, or a then >= b) so that the nesting depth
    is logarithmic in the length: interegular parses regexes recursively."""
    n = len(s)
    z = n - len(s.rstrip("0"))
    if z == n:
        return _any(n)
    if z:  # >= t0..0: >= t, then anything
        return _ge(s[: n - z]) + _any(z)
    nines = n - len(s.rstrip("9"))
    if nines == n:
        return _lit(s)
    if nines:  # s itself, or > t then anything
        t = s[: n - nines]
        return _alt([_ge(_inc(t)) + _any(nines), _lit(s)])
    if n == 1:
        return _digit_class(int(s), 9)
    m = n // 2
    a, b = s[:m], s[m:]
    parts = [] if a == "9" * m else [_ge(_inc(a)) + _any(n - m)]
    return _alt(parts + [_lit(a) + _ge(b)])


def _le(s: str) -> str:
    """Regex of the digit strings of length len(s) that are <= s (mirror of `_ge`)."""
    n = len(s)
    z = n - len(s.rstrip("9"))
    if z == n:
        return _any(n)
    if z:
        return _le(s[: n - z]) + _any(z)
    zeros = n - len(s.rstrip("0"))
    if zeros == n:
        return _lit(s)
    if zeros:
        t = s[: n - zeros]
        return _alt([_le(_dec(t)) + _any(zeros), _lit(s)])
    if n == 1:
        return _digit_class(0, int(s))
    m = n // 2
    a, b = s[:m], s[m:]
    parts = [] if a == "0" * m else [_le(_dec(a)) + _any(n - m)]
    return _alt(parts + [_lit(a) + _le(b)])


def _inc(a: str) -> str:
    return str(int(a) + 1).zfill(len(a))


def _dec(a: str) -> str:
    return str(int(a) - 1).zfill(len(a))


def _same_length(x: str, y: str) -> str:
    """Regex of the digit strings of one length between x and y (x <= y); its size is
    O(n log n) and its nesting O(log n) in the number of digits n, and free trailing digits
    are factored out, so float bounds like 1.7976931348623157e308 stay cheap."""
    if x == y:
        return _lit(x)
    i = 0
    while x[i] == y[i]:
        i += 1
    prefix = _lit(x[:i])
    x0, y0 = int(x[i]), int(y[i])
    xr, yr = x[i + 1 :], y[i + 1 :]
    k = len(xr)  # digits after the first differing one
    zeros, nines = "0" * k, "9" * k
    lo_digit = x0 if xr == zeros else x0 + 1
    hi_digit = y0 if yr == nines else y0 - 1
    alts: list[str] = []
    if lo_digit > x0:
        alts.append(str(x0) + _ge(xr))
    if lo_digit <= hi_digit:
        alts.append(_digit_class(lo_digit, hi_digit) + _any(k))
    if hi_digit < y0:
        alts.append(str(y0) + _le(yr))
    return prefix + _alt(alts)


def _nonneg_int_alts(a: int, b: int | None) -> list[str]:
    """Alternatives matching the canonical decimal forms of the integers in [a, b] (a >= 0;
    b None = unbounded)."""
    if b is not None and a > b:
        return []
    out: list[str] = []
    if a == 0:
        out.append("0")
        if b is not None and b < 1:
            return out
        a = 1
    la = len(str(a))
    lb = None if b is None else len(str(b))
    if lb == la:
        return out + [_same_length(str(a), str(b))]
    # lengths whose every literal is in range become one alternative [1-9][0-9]{n,m}
    first_full = a == 10 ** (la - 1)
    last_full = b is None or b == 10**lb - 1
    full_lo = la if first_full else la + 1
    full_hi = None if lb is None else (lb if last_full else lb - 1)
    if not first_full:
        out.append(_same_length(str(a), "9" * la))
    if full_hi is None or full_hi >= full_lo:
        out.append("[1-9]" + _rep("[0-9]", full_lo - 1, None if full_hi is None else full_hi - 1))
    if lb is not None and not last_full:
        out.append(_same_length("1" + "0" * (lb - 1), str(b)))
    return out


def _nonneg_int(a: int, b: int | None) -> str | None:
    alts = _nonneg_int_alts(a, b)
    return _alt(alts)


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


def _frac_lang(lo: str | None, lo_excl: bool, hi: str | None, hi_excl: bool) -> tuple[str | None, bool]:
    """The digit strings D with lo (<|<=) 0.D (<|<=) hi, where lo/hi are fraction digit
    strings without trailing zeros (None = no bound on that side). Returns (regex of the
    non-empty such D or None, whether the empty D, i.e. value 0, qualifies)."""

    def digit(s: str | None, i: int) -> int:
        return int(s[i]) if s is not None and i < len(s) else 0

    def rest_zero(s: str | None, i: int) -> bool:
        return s is None or i >= len(s)

    def run(s: str, i: int) -> tuple[int, int]:
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        return int(s[i]), j - i

    @lru_cache(maxsize=None)
    def empty_ok(i: int, tl: bool, th: bool) -> bool:
        # stopping here means the remaining digits are all 0
        if tl and lo is not None:
            if not rest_zero(lo, i) or lo_excl:  # 0 >= rest-of-lo needs rest 0 and inclusive
                return False
        if th and hi is not None:
            if rest_zero(hi, i) and hi_excl:  # 0 < rest-of-hi needs rest > 0
                return False
        return True

    @lru_cache(maxsize=None)
    def nonempty(i: int, tl: bool, th: bool) -> str | None:
        tl = tl and lo is not None
        th = th and hi is not None
        if tl and rest_zero(lo, i) and not lo_excl:
            tl = False  # every continuation is >= 0
        if th and rest_zero(hi, i):
            # only all-zero continuations stay <= 0; then the lower side must allow 0 too
            if hi_excl or (tl and (lo_excl or not rest_zero(lo, i))):
                return None
            return "0+"
        if not tl and not th:
            return "[0-9]+"
        if tl and not th and rest_zero(lo, i):
            return "[0-9]*[1-9][0-9]*"  # exclusive lower bound 0: some non-zero digit
        # one step per run of equal bound digits keeps the nesting to the number of runs
        if tl and not th:  # >= (or >) the rest of lo, which is non-zero: stopping early fails
            d, r = run(lo, i)
            cont = full(i + r, True, False)
            alts = []
            if d < 9:
                alts.append(_rep(str(d), 0, r - 1) + _digit_class(d + 1, 9) + "[0-9]*")
            if cont is not None:
                alts.append(_rep(str(d), r) + cont)
            return _alt(alts)
        if th and not tl:  # <= (or <) the rest of hi, which is non-zero: stopping early is fine
            d, r = run(hi, i)
            cont = full(i + r, False, True)
            alts = []
            if d > 0:
                alts.append(_rep(str(d), 0, r - 1) + _digit_class(0, d - 1) + "[0-9]*")
            if r > 1:
                alts.append(_rep(str(d), 1, r - 1))
            if cont is not None:
                alts.append(_rep(str(d), r) + cont)
            return _alt(alts)
        c = 0  # both tight: copy the digits lo and hi share (lo's rest is non-zero: no stopping)
        while i + c < len(lo) and digit(lo, i + c) == digit(hi, i + c):
            c += 1
        if c:
            tail = full(i + c, True, True)
            return None if tail is None else _lit(lo[i : i + c]) + tail
        dl = digit(lo, i) if tl else 0
        dh = digit(hi, i) if th else 9
        cases: list[list] = []
        for c_lo, c_hi, ntl, nth in _digit_cases(dl, dh, tl, th):
            tail = full(i + 1, ntl, nth)
            if tail is None:
                continue
            if cases and cases[-1][2] == tail and cases[-1][1] + 1 == c_lo:
                cases[-1][1] = c_hi  # merge neighbouring digits with the same continuation
            else:
                cases.append([c_lo, c_hi, tail])
        return _alt([_digit_class(c_lo, c_hi) + tail for c_lo, c_hi, tail in cases])

    def full(i: int, tl: bool, th: bool) -> str | None:
        """Regex of all (possibly empty) valid continuations; None if none at all."""
        ne = nonempty(i, tl, th)
        e = empty_ok(i, tl, th)
        if ne is None:
            return "" if e else None
        if not e:
            return ne
        if ne == "[0-9]+":
            return "[0-9]*"
        if ne == "0+":
            return "0*"
        return _opt(ne)

    return nonempty(0, True, True), empty_ok(0, True, True)


def _opt(r: str) -> str:
    if r.startswith("(?:") and _balanced_group(r):
        return r + "?"
    return "(?:" + r + ")?"


def _balanced_group(r: str) -> bool:
    """Whether r is one parenthesized group (its opening parenthesis closes at the end)."""
    return closing_bracket(r, 0) == len(r) - 1


def _digit_cases(dl: int, dh: int, tl: bool, th: bool):
    """(digit lo, digit hi, still tight on lo, still tight on hi) cases for one position."""
    if dl > dh:
        return []
    if dl == dh:
        return [(dl, dh, tl, th)]
    out = [(dl, dl, tl, False)]
    if dl + 1 <= dh - 1:
        out.append((dl + 1, dh - 1, False, False))
    out.append((dh, dh, False, th))
    return out


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
    from ..automata.fsm import ByteDFA, _minimise, _trim

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
