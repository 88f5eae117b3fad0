"""Code point sets as terminals: the coarsest partition of a grammar's character sets into atoms,
the minimal byte DFA of a set's UTF-8 encodings, and a readable name for a set."""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache

import numpy as np

from ..automata.dfa import ByteDFA, literal_dfa
from ..automata.utf8 import MAX_UNICODE


def atoms_of(sets: list[tuple[tuple[int, int], ...]]) -> tuple[list[tuple[tuple[int, int], ...]], list[list[int]]]:
    """The coarsest partition of the code points the sets cover, such that each set is a union of
    atoms: (the atoms' ranges, for each set the indices of its atoms). One sweep over the sorted
    range boundaries; each elementary interval's membership is a bitmask over the sets."""
    points = sorted({p for s in sets for lo, hi in s for p in (lo, hi + 1)})
    index = {p: i for i, p in enumerate(points)}
    diff = [0] * (len(points) + 1)
    for k, s in enumerate(sets):
        for lo, hi in s:
            diff[index[lo]] += 1 << k
            diff[index[hi + 1]] -= 1 << k
    groups: dict[int, list[tuple[int, int]]] = {}
    cur = 0
    for i in range(len(points) - 1):
        cur += diff[i]
        if cur:
            got = groups.setdefault(cur, [])
            if got and got[-1][1] + 1 == points[i]:
                got[-1] = (got[-1][0], points[i + 1] - 1)
            else:
                got.append((points[i], points[i + 1] - 1))
    atoms, members = [], [[] for _ in sets]
    for mask, ranges in groups.items():  # dicts keep insertion order: atoms by first code point
        atoms.append(tuple(ranges))
        while mask:
            low = mask & -mask
            members[low.bit_length() - 1].append(len(atoms) - 1)
            mask ^= low
    return atoms, members


# lead bytes: (byte, bytes in the character, lowest and highest code point it can start, payload base)
_LEADS = [(b, 1, b, b, b) for b in range(0x80)] + \
    [(b, 2, (b & 0x1F) << 6, (b & 0x1F) << 6 | 0x3F, (b & 0x1F) << 6) for b in range(0xC2, 0xE0)] + \
    [(b, 3, max((b & 0x0F) << 12, 0x800), (b & 0x0F) << 12 | 0xFFF, (b & 0x0F) << 12) for b in range(0xE0, 0xF0)] + \
    [(b, 4, max((b & 7) << 18, 0x10000), min((b & 7) << 18 | 0x3FFFF, MAX_UNICODE), (b & 7) << 18)
     for b in range(0xF0, 0xF5)]


def _clip(ranges: tuple[tuple[int, int], ...], lo: int, hi: int, base: int) -> tuple[tuple[int, int], ...]:
    """ranges ∩ [lo, hi], shifted down by base."""
    k = max(bisect_right(ranges, (lo, MAX_UNICODE + 1)) - 1, 0)
    out = []
    while k < len(ranges) and ranges[k][0] <= hi:
        if ranges[k][1] >= lo:
            out.append((max(ranges[k][0], lo) - base, min(ranges[k][1], hi) - base))
        k += 1
    return tuple(out)


@lru_cache(maxsize=8192)
def utf8_class_dfa(ranges: tuple[tuple[int, int], ...]) -> ByteDFA:
    """The minimal, trimmed byte DFA of the UTF-8 encodings of the code points in `ranges` (merged,
    no surrogates). A state is a residual: (continuation bytes left, the code points still possible
    relative to their common prefix); equal residuals are equal languages, so it is minimal."""
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return literal_dfa(chr(ranges[0][0]).encode("utf-8"))
    done = (0, ((0, 0),))
    ids: dict[tuple, int] = {}
    rows: list[dict[int, int]] = [{}]
    todo: list[tuple] = []

    def state(key: tuple) -> int:
        if key not in ids:
            ids[key] = len(rows)
            rows.append({})
            todo.append(key)
        return ids[key]

    for b, n, lo, hi, base in _LEADS:
        got = _clip(ranges, lo, hi, base)
        if got:
            rows[0][b] = state((n - 1, got) if n > 1 else done)
    while todo:
        key = todo.pop()
        k, rel = key
        size = 1 << (6 * (k - 1)) if k else 0
        for c in range(64 if k else 0):
            got = _clip(rel, c * size, c * size + size - 1, c * size)
            if got:
                rows[ids[key]][0x80 | c] = state((k - 1, got) if k > 1 else done)
    trans = np.full((len(rows), 256), -1, dtype=np.int32)
    for s, row in enumerate(rows):
        trans[s, list(row)] = list(row.values())
    accept = np.zeros(len(rows), dtype=bool)
    accept[ids.get(done, 0)] = done in ids
    trans.flags.writeable = accept.flags.writeable = False
    return ByteDFA(trans, accept)


def render_ranges(ranges: tuple[tuple[int, int], ...], limit: int = 40) -> str:
    """A readable name for a code point set: `"a"` for one character, else `[a-z0-9]` (shortened)."""
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    special = '"\\' if single else "\\[]-^"

    def ch(cp: int) -> str:
        c = chr(cp)
        if c in special:
            return "\\" + c
        if cp < 0x20 or 0x7F <= cp < 0xA0:
            return f"\\x{cp:02X}"
        return c if cp <= 0xFFFF and c.isprintable() else f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}"
    if single:
        return '"' + ch(ranges[0][0]) + '"'
    body = "".join(ch(lo) if lo == hi else f"{ch(lo)}-{ch(hi)}" for lo, hi in ranges)
    return "[" + (body if len(body) <= limit else body[:limit] + "…") + "]"

__all__ = ["atoms_of", "utf8_class_dfa", "render_ranges"]
