"""The numba passes of our LR construction (automata/lr.py): the LR(0) states as CSR arrays,
DeRemer & Pennello's LALR(1) lookaheads as bitset rows, and the action cells with the conflicts
listed for lr.py to settle or keep."""

from __future__ import annotations

import numpy as np
from numba import njit

from .views import LR0View, RulesView


@njit(cache=True, nogil=True)
def _grown(a, need):
    """a, or a copy with at least `need` entries (doubling)."""
    if need <= a.shape[0]:
        return a
    n = max(need, 2 * a.shape[0])
    out = np.empty(n, dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _kernel_hash(items, a, b):
    h = np.uint64(1469598103934665603)
    for i in range(a, b):
        h = (h ^ np.uint64(items[i] + 1)) * np.uint64(1099511628211)
    return h


@njit(cache=True, nogil=True)
def _lr0_states(R, start_item, max_states):
    """The LR(0) automaton: states numbered by discovery (0 the start), each a kernel (sorted item
    list), its transitions sorted by symbol and its reduce rules (kernel items first, then the
    empty rules its closure predicts). Returns the count (-1 past max_states) and the CSR arrays
    (kernel, transition and reduce pointers and contents)."""
    item_sym, item_rule, base, _, rof_ptr, rof_rules, nt0 = RulesView(*R)
    n_items = item_sym.shape[0]
    n_nts = rof_ptr.shape[0] - 1
    kptr = np.zeros(65, dtype=np.int64)
    kitems = np.empty(256, dtype=np.int32)
    hashes = np.empty(64, dtype=np.uint64)
    tptr = np.zeros(65, dtype=np.int64)
    tsym = np.empty(256, dtype=np.int32)
    ttgt = np.empty(256, dtype=np.int32)
    rptr = np.zeros(65, dtype=np.int64)
    rrule = np.empty(64, dtype=np.int32)
    cap = 128
    slots = np.full(cap, -1, dtype=np.int32)
    stamp = np.zeros(n_nts, dtype=np.int64)
    work = np.empty(n_items + 1, dtype=np.int32)  # a state's items: kernel, then closure
    keys = np.empty(n_items + 1, dtype=np.int64)
    kitems[0] = start_item
    kptr[1] = 1
    hashes[0] = _kernel_hash(kitems, 0, 1)
    slots[np.int64(hashes[0] & np.uint64(cap - 1))] = 0
    n = 1
    i = 0
    while i < n:
        nk = 0
        nr = rptr[i]
        rrule = _grown(rrule, nr + rof_rules.shape[0] + (kptr[i + 1] - kptr[i]))
        todo = kptr[i + 1] - kptr[i]  # the kernel's items, then those of the rules it predicts, in order
        work[:todo] = kitems[kptr[i]:kptr[i + 1]]
        q = 0
        while q < todo:
            it = work[q]
            q += 1
            x = item_sym[it]
            if x < 0:
                rrule[nr] = item_rule[it]
                nr += 1
                continue
            keys[nk] = np.int64(x) * n_items + it + 1
            nk += 1
            if x >= nt0 and stamp[x - nt0] != i + 1:  # the closure: x's rules, once per state
                stamp[x - nt0] = i + 1
                for e in range(rof_ptr[x - nt0], rof_ptr[x - nt0 + 1]):
                    work[todo] = base[rof_rules[e]]
                    todo += 1
        rptr = _grown(rptr, i + 2)
        rptr[i + 1] = nr
        srt = np.sort(keys[:nk])
        nt = tptr[i]
        tsym = _grown(tsym, nt + nk)
        ttgt = _grown(ttgt, nt + nk)
        g = 0
        while g < nk:  # one target kernel per symbol: its items, already sorted
            x = srt[g] // n_items
            h = g
            while h < nk and srt[h] // n_items == x:
                h += 1
            kb = kptr[n]
            kitems = _grown(kitems, kb + (h - g))
            for u in range(g, h):
                kitems[kb + u - g] = srt[u] % n_items
            hv = _kernel_hash(kitems, kb, kb + (h - g))
            s = np.int64(hv & np.uint64(cap - 1))
            found = -1
            while slots[s] >= 0:
                c = slots[s]
                if hashes[c] == hv and kptr[c + 1] - kptr[c] == h - g:
                    same = True
                    for u in range(h - g):
                        if kitems[kptr[c] + u] != kitems[kb + u]:
                            same = False
                            break
                    if same:
                        found = c
                        break
                s = (s + 1) & (cap - 1)
            if found < 0:
                if n >= max_states:
                    return -1, kptr, kitems, tptr, tsym, ttgt, rptr, rrule
                found = n
                slots[s] = n
                hashes = _grown(hashes, n + 1)
                hashes[n] = hv
                kptr = _grown(kptr, n + 2)
                kptr[n + 1] = kb + (h - g)
                n += 1
                if 2 * n > cap:  # keep the table at most half full
                    cap *= 2
                    slots = np.full(cap, -1, dtype=np.int32)
                    for c in range(n):
                        s2 = np.int64(hashes[c] & np.uint64(cap - 1))
                        while slots[s2] >= 0:
                            s2 = (s2 + 1) & (cap - 1)
                        slots[s2] = c
            tsym[nt] = x
            ttgt[nt] = found
            nt += 1
            g = h
        tptr = _grown(tptr, i + 2)
        tptr[i + 1] = nt
        i += 1
    return (n, kptr[:n + 1], kitems[:kptr[n]], tptr[:n + 1], tsym[:tptr[n]], ttgt[:tptr[n]], rptr[:n + 1],
            rrule[:rptr[n]])


@njit(cache=True, nogil=True)
def _edge(tptr, tsym, p, x):
    """The index of state p's transition on symbol x (transitions sorted by symbol), or -1."""
    lo, hi = tptr[p], tptr[p + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if tsym[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < tptr[p + 1] and tsym[lo] == x else -1


@njit(cache=True, nogil=True)
def _csr(src, dst, n):
    """CSR (ptr, targets) of the pairs src[i] -> dst[i] over n sources, in pair order per source."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(src.shape[0]):
        ptr[src[i] + 1] += 1
    for i in range(n):
        ptr[i + 1] += ptr[i]
    fill = ptr[:n].copy()
    out = np.empty(src.shape[0], dtype=np.int32)
    for i in range(src.shape[0]):
        out[fill[src[i]]] = dst[i]
        fill[src[i]] += 1
    return ptr, out


@njit(cache=True, nogil=True)
def _digraph_bits(ptr, rel, f):
    """F(x) = f(x) ∪ ⋃ F(y) for x rel y (rel as CSR), in place on the bitset rows f: DeRemer &
    Pennello's Digraph, iteratively, every member of a cycle getting the union of its SCC."""
    n, w = f.shape
    inf = np.int64(1) << 62
    mark = np.zeros(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int32)
    top = 0
    fnode = np.empty(n, dtype=np.int32)
    fedge = np.empty(n, dtype=np.int64)
    fdepth = np.empty(n, dtype=np.int64)
    for x0 in range(n):
        if mark[x0] != 0:
            continue
        if ptr[x0] == ptr[x0 + 1]:
            mark[x0] = inf
            continue
        stack[top] = x0
        top += 1
        mark[x0] = top
        nf = 1
        fnode[0], fedge[0], fdepth[0] = x0, ptr[x0], top
        while nf > 0:
            x = fnode[nf - 1]
            e = fedge[nf - 1]
            if e < ptr[x + 1]:
                fedge[nf - 1] = e + 1
                y = rel[e]
                if mark[y] == 0:
                    stack[top] = y
                    top += 1
                    mark[y] = top
                    fnode[nf], fedge[nf], fdepth[nf] = y, ptr[y], top
                    nf += 1
                    continue
                if mark[y] < mark[x]:
                    mark[x] = mark[y]
                for k in range(w):
                    f[x, k] |= f[y, k]
                continue
            nf -= 1
            if mark[x] == fdepth[nf]:  # x is the root of an SCC: everything above it shares its set
                while True:
                    top -= 1
                    y = stack[top]
                    mark[y] = inf
                    if y != x:
                        for k in range(w):
                            f[y, k] = f[x, k]
                    if y == x:
                        break
            if nf > 0:  # back in the parent: fold x in
                px = fnode[nf - 1]
                if mark[x] < mark[px]:
                    mark[px] = mark[x]
                for k in range(w):
                    f[px, k] |= f[x, k]
    return f


@njit(cache=True, nogil=True)
def _lalr_lookaheads(A, R, n_terms, lhs, n_nt):
    """LA(q, A -> ω) for every reduce entry of every state (the rows of rrule), as bitsets over the
    terminals (bit n_terms is $END): DeRemer & Pennello's Read = DR ∪ reads*, Follow = Read ∪
    includes*, LA = ∪ Follow over the lookback transitions. (lhs: each rule's left side.)"""
    nullable, null_from = _nullable(R, lhs, n_nt)  # here, not a kernel of its own: one less to load
    tptr, tsym, ttgt, rptr, rrule = LR0View(*A)
    item_sym, _, base, rule_len, rof_ptr, rof_rules, nt0 = RulesView(*R)
    n_states = tptr.shape[0] - 1
    n_edges = tsym.shape[0]
    w = (n_terms + 1 + 63) // 64
    xid = np.full(n_edges, -1, dtype=np.int32)  # nonterminal transitions, numbered in edge order
    nx = 0
    for e in range(n_edges):
        if tsym[e] >= nt0:
            xid[e] = nx
            nx += 1
    x_state = np.empty(nx, dtype=np.int32)
    x_edge = np.empty(nx, dtype=np.int64)
    for p in range(n_states):
        for e in range(tptr[p], tptr[p + 1]):
            if xid[e] >= 0:
                x_state[xid[e]] = p
                x_edge[xid[e]] = e
    f = np.zeros((nx, w), dtype=np.uint64)  # DR, then Read, then Follow
    n_reads = 0
    for x in range(nx):
        q = ttgt[x_edge[x]]
        for e in range(tptr[q], tptr[q + 1]):
            s = tsym[e]
            if s < nt0:
                f[x, s >> 6] |= np.uint64(1) << np.uint64(s & 63)
            elif nullable[s - nt0]:
                n_reads += 1
    rs, rd = np.empty(n_reads, dtype=np.int64), np.empty(n_reads, dtype=np.int64)
    k = 0
    for x in range(nx):
        q = ttgt[x_edge[x]]
        for e in range(tptr[q], tptr[q + 1]):
            s = tsym[e]
            if s >= nt0 and nullable[s - nt0]:
                rs[k], rd[k] = x, xid[e]
                k += 1
    ptr, rel = _csr(rs, rd, nx)
    _digraph_bits(ptr, rel, f)
    # includes and lookback: walk each rule B -> beta from every p with a transition on B
    inc_s = np.empty(16, dtype=np.int64)
    inc_d = np.empty(16, dtype=np.int64)
    ni = 0
    lb_red = np.empty(16, dtype=np.int64)  # reduce entry (row of rrule) -> the transition x
    lb_x = np.empty(16, dtype=np.int64)
    nl = 0
    for x in range(nx):
        p = x_state[x]
        b = tsym[x_edge[x]] - nt0
        for j in range(rof_ptr[b], rof_ptr[b + 1]):
            r = rof_rules[j]
            st = p
            for i in range(base[r], base[r] + rule_len[r]):
                s = item_sym[i]
                e = _edge(tptr, tsym, st, s)
                if s >= nt0 and i - base[r] + 1 >= null_from[r]:
                    inc_s = _grown(inc_s, ni + 1)
                    inc_d = _grown(inc_d, ni + 1)
                    inc_s[ni], inc_d[ni] = xid[e], x
                    ni += 1
                st = ttgt[e]
            for red in range(rptr[st], rptr[st + 1]):
                if rrule[red] == r:
                    lb_red = _grown(lb_red, nl + 1)
                    lb_x = _grown(lb_x, nl + 1)
                    lb_red[nl], lb_x[nl] = red, x
                    nl += 1
                    break
    ptr, rel = _csr(inc_s[:ni], inc_d[:ni], nx)
    _digraph_bits(ptr, rel, f)
    la = np.zeros((rrule.shape[0], w), dtype=np.uint64)
    for i in range(nl):
        for u in range(w):
            la[lb_red[i], u] |= f[lb_x[i], u]
    return la


_UNSETTLED = np.int32(-(1 << 30))  # a conflict cell with no action yet (see _action_cells)


@njit(cache=True, nogil=True)
def _action_cells(A, la, nt0, action):
    """Fill the zeroed action table (S, T+1): shifts s+1 and reductions -(r+1) where a cell has
    one action; the cells with several (a shift and reductions, or reductions) are returned
    (state, terminal) with their shift (or 0) left in the table, for the caller to settle or keep.
    Also the terminals (not $END) with an action in each row, as CSR (row_ptr, terms; conflict
    cells counted in: settled, they hold an action), read off the rows once filled."""
    tptr, tsym, ttgt, rptr, rrule = LR0View(*A)
    n_states = tptr.shape[0] - 1
    n_terms = action.shape[1] - 1
    count = np.zeros(n_terms + 1, dtype=np.int32)
    conf = np.empty(16, dtype=np.int64)
    nc = 0
    for p in range(n_states):
        for e in range(tptr[p], tptr[p + 1]):
            if tsym[e] < nt0:
                action[p, tsym[e]] = ttgt[e] + 1
        if rptr[p] == rptr[p + 1]:
            continue
        for t in range(n_terms + 1):
            count[t] = 1 if action[p, t] > 0 else 0
        for red in range(rptr[p], rptr[p + 1]):
            for u in range(la.shape[1]):
                word = la[red, u]
                while word:
                    low = word & (~word + np.uint64(1))
                    t = u * 64
                    bit = low
                    while bit > np.uint64(1):
                        bit >>= np.uint64(1)
                        t += 1
                    word ^= low
                    count[t] += 1
                    if count[t] == 1:
                        action[p, t] = -(rrule[red] + 1)
                    elif count[t] == 2:
                        if action[p, t] < 0:
                            action[p, t] = 0
                        conf = _grown(conf, 2 * nc + 2)
                        conf[2 * nc], conf[2 * nc + 1] = p, t
                        nc += 1
    conf = conf[:2 * nc]
    for i in range(nc):  # a reduce/reduce cell left 0 for now: marked, so the count sees it
        if action[conf[2 * i], conf[2 * i + 1]] == 0:
            action[conf[2 * i], conf[2 * i + 1]] = _UNSETTLED
    row_ptr, terms = _row_terms(action, n_terms)
    for i in range(nc):
        if action[conf[2 * i], conf[2 * i + 1]] == _UNSETTLED:
            action[conf[2 * i], conf[2 * i + 1]] = 0
    return conf.reshape(nc, 2), row_ptr, terms


@njit(cache=True, nogil=True)
def _row_terms(action, n_terms):
    """The terminals (not $END) with a nonzero cell in each state's row, as CSR (row_ptr, terms): a
    count, then a fill (np.nonzero, with its int64 index arrays, took 7 ms of a 1,000-member
    object's 11 ms of tables)."""
    n_states = action.shape[0]
    row_ptr = np.zeros(n_states + 1, dtype=np.int32)
    for p in range(n_states):
        row = action[p]
        k = 0
        for t in range(n_terms):
            k += row[t] != 0
        row_ptr[p + 1] = row_ptr[p] + k
    terms = np.empty(row_ptr[n_states], dtype=np.int32)
    for p in range(n_states):
        row = action[p]
        k = row_ptr[p]
        if k == row_ptr[p + 1]:
            continue
        for t in range(n_terms):
            if row[t] != 0:
                terms[k] = t
                k += 1
    return row_ptr, terms


@njit(cache=True, nogil=True)
def _derivable(lhs, ptr, nts, blocked, n_nt):
    """Which of n_nt nonterminals have a rule r, not blocked, whose nonterminals nts[ptr[r]:ptr[r + 1]]
    all have one too (nullable and productive sets alike), and which rules count so: a worklist over
    rules, each waiting on its nonterminal occurrences."""
    n_rules = lhs.shape[0]
    missing = np.empty(n_rules, dtype=np.int64)
    rule_of = np.empty(nts.shape[0], dtype=np.int64)
    stack = np.empty(n_rules, dtype=np.int64)
    top = 0
    for r in range(n_rules):
        missing[r] = ptr[r + 1] - ptr[r]
        rule_of[ptr[r]:ptr[r + 1]] = r
        if missing[r] == 0 and not blocked[r]:
            stack[top] = r
            top += 1
    wptr, waiting = _csr(nts, rule_of, n_nt)  # nonterminal -> the rules with an occurrence of it
    found = np.zeros(n_nt, dtype=np.bool_)
    while top > 0:
        top -= 1
        a = lhs[stack[top]]
        if found[a]:
            continue
        found[a] = True
        for j in range(wptr[a], wptr[a + 1]):
            r2 = waiting[j]
            missing[r2] -= 1
            if missing[r2] == 0 and not blocked[r2]:
                stack[top] = r2
                top += 1
    counts = np.zeros(n_rules, dtype=np.bool_)
    for r in range(n_rules):
        counts[r] = missing[r] == 0 and not blocked[r]
    return found, counts


@njit(cache=True, nogil=True)
def _nullable(R, lhs, n_nt):
    """(which nonterminals derive the empty word, and per rule the first position from which its
    right side is all nullable nonterminals); rules with a terminal never count."""
    item_sym, base, rule_len, nt0 = R.item_sym, R.base, R.rule_len, R.nt0
    n_rules = rule_len.shape[0]
    ptr = np.zeros(n_rules + 1, dtype=np.int64)
    blocked = np.zeros(n_rules, dtype=np.bool_)
    for r in range(n_rules):
        k = 0
        for i in range(base[r], base[r] + rule_len[r]):
            if item_sym[i] < nt0:
                blocked[r] = True
            else:
                k += 1
        ptr[r + 1] = ptr[r] + k
    nts = np.empty(ptr[n_rules], dtype=np.int64)
    for r in range(n_rules):
        k = ptr[r]
        for i in range(base[r], base[r] + rule_len[r]):
            if item_sym[i] >= nt0:
                nts[k] = item_sym[i] - nt0
                k += 1
    nullable = _derivable(lhs, ptr, nts, blocked, n_nt)[0]
    null_from = np.empty(n_rules, dtype=np.int64)
    for r in range(n_rules):
        k = rule_len[r]
        while k > 0:
            s = item_sym[base[r] + k - 1]
            if s < nt0 or not nullable[s - nt0]:
                break
            k -= 1
        null_from[r] = k
    return nullable, null_from


@njit(cache=True, nogil=True)
def _live_rules(lhs, ptr, syms, start, n_nt):
    """Grammar IR pruning marks (frontend/ir.py's pruned): rule r's right side is
    syms[ptr[r]:ptr[r + 1]] (terminals >= 0, nonterminal j as ~j). Returns (productive
    nonterminals, the rules kept: productive, their left side reachable from `start` through such
    rules, the nonterminals reached)."""
    n_rules = lhs.shape[0]
    nt_ptr = np.zeros(n_rules + 1, dtype=np.int64)
    for r in range(n_rules):
        k = 0
        for i in range(ptr[r], ptr[r + 1]):
            k += syms[i] < 0
        nt_ptr[r + 1] = nt_ptr[r] + k
    nts = np.empty(nt_ptr[n_rules], dtype=np.int64)
    k = 0
    for i in range(syms.shape[0]):
        if syms[i] < 0:
            nts[k] = ~syms[i]
            k += 1
    productive, live = _derivable(lhs, nt_ptr, nts, np.zeros(n_rules, dtype=np.bool_), n_nt)
    stack = np.empty(n_nt, dtype=np.int64)
    kept = np.flatnonzero(live)
    rptr, rof = _csr(lhs[kept], kept, n_nt)  # each nonterminal's productive rules
    reached = np.zeros(n_nt, dtype=np.bool_)
    reached[start] = True
    stack[0] = start
    top = 1
    while top > 0:
        top -= 1
        a = stack[top]
        for j in range(rptr[a], rptr[a + 1]):
            r = rof[j]
            for i in range(ptr[r], ptr[r + 1]):
                if syms[i] < 0 and not reached[~syms[i]]:
                    reached[~syms[i]] = True
                    stack[top] = ~syms[i]
                    top += 1
    keep = np.zeros(n_rules, dtype=np.bool_)
    for r in range(n_rules):
        keep[r] = live[r] and reached[lhs[r]]
    return productive, keep, reached
