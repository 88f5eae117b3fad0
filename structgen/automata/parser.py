"""The PDA: LALR(1) tables (built by automata/lr.py) as int arrays, and numba routines that run them.

Parser stacks live in a node pool as parent-linked lists (`pool_state[i]`, `pool_parent[i]`),
so a stack snapshot is one index and the token-trie walk can backtrack in O(1) by resetting
the pool's fill pointer. Action encoding: 0 = error, s+1 = shift to s, -(r+1) = reduce by r.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit


OVERLAY = 256  # max states pushed by one simulated reduce chain (epsilon chains are short)


@dataclass
class ParserTables:
    """Integer LALR(1) tables; terminal T (=num_terms) is $END; `conflicts` lists those resolved on request.

    Rows past the automaton's own states are parametric states (automata/objects.py), appended
    as the parser reaches them; arrays keep spare rows (`num_states` are in use)."""

    terminal_names: list[str]
    nonterminal_names: list[str]
    action: np.ndarray  # int32 (S, T+1)
    goto: np.ndarray  # int32 (S, NT), -1 where undefined, GOTO_BY_RULE where the rule decides
    rule_len: np.ndarray  # int32 (R,)
    rule_lhs: np.ndarray  # int32 (R,)
    row_ptr: np.ndarray  # int32 (S+1,) CSR over terminals (not $END) with an action
    row_terms: np.ndarray  # int32
    start_state: int
    end_state: int
    conflicts: list[str]
    num_states: int = -1
    pg_keys: np.ndarray = field(default_factory=lambda: np.full(1, -1, dtype=np.int64))
    pg_vals: np.ndarray = field(default_factory=lambda: np.full(1, -1, dtype=np.int32))
    pg_used: int = 0
    pg_req: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))

    def __post_init__(self) -> None:
        if self.num_states < 0:
            self.num_states = int(self.action.shape[0])

    @property
    def num_terms(self) -> int:
        return len(self.terminal_names)

    def view(self) -> "ParserView":
        return ParserView(self.action, self.goto, self.rule_len, self.rule_lhs, np.int32(self.end_state),
                          self.row_ptr, self.row_terms, self.pg_keys, self.pg_vals, self.pg_req)

    def rebuild_rows(self) -> None:
        """Drop from the CSR the terminals whose action was removed (rows in use)."""
        n = self.num_states
        counts = np.diff(self.row_ptr[:n + 1])
        rows = np.repeat(np.arange(n), counts)
        terms = self.row_terms[:self.row_ptr[n]]
        keep = self.action[rows, terms] != 0
        row_ptr = np.zeros(len(self.row_ptr), dtype=np.int32)
        np.cumsum(np.bincount(rows[keep], minlength=n), out=row_ptr[1:n + 1])
        self.row_ptr = row_ptr
        self.row_terms = terms[keep].copy()

    def add_state(self, copy_of: int) -> int:
        """Append a state whose rows are copies of state `copy_of`'s; finish_row() completes it."""
        n = self.num_states
        if n >= self.action.shape[0]:
            cap = max(2 * n, 16)
            self.action = _grown_rows(self.action, cap, 0)
            self.goto = _grown_rows(self.goto, cap, -1)
            self.row_ptr = np.concatenate([self.row_ptr, np.zeros(cap + 1 - len(self.row_ptr), dtype=np.int32)])
        self.action[n] = self.action[copy_of]
        self.goto[n] = self.goto[copy_of]
        self.num_states = n + 1
        return n

    def finish_row(self, n: int) -> None:
        """Add row n's terminals with an action to the CSR (rows are finished in order)."""
        terms = np.flatnonzero(self.action[n, :-1]).astype(np.int32)
        start = int(self.row_ptr[n])
        need = start + len(terms)
        if need > len(self.row_terms):
            grown = np.empty(max(need, 2 * len(self.row_terms)), dtype=np.int32)
            grown[:start] = self.row_terms[:start]
            self.row_terms = grown
        self.row_terms[start:need] = terms
        self.row_ptr[n + 1] = need

    def set_rule_goto(self, st: int, r: int, target: int) -> None:
        """Record the goto of state st on reducing rule r (where `goto` holds GOTO_BY_RULE)."""
        if 2 * (self.pg_used + 1) > len(self.pg_keys):
            old = [(int(k), int(v)) for k, v in zip(self.pg_keys, self.pg_vals) if k >= 0]
            cap = max(64, 4 * len(self.pg_keys))
            self.pg_keys = np.full(cap, -1, dtype=np.int64)
            self.pg_vals = np.full(cap, -1, dtype=np.int32)
            n = len(self.rule_len)
            for k, v in old:
                pg_insert(self.pg_keys, self.pg_vals, np.int64(k // n), np.int64(k % n), np.int64(n), np.int32(v))
        pg_insert(self.pg_keys, self.pg_vals, np.int64(st), np.int64(r), np.int64(len(self.rule_len)), np.int32(target))
        self.pg_used += 1


def _grown_rows(a: np.ndarray, cap: int, fill: int) -> np.ndarray:
    out = np.full((cap,) + a.shape[1:], fill, dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


class ParserView(NamedTuple):
    """The tables numba kernels read (named, so kernels take one argument). `pg_keys`/`pg_vals` map
    (state, member rule) to the goto target where `goto` holds GOTO_BY_RULE (automata/objects.py);
    a miss is written to `pg_req` (state, rule) and reported as NEED_STATE."""

    action: np.ndarray
    goto: np.ndarray
    rule_len: np.ndarray
    rule_lhs: np.ndarray
    end_state: np.int32
    row_ptr: np.ndarray
    row_terms: np.ndarray
    pg_keys: np.ndarray  # int64 (power of two,), -1 where empty
    pg_vals: np.ndarray  # int32
    pg_req: np.ndarray  # int64 (2,)


GOTO_BY_RULE = -2  # in `goto`: the target depends on the rule reduced (a member of a constrained object)
NEED_STATE = -3  # a parametric state that is not built yet (see ParserView)


@njit(cache=True, nogil=True)
def _pg_slot(key, mask):
    h = key ^ (key >> 17)
    h = (h * 0x2545F4914F6CDD1D) & 0x7FFFFFFFFFFFFFFF
    return (h ^ (h >> 29)) & mask


@njit(cache=True, nogil=True)
def pg_insert(keys, vals, st, r, n_rules, target):
    """Record goto (state st, rule r) -> target in the open-addressing table (which has room)."""
    key = np.int64(st) * n_rules + r
    mask = keys.shape[0] - 1
    h = _pg_slot(key, mask)
    while keys[h] != -1 and keys[h] != key:
        h = (h + 1) & mask
    keys[h] = key
    vals[h] = target


@njit(cache=True, nogil=True)
def goto_after(st, r, P):
    """The state entered from `st` on reducing rule r: goto by its left side, or by the rule itself."""
    g = P.goto[st, P.rule_lhs[r]]
    if g != GOTO_BY_RULE:
        return g
    key = np.int64(st) * P.rule_len.shape[0] + r
    mask = P.pg_keys.shape[0] - 1
    h = _pg_slot(key, mask)
    while P.pg_keys[h] != -1:
        if P.pg_keys[h] == key:
            return P.pg_vals[h]
        h = (h + 1) & mask
    P.pg_req[0] = st
    P.pg_req[1] = r
    return NEED_STATE


@njit(cache=True, nogil=True)
def stack_top_state(overlay, ov_n, base, pool_state):
    if ov_n > 0:
        return overlay[ov_n - 1]
    return pool_state[base]


@njit(cache=True, nogil=True)
def can_shift(term, base, pool_state, pool_parent, P, overlay, touched):
    """Whether terminal `term` (or $END) is accepted by the stack at `base` after its reductions:
    1 yes, 0 no, NEED_STATE when a parametric state must be built first.

    Simulates without touching the pool: pushed states go to the local `overlay` array.
    For $END, 1 means the parser accepts. `touched[0]` records the deepest pool node read.
    """
    action = P.action
    ov_n = 0
    while True:
        st = stack_top_state(overlay, ov_n, base, pool_state)
        a = action[st, term]
        if a == 0:
            return 0
        if a > 0:
            return 1
        r = -a - 1
        k = P.rule_len[r]
        if k <= ov_n:
            ov_n -= k
        else:
            k -= ov_n
            ov_n = 0
            for _ in range(k):
                base = pool_parent[base]
            if base < touched[0]:
                touched[0] = base
        g = goto_after(stack_top_state(overlay, ov_n, base, pool_state), r, P)
        if g == NEED_STATE:
            return NEED_STATE
        if g < 0:
            return 0
        if g == P.end_state:
            return 1 if term == action.shape[1] - 1 else 0
        if ov_n >= overlay.shape[0]:
            return 0
        overlay[ov_n] = g
        ov_n += 1


@njit(cache=True, nogil=True)
def feed_terminal(term, top, pool_state, pool_parent, pool_n, P, touched):
    """Reduce as needed and shift `term`; returns (new_top, new_pool_n), new_top = -1 on error,
    -2 when the pool is full, NEED_STATE when a parametric state must be built first."""
    action = P.action
    while True:
        st = pool_state[top]
        a = action[st, term]
        if a == 0:
            return -1, pool_n
        if pool_n >= pool_state.shape[0]:
            return -2, pool_n
        if a > 0:
            pool_state[pool_n] = a - 1
            pool_parent[pool_n] = top
            return pool_n, pool_n + 1
        r = -a - 1
        for _ in range(P.rule_len[r]):
            top = pool_parent[top]
        if top < touched[0]:
            touched[0] = top
        g = goto_after(pool_state[top], r, P)
        if g == NEED_STATE:
            return NEED_STATE, pool_n
        if g < 0:
            return -1, pool_n
        pool_state[pool_n] = g
        pool_parent[pool_n] = top
        top = pool_n
        pool_n += 1


@njit(cache=True, nogil=True)
def acceptable_terms(top, pool_state, pool_parent, P, out_words, overlay, touched):
    """Exact set of terminals the stack can shift next (LALR rows over-approximate it), as bits;
    returns 0, or NEED_STATE (the set is then incomplete)."""
    for i in range(out_words.shape[0]):
        out_words[i] = 0
    st = pool_state[top]
    for j in range(P.row_ptr[st], P.row_ptr[st + 1]):
        t = P.row_terms[j]
        ok = 1 if P.action[st, t] > 0 else can_shift(t, top, pool_state, pool_parent, P, overlay, touched)
        if ok == NEED_STATE:
            return NEED_STATE
        if ok == 1:
            out_words[t >> 6] |= np.uint64(1) << np.uint64(t & 63)
    return 0


class StackPool:
    """Scratch storage for parser stacks as parent-linked nodes; the base stack sits at 0..k-1."""

    def __init__(self, capacity: int = 4096) -> None:
        self.state = np.zeros(capacity, dtype=np.int32)
        self.parent = np.zeros(capacity, dtype=np.int32)
        self.overlay = np.zeros(OVERLAY, dtype=np.int32)
        self.touched = np.zeros(1, dtype=np.int32)  # deepest node index a kernel read
        self._loaded: tuple[int, ...] | None = None

    def grow(self) -> None:
        n = self.state.shape[0] * 2
        self.state = np.resize(self.state, n)
        self.parent = np.resize(self.parent, n)

    def load(self, stack: tuple[int, ...]) -> tuple[int, int]:
        """Place `stack` (bottom first) at the pool's base; returns (top, fill pointer)."""
        k = len(stack)
        while self.state.shape[0] < k + 1024:
            self.grow()
        if self._loaded != stack:
            self.state[:k] = stack
            self.parent[0] = -1
            self.parent[1:k] = np.arange(k - 1, dtype=np.int32)
            self._loaded = stack
        return k - 1, k

    def read(self, top: int) -> tuple[int, ...]:
        """The stack ending at node `top`, bottom first."""
        out = []
        state, parent = self.state, self.parent
        while top >= 0:
            out.append(int(state[top]))
            top = int(parent[top])
        out.reverse()
        return tuple(out)

    def invalidate(self) -> None:
        """Forget what is loaded (call after nodes at the base may have been overwritten)."""
        self._loaded = None
