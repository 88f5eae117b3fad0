"""JSON Schema `format` values as regexes over the string value (no JSON quotes).

Every regex here is a full-match Python/interegular regex over the decoded string. They are
exact for the grammar named below, except for the documented differences. Where an exact
rule would cost thousands of DFA states or needs non-regular checks, the regex is *stricter*
(a subset), so generated strings stay valid; the only looser points are the total length
limits of hostnames and email addresses, which are not enforced.

Formats and their grammar:

- date, time, date-time: RFC 3339 section 5.6 (`full-date`, `full-time`, `date-time`).
  Days per month exact, including Feb 29 exactly in Gregorian leap years. `T`/`Z` may be
  lower case (RFC 3339 5.6 note). Seconds 00-59, plus the leap second 60 only when the time
  is 23:59 UTC (the JSON Schema Test Suite's rule).
- duration: RFC 3339 Appendix A (`duration`), as JSON Schema's appendix cites it: upper case
  designators, no fractions, weeks alone, no skipped units inside a run (P1Y2D is invalid).
- email: RFC 5321 `Mailbox`: dot-atom or quoted-string local part, `@`, then a domain of
  RFC 1123 labels or an address literal `[IPv4]` / `[IPv6:...]`.
- hostname: RFC 1123 labels (1-63 letters, digits, hyphens; no leading or trailing hyphen)
  joined by dots, no trailing dot; additionally no `--` in positions 3-4 (see below).
- ipv4: dotted quad, 0-255, no leading zeros. ipv6: every RFC 4291 text form, including
  `::` compression and an embedded dotted quad; no zone id.
- uri, uri-reference: RFC 3986 `URI`, `URI-reference`.
- uri-template: RFC 6570 (levels 1-4); the apostrophe is allowed in literals (the Test
  Suite expects it; RFC 6570's ABNF leaves it out); the operators RFC 6570 reserves for
  future extensions (`= , ! @ |`) are rejected, so every accepted template can be expanded.
- json-pointer: RFC 6901. relative-json-pointer: draft-handrews-relative-json-pointer-01
  (a non-negative integer without leading zeros, then `#` or a JSON pointer).
- uuid: RFC 4122 text form, 8-4-4-4-12 hex digits, any case, any version/variant.

Not supported (format_regex returns None): regex (not a regular language), idn-email and
idn-hostname (IDNA rules need Unicode tables and Punycode decoding), iri and iri-reference
(exact, but RFC 3987's `ucschar` minus the private-use planes is a ~1M-character class that
interegular expands character by character: over a minute to compile), and unknown names.

Known differences from the JSON Schema Test Suite and from jsonschema's FormatChecker
(jsonschema checks only date, email, ipv4, ipv6, uuid here; the others need optional
packages that are not installed, so for them it accepts everything):

- date, date-time: year 0000 is rejected (Python's `date`, used by jsonschema's date check,
  cannot represent it; RFC 3339 allows it).
- time, date-time: a leap second with a UTC offset whose minutes are not 00, 15, 30 or 45
  is rejected even when it falls on 23:59 UTC (exact for those offsets only: the exact
  rule needs one DFA state per local hh:mm, about 10k states).
- hostname: the 253-character total length limit is not enforced (a length bound crossed
  with the label structure needs ~16k states). Labels with `--` in positions 3-4 (RFC 5890
  "reserved LDH labels", e.g. `ab--c`, and so every Punycode A-label `xn--...`) are
  rejected: whether an A-label is valid needs Punycode decoding and IDNA tables, and
  rejecting them all keeps every accepted name valid. jsonschema's optional `fqdn` checker
  accepts `ab--c`; the Test Suite's valid `xn--` names are rejected here.
- email: jsonschema only checks that `@` occurs; here the RFC 5321 grammar is enforced.
  RFC 5321 length limits (64-octet local part, 255-octet domain) and general address
  literals (`[tag:content]`) are not supported; domain labels follow `hostname`.
- relative-json-pointer: the index manipulation (`0+1/a`) of the newer draft is rejected.
- uuid: jsonschema's checker (`uuid.UUID` plus hyphens at 8, 13, 18, 23) also accepts extra
  hyphens (`...-73b441d16380-`), braces/`urn:uuid:` forms that keep those hyphens, and
  underscores or surrounding whitespace (`int(..., 16)` allows them); only the 8-4-4-4-12
  form is accepted here, as in the Test Suite.
- duration: designators must be upper case (RFC 5234 would make ABNF literals
  case-insensitive; ISO 8601 writes them in upper case).
"""

