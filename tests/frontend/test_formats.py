"""formats.py: each format regex against hand-written oracles, jsonschema's FormatChecker
(where it really checks), and the JSON Schema Test Suite's optional format tests."""

from __future__ import annotations

import datetime
import ipaddress
import json
import random
import re
import uuid
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest

from structgen.automata.regex_dfa import regex_dfa
from structgen.frontend.formats import FORMATS, format_regex

SUITE = Path("/work/shared/data/json-schema-test-suite/tests/draft2020-12/optional/format")
N = 1500  # random strings per format


@lru_cache(maxsize=None)
def dfa(name: str):
    return regex_dfa(format_regex(name))


def accepts(name: str, s: str) -> bool:
    return dfa(name).matches(s.encode("utf-8"))


@lru_cache(maxsize=None)
def py(name: str):
    return re.compile(format_regex(name))


def agree(name: str, strings, oracle, known_difference=lambda s: False) -> None:
    """Regex (as DFA and as Python re) == oracle on every string, except documented cases
    where the regex must reject."""
    for s in strings:
        want = oracle(s)
        got = accepts(name, s)
        assert got == bool(py(name).fullmatch(s)), (name, s)
        if known_difference(s):
            assert not got, (name, s)
            continue
        assert got == want, (name, s, want)


def test_all_formats_compile_small():
    for name, rx in FORMATS.items():
        re.compile(rx)
        assert dfa(name).num_states < 2000, name


def test_unsupported_formats():
    for name in ["regex", "idn-email", "idn-hostname", "iri", "iri-reference", "color", "nope"]:
        assert format_regex(name) is None


# --- JSON Schema Test Suite -------------------------------------------------------------

def _suite_known(name: str, data: str, valid: bool) -> bool:
    """Suite verdicts we differ on, all documented in formats.py: hostnames over 253
    characters are accepted, and Punycode (xn--) labels are rejected."""
    if name != "hostname":
        return False
    return (not valid and len(data) > 253) or (valid and "xn--" in data.lower())


def _suite_cases():
    for name in FORMATS:
        path = SUITE / f"{name}.json"
        for group in json.loads(path.read_text()):
            for t in group["tests"]:
                if isinstance(t["data"], str):
                    yield name, t["data"], t["valid"], t["description"]


def test_suite_agreement():
    total = agreed = 0
    for name, data, valid, desc in _suite_cases():
        total += 1
        got = accepts(name, data)
        if got == valid:
            agreed += 1
            continue
        if _suite_known(name, data, valid):
            continue
        pytest.fail(f"{name}: {data!r} valid={valid} ({desc})")
    assert total >= 500 and agreed >= total - 20, (agreed, total)


# --- dates and times --------------------------------------------------------------------


def date_oracle(s: str) -> bool:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", s):
        return False
    try:
        datetime.date.fromisoformat(s)
    except ValueError:
        return False
    return True


_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")


def time_oracle(s: str) -> bool:
    """RFC 3339 full-time; a leap second only at 23:59 UTC."""
    m = _TIME.fullmatch(s)
    if not m:
        return False
    h, mi, sec = int(m[1]), int(m[2]), int(m[3])
    oh, om = (int(m[7]), int(m[8])) if m[6] else (0, 0)
    if h > 23 or mi > 59 or sec > 60 or oh > 23 or om > 59:
        return False
    if sec == 60:
        sign = -1 if m[6] == "-" else 1
        return (h * 60 + mi - sign * (oh * 60 + om)) % 1440 == 23 * 60 + 59
    return True


def leap_off_quarter(s: str) -> bool:
    """Leap seconds with offset minutes outside 00/15/30/45: documented as rejected."""
    m = _TIME.fullmatch(s)
    return bool(m and m[3] == "60" and m[6] and m[8] not in ("00", "15", "30", "45"))


def _two(rng: random.Random, hi: int) -> str:
    r = rng.random()
    if r < 0.05:
        return str(rng.randint(0, 9))
    if r < 0.08:
        return f"{rng.randint(0, 999):03d}"
    return f"{rng.randint(0, hi):02d}"


def gen_date(rng: random.Random) -> str:
    y = rng.choice([f"{rng.randint(0, 9999):04d}", "0000", "2000", "1900", "2024", "2100", "0400",
                    str(rng.randint(0, 99)), f"{rng.randint(10000, 99999)}"])
    s = f"{y}-{_two(rng, 13)}-{rng.choice([_two(rng, 32), '29', '28', '30', '31'])}"
    if rng.random() < 0.05:
        s = s.replace("-", rng.choice(["/", "", "--"]), 1)
    return s


