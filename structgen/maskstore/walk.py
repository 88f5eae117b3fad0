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
from .memo import memo_keep, memo_slot, state_digest
from .runs import free_depth
from ..automata.views import LexerView, ParserView, PoolView, TrieView
from .views import BoundaryWalk, ConfigMemo, DFAView, ForkTasks, RunsView


@njit(cache=True, nogil=True)
def _set_tokens(i, node_tok_start, node_tok_end, tok_ids, bits):
    for k in range(node_tok_start[i], node_tok_end[i]):
        t = tok_ids[k]
        bits[t >> 5] |= np.uint32(1) << np.uint32(t & 31)


@njit(cache=True, nogil=True)
def lexeme_walk(s0, trie_, trans, accept_term, bits, bnodes, bstates):
    """Set bits of tokens that keep the lexeme alive from state s0; list boundary nodes.

    Returns the number of boundary entries written to (bnodes, bstates): trie node where the
    byte cannot extend the lexeme while the lexer state before it is accepting.
    """
    trie = TrieView(*trie_)  # a plain tuple from Python (automata/views.py)
    node_byte, node_skip, tok_ids = trie.node_byte, trie.node_skip, trie.tok_ids
    dfa = DFAView(trans, BYTE_COLUMNS, accept_term)
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
            nr, k = subtree_walk(c, ns, trie, dfa, ranges, bnodes[nb:], bstates[nb:])
            set_ranges(bits, tok_ids, ranges[:nr])
            nb += k
        c = node_skip[c]
    return nb


