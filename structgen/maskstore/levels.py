"""Component walks shared by what a state does on the next few bytes (level digests).

A state of a bounded-length string ("at most k more characters") has a canonical form of its
own for every k, so the WalkMemo's digests never repeat across its states, and each new state
walked the whole trie (~2 ms with Llama-3). Yet a token of at most h bytes is allowed from every
state that agrees on strings of at most h bytes. So the trie is cut into units (walk_plan) and
the units are grouped by the length of their longest token (at most 4, 8, ..., 32 bytes, or
longer); a group's walk is kept under the level_digest of the start state at that length. A new
state of a long string reads the groups it shares and walks only the rest, mostly the few units
with tokens longer than 32 bytes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .memo import memo_keep, memo_slot
from .views import Segments, WalkPlan
from .walk import root_walk, subtree_walk, trie_parents

LEVELS = np.array([4, 8, 12, 16, 24, 32], dtype=np.int64)  # group g: tokens at most LEVELS[g] bytes long
GROUP_WALK_NODES = 131072  # trie nodes of missed groups walked unshared at most (~0.7 ms), else root_walk


@njit(cache=True, nogil=True)
def _mix(h):
    """splitmix64's finalizer: every output bit depends on every input bit."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@njit(cache=True, nogil=True)
def level_digest(s, lev, trans, accept, dig, budget):
    """A 128-bit digest (h1, h2, ok) of what state s does on strings of at most `lev` bytes:
    D_0(x) stands for x accepting or not, D_l(x) for that and D_{l-1} of x's successor on each
    byte class (dig.rep; dig.seed stands for the classes), or "dead". Equal digests: the same
    accepting and live strings of at most lev bytes. Computed depth first into
    dig.level_keys[l, x] / dig.level_known[l, x], charging budget[0] per successor read; ok is
    False past it."""
    rep, seed, lk, lknown = dig.rep, dig.seed, dig.level_keys, dig.level_known
    if lknown[lev, s]:
        return lk[lev, s, 0], lk[lev, s, 1], True
    k = rep.shape[0]
    st_s = np.empty((lev + 1) * k + 1, dtype=np.int32)  # at most k pending per level
    st_l = np.empty((lev + 1) * k + 1, dtype=np.int32)
    st_s[0] = s
    st_l[0] = lev
    top = 1
    while top > 0:
        x = st_s[top - 1]
        l = st_l[top - 1]
        if lknown[l, x]:
            top -= 1
            continue
        budget[0] -= k + 1
        if budget[0] < 0:
            return np.uint64(0), np.uint64(0), False
        pending = False
        if l > 0:
            for u in range(k):
                y = trans[x, rep[u]]
                if y >= 0 and not lknown[l - 1, y]:
                    st_s[top] = y
                    st_l[top] = l - 1
                    top += 1
                    pending = True
        if pending:
            continue
        h1 = seed[0] ^ (np.uint64(l + 1) * np.uint64(0x9E3779B97F4A7C15))
        h2 = seed[1] + np.uint64(l + 1)
        v = np.uint64(1 if accept[x] >= 0 else 2)
        h1 = (h1 ^ v) * np.uint64(1099511628211)
        h2 = h2 * np.uint64(0xD6E8FEB86659FD93) + v
        if l > 0:
            for u in range(k):
                y = trans[x, rep[u]]
                a1 = lk[l - 1, y, 0] if y >= 0 else np.uint64(0x5DEECE66D)
                a2 = lk[l - 1, y, 1] if y >= 0 else np.uint64(0xB)
                h1 = (h1 ^ a1) * np.uint64(1099511628211)
                h2 = h2 * np.uint64(0xD6E8FEB86659FD93) + a2
        lk[l, x, 0] = _mix(h1)
        lk[l, x, 1] = _mix(h2 ^ h1)
        lknown[l, x] = True
        top -= 1
    return lk[lev, s, 0], lk[lev, s, 1], True


@njit(cache=True, nogil=True)
def _group_of(depth, levels):
    for g in range(levels.shape[0]):
        if depth <= levels[g]:
            return g
    return levels.shape[0]


def make_plan(trie, split_depth: int, split_size: int) -> WalkPlan:
    """walk_plan of a TokenTrie with the LEVELS, as a WalkPlan of read-only arrays."""
    arrays = walk_plan(trie.node_depth, trie.node_skip, trie.node_tok_start, trie.node_tok_end, LEVELS,
                       np.int64(split_depth), np.int64(split_size))
    plan = WalkPlan(*arrays, LEVELS.copy())
    for a in plan:
        a.flags.writeable = False
    return plan


