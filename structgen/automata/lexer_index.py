"""The lexer's two hash indexes, in numba: terminal sets -> the id of their product DFA
(LexerTables.dfa_for; uint64 set words as keys), and product states by their live components ->
the global state that already has them (LexerTables.known; see LexerTables._build)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .product import _codes_hash


@njit(cache=True, nogil=True)
def _slot_of(keys, a, m, cap):
    """The first slot to probe for the key keys[a:a + m] (the hash of product_bfs's lookups)."""
    return np.int64(_codes_hash(np.arange(a, a + m), m, keys) & np.uint64(cap - 1))


@njit(cache=True, nogil=True)
def known_insert(terms, vecs, base, is_ignore, known, used, rehash):
    """Enter product states 1 .. of a DFA installed at global id `base` in LexerTables.known
    (state 0 is the set's start; a state with an ignored terminal alive is left out: its end
    restarts its own set's DFA); known: (slots, entries, keys); used: (entries, keys), advanced. `rehash`: `slots` are new and
    empty, so the entries already known are entered first (in this kernel: a second one would be
    loaded from numba's cache, ~4 ms, on the first big object of a process). Returns `keys`, grown
    as needed (sized up front by vecs.size, a 1,000-key product's 2M cells, it cost 3-16 ms)."""
    slots, ent, keys = known
    cap = slots.shape[0]
    if rehash:
        for e in range(used[0]):
            i = _slot_of(keys, ent[e, 0], ent[e, 1], cap)
            while slots[i] >= 0:
                i = (i + 1) & (cap - 1)
            slots[i] = e
    live = np.empty(terms.shape[0], dtype=np.int64)
    for s in range(1, vecs.shape[0]):
        row = vecs[s]
        m = 0
        for c in range(row.shape[0]):  # a tight scan first: rows are wide (a component per terminal) and sparse
            if row[c] >= 0:
                live[m] = c
                m += 1
        ok = m > 0
        for j in range(m):
            if is_ignore[terms[live[j]]]:
                ok = False
                break
        if not ok:
            continue
        k0 = used[1]
        if k0 + m > keys.shape[0]:
            grown = np.empty(2 * keys.shape[0] + m, dtype=np.int64)
            grown[:k0] = keys[:k0]
            keys = grown
        for j in range(m):
            keys[k0 + j] = (np.int64(terms[live[j]]) << 32) | row[live[j]]
        e = used[0]
        ent[e, 0] = k0
        ent[e, 1] = m
        ent[e, 2] = base + s
        i = _slot_of(keys, k0, m, cap)
        while slots[i] >= 0:
            i = (i + 1) & (cap - 1)
        slots[i] = e
        used[0] += 1
        used[1] += m
    return keys


@njit(cache=True, nogil=True)
def _hash_words(words):
    h = np.uint64(1469598103934665603)
    for i in range(words.shape[0]):
        h ^= words[i]
        h *= np.uint64(1099511628211)
        h ^= h >> np.uint64(29)
    return h


@njit(cache=True, nogil=True)
def lookup_set(words, ht_keys, ht_vals):
    """DFA id for the terminal set `words`, or -1 if not built yet."""
    cap = ht_vals.shape[0]
    i = np.int64(_hash_words(words) & np.uint64(cap - 1))
    while True:
        v = ht_vals[i]
        if v < 0:
            return -1
        same = True
        for j in range(words.shape[0]):
            if ht_keys[i, j] != words[j]:
                same = False
                break
        if same:
            return v
        i = (i + 1) & (cap - 1)


@njit(cache=True, nogil=True)
def insert_set(words, value, ht_keys, ht_vals):
    cap = ht_vals.shape[0]
    i = np.int64(_hash_words(words) & np.uint64(cap - 1))
    while ht_vals[i] >= 0:
        i = (i + 1) & (cap - 1)
    for j in range(words.shape[0]):
        ht_keys[i, j] = words[j]
    ht_vals[i] = value