from __future__ import annotations

from functools import lru_cache

from ..automata.utf8 import complement_ranges, merge_ranges

__all__ = ["FORMATS", "format_regex"]

# --- character classes ------------------------------------------------------------------



def _class_char(cp: int) -> str:
    """One code point as it may appear inside a character class (Python re and interegular)."""
    c = chr(cp)
    if c in "\\]^-[":
        return "\\" + c
    if cp < 0x20 or 0x7F <= cp <= 0xFF:
        return f"\\x{cp:02x}"
    return c  # interegular has no \u escapes: other characters are written literally


def _char_class(ranges: list[tuple[int, int]]) -> str:
    """A class for the union of inclusive code point ranges, negated when that is smaller
    (interegular expands ranges into sets of characters)."""
    merged = merge_ranges(ranges)
    comp = complement_ranges(merged)
    size = sum(h - lo + 1 for lo, h in merged)
    csize = sum(h - lo + 1 for lo, h in comp)
    negate = csize < size
    body = "".join(_class_char(lo) if lo == hi else _class_char(lo) + "-" + _class_char(hi)
                   for lo, hi in (comp if negate else merged))
    return "[" + ("^" if negate else "") + body + "]"


def _chars(s: str) -> list[tuple[int, int]]:
    return [(ord(c), ord(c)) for c in s]


_ALPHA = [(0x41, 0x5A), (0x61, 0x7A)]
_DIGIT = [(0x30, 0x39)]
_HEXDIG = "[0-9A-Fa-f]"
_UNRESERVED = _ALPHA + _DIGIT + _chars("-._~")
_SUB_DELIMS = _chars("!$&'()*+,;=")
_PCT = "%" + _HEXDIG + "{2}"

# RFC 3987 ucschar and iprivate
_UCSCHAR = [(0xA0, 0xD7FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF)] + [
    (p << 16, (p << 16) + 0xFFFD) for p in range(1, 14)] + [(0xE1000, 0xEFFFD)]