@njit(cache=True, nogil=True)
def walk_plan(node_depth, node_skip, node_tok_start, node_tok_end, levels, split_depth, split_size):
    """The trie cut into units, in node order, as arrays (a WalkPlan's, but its levels): per item (node, next item past it,
    group, is a split node, bitmask of the groups in its subtree); then the group of each node
    and the runs of token positions by group (starts, groups), and each group's offset into
    scratch buffers with a row per node. A node whose longest token is over split_depth bytes
    and with over split_size nodes below it is split: an item of its own (its tokens, grouped by
    its depth) then its children's; any other node is a unit walked whole, grouped by its
    longest token (the last group: longer than every level)."""
    n = node_depth.shape[0]
    G = levels.shape[0]
    parent = trie_parents(node_depth)
    deepest = node_depth.copy()
    for i in range(n - 1, 0, -1):  # reverse preorder: children before parents
        if deepest[i] > deepest[parent[i]]:
            deepest[parent[i]] = deepest[i]
    node = np.empty(n, dtype=np.int64)
    nxt = np.empty(n, dtype=np.int64)
    group = np.empty(n, dtype=np.int64)
    split = np.zeros(n, dtype=np.bool_)
    gmask = np.zeros(n, dtype=np.int64)
    node_group = np.full(n, G, dtype=np.int8)
    npos = node_tok_start[n]  # node_tok_start has a sentinel entry for n
    pos_group = np.full(npos, G, dtype=np.int8)
    opened = np.empty(n, dtype=np.int64)  # items of the split nodes whose subtree is being planned
    n_open = 0
    m = 0
    x = 1
    while x < n:
        while n_open > 0 and node_skip[node[opened[n_open - 1]]] <= x:
            n_open -= 1
            nxt[opened[n_open]] = m
        node[m] = x
        if deepest[x] > split_depth and node_skip[x] - x > split_size:
            g = _group_of(node_depth[x], levels)
            split[m] = True
            node_group[x] = g
            pos_group[node_tok_start[x]:node_tok_end[x]] = g
            opened[n_open] = m
            n_open += 1
            x += 1
        else:
            g = _group_of(deepest[x], levels)
            nxt[m] = m + 1
            node_group[x:node_skip[x]] = g
            pos_group[node_tok_start[x]:node_tok_start[node_skip[x]]] = g
            x = node_skip[x]
        group[m] = g
        for j in range(n_open):
            gmask[opened[j]] |= np.int64(1) << np.int64(g)
        m += 1
    while n_open > 0:
        n_open -= 1
        nxt[opened[n_open]] = m
    run_start = np.empty(npos + 1, dtype=np.int64)
    run_group = np.empty(npos + 1, dtype=np.int64)
    r = 0
    for p in range(npos):
        if p == 0 or pos_group[p] != pos_group[p - 1]:
            run_start[r] = p
            run_group[r] = pos_group[p]
            r += 1
    run_start[r] = npos
    seg_off = np.zeros(G + 2, dtype=np.int64)
    for i in range(1, n):
        seg_off[node_group[i] + 1] += 1
    for g in range(G + 1):
        seg_off[g + 1] += seg_off[g]
    return (node[:m].copy(), nxt[:m].copy(), group[:m].copy(), split[:m].copy(), gmask[:m].copy(), node_group,
            run_start[:r + 1].copy(), run_group[:r].copy(), seg_off)


