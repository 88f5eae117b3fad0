"""Canonical LR(1) tables: the parser model in which the top state alone gives the next terminals.

The matcher runs our LALR(1) tables (automata/lr.py) and computes the exact set S of terminals it can shift
next by simulating reductions down the whole stack. For analyses that treat the matcher as a
pushdown system (the infilling oracle in `decoding/diffusion/`), S must be a function of the
top stack state only. Canonical LR(1) has that property: it never reduces on a lookahead that
cannot eventually be shifted, so the terminals with a non-error action in the top state are
exactly {t : (terminals so far)·t is a prefix of a sentence}. For a grammar without LALR
conflicts (canonical LR(1) then has none either) both parsers accept the same language and
have the same S after every prefix, so this model is exact for the matcher.

Tables are built from the grammar IR's rules, are plain Python (dicts per state: the oracle
walks them from Python), and are memoized per (grammar text, start symbol).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import GrammarError, LimitExceeded

DEFAULT_MAX_LR1_STATES = 200_000


@dataclass
class LR1Tables:
    """Canonical LR(1) tables over the CompiledGrammar's terminal indices; terminal `end` is $END.

    `action[p]` maps a terminal to `s >= 0` (shift to state s) or `-(r + 1)` (reduce by rule r);
    $END appears in `action[p]` exactly when the input read so far is a complete sentence
    (the accepting reductions are not spelled out: the oracle only asks whether $END is allowed).
    `goto[p]` maps a nonterminal index to a state. `shiftable[p]` is S: the terminals (not $END)
    with an action in p, as a sorted tuple.
    """

    terminal_names: list[str]
    nonterminal_names: list[str]
    end: int
    rule_lhs: list[int]
    rule_len: list[int]
    action: list[dict[int, int]]
    goto: list[dict[int, int]]
    shiftable: list[tuple[int, ...]]
    start_state: int

    @property
    def num_states(self) -> int:
        return len(self.action)


_CACHE: OrderedDict[tuple[str, str, tuple[str, ...]], LR1Tables] = OrderedDict()  # least recently used first
_CACHE_MAX = 32  # grammars whose tables are kept (a diffusion template or infill session reuses one)
_LOCK = threading.Lock()


def canonical_lr1(compiled_grammar, *, max_states: int = DEFAULT_MAX_LR1_STATES) -> LR1Tables:
    """Canonical LR(1) tables for a CompiledGrammar (memoized by grammar text and start symbol).

    Raises GrammarError if the grammar has LR(1) conflicts (the matcher's LALR tables would then
    resolve them silently and this model would not be exact) and LimitExceeded past `max_states`.
    """
    cg = compiled_grammar
    key = (cg.grammar, cg.start, tuple(cg.parser.terminal_names))
    with _LOCK:
        got = _CACHE.get(key)
        if got is not None:
            _CACHE.move_to_end(key)
            return got
    if cg.parser.conflicts:
        raise GrammarError(f"the grammar has LALR conflicts, which the oracle cannot model: {cg.parser.conflicts[0]}")
    if cg.ir.objects:  # their member constraints live in the runtime's parametric states, not in rules
        raise GrammarError("the grammar keeps object member constraints as parser state (objects with many "
                           "optional properties), which the oracle cannot model")
    tables = build_lr1(cg.ir, max_states=max_states)
    with _LOCK:
        _CACHE[key] = tables
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return tables


def build_lr1(ir, *, max_states: int = DEFAULT_MAX_LR1_STATES) -> LR1Tables:
    """Build canonical LR(1) tables from grammar IR (frontend/ir.py: terminal t, nonterminal ~j)."""
    terminal_names = [t.name for t in ir.terminals]
    end = len(terminal_names)
    nts = list(ir.nonterminals)
    lhs: list[int] = list(ir.lhs)
    rhs: list[tuple[int, ...]] = list(ir.rhs)
    aug = len(nts)  # the augmented start symbol S' -> start
    aug_rule = len(rhs)
    lhs.append(aug)
    rhs.append((~ir.start,))
    n_nt = len(nts) + 1
    by_lhs: list[list[int]] = [[] for _ in range(n_nt)]
    for i, a in enumerate(lhs):
        by_lhs[a].append(i)

    # FIRST sets (bitmasks over terminals) and nullability
    first = [0] * n_nt
    nullable = [False] * n_nt
    changed = True
    while changed:
        changed = False
        for i, seq in enumerate(rhs):
            a = lhs[i]
            f, null = _first_seq(seq, first, nullable)
            if f | first[a] != first[a]:
                first[a] |= f
                changed = True
            if null and not nullable[a]:
                nullable[a] = True
                changed = True

    # per LR(0) item (rule, dot) with a nonterminal after the dot: FIRST and nullability of the rest
    tail: dict[tuple[int, int], tuple[int, bool]] = {}
    for i, seq in enumerate(rhs):
        for d in range(len(seq)):
            if seq[d] < 0:
                tail[(i, d)] = _first_seq(seq[d + 1:], first, nullable)

    def closure(kernel: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
        items = dict(kernel)
        work = list(items)
        while work:
            it = work.pop()
            r, d = it
            seq = rhs[r]
            if d >= len(seq) or seq[d] >= 0:
                continue
            f, null = tail[it]
            la = f | items[it] if null else f
            for r2 in by_lhs[-seq[d] - 1]:
                key = (r2, 0)
                old = items.get(key, 0)
                new = old | la
                if new != old or key not in items:
                    items[key] = new
                    work.append(key)
        return items

    end_bit = 1 << end
    states: list[dict[tuple[int, int], int]] = []
    index: dict[tuple, int] = {}
    start_kernel = {(aug_rule, 0): end_bit}
    index[_state_key(start_kernel)] = 0
    states.append(start_kernel)
    action: list[dict[int, int]] = []
    goto: list[dict[int, int]] = []
    i = 0
    while i < len(states):
        items = closure(states[i])
        act: dict[int, int] = {}
        gt: dict[int, int] = {}
        moves: dict[int, dict[tuple[int, int], int]] = {}
        for (r, d), la in items.items():
            seq = rhs[r]
            if d < len(seq):
                moves.setdefault(seq[d], {})[(r, d + 1)] = la
                continue
            red = -(r + 1)
            for t in _bits(la):
                prev = act.get(t)
                if prev is not None and prev != red:
                    raise GrammarError(f"the grammar is not LR(1): reduce/reduce conflict on "
                                       f"{_name(t, terminal_names)}")
                act[t] = red
        for sym, kernel in moves.items():
            key = _state_key(kernel)
            j = index.get(key)
            if j is None:
                if len(states) >= max_states:
                    raise LimitExceeded(f"canonical LR(1) tables need more than {max_states} states")
                j = len(states)
                index[key] = j
                states.append(kernel)
            if sym >= 0:
                if sym in act:
                    raise GrammarError(f"the grammar is not LR(1): shift/reduce conflict on "
                                       f"{_name(sym, terminal_names)}")
                act[sym] = j
            else:
                gt[-sym - 1] = j
        # accepting: S' -> start . with lookahead $END (spelled as a reduce by the augmented rule)
        if (aug_rule, 1) in items:
            act[end] = -(aug_rule + 1)
        action.append(act)
        goto.append(gt)
        states[i] = None  # type: ignore[call-overload]  # kernels are no longer needed
        i += 1
    shiftable = [tuple(sorted(t for t in a if t != end)) for a in action]
    return LR1Tables(terminal_names=list(terminal_names), nonterminal_names=nts + ["$root"], end=end,
                     rule_lhs=lhs, rule_len=[len(s) for s in rhs], action=action, goto=goto,
                     shiftable=shiftable, start_state=0)


def _first_seq(seq, first: list[int], nullable: list[bool]) -> tuple[int, bool]:
    """FIRST (bitmask) of a symbol sequence and whether it derives the empty string."""
    f = 0
    for s in seq:
        if s >= 0:
            return f | (1 << s), False
        j = -s - 1
        f |= first[j]
        if not nullable[j]:
            return f, False
    return f, True


def _state_key(kernel: dict[tuple[int, int], int]) -> tuple:
    return tuple(sorted(kernel.items()))


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _name(t: int, names: list[str]) -> str:
    return names[t] if t < len(names) else "$END"
