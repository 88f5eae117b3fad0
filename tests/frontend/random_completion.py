"""Random-logits completions through a GrammarMatcher, and a MaskBench check that they validate.

`random_completion(cg, rng)` plays a model that emits random logits: at every step it draws one
logit per vocabulary id, masks the ids the matcher does not allow, takes the argmax and accepts that
token, until the matcher accepts a stop token. Logits are standard Gumbel noise, so the argmax over
the allowed ids is a uniformly random allowed token; adding a bias `b` to the noise makes the argmax
a sample from softmax(b) over the allowed ids. `exact_logits=True` draws the logits literally; the
default draws that argmax's distribution directly (same law, several times faster; see
`sample_completion`).

Random walks through JSON grammars rarely end (a string or an array stays open as long as anything
else is allowed), so after `patience` tokens a *termination aid* adds a growing bias, `pressure =
(step - patience) / ramp`, towards tokens that bring the JSON text closer to its end:

* the stop tokens get `+stop_weight * pressure` when the matcher allows them;
* every other token gets `+pressure * gain`: the number of lexemes it ends (a string closed, a
  number or literal ended) plus the `}`/`]` it contains, minus the `{`/`[` it contains, read by a
  tiny JSON scanner over the bytes emitted so far (inside a string `"]` has gain 2 and `", "` 1;
  after a number `}` has gain 2; `{"` has gain -1; most tokens 0). Opening a string costs nothing,
  so the walk can still reach the next required property.

The aid only reweights tokens the matcher allows, so it cannot make an output invalid: soundness
is the mask's alone. A walk that reaches `max_steps` tokens is *unfinished* (None): counted, not a
failure. A step where no token is allowed before termination is a dead end, a bug (DeadEnd).

The MaskBench check (`check_maskbench`, also the command line) compiles schemas in strict mode
(StructgenError = refused by design, skipped and counted), samples completions and checks each
finished one: UTF-8, `json.loads`, and `jsonschema` with format checking (`validator`).

    python tests/frontend/random_completion.py --schemas 500 --per-schema 5
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import random
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # `python tests/frontend/random_completion.py` from anywhere
    for p in (str(HERE.parent), str(HERE.parents[1])):
        if p not in sys.path:
            sys.path.insert(0, p)

from datasets import MASKBENCH, TOKENIZERS  # noqa: E402
from structgen import GrammarCompiler, GrammarMatcher, StructgenError, TokenizerInfo  # noqa: E402

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"
SEED = 1  # shuffles MaskBench here; test_json_schema.py's sample uses 0

__all__ = ["DeadEnd", "Completion", "sample_completion", "random_completion", "validator", "format_checker",
           "maskbench_rows", "check_maskbench", "Report"]


class DeadEnd(AssertionError):
    """The mask allowed no token (or an allowed token was refused) before termination."""


# --- the JSON scanner behind the termination aid -------------------------------------------

_OUT, _LIT, _IN, _ESC = 0, 1, 2, 3  # between lexemes / in a number or literal / in a string / after a backslash
_STATES = 4
_STRUCTURAL = frozenset(b'"{}[],: \t\n\r')


@lru_cache(maxsize=4)
def _token_effects(info: TokenizerInfo) -> tuple[np.ndarray, np.ndarray]:
    """For every scanner state and token id: the state after the token's bytes, and its progress:
    +1 for every lexeme it ends (a string closed, a number or literal ended) and every `}`/`]`,
    -1 for every `{`/`[`. Shapes (4, vocab_size)."""
    v = info.vocab_size
    next_state = np.empty((_STATES, v), dtype=np.int8)
    gain = np.zeros((_STATES, v), dtype=np.int16)
    for t, data in enumerate(info.token_bytes[:v]):
        for start in range(_STATES):
            state, g = start, 0
            for b in data:
                if state == _ESC:
                    state = _IN
                elif state == _IN:
                    if b == 0x5C:
                        state = _ESC
                    elif b == 0x22:
                        state, g = _OUT, g + 1
                else:
                    if state == _LIT and b in _STRUCTURAL:
                        state, g = _OUT, g + 1
                    if b == 0x22:
                        state = _IN
                    elif b in (0x7B, 0x5B):
                        g -= 1
                    elif b in (0x7D, 0x5D):
                        g += 1
                    elif b not in _STRUCTURAL:
                        state = _LIT
            next_state[start, t] = state
            gain[start, t] = g
    return next_state, gain


# --- sampling --------------------------------------------------------------------------------


@dataclass
class Completion:
    """One walk: `text` (None when unfinished), its token ids (without the stop token)."""

    text: str | None
    tokens: list[int]
    raw: bytes

    @property
    def finished(self) -> bool:
        return self.text is not None


def _numpy_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, random.Random):
        return np.random.default_rng(rng.getrandbits(64))
    return np.random.default_rng(rng)  # an int seed or a SeedSequence


def _allowed_ids(bits: np.ndarray, vocab_size: int) -> np.ndarray:
    """The sorted token ids set in a uint32 bitset (bit t of word t // 32)."""
    words = np.flatnonzero(bits)
    if 4 * words.size > bits.size:
        ids = np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little"))
    else:
        rows, cols = np.nonzero(np.unpackbits(bits[words].view(np.uint8), bitorder="little").reshape(-1, 32))
        ids = words[rows] * 32 + cols
    return ids[ids < vocab_size]


def _groups(allowed: np.ndarray, stop_pos: np.ndarray, gains: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The allowed positions grouped by equal bias: the stop tokens (group 0, maybe empty), then one
    group per distinct gain. Returns (the gain of each group, NaN for the stop group; members)."""
    rest = np.ones(allowed.size, dtype=bool)
    rest[stop_pos] = False
    pos = np.flatnonzero(rest)
    values, inverse = np.unique(gains[pos], return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    members = [stop_pos] + np.split(pos[order], np.cumsum(np.bincount(inverse, minlength=values.size))[:-1])
    return np.concatenate([[np.nan], values.astype(np.float64)]), members


def _choose(g: np.random.Generator, allowed: np.ndarray, stop_pos: np.ndarray, by_state: dict, state: int,
            gain: np.ndarray, pressure: float, stop_weight: float, exact_logits: bool) -> int:
    """The position in `allowed` of the next token (see sample_completion); `by_state` caches, per
    scanner state, the gains of this mask's tokens (exact) or their groups."""
    if exact_logits:
        logits = g.gumbel(size=allowed.size)
        if pressure > 0:
            if state not in by_state:
                by_state[state] = gain[state, allowed].astype(np.float64)
                by_state[state][stop_pos] = 0.0  # stop tokens: stop_weight only
            logits += pressure * by_state[state]
            logits[stop_pos] += stop_weight * pressure
        return int(np.argmax(logits))
    if pressure <= 0:
        return int(g.integers(allowed.size))
    if state not in by_state:
        by_state[state] = _groups(allowed, stop_pos, gain[state, allowed])
    values, members = by_state[state]
    sizes = np.array([len(x) for x in members], dtype=np.float64)
    with np.errstate(divide="ignore"):
        w = np.log(sizes) + np.where(np.isnan(values), stop_weight, values) * pressure
    p = np.exp(w - w.max())
    # the first group whose cumulative weight passes a uniform draw: never an empty (weight 0) one;
    # the clamp catches rounding past the last group, which np.unique makes non-empty
    k = min(int(np.searchsorted(np.cumsum(p), g.random() * p.sum(), side="right")), len(members) - 1)
    return int(members[k][g.integers(len(members[k]))])


def sample_completion(cg, rng, max_steps: int = 2000, *, patience: int = 32, ramp: float = 4.0,
                      stop_weight: float = 3.0, exact_logits: bool = False) -> Completion:
    """Random logits through a fresh GrammarMatcher of `cg` until it terminates (see the module
    docstring). `rng`: numpy Generator, random.Random or seed. Raises DeadEnd on a dead end;
    the returned text is the raw output decoded as UTF-8 (UnicodeDecodeError is a bug too).

    With `exact_logits` every step draws one Gumbel logit per allowed token and takes the argmax of
    logits + bias. By default the same choice is drawn without the logits (Gumbel-max trick: the
    argmax is a softmax(bias) sample): a bias group k with n_k tokens and bias b_k is chosen with
    probability n_k exp(b_k) / sum_j n_j exp(b_j), then a uniform token in it (no per-token work)."""
    g = _numpy_rng(rng)
    info = cg.tokenizer_info
    v = info.vocab_size
    next_state, gain = _token_effects(info)
    stop_ids = np.array(sorted(int(t) for t in info.stop_token_ids), dtype=np.int64)
    m = GrammarMatcher(cg)
    # the mask store hands out the same array for the same state: decode each one once
    decoded: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, dict]] = {}
    tokens: list[int] = []
    out: list[bytes] = []
    state = _OUT
    for step in range(max_steps + 1):  # max_steps content tokens, then one more step for the stop token
        bits = m.next_token_bits()
        hit = decoded.get(id(bits))
        if hit is None or hit[0] is not bits:
            allowed = _allowed_ids(bits, v)
            pos = np.searchsorted(allowed, stop_ids)
            pos = pos[pos < allowed.size]
            stop_pos = np.array([p for p in pos if allowed[p] in stop_ids], dtype=np.int64)
            if len(decoded) > 512:
                decoded.clear()
            hit = decoded[id(bits)] = (bits, allowed, stop_pos, {})
        _, allowed, stop_pos, by_state = hit
        if not allowed.size:
            raise DeadEnd(f"no token allowed after {len(tokens)} tokens: {b''.join(out)!r}")
        if step == max_steps:  # the budget is spent: stop if that is allowed, else unfinished
            if not stop_pos.size:
                break
            i = int(stop_pos[0])
        else:
            i = _choose(g, allowed, stop_pos, by_state, state, gain, (step - patience) / ramp, stop_weight,
                        exact_logits)
        t = int(allowed[i])
        if not m.accept_token(t):
            raise DeadEnd(f"allowed token {t} ({info.token_bytes[t]!r}) refused after {b''.join(out)!r}")
        if m.is_terminated():
            if t not in stop_ids:
                raise DeadEnd(f"terminated by non-stop token {t}")
            raw = b"".join(out)
            return Completion(raw.decode("utf-8"), tokens, raw)
        if t in stop_ids:
            raise DeadEnd(f"stop token {t} accepted without terminating")
        tokens.append(t)
        out.append(info.token_bytes[t])
        state = int(next_state[state, t])
    return Completion(None, tokens, b"".join(out))


