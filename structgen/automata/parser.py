"""The PDA: LALR(1) tables (built by automata/lr.py) as int arrays, and numba routines that run them.

Parser stacks live in a node pool as parent-linked lists (`pool_state[i]`, `pool_parent[i]`),
so a stack snapshot is one index and the token-trie walk can backtrack in O(1) by resetting
the pool's fill pointer. Action encoding: 0 = error, s+1 = shift to s, -(r+1) = reduce by r.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .mapped import grow_mapped
from .views import ParserView, PoolView


OVERLAY = 256  # max states pushed by one simulated reduce chain (epsilon chains are short)


@dataclass
class ParserTables:
    """Integer LALR(1) tables; terminal T (=num_terms) is $END; `conflicts` lists those resolved on request.

    `goto` is sparse: an open-addressing table (`goto_keys`, `goto_vals`) from (state, nonterminal)
    keys `state * K + nonterminal` (K = nonterminals + rules); where the target depends on the rule
    reduced (a member of a constrained object, automata/objects.py) it holds GOTO_BY_RULE and the
    target is under the key `state * K + nonterminals + rule`. Rows past the automaton's own states
    are parametric states, appended as the parser reaches them (`num_states` of the action rows are
    in use)."""

    terminal_names: list[str]
    nonterminal_names: list[str]
    action: np.ndarray  # int32 (S, T+1)
    goto_keys: np.ndarray  # int64 (power of two,), -1 where empty
    goto_vals: np.ndarray  # int32
    rule_len: np.ndarray  # int32 (R,)
    rule_lhs: np.ndarray  # int32 (R,)
    row_ptr: np.ndarray  # int32 (S+1,) CSR over terminals (not $END) with an action
    row_terms: np.ndarray  # int32
    start_state: int
    end_state: int
    conflicts: list[str]
    num_states: int = -1
    need: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))  # a kernel's NEED_STATE request
    # GLR: action -(R + 1 + k) (R rules) is fork k, whose actions are fork_acts[fork_ptr[k]:fork_ptr[k + 1]]
    fork_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int32))
    fork_acts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    _maps: dict = field(default_factory=dict, repr=False)  # the mapping under `action` once reserve()d

    def __post_init__(self) -> None:
        if self.num_states < 0:
            self.num_states = int(self.action.shape[0])
        self.goto_used = int((self.goto_keys >= 0).sum())

    @property
    def glr(self) -> bool:
        """Whether some cell keeps a conflict (the runtime follows every action: automata/glr.py)."""
        return len(self.fork_ptr) > 1

    @property
    def num_terms(self) -> int:
        return len(self.terminal_names)

    @property
    def K(self) -> int:
        return len(self.nonterminal_names) + len(self.rule_len)

    def __setattr__(self, name: str, value) -> None:
        if name in _VIEWED:  # an array replaced (grown): the kept view is stale
            object.__setattr__(self, "_view", None)
        object.__setattr__(self, name, value)

    def view(self) -> ParserView:
        """The tables as the numba kernels read them; kept until one of them is replaced."""
        v = self.__dict__.get("_view")
        if v is None:
            v = ParserView(self.action, self.goto_keys, self.goto_vals, np.int64(self.K),
                           np.int32(len(self.nonterminal_names)), self.rule_len, self.rule_lhs,
                           np.int32(self.end_state), self.row_ptr, self.row_terms, self.need, self.fork_ptr,
                           self.fork_acts)
            object.__setattr__(self, "_view", v)
        return v

    def goto(self, st: int, nt: int) -> int:
        """The goto of state st on nonterminal nt (-1: none; GOTO_BY_RULE: see set_rule_goto)."""
        return int(hash_get(self.goto_keys, self.goto_vals, np.int64(st * self.K + nt)))

    def set_goto(self, st: int, nt: int, target: int) -> None:
        self._put(st * self.K + nt, target)

    def rule_goto(self, st: int, r: int) -> int:
        """The goto of state st on reducing rule r where it depends on the rule (see set_rule_goto);
        _MISSING while that parametric state is not built."""
        return int(hash_get(self.goto_keys, self.goto_vals, np.int64(st * self.K + len(self.nonterminal_names) + r)))

    def set_rule_goto(self, st: int, r: int, target: int) -> None:
        """Record the goto of state st on reducing rule r (its left side's goto is GOTO_BY_RULE)."""
        self._put(st * self.K + len(self.nonterminal_names) + r, target)

    def _put(self, key: int, target: int) -> None:
        if 2 * (self.goto_used + 1) > len(self.goto_keys):
            keys, vals = self.goto_keys, self.goto_vals
            live = keys >= 0
            self.goto_keys, self.goto_vals = sparse_table(keys[live], vals[live], 2 * (self.goto_used + 1))
        if hash_put(self.goto_keys, self.goto_vals, np.int64(key), np.int32(target)):
            self.goto_used += 1

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

    def reserve(self, rows: int) -> None:
        """Room for `rows` states, on a mapping that later growth remaps in place (no copy of the
        table: a copy of a big one, 5-40 ms, had landed in a mask call that built a state)."""
        n = self.num_states
        if rows > self.action.shape[0] or "action" not in self._maps:
            grow_mapped(self, "action", self._maps, max(rows, self.action.shape[0]), n)
        if len(self.row_ptr) < self.action.shape[0] + 1:
            self.row_ptr = np.concatenate([self.row_ptr,
                                           np.zeros(self.action.shape[0] + 1 - len(self.row_ptr), dtype=np.int32)])

    def add_state(self, copy_of: int) -> int:
        """Append a state whose action row is a copy of state `copy_of`'s (its gotos are set by the
        caller); finish_row() completes it."""
        n = self.num_states
        if n >= self.action.shape[0]:
            self.reserve(max(n + n // 2, 16))
        self.action[n] = self.action[copy_of]
        self.num_states = n + 1
        return n

    def actions(self, row: int, t: int) -> list[int]:
        """The actions of cell (row, t): none, one, or a conflict cell's (its fork entry), shift first."""
        a = int(self.action[row, t])
        n_rules = len(self.rule_len)
        if a >= -n_rules:
            return [a] if a else []
        k = -a - 1 - n_rules
        return self.fork_acts[self.fork_ptr[k]:self.fork_ptr[k + 1]].tolist()

    def set_shift(self, row: int, t: int, target: int) -> None:
        """Make the shift of cell (row, t) go to state `target`, or remove it (target -1), keeping the
        cell's other actions (in a conflict cell: a new fork entry, as entries are shared by copies)."""
        acts = ([target + 1] if target >= 0 else []) + [x for x in self.actions(row, t) if x < 0]
        if len(acts) <= 1:
            self.action[row, t] = acts[0] if acts else 0
            return
        self.fork_acts = np.concatenate([self.fork_acts, np.array(acts, dtype=np.int32)])
        self.fork_ptr = np.append(self.fork_ptr, np.int32(len(self.fork_acts)))
        self.action[row, t] = -(len(self.rule_len) + len(self.fork_ptr) - 1)

    def shift_of(self, row: int, t: int) -> int:
        """The state cell (row, t) shifts to (in a conflict cell too), or -1."""
        return next((x - 1 for x in self.actions(row, t) if x > 0), -1)

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


def sparse_table(keys: np.ndarray, vals: np.ndarray, room: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An open-addressing table (power-of-two size, at most half full) holding keys -> vals."""
    cap = 8
    while cap < 2 * max(len(keys), room):
        cap *= 2
    tk, tv = np.full(cap, -1, dtype=np.int64), np.full(cap, -1, dtype=np.int32)
    hash_put_many(tk, tv, np.ascontiguousarray(keys, dtype=np.int64), np.ascontiguousarray(vals, dtype=np.int32))
    return tk, tv


# the attributes ParserTables.view() reads: assigning one drops the kept view
_VIEWED = frozenset({"action", "goto_keys", "goto_vals", "nonterminal_names", "rule_len", "rule_lhs", "end_state",
                     "row_ptr", "row_terms", "need", "fork_ptr", "fork_acts"})


GOTO_BY_RULE = -2  # a goto whose target depends on the rule reduced (a member of a constrained object)
NEED_STATE = -3  # a parametric state that is not built yet (see ParserView)
_MISSING = -4
FORK = -5  # feed_terminal met a conflict cell: the caller follows each action (automata/glr.py)
TOO_MANY = -6  # can_shift's search over conflict cells passed GLR_MAX_STEPS
GLR_MAX_STEPS = 100_000  # reductions one can_shift may simulate across its alternatives
GLR_MAX_PENDING = 1024  # alternatives one can_shift may hold open at once


@njit(cache=True, nogil=True)
def _slot(key, mask):
    h = key ^ (key >> 17)
    h = (h * 0x2545F4914F6CDD1D) & 0x7FFFFFFFFFFFFFFF
    return (h ^ (h >> 29)) & mask


@njit(cache=True, nogil=True)
def hash_put(keys, vals, key, val):
    """Set key -> val (the table has room); True if the key is new."""
    mask = keys.shape[0] - 1
    h = _slot(key, mask)
    while keys[h] != -1 and keys[h] != key:
        h = (h + 1) & mask
    new = keys[h] == -1
    keys[h] = key
    vals[h] = val
    return new


@njit(cache=True, nogil=True)
def hash_put_many(keys, vals, ks, vs):
    for i in range(ks.shape[0]):
        hash_put(keys, vals, ks[i], vs[i])


@njit(cache=True, nogil=True)
def hash_get(keys, vals, key):
    """The value of key, or _MISSING."""
    mask = keys.shape[0] - 1
    h = _slot(key, mask)
    while keys[h] != -1:
        if keys[h] == key:
            return vals[h]
        h = (h + 1) & mask
    return _MISSING


@njit(cache=True, nogil=True)
def goto_after(st, r, P):
    """The state entered from `st` on reducing rule r: goto by its left side, or by the rule itself."""
    g = hash_get(P.goto_keys, P.goto_vals, np.int64(st) * P.K + P.rule_lhs[r])
    if g == _MISSING:
        return -1
    if g != GOTO_BY_RULE:
        return g
    g = hash_get(P.goto_keys, P.goto_vals, np.int64(st) * P.K + P.n_nonterminals + r)
    if g == _MISSING:
        P.need[0] = st
        P.need[1] = r
        return NEED_STATE
    return g


@njit(cache=True, nogil=True)
def stack_top_state(overlay, ov_n, base, pool_state):
    if ov_n > 0:
        return overlay[ov_n - 1]
    return pool_state[base]


@njit(cache=True, nogil=True)
def reduce_on_overlay(r, base, ov_n, overlay, pool, P):
    """Simulate reducing rule r on the stack at pool node `base` with ov_n states pushed on it in
    `overlay`: (base, ov_n, the state entered: goto_after's answer). Records the deepest node read."""
    k = P.rule_len[r]
    if k <= ov_n:
        ov_n -= k
    else:
        k -= ov_n
        ov_n = 0
        for _ in range(k):
            base = pool.parent[base]
        if base < pool.touched[0]:
            pool.touched[0] = base
    return base, ov_n, goto_after(stack_top_state(overlay, ov_n, base, pool.state), r, P)


@njit(cache=True, nogil=True)
def can_shift(term, base, pool, P):
    """Whether terminal `term` (or $END) is accepted by the stack at `base` after its reductions:
    1 yes, 0 no, NEED_STATE when a parametric state must be built first, TOO_MANY past the GLR
    search budget.

    Simulates without touching the pool: pushed states go to its `overlay` scratch array.
    For $END, 1 means the parser accepts. `pool.touched[0]` records the deepest pool node read.
    A conflict cell (GLR) is searched depth first: its other actions wait as choice points
    (the stack position and a copy of the overlay), taken when the current path dies.
    """
    pool_state, overlay = pool.state, pool.overlay
    action = P.action
    n_rules = P.rule_len.shape[0]
    end_col = action.shape[1] - 1
    ov_n = 0
    n_cp = 0
    # choice points: (stack node, overlay length, action, where its overlay copy starts in cp_ov);
    # the copies are stacked in cp_ov (last in, first out), which grows as needed
    cp = np.empty((0, 4), dtype=np.int32)
    cp_ov = np.empty(0, dtype=np.int32)
    ov_fill = 0
    steps = 0
    a = 0
    while True:
        if a == 0:
            st = stack_top_state(overlay, ov_n, base, pool_state)
            a = action[st, term]
            if a < -n_rules:  # a conflict: take the first action, keep the others
                k = -a - 1 - n_rules
                lo, hi = P.fork_ptr[k], P.fork_ptr[k + 1]
                if n_cp + hi - lo > cp.shape[0]:
                    if n_cp + hi - lo > GLR_MAX_PENDING:
                        return TOO_MANY
                    grown = np.empty((max(16, 2 * (n_cp + hi - lo)), 4), dtype=np.int32)
                    grown[:n_cp] = cp[:n_cp]
                    cp = grown
                if ov_fill + ov_n > cp_ov.shape[0]:
                    grown_ov = np.empty(max(64, 2 * (ov_fill + ov_n)), dtype=np.int32)
                    grown_ov[:ov_fill] = cp_ov[:ov_fill]
                    cp_ov = grown_ov
                for x in range(ov_n):  # one copy serves this cell's other actions
                    cp_ov[ov_fill + x] = overlay[x]
                for j in range(hi - 1, lo, -1):
                    cp[n_cp, 0] = base
                    cp[n_cp, 1] = ov_n
                    cp[n_cp, 2] = P.fork_acts[j]
                    cp[n_cp, 3] = ov_fill
                    n_cp += 1
                ov_fill += ov_n
                a = P.fork_acts[lo]
        dead = False
        if a == 0:
            dead = True
        elif a > 0:
            return 1
        else:
            steps += 1
            if steps > GLR_MAX_STEPS:
                return TOO_MANY
            base, ov_n, g = reduce_on_overlay(-a - 1, base, ov_n, overlay, pool, P)
            if g == NEED_STATE:
                return NEED_STATE
            if g < 0:
                dead = True
            elif g == P.end_state:
                if term == end_col:
                    return 1
                dead = True
            elif ov_n >= overlay.shape[0]:
                dead = True
            else:
                overlay[ov_n] = g
                ov_n += 1
        a = 0
        if dead:
            if n_cp == 0:
                return 0
            n_cp -= 1
            base = cp[n_cp, 0]
            ov_n = cp[n_cp, 1]
            ov_fill = cp[n_cp, 3]
            for x in range(ov_n):
                overlay[x] = cp_ov[ov_fill + x]
            if n_cp > 0 and cp[n_cp - 1, 3] == ov_fill:  # the copy serves another action of the cell
                ov_fill += ov_n
            a = cp[n_cp, 2]


@njit(cache=True, nogil=True)
def feed_terminal(term, top, pool_n, pool, P):
    """Reduce as needed and shift `term`; returns (new_top, new_pool_n), new_top = -1 on error,
    -2 when the pool is full, NEED_STATE when a parametric state must be built first, FORK at a
    conflict cell (the pool above new_pool_n is scratch then; glr.py follows every action)."""
    pool_state, pool_parent, touched = pool.state, pool.parent, pool.touched
    action = P.action
    n_rules = P.rule_len.shape[0]
    while True:
        st = pool_state[top]
        a = action[st, term]
        if a == 0:
            return -1, pool_n
        if a < -n_rules:
            return FORK, pool_n
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
def acceptable_terms(top, pool, P, out_words):
    """Exact set of terminals the stack can shift next (LALR rows over-approximate it), as bits;
    returns 0, or NEED_STATE / TOO_MANY (the set is then incomplete). Not $END: the set picks the
    next lexeme's DFA, and whether the output may stop is can_end's question (its reductions run
    down to the start state, and a mask memoized by the stack states read would then be keyed by
    the whole stack).

    can_shift for every terminal of the top state's row at once: terminals that take the same
    reduction share its simulation (a state's default reduction is done once, not once per
    terminal), and each action of a conflict cell is followed (GLR). Pushed states go to the
    pool's overlay; `pool.touched[0]` records the deepest pool node read."""
    for i in range(out_words.shape[0]):
        out_words[i] = 0
    pool_state, overlay = pool.state, pool.overlay
    action = P.action
    n_rules = P.rule_len.shape[0]
    end_col = action.shape[1] - 1
    st = pool_state[top]
    lo, hi = P.row_ptr[st], P.row_ptr[st + 1]
    terms = np.empty(max(64, 4 * (hi - lo)), dtype=np.int32)  # the row's, then each item's subset
    n_t = 0
    for j in range(lo, hi):
        t = P.row_terms[j]
        if t == end_col:
            continue
        if action[st, t] > 0:
            out_words[t >> 6] |= np.uint64(1) << np.uint64(t & 63)
        else:
            terms[n_t] = t
            n_t += 1
    if n_t == 0:
        return 0
    # work items: (stack node, overlay length, its copy's start in ovs, rule to reduce first, terms lo, hi)
    work = np.empty((16, 6), dtype=np.int32)
    ovs = np.empty(64, dtype=np.int32)
    n_ovs = 0
    pairs = np.empty((2 * n_t, 2), dtype=np.int32)  # (rule, term) of one state's reductions
    steps = 0
    # the first item evaluates the top state itself (rule -1: no reduction first)
    work[0, 0], work[0, 1], work[0, 2], work[0, 3], work[0, 4], work[0, 5] = top, 0, 0, -1, 0, n_t
    n_w = 1
    while n_w > 0:
        n_w -= 1
        base, ov_n, ov_at, r = work[n_w, 0], work[n_w, 1], work[n_w, 2], work[n_w, 3]
        t_lo, t_hi = work[n_w, 4], work[n_w, 5]
        for x in range(ov_n):
            overlay[x] = ovs[ov_at + x]
        if r >= 0:  # reduce r on this stack, then look at the state it enters
            steps += 1
            if steps > GLR_MAX_STEPS:
                return TOO_MANY
            base, ov_n, g = reduce_on_overlay(r, base, ov_n, overlay, pool, P)
            if g == NEED_STATE:
                return NEED_STATE
            if g < 0 or g == P.end_state:  # (the end state shifts $END only)
                continue
            if ov_n >= overlay.shape[0]:
                continue
            overlay[ov_n] = g
            ov_n += 1
        st = stack_top_state(overlay, ov_n, base, pool_state)
        n_p = 0
        for x in range(t_lo, t_hi):
            t = terms[x]
            if out_words[t >> 6] & (np.uint64(1) << np.uint64(t & 63)):
                continue  # accepted along another path
            a = action[st, t]
            j0, j1 = -1, 0  # one action, or (a conflict) every action of its fork entry
            if a < -n_rules:
                f = -a - 1 - n_rules
                j0, j1 = P.fork_ptr[f], P.fork_ptr[f + 1]
            for j in range(j0, j1):
                b = a if j < 0 else P.fork_acts[j]
                if b > 0:
                    out_words[t >> 6] |= np.uint64(1) << np.uint64(t & 63)
                elif b < 0:
                    if n_p >= pairs.shape[0]:
                        grown = np.empty((2 * pairs.shape[0], 2), dtype=np.int32)
                        grown[:n_p] = pairs[:n_p]
                        pairs = grown
                    pairs[n_p, 0] = -b - 1
                    pairs[n_p, 1] = t
                    n_p += 1
        if n_p == 0:
            continue
        if n_ovs + ov_n > ovs.shape[0]:  # this stack's overlay, shared by the items below
            grown_ovs = np.empty(2 * (n_ovs + ov_n), dtype=np.int32)
            grown_ovs[:n_ovs] = ovs[:n_ovs]
            ovs = grown_ovs
        for x in range(ov_n):
            ovs[n_ovs + x] = overlay[x]
        at = n_ovs
        n_ovs += ov_n
        for x in range(n_p):  # one item per distinct rule, with the terms that reduce by it
            r = pairs[x, 0]
            if r < 0:
                continue
            if n_w >= work.shape[0]:
                if n_w >= GLR_MAX_PENDING:
                    return TOO_MANY
                grown_w = np.empty((2 * work.shape[0], 6), dtype=np.int32)
                grown_w[:n_w] = work[:n_w]
                work = grown_w
            start = n_t
            for y in range(x, n_p):
                if pairs[y, 0] == r:
                    if n_t >= terms.shape[0]:
                        grown_t = np.empty(2 * terms.shape[0], dtype=np.int32)
                        grown_t[:n_t] = terms[:n_t]
                        terms = grown_t
                    terms[n_t] = pairs[y, 1]
                    n_t += 1
                    if y > x:
                        pairs[y, 0] = -1
            work[n_w, 0], work[n_w, 1], work[n_w, 2], work[n_w, 3] = base, ov_n, at, r
            work[n_w, 4], work[n_w, 5] = start, n_t
            n_w += 1
    return 0


class StackPool:
    """Scratch storage for parser stacks as parent-linked nodes; the base stack sits at 0..k-1."""

    def __init__(self, capacity: int = 4096) -> None:
        self.state = np.zeros(capacity, dtype=np.int32)
        self.parent = np.zeros(capacity, dtype=np.int32)
        self.overlay = np.zeros(OVERLAY, dtype=np.int32)
        self.touched = np.zeros(1, dtype=np.int32)  # deepest node index a kernel read
        self._loaded: tuple[int, ...] | None = None
        self._view: PoolView | None = None

    def view(self) -> PoolView:
        """The pool as the numba kernels read it; kept until the pool grows."""
        v = self._view
        if v is None:
            v = self._view = PoolView(self.state, self.parent, self.overlay, self.touched)
        return v

    def grow(self) -> None:
        self.reserve(2 * self.state.shape[0])

    def reserve(self, n: int) -> None:
        """Room for at least n nodes, in one allocation (a power-of-two multiple of the capacity)."""
        cap = self.state.shape[0]
        if cap >= n:
            return
        while cap < n:
            cap *= 2
        self._view = None
        for name in ("state", "parent"):
            old = getattr(self, name)
            new = np.empty(cap, dtype=np.int32)
            new[:len(old)] = old
            setattr(self, name, new)

    def load(self, stack: tuple[int, ...]) -> tuple[int, int]:
        """Place `stack` (bottom first) at the pool's base; returns (top, fill pointer)."""
        k = len(stack)
        self.reserve(k + 1024)
        if self._loaded != stack:
            self.state[:k] = stack
            self.parent[0] = -1
            self.parent[1:k] = np.arange(k - 1, dtype=np.int32)
            self._loaded = stack
        return k - 1, k

    def read(self, top: int) -> tuple[int, ...]:
        """The stack ending at node `top`, bottom first. Where the walk reaches the loaded stack's
        nodes, the rest is that stack's prefix (a slice): a token's result reads only its new nodes."""
        base = self._loaded
        k = len(base) if base is not None else 0
        out = []
        state, parent = self.state, self.parent
        while top >= k:
            out.append(int(state[top]))
            top = int(parent[top])
        out.reverse()
        if top < 0:
            return tuple(out)
        return base[:top + 1] + tuple(out) if out else base[:top + 1]

    def invalidate(self) -> None:
        """Forget what is loaded (call after nodes at the base may have been overwritten)."""
        self._loaded = None