def gen_time(rng: random.Random) -> str:
    if rng.random() < 0.3:  # leap-second candidates
        sign = rng.choice("+-")
        oh, om = rng.randint(0, 23), rng.choice([0, 15, 30, 45, rng.randint(0, 59)])
        off = (1 if sign == "+" else -1) * (oh * 60 + om)
        local = (23 * 60 + 59 + off) % 1440
        if rng.random() < 0.3:
            local = (local + rng.choice([-60, -1, 1, 60])) % 1440
        offset = rng.choice([f"{sign}{oh:02d}:{om:02d}", "Z"]) if rng.random() < 0.9 else "z"
        frac = rng.choice(["", ".5", ".123"])
        return f"{local // 60:02d}:{local % 60:02d}:60{frac}{offset}"
    frac = rng.choice(["", "", ".0", ".123456789", ".", ",5"])
    numeric = rng.choice("+-") + _two(rng, 24) + ":" + _two(rng, 60)
    offset = rng.choice(["Z", "z", "", numeric, numeric, "+0100", "UTC", "+01"])
    return f"{_two(rng, 24)}:{_two(rng, 60)}:{_two(rng, 61)}{frac}{offset}"


def test_date_random():
    rng = random.Random(1)
    strings = [gen_date(rng) for _ in range(N)]
    strings += ["2020-02-29", "2021-02-29", "1900-02-29", "2000-02-29", "0400-02-29", "0000-02-29", "0000-01-01",
                "9999-12-31", "2020-1-01", "２020-01-01", "2020-01-01\n", "2020-06-31", "2020-13-01", ""]
    agree("date", strings, date_oracle)
    assert not accepts("date", "0000-01-01")  # documented: year 0000 is rejected


def test_date_agrees_with_jsonschema():
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    rng = random.Random(2)
    for s in [gen_date(rng) for _ in range(N)] + ["0000-01-01", "2020-02-29", "2019-02-29"]:
        assert accepts("date", s) == checker.conforms(s, "date"), s


def test_time_random():
    rng = random.Random(3)
    strings = [gen_time(rng) for _ in range(N)]
    agree("time", strings, time_oracle, leap_off_quarter)


def test_time_examples():
    for s in ["23:59:60Z", "23:59:60z", "23:59:60+00:00", "23:59:60-00:00", "01:29:60+01:30", "15:59:60-08:00",
              "05:44:60+05:45", "00:00:00Z", "23:59:59.999+23:59", "12:00:00-12:00"]:
        assert accepts("time", s), s
    for s in ["23:59:60+01:00", "22:59:60Z", "24:00:00Z", "12:00:00", "12:00:00+1:00", "12:00:00.Z",
              "12:00Z", "12:00:00+24:00", "12:00:00 Z"]:
        assert not accepts("time", s), s
    assert not accepts("time", "00:19:60+00:20")  # documented: off-quarter leap seconds rejected


def test_date_time_random():
    rng = random.Random(4)
    strings = []
    for _ in range(N):
        strings.append(gen_date(rng) + rng.choice(["T", "t", " ", "T", "T"]) + gen_time(rng))

    def oracle(s: str) -> bool:
        if len(s) < 11 or s[10] not in "Tt":
            return False
        return date_oracle(s[:10]) and time_oracle(s[11:])

    def known(s: str) -> bool:
        return len(s) > 11 and s[10] in "Tt" and leap_off_quarter(s[11:])

    agree("date-time", strings, oracle, known)


# --- duration ---------------------------------------------------------------------------


def duration_oracle(s: str) -> bool:
    """RFC 3339 Appendix A, by unit sequences instead of a grammar."""
    if not s.startswith("P"):
        return False
    body = s[1:]
    date, _, time = body.partition("T")
    if "T" in time:
        return False

    def units(part: str):
        toks = re.findall(r"([0-9]+)([A-Z])", part)
        if "".join(a + b for a, b in toks) != part:
            return None
        return "".join(b for _, b in toks)

    du, tu = units(date), units(time)
    if du is None or tu is None:
        return False
    if "T" in body and not tu:
        return False
    if du == "W":
        return not tu and "T" not in body
    if du not in ("", "D", "M", "MD", "Y", "YM", "YMD") or tu not in ("", "H", "HM", "HMS", "M", "MS", "S"):
        return False
    return bool(du or tu)


def test_duration_random():
    rng = random.Random(5)
    strings = []
    for _ in range(N):
        parts = ["P"]
        for _ in range(rng.randint(0, 4)):
            r = rng.random()
            if r < 0.15:
                parts.append("T")
            elif r < 0.2:
                parts.append(rng.choice(["", "-", ".5", ",", "p"]))
            else:
                parts.append(str(rng.randint(0, 120)) + rng.choice("YMWDHSYMDHMS"))
        if rng.random() < 0.05:
            parts[0] = rng.choice(["", "p", "-P"])
        strings.append("".join(parts))
    strings += ["P1Y2M3DT4H5M6S", "P2W", "PT", "P", "P1Y2D", "PT1H2S", "P1DT", "P1W1D"]
    agree("duration", strings, duration_oracle)


