"""Parser configurations of a mask walk (maskstore/walk.py): copies, equality, an index, and GLR forks.

A configuration is a parser stack in the stack pool reached by ending lexemes inside a walk; equal
stacks are one configuration (found through an index by top states), so lexeme ends and forks
memoized for it are shared by every trie node that reaches it. At a conflict cell (GLR), or where a
lexeme ends in a lexer tie (several terminals, automata/lexer.py), `fork` follows every action of
every terminal into the walk's fork region and `add_tasks` queues each resulting stack at its trie
node, once per distinct stack.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..automata.lexer_index import lookup_set
from ..automata.parser import GLR_MAX_STEPS, NEED_STATE, TOO_MANY, acceptable_terms, goto_after
from ..automata.step import GLR_LIMIT, NEED_DFA, NEED_LR, OK, POOL_FULL


@njit(cache=True, nogil=True)
def copy_config(t2, floor, res_n, res_end, pool):
    """Copy the stack nodes above `floor` ending at t2 into the reserved pool region.

    Returns (new top, new reserved fill pointer), or (-1, res_n) if the region is full.
    """
    pool_state, pool_parent = pool.state, pool.parent
    k = 0
    x = t2
    while x >= floor:
        k += 1
        x = pool_parent[x]
    if res_n + k > res_end:
        return -1, res_n
    below = x
    # nodes are written bottom-up so each parent index is known when its child is copied
    x = t2
    for j in range(k - 1, -1, -1):
        pool_state[res_n + j] = pool_state[x]
        x = pool_parent[x]
    for j in range(k):
        pool_parent[res_n + j] = below if j == 0 else res_n + j - 1
    return res_n + k - 1, res_n + k


@njit(cache=True, nogil=True)
def same_stack(a, b, base_n, pool):
    """Whether the stacks at pool nodes a and b have the same states (compared top down until they
    share a node; two distinct nodes of the loaded stack, below base_n, count as different)."""
    pool_state, pool_parent = pool.state, pool.parent
    while a != b:
        if (a < base_n and b < base_n) or pool_state[a] != pool_state[b]:
            return False
        a, b = pool_parent[a], pool_parent[b]
        if a < 0 or b < 0:
            return a == b
    return True


@njit(cache=True, nogil=True)
def config_slot(kt, pool, mask):
    """The hash slot of a stack by its top three states."""
    pool_state, pool_parent = pool.state, pool.parent
    h = np.int64(pool_state[kt]) * 1000003
    p = pool_parent[kt]
    if p >= 0:
        h = (h ^ pool_state[p]) * 1000003
        q = pool_parent[p]
        if q >= 0:
            h = (h ^ pool_state[q]) * 1000003
    return (h ^ (h >> 17)) & mask


@njit(cache=True, nogil=True)
def same_config(kt, cfgs, base_n, pool):
    """A memoized configuration whose stack has the same states as the one at node kt, or -1 (not
    configuration 0, the loaded stack: no lexeme starts there, its entries start mid-lexeme).
    Configurations are indexed by their top three states (cfgs.head: slot -> latest, cfgs.next)."""
    j = cfgs.head[config_slot(kt, pool, cfgs.head.shape[0] - 1)]
    while j >= 0:
        if j > 0 and same_stack(kt, cfgs.top[j], base_n, pool):
            return j
        j = cfgs.next[j]
    return -1


@njit(cache=True, nogil=True)
def index_config(j, cfgs, pool):
    """Add configuration j (its top node set) to the index same_config reads."""
    slot = config_slot(cfgs.top[j], pool, cfgs.head.shape[0] - 1)
    cfgs.next[j] = cfgs.head[slot]
    cfgs.head[slot] = j


@njit(cache=True, nogil=True)
def fork(ls, t2, base_n, W, pool, P, L, words):
    """Follow every action of a conflict cell (GLR) for the terminal that ends the lexeme of lexer
    state ls, or for each of its tie set (L.tie), from the stack at t2: the stacks that shift it
    (the stack itself for an ignored terminal), with the lexer state that starts the next lexeme
    after each, are appended to the results table (W.tasks.results, rows prog[4] .., prog =
    W.progress); returns (status, first row, end row). The stacks live in the fork region of the
    pool (prog[3] .. prog[6]; t2's nodes above the loaded stack are copied there first), which the
    walk never reuses. Status: OK, NEED_DFA / POOL_FULL / NEED_LR (nothing kept; call again),
    GLR_LIMIT (too many reductions, or a full table)."""
    prog = W.progress
    region_end = prog[6]
    fill = prog[3]
    start = t2
    if t2 >= base_n:
        start, fill = copy_config(t2, base_n, fill, region_end - 64, pool)
        if start < 0:
            return POOL_FULL, 0, 0
    res = np.empty(64, dtype=np.int32)
    n_res = 0
    steps = 0
    k_tie = L.tie[ls]
    t_lo, t_hi = -1, 0  # one terminal: accept_term[ls]
    if k_tie != 0:
        t_lo, t_hi = L.tie_ptr[k_tie - 1], L.tie_ptr[k_tie]
    for ti in range(t_lo, t_hi):
        term = L.accept_term[ls] if ti < 0 else L.tie_terms[ti]
        if L.is_ignore[term]:  # the stack as it is (the next lexeme starts in its DFA again)
            dup = False
            for j in range(n_res):
                if res[j] == start:
                    dup = True
            if not dup:
                res[n_res] = start
                n_res += 1
            continue
        st, fill, n_res, steps = _fork_term(term, start, fill, region_end, res, n_res, steps, (pool, P))
        if st != OK:
            return st, 0, 0
    # the lexer state each result starts its next lexeme in; all DFAs exist before any is kept
    fres = W.tasks.results
    lo = prog[4]
    if lo + n_res > fres.shape[0]:
        return GLR_LIMIT, 0, 0
    for j in range(n_res):
        got = acceptable_terms(res[j], pool, P, words)
        if got == TOO_MANY:
            return GLR_LIMIT, 0, 0
        if got == NEED_STATE:
            return NEED_LR, 0, 0
        d = lookup_set(words, L.ht_keys, L.ht_vals)
        if d < 0:
            return NEED_DFA, 0, 0
        fres[lo + j, 0] = L.dfa_start[d]
        fres[lo + j, 1] = res[j]
    prog[4] = lo + n_res
    prog[3] = fill
    return OK, lo, lo + n_res


@njit(cache=True, nogil=True)
def _fork_term(term, start, fill, region_end, res, n_res, steps, tables):
    """fork's search for one terminal from the stack at `start`: the stacks that shift it, added
    to res[n_res:] (new nodes from `fill` on); returns (status, fill, n_res, steps)."""
    pool, P = tables
    pool_state, pool_parent = pool.state, pool.parent
    action = P.action
    n_rules = P.rule_len.shape[0]
    cp_node = np.empty(256, dtype=np.int32)
    cp_act = np.empty(256, dtype=np.int32)
    cp_node[0] = start
    cp_act[0] = 0
    n_cp = 1
    while n_cp > 0:
        n_cp -= 1
        x = cp_node[n_cp]
        a = cp_act[n_cp]
        if a == 0:
            a = action[pool_state[x], term]
            if a < -n_rules:
                f = -a - 1 - n_rules
                lo, hi = P.fork_ptr[f], P.fork_ptr[f + 1]
                if n_cp + hi - lo > cp_node.shape[0]:
                    return GLR_LIMIT, fill, n_res, steps
                for j in range(hi - 1, lo - 1, -1):
                    cp_node[n_cp] = x
                    cp_act[n_cp] = P.fork_acts[j]
                    n_cp += 1
                continue
            if a == 0:
                continue
        if fill + 1 > region_end:
            return POOL_FULL, fill, n_res, steps
        if a > 0:
            pool_state[fill] = a - 1
            pool_parent[fill] = x
            dup = False
            for j in range(n_res):
                if pool_state[res[j]] == a - 1 and pool_parent[res[j]] == x:
                    dup = True
            if not dup:
                if n_res >= res.shape[0]:
                    return GLR_LIMIT, fill, n_res, steps
                res[n_res] = fill
                n_res += 1
                fill += 1
            continue
        steps += 1
        if steps > GLR_MAX_STEPS:
            return GLR_LIMIT, fill, n_res, steps
        r = -a - 1
        y = x
        for _ in range(P.rule_len[r]):
            y = pool_parent[y]
        if y < pool.touched[0]:  # the deepest node of the loaded stack read (mask memo keys)
            pool.touched[0] = y
        g = goto_after(pool_state[y], r, P)
        if g == NEED_STATE:
            return NEED_LR, fill, n_res, steps
        if g < 0:
            continue
        pool_state[fill] = g
        pool_parent[fill] = y
        if n_cp >= cp_node.shape[0]:
            return GLR_LIMIT, fill, n_res, steps
        cp_node[n_cp] = fill
        cp_act[n_cp] = 0
        n_cp += 1
        fill += 1
    return OK, fill, n_res, steps


@njit(cache=True, nogil=True)
def add_tasks(i, lo, hi, base_n, W, pool):
    """Tasks at trie node i for the fork results lo .. hi-1 (a result whose stack a task at node i
    already has, reached by another path, is not repeated); False if the task table is full."""
    prog = W.progress
    table, head, fres = W.tasks.table, W.tasks.head, W.tasks.results
    if prog[2] + hi - lo > table.shape[0]:
        return False
    for j in range(lo, hi):
        t = head[i]
        while t >= 0 and not (table[t, 1] == fres[j, 0] and same_stack(table[t, 2], fres[j, 1], base_n, pool)):
            t = table[t, 3]
        if t >= 0:
            continue
        t = prog[2]
        table[t, 0] = i
        table[t, 1] = fres[j, 0]
        table[t, 2] = fres[j, 1]
        table[t, 3] = head[i]
        head[i] = t
        prog[2] = t + 1
        table[prog[1], 4] = t  # queued: column 4's first prog[1] rows are the tasks left, latest last
        prog[1] += 1
    return True
