"""A byte DFA back to a regular expression over characters (Python `re` syntax), for grammars printed
as standalone Lark text: UTF-8 byte runs become code point ranges, then states are eliminated
(the fewest in x out edges first), with the results checked exact by the tests (regex -> DFA equal).
"""

from __future__ import annotations

import numpy as np

from .dfa import ByteDFA

_LEADS = ((0xC2, 0xDF, 1, 0x1F), (0xE0, 0xEF, 2, 0x0F), (0xF0, 0xF4, 3, 0x07))  # lo, hi, continuations, bits


def _intervals(values: np.ndarray) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in values.tolist():
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _code_points(prefix: int, levels: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Code point intervals of a lead byte's bits `prefix` followed by continuation values in `levels`."""
    if not levels:
        return [(prefix, prefix)]
    first, rest = levels[0], levels[1:]
    width = 6 * len(rest)
    if all(r == [(0, 63)] for r in rest):
        return [(((prefix << 6) | a) << width, (((prefix << 6) | b) << width) | ((1 << width) - 1)) for a, b in first]
    return [iv for a, b in first for v in range(a, b + 1) for iv in _code_points((prefix << 6) | v, rest)]


def char_edges(dfa: ByteDFA) -> dict[int, dict[int, list[tuple[int, int]]]] | None:
    """{state: {next state: code point intervals}} over the states at character boundaries, or None
    where the DFA stops or accepts inside a UTF-8 sequence (no character regex says that)."""
    trans = dfa.trans
    edges: dict[int, dict[int, list[tuple[int, int]]]] = {}
    todo, seen = [0], {0}
    while todo:
        s = todo.pop()
        out: dict[int, list[tuple[int, int]]] = {}
        row = trans[s]
        for t in np.unique(row[:0x80]):
            if t >= 0:
                out.setdefault(int(t), []).extend(_intervals(np.flatnonzero(row[:0x80] == t)))
                if int(t) not in seen:
                    seen.add(int(t))
                    todo.append(int(t))
        if (row[0x80:0xC2] >= 0).any() or (row[0xF5:] >= 0).any():
            return None  # a stray continuation byte or an invalid lead byte

        def walk(state: int, need: int, prefix: int, levels: list) -> bool:
            if need == 0:
                if state not in seen:
                    seen.add(state)
                    todo.append(state)
                out.setdefault(state, []).extend(_code_points(prefix, levels))
                return True
            if dfa.accept[state]:
                return False  # accepts in the middle of a character
            cont = trans[state, 0x80:0xC0]
            if (trans[state, :0x80] >= 0).any() or (trans[state, 0xC0:] >= 0).any():
                return False
            for t in np.unique(cont):
                if t >= 0 and not walk(int(t), need - 1, prefix, levels + [_intervals(np.flatnonzero(cont == t))]):
                    return False
            return True

        for lo, hi, need, bits in _LEADS:
            for lead in range(lo, hi + 1):
                t = int(row[lead])
                if t >= 0 and not walk(t, need, lead & bits, []):
                    return None
        edges[s] = {t: _merge(iv) for t, iv in out.items()}
    return edges


def _merge(ivs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ivs):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _char(cp: int, in_class: bool) -> str:
    c = chr(cp)
    if cp < 0x20 or cp == 0x7F or 0xD800 <= cp <= 0xDFFF or not c.isprintable():
        return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"
    special = "\\]^-[" if in_class else "\\.^$*+?{}[]|()/"
    return "\\" + c if c in special or c == "/" else c


def _class(ivs: list[tuple[int, int]]) -> str:
    if len(ivs) == 1 and ivs[0][0] == ivs[0][1]:
        return _char(ivs[0][0], False)
    full = [(0, 0x10FFFF)]
    if ivs == full:
        return "[\\s\\S]"
    # the complement reads better when it is smaller ([^"\\] rather than 5 ranges)
    comp, prev = [], 0
    for a, b in ivs:
        if a > prev:
            comp.append((prev, a - 1))
        prev = b + 1
    if prev <= 0x10FFFF:
        comp.append((prev, 0x10FFFF))
    neg = len(comp) < len(ivs)
    body = "".join(_char(a, True) if a == b else f"{_char(a, True)}-{_char(b, True)}"
                   for a, b in (comp if neg else ivs))
    return f"[{'^' if neg else ''}{body}]"


# regex terms: (text, kind) with kind "atom" (safe to repeat), "cat" (safe in a sequence) or "alt"
_EPS = ("", "cat")


def _group(x: tuple[str, str], for_kind: str) -> str:
    text, kind = x
    if for_kind == "atom" and kind != "atom" or for_kind == "cat" and kind == "alt":
        return f"(?:{text})"
    return text


def _cat(*xs: tuple[str, str] | None) -> tuple[str, str] | None:
    if any(x is None for x in xs):
        return None
    parts = [x for x in xs if x[0]]
    if not parts:
        return _EPS
    if len(parts) == 1:
        return parts[0]
    return "".join(_group(x, "cat") for x in parts), "cat"


def _alt(xs: list[tuple[str, str]]) -> tuple[str, str] | None:
    xs = list(dict.fromkeys(x for x in xs if x is not None))
    if not xs:
        return None
    if _EPS in xs:
        rest = [x for x in xs if x != _EPS]
        if not rest:
            return _EPS
        inner = _alt(rest)
        return _group(inner, "atom") + "?", "atom"
    if len(xs) == 1:
        return xs[0]
    return "|".join(x[0] for x in xs), "alt"


def _star(x: tuple[str, str] | None) -> tuple[str, str]:
    if x is None or x == _EPS:
        return _EPS
    text, kind = x
    if kind == "atom" and text.endswith("?") and not text.endswith("\\?"):
        text = text[:-1]  # (x?)* is x*
    return _group((text, kind), "atom") + "*", "atom"


def dfa_to_regex(dfa: ByteDFA, max_chars: int = 20_000) -> str | None:
    """A Python regex (over characters) whose language, UTF-8 encoded, is the DFA's; None when the DFA
    is not about whole characters or the regex would pass max_chars."""
    if dfa.num_states == 0:
        return None
    edges = char_edges(dfa)
    if edges is None:
        return None
    # GNFA: states of edges, plus a start (-1) and a final (-2) state
    g: dict[int, dict[int, tuple[str, str]]] = {-1: {0: _EPS}}
    for s, out in edges.items():
        g.setdefault(s, {})
        for t, ivs in out.items():
            cls = _class(ivs)
            g[s][t] = (cls, "atom")
        if dfa.accept[s]:
            g[s][-2] = _EPS
    states = set(edges)
    while states:
        ins = {s: [p for p in g if s in g[p] and p != s] for s in states}
        s = min(states, key=lambda q: (len(ins[q]) * len([t for t in g.get(q, {}) if t != q]), q))
        loop = _star(g[s].get(s))
        outs = {t: x for t, x in g[s].items() if t != s}
        for p in ins[s]:
            into = g[p].pop(s)
            for t, x in outs.items():
                path = _cat(into, loop, x)
                old = g[p].get(t)
                g[p][t] = path if old is None else _alt([old, path])
                if len(g[p][t][0]) > max_chars:
                    return None
        del g[s]
        states.discard(s)
    final = g[-1].get(-2)
    return None if final is None else final[0]