def random_completion(cg, rng, max_steps: int = 2000, **aid) -> str | None:
    """The text of one random-logits completion of `cg`, or None if unfinished after `max_steps`
    tokens. `rng`: random.Random (as test_json_schema.py passes), numpy Generator or seed;
    `aid`: patience / ramp / stop_weight of the termination aid, exact_logits."""
    return sample_completion(cg, rng, max_steps, **aid).text


# --- validation: jsonschema, with stdlib checks for formats it cannot check here ----------------
# jsonschema checks date, email, ipv4, ipv6, uuid, regex and idn-* itself; date-time, time,
# duration, hostname, uri, uri-reference and the JSON pointers need optional packages
# (rfc3339-validator, isoduration, fqdn, rfc3987, jsonpointer) that are not installed, and it then
# accepts every string. The checks below stand in for them, written from the RFCs; they agree with
# the JSON Schema Test Suite's optional format tests except that Punycode (`xn--` labels) is not
# decoded. A format jsonschema checks itself keeps jsonschema's check. Not checked at all:
# uri-template, iri, iri-reference (structgen refuses iri*), and unknown names.

_TIME = r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
_DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_DATE_TIME_RE = re.compile(f"{_DATE}[Tt]{_TIME}")
_TIME_RE = re.compile(_TIME)


