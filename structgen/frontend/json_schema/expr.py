"""Grammar expressions while emitting: alternatives (tuples of IR symbols) and their algebra."""

from __future__ import annotations

Seq = tuple[int, ...]
Expr = list[Seq]  # alternatives, each a sequence of IR symbols
EMPTY: Expr = [()]


def cat(*parts: Expr) -> Expr:
    """The concatenation of expressions (every combination of their alternatives)."""
    out: Expr = [()]
    for p in parts:
        if p == EMPTY:
            continue
        out = [a + b for a in out for b in p]
    return out


def union(*parts: Expr) -> Expr:
    """The alternatives of all parts, each once, in order."""
    return list(dict.fromkeys(a for p in parts for a in p))


def opt(e: Expr) -> Expr:
    return union(e, EMPTY)
