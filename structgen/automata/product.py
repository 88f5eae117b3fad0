"""Byte classes and the breadth-first product of component DFAs, in numba: the lexer's product
of terminal DFAs and dfa.py's intersection and difference both run on it.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _same_column(m, a, b):
    for r in range(m.shape[0]):
        if m[r, a] != m[r, b]:
            return False
    return True


@njit(cache=True, nogil=True)
def column_classes(m):
    """(a representative column per class, the class of each column) for the columns of the 2-D
    int array m, columns grouped iff equal. Columns are hashed row by row, then the grouping is
    checked exactly; a hash collision (never seen) falls back to comparing columns directly."""
    n, w = m.shape
    h = np.full(w, np.uint64(1469598103934665603))
    for r in range(n):
        for b in range(w):
            h[b] = (h[b] ^ np.uint64(m[r, b] + 2)) * np.uint64(1099511628211)
    cls = np.empty(w, dtype=np.int64)
    rep = np.empty(w, dtype=np.int64)
    for by_hash in (True, False):  # the second pass runs only after a hash collision
        k = 0
        for b in range(w):
            found = -1
            for j in range(k):
                if (h[rep[j]] == h[b]) if by_hash else _same_column(m, rep[j], b):
                    found = j
                    break
            if found < 0:
                rep[k] = b
                found = k
                k += 1
            cls[b] = found
        exact = True
        for r in range(n):
            for b in range(w):
                if m[r, b] != m[r, rep[cls[b]]]:
                    exact = False
        if exact:
            break
    return rep[:k].copy(), cls


@njit(cache=True, nogil=True)
def class_rows(table, row0, trans, rep, off):
    """table[row0 + s, u] = trans[s, rep[u]] + off (or -1): one component's rows over classes."""
    for s in range(trans.shape[0]):
        for u in range(rep.shape[0]):
            v = trans[s, rep[u]]
            table[row0 + s, u] = v + off if v >= 0 else -1


@njit(cache=True, nogil=True)
def pool_equal(pool, at, vec, k):
    """Whether pool[at:at + k] equals vec[:k] (a set stored in a hash table's pool)."""
    for x in range(k):
        if pool[at + x] != vec[x]:
            return False
    return True


@njit(cache=True, nogil=True)
def _rows_hash(rows, m):
    h = np.uint64(1469598103934665603)
    for i in range(m):
        h ^= np.uint64(rows[i] + 1)
        h *= np.uint64(1099511628211)
    return h