@njit(cache=True, nogil=True)
def subtree_walk(c, s, trie, dfa, ranges, bnodes, bstates):
    """lexeme_walk restricted to the subtree of trie node c, entered in lexer state s (the state
    after c's byte) of `dfa` (views.DFAView: a column per byte class, bmap[byte] its column). The tokens
    there that keep the lexeme alive are written as ranges [a, b) of
    positions in tok_ids (tokens are in node order, so the live nodes between two dead subtrees
    are one range: a few ranges, not 100k ids, for a string body), then the boundary entries
    below c; returns (number of ranges, number of boundaries)."""
    node_byte, node_depth, node_skip, node_tok_start = trie.node_byte, trie.node_depth, trie.node_skip, trie.node_tok_start
    trans, bmap, accept_term = dfa.trans, dfa.bmap, dfa.accept
    depth_state = np.empty(trie.max_depth + 1, dtype=np.int32)
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
def root_walk(q, trie, dfa, shared, dig, memo, work):
    """A terminal state's component entry, raw: the positions (ranges [a, b), in order, into
    work.ranges) of tokens that keep `dfa` (views.DFAView) alive from q, and the nodes where it
    dies right after accepting (work.nodes; work.states is scratch); returns their counts.
    Walked one child of the root (trie.root_kids) at a time;
    with `shared`, each subtree's walk is memoized in `memo` (views.MemoView) under (digest of
    the state it is entered in, child; dig: views.DigestView): a subtree entered in state s gives
    the same answer from every state whose byte leads there. The caller leaves room in `memo`
    for one more walk of the whole trie."""
    node_byte = trie.node_byte
    trans, bmap, accept = dfa.trans, dfa.bmap, dfa.accept
    out_ranges, out_nodes, scratch = work.ranges, work.nodes, work.states
    ent, ar, an, used = memo.ent, memo.ranges, memo.nodes, memo.used
    budget = np.full(1, dig.max_cells, dtype=np.int64)
    nr = 0
    nf = 0
    for c in trie.root_kids:
        s = trans[q, bmap[node_byte[c]]]
        if s < 0:
            if accept[q] >= 0:
                out_nodes[nf] = c
                nf += 1
            continue
        if not shared:
            a, b = subtree_walk(c, s, trie, dfa, out_ranges[nr:], out_nodes[nf:], scratch)
            nr += a
            nf += b
            continue
        h1, h2 = state_digest(s, trans, accept, dig, budget)
        e = memo.hv[memo_slot(memo.hk, memo.hv, h1, h2, c)]
        if e < 0:
            r0 = used[1]
            b0 = used[2]
            a, b = subtree_walk(c, s, trie, dfa, ar[r0:], an[b0:], scratch)
            used[1] += a
            used[2] += b
            e = memo_keep(memo, h1, h2, c, r0, r0 + a, b0, b0 + b)
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
def walks_from(starts, trie, dfa, dig, memo, work, out):
    """root_walk, unshared, from each state starts[i] of `dfa`: the token ids it allows in
    out.ids[out.ids_off[i]:out.ids_off[i + 1]] (in trie order), its nodes where the DFA dies right
    after accepting in out.nodes[out.nodes_off[i]:out.nodes_off[i + 1]] (views.IdLists); False if
    ids or nodes are too short. One call for the literals of a product state (a walk's Python
    costs more than its numba)."""
    tok_ids = trie.tok_ids
    ids, ids_off, nodes, nodes_off = out.ids, out.ids_off, out.nodes, out.nodes_off
    w_ranges, w_nodes = work.ranges, work.nodes
    ni = 0
    nn = 0
    ids_off[0] = 0
    nodes_off[0] = 0
    for q in range(starts.shape[0]):
        nr, nf = root_walk(np.int32(starts[q]), trie, dfa, False, dig, memo, work)
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
def product_boundaries(s0, cand, trie_, trans, accept_term, mark, bnodes, bstates):
    """The boundary entries of product lexer state s0 among candidate trie nodes (any order,
    repeats allowed): node i is one iff the product, run from s0 along the bytes above i, is in
    an accepting state at i's parent and cannot take i's byte. Written to (bnodes, bstates) in
    node order; returns their number. `mark` (bool[num_nodes], all False) is scratch."""
    trie = TrieView(*trie_)  # a plain tuple from Python (automata/views.py)
    node_byte, parent = trie.node_byte, trie.parent
    m = 0
    uniq = np.empty(cand.shape[0], dtype=np.int32)
    for i in cand:
        if not mark[i]:
            mark[i] = True
            uniq[m] = i
            m += 1
    uniq = np.sort(uniq[:m])
    path = np.empty(trie.max_depth + 1, dtype=np.int32)
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
def _subtree_full(i, trie, bits):
    """Whether every token at or below trie node i is in bits already (stops at the first that is not)."""
    tok_ids = trie.tok_ids
    for k in range(trie.node_tok_start[i], trie.node_tok_start[trie.node_skip[i]]):
        t = tok_ids[k]
        if not (bits[t >> 5] >> np.uint32(t & 31)) & np.uint32(1):
            return False
    return True


CONFIG_NODES = 16  # pool nodes boundary_walk reserves per memoized configuration
TIE_MEMO = 32  # lexer tie sets (automata/lexer.py) whose forks a configuration memoizes: tie ids 1 .. 31


def walk_room(pool_n: int, num_cfg: int, glr: bool) -> int:
    """A pool size for boundary_walk: the loaded stack, the configurations' region and scratch (under
    it, the walk returns POOL_FULL before it starts); GLR, a fork region half the configurations'."""
    room = pool_n + CONFIG_NODES * num_cfg + 128
    return room + CONFIG_NODES * num_cfg // 2 if glr else room


