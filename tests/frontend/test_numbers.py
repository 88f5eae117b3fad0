"""numbers.py: range regexes agree exactly with Decimal arithmetic on the literals' values."""

from __future__ import annotations

import random
import re
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structgen.automata.regex_dfa import regex_dfa
from structgen.frontend.json_schema.numbers import decimal_regex, integer_regex, sign_number_regex

INT_SHAPE = re.compile(r"-?(0|[1-9][0-9]*)")
DEC_SHAPE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


def _exact(x) -> Fraction:
    """The value the bound stands for (floats by their repr, like the module)."""
    if isinstance(x, float):
        return Fraction(Decimal(repr(x)))
    return Fraction(Decimal(str(x)) if isinstance(x, str) else x)


def _holds(v: Fraction, bounds: dict) -> bool:
    checks = {
        "minimum": lambda b: v >= b,
        "maximum": lambda b: v <= b,
        "exclusive_minimum": lambda b: v > b,
        "exclusive_maximum": lambda b: v < b,
    }
    return all(checks[k](_exact(b)) for k, b in bounds.items() if b is not None)


def _check_literals(regex: str | None, bounds: dict, literals, shape) -> None:
    if regex is None:
        # empty: no literal of the right shape may satisfy the bounds
        for s in literals:
            assert not (shape.fullmatch(s) and _holds(Fraction(Decimal(s)), bounds)), (bounds, s)
        return
    dfa = regex_dfa(regex)
    assert dfa.num_states < 3000, (regex, dfa.num_states)
    py = re.compile(regex)
    for s in literals:
        want = bool(shape.fullmatch(s)) and _holds(Fraction(Decimal(s)), bounds)
        assert dfa.matches(s.encode()) == want, (bounds, regex, s)
        assert bool(py.fullmatch(s)) == want, (bounds, regex, s)


