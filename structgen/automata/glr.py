"""GLR over our LR tables: where a terminal meets a conflict cell, every action is followed.

A grammar with conflicts (automata/lr.py, `glr=True`; made ε-free by frontend/epsilon_free.py)
keeps every action of a conflict cell as a fork. The numba kernels run each parser stack as in the
deterministic case and stop with NEED_FORK where a lexeme's terminal meets a fork; here, in Python,
that terminal is fed along every action, giving the stacks that shift it (a stack set, deduplicated:
equal stacks are one). A runtime configuration is then a set of branches (lexer state, stack): a
token is allowed iff some branch allows it, the output is complete iff some branch can end, and
the mask is the union of the branches' masks (maskstore/store.py follows forks inside its walk).

A lexer tie (automata/lexer.py, `fork_ties`: several terminals accept a lexeme alike) forks the same
way, one terminal per branch (runtime.after_lexeme); the grammar need not have a conflict for that.

Bounds: a fork yields at most GLR_MAX_STACKS stacks and a configuration holds at most that many
branches; past it, LimitExceeded. parser.can_shift's search over forks is bounded by
GLR_MAX_STEPS reductions (status GLR_LIMIT, also LimitExceeded).
"""

from __future__ import annotations

import numpy as np

from ..errors import LimitExceeded
from .parser import GLR_MAX_STEPS, ParserTables
from .step import GLR_LIMIT, NEED_FORK, OK, advance_bytes

GLR_MAX_STACKS = 1024  # stacks one configuration (or one fork) may hold

Branch = tuple[int, tuple[int, ...]]  # (lexer state, parser stack bottom first)


def too_many(what: str = f"{GLR_MAX_STEPS} reductions") -> LimitExceeded:
    """The error for a GLR bound passed (by default the reductions of one search, status GLR_LIMIT)."""
    return LimitExceeded(f"the grammar's GLR parse needs more than {what} here (ambiguity grows without bound, "
                         "or the grammar is very ambiguous); see automata/glr.py")


def feed_all(rt, stack: tuple[int, ...], term: int) -> tuple[list[tuple[int, ...]], int]:
    """The stacks that reduce as needed and shift `term` from `stack`, along every action of every fork,
    on a grammar's runtime (runtime.GrammarRuntime: it builds the parametric states a goto needs); and
    the deepest position of `stack` read (a reduction's goto reads the state it uncovers: below every
    state popped so far, that is `stack`'s own)."""
    p: ParserTables = rt.parser
    rule_len = p.rule_len
    out: dict[tuple[int, ...], None] = {}
    work: list[tuple[tuple[int, ...], int]] = [(stack, 0)]
    steps = 0
    deepest = len(stack) - 1
    while work:
        st, a = work.pop()
        if a == 0:  # the cell's actions, in order
            work.extend((st, x) for x in reversed(p.actions(st[-1], term)))
            continue
        if a > 0:
            out[st + (a - 1,)] = None
            if len(out) > GLR_MAX_STACKS:
                raise too_many(f"{GLR_MAX_STACKS} stacks")
            continue
        steps += 1
        if steps > GLR_MAX_STEPS:
            raise too_many()
        r = -a - 1
        base = st[:len(st) - int(rule_len[r])]
        deepest = min(deepest, len(base) - 1)
        g = rt.goto_after(base[-1], r)
        if g >= 0:
            work.append((base + (g,), 0))
    return list(out), deepest


def advance(rt, pool, branches: list[Branch], data: np.ndarray) -> list[Branch]:
    """The branches after the bytes `data` (read-only uint8; empty: the text left the language on every
    branch), run on a grammar's runtime (runtime.GrammarRuntime)."""
    out: dict[Branch, None] = {}
    work = [(ls, stack, 0) for ls, stack in branches]
    seen = set(work)  # (lexer state, stack, offset): each is walked once, however many paths reach it
    n = len(data)
    trans = rt.lexer.trans
    while work:
        ls, stack, i = work.pop()
        top, pool_n = pool.load(stack)
        status, ls2, top2, _, at = rt.run(pool, advance_bytes, data[i:], np.int32(ls), np.int32(top),
                                          np.int32(pool_n))
        at += i
        if status == OK:
            out[(int(ls2), pool.read(int(top2)))] = None
        elif status == NEED_FORK:
            for ls0, s in rt.after_lexeme(int(ls2), pool.read(int(top2)))[0]:
                if at == n:
                    out[(ls0, s)] = None
                    continue
                ns = int(trans[ls0, data[at]])
                if ns >= 0 and (ns, s, at + 1) not in seen:
                    seen.add((ns, s, at + 1))
                    work.append((ns, s, at + 1))
        elif status == GLR_LIMIT:
            raise too_many()
        if len(out) + len(work) > GLR_MAX_STACKS:
            raise too_many(f"{GLR_MAX_STACKS} branches")
    return list(out)