@njit(cache=True, nogil=True)
def product_bfs(table, filled, src, offsets, single, max_states, code, known):
    """Breadth-first product of component DFAs over byte classes. table[r, u]: the successor row
    (global over all components) of row r on class u, or -1. A product state is the vector of
    its components' rows (-1: that component is dead), kept sparse while building (the sorted
    rows of its live components: after a few bytes of a key, one of eighty literal keys is
    alive, so a state costs its live components, not all of them). A successor in which only
    component c is alive, in a state other than its initial one, with single[c] >= 0, is not a
    product state: the transition is -2 - (single[c] + c's own state), a jump into c's installed
    single copy. A successor found in `known` (see known_lookup; code[r]: row r's key there, or
    -1 for a row never shared) is not a product state either: the transition is -2 - its global
    id, a jump into the DFA of another set that built it first. Rows not `filled` are read when a
    state first has them: table[r, u] = src[g, rep[u]] + r - g (or -1) with (src, g = src_row[r],
    rep) = `src`; a product of many terminals reaches a few of their rows. Returns (dense vectors,
    transitions over classes); both empty with (-1,)-shaped vectors if more than max_states
    states are needed."""
    ncomp = offsets.shape[0]
    k = table.shape[1]
    comp_of = np.empty(table.shape[0], dtype=np.int32)
    for c in range(ncomp):
        end = offsets[c + 1] if c + 1 < ncomp else table.shape[0]
        comp_of[offsets[c]:end] = c
    cap = 64
    start = np.empty(cap, dtype=np.int64)  # state s's live rows: pool[start[s]:start[s] + size[s]]
    size = np.empty(cap, dtype=np.int32)
    trans = np.empty((cap, k), dtype=np.int32)
    pool = np.empty(max(256, 4 * ncomp), dtype=np.int32)
    pool[:ncomp] = offsets
    start[0] = 0
    size[0] = ncomp
    used = ncomp
    hcap = 256
    hvals = np.full(hcap, -1, dtype=np.int32)
    hvals[np.int64(_rows_hash(offsets, ncomp) & np.uint64(hcap - 1))] = 0
    n = 1
    nv = np.empty(ncomp, dtype=np.int32)
    src_trans, src_row, rep = src
    s = 0
    while s < n:
        for i in range(start[s], start[s] + size[s]):
            r = pool[i]
            if not filled[r]:
                g = src_row[r]
                for u in range(k):
                    v = src_trans[g, rep[u]]
                    table[r, u] = v + r - g if v >= 0 else -1
                filled[r] = True
        for u in range(k):
            m = 0
            for i in range(start[s], start[s] + size[s]):
                t = table[pool[i], u]
                if t >= 0:
                    nv[m] = t
                    m += 1
            if m == 0:
                trans[s, u] = -1
                continue
            if m == 1:
                c = comp_of[nv[0]]
                if single[c] >= 0 and nv[0] != offsets[c]:
                    trans[s, u] = -2 - (single[c] + nv[0] - offsets[c])
                    continue
            i = np.int64(_rows_hash(nv, m) & np.uint64(hcap - 1))
            found = -1
            while hvals[i] >= 0:
                j = hvals[i]
                if size[j] == m and pool_equal(pool, start[j], nv, m):
                    found = j
                    break
                i = (i + 1) & (hcap - 1)
            if found < 0:
                g = known_lookup(nv, m, code, known)
                if g >= 0:
                    trans[s, u] = -2 - g
                    continue
                if n >= max_states:
                    return np.empty((0, ncomp), dtype=np.int32), np.empty((0, k), dtype=np.int32)
                if n >= cap:
                    cap *= 2
                    start = _grown(start, cap, n)
                    size = _grown(size, cap, n)
                    t2 = np.empty((cap, k), dtype=np.int32)
                    t2[:n] = trans[:n]
                    trans = t2
                if used + m > pool.shape[0]:
                    pool = _grown(pool, 2 * (used + m), used)
                pool[used:used + m] = nv[:m]
                start[n] = used
                size[n] = m
                used += m
                found = n
                hvals[i] = n
                n += 1
                if 2 * n > hcap:  # rehash
                    hcap *= 4
                    hvals = np.full(hcap, -1, dtype=np.int32)
                    for j in range(n):
                        i2 = np.int64(_rows_hash(pool[start[j]:start[j] + size[j]], size[j]) & np.uint64(hcap - 1))
                        while hvals[i2] >= 0:
                            i2 = (i2 + 1) & (hcap - 1)
                        hvals[i2] = j
            trans[s, u] = found
        s += 1
    vecs = np.full((n, ncomp), -1, dtype=np.int32)
    for s in range(n):
        for i in range(start[s], start[s] + size[s]):
            vecs[s, comp_of[pool[i]]] = pool[i]
    return vecs, trans[:n].copy()


_NO_SRC = (np.full((1, 1), -1, dtype=np.int32), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))


def no_known(rows: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """product_bfs's `code` and `known` arguments for a product that shares no states."""
    return np.full(rows, -1, dtype=np.int64), (np.full(1, -1, dtype=np.int32), np.zeros((1, 3), dtype=np.int64),
                                               np.zeros(1, dtype=np.int64))


@njit(cache=True, nogil=True)
def _codes_hash(nv, m, code):
    h = np.uint64(1469598103934665603)
    for i in range(m):
        h ^= np.uint64(code[nv[i]])
        h *= np.uint64(1099511628211)
        h ^= h >> np.uint64(31)
    return h


@njit(cache=True, nogil=True)
def known_lookup(nv, m, code, known):
    """The global id of the product state whose live rows nv[:m] have the keys code[nv[:m]] in
    `known` (open-addressing slots -> entries (start and size in the key pool, global id), the
    key pool), or -1 (also when a row has no key)."""
    slots, ent, keys = known
    for i in range(m):
        if code[nv[i]] < 0:
            return -1
    cap = slots.shape[0]
    i = np.int64(_codes_hash(nv, m, code) & np.uint64(cap - 1))
    while slots[i] >= 0:
        e = slots[i]
        if ent[e, 1] == m:
            a = ent[e, 0]
            same = True
            for x in range(m):
                if keys[a + x] != code[nv[x]]:
                    same = False
                    break
            if same:
                return np.int32(ent[e, 2])
        i = (i + 1) & (cap - 1)
    return -1


@njit(cache=True, nogil=True)
def _grown(a, cap, n):
    b = np.empty(cap, dtype=a.dtype)
    b[:n] = a[:n]
    return b