def _date_ok(y: str, mo: str, d: str) -> bool:
    y, mo, d = int(y), int(mo), int(d)
    if not 1 <= mo <= 12 or d < 1:
        return False
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return d <= [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]


def _time_ok(h, mi, s, sign, oh, om) -> bool:
    """RFC 3339 ranges; second 60 (a leap second) only at 23:59 UTC, as the JSON Schema Test Suite has it."""
    h, mi, s, oh, om = int(h), int(mi), int(s), int(oh or 0), int(om or 0)
    if h > 23 or mi > 59 or s > 60 or oh > 23 or om > 59:
        return False
    utc = (h * 60 + mi - (-1 if sign == "-" else 1) * (oh * 60 + om)) % 1440
    return s < 60 or utc == 23 * 60 + 59


def _is_date_time(s: str) -> bool:
    m = _DATE_TIME_RE.fullmatch(s)
    return bool(m) and _date_ok(*m.groups()[:3]) and _time_ok(*m.groups()[3:])


def _is_time(s: str) -> bool:
    m = _TIME_RE.fullmatch(s)
    return bool(m) and _time_ok(*m.groups())


def _duration_re() -> re.Pattern:
    """RFC 3339 Appendix A."""
    sec = r"[0-9]+S"
    minute = rf"[0-9]+M(?:{sec})?"
    hour = rf"[0-9]+H(?:{minute})?"
    dtime = rf"T(?:{hour}|{minute}|{sec})"
    day = r"[0-9]+D"
    month = rf"[0-9]+M(?:{day})?"
    year = rf"[0-9]+Y(?:{month})?"
    return re.compile(rf"P(?:(?:{day}|{month}|{year})(?:{dtime})?|{dtime}|[0-9]+W)")


