"""One byte through lexer and parser together: the only definition of the language's semantics.

Both the matcher (accept_token) and the mask-store trie walk call these functions, so the mask
and the acceptance check cannot disagree. Status codes: OK, REJECT, NEED_DFA (the terminal set
in `words` has no product DFA yet: build it and retry), POOL_FULL (grow the stack pool, retry),
NEED_LR (a parametric parser state is missing: build it, see automata/objects.py, and retry),
NEED_FORK (a terminal meets a conflict cell, or a lexeme ends in a lexer tie, as several
terminals: the GLR runtime, automata/glr.py, takes over from the state before it), GLR_LIMIT (a
search over conflict cells passed its budget).

Each takes the stack pool (views.PoolView: the stacks and the kernels' scratch), the parser and
lexer tables (views.ParserView, views.LexerView) and `words`, the terminal-set buffer: on NEED_DFA
it holds the set whose DFA is missing (the runtime's retry loop builds it, runtime.py).
"""

from __future__ import annotations

from numba import njit

from .lexer_index import lookup_set
from .parser import FORK, NEED_STATE, TOO_MANY, acceptable_terms, can_shift, feed_terminal
from .views import LexerView, ParserView, PoolView

OK = 0
REJECT = 1
NEED_DFA = 2
POOL_FULL = 3
NEED_LR = 4
NEED_FORK = 5  # the lexeme just ended meets a conflict cell: automata/glr.py follows every action
GLR_LIMIT = 6  # a search over conflict cells passed its budget (parser.GLR_MAX_STEPS)


@njit(cache=True, nogil=True)
def end_lexeme(term, ls, top, pool_n, pool, P, L, words):
    """Emit `term` (ending the lexeme in lexer state `ls`); return the next lexeme's start state."""
    if L.tie[ls] != 0:  # several terminals (lexer.py, fork_ties)
        return NEED_FORK, ls, top, pool_n
    if L.is_ignore[term]:
        return OK, L.dfa_start[L.state_dfa[ls]], top, pool_n
    new_top, pool_n2 = feed_terminal(term, top, pool_n, pool, P)
    if new_top == -1:
        return REJECT, ls, top, pool_n
    if new_top == -2:
        return POOL_FULL, ls, top, pool_n
    if new_top == NEED_STATE:
        return NEED_LR, ls, top, pool_n
    if new_top == FORK:
        return NEED_FORK, ls, top, pool_n
    got = acceptable_terms(new_top, pool, P, words)
    if got == NEED_STATE:
        return NEED_LR, ls, top, pool_n
    if got == TOO_MANY:
        return GLR_LIMIT, ls, top, pool_n
    d = lookup_set(words, L.ht_keys, L.ht_vals)
    if d < 0:
        return NEED_DFA, ls, top, pool_n
    return OK, L.dfa_start[d], new_top, pool_n2


@njit(cache=True, nogil=True)
def step_byte(b, ls, top, pool_n, pool, P, L, words):
    """Consume byte `b`: extend the lexeme, or end it (greedy) and start the next one with `b`."""
    trans = L.trans
    ns = trans[ls, b]
    if ns >= 0:
        return OK, ns, top, pool_n
    term = L.accept_term[ls]
    if term < 0:
        return REJECT, ls, top, pool_n
    status, ls2, top2, pool_n2 = end_lexeme(term, ls, top, pool_n, pool, P, L, words)
    if status != OK:
        return status, ls, top, pool_n
    ns = trans[ls2, b]
    if ns < 0:
        return REJECT, ls, top, pool_n
    return OK, ns, top2, pool_n2


@njit(cache=True, nogil=True)
def end_lexeme_entry(term, ls, top, pool_n, pool_, P_, L_, words):
    """end_lexeme called from Python (runtime.run): the views arrive as plain tuples (views.py says why)."""
    return end_lexeme(term, ls, top, pool_n, PoolView(*pool_), ParserView(*P_), LexerView(*L_), words)


@njit(cache=True, nogil=True)
def advance_bytes(data, ls, top, pool_n, pool_, P_, L_, words):
    """Consume `data`, then end a lexeme that no byte can extend (canonical state).

    Returns (status, ls, top, pool_n, at): on a status other than OK, the state before byte
    `at` (len(data): before that final lexeme end), where the step stopped. Called from Python
    (runtime.run): the views arrive as plain tuples."""
    pool, P, L = PoolView(*pool_), ParserView(*P_), LexerView(*L_)
    for i in range(data.shape[0]):
        status, ls2, top2, pool_n2 = step_byte(data[i], ls, top, pool_n, pool, P, L, words)
        if status != OK:
            return status, ls, top, pool_n, i
        ls, top, pool_n = ls2, top2, pool_n2
    if L.is_final[ls]:
        status, ls2, top2, pool_n2 = end_lexeme(L.accept_term[ls], ls, top, pool_n, pool, P, L, words)
        if status != OK:
            return status, ls, top, pool_n, data.shape[0]
        ls, top, pool_n = ls2, top2, pool_n2
    return OK, ls, top, pool_n, data.shape[0]


@njit(cache=True, nogil=True)
def can_end(ls, top, pool_n, pool_, P_, L_):
    """Whether the text so far is a complete word (the stop token may be accepted): (status, yes).
    Called from Python: the views arrive as plain tuples."""
    pool, P, L = PoolView(*pool_), ParserView(*P_), LexerView(*L_)
    end_col = P.action.shape[1] - 1
    if not L.is_start[ls]:
        term = L.accept_term[ls]
        if term < 0:
            return OK, False
        if L.tie[ls] != 0:
            return NEED_FORK, False
        if not L.is_ignore[term]:
            top, pool_n = feed_terminal(term, top, pool_n, pool, P)
            if top == NEED_STATE:
                return NEED_LR, False
            if top == FORK:
                return NEED_FORK, False
            if top < 0:
                return OK, False
    ok = can_shift(end_col, top, pool, P)
    if ok == NEED_STATE:
        return NEED_LR, False
    if ok == TOO_MANY:
        return GLR_LIMIT, False
    return OK, ok == 1
