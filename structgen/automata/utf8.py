"""Code point ranges (merge, complement) and the byte-range sequences that encode them: UTF-8,
or the characters as json.dumps writes them inside a JSON string (regex_dfa.py's NFA reads both).
"""

from __future__ import annotations

MAX_UNICODE = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)


def merge_ranges(ranges) -> tuple[tuple[int, int], ...]:
    """Inclusive code point ranges sorted, with overlapping and adjacent ones merged (empty dropped)."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def complement_ranges(ranges) -> tuple[tuple[int, int], ...]:
    """The code points 0..U+10FFFF that merged, sorted `ranges` leave out."""
    out, nxt = [], 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_UNICODE:
        out.append((nxt, MAX_UNICODE))
    return tuple(out)


def _encode(cp: int) -> bytes:
    return chr(cp).encode("utf-8")


def utf8_sequences(lo: int, hi: int) -> list[list[tuple[int, int]]]:
    """Split the code point range [lo, hi] into UTF-8 byte-range sequences (surrogates excluded).

    Each returned sequence is a list of inclusive byte ranges whose cartesian product is
    exactly the UTF-8 encodings of a sub-range; together they cover [lo, hi].
    """
    out: list[list[tuple[int, int]]] = []
    stack = [(lo, hi)]
    while stack:
        start, end = stack.pop()
        if start > end:
            continue
        # never encode surrogates
        if start <= SURROGATES[1] and end >= SURROGATES[0]:
            stack.append((SURROGATES[1] + 1, end))
            stack.append((start, SURROGATES[0] - 1))
            continue
        # split at encoded-length boundaries
        split = False
        for limit in (0x7F, 0x7FF, 0xFFFF):
            if start <= limit < end:
                stack.append((limit + 1, end))
                stack.append((start, limit))
                split = True
                break
        if split:
            continue
        if end <= 0x7F:
            out.append([(start, end)])
            continue
        for i in range(1, 4):
            m = (1 << (6 * i)) - 1
            if (start & ~m) != (end & ~m):
                if (start & m) != 0:
                    stack.append(((start | m) + 1, end))
                    stack.append((start, start | m))
                    split = True
                    break
                if (end & m) != m:
                    stack.append((end & ~m, end))
                    stack.append((start, (end & ~m) - 1))
                    split = True
                    break
        if split:
            continue
        a, b = _encode(start), _encode(end)
        out.append(list(zip(a, b)))
    return out


def _json_escape(cp: int) -> bytes:
    """The escape json.dumps writes for a character that must be escaped in a JSON string."""
    short = {0x22: b'\\"', 0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x08: b"\\b", 0x0C: b"\\f"}
    return short.get(cp) or b"\\u%04x" % cp


def _must_escape(cp: int) -> bool:
    return cp < 0x20 or cp in (0x22, 0x5C)


def _encoded_sequences(lo: int, hi: int, json_escape: bool) -> list[list[tuple[int, int]]]:
    """Byte-range sequences of the characters lo..hi: UTF-8, or (json_escape) their JSON string form."""
    if not json_escape:
        return utf8_sequences(lo, hi)
    out = []
    start = lo
    for cp in range(lo, min(hi, 0x5C) + 1):  # the escaped characters all lie below 0x5D
        if _must_escape(cp):
            if start < cp:
                out.extend(utf8_sequences(start, cp - 1))
            out.append([(b, b) for b in _json_escape(cp)])
            start = cp + 1
    if start <= hi:
        out.extend(utf8_sequences(start, hi))
    return out