_DURATION_RE = _duration_re()
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _is_hostname(s: str) -> bool:
    """RFC 1123 labels, at most 253 characters; `--` in positions 3-4 only in `xn--` A-labels (RFC 5891
    4.2.3.1), whose Punycode is not checked."""
    return (bool(_HOSTNAME_RE.fullmatch(s)) and len(s) <= 253
            and all(label[2:4] != "--" or label[:4].lower() == "xn--" for label in s.split(".")))


def _uri_res() -> tuple[re.Pattern, re.Pattern, re.Pattern]:
    """RFC 3986 `URI` and `URI-reference`; IP literals are checked separately."""
    unres, sub, pct = r"A-Za-z0-9\-._~", r"!$&'()*+,;=", r"%[0-9A-Fa-f]{2}"
    pchar = rf"(?:[{unres}{sub}:@]|{pct})"
    segment, segment_nz = f"{pchar}*", f"{pchar}+"
    segment_nz_nc = rf"(?:[{unres}{sub}@]|{pct})+"
    query = rf"(?:{pchar}|[/?])*"
    userinfo = rf"(?:[{unres}{sub}:]|{pct})*"
    host = rf"(?:\[[0-9A-Za-z{unres}{sub}:]*\]|(?:[{unres}{sub}]|{pct})*)"
    authority = rf"(?:{userinfo}@)?{host}(?::[0-9]*)?"
    abempty = rf"(?:/{segment})*"
    absolute = rf"/(?:{segment_nz}(?:/{segment})*)?"
    rootless = rf"{segment_nz}(?:/{segment})*"
    noscheme = rf"{segment_nz_nc}(?:/{segment})*"
    tail = rf"(?:\?{query})?(?:#{query})?"
    uri = rf"[A-Za-z][A-Za-z0-9+\-.]*:(?://{authority}{abempty}|{absolute}|{rootless}|){tail}"
    relative = rf"(?://{authority}{abempty}|{absolute}|{noscheme}|){tail}"
    ip_literal = re.compile(rf"(?:[A-Za-z][A-Za-z0-9+\-.]*:)?//(?:{userinfo}@)?\[([^\]]*)\]")
    return re.compile(uri), re.compile(f"(?:{uri})|(?:{relative})"), ip_literal


_URI_RE, _URI_REF_RE, _IP_LITERAL_RE = _uri_res()
_IPVFUTURE_RE = re.compile(r"v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+")


def _ip_literal_ok(s: str) -> bool:
    m = _IP_LITERAL_RE.match(s)
    if not m:
        return True
    inner = m.group(1)
    if _IPVFUTURE_RE.fullmatch(inner):
        return True
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        return False
    return "%" not in inner