# --- internet addresses -----------------------------------------------------------------


def ipv4_oracle(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return s.isascii()


def ipv6_oracle(s: str) -> bool:
    if "%" in s or not s.isascii():
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def gen_ipv4(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.choice([4, 4, 4, 4, 3, 5])):
        r = rng.random()
        parts.append(str(rng.randint(0, 300)) if r < 0.8 else rng.choice(["00", "01", "255", "256", "", "0x1", " 1"]))
    return ".".join(parts)


def gen_ipv6(rng: random.Random) -> str:
    n = rng.randint(1, 9)
    groups = ["".join(rng.choice("0123456789abcdefABCDEF") for _ in range(rng.choice([1, 2, 3, 4, 4, 0, 5])))
              for _ in range(n)]
    if rng.random() < 0.6:
        i = rng.randint(0, len(groups))
        groups = groups[:i] + [""] + groups[i:]
        if i == 0:
            groups = [""] + groups
        if i == len(groups) - 1:
            groups.append("")
    if rng.random() < 0.25:
        groups[-1] = gen_ipv4(rng)
    s = ":".join(groups)
    if rng.random() < 0.03:
        s += rng.choice(["%eth0", "/64", ":"])
    return s


def test_ipv4_random():
    rng = random.Random(6)
    agree("ipv4", [gen_ipv4(rng) for _ in range(N)] + ["0.0.0.0", "255.255.255.255", "1.2.3.04", "1.2.3"], ipv4_oracle)


def test_ipv6_random():
    rng = random.Random(7)
    strings = [gen_ipv6(rng) for _ in range(3 * N)]
    strings += ["::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4",
                "::ffff:1.2.3.4", "1::1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", ":::", "1:::2", "::1.2.3.04",
                "1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6::1.2.3.4", "::1:2:3:4:5:1.2.3.4", "::1:2:3:4:5:6:1.2.3.4"]
    agree("ipv6", strings, ipv6_oracle)
    assert sum(map(ipv6_oracle, strings)) > 300  # the generator reaches valid forms often


def test_ip_agree_with_jsonschema():
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    rng = random.Random(8)
    for s in [gen_ipv4(rng) for _ in range(500)]:
        assert accepts("ipv4", s) == checker.conforms(s, "ipv4"), s
    for s in [gen_ipv6(rng) for _ in range(1000)]:
        assert accepts("ipv6", s) == checker.conforms(s, "ipv6"), s


def hostname_oracle(s: str) -> bool:
    labels = s.split(".")
    for lab in labels:
        if not (1 <= len(lab) <= 63 and re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", lab)):
            return False
        if lab[2:4] == "--":
            return False
    return True


def gen_hostname(rng: random.Random) -> str:
    labels = []
    for _ in range(rng.randint(1, 4)):
        n = rng.choice([1, 2, 3, 4, 5, 8, 62, 63, 64, rng.randint(0, 70)])
        alphabet = rng.choice(["ab1-", "xnXN-ab", "aZ09-", "a-_."])
        labels.append("".join(rng.choice(alphabet) for _ in range(n)))
    return ".".join(labels)


def test_hostname_random():
    rng = random.Random(9)
    strings = [gen_hostname(rng) for _ in range(N)]
    strings += ["a", "a-b", "a--b", "ab--c", "xn--abc", "XN--abc", "abc-", "-abc", "a" * 63, "a" * 64, "a.", ".a", ""]
    agree("hostname", strings, hostname_oracle)


def test_email_examples():
    good = ["joe@example.com", "a.b.c@d", "!#$%&'*+-/=?^_`{|}~@x.org", '"joe bloggs"@example.com', '""@a',
            '"a\\"b"@a.b', '"\\\\"@a', "x@[1.2.3.4]", "x@[IPv6:::1]", "x@[IPv6:1:2:3:4:5:6:7:8]",
            "x@a-b.c-d.e", "x@" + "a" * 63 + ".com"]
    bad = ["joe", "@a", "a@", "a..b@c", ".a@b", "a.@b", "a b@c", "a@b@c", 'a"b@c', '"a"b@c', '"a\\é"@b',
           "x@[1.2.3.256]", "x@[::1]", "x@[IPv6:1.2.3.4]", "x@-a.com", "x@a-.com", "x@a..b", "x@a.", "é@a",
           "x@" + "a" * 64 + ".com", "a@b\n", "a@b,c@d"]
    for s in good:
        assert accepts("email", s), s
    for s in bad:
        assert not accepts("email", s), s


# --- URIs -------------------------------------------------------------------------------

URI_GOOD = ["http://example.com", "http://example.com/", "https://user:pw@host:8080/p/a/t/h?q=1&r=2#frag",
            "urn:isbn:0451450523", "mailto:a@b.c", "file:///etc/hosts", "a:", "a+b-c.d:x", "x://[::1]:80",
            "x://[v7.abc:def]/", "x://[VF.x]", "x://%41%62/%7e?%20#%2F", "x:/a//b", "x://", "x:?#",
            "tel:+1-816-555-1212", "x://h/p?q/?#f/?", "ldap://[2001:db8::7]/c=GB?objectClass?one",
            "x://:@:/", "http://1.2.3.4:/"]
URI_BAD = ["x:a?b[]", "", "//a", "/a", "a", "1a:b", "a_b:c", ":a", "x://[::g]", "x://[1.2.3.4]", "x:// a", "x://a/%g0",
           "x://a/%4", "x://a:b/", "x:a b", "x:a#b#c", "x:é", "x:[", "x://a@b@c", "x:\\", "x:a\n", "x://[v.a]",
           "x://[vz.a]"]
REF_ONLY = ["", "//a", "/a", "a", "a/b:c", "./a:b", "?q", "#f", "//[::1]/x", "..", "a?b#c", "//user@h:1"]
REF_BAD = ["a:b c", ":a", "a:b#c#d", "1:b", "/[::1]", "//a@b@c", "//a:x", "%", "a%2", "\\", "#é"]


def test_uri_examples():
    for s in URI_GOOD:
        assert accepts("uri", s), s
        assert accepts("uri-reference", s), s
    for s in URI_BAD:
        assert not accepts("uri", s), s
    for s in REF_ONLY:
        assert accepts("uri-reference", s), s
        assert not accepts("uri", s) or ":" in s, s
    for s in REF_BAD:
        assert not accepts("uri-reference", s), s


def test_uri_template_examples():
    good = ["", "abc", "{x}", "{+x}", "{#x,y}", "{x:3}", "{x*}", "{x.y.z}", "{%41b}", "a{x}b{y}c", "a%20b",
            "a😀b", "{a_1,b:9999}", "http://example.com/{path*}{?q,r}"]
    bad = ["{", "}", "{}", "{x", "{x,}", "{,x}", "{x:0}", "{x:10000}", "{x:01}", "{x..y}", "{.x.}", "a b",
           "a<b", "a%2", "{x}}", "{x y}", "{x=1}", "{=x}", "{|x}", "a\x7fb", "a\\b"]
    for s in good:
        assert accepts("uri-template", s), s
    for s in bad:
        assert not accepts("uri-template", s), s


# --- pointers and uuid ------------------------------------------------------------------


def pointer_oracle(s: str) -> bool:
    if s == "":
        return True
    if not s.startswith("/"):
        return False
    return all("~" not in re.sub("~[01]", "", tok) for tok in s[1:].split("/"))


def rel_pointer_oracle(s: str) -> bool:
    m = re.fullmatch(r"(0|[1-9][0-9]*)(.*)", s, re.S)
    return bool(m) and (m[2] == "#" or pointer_oracle(m[2]))


def gen_pointer(rng: random.Random) -> str:
    return "".join(rng.choice(["/", "~0", "~1", "~", "a", "é", "\n", "#", "0", "1", "~2", "/"])
                   for _ in range(rng.randint(0, 8)))


def test_pointers_random():
    rng = random.Random(10)
    strings = [gen_pointer(rng) for _ in range(N)]
    agree("json-pointer", strings, pointer_oracle)
    agree("relative-json-pointer", strings + [rng.choice(["0", "1", "10", "01", "-1", "+1"]) + p for p in strings],
          rel_pointer_oracle)
    assert not accepts("relative-json-pointer", "0+1/a")  # documented: no index manipulation


def uuid_oracle(s: str) -> bool:
    try:
        return str(uuid.UUID(s)) == s.lower()
    except ValueError:
        return False


def test_uuid_random():
    rng = random.Random(11)
    strings = []
    for _ in range(N):
        u = str(uuid.UUID(int=rng.getrandbits(128)))
        u = "".join(c.upper() if rng.random() < 0.3 else c for c in u)
        r = rng.random()
        if r < 0.2:
            i = rng.randrange(len(u))
            u = u[:i] + rng.choice("-gG0_ ") + u[i + 1:]
        elif r < 0.3:
            u = rng.choice(["{" + u + "}", "urn:uuid:" + u, u.replace("-", ""), u + "-", u[:-1]])
        strings.append(u)
    agree("uuid", strings, uuid_oracle)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for s in strings:  # jsonschema also allows extra hyphens and underscores; otherwise equal
        if s.count("-") == 4 and re.fullmatch("[0-9A-Za-z-]*", s):
            assert accepts("uuid", s) == checker.conforms(s, "uuid"), s