_IPRIVATE = [(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]


def _alt(*parts: str) -> str:
    return "(?:" + "|".join(parts) + ")"


# --- dates and times --------------------------------------------------------------------

_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # 0001-9999
# Gregorian leap years 0001-9999: divisible by 4, centuries only when divisible by 400
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = _alt(
    "(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])",
    "(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)",
    "02-(?:0[1-9]|1[0-9]|2[0-8])",
)
DATE = _alt(_YEAR + "-" + _MONTH_DAY, _LEAP_YEAR + "-02-29")

_HOUR = "(?:[01][0-9]|2[0-3])"
_MINUTE = "[0-5][0-9]"
_SECFRAC = r"(?:\.[0-9]+)?"
_NUMOFFSET = "[+-]" + _HOUR + ":" + _MINUTE
_OFFSET = _alt("[Zz]", _NUMOFFSET)


def _leap_second_times() -> str:
    """hh:mm:60[frac]offset where the time is 23:59 UTC, for offsets with minutes 00/15/30/45."""
    by_local: dict[tuple[int, int], list[str]] = {}
    utc = 23 * 60 + 59
    for sign in (1, -1):
        for oh in range(24):
            for om in (0, 15, 30, 45):
                off = sign * (oh * 60 + om)
                local = (utc + off) % 1440
                text = ("\\+" if sign > 0 else "-") + f"{oh:02d}:{om:02d}"
                by_local.setdefault(divmod(local, 60), []).append(text)
    by_local[(23, 59)].append("[Zz]")
    alts = []
    for (h, m), offs in sorted(by_local.items()):
        alts.append(f"{h:02d}:{m:02d}:60" + _SECFRAC + _alt(*sorted(offs)))
    return _alt(*alts)


FULL_TIME = _alt(_HOUR + ":" + _MINUTE + ":[0-5][0-9]" + _SECFRAC + _OFFSET, _leap_second_times())
DATE_TIME = DATE + "[Tt]" + FULL_TIME

_DUR_SECOND = "[0-9]+S"
_DUR_MINUTE = "[0-9]+M(?:[0-9]+S)?"
_DUR_HOUR = "[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?"
_DUR_TIME = "T" + _alt(_DUR_HOUR, _DUR_MINUTE, _DUR_SECOND)
_DUR_DATE = _alt("[0-9]+D", "[0-9]+M(?:[0-9]+D)?", "[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?") + "(?:" + _DUR_TIME + ")?"
DURATION = "P" + _alt(_DUR_DATE, _DUR_TIME, "[0-9]+W")

# --- internet addresses -----------------------------------------------------------------

_DEC_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = _DEC_OCTET + r"(?:\." + _DEC_OCTET + "){3}"


def _ipv6() -> str:
    h16 = _HEXDIG + "{1,4}"
    ls32 = _alt(h16 + ":" + h16, IPV4)

    def groups(n: int) -> str:  # n times "h16:"
        return "" if n == 0 else f"(?:{h16}:)" + ("" if n == 1 else f"{{{n}}}")

    def upto(n: int) -> str:  # [ *n( h16 ":" ) h16 ]
        if n < 0:
            return ""
        inner = h16 if n == 0 else f"(?:{h16}:){{0,{n}}}{h16}"
        return f"(?:{inner})?"

    return _alt(
        groups(6) + ls32,
        "::" + groups(5) + ls32,
        upto(0) + "::" + groups(4) + ls32,
        upto(1) + "::" + groups(3) + ls32,
        upto(2) + "::" + groups(2) + ls32,
        upto(3) + "::" + groups(1) + ls32,
        upto(4) + "::" + ls32,
        upto(5) + "::" + h16,
        upto(6) + "::",
    )


IPV6 = _ipv6()

_LDH = "[A-Za-z0-9-]"
_LET_DIG = "[A-Za-z0-9]"
# RFC 1123 label, 1-63 characters, without "--" in positions 3-4 (RFC 5890 reserved LDH
# labels, which include the Punycode A-labels "xn--...": those cannot be checked by a regex)
_LABEL = _alt(
    _LET_DIG + "(?:" + _LDH + "?" + _LET_DIG + ")?",  # 1-3 characters
    _LET_DIG + _LDH + "{2}" + _LET_DIG,  # 4 characters: the 4th is not a hyphen
    _LET_DIG + _LDH + "(?:" + _LET_DIG + _LDH + "|-" + _LET_DIG + ")" + _LDH + "{0,58}" + _LET_DIG,
)
HOSTNAME = _LABEL + r"(?:\." + _LABEL + ")*"

_ATEXT = _char_class(_ALPHA + _DIGIT + _chars("!#$%&'*+/=?^_`{|}~-"))
_DOT_ATOM = _ATEXT + "+(?:\\." + _ATEXT + "+)*"
_QTEXT = _char_class([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E)])
_QUOTED = '"(?:' + _QTEXT + r"|\\[\x20-\x7e]" + ')*"'
EMAIL = _alt(_DOT_ATOM, _QUOTED) + "@" + _alt(HOSTNAME, r"\[" + _alt(IPV4, "IPv6:" + IPV6) + r"\]")

# --- URIs ----------------------------------------------------------------------------