def _is_uri(s: str) -> bool:
    return bool(_URI_RE.fullmatch(s)) and _ip_literal_ok(s)


def _is_uri_reference(s: str) -> bool:
    return bool(_URI_REF_RE.fullmatch(s)) and _ip_literal_ok(s)


_JSON_POINTER_RE = re.compile(r"(?:/(?:[^~/]|~[01])*)*", re.DOTALL)
_REL_JSON_POINTER_RE = re.compile(r"(?:0|[1-9][0-9]*)(?:#|(?:/(?:[^~/]|~[01])*)*)", re.DOTALL)

# format -> (check, first draft that defines it: 4, 6, 7, 2019, 2020)
_EXTRA_FORMATS = {
    "date-time": (_is_date_time, 4),
    "time": (_is_time, 7),
    "duration": (lambda s: bool(_DURATION_RE.fullmatch(s)), 2019),
    "hostname": (_is_hostname, 4),
    "uri": (_is_uri, 4),
    "uri-reference": (_is_uri_reference, 6),
    "json-pointer": (lambda s: bool(_JSON_POINTER_RE.fullmatch(s)), 6),
    "relative-json-pointer": (lambda s: bool(_REL_JSON_POINTER_RE.fullmatch(s)), 7),
}
_DRAFT_NUMBER = {
    jsonschema.Draft4Validator: 4, jsonschema.Draft6Validator: 6, jsonschema.Draft7Validator: 7,
    jsonschema.Draft201909Validator: 2019, jsonschema.Draft202012Validator: 2020,
}


@lru_cache(maxsize=None)
def format_checker(cls) -> jsonschema.FormatChecker:
    """`cls.FORMAT_CHECKER` plus the stdlib checks above for the formats it leaves unchecked."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = dict(cls.FORMAT_CHECKER.checkers)
    draft = _DRAFT_NUMBER.get(cls, 0)
    for name, (check, since) in _EXTRA_FORMATS.items():
        if name not in checker.checkers and draft >= since:
            checker.checks(name)(lambda inst, check=check: not isinstance(inst, str) or check(inst))
    return checker


def validator(schema):
    """A jsonschema validator for `schema` (its `$schema` draft, else 2020-12) with format checks."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=format_checker(cls))


def checked_formats(cls=jsonschema.Draft202012Validator) -> list[str]:
    return sorted(format_checker(cls).checkers)


# --- the MaskBench check -----------------------------------------------------------------------


