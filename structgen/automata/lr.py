"""Our LR automaton: LR(0) item sets and LALR(1) lookaheads (DeRemer & Pennello), every conflict kept.

Built from the grammar IR (`frontend/ir.py`) with integer items and Python-int bitsets over the
terminals. An item is `item_base[r] + dot`; a state is its kernel (sorted item tuple), and its
closure is the kernel plus the rules of the nonterminals it predicts, whose moves are computed once
per predicted set. Lookaheads follow DeRemer & Pennello (1982): Read = DR ∪ reads*, Follow =
Read ∪ includes*, LA(q, A → ω) = ∪ Follow(p, A) over the lookback transitions.

Conflicts are recorded, never resolved silently: a reduce/reduce conflict is settled by a unique
highest declared rule priority (as Lark does), a shift/reduce conflict only by an explicit
`prefer_shift=True`. Whatever remains is returned for the caller to refuse (GrammarError naming it).

The tables are the runtime's (automata/parser.py): the augmented rule is `$root -> start $END`, the
accepting move is the shift of $END (column T), and `end_state` is where it leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..budget import check as check_budget
from ..errors import LimitExceeded

Grammar = Any  # frontend/ir.py's Grammar (not imported: the frontend depends on automata, not the reverse)

DEFAULT_MAX_LR_STATES = 1_000_000
DEFAULT_MAX_TABLE_CELLS = 200_000_000  # action cells (int32): 800 MB


@dataclass(frozen=True)
class Conflict:
    """Two or more actions of one LR state on one lookahead terminal."""

    state: int
    terminal: str
    kind: str  # "shift/reduce" or "reduce/reduce"
    rules: tuple[str, ...]  # the rules reduced (rule_text), and for shift/reduce the items that shift
    resolution: str = ""  # how it was settled ("shift (prefer_shift)", "priority"), "" if it was not

    def __str__(self) -> str:
        how = f", resolved: {self.resolution}" if self.resolution else ""
        return f"{self.kind} conflict on {self.terminal} in state {self.state}: " + "; ".join(self.rules) + how


@dataclass
class Automaton:
    """LR(0) states (0 is the start) with their transitions and reduce rules (rules numbered as in the
    IR, the root last). Symbols: terminal t, $END = T, nonterminal j = T + 1 + j."""

    trans: list[dict[int, int]]  # state -> symbol -> state
    reduces: list[list[int]]  # state -> rules with a complete item
    kernels: list[tuple[int, ...]]


class LRBuilder:
    """One LR construction over a Grammar (LR(0) states, then LALR(1) lookaheads, then tables)."""

    def __init__(self, g: Grammar, *, max_states: int = DEFAULT_MAX_LR_STATES) -> None:
        self.g = g
        self.max_states = max_states
        T = self.T = len(g.terminals)
        N = len(g.nonterminals)
        self.N = N + 1  # plus $root
        nt0 = T + 1  # symbol of nonterminal 0
        # rules in symbol space; the root rule last
        self.rhs = [tuple(s if s >= 0 else nt0 + ~s for s in seq) for seq in g.rhs]
        self.lhs = list(g.lhs)
        self.root_rule = len(self.rhs)
        self.rhs.append((nt0 + g.start, T))
        self.lhs.append(N)
        self.nt0 = nt0
        base, item_sym = [], []
        for seq in self.rhs:
            base.append(len(item_sym))
            item_sym.extend(seq)
            item_sym.append(-1)
        self.base = base
        self.item_sym = item_sym
        self.item_rule = [r for r, seq in enumerate(self.rhs) for _ in range(len(seq) + 1)]
        rules_of: list[list[int]] = [[] for _ in range(self.N)]
        for r, a in enumerate(self.lhs):
            rules_of[a].append(r)
        self.rules_of = rules_of
        self._predict_cache: dict[tuple[int, ...], tuple[dict[int, list[int]], list[int]]] = {}
        self.nullable = self._nullable()
        self.automaton: Automaton | None = None  # the LR(0) states, once built

    # --- LR(0) ---------------------------------------------------------------------------

    def _nullable(self) -> list[bool]:
        nt0 = self.nt0
        needs = [[s - nt0 for s in seq] if all(s >= nt0 for s in seq) else None for seq in self.rhs]
        return deriving(self.N, self.lhs, needs)

    def _predicted(self, nts: tuple[int, ...]) -> tuple[dict[int, list[int]], list[int]]:
        """Moves (symbol -> items after it) and empty rules of the closure of the nonterminals `nts`."""
        got = self._predict_cache.get(nts)
        if got is not None:
            return got
        nt0, rhs, base, rules_of = self.nt0, self.rhs, self.base, self.rules_of
        seen = set(nts)
        order = list(nts)
        moves: dict[int, list[int]] = {}
        empty: list[int] = []
        i = 0
        while i < len(order):
            a = order[i]
            i += 1
            for r in rules_of[a - nt0]:
                seq = rhs[r]
                if not seq:
                    empty.append(r)
                    continue
                x = seq[0]
                lst = moves.get(x)
                if lst is None:
                    moves[x] = [base[r] + 1]
                else:
                    lst.append(base[r] + 1)
                if x >= nt0 and x not in seen:
                    seen.add(x)
                    order.append(x)
        got = (moves, empty)
        self._predict_cache[nts] = got
        return got

    def lr0(self) -> Automaton:
        item_sym, item_rule, nt0 = self.item_sym, self.item_rule, self.nt0
        start_kernel = (self.base[self.root_rule],)
        index: dict[tuple[int, ...], int] = {start_kernel: 0}
        kernels = [start_kernel]
        trans: list[dict[int, int]] = []
        reduces: list[list[int]] = []
        i = 0
        while i < len(kernels):
            kernel = kernels[i]
            if not i & 255:
                check_budget(lambda: f"LR state {i} (item of rule {self._rule_text(item_rule[kernel[0]])!r})")
            i += 1
            moves: dict[int, list[int]] = {}
            red: list[int] = []
            nts = []
            for it in kernel:
                x = item_sym[it]
                if x < 0:
                    red.append(item_rule[it])
                    continue
                lst = moves.get(x)
                if lst is None:
                    moves[x] = [it + 1]
                else:
                    lst.append(it + 1)
                if x >= nt0:
                    nts.append(x)
            if nts:
                pm, pe = self._predicted(tuple(sorted(set(nts))))
                for x, items in pm.items():
                    lst = moves.get(x)
                    if lst is None:
                        moves[x] = items
                    else:
                        moves[x] = lst + items
                red.extend(pe)
            tr: dict[int, int] = {}
            for x, items in moves.items():
                k = tuple(sorted(items)) if len(items) > 1 else tuple(items)
                j = index.get(k)
                if j is None:
                    j = len(kernels)
                    if j >= self.max_states:
                        raise LimitExceeded(f"the grammar's LR automaton needs more than {self.max_states} states "
                                            "(the max_lr_states limit)")
                    index[k] = j
                    kernels.append(k)
                tr[x] = j
            trans.append(tr)
            reduces.append(red)
        return Automaton(trans, reduces, kernels)

    # --- LALR(1) lookaheads ----------------------------------------------------------------

    def lookaheads(self, a: Automaton) -> dict[tuple[int, int], int]:
        """LA(q, r) as a bitset over terminals (bit T is $END) for every reduce item of every state."""
        nt0, rhs, nullable = self.nt0, self.rhs, self.nullable
        trans = a.trans
        # nonterminal transitions x = (p, A) and their direct reads
        xs: list[tuple[int, int]] = []
        x_index: dict[tuple[int, int], int] = {}
        shift_bits = [_terminal_bits(tr, nt0) for tr in trans]
        for p, tr in enumerate(trans):
            for s in tr:
                if s >= nt0:
                    x_index[(p, s)] = len(xs)
                    xs.append((p, s))
        nx = len(xs)
        dr = [shift_bits[trans[p][s]] for p, s in xs]
        reads: list[list[int]] = [[] for _ in range(nx)]
        for x, (p, s) in enumerate(xs):
            if not x & 1023:
                check_budget("the LALR(1) lookaheads (reads)")
            q = trans[p][s]
            for c in trans[q]:
                if c >= nt0 and nullable[c - nt0]:
                    reads[x].append(x_index[(q, c)])
        read_sets = _digraph(nx, reads, dr)
        # includes and lookback: walk each rule B -> beta from every p with a transition on B
        null_from = []
        for seq in rhs:
            k = len(seq)
            while k > 0 and seq[k - 1] >= nt0 and nullable[seq[k - 1] - nt0]:
                k -= 1
            null_from.append(k)
        includes: list[list[int]] = [[] for _ in range(nx)]
        lookback: dict[tuple[int, int], list[int]] = {}
        rules_of = self.rules_of
        for x, (p, b) in enumerate(xs):
            if not x & 255:
                check_budget(lambda: f"the LALR(1) lookaheads of rule {self._sym_name(b)!r}")
            for r in rules_of[b - nt0]:
                seq = rhs[r]
                st = p
                nf = null_from[r]
                for i, s in enumerate(seq):
                    if s >= nt0 and i + 1 >= nf:
                        includes[x_index[(st, s)]].append(x)
                    st = trans[st][s]
                key = (st, r)
                lb = lookback.get(key)
                if lb is None:
                    lookback[key] = [x]
                else:
                    lb.append(x)
        follow = _digraph(nx, includes, read_sets)
        la: dict[tuple[int, int], int] = {}
        for key, lst in lookback.items():
            bits = 0
            for x in lst:
                bits |= follow[x]
            la[key] = bits
        return la

    # --- tables ----------------------------------------------------------------------------

    def tables(self, *, prefer_shift: bool = False, max_cells: int = DEFAULT_MAX_TABLE_CELLS, glr: bool = False):
        """(ParserTables, unresolved conflicts, resolved conflicts). With `glr`, an unresolved conflict
        cell keeps every action: it holds fork k (see ParserTables.fork_ptr) for the GLR runtime."""
        from .parser import ParserTables, sparse_table

        a = self.automaton = self.lr0()
        la = self.lookaheads(a)
        g, T, nt0 = self.g, self.T, self.nt0
        S = len(a.trans)
        if S * (T + 1) > max_cells:
            raise LimitExceeded(f"the parser tables need {S} states x {T + 1} terminals, more than {max_cells} "
                                "cells (the max_table_cells limit)")
        unresolved: list[Conflict] = []
        resolved: list[Conflict] = []
        prio = list(g.priority) + [0]
        cells: list[tuple[int, int, int]] = []  # (state, terminal, action)
        forks: list[list[int]] = []  # the actions of each kept conflict (glr), shift first
        fork_cells: list[tuple[int, int, int]] = []
        n_rules = len(self.rhs)
        gotos: list[tuple[int, int, int]] = []  # (state, nonterminal, target)
        for p, tr in enumerate(a.trans):
            if not p & 255:
                check_budget(f"the parser tables (state {p})")
            for s, q in tr.items():
                if s < nt0:
                    cells.append((p, s, q + 1))
                else:
                    gotos.append((p, s - nt0, q))
            red = a.reduces[p]
            if not red:
                continue
            if len(red) == 1 and not (la.get((p, red[0]), 0) & _terminal_bits(tr, nt0)):
                r = red[0]
                cells.extend((p, t, -(r + 1)) for t in _bits(la.get((p, r), 0)))
                continue
            by_term: dict[int, list[int]] = {}
            for r in red:
                for t in _bits(la.get((p, r), 0)):
                    by_term.setdefault(t, []).append(r)
            for t, rules in sorted(by_term.items()):
                if len(rules) > 1:
                    ranked = sorted(rules, key=lambda r: -prio[r])
                    if prio[ranked[0]] > prio[ranked[1]]:
                        resolved.append(self._conflict(a, p, t, "reduce/reduce", rules, "priority"))
                        rules = ranked[:1]
                    else:
                        unresolved.append(self._conflict(a, p, t, "reduce/reduce", rules, ""))
                        if not glr:
                            continue
                acts = [-(r + 1) for r in rules]
                if t in tr:
                    if prefer_shift:
                        resolved.append(self._conflict(a, p, t, "shift/reduce", rules, "shift (prefer_shift)"))
                        continue
                    unresolved.append(self._conflict(a, p, t, "shift/reduce", rules, ""))
                    if not glr:
                        continue
                    acts.insert(0, tr[t] + 1)
                if len(acts) == 1:
                    cells.append((p, t, acts[0]))
                    continue
                code = -(n_rules + 1 + len(forks))
                forks.append(acts)
                fork_cells.append((p, t, code))
                if t not in tr:
                    cells.append((p, t, code))
        action = np.zeros((S, T + 1), dtype=np.int32)
        c = np.array(cells, dtype=np.int64).reshape(-1, 3)
        action[c[:, 0], c[:, 1]] = c[:, 2]
        for p, t, code in fork_cells:
            action[p, t] = code
        fork_ptr = np.zeros(len(forks) + 1, dtype=np.int32)
        np.cumsum([len(f) for f in forks], out=fork_ptr[1:])
        fork_acts = np.array([x for f in forks for x in f], dtype=np.int32)
        gt = np.array(gotos, dtype=np.int64).reshape(-1, 3)
        K = self.N + len(self.rhs)  # goto keys: state * K + nonterminal (see ParserTables)
        goto_keys, goto_vals = sparse_table(gt[:, 0] * K + gt[:, 1], gt[:, 2])
        rule_len = np.array([len(s) for s in self.rhs], dtype=np.int32)
        rule_lhs = np.array(self.lhs, dtype=np.int32)
        c = c[c[:, 1] < T]  # the CSR of terminals (not $END) with an action, by state then terminal
        c = c[np.lexsort((c[:, 1], c[:, 0]))]
        row_ptr = np.zeros(S + 1, dtype=np.int32)
        np.cumsum(np.bincount(c[:, 0], minlength=S), out=row_ptr[1:])
        row_terms = c[:, 1].astype(np.int32)
        x = a.trans[0][nt0 + g.start]
        end_state = a.trans[x][T]
        tables = ParserTables(
            terminal_names=[t.name for t in g.terminals], nonterminal_names=list(g.nonterminals) + ["$root"],
            action=action, goto_keys=goto_keys, goto_vals=goto_vals, rule_len=rule_len, rule_lhs=rule_lhs,
            row_ptr=row_ptr, row_terms=row_terms,
            start_state=0, end_state=int(end_state), conflicts=[str(c) for c in resolved + (unresolved if glr else [])],
            fork_ptr=fork_ptr, fork_acts=fork_acts)
        return tables, unresolved, resolved

    def _conflict(self, a: Automaton, p: int, t: int, kind: str, rules: list[int], resolution: str) -> Conflict:
        names = [self._rule_text(r) + " ." for r in rules]
        if kind == "shift/reduce":
            for it in a.kernels[a.trans[p][t]][:3]:
                r = self.item_rule[it]
                dot = it - self.base[r]
                seq = [self._sym_name(s) for s in self.rhs[r]]
                names.append(f"{self._sym_name(self.nt0 + self.lhs[r]) if r != self.root_rule else '$root'}: "
                             + " ".join(seq[:dot - 1] + [".", seq[dot - 1]] + seq[dot:]) + " (shift)")
        term = self.g.terminals[t].name if t < self.T else "$END"
        return Conflict(p, term, kind, tuple(names), resolution)

    def _sym_name(self, s: int) -> str:
        if s < self.T:
            return self.g.terminals[s].name
        if s == self.T:
            return "$END"
        j = s - self.nt0
        return self.g.nonterminals[j] if j < len(self.g.nonterminals) else "$root"

    def _rule_text(self, r: int) -> str:
        body = " ".join(self._sym_name(s) for s in self.rhs[r]) or "<empty>"
        return f"{self._sym_name(self.nt0 + self.lhs[r])}: {body}"


def deriving(n: int, lhs: list[int], needs: list[list[int] | None]) -> list[bool]:
    """Which of n nonterminals have a rule r whose `needs[r]` nonterminals all have one too (None:
    rule r never counts): nullable and productive nonterminals alike, by a worklist over rules."""
    found = [False] * n
    waiting: list[list[int]] = [[] for _ in range(n)]  # nonterminal -> rules that wait for it
    missing = [0] * len(lhs)
    work = []
    for r, need in enumerate(needs):
        if need is None:
            continue
        need = set(need)
        missing[r] = len(need)
        for a in need:
            waiting[a].append(r)
        if not need:
            work.append(r)
    while work:
        r = work.pop()
        a = lhs[r]
        if found[a]:
            continue
        found[a] = True
        for r2 in waiting[a]:
            missing[r2] -= 1
            if missing[r2] == 0:
                work.append(r2)
    return found


def _terminal_bits(tr: dict[int, int], nt0: int) -> int:
    bits = 0
    for s in tr:
        if s < nt0:
            bits |= 1 << s
    return bits


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _digraph(n: int, rel: list[list[int]], init: list[int]) -> list[int]:
    """F(x) = init(x) ∪ ⋃ F(y) for x rel y: DeRemer & Pennello's Digraph over the SCCs of rel, iteratively."""
    f = list(init)
    mark = [0] * n  # 0: unvisited; stack depth while open; INF once its SCC is done
    INF = 1 << 62
    stack: list[int] = []
    for x0 in range(n):
        if mark[x0]:
            continue
        if not rel[x0]:
            mark[x0] = INF
            continue
        stack.append(x0)
        mark[x0] = len(stack)
        frames = [[x0, 0, len(stack)]]  # node, next edge, its depth
        while frames:
            fr = frames[-1]
            x, i = fr[0], fr[1]
            edges = rel[x]
            if i < len(edges):
                fr[1] = i + 1
                y = edges[i]
                if mark[y] == 0:
                    stack.append(y)
                    mark[y] = len(stack)
                    frames.append([y, 0, len(stack)])
                    continue
                if mark[y] < mark[x]:
                    mark[x] = mark[y]
                f[x] |= f[y]
                continue
            frames.pop()
            if mark[x] == fr[2]:  # x is the root of an SCC: everything above it shares its set
                fx = f[x]
                while True:
                    y = stack.pop()
                    mark[y] = INF
                    f[y] = fx
                    if y == x:
                        break
            if frames:  # back in the parent: fold x in
                px = frames[-1][0]
                if mark[x] < mark[px]:
                    mark[px] = mark[x]
                f[px] |= f[x]
    return f
