"""Byte DFAs as numpy tables: single literals, minimisation, trimming, intersection and difference.

A DFA is minimised and trimmed (no dead state), so a missing transition (-1) means "no word of
the language continues this way". Regexes become DFAs in regex_dfa.py; code point ranges become
byte sequences in utf8.py; finite word sets in word_sets.py; the numba product construction (shared
with the lexer) is product.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from ..errors import LimitExceeded, RegexError
from .product import _NO_SRC, class_rows, column_classes, no_known, product_bfs

DEFAULT_MAX_STATES = 20_000
ANY_CHAR = r"[\s\S]"  # any character


@dataclass(frozen=True)
class ByteDFA:
    """A trimmed DFA over bytes: state 0 is initial; trans[s, b] is the next state or -1."""

    trans: np.ndarray  # int32 (n, 256)
    accept: np.ndarray  # bool (n,)

    @property
    def num_states(self) -> int:
        return int(self.trans.shape[0])

    @cached_property
    def byte_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """byte_classes(self), computed once per DFA object (a cache, not a field: equality is unchanged)."""
        return column_classes(readonly(self.trans))

    def matches(self, data: bytes) -> bool:
        """Whether the whole byte string is in the language (for tests and debugging)."""
        if self.num_states == 0:
            return False
        s = 0
        for b in data:
            s = int(self.trans[s, b])
            if s < 0:
                return False
        return bool(self.accept[s])


def byte_classes(dfa: ByteDFA) -> tuple[np.ndarray, np.ndarray]:
    """(a representative byte per class, the class of each byte) of dfa's columns: bytes no state
    tells apart share a class, numbered by first byte. Computed once per DFA object (~10 ms for
    a 27k-state pattern), which a cached terminal DFA shares across grammars."""
    return dfa.byte_classes


def literal_dfa(data: bytes) -> ByteDFA:
    """DFA of exactly one byte string (a chain)."""
    if not data:
        raise RegexError("empty literal terminals are not allowed")
    n = len(data) + 1
    trans = np.empty((n, 256), dtype=np.int32)
    trans.fill(-1)
    for i, b in enumerate(data):
        trans[i, b] = i + 1
    accept = np.zeros(n, dtype=bool)
    accept[-1] = True
    return ByteDFA(trans, accept)


def _frozen(dfa: ByteDFA) -> ByteDFA:
    """The same DFA with read-only arrays (it is shared through a cache)."""
    dfa.trans.flags.writeable = False
    dfa.accept.flags.writeable = False
    return dfa


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of `a`: kernels get one array type (numba compiles and caches one signature
    per writeable flag, and a second one loads mid-request, ~10 ms: see warmup.py)."""
    v = a.view()
    v.flags.writeable = False
    return v


def without_empty(dfa: ByteDFA) -> ByteDFA:
    """The same language minus the empty string (a fresh, non-accepting initial state)."""
    if not dfa.accept[0]:
        return dfa
    trans = np.concatenate([dfa.trans[:1], dfa.trans + 0], axis=0)
    trans = np.where(trans >= 0, trans + 1, -1).astype(np.int32)
    accept = np.concatenate([[False], dfa.accept])
    return ByteDFA(trans, accept)