def maskbench_rows(seed: int = SEED) -> list[dict]:
    """Every MaskBench row, files in sorted order, shuffled with random.Random(seed)."""
    rows = []
    for path in sorted(MASKBENCH.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            rows += [json.loads(line) for line in f]
    random.Random(seed).shuffle(rows)
    return rows


class _Timeout(BaseException):
    """From the SIGALRM handler; a BaseException so no `except Exception` swallows it."""


class _TimeGuard:
    """Raise _Timeout in the main thread after `seconds` (no guard off the main thread)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds if seconds and threading.current_thread() is threading.main_thread() else None

    def __enter__(self):
        if self.seconds:
            def on_alarm(signum, frame):
                raise _Timeout()

            self._old = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, float(self.seconds))
        return self

    def __exit__(self, *exc):
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        return False


def _parse(text: str):
    def no_constant(name):
        raise ValueError(f"non-JSON constant {name}")

    return json.loads(text, parse_constant=no_constant)


@dataclass
class Report:
    """Counts of one run, and the failures by kind (each a dict with the schema id)."""

    rows_seen: int = 0
    compiled: int = 0
    refused: int = 0  # StructgenError in strict mode: not compilable by design
    compile_timeouts: int = 0
    completions: int = 0  # attempted
    finished: int = 0
    unfinished: int = 0  # hit max_steps
    unfinished_ids: list[tuple[str, int]] = field(default_factory=list)  # (schema id, completion)
    timed_out: int = 0  # completions not run or cut off by the per-schema sampling time guard
    valid: int = 0
    invalid: list[dict] = field(default_factory=list)  # jsonschema (with formats) says invalid
    not_json: list[dict] = field(default_factory=list)  # not UTF-8 or json.loads fails
    dead_ends: list[dict] = field(default_factory=list)
    crashes: list[dict] = field(default_factory=list)  # any other exception (compile or sampling)
    slow: list[tuple[str, float, float]] = field(default_factory=list)  # (id, compile s, sampling s)
    tokens: list[int] = field(default_factory=list)  # lengths of finished completions
    compile_s: float = 0.0  # total, compiled schemas only
    sample_s: float = 0.0  # total sampling and validation
    wall_s: float = 0.0

    @property
    def finished_rate(self) -> float:
        return self.finished / self.completions if self.completions else 1.0

    def failures(self) -> list[dict]:
        return self.invalid + self.not_json + self.dead_ends + self.crashes

    def summary(self) -> dict[str, Any]:
        toks = np.array(self.tokens or [0])
        return {
            "rows_seen": self.rows_seen, "compiled": self.compiled, "refused": self.refused,
            "compile_timeouts": self.compile_timeouts, "completions": self.completions,
            "finished": self.finished, "unfinished": self.unfinished, "timed_out": self.timed_out,
            "finished_rate": round(self.finished_rate, 4), "valid": self.valid, "invalid": len(self.invalid),
            "not_json": len(self.not_json), "dead_ends": len(self.dead_ends), "crashes": len(self.crashes),
            "tokens_median": float(np.median(toks)), "tokens_p99": float(np.percentile(toks, 99)),
            "tokens_max": int(toks.max()), "compile_s": round(self.compile_s, 1),
            "sample_s": round(self.sample_s, 1), "wall_s": round(self.wall_s, 1),
        }


def check_maskbench(n_schemas: int = 500, per_schema: int = 5, *, seed: int = SEED, max_steps: int = 2000,
                    compile_timeout: float = 60.0, sample_timeout: float = 60.0, slow_s: float = 10.0,
                    info: TokenizerInfo | None = None, log=None, **aid) -> Report:
    """Compile the first `n_schemas` shuffled MaskBench schemas that compile (strict mode) and check
    `per_schema` random completions of each. Completion j of row i uses numpy seed (seed, i, j), so a
    failure reproduces alone. A compile over `compile_timeout` s is skipped (counted, not compiled);
    completions left when a schema's sampling passes `sample_timeout` s count as timed out."""
    info = info or TokenizerInfo.from_tokenizer_json(LLAMA3)
    rep = Report()
    t_start = time.perf_counter()
    for i, row in enumerate(maskbench_rows(seed)):
        if rep.compiled >= n_schemas:
            break
        rep.rows_seen += 1
        sid = row["id"]
        t0 = time.perf_counter()
        try:
            with _TimeGuard(compile_timeout):
                cg = GrammarCompiler(info).compile_json_schema(row["schema"], strict=True)
        except _Timeout:
            rep.compile_timeouts += 1
            rep.slow.append((sid, time.perf_counter() - t0, 0.0))
            continue
        except StructgenError:
            rep.refused += 1
            continue
        except Exception as e:  # a bug, not a designed refusal
            rep.crashes.append({"id": sid, "where": "compile", "error": f"{type(e).__name__}: {e}"})
            continue
        t_compile = time.perf_counter() - t0
        rep.compiled += 1
        v = validator(row["schema"])
        t1 = time.perf_counter()
        done = 0
        try:
            with _TimeGuard(sample_timeout):
                for j in range(per_schema):
                    _check_one(rep, sid, cg, v, np.random.default_rng([seed, i, j]), max_steps, j, aid)
                    done += 1
        except _Timeout:
            rep.timed_out += per_schema - done
        rep.completions += per_schema
        t_sample = time.perf_counter() - t1
        rep.compile_s += t_compile
        rep.sample_s += t_sample
        if t_compile + t_sample > slow_s or done < per_schema:
            rep.slow.append((sid, t_compile, t_sample))
        if log:
            log(rep, i, sid, t_compile, t_sample)
    rep.wall_s = time.perf_counter() - t_start
    return rep


def _check_one(rep: Report, sid: str, cg, v, g, max_steps: int, j: int, aid: dict) -> None:
    where = {"id": sid, "completion": j}
    try:
        c = sample_completion(cg, g, max_steps, **aid)
    except DeadEnd as e:
        rep.dead_ends.append({**where, "error": str(e)})
        return
    except UnicodeDecodeError as e:
        rep.not_json.append({**where, "error": f"not UTF-8: {e}"})
        return
    except Exception as e:
        rep.crashes.append({**where, "where": "sampling", "error": f"{type(e).__name__}: {e}"})
        return
    if not c.finished:
        rep.unfinished += 1
        rep.unfinished_ids.append((sid, j))
        return
    rep.finished += 1
    rep.tokens.append(len(c.tokens))
    try:
        inst = _parse(c.text)
    except ValueError as e:
        rep.not_json.append({**where, "text": c.text, "error": str(e)})
        return
    try:
        err = jsonschema.exceptions.best_match(v.iter_errors(inst))
    except Exception as e:  # the validator itself failed (e.g. a huge number)
        rep.crashes.append({**where, "where": "validate", "text": c.text, "error": f"{type(e).__name__}: {e}"})
        return
    if err is None:
        rep.valid += 1
    else:
        rep.invalid.append({**where, "text": c.text, "error": err.message,
                            "path": "/".join(map(str, err.absolute_path)),
                            "schema_path": "/".join(map(str, err.absolute_schema_path))})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schemas", type=int, default=500, help="compiled schemas to sample (default 500)")
    ap.add_argument("--per-schema", type=int, default=5, help="completions per schema (default 5)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--max-steps", type=int, default=2000, help="tokens before a walk counts as unfinished")
    ap.add_argument("--compile-timeout", type=float, default=60.0)
    ap.add_argument("--sample-timeout", type=float, default=60.0)
    ap.add_argument("--patience", type=int, default=32)
    ap.add_argument("--ramp", type=float, default=4.0)
    ap.add_argument("--exact-logits", action="store_true", help="draw every logit (slower, same law)")
    ap.add_argument("--progress", action="store_true", help="one line per 50 compiled schemas")
    ap.add_argument("--json", type=Path, help="also write the summary and failures here")
    a = ap.parse_args(argv)

    def log(rep, i, sid, tc, ts):
        if a.progress and rep.compiled % 50 == 0:
            print(f"  {rep.compiled} compiled / {rep.rows_seen} rows, {rep.finished}/{rep.completions} finished,"
                  f" {len(rep.failures())} failures, {time.perf_counter() - t0:.0f}s", flush=True)

    t0 = time.perf_counter()
    rep = check_maskbench(a.schemas, a.per_schema, seed=a.seed, max_steps=a.max_steps,
                          compile_timeout=a.compile_timeout, sample_timeout=a.sample_timeout, log=log,
                          patience=a.patience, ramp=a.ramp, exact_logits=a.exact_logits)
    print(json.dumps(rep.summary(), indent=1))
    print("formats checked (2020-12):", ", ".join(checked_formats()))
    if rep.slow:
        print("slow schemas (id, compile s, sampling s):")
        for sid, tc, ts in sorted(rep.slow, key=lambda x: -(x[1] + x[2])):
            print(f"  {sid}  {tc:.1f}  {ts:.1f}")
    if rep.unfinished_ids:
        print("unfinished (schema id, completion):", ", ".join(f"{sid}#{j}" for sid, j in rep.unfinished_ids))
    for kind in ("invalid", "not_json", "dead_ends", "crashes"):
        for f in getattr(rep, kind):
            print(f"{kind.upper()}: {json.dumps(f, ensure_ascii=False)[:2000]}")
    if a.json:
        a.json.write_text(json.dumps({"summary": rep.summary(), "slow": rep.slow,
                                      "unfinished": rep.unfinished_ids, "invalid": rep.invalid,
                                      "not_json": rep.not_json, "dead_ends": rep.dead_ends,
                                      "crashes": rep.crashes}, indent=1, ensure_ascii=False))
    ok = not rep.failures() and rep.finished_rate >= 0.9 and rep.compiled >= a.schemas
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