def _int_window(bounds: dict) -> list[str]:
    centers = {0}
    for b in bounds.values():
        if b is not None:
            f = _exact(b)
            centers.add(int(f))
    lits = set()
    for c in centers:
        for v in range(c - 25, c + 26):
            lits.add(str(v))
        for k in range(0, 4):  # neighbours at other digit lengths
            lits.add(str(c * 10**k))
            lits.add(str(c // 10**k if c >= 0 else -(-c // 10**k)))
    lits |= {"-0", "01", "+1", "1e2", "1.", "1.0", "-", "", "00", "-01", " 1"}
    return sorted(lits)


# --- integers ---------------------------------------------------------------------------


@pytest.mark.parametrize("bounds", [
    {},
    {"minimum": 0},
    {"minimum": 1},
    {"maximum": -1},
    {"maximum": 0},
    {"minimum": -5, "maximum": 5},
    {"minimum": 13, "maximum": 2345678},
    {"minimum": -2345678, "maximum": -13},
    {"minimum": 1.5, "exclusive_maximum": 10},
    {"exclusive_minimum": -1, "exclusive_maximum": 1},
    {"exclusive_minimum": 0},
    {"exclusive_maximum": 0},
    {"minimum": 100, "maximum": 999},
    {"minimum": 99, "maximum": 1000},
    {"minimum": 10**30, "maximum": 10**30 + 7},
    {"minimum": -10**30},
    {"minimum": "2.0000000000000000000000001"},
    {"maximum": Decimal("-0.5")},
    {"minimum": 7, "maximum": 7},
    {"minimum": 0, "exclusive_minimum": 3, "maximum": 20, "exclusive_maximum": 11},
    {"minimum": 1e3, "maximum": 2e3},
])
def test_integer_windows(bounds):
    _check_literals(integer_regex(**bounds), bounds, _int_window(bounds), INT_SHAPE)


@pytest.mark.parametrize("bounds", [
    {"minimum": 3, "maximum": 2},
    {"minimum": 1.2, "maximum": 1.8},
    {"exclusive_minimum": 4, "exclusive_maximum": 5},
    {"minimum": 5, "exclusive_maximum": 5},
    {"minimum": float("inf")},
    {"maximum": float("-inf")},
])
def test_integer_empty(bounds):
    assert integer_regex(**bounds) is None


def test_integer_unbounded_is_json_integer():
    assert integer_regex(minimum=float("-inf"), maximum=float("inf")) == integer_regex()
    r = regex_dfa(integer_regex())
    for s in ["0", "-0", "7", "-12", "1234567890123456789012345678901234567890"]:
        assert r.matches(s.encode())
    for s in ["01", "+1", "1e2", "1.", "1.0", "", "-", "--1", "0x1"]:
        assert not r.matches(s.encode())


@pytest.mark.parametrize("lo,hi", [
    (-(10**40) + 17, 10**45 - 3),
    (10**40 + 1, None),
    (None, -1.7976931348623157e40),
    (-1e45, 1e45),
])
def test_integer_huge_bounds_stay_small(lo, hi):
    r = integer_regex(minimum=lo, maximum=hi)
    dfa = regex_dfa(r)
    assert dfa.num_states < 3000
    depth = deepest = 0
    for c in r:
        depth += {"(": 1, ")": -1}.get(c, 0)
        deepest = max(deepest, depth)
    assert deepest < 20  # nesting stays logarithmic in the number of digits (interegular recurses)
    bounds = {"minimum": lo, "maximum": hi}
    _check_literals(r, bounds, _int_window(bounds), INT_SHAPE)


_bound = st.one_of(
    st.none(),
    st.integers(-10**6, 10**6),
    st.integers(-10**40, 10**40),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)),
    st.decimals(-10**5, 10**5, places=4, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=120, deadline=None)
@given(lo=_bound, hi=_bound, lo_excl=st.booleans(), hi_excl=st.booleans())
def test_integer_random_bounds(lo, hi, lo_excl, hi_excl):
    bounds = {("exclusive_minimum" if lo_excl else "minimum"): lo,
              ("exclusive_maximum" if hi_excl else "maximum"): hi}
    _check_literals(integer_regex(**bounds), bounds, _int_window(bounds), INT_SHAPE)


# --- decimals ---------------------------------------------------------------------------


def _dec_literals(bounds: dict, rng: random.Random, n: int = 400) -> list[str]:
    """Literals near the bounds (same and perturbed digits, trailing zeros, signs) and random ones."""
    with localcontext() as ctx:
        ctx.prec = 400
        return _dec_literals_exact(bounds, rng, n)


def _dec_literals_exact(bounds: dict, rng: random.Random, n: int) -> list[str]:
    out = {"0", "-0", "0.0", "-0.0", "0.000", "1", "1.0", "1.", ".5", "01.5", "+1", "1e2", "1.5e1", "-", ""}
    for b in bounds.values():
        if b is None:
            continue
        d = Decimal(repr(b)) if isinstance(b, float) else Decimal(str(b))
        base = format(d, "f")
        for s in {base, base.lstrip("-"), "-" + base.lstrip("-")}:
            out.add(s)
            out.add(s + ("0" if "." in s else ".0"))
            out.add(s + ("00" if "." in s else ".00"))
        for ulp_exp in range(0, 6):
            ulp = Decimal(1).scaleb(-ulp_exp)
            for k in (-2, -1, 1, 2):
                v = d + k * ulp
                out.add(format(v, "f"))
                out.add(format(v.quantize(ulp) if ulp_exp else v, "f"))
                out.add(format(v, "f") + "0")
    for _ in range(n):
        ip = rng.choice(["0", str(rng.randint(1, 9)), str(rng.randint(1, 10**rng.randint(1, 8)))])
        s = ("-" if rng.random() < 0.4 else "") + ip
        if rng.random() < 0.7:
            s += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 7)))
            if rng.random() < 0.2:
                s += "000"
        out.add(s)
    return sorted({s.replace("--", "-") for s in out})