def _minimise(trans: np.ndarray, accept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimal DFA of (trans, accept): the quotient by state equivalence; -1 (dead) is its
    own class. Runs in numba on byte classes (columns no state tells apart, usually a handful
    instead of 256): one bottom-up pass when the DFA is acyclic, else Hopcroft's refinement
    (O(k n log n); Moore's rounds were as many as the longest counter, 0.7 s for a 1,024-character bound)."""
    rep, _ = column_classes(readonly(trans))
    small = np.ascontiguousarray(trans[:, rep])
    acc = np.ascontiguousarray(accept, dtype=np.bool_)
    cls = _acyclic_classes(small, acc)
    if cls.shape[0] != small.shape[0]:
        cls = _hopcroft_classes(small, acc)
    return _quotient(np.ascontiguousarray(trans, dtype=np.int32), acc, cls)


@njit(cache=True, nogil=True)
def _same_signature(small, accept, cls, a, b):
    """Whether states a and b agree on acceptance and on every column's successor class."""
    if accept[a] != accept[b]:
        return False
    for u in range(small.shape[1]):
        x, y = small[a, u], small[b, u]
        if (cls[x] if x >= 0 else -1) != (cls[y] if y >= 0 else -1):
            return False
    return True


@njit(cache=True, nogil=True)
def _signature_classes(small, accept, own, succ, states, new):
    """new[s] for s in `states` (in order), numbered by first appearance: equal iff the states
    agree on own[s] and on their signatures (acceptance, and each column's successor class in
    `succ`, which may be `new` itself when successors come first); returns the number of classes."""
    n = small.shape[0]
    hcap = 16
    while hcap < 2 * n:
        hcap *= 2
    hv = np.full(hcap, -1, dtype=np.int64)
    num = 0
    for s in states:
        h = np.uint64(1469598103934665603) ^ np.uint64(own[s] * 2 + accept[s])
        h *= np.uint64(1099511628211)
        for u in range(small.shape[1]):
            t = small[s, u]
            h ^= np.uint64((succ[t] if t >= 0 else -1) + 2)
            h *= np.uint64(1099511628211)
        i = np.int64(h & np.uint64(hcap - 1))
        while True:
            r = hv[i]
            if r < 0:
                hv[i] = s
                new[s] = num
                num += 1
                break
            if own[r] == own[s] and _same_signature(small, accept, succ, r, s):
                new[s] = new[r]
                break
            i = (i + 1) & (hcap - 1)
    return num


@njit(cache=True, nogil=True)
def _moore_classes(small, accept):
    """Moore partition refinement (each round splits classes by their successors' classes)."""
    n = small.shape[0]
    cls = np.zeros(n, dtype=np.int64)  # acceptance is part of every signature
    states = np.arange(n)
    new = np.empty(n, dtype=np.int64)
    num = -1
    while True:
        got = _signature_classes(small, accept, cls, cls, states, new)
        cls, new = new, cls
        if got == num:
            return cls
        num = got


@njit(cache=True, nogil=True)
def _acyclic_classes(small, accept):
    """Equivalence classes of an acyclic DFA in one bottom-up pass (Revuz), or an empty array if
    it has a cycle. Bounded-length languages (length limits, hostnames) are acyclic and would
    need one Moore round per character of their longest word."""
    n, k = small.shape
    indeg = np.zeros(n, dtype=np.int64)
    for s in range(n):
        for u in range(k):
            if small[s, u] >= 0:
                indeg[small[s, u]] += 1
    order = np.empty(n, dtype=np.int64)
    tail = 0
    for s in range(n):
        if indeg[s] == 0:
            order[tail] = s
            tail += 1
    head = 0
    while head < tail:
        s = order[head]
        head += 1
        for u in range(k):
            t = small[s, u]
            if t >= 0:
                indeg[t] -= 1
                if indeg[t] == 0:
                    order[tail] = t
                    tail += 1
    if tail < n:
        return np.empty(0, dtype=np.int64)
    new = np.full(n, -1, dtype=np.int64)  # successors first: their classes are final when read
    _signature_classes(small, accept, np.zeros(n, dtype=np.int64), new, order[::-1], new)
    return new


@njit(cache=True, nogil=True)
def _hopcroft_classes(small, accept):
    """Hopcroft's partition refinement over the k columns of `small` (-1: a dead sink, state n).
    Returns a class per state (< n), equivalent states sharing one."""
    n, k = small.shape
    N = n + 1  # with the sink
    # predecessors by column: pred[pptr[c * N + t]:pptr[c * N + t + 1]] = {s : small[s, c] == t}
    pptr = np.zeros(k * N + 1, dtype=np.int64)
    for s in range(N):
        for c in range(k):
            t = small[s, c] if s < n else -1
            t = t if t >= 0 else n
            pptr[c * N + t + 1] += 1
    for i in range(k * N):
        pptr[i + 1] += pptr[i]
    pred = np.empty(pptr[k * N], dtype=np.int64)
    fill = pptr[:k * N].copy()
    for s in range(N):
        for c in range(k):
            t = small[s, c] if s < n else -1
            t = t if t >= 0 else n
            pred[fill[c * N + t]] = s
            fill[c * N + t] += 1
    # blocks: elements of block b are elems[first[b]:last[b]]; loc[s] is s's index in elems
    elems = np.empty(N, dtype=np.int64)
    loc = np.empty(N, dtype=np.int64)
    block = np.empty(N, dtype=np.int64)
    first = np.zeros(N + 1, dtype=np.int64)
    last = np.zeros(N + 1, dtype=np.int64)
    marked = np.zeros(N + 1, dtype=np.int64)
    m = 0
    for want in (True, False):  # accepting states first, then the rest (the sink among them)
        for s in range(N):
            if (s < n and accept[s]) == want:
                elems[m] = s
                loc[s] = m
                m += 1
    n_acc = 0
    for s in range(n):
        if accept[s]:
            n_acc += 1
    nb = 0
    if n_acc > 0:
        first[0], last[0] = 0, n_acc
        for i in range(n_acc):
            block[elems[i]] = 0
        nb = 1
    first[nb], last[nb] = n_acc, N
    for i in range(n_acc, N):
        block[elems[i]] = nb
    nb += 1
    # the worklist of splitters (block, column), with membership flags
    work = np.empty(2 * N * k + 2 * k, dtype=np.int64)
    in_work = np.zeros((N + 1, k), dtype=np.bool_)
    top = 0
    small_block = 0 if nb == 2 and n_acc <= N - n_acc else nb - 1
    for c in range(k):
        work[top] = small_block * k + c
        in_work[small_block, c] = True
        top += 1
    touched = np.empty(N, dtype=np.int64)
    while top > 0:
        top -= 1
        b, c = work[top] // k, work[top] % k
        in_work[b, c] = False
        n_touched = 0
        members = elems[first[b]:last[b]].copy()  # marking below reorders blocks, b's own too
        for t in members:
            for j in range(pptr[c * N + t], pptr[c * N + t + 1]):
                s = pred[j]
                d = block[s]
                # move s to the marked front of its block
                at = first[d] + marked[d]
                if loc[s] >= at:
                    if marked[d] == 0:
                        touched[n_touched] = d
                        n_touched += 1
                    other = elems[at]
                    elems[at], elems[loc[s]] = s, other
                    loc[other], loc[s] = loc[s], at
                    marked[d] += 1
        for q in range(n_touched):
            d = touched[q]
            size, mk = last[d] - first[d], marked[d]
            marked[d] = 0
            if mk == size:
                continue
            e = nb  # the marked front becomes block e
            nb += 1
            first[e], last[e] = first[d], first[d] + mk
            first[d] = first[d] + mk
            for i in range(first[e], last[e]):
                block[elems[i]] = e
            smaller = e if mk <= size - mk else d
            for cc in range(k):
                if in_work[d, cc]:
                    work[top] = e * k + cc
                    in_work[e, cc] = True
                    top += 1
                else:
                    work[top] = smaller * k + cc
                    in_work[smaller, cc] = True
                    top += 1
    # classes numbered below n (the sink's block may be shared by dead states)
    out = np.empty(n, dtype=np.int64)
    ids = np.full(nb, -1, dtype=np.int64)
    next_id = 0
    for s in range(n):
        if ids[block[s]] < 0:
            ids[block[s]] = next_id
            next_id += 1
        out[s] = ids[block[s]]
    return out


@njit(cache=True, nogil=True)
def _quotient(trans, accept, cls):
    """The quotient DFA of a state partition; classes renumbered by first state, so the initial
    state's class becomes 0."""
    n = trans.shape[0]
    remap = np.full(n, -1, dtype=np.int32)  # by class
    reps = np.empty(n, dtype=np.int64)
    m = 0
    for s in range(n):
        if remap[cls[s]] < 0:
            remap[cls[s]] = m
            reps[m] = s
            m += 1
    out = np.empty((m, trans.shape[1]), dtype=np.int32)
    acc = np.empty(m, dtype=np.bool_)
    for j in range(m):
        r = reps[j]
        acc[j] = accept[r]
        for b in range(trans.shape[1]):
            t = trans[r, b]
            out[j, b] = remap[cls[t]] if t >= 0 else -1
    return out, acc


def _trim(trans: np.ndarray, accept: np.ndarray) -> ByteDFA:
    """Remove states from which no accepting state is reachable; keep state 0 first."""
    live = _live_states(np.ascontiguousarray(trans, dtype=np.int32), np.ascontiguousarray(accept, dtype=np.bool_))
    if not live[0]:
        return ByteDFA(np.zeros((0, 256), dtype=np.int32), np.zeros(0, dtype=bool))
    keep = np.flatnonzero(live)
    remap = np.full(trans.shape[0], -1, dtype=np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    t = trans[keep]
    t = np.where(t >= 0, remap[np.maximum(t, 0)], -1).astype(np.int32)
    return ByteDFA(np.ascontiguousarray(t), accept[keep].copy())


@njit(cache=True, nogil=True)
def _live_states(trans, accept):
    """States from which an accepting state is reachable (a backward search over the edges)."""
    n, w = trans.shape
    count = np.zeros(n + 1, dtype=np.int64)
    for s in range(n):
        for b in range(w):  # a run of bytes to one target is one edge
            if trans[s, b] >= 0 and (b == 0 or trans[s, b - 1] != trans[s, b]):
                count[trans[s, b] + 1] += 1
    for i in range(n):
        count[i + 1] += count[i]
    preds = np.empty(count[n], dtype=np.int32)
    fill = count[:n].copy()
    for s in range(n):
        for b in range(w):
            t = trans[s, b]
            if t >= 0 and (b == 0 or trans[s, b - 1] != t):
                preds[fill[t]] = s
                fill[t] += 1
    live = accept.copy()
    stack = np.flatnonzero(accept)
    work = np.empty(n, dtype=np.int64)
    top = stack.shape[0]
    work[:top] = stack
    while top > 0:
        top -= 1
        t = work[top]
        for i in range(count[t], count[t + 1]):
            s = preds[i]
            if not live[s]:
                live[s] = True
                work[top] = s
                top += 1
    return live


def intersect(a: ByteDFA, b: ByteDFA, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA:
    """The product DFA of two byte DFAs (words in both languages), minimised and trimmed.

    Works on byte classes (bytes neither DFA tells apart), usually a handful instead of 256."""
    dfa = _product(a, b, False, max_states)
    if dfa.num_states == 0:
        raise RegexError("the intersection matches nothing")
    return dfa


def difference(a: ByteDFA, b: ByteDFA, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA:
    """The words of `a` that are not words of `b`, minimised and trimmed (possibly empty)."""
    return _product(a, b, True, max_states)


def _product(a: ByteDFA, b: ByteDFA, minus: bool, max_states: int) -> ByteDFA:
    """a & b, or a - b with `minus`: the lexer's numba product construction over byte classes
    (a state lives while either side does; states that cannot accept are trimmed after)."""
    rep, cls = column_classes(readonly(np.concatenate([a.trans, b.trans])))
    na = a.num_states
    table = np.empty((na + b.num_states, len(rep)), dtype=np.int32)
    class_rows(table, np.int64(0), readonly(a.trans), rep, np.int32(0))
    class_rows(table, np.int64(na), readonly(b.trans), rep, np.int32(na))
    vecs, trans = product_bfs(table, np.ones(len(table), dtype=np.bool_), _NO_SRC, np.array([0, na], dtype=np.int32),
                              np.full(2, -1, dtype=np.int32), max_states, *no_known(len(table)))
    if vecs.shape[0] == 0:
        raise LimitExceeded(f"{'difference' if minus else 'intersection'} needs more than {max_states} states",
                            limit="max_dfa_states")
    x, y = vecs[:, 0], vecs[:, 1]
    acc_a = (x >= 0) & a.accept[np.maximum(x, 0)]
    acc_b = (y >= 0) & b.accept[np.maximum(y - na, 0)]
    accept = acc_a & ~acc_b if minus else acc_a & acc_b
    trans, accept = _minimise(np.ascontiguousarray(trans[:, cls]), accept)
    return _trim(trans, accept)