@njit(cache=True, nogil=True)
def _group_walk(q, plan, trie, dfa, missed, seg, scratch):
    """Walk from q the units of the groups in `missed` (bool per group), each group's ranges and
    dying nodes into its own segment of seg.ranges / seg.nodes (from seg.nr[g] / seg.nf[g] on,
    which this advances; views.Segments)."""
    node_byte, node_depth, node_tok_start, node_tok_end = trie.node_byte, trie.node_depth, trie.node_tok_start, \
        trie.node_tok_end
    p_node, p_next, p_group, p_split, p_gmask = plan.node, plan.next, plan.group, plan.split, plan.gmask
    trans, bmap, accept = dfa.trans, dfa.bmap, dfa.accept
    seg_ranges, seg_nodes, seg_nr, seg_nf = seg.ranges, seg.nodes, seg.nr, seg.nf
    want = np.int64(0)
    for g in range(missed.shape[0]):
        if missed[g]:
            want |= np.int64(1) << np.int64(g)
    depth_state = np.empty(trie.max_depth + 1, dtype=np.int32)
    depth_state[0] = q
    i = 0
    m = p_node.shape[0]
    while i < m:
        g = p_group[i]
        if p_split[i]:
            if (p_gmask[i] & want) == 0:
                i = p_next[i]
                continue
        elif not missed[g]:
            i += 1
            continue
        c = p_node[i]
        d = node_depth[c]
        ps = depth_state[d - 1]
        s = trans[ps, bmap[node_byte[c]]]
        if s < 0:
            if missed[g] and accept[ps] >= 0:
                seg_nodes[seg_nf[g]] = c
                seg_nf[g] += 1
            i = p_next[i]
            continue
        i += 1
        if p_split[i - 1]:
            depth_state[d] = s
            a, b = node_tok_start[c], node_tok_end[c]
            if missed[g] and b > a:
                seg_ranges[seg_nr[g], 0] = a
                seg_ranges[seg_nr[g], 1] = b
                seg_nr[g] += 1
            continue
        a, b = subtree_walk(c, s, trie, dfa, seg_ranges[seg_nr[g]:], seg_nodes[seg_nf[g]:], scratch)
        seg_nr[g] += a
        seg_nf[g] += b


@njit(cache=True, nogil=True)
def _keep_groups(ranges, nodes, plan, keys, got, c0, memo):
    """Keep a whole walk (ranges, nodes) as one memo entry per finite group not yet kept
    (got[g] < 0), under keys[g] and node c0 + g: its ranges cut at the runs of token positions
    by group."""
    node_group, run_start, run_group = plan.node_group, plan.run_start, plan.run_group
    ar, an, used = memo.ranges, memo.nodes, memo.used
    G = keys.shape[0]
    cr = np.zeros(G + 1, dtype=np.int64)
    cf = np.zeros(G + 1, dtype=np.int64)
    for phase in range(2):  # count, then write each group's pieces in its block
        if phase == 1:
            r_at = np.empty(G + 1, dtype=np.int64)
            f_at = np.empty(G + 1, dtype=np.int64)
            r_at[0] = used[1]
            f_at[0] = used[2]
            for g in range(G):
                r_at[g + 1] = r_at[g] + cr[g]
                f_at[g + 1] = f_at[g] + cf[g]
        j = 0
        for r in range(ranges.shape[0]):
            a = ranges[r, 0]
            b = ranges[r, 1]
            while run_start[j + 1] <= a:
                j += 1
            k = j
            while k < run_group.shape[0] and run_start[k] < b:
                g = run_group[k]
                if phase == 0:
                    cr[g] += 1
                elif g < G:
                    ar[r_at[g], 0] = max(a, run_start[k])
                    ar[r_at[g], 1] = min(b, run_start[k + 1])
                    r_at[g] += 1
                k += 1
        for x in nodes:
            g = node_group[x]
            if phase == 0:
                cf[g] += 1
            elif g < G:
                an[f_at[g]] = x
                f_at[g] += 1
    r_lo = used[1]
    f_lo = used[2]
    for g in range(G):
        if got[g] < 0:
            memo_keep(memo, keys[g, 0], keys[g, 1], c0 + g, r_lo, r_lo + cr[g], f_lo, f_lo + cf[g])
        r_lo += cr[g]
        f_lo += cf[g]
    used[1] = r_lo
    used[2] = f_lo


