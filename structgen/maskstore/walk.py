"""Numba walks over the token trie that build masks.

`lexeme_walk` is the context-independent part: from a lexer state, which tokens stay inside the
current lexeme (allowed whatever the parser stack is), and at which trie nodes a token would end
the lexeme (a boundary; the rest of that subtree depends on the parser). `boundary_walk` then
walks only those subtrees with the full lexer+parser step, backtracking through the stack pool.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..automata.lexer import BYTES as BYTE_COLUMNS  # the byte -> column map of a table over all 256 bytes
from ..automata.step import GLR_LIMIT, NEED_FORK, OK, POOL_FULL, REJECT, end_lexeme
from .configs import add_tasks, config_slot, copy_config, fork, index_config, same_config
from .runs import free_depth



@njit(cache=True, nogil=True)
def _set_tokens(i, node_tok_start, node_tok_end, tok_ids, bits):
    for k in range(node_tok_start[i], node_tok_end[i]):
        t = tok_ids[k]
        bits[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@njit(cache=True, nogil=True)
def lexeme_walk(s0, trie, trans, accept_term, bits, bnodes, bstates):
    """Set bits of tokens that keep the lexeme alive from state s0; list boundary nodes.

    Returns the number of boundary entries written to (bnodes, bstates): trie node where the
    byte cannot extend the lexeme while the lexer state before it is accepting.
    """
    node_byte, node_skip, tok_ids = trie[0], trie[2], trie[5]
    ranges = np.empty((node_byte.shape[0], 2), dtype=np.int32)
    n = node_byte.shape[0]
    nb = 0
    c = 1
    while c < n:  # the children of the root, each subtree walked on its own
        ns = trans[s0, node_byte[c]]
        if ns < 0:
            if accept_term[s0] >= 0:
                bnodes[nb] = c
                bstates[nb] = s0
                nb += 1
        else:
            nr, k = subtree_walk(c, ns, trie, trans, BYTE_COLUMNS, accept_term, ranges, bnodes[nb:], bstates[nb:])
            set_ranges(bits, tok_ids, ranges[:nr])
            nb += k
        c = node_skip[c]
    return nb


@njit(cache=True, nogil=True)
def subtree_walk(c, s, trie, trans, bmap, accept_term, ranges, bnodes, bstates):
    """lexeme_walk restricted to the subtree of trie node c, entered in lexer state s (the state
    after c's byte; `trans` has a column per byte class, bmap[byte] its column). The tokens
    there that keep the lexeme alive are written as ranges [a, b) of
    positions in tok_ids (tokens are in node order, so the live nodes between two dead subtrees
    are one range: a few ranges, not 100k ids, for a string body), then the boundary entries
    below c; returns (number of ranges, number of boundaries)."""
    node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids, max_depth = trie
    depth_state = np.empty(max_depth + 1, dtype=np.int32)
    depth_state[node_depth[c]] = s
    nr = 0
    nb = 0
    run = node_tok_start[c]  # start of the open range of live positions
    i = c + 1
    end = node_skip[c]
    while i < end:
        d = node_depth[i]
        ps = depth_state[d - 1]
        ns = trans[ps, bmap[node_byte[i]]]
        if ns < 0:
            if accept_term[ps] >= 0:
                bnodes[nb] = i
                bstates[nb] = ps
                nb += 1
            a = node_tok_start[i]
            if a > run:
                ranges[nr, 0] = run
                ranges[nr, 1] = a
                nr += 1
            i = node_skip[i]
            run = node_tok_start[i]  # node_tok_start has a sentinel entry for i == num_nodes
            continue
        depth_state[d] = ns
        i += 1
    a = node_tok_start[end]
    if a > run:
        ranges[nr, 0] = run
        ranges[nr, 1] = a
        nr += 1
    return nr, nb


@njit(cache=True, nogil=True)
def set_ranges(bits, tok_ids, ranges):
    """Set the bit of tok_ids[p] for every position p in the ranges [a, b) (rows of `ranges`)."""
    for r in range(ranges.shape[0]):
        for p in range(ranges[r, 0], ranges[r, 1]):
            t = tok_ids[p]
            bits[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@njit(cache=True, nogil=True)
def range_ids(tok_ids, ranges):
    """int32: tok_ids at every position in the ranges [a, b) (rows of `ranges`), in order."""
    out = np.empty(range_count(ranges), dtype=np.int32)
    k = 0
    for r in range(ranges.shape[0]):
        for p in range(ranges[r, 0], ranges[r, 1]):
            out[k] = tok_ids[p]
            k += 1
    return out


@njit(cache=True, nogil=True)
def range_count(ranges):
    """The number of positions in the ranges [a, b) (rows of `ranges`)."""
    n = 0
    for r in range(ranges.shape[0]):
        n += ranges[r, 1] - ranges[r, 0]
    return n


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
    per-state arrays; past dig's cell bound, or past the cells left in budget[0] (which this
    charges), a key of this store alone ((tag, s), tag ORed with the terminal: never equal to
    another store's keys, and never a shared walk). The budget bounds the hashing of one walk:
    a big pattern's 200 successor states would each hash max_cells, 20 ms, and fail.
    dig = (rep, cls, max_cells, keys uint64[n, 2], known bool[n], tag uint64, ...)."""
    rep, cls, max_cells, keys, known, tag = dig[0], dig[1], dig[2], dig[3], dig[4], dig[5]
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
def memo_keep(hk, hv, ent, used, h1, h2, c, r_lo, r_hi, f_lo, f_hi):
    """Make entry rows [r_lo, r_hi) of the memo's ranges and [f_lo, f_hi) of its nodes (already
    written) the entry of key (h1, h2, c); returns its index."""
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


@njit(cache=True, nogil=True)
def root_walk(q, kids, trie, trans, bmap, accept, shared, dig, memo, out_ranges, out_nodes, scratch):
    """A terminal state's component entry, raw: the positions (ranges [a, b), in order, into
    out_ranges) of tokens that keep the DFA alive from q, and the nodes where it dies right after
    accepting (out_nodes); returns their counts (trans over byte classes, bmap[byte] the column
    of each byte). Walked one child of the root (kids) at a time;
    with `shared`, each subtree's walk is memoized in `memo` under (digest of the state it is
    entered in, child): a subtree entered in state s gives the same answer from every state
    whose byte leads there. memo = (hk, hv, ent, ranges, nodes, used) (see WalkMemo); the caller
    leaves room for one more walk of the whole trie."""
    node_byte = trie[0]
    hk, hv, ent, ar, an, used = memo
    budget = np.full(1, dig[2], dtype=np.int64)
    nr = 0
    nf = 0
    for c in kids:
        s = trans[q, bmap[node_byte[c]]]
        if s < 0:
            if accept[q] >= 0:
                out_nodes[nf] = c
                nf += 1
            continue
        if not shared:
            a, b = subtree_walk(c, s, trie, trans, bmap, accept, out_ranges[nr:], out_nodes[nf:], scratch)
            nr += a
            nf += b
            continue
        h1, h2 = state_digest(s, trans, accept, dig, budget)
        slot = memo_slot(hk, hv, h1, h2, c)
        e = hv[slot]
        if e < 0:
            r0 = used[1]
            b0 = used[2]
            a, b = subtree_walk(c, s, trie, trans, bmap, accept, ar[r0:], an[b0:], scratch)
            used[1] += a
            used[2] += b
            e = memo_keep(hk, hv, ent, used, h1, h2, c, r0, r0 + a, b0, b0 + b)
        for r in range(ent[e, 0], ent[e, 1]):
            if nr > 0 and out_ranges[nr - 1, 1] == ar[r, 0]:  # subtrees are adjacent in node order
                out_ranges[nr - 1, 1] = ar[r, 1]
            else:
                out_ranges[nr, 0] = ar[r, 0]
                out_ranges[nr, 1] = ar[r, 1]
                nr += 1
        for x in range(ent[e, 2], ent[e, 3]):
            out_nodes[nf] = an[x]
            nf += 1
    return nr, nf


@njit(cache=True, nogil=True)
def walks_from(starts, kids, trie, trans, accept, dig, memo, w_ranges, w_nodes, w_states, ids, ids_off, nodes,
               nodes_off):
    """root_walk, unshared, from each state starts[i] of trans (over bytes; accept[s] >= 0 if s
    accepts): the token ids it allows in ids[ids_off[i]:ids_off[i + 1]] (in trie order), its nodes
    where the DFA dies right after accepting in nodes[nodes_off[i]:nodes_off[i + 1]]; False if
    ids or nodes are too short. One call for the literals of a product state (a walk's Python
    costs more than its numba)."""
    tok_ids = trie[5]
    ni = 0
    nn = 0
    ids_off[0] = 0
    nodes_off[0] = 0
    for q in range(starts.shape[0]):
        nr, nf = root_walk(np.int32(starts[q]), kids, trie, trans, BYTE_COLUMNS, accept, False, dig, memo, w_ranges,
                           w_nodes, w_states)
        if ni + range_count(w_ranges[:nr]) > ids.shape[0] or nn + nf > nodes.shape[0]:
            return False
        for r in range(nr):
            for p in range(w_ranges[r, 0], w_ranges[r, 1]):
                ids[ni] = tok_ids[p]
                ni += 1
        nodes[nn:nn + nf] = w_nodes[:nf]
        nn += nf
        ids_off[q + 1] = ni
        nodes_off[q + 1] = nn
    return True


@njit(cache=True, nogil=True)
def ranges_bits(bits, tok_ids, ranges, all_bits):
    """bits (zeros) := the tokens at the positions in `ranges` (sorted, disjoint [a, b) rows).
    When they are most of the vocabulary (a string body), all_bits (every token of the trie)
    is copied and the few positions between the ranges cleared instead."""
    n = tok_ids.shape[0]
    if 2 * range_count(ranges) <= n:
        set_ranges(bits, tok_ids, ranges)
        return
    bits[:] = all_bits
    prev = 0
    for r in range(ranges.shape[0] + 1):
        a = ranges[r, 0] if r < ranges.shape[0] else n
        for p in range(prev, a):
            t = tok_ids[p]
            bits[t >> 5] &= ~(np.uint32(1) << np.uint32(t & 31))
        if r < ranges.shape[0]:
            prev = ranges[r, 1]


@njit(cache=True, nogil=True)
def trie_parents(node_depth):
    """int32[n]: the parent of each trie node (-1 for the root), from the preorder depths."""
    n = node_depth.shape[0]
    out = np.full(n, -1, dtype=np.int32)
    last = np.zeros(node_depth.max() + 1 if n else 1, dtype=np.int32)  # last node seen at each depth
    for i in range(1, n):
        d = node_depth[i]
        out[i] = last[d - 1]
        last[d] = i
    return out


@njit(cache=True, nogil=True)
def set_ids(bits, ids):
    """Set bit t of `bits` (uint32 words) for each token id t in ids."""
    for t in ids:
        bits[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@njit(cache=True, nogil=True)
def product_boundaries(s0, cand, trie, parent, trans, accept_term, mark, bnodes, bstates):
    """The boundary entries of product lexer state s0 among candidate trie nodes (any order,
    repeats allowed): node i is one iff the product, run from s0 along the bytes above i, is in
    an accepting state at i's parent and cannot take i's byte. Written to (bnodes, bstates) in
    node order; returns their number. `mark` (bool[num_nodes], all False) is scratch."""
    node_byte = trie[0]
    m = 0
    uniq = np.empty(cand.shape[0], dtype=np.int32)
    for i in cand:
        if not mark[i]:
            mark[i] = True
            uniq[m] = i
            m += 1
    uniq = np.sort(uniq[:m])
    path = np.empty(trie[6] + 1, dtype=np.int32)
    nb = 0
    for i in uniq:
        mark[i] = False
        k = 0
        x = parent[i]
        while x > 0:
            path[k] = node_byte[x]
            k += 1
            x = parent[x]
        ps = s0
        for j in range(k - 1, -1, -1):
            ps = trans[ps, path[j]]
            if ps < 0:
                break
        if ps >= 0 and accept_term[ps] >= 0 and trans[ps, node_byte[i]] < 0:
            bnodes[nb] = i
            bstates[nb] = ps
            nb += 1
    return nb


@njit(cache=True, nogil=True)
def boundary_walk(bnodes, bstates, nb, trie, bits, top, pool_n, memo, progress, tasks, runs, pool_state, pool_parent,
                  P, L, words, overlay, touched):
    """Walk the boundary subtrees with lexer and parser; set bits of viable tokens.

    The byte step is step_byte's (extend the lexeme, or end it greedily and restart with the
    byte), with lexeme ends memoized: parser configurations reached by ending lexemes from the
    base stack (and from those) are kept in a reserved pool region, keyed (config, terminal), so
    the thousands of tokens that end the same lexeme the same way share one parser step; a
    configuration whose stack equals a known one is that one (a loop over characters stays one).
    Returns (status, entries_done); NEED_DFA / POOL_FULL ask the caller to fix and call again.
    Walks entries progress[0] .. nb - 1 and, when it stops, writes the entry it stopped in to
    progress[0], so the call again resumes there (a walk needing k new lexer DFAs is not
    done k + 1 times). A subtree of plain text the lexer state survives is allowed whole
    (runs: safe_below per node, free_depth per lexer state, the plain bytes, a depth cap; runs.py).

    GLR: where a lexeme's terminal meets a conflict cell, configs.fork adds a task per stack that shifts
    it (its node, the lexer state of the next lexeme, the stack); tasks (progress[1] done of
    progress[2]) are walked after the entries like entries that start a lexeme at their node.
    progress[3] is the fill pointer of the fork region. Layout of the pool: the loaded stack
    (0 .. pool_n-1), configurations, the fork region, then scratch.
    """
    node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids, max_depth = trie
    trans, accept_term, is_start, is_final, state_dfa, dfa_start, is_ignore, ht_keys, ht_vals = L
    cfg_top, cfg_start, child = memo[0], memo[1], memo[2]
    run_below, free, safe, kmax = runs
    num_cfg = cfg_top.shape[0]
    res_n = pool_n
    res_end = pool_n + 16 * num_cfg
    glr = P.fork_ptr.shape[0] > 1
    region_end = res_end + (pool_state.shape[0] - res_end) // 2 if glr else res_end
    scratch = region_end
    if scratch + 64 > pool_state.shape[0]:
        return POOL_FULL, 0
    if progress[3] < res_end:
        progress[3] = res_end
    progress[4] = 0  # fork results and their memo (child = -3 - f) hold for one call
    progress[5] = 0
    n_cfg = 1
    cfg_top[0] = top
    d_ls = np.empty(max_depth + 1, dtype=np.int32)
    d_top = np.empty(max_depth + 1, dtype=np.int32)
    d_pool = np.empty(max_depth + 1, dtype=np.int32)
    d_cfg = np.empty(max_depth + 1, dtype=np.int32)
    status = OK
    done = nb
    e = progress[0]
    while status == OK:
        if e < nb:  # an entry
            i0 = bnodes[e]
            unit_top = top
            unit_ls = bstates[e]
            unit_cfg = 0
        elif progress[1] < progress[2]:  # a fork's task: a lexeme starts at its node
            k = progress[1]
            i0 = tasks[0][k, 0]
            unit_ls = ~tasks[0][k, 1]
            unit_top = tasks[0][k, 2]
            # its stack is a configuration too (nodes in the fork region stay): a known one, or a new one
            unit_cfg = same_config(unit_top, memo, pool_n, pool_state, pool_parent)
            if unit_cfg < 0 and n_cfg < num_cfg:
                unit_cfg = n_cfg
                cfg_top[n_cfg] = unit_top
                cfg_start[n_cfg] = tasks[0][k, 1]
                index_config(n_cfg, memo, pool_state, pool_parent)
                n_cfg += 1
        else:
            break
        t_mark, fill_mark = progress[2], progress[3]  # a unit stopped midway is walked again from its start
        d0 = node_depth[i0]
        i = i0
        end = node_skip[i0]
        if unit_ls < 0:  # a lexeme starts at i0
            ns = trans[~unit_ls, node_byte[i0]]
            if ns < 0:
                i = end
            else:
                d_ls[d0] = ns
                d_top[d0] = unit_top
                d_pool[d0] = scratch
                d_cfg[d0] = unit_cfg
                _set_tokens(i0, node_tok_start, node_tok_end, tok_ids, bits)
                i = i0 + 1
        else:
            d_ls[d0 - 1] = unit_ls
            d_top[d0 - 1] = unit_top
            d_pool[d0 - 1] = scratch
            d_cfg[d0 - 1] = unit_cfg
        while i < end:
            d = node_depth[i]
            b = node_byte[i]
            ps = d_ls[d - 1]
            t2 = d_top[d - 1]
            pn = d_pool[d - 1]
            c = d_cfg[d - 1]
            ns = trans[ps, b]
            if ns < 0:
                term = accept_term[ps]
                if term < 0:
                    i = node_skip[i]
                    continue
                if is_ignore[term]:
                    ls2 = dfa_start[state_dfa[ps]]
                elif c >= 0 and child[c, term] != -1:
                    k = child[c, term]
                    if k == -2:
                        i = node_skip[i]
                        continue
                    if k <= -3:  # a fork met before from this configuration
                        f = -3 - k
                        if not add_tasks(i, tasks[3][f, 0], tasks[3][f, 1], pool_n, progress, tasks, pool_state,
                                          pool_parent):
                            status = GLR_LIMIT
                            break
                        i = node_skip[i]
                        continue
                    ls2 = cfg_start[k]
                    t2 = cfg_top[k]
                    c = k
                else:
                    st, ls2, t3, pn2 = end_lexeme(term, ps, t2, pn, pool_state, pool_parent, P, L, words, overlay,
                                                  touched)
                    if st == REJECT:
                        if c >= 0:
                            child[c, term] = -2
                        i = node_skip[i]
                        continue
                    if st == NEED_FORK:
                        st, lo, hi = fork(term, t2, pool_n, progress, region_end, tasks, pool_state, pool_parent, P,
                                           L, words, overlay, touched)
                        if st == OK:
                            if c >= 0 and progress[5] < tasks[3].shape[0]:
                                f = progress[5]
                                tasks[3][f, 0] = lo
                                tasks[3][f, 1] = hi
                                progress[5] = f + 1
                                child[c, term] = -3 - f
                            if not add_tasks(i, lo, hi, pool_n, progress, tasks, pool_state, pool_parent):
                                st = GLR_LIMIT
                        if st == OK:
                            i = node_skip[i]
                            continue
                    if st != OK:
                        status = st
                        done = e
                        progress[0] = e
                        for k in range(progress[2] - 1, t_mark - 1, -1):  # forget this unit's tasks
                            tasks[1][tasks[0][k, 0]] = tasks[0][k, 3]
                        progress[2] = t_mark
                        progress[3] = fill_mark
                        break
                    newc = -1
                    if c >= 0 and n_cfg < num_cfg:
                        kt, res_n2 = copy_config(t3, pn, res_n, res_end, pool_state, pool_parent)
                        if kt >= 0:
                            same = same_config(kt, memo, pool_n, pool_state, pool_parent)
                            if same >= 0:  # a stack seen before (a loop: `chars: chars char`): reuse it
                                newc = same
                                child[c, term] = same
                                t3 = cfg_top[same]
                            else:
                                res_n = res_n2
                                newc = n_cfg
                                n_cfg += 1
                                cfg_top[newc] = kt
                                cfg_start[newc] = ls2
                                index_config(newc, memo, pool_state, pool_parent)
                                child[c, term] = newc
                                t3 = kt
                            pn2 = pn
                    t2 = t3
                    pn = pn2
                    c = newc
                ns = trans[ls2, b]
                if ns < 0:
                    i = node_skip[i]
                    continue
            d_ls[d] = ns
            d_top[d] = t2
            d_pool[d] = pn
            d_cfg[d] = c
            _set_tokens(i, node_tok_start, node_tok_end, tok_ids, bits)
            below = run_below[i]
            if below > 0 and free_depth(ns, trans, safe, kmax, free) >= below:
                for k in range(node_tok_start[i + 1], node_tok_start[node_skip[i]]):
                    t = tok_ids[k]
                    bits[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
                i = node_skip[i]
                continue
            i += 1
        if status != OK:
            break
        if e < nb:
            e += 1
        else:
            progress[1] += 1
    if status == OK:
        progress[0] = nb
        for k in range(progress[2]):  # the task index by node, clean for the next walk
            tasks[1][tasks[0][k, 0]] = -1
    for k in range(n_cfg):
        for j in range(child.shape[1]):
            child[k, j] = -1
        memo[3][config_slot(cfg_top[k], pool_state, pool_parent, memo[3].shape[0] - 1)] = -1
    return status, done