def _uri() -> tuple[str, str]:
    """(absolute, reference) regexes of RFC 3986 URIs."""

    def cls(extra: list[tuple[int, int]]) -> str:
        return _alt(_char_class(_UNRESERVED + _SUB_DELIMS + extra), _PCT)

    pchar = cls(_chars(":@"))
    segment = pchar + "*"
    segment_nz = pchar + "+"
    segment_nz_nc = cls(_chars("@")) + "+"
    query = cls(_chars(":@/?")) + "*"
    fragment = cls(_chars(":@/?")) + "*"
    userinfo = cls(_chars(":")) + "*"
    reg_name = cls([]) + "*"
    ipvfuture = "[vV]" + _HEXDIG + r"+\." + _char_class(_UNRESERVED + _SUB_DELIMS + _chars(":")) + "+"
    ip_literal = r"\[" + _alt(IPV6, ipvfuture) + r"\]"
    authority = "(?:" + userinfo + "@)?" + _alt(ip_literal, reg_name) + "(?::[0-9]*)?"
    path_abempty = "(?:/" + segment + ")*"
    path_absolute = "/(?:" + segment_nz + "(?:/" + segment + ")*)?"
    path_noscheme = segment_nz_nc + "(?:/" + segment + ")*"
    path_rootless = segment_nz + "(?:/" + segment + ")*"
    scheme = "[A-Za-z][A-Za-z0-9+.-]*"
    tail = r"(?:\?" + query + ")?(?:#" + fragment + ")?"
    hier = "(?:" + _alt("//" + authority + path_abempty, path_absolute, path_rootless) + ")?"
    absolute = scheme + ":" + hier + tail
    relative = "(?:" + _alt("//" + authority + path_abempty, path_absolute, path_noscheme) + ")?" + tail
    return absolute, _alt(absolute, relative)


URI, URI_REFERENCE = _uri()


def _uri_template() -> str:
    literal = _char_class(
        # RFC 6570 `literals` plus the apostrophe %x27, which its ABNF omits but the Test Suite allows
        _chars("\x21\x23\x24\x3d\x5d\x5f\x7e") + [(0x26, 0x3B), (0x3F, 0x5B), (0x61, 0x7A)]
        + _UCSCHAR + _IPRIVATE)
    varchar = _alt("[A-Za-z0-9_]", _PCT)
    varname = varchar + r"(?:\.?" + varchar + ")*"
    varspec = varname + "(?::[1-9][0-9]{0,3}|\\*)?"
    # operators of levels 2-3; op-reserve (= , ! @ |) is "reserved for future extensions"
    expression = r"\{[+#./;?&]?" + varspec + "(?:," + varspec + r")*\}"
    return "(?:" + _alt(literal, _PCT, expression) + ")*"


URI_TEMPLATE = _uri_template()

# --- the rest ---------------------------------------------------------------------------

JSON_POINTER = "(?:/(?:[^/~]|~[01])*)*"
RELATIVE_JSON_POINTER = "(?:0|[1-9][0-9]*)(?:#|" + JSON_POINTER + ")"
UUID = "-".join(_HEXDIG + "{%d}" % n for n in (8, 4, 4, 4, 12))

FORMATS: dict[str, str] = {
    "date": DATE,
    "time": FULL_TIME,
    "date-time": DATE_TIME,
    "duration": DURATION,
    "email": EMAIL,
    "hostname": HOSTNAME,
    "ipv4": IPV4,
    "ipv6": IPV6,
    "uri": URI,
    "uri-reference": URI_REFERENCE,
    "uri-template": URI_TEMPLATE,
    "json-pointer": JSON_POINTER,
    "relative-json-pointer": RELATIVE_JSON_POINTER,
    "uuid": UUID,
}


# every format the 2020-12 and draft-07 specs define; any other name is an annotation validators ignore
STANDARD_FORMATS = frozenset({
    "date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6",
    "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
    "relative-json-pointer", "regex",
})


HOSTNAME_MAX_LENGTH = 253  # RFC 1123 / RFC 1035: 255 octets on the wire, 253 characters written


@lru_cache(maxsize=1)
def hostname_string_dfa():
    """Byte DFA of the JSON string literals (quotes included) of hostnames of at most 253
    characters: the label structure times a length counter (a regex cannot say it compactly)."""
    from ..automata.dfa import intersect
    from ..automata.regex_dfa import regex_dfa

    return intersect(regex_dfa('"' + HOSTNAME + '"'),
                     regex_dfa('"[A-Za-z0-9.-]{0,%d}"' % HOSTNAME_MAX_LENGTH), max_states=100_000)


def format_regex(name: str) -> str | None:
    """Full-match regex of the string values valid for a JSON Schema `format`; None if unsupported."""
    return FORMATS.get(name)
