"""The PDA: Lark's LALR(1) tables as int arrays, and numba routines that run them.

Parser stacks live in a node pool as parent-linked lists (`pool_state[i]`, `pool_parent[i]`),
so a stack snapshot is one index and the token-trie walk can backtrack in O(1) by resetting
the pool's fill pointer. Action encoding: 0 = error, s+1 = shift to s, -(r+1) = reduce by r.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..errors import GrammarError

OVERLAY = 256  # max states pushed by one simulated reduce chain (epsilon chains are short)


@dataclass
class ParserTables:
    """Integer LALR(1) tables extracted from a Lark parser; terminal T (=num_terms) is $END."""

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


class _ConflictLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "conflict" in msg.lower():
            self.messages.append(msg)


def _no_lexer():
    """A Lark lexer class that builds nothing: structgen lexes with its own DFAs, and Lark's
    lexers spend most of a compile checking terminal collisions we do not need."""
    from lark.lexer import Lexer

    class NoLexer(Lexer):
        def __init__(self, lexer_conf) -> None:
            self.lexer_conf = lexer_conf

        def lex(self, *args):
            raise NotImplementedError("structgen does not lex with Lark")

    return NoLexer


def build_lark(grammar: str, start: str):
    """Build a Lark LALR parser, recording shift/reduce conflicts Lark resolves silently."""
    import lark
    from lark import logger as lark_logger

    handler = _ConflictLog()
    old_level = lark_logger.level
    others = [(h, h.level) for h in lark_logger.handlers]
    for h, _ in others:  # Lark's own stderr handler would print every debug line (e.g. "Unused rule")
        h.setLevel(max(h.level, logging.WARNING))
    lark_logger.addHandler(handler)
    lark_logger.setLevel(logging.DEBUG)
    try:
        parser = lark.Lark(grammar, parser="lalr", lexer=_no_lexer(), start=start)
    except lark.exceptions.GrammarError as e:
        if "collision" not in str(e).lower() and "conflict" not in str(e).lower():
            raise GrammarError(f"invalid Lark grammar: {e}") from e
        raise GrammarError(
            f"grammar is not LALR(1): {e}. Rewrite the rules to remove the conflict "
            "(an Earley fallback is not implemented yet)."
        ) from e
    except (lark.exceptions.LarkError, SyntaxError, ValueError, KeyError) as e:
        raise GrammarError(f"invalid Lark grammar: {e}") from e
    finally:
        lark_logger.removeHandler(handler)
        lark_logger.setLevel(old_level)
        for h, level in others:
            h.setLevel(level)
    return parser, handler.messages


def tables_from_lark(parser, terminal_names: list[str], start: str, conflicts: list[str]) -> ParserTables:
    """Convert Lark's ParseTable into dense integer tables, checking every nonterminal is productive."""
    from lark.parsers.lalr_analysis import Shift

    pt = parser.parser.parser.parser.parse_table
    term_index = {n: i for i, n in enumerate(terminal_names)}
    end_col = len(terminal_names)
    rules = parser.rules
    rule_index = {id(r): i for i, r in enumerate(rules)}
    nts = sorted({str(r.origin.name) for r in rules})  # str(): not Lark Tokens, which the GC tracks
    nt_index = {n: i for i, n in enumerate(nts)}
    _check_productive(rules)

    num_states = max(pt.states) + 1
    action = np.zeros((num_states, end_col + 1), dtype=np.int32)
    goto = np.full((num_states, len(nts)), -1, dtype=np.int32)
    for s, row in pt.states.items():
        for sym, (act, arg) in row.items():
            if sym in nt_index:
                goto[s, nt_index[sym]] = arg
                continue
            col = end_col if sym == "$END" else term_index.get(sym)
            if col is None:
                raise GrammarError(f"parse table names unknown terminal {sym!r}")
            if act is Shift:
                action[s, col] = arg + 1
            else:
                action[s, col] = -(rule_index[id(arg)] + 1)
    rule_len = np.array([len(r.expansion) for r in rules], dtype=np.int32)
    rule_lhs = np.array([nt_index[r.origin.name] for r in rules], dtype=np.int32)
    nz = action[:, :end_col] != 0
    row_ptr = np.zeros(num_states + 1, dtype=np.int32)
    row_ptr[1:] = np.cumsum(nz.sum(axis=1))
    row_terms = np.nonzero(nz)[1].astype(np.int32)
    return ParserTables(
        terminal_names=list(terminal_names),
        nonterminal_names=nts,
        action=action,
        goto=goto,
        rule_len=rule_len,
        rule_lhs=rule_lhs,
        row_ptr=row_ptr,
        row_terms=row_terms,
        start_state=int(pt.start_states[start]),
        end_state=int(pt.end_states[start]),
        conflicts=list(conflicts),
    )


def _check_productive(rules) -> None:
    """Every nonterminal must derive some terminal string, else viable prefixes may be dead ends."""
    productive: set[str] = set()
    changed = True
    while changed:
        changed = False
        for r in rules:
            if r.origin.name in productive:
                continue
            if all(s.is_term or s.name in productive for s in r.expansion):
                productive.add(r.origin.name)
                changed = True
    dead = sorted({r.origin.name for r in rules} - productive)
    if dead:
        raise GrammarError(f"rules derive no finite string (unproductive): {', '.join(dead)}")


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
