"""A compiled grammar's runtime: its tables as the numba kernels read them (parser, lexer, object
states), and what running them takes. Product DFAs and parametric LR states are built the first
time a kernel reaches them (the kernel reports NEED_DFA / NEED_LR, the table is built, the call
repeats), under one lock that the grammar's matchers and its mask store share."""

from __future__ import annotations

import threading

import numpy as np

from .automata import glr
from .automata.lexer import LexerTables
from .automata.objects import ObjectStates
from .automata.parser import _MISSING, GOTO_BY_RULE, NEED_STATE, TOO_MANY, ParserTables, StackPool, acceptable_terms
from .automata.step import GLR_LIMIT, NEED_DFA, NEED_FORK, NEED_LR, POOL_FULL, can_end


class GrammarRuntime:
    """Runs one grammar's tables: the retry loop of its kernels, the start state of a lexeme after a
    stack, and whether a text can end (CompiledGrammar.runtime)."""

    def __init__(self, parser: ParserTables, lexer: LexerTables, objects: ObjectStates | None) -> None:
        self.parser = parser
        self.lexer = lexer
        self.objects = objects
        self.terminals = lexer.terminals
        self.lock = threading.RLock()
        self._pool = StackPool()
        self.words = np.zeros(lexer.set_words, dtype=np.uint64)
        self.initial_stack: tuple[int, ...] = (parser.start_state,)
        self.initial_lexer_state = -1  # the compiled grammar sets it (built, or read from its disk cache)
        self._plain: tuple | None = None  # (P, L, their plain tuples): see plain_tables

    @property
    def forks(self) -> bool:
        """Whether a parse may fork: the parser has conflict cells, or the lexer has met a tie."""
        return self.parser.glr or len(self.lexer.tie_ptr) > 1

    def plain_tables(self) -> tuple[tuple, tuple]:
        """P and L as plain tuples, the form Python passes them to kernels in (views.py says why)."""
        P, L = self.parser.view(), self.lexer.view()
        got = self._plain
        if got is None or got[0] is not P or got[1] is not L:
            got = self._plain = (P, L, tuple(P), tuple(L))
        return got[2], got[3]

    def run(self, pool: StackPool, kernel, *args):
        """Call `kernel(*args, pool, P, L, words)` (the pool and the tables, as plain tuples of their
        views, and the terminal-set buffer), fixing tables on demand.

        The kernel returns a tuple whose first item is a status; NEED_DFA builds the missing
        product DFA, POOL_FULL grows the pool, and the call is repeated (kernels are pure
        functions of their inputs apart from scratch space).
        """
        while True:
            P, L = self.plain_tables()
            res = kernel(*args, tuple(pool.view()), P, L, self.words)
            status = res[0]
            if status == NEED_DFA:
                with self.lock:
                    self.lexer.dfa_for(self.words)
            elif status == POOL_FULL:
                pool.grow()
            elif status == NEED_LR:
                self._build_state()
            else:
                return res

    def _build_state(self) -> None:
        """Build the parametric state a kernel asked for (its (state, rule) request in the tables)."""
        with self.lock:
            st, r = (int(x) for x in self.parser.need)
            self.objects.resolve(st, r)

    def can_end(self, ls: int, top: int, pool_n: int, pool: StackPool) -> bool:
        """Whether the text so far (lexer state ls, stack at `top`) is a complete word. Where the
        pending lexeme meets a conflict cell (GLR), whether some of its actions lead to accepting
        (the pool is reloaded then)."""
        while True:
            P, L = self.plain_tables()
            status, ok = can_end(np.int32(ls), np.int32(top), np.int32(pool_n), tuple(pool.view()), P, L)
            if status == NEED_LR:
                self._build_state()
                continue
            if status == GLR_LIMIT:
                raise glr.too_many()
            if status != NEED_FORK:
                return bool(ok)
            # every branch, each on its own stack in the pool; then the stack at `top` is put back
            # with pool.touched[0] its deepest node read, as the kernels leave it (mask memo keys)
            stack = pool.read(top)
            after, deepest = self.after_lexeme(ls, stack)
            deepest = min(deepest, int(pool.touched[0]))
            ok = False
            for ls2, s in after:
                t2, n2 = pool.load(s)  # then at the start of a lexeme: only the parser is asked
                pool.touched[0] = t2
                ok = self.can_end(ls2, t2, n2, pool)
                deepest = min(deepest, int(pool.touched[0]))  # below `deepest`, s is `stack`
                if ok:
                    break
            pool.load(stack)
            pool.touched[0] = deepest
            return ok

    def after_lexeme(self, ls: int, stack: tuple[int, ...]) -> tuple[list[tuple[int, tuple[int, ...]]], int]:
        """The (start state of the next lexeme, stack) pairs after the lexeme of lexer state ls ends
        on `stack`, along every action of a conflict cell and every terminal of a lexer tie (an
        ignored one leaves the stack as it is); and the deepest position of `stack` the parser steps
        read (glr.feed_all; the start states read the new stacks too, but can_end, which asks, does
        not look at a start state's lexer state)."""
        lx = self.lexer
        out: dict[tuple[int, tuple[int, ...]], None] = {}
        deepest = len(stack) - 1
        for t in lx.tied_terms(ls):
            if lx.is_ignore[t]:
                out[(int(lx.dfa_start[lx.state_dfa[ls]]), stack)] = None
                continue
            stacks, d = glr.feed_all(self, stack, t)
            deepest = min(deepest, d)
            for s in stacks:
                out[(self.start_state(s), s)] = None
        return list(out), deepest

    def goto_after(self, st: int, r: int) -> int:
        """The state entered from state st on reducing rule r (< 0: none), building a parametric
        one (automata/objects.py) the first time it is asked for."""
        p = self.parser
        g = p.goto(st, int(p.rule_lhs[r]))
        if g != GOTO_BY_RULE:
            return g
        g = p.rule_goto(st, r)
        if g == _MISSING:
            with self.lock:
                self.objects.resolve(st, r)
            g = p.rule_goto(st, r)
        return g

    def start_state(self, stack: tuple[int, ...]) -> int:
        """The lexer state that starts a lexeme after `stack` (its DFA of the terminals it can shift)."""
        with self.lock:
            top, _ = self._pool.load(stack)
            while True:
                got = acceptable_terms(top, self._pool.view(), self.parser.view(), self.words)
                if got == NEED_STATE:
                    self._build_state()
                    continue
                if got == TOO_MANY:
                    raise glr.too_many()
                break
            d = self.lexer.dfa_for(self.words)
            return int(self.lexer.dfa_start[d])