@njit(cache=True, nogil=True)
def component_walk(q, plan, trie, dfa, dig, memo, work, use_levels):
    """A terminal state's component entry, raw (as root_walk: ranges of token positions and dying
    nodes into work.ranges / work.nodes; returns their counts, and how many groups were found: -1
    if not use_levels or no level tables, -2 past the level budget), its walk shared through
    `memo`: by
    group, under the state's level_digest at each group's length, when the groups not there
    are small enough to walk unshared (and are then kept); else by subtree of the root
    (root_walk, whose subtrees' walks are shared by canonical digest: the states of a key that
    excludes some keys differ early, then are the body of any string), then kept by group too.
    The last group (tokens longer than every level) is walked each time: its key
    would be the state's own digest, under which the caller already keeps the whole entry.
    plan: views.WalkPlan, dfa: views.DFAView, dig: views.DigestView, memo: views.MemoView,
    work: views.WalkScratch."""
    levels = plan.levels
    G = levels.shape[0]
    hk, hv, ent, ar, an, used = memo.hk, memo.hv, memo.ent, memo.ranges, memo.nodes, memo.used
    trans, accept = dfa.trans, dfa.accept
    out_ranges, out_nodes, scratch, seg_ranges, seg_nodes = work.ranges, work.nodes, work.states, work.seg_ranges, \
        work.seg_nodes
    lknown = dig.level_known
    c0 = trie.node_byte.shape[0]  # group g's key is (level digest, c0 + g): no node's
    tried = use_levels and lknown.shape[0] > levels[G - 1]
    ok = tried
    keys = np.zeros((G, 2), dtype=np.uint64)
    got = np.full(G + 1, -1, dtype=np.int64)
    budget = np.full(1, 4 * dig.max_cells, dtype=np.int64)
    n_got = 0
    if ok:
        for g in range(G):
            h1, h2, ok = level_digest(q, levels[g], trans, accept, dig, budget)
            if not ok:
                break
            keys[g, 0] = h1
            keys[g, 1] = h2
            got[g] = hv[memo_slot(hk, hv, h1, h2, c0 + g)]
            if got[g] >= 0:
                n_got += 1
    seg_off = plan.seg_off
    to_walk = 0  # nodes in the groups missed
    for g in range(G):
        if got[g] < 0:
            to_walk += seg_off[g + 1] - seg_off[g]
    if not ok or to_walk > GROUP_WALK_NODES:  # many units to walk unshared: by subtree of the root instead
        nr, nf = root_walk(q, trie, dfa, True, dig, memo, work)
        if ok:
            _keep_groups(out_ranges[:nr], out_nodes[:nf], plan, keys, got, c0, memo)
        return nr, nf, n_got if ok else (-2 if tried else -1)
    seg_nr = seg_off[:G + 1].copy()
    seg_nf = seg_off[:G + 1].copy()
    _group_walk(q, plan, trie, dfa, got < 0, Segments(seg_ranges, seg_nodes, seg_nr, seg_nf), scratch)
    for g in range(G):
        if got[g] < 0:
            r_lo, f_lo = used[1], used[2]
            a = seg_nr[g] - seg_off[g]
            b = seg_nf[g] - seg_off[g]
            ar[r_lo:r_lo + a] = seg_ranges[seg_off[g]:seg_nr[g]]
            an[f_lo:f_lo + b] = seg_nodes[seg_off[g]:seg_nf[g]]
            used[1] += a
            used[2] += b
            memo_keep(memo, keys[g, 0], keys[g, 1], c0 + g, r_lo, r_lo + a, f_lo, f_lo + b)
    # merge the groups' ranges in node order: each group's are sorted and cut at the runs of
    # token positions by group, so reading the runs in order reads every range once, in order
    run_start, run_group = plan.run_start, plan.run_group
    lo = np.empty(G + 1, dtype=np.int64)
    hi = np.empty(G + 1, dtype=np.int64)
    for g in range(G + 1):
        if got[g] >= 0:
            lo[g], hi[g] = ent[got[g], 0], ent[got[g], 1]
        else:
            lo[g], hi[g] = seg_off[g], seg_nr[g]
    nr = 0
    for k in range(run_group.shape[0]):
        g = run_group[k]
        end = run_start[k + 1]
        src = ar if got[g] >= 0 else seg_ranges
        while lo[g] < hi[g] and src[lo[g], 0] < end:  # no range crosses a run: each is of one unit or cut
            a = src[lo[g], 0]
            if nr > 0 and out_ranges[nr - 1, 1] == a:
                out_ranges[nr - 1, 1] = src[lo[g], 1]
            else:
                out_ranges[nr, 0] = a
                out_ranges[nr, 1] = src[lo[g], 1]
                nr += 1
            lo[g] += 1
    nf = 0
    for g in range(G + 1):
        if got[g] >= 0:
            for x in range(ent[got[g], 2], ent[got[g], 3]):
                out_nodes[nf] = an[x]
                nf += 1
        else:
            for x in range(seg_off[g], seg_nf[g]):
                out_nodes[nf] = seg_nodes[x]
                nf += 1
    return nr, nf, n_got
