"""The PDA: LALR(1) tables (built by automata/lr.py) as int arrays, and numba routines that run them.

Parser stacks live in a node pool as parent-linked lists (`pool_state[i]`, `pool_parent[i]`),
so a stack snapshot is one index and the token-trie walk can backtrack in O(1) by resetting
the pool's fill pointer. Action encoding: 0 = error, s+1 = shift to s, -(r+1) = reduce by r.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


OVERLAY = 256  # max states pushed by one simulated reduce chain (epsilon chains are short)


@dataclass
class ParserTables:
    """Integer LALR(1) tables; terminal T (=num_terms) is $END; `conflicts` lists those resolved on request."""

    terminal_names: list[str]
    nonterminal_names: list[str]
    action: np.ndarray  # int32 (S, T+1)
    goto: np.ndarray  # int32 (S, NT), -1 where undefined
    rule_len: np.ndarray  # int32 (R,)
    rule_lhs: np.ndarray  # int32 (R,)
    row_ptr: np.ndarray  # int32 (S+1,) CSR over terminals (not $END) with an action
    row_terms: np.ndarray  # int32
    start_state: int
    end_state: int
    conflicts: list[str]

    @property
    def num_terms(self) -> int:
        return len(self.terminal_names)


# --- numba routines over the tables -------------------------------------------------------


@njit(cache=True, nogil=True)
def stack_top_state(overlay, ov_n, base, pool_state):
    if ov_n > 0:
        return overlay[ov_n - 1]
    return pool_state[base]


@njit(cache=True, nogil=True)
def can_shift(term, base, pool_state, pool_parent, action, goto, rule_len, rule_lhs, end_state, overlay, touched):
    """Whether terminal `term` (or $END) is accepted by the stack at `base` after its reductions.

    Simulates without touching the pool: pushed states go to the local `overlay` array.
    For $END, True means the parser accepts. `touched[0]` records the deepest pool node read.
    """
    ov_n = 0
    while True:
        st = stack_top_state(overlay, ov_n, base, pool_state)
        a = action[st, term]
        if a == 0:
            return False
        if a > 0:
            return True
        r = -a - 1
        k = rule_len[r]
        if k <= ov_n:
            ov_n -= k
        else:
            k -= ov_n
            ov_n = 0
            for _ in range(k):
                base = pool_parent[base]
            if base < touched[0]:
                touched[0] = base
        g = goto[stack_top_state(overlay, ov_n, base, pool_state), rule_lhs[r]]
        if g < 0:
            return False
        if g == end_state:
            return term == action.shape[1] - 1
        if ov_n >= overlay.shape[0]:
            return False
        overlay[ov_n] = g
        ov_n += 1


@njit(cache=True, nogil=True)
def feed_terminal(term, top, pool_state, pool_parent, pool_n, action, goto, rule_len, rule_lhs, touched):
    """Reduce as needed and shift `term`; returns (new_top, new_pool_n), new_top = -1 on error."""
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
        for _ in range(rule_len[r]):
            top = pool_parent[top]
        if top < touched[0]:
            touched[0] = top
        g = goto[pool_state[top], rule_lhs[r]]
        if g < 0:
            return -1, pool_n
        pool_state[pool_n] = g
        pool_parent[pool_n] = top
        top = pool_n
        pool_n += 1


@njit(cache=True, nogil=True)
def acceptable_terms(top, pool_state, pool_parent, action, goto, rule_len, rule_lhs, end_state,
                     row_ptr, row_terms, out_words, overlay, touched):
    """Exact set of terminals the stack can shift next (LALR rows over-approximate it), as bits."""
    for i in range(out_words.shape[0]):
        out_words[i] = 0
    st = pool_state[top]
    for j in range(row_ptr[st], row_ptr[st + 1]):
        t = row_terms[j]
        if action[st, t] > 0 or can_shift(t, top, pool_state, pool_parent, action, goto, rule_len,
                                          rule_lhs, end_state, overlay, touched):
            out_words[t >> 6] |= np.uint64(1) << np.uint64(t & 63)


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
