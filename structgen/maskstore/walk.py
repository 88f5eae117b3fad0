"""Numba walks over the token trie that build masks.

`lexeme_walk` is the context-independent part: from a lexer state, which tokens stay inside the
current lexeme (allowed whatever the parser stack is), and at which trie nodes a token would end
the lexeme (a boundary; the rest of that subtree depends on the parser). `boundary_walk` then
walks only those subtrees with the full lexer+parser step, backtracking through the stack pool.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..automata.step import OK, REJECT, step_byte


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
    node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids, max_depth = trie
    depth_state = np.empty(max_depth + 1, dtype=np.int32)
    depth_state[0] = s0
    n = node_byte.shape[0]
    nb = 0
    i = 1
    while i < n:
        d = node_depth[i]
        ps = depth_state[d - 1]
        ns = trans[ps, node_byte[i]]
        if ns < 0:
            if accept_term[ps] >= 0:
                bnodes[nb] = i
                bstates[nb] = ps
                nb += 1
            i = node_skip[i]
            continue
        depth_state[d] = ns
        _set_tokens(i, node_tok_start, node_tok_end, tok_ids, bits)
        i += 1
    return nb


@njit(cache=True, nogil=True)
def boundary_walk(bnodes, bstates, nb, trie, bits, top, pool_n, pool_state, pool_parent, P, L, words, overlay, touched):
    """Walk the boundary subtrees with lexer and parser; set bits of viable tokens.

    Returns (status, entries_done); a non-OK status (NEED_DFA / POOL_FULL) asks the caller to
    fix the tables and call again (the walk is idempotent).
    """
    node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids, max_depth = trie
    d_ls = np.empty(max_depth + 1, dtype=np.int32)
    d_top = np.empty(max_depth + 1, dtype=np.int32)
    d_pool = np.empty(max_depth + 1, dtype=np.int32)
    for e in range(nb):
        i0 = bnodes[e]
        d0 = node_depth[i0]
        d_ls[d0 - 1] = bstates[e]
        d_top[d0 - 1] = top
        d_pool[d0 - 1] = pool_n
        i = i0
        end = node_skip[i0]
        while i < end:
            d = node_depth[i]
            status, ls, t2, pn = step_byte(node_byte[i], d_ls[d - 1], d_top[d - 1], d_pool[d - 1],
                                           pool_state, pool_parent, P, L, words, overlay, touched)
            if status != OK:
                if status != REJECT:
                    return status, e
                i = node_skip[i]
                continue
            d_ls[d] = ls
            d_top[d] = t2
            d_pool[d] = pn
            _set_tokens(i, node_tok_start, node_tok_end, tok_ids, bits)
            i += 1
    return OK, nb