@njit(cache=True, nogil=True)
def boundary_walk(trie_, top, pool_n, W_, pool_, P_, L_, words):
    """Walk the boundary subtrees of W's entries (views.BoundaryWalk: W.bnodes, W.bstates) with
    lexer and parser from the stack at `top` (the loaded stack is pool nodes 0 .. pool_n - 1); set
    the bits of viable tokens in W.bits.

    The byte step is step_byte's (extend the lexeme, or end it greedily and restart with the
    byte), with lexeme ends memoized: parser configurations reached by ending lexemes from the
    base stack (and from those) are kept in a reserved pool region, keyed (config, terminal), so
    the thousands of tokens that end the same lexeme the same way share one parser step; a
    configuration whose stack equals a known one is that one (a loop over characters stays one).
    Returns (status, entries_done); NEED_DFA / POOL_FULL ask the caller to fix and call again.
    Walks entries progress[0] .. nb - 1 (progress = W.progress) and, when it stops, writes the entry it stopped in to
    progress[0], so the call again resumes there (a walk needing k new lexer DFAs is not
    done k + 1 times). A subtree of plain text the lexer state survives is allowed whole
    (W.runs, see runs.py).

    GLR: where a lexeme's terminal meets a conflict cell, or a lexeme ends in a lexer tie (memoized
    by its tie set, not by its terminal), configs.fork adds a task per stack that shifts it (its
    node, the lexer state of the next lexeme, the stack); tasks (progress[2] rows of W.tasks, of
    which progress[1] queued) are walked like entries that start a lexeme at their node, the latest
    queued first and before the next entry, so a subtree is done before another stack's task there
    starts: a task (or a lexeme end) whose subtree's tokens are all allowed already is skipped
    (masks are unions). progress[3] is the fill pointer of the fork region, progress[6] its end.
    Layout of the pool: the loaded stack (0 .. pool_n-1), configurations (W.configs), the fork
    region, then scratch.
    Called from Python (runtime.run): the views arrive as plain tuples (W's nested ones too).
    """
    trie, pool, P, L = TrieView(*trie_), PoolView(*pool_), ParserView(*P_), LexerView(*L_)
    W = BoundaryWalk(W_[0], W_[1], W_[2], W_[3], ConfigMemo(*W_[4]), ForkTasks(*W_[5]), RunsView(*W_[6]))
    node_byte, node_depth, node_skip, tok_ids = trie.node_byte, trie.node_depth, trie.node_skip, trie.tok_ids
    node_tok_start, node_tok_end, max_depth = trie.node_tok_start, trie.node_tok_end, trie.max_depth
    trans, accept_term, state_dfa, dfa_start, is_ignore = L.trans, L.accept_term, L.state_dfa, L.dfa_start, L.is_ignore
    bnodes, bstates, bits, progress = W.bnodes, W.bstates, W.bits, W.progress
    cfgs, tasks = W.configs, W.tasks
    cfg_top, cfg_start, child = cfgs.top, cfgs.start, cfgs.child
    run_below, free, safe, kmax = W.runs.below, W.runs.free, W.runs.safe, W.runs.kmax
    task_table, task_head, fork_memo = tasks.table, tasks.head, tasks.memo
    nb = bnodes.shape[0]
    num_cfg = cfg_top.shape[0]
    tie_base = child.shape[1] - TIE_MEMO  # child's columns: one per terminal, then one per tie set
    res_n = pool_n
    res_end = pool_n + CONFIG_NODES * num_cfg
    glr = P.fork_ptr.shape[0] > 1 or L.tie_ptr.shape[0] > 1
    region_end = res_end + (pool.state.shape[0] - res_end) // 2 if glr else res_end
    scratch = region_end
    if scratch + 64 > pool.state.shape[0]:
        return POOL_FULL, 0
    if progress[3] < res_end:
        progress[3] = res_end
    progress[6] = region_end
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
    unit_row = -1
    while status == OK:
        is_task = progress[1] > 0  # queued tasks first, the latest first: a subtree is done before the next
        if is_task:  # a fork's task: a lexeme starts at its node
            progress[1] -= 1
            k = task_table[progress[1], 4]
            unit_row = k
            i0 = task_table[k, 0]
            if _subtree_full(i0, trie, bits):  # another stack allowed all of it: nothing left to find
                continue
            unit_ls = ~task_table[k, 1]
            unit_top = task_table[k, 2]
            # its stack is a configuration too (nodes in the fork region stay): a known one, or a new one
            unit_cfg = same_config(unit_top, cfgs, pool_n, pool)
            if unit_cfg < 0 and n_cfg < num_cfg:
                unit_cfg = n_cfg
                cfg_top[n_cfg] = unit_top
                cfg_start[n_cfg] = task_table[k, 1]
                index_config(n_cfg, cfgs, pool)
                n_cfg += 1
        elif e < nb:  # an entry
            i0 = bnodes[e]
            unit_top = top
            unit_ls = bstates[e]
            unit_cfg = 0
        else:
            break
        # a unit stopped midway is walked again from its start, and what it queued is forgotten
        t_mark, fill_mark, q_mark = progress[2], progress[3], progress[1]
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
                if term < 0 or (glr and _subtree_full(i, trie, bits)):  # (GLR: another stack allowed it all)
                    i = node_skip[i]
                    continue
                tie = L.tie[ps]  # several terminals: a fork, memoized by the tie set (col), not by `term`
                col = term if tie == 0 else (tie_base + tie if tie < TIE_MEMO else -1)
                if is_ignore[term] and tie == 0:
                    ls2 = dfa_start[state_dfa[ps]]
                elif c >= 0 and col >= 0 and child[c, col] != -1:
                    k = child[c, col]
                    if k == -2:
                        i = node_skip[i]
                        continue
                    if k <= -3:  # a fork met before from this configuration
                        f = -3 - k
                        if not add_tasks(i, fork_memo[f, 0], fork_memo[f, 1], pool_n, W, pool):
                            status = GLR_LIMIT
                            break
                        i = node_skip[i]
                        continue
                    ls2 = cfg_start[k]
                    t2 = cfg_top[k]
                    c = k
                else:
                    st, ls2, t3, pn2 = end_lexeme(term, ps, t2, pn, pool, P, L, words)
                    if st == REJECT:  # (a tie never rejects here: end_lexeme leaves it to fork)
                        if c >= 0:
                            child[c, term] = -2
                        i = node_skip[i]
                        continue
                    if st == NEED_FORK:
                        st, lo, hi = fork(ps, t2, pool_n, W, pool, P, L, words)
                        if st == OK:
                            if c >= 0 and col >= 0 and progress[5] < fork_memo.shape[0]:
                                f = progress[5]
                                fork_memo[f, 0] = lo
                                fork_memo[f, 1] = hi
                                progress[5] = f + 1
                                child[c, col] = -3 - f
                            if not add_tasks(i, lo, hi, pool_n, W, pool):
                                st = GLR_LIMIT
                        if st == OK:
                            i = node_skip[i]
                            continue
                    if st != OK:
                        status = st
                        done = e
                        progress[0] = e
                        for k in range(progress[2] - 1, t_mark - 1, -1):  # forget this unit's tasks
                            task_head[task_table[k, 0]] = task_table[k, 3]
                        progress[2] = t_mark
                        progress[3] = fill_mark
                        progress[1] = q_mark
                        if is_task:  # the task is queued again, for the call that resumes
                            task_table[q_mark, 4] = unit_row
                            progress[1] = q_mark + 1
                        break
                    newc = -1
                    if c >= 0 and n_cfg < num_cfg:
                        kt, res_n2 = copy_config(t3, pn, res_n, res_end, pool)
                        if kt >= 0:
                            same = same_config(kt, cfgs, pool_n, pool)
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
                                index_config(newc, cfgs, pool)
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
        if not is_task:
            e += 1
    if status == OK:
        progress[0] = nb
        for k in range(progress[2]):  # the task index by node, clean for the next walk
            task_head[task_table[k, 0]] = -1
    for k in range(n_cfg):
        for j in range(child.shape[1]):
            child[k, j] = -1
        cfgs.head[config_slot(cfg_top[k], pool, cfgs.head.shape[0] - 1)] = -1
    return status, done