@pytest.mark.parametrize("bounds", [
    {},
    {"minimum": 0.1},
    {"exclusive_minimum": 0, "maximum": 1},
    {"minimum": -1.25, "maximum": 3.5},
    {"exclusive_minimum": -1.25, "exclusive_maximum": 3.5},
    {"minimum": 0},
    {"exclusive_minimum": 0},
    {"maximum": 0},
    {"exclusive_maximum": 0},
    {"minimum": 0, "maximum": 0},
    {"minimum": -0.001, "maximum": 0.001},
    {"minimum": 1.05, "maximum": 1.0501},
    {"minimum": 99.99, "maximum": 100.01},
    {"minimum": "123456789012345678901234567890.5"},
    {"maximum": "-0.000000000000000000001"},
    {"minimum": 2, "maximum": 2},
    {"exclusive_minimum": 2, "maximum": 3},
    {"minimum": -10, "exclusive_maximum": -9.99},
    {"minimum": 1e-7, "maximum": 1e-6},
    {"minimum": 1e21},
])
def test_decimal_cases(bounds):
    rng = random.Random(str(bounds))
    _check_literals(decimal_regex(**bounds), bounds, _dec_literals(bounds, rng), DEC_SHAPE)


def test_decimal_brief_examples():
    r = regex_dfa(decimal_regex(minimum=0.1))
    assert r.matches(b"0.1") and r.matches(b"0.10") and not r.matches(b"0.09999")
    r = regex_dfa(decimal_regex(exclusive_minimum=0, maximum=1))
    assert not r.matches(b"0.0") and not r.matches(b"0") and not r.matches(b"-0")
    assert r.matches(b"1.000") and not r.matches(b"1.0001") and r.matches(b"0.0001")
    r = regex_dfa(decimal_regex(minimum=1))
    assert r.matches(b"1.50") and not r.matches(b"1.") and not r.matches(b"1e5")


@pytest.mark.parametrize("bounds", [
    {"minimum": 3, "maximum": 2},
    {"exclusive_minimum": 1.5, "maximum": 1.5},
    {"minimum": 0.5, "exclusive_maximum": 0.5},
    {"minimum": float("inf")},
])
def test_decimal_empty(bounds):
    assert decimal_regex(**bounds) is None


_dec_bound = st.one_of(
    st.none(),
    st.integers(-10**6, 10**6),
    st.integers(-10**15, 10**15),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.decimals(-10**5, 10**5, places=6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=80, deadline=None)
@given(lo=_dec_bound, hi=_dec_bound, lo_excl=st.booleans(), hi_excl=st.booleans(), seed=st.integers(0, 2**32))
def test_decimal_random_bounds(lo, hi, lo_excl, hi_excl, seed):
    bounds = {("exclusive_minimum" if lo_excl else "minimum"): lo,
              ("exclusive_maximum" if hi_excl else "maximum"): hi}
    _check_literals(decimal_regex(**bounds), bounds, _dec_literals(bounds, random.Random(seed), 150), DEC_SHAPE)


def test_bad_bounds():
    with pytest.raises(ValueError):
        integer_regex(minimum=float("nan"))
    with pytest.raises(ValueError):
        decimal_regex(maximum="abc")


NUM_SHAPE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
SIGN_BOUNDS = [{"minimum": 0}, {"exclusive_minimum": 0}, {"maximum": 0}, {"exclusive_maximum": 0},
               {"minimum": 0, "maximum": 0}, {"minimum": 0.0, "exclusive_maximum": 1e-300}]


@pytest.mark.parametrize("bounds", SIGN_BOUNDS)
@settings(max_examples=150, deadline=None, derandomize=True)
@given(mant=st.from_regex(r"-?(0|[1-9][0-9]{0,3})(\.[0-9]{1,3})?", fullmatch=True),
       exp=st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True)))
def test_sign_bounds_keep_every_literal_with_exponent(bounds: dict, mant: str, exp: str) -> None:
    """Bounds at 0 fix only the sign: 1e-06 >= 0 (MaskBench Github_hard o57716), exactly."""
    rx = sign_number_regex(**bounds)
    if any(b not in (0, None) for b in bounds.values()):
        assert rx is None
        return
    lit = mant + exp
    assert (re.fullmatch(rx, lit) is not None) == _holds(Fraction(Decimal(lit)), bounds)
    assert regex_dfa(rx).matches(lit.encode()) == (re.fullmatch(rx, lit) is not None)
