"""Digit-string languages between bounds, as regex text: integer magnitudes in a range (same-length
ranges built by halving) and fraction digits between two bounds; numbers.py assembles JSON literals."""

from __future__ import annotations

from functools import lru_cache

from ..regex_text import closing_bracket, split_alternatives


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


def _opt(r: str) -> str:
    if r.startswith("(?:") and _balanced_group(r):
        return r + "?"
    return "(?:" + r + ")?"


def _balanced_group(r: str) -> bool:
    """Whether r is one parenthesized group (its opening parenthesis closes at the end)."""
    return closing_bracket(r, 0) == len(r) - 1


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


# --- fractions --------------------------------------------------------------------------


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
