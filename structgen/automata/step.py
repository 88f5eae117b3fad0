"""One byte through lexer and parser together: the only definition of the language's semantics.

Both the matcher (accept_token) and the mask-store trie walk call these functions, so the mask
and the acceptance check cannot disagree. Status codes: OK, REJECT, NEED_DFA (the terminal set
in `words` has no product DFA yet: build it and retry), POOL_FULL (grow the stack pool, retry),
NEED_LR (a parametric parser state is missing: build it, see automata/objects.py, and retry),
NEED_FORK (a terminal meets a conflict cell: the GLR runtime, automata/glr.py, takes over from
the state before it), GLR_LIMIT (a search over conflict cells passed its budget).

`L` is the lexer tuple (trans, accept_term, is_start, is_final, state_dfa, dfa_start, is_ignore,
ht_keys, ht_vals); `P` the parser view (parser.ParserView).
"""

from __future__ import annotations

from numba import njit

from .lexer import lookup_set
from .parser import FORK, NEED_STATE, TOO_MANY, acceptable_terms, can_shift, feed_terminal

OK = 0
REJECT = 1
NEED_DFA = 2
POOL_FULL = 3
NEED_LR = 4
NEED_FORK = 5  # the lexeme just ended meets a conflict cell: automata/glr.py follows every action
GLR_LIMIT = 6  # a search over conflict cells passed its budget (parser.GLR_MAX_STEPS)


@njit(cache=True, nogil=True)
def end_lexeme(term, ls, top, pool_n, pool_state, pool_parent, P, L, words, overlay, touched):
    """Emit `term` (ending the lexeme in lexer state `ls`); return the next lexeme's start state."""
    trans, accept_term, is_start, is_final, state_dfa, dfa_start, is_ignore, ht_keys, ht_vals = L
    if is_ignore[term]:
        return OK, dfa_start[state_dfa[ls]], top, pool_n
    new_top, pool_n2 = feed_terminal(term, top, pool_state, pool_parent, pool_n, P, touched)
    if new_top == -1:
        return REJECT, ls, top, pool_n
    if new_top == -2:
        return POOL_FULL, ls, top, pool_n
    if new_top == NEED_STATE:
        return NEED_LR, ls, top, pool_n
    if new_top == FORK:
        return NEED_FORK, ls, top, pool_n
    got = acceptable_terms(new_top, pool_state, pool_parent, P, words, overlay, touched)
    if got == NEED_STATE:
        return NEED_LR, ls, top, pool_n
    if got == TOO_MANY:
        return GLR_LIMIT, ls, top, pool_n
    d = lookup_set(words, ht_keys, ht_vals)
    if d < 0:
        return NEED_DFA, ls, top, pool_n
    return OK, dfa_start[d], new_top, pool_n2


@njit(cache=True, nogil=True)
def step_byte(b, ls, top, pool_n, pool_state, pool_parent, P, L, words, overlay, touched):
    """Consume byte `b`: extend the lexeme, or end it (greedy) and start the next one with `b`."""
    trans = L[0]
    accept_term = L[1]
    ns = trans[ls, b]
    if ns >= 0:
        return OK, ns, top, pool_n
    term = accept_term[ls]
    if term < 0:
        return REJECT, ls, top, pool_n
    status, ls2, top2, pool_n2 = end_lexeme(term, ls, top, pool_n, pool_state, pool_parent, P, L, words, overlay, touched)
    if status != OK:
        return status, ls, top, pool_n
    ns = trans[ls2, b]
    if ns < 0:
        return REJECT, ls, top, pool_n
    return OK, ns, top2, pool_n2


@njit(cache=True, nogil=True)
def advance_bytes(data, start, ls, top, pool_n, pool_state, pool_parent, P, L, words, overlay, touched):
    """Consume data[start:], then end a lexeme that no byte can extend (canonical state).

    Returns (status, ls, top, pool_n, at): on a status other than OK, the state before byte
    `at` (len(data): before that final lexeme end), where the step stopped."""
    for i in range(start, data.shape[0]):
        status, ls2, top2, pool_n2 = step_byte(data[i], ls, top, pool_n, pool_state, pool_parent, P, L, words, overlay,
                                               touched)
        if status != OK:
            return status, ls, top, pool_n, i
        ls, top, pool_n = ls2, top2, pool_n2
    is_final = L[3]
    accept_term = L[1]
    if is_final[ls]:
        status, ls2, top2, pool_n2 = end_lexeme(accept_term[ls], ls, top, pool_n, pool_state, pool_parent, P, L,
                                                words, overlay, touched)
        if status != OK:
            return status, ls, top, pool_n, data.shape[0]
        ls, top, pool_n = ls2, top2, pool_n2
    return OK, ls, top, pool_n, data.shape[0]


@njit(cache=True, nogil=True)
def can_end(ls, top, pool_n, pool_state, pool_parent, P, L, overlay, touched):
    """Whether the text so far is a complete word (the stop token may be accepted): (status, yes)."""
    accept_term = L[1]
    is_start = L[2]
    is_ignore = L[6]
    end_col = P.action.shape[1] - 1
    if not is_start[ls]:
        term = accept_term[ls]
        if term < 0:
            return OK, False
        if not is_ignore[term]:
            top, pool_n = feed_terminal(term, top, pool_state, pool_parent, pool_n, P, touched)
            if top == NEED_STATE:
                return NEED_LR, False
            if top == FORK:
                return NEED_FORK, False
            if top < 0:
                return OK, False
    ok = can_shift(end_col, top, pool_state, pool_parent, P, overlay, touched)
    if ok == NEED_STATE:
        return NEED_LR, False
    if ok == TOO_MANY:
        return GLR_LIMIT, False
    return OK, ok == 1
