"""The WalkMemo's keys and tables (numba): canonical digests of DFA states, and the open-addressing
table from (digest, root child or group) to a kept walk (views.MemoView; store.WalkMemo owns it).

A walk depends only on the language of the state it starts from, so it is keyed by a digest of
the state's canonical form (the sub-automaton reachable from it, renumbered breadth-first)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def canonical_digest(trans, accept, rep, cls, s, max_cells):
    """A 128-bit digest (two uint64) of DFA state s's canonical form: the states reachable from
    s numbered in breadth-first order, each as [accepting, successor number per byte class or
    -1], and the byte classes themselves. The classes are those of the reachable states alone
    (the DFA's classes `rep` / `cls`, numbered by first byte, merged where no reachable state
    tells them apart), so equal forms accept the same language and equal languages (of minimal
    DFAs) give equal forms whatever else their DFAs match: a JSON string's body after a key
    that tracks excluded keys is the body of any other string. FNV-1a and a polynomial hash side
    by side, each over the whole form. Returns (h1, h2, ok, cells read); ok is False, and the
    digest meaningless, past max_cells states x classes."""
    n = trans.shape[0]
    k = rep.shape[0]
    order = np.full(n, -1, dtype=np.int32)
    queue = np.empty(n, dtype=np.int32)
    order[s] = 0
    queue[0] = s
    m = 1
    i = 0
    while i < m:  # breadth first, classes by first byte: the same order for any refinement of them
        x = queue[i]
        i += 1
        for u in range(k):
            y = trans[x, rep[u]]
            if y >= 0 and order[y] < 0:
                order[y] = m
                queue[m] = y
                m += 1
                if m * k > max_cells:
                    return np.uint64(0), np.uint64(0), False, m * k
    # the DFA's classes that the reachable states tell apart: grouped by a hash of their columns,
    # checked exactly
    col = np.empty(k, dtype=np.uint64)
    for u in range(k):
        h = np.uint64(1469598103934665603)
        for j in range(m):
            h = (h ^ np.uint64(trans[queue[j], rep[u]] + 2)) * np.uint64(1099511628211)
        col[u] = h
    group = np.empty(k, dtype=np.int32)
    first = np.empty(k, dtype=np.int32)  # the first class of each group
    ng = 0
    for u in range(k):
        group[u] = -1
        for g in range(ng):
            v = first[g]
            if col[v] == col[u]:
                same = True
                for j in range(m):
                    if trans[queue[j], rep[u]] != trans[queue[j], rep[v]]:
                        same = False
                        break
                if same:
                    group[u] = g
                    break
        if group[u] < 0:
            group[u] = ng
            first[ng] = u
            ng += 1
    h1 = np.uint64(0xCBF29CE484222325)
    h2 = np.uint64(ng)
    p1 = np.uint64(1099511628211)
    p2 = np.uint64(0x9E3779B97F4A7C15)
    for c in range(cls.shape[0]):
        v = np.uint64(group[cls[c]] + 1)
        h1 = (h1 ^ v) * p1
        h2 = h2 * p2 + v
    for j in range(m):
        x = queue[j]
        v = np.uint64(1 if accept[x] >= 0 else 2)
        h1 = (h1 ^ v) * p1
        h2 = h2 * p2 + v
        for g in range(ng):
            y = trans[x, rep[first[g]]]
            v = np.uint64(order[y] + 3) if y >= 0 else np.uint64(0)
            h1 = (h1 ^ v) * p1
            h2 = h2 * p2 + v
    return h1 ^ (h1 >> np.uint64(29)), h2 ^ np.uint64(m), True, 2 * m * k


@njit(cache=True, nogil=True)
def state_digest(s, trans, accept, dig, budget):
    """The memo key (two uint64) of state s: its canonical_digest, computed once into dig's
    per-state arrays (views.DigestView); past dig's cell bound, or past the cells left in
    budget[0] (which this charges), a key of this store alone ((tag, s), tag ORed with the
    terminal: never equal to another store's keys, and never a shared walk). The budget bounds
    the hashing of one walk: a big pattern's 200 successor states would each hash max_cells,
    20 ms, and fail."""
    rep, cls, max_cells, keys, known, tag = dig.rep, dig.cls, dig.max_cells, dig.keys, dig.known, dig.tag
    if not known[s]:
        ok = False
        if budget[0] > 0:
            h1, h2, ok, cells = canonical_digest(trans, accept, rep, cls, s, min(max_cells, budget[0]))
            budget[0] -= cells
        if ok:
            keys[s, 0] = h1
            keys[s, 1] = h2
        else:
            keys[s, 0] = tag
            keys[s, 1] = np.uint64(s)
        known[s] = True
    return keys[s, 0], keys[s, 1]


@njit(cache=True, nogil=True)
def memo_slot(hk, hv, h1, h2, c):
    """The slot of key (h1, h2, c) in the open-addressing table (hk rows: h1, h2, c; hv: the
    entry, -1 empty), or of the empty slot where it would go."""
    mask = hv.shape[0] - 1
    i = np.int64((h1 ^ (h2 * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(c) * np.uint64(1099511628211)) >> np.uint64(7)) & mask
    while hv[i] >= 0 and not (hk[i, 0] == h1 and hk[i, 1] == h2 and hk[i, 2] == np.uint64(c)):
        i = (i + 1) & mask
    return i


@njit(cache=True, nogil=True)
def memo_keep(memo, h1, h2, c, r_lo, r_hi, f_lo, f_hi):
    """Make entry rows [r_lo, r_hi) of the memo's ranges and [f_lo, f_hi) of its nodes (already
    written) the entry of key (h1, h2, c); returns its index."""
    hk, hv, ent, used = memo.hk, memo.hv, memo.ent, memo.used
    slot = memo_slot(hk, hv, h1, h2, c)
    e = used[0]
    ent[e, 0] = r_lo
    ent[e, 1] = r_hi
    ent[e, 2] = f_lo
    ent[e, 3] = f_hi
    used[0] += 1
    hk[slot, 0] = h1
    hk[slot, 1] = h2
    hk[slot, 2] = np.uint64(c)
    hv[slot] = e
    return e


@njit(cache=True, nogil=True)
def memo_rehash(hk, hv, hk2, hv2):
    """Move every key of table (hk, hv) into the empty, larger table (hk2, hv2)."""
    for i in range(hv.shape[0]):
        if hv[i] >= 0:
            j = memo_slot(hk2, hv2, hk[i, 0], hk[i, 1], hk[i, 2])
            hk2[j] = hk[i]
            hv2[j] = hv[i]
