"""Plain-text runs: whole trie subtrees a walk can allow at once.

Inside a long string the lexer lives for many more bytes than a token has, and a token of plain
text (printable ASCII, no quote or backslash) can neither kill it nor end its lexeme. Where a walk
meets a trie node whose subtree below is all such bytes, at most `safe_below[node]` deep, in a
lexer state that survives any `free_depth` >= that many of them, every token of the subtree is
allowed: one contiguous range of token ids (the trie is in preorder), set without walking it. A
chunk boundary of a long string otherwise walked most of the trie node by node (~250k nodes, ~10
ms); the walk result is the same, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

UNKNOWN = -1  # free_depth not computed yet for a lexer state


def safe_bytes() -> np.ndarray:
    """bool[256]: the plain-text bytes (printable ASCII but '"' and '\\\\')."""
    ok = np.zeros(256, dtype=np.bool_)
    ok[0x20:0x7F] = True
    ok[[ord('"'), ord("\\")]] = False
    return ok


@njit(cache=True, nogil=True)
def safe_below(node_byte, node_skip, safe):
    """int16 per trie node: the depth of its subtree below it if every byte there is plain text,
    else -1 (0 for a leaf). Capped at 32767."""
    n = node_byte.shape[0]
    out = np.zeros(n, dtype=np.int16)
    for i in range(n - 1, -1, -1):  # preorder reversed: children before their parent
        best = 0
        c = i + 1
        end = node_skip[i]
        while c < end:
            if not safe[node_byte[c]] or out[c] < 0:
                best = -1
                break
            if out[c] + 1 > best:
                best = min(out[c] + 1, 32767)
            c = node_skip[c]
        out[i] = best
    return out


@njit(cache=True, nogil=True)
def free_depth(s, trans, safe, kmax, free):
    """How many plain-text bytes lexer state s survives whatever they are (at most kmax), kept in
    free[s]: the level sets of the states reached, until one byte leads to the dead state."""
    if s >= free.shape[0]:  # a state built during this walk (the caller sizes free before it): no run
        return 0
    if free[s] != UNKNOWN:
        return free[s]
    cur = np.empty(64, dtype=np.int32)
    nxt = np.empty(64, dtype=np.int32)
    cur[0] = s
    n = 1
    depth = 0
    while depth < kmax:
        m = 0
        for k in range(n):
            row = cur[k]
            for b in range(256):
                if not safe[b]:
                    continue
                t = trans[row, b]
                if t < 0:
                    free[s] = depth
                    return depth
                seen = False
                for j in range(m):
                    if nxt[j] == t:
                        seen = True
                        break
                if not seen:
                    if m == nxt.shape[0]:  # many states at one level: stop here (a lower bound is exact too)
                        free[s] = depth
                        return depth
                    nxt[m] = t
                    m += 1
        cur, nxt = nxt, cur
        n = m
        depth += 1
    free[s] = depth
    return depth
