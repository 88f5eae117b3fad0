"""Scanning regex text (backslash escapes, `[...]` classes, `(...)` groups): its unescaped characters
with their group depth and class state, the bracket closing a group or class, its top-level alternatives."""

from __future__ import annotations


def scan(t: str):
    """(index, char, group depth after it, inside a class after it) for each unescaped character."""
    depth, in_class, i = 0, False, 0
    while i < len(t):
        c = t[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        else:
            depth += (c == "(") - (c == ")")
        yield i, c, depth, in_class
        i += 1


def closing_bracket(t: str, i: int) -> int:
    """Index of the bracket closing the class or group opened at t[i] (-1 if none)."""
    for j, c, depth, in_class in scan(t[i:]):
        if (c == "]" and t[i] == "[" and not in_class) or (c == ")" and t[i] == "(" and depth == 0):
            return i + j
    return -1


def split_alternatives(t: str) -> list[str]:
    """The top-level alternatives of a regex text (outside groups and classes)."""
    out, start = [], 0
    for i, c, depth, in_class in scan(t):
        if c == "|" and depth == 0 and not in_class:
            out.append(t[start:i])
            start = i + 1
    return out + [t[start:]]
