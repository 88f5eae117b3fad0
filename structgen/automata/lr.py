"""Our LR automaton: LR(0) item sets and LALR(1) lookaheads (DeRemer & Pennello), every conflict kept.

Built from the grammar IR (`frontend/ir.py`) in numba, over integer arrays: an item is
`base[r] + dot`; a state is its kernel (sorted item list, hashed), its closure the kernel plus the
rules of the nonterminals it predicts; lookaheads are bitset rows (uint64 words) over the terminals,
following DeRemer & Pennello (1982): Read = DR ∪ reads*, Follow = Read ∪ includes*, LA(q, A → ω) =
∪ Follow(p, A) over the lookback transitions.

Conflicts are recorded, never resolved silently: a reduce/reduce conflict is settled by a unique
highest declared rule priority (as Lark does), a shift/reduce conflict only by an explicit
`prefer_shift=True`. Whatever remains is returned for the caller to refuse (GrammarError naming it).

The tables are the runtime's (automata/parser.py): the augmented rule is `$root -> start $END`, the
accepting move is the shift of $END (column T), and `end_state` is where it leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from typing import Any

import numpy as np

from ..budget import check as check_budget
from ..errors import LimitExceeded
from .lr_passes import _action_cells, _derivable, _lalr_lookaheads, _lr0_states
from .mapped import mapped_array
from .views import LR0View, RulesView

# action tables of 1 MB or more get their own mapping (small ones: the heap's reused pages)
MAPPED_TABLE_CELLS = 1 << 18
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


class _Rows:
    """Per-state rows of a CSR pair (ptr, values[, targets]) as Python objects, made on first use
    (a tuple of items, or a dict symbol -> target state) and kept."""

    def __init__(self, ptr: np.ndarray, values: np.ndarray, targets: np.ndarray | None = None) -> None:
        self.ptr, self.values, self.targets = ptr, values, targets
        self._made: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def __getitem__(self, s: int):
        got = self._made.get(s)
        if got is None:
            a, b = int(self.ptr[s]), int(self.ptr[s + 1])
            got = (tuple(self.values[a:b].tolist()) if self.targets is None
                   else dict(zip(self.values[a:b].tolist(), self.targets[a:b].tolist())))
            self._made[s] = got
        return got


@dataclass
class Automaton:
    """LR(0) states (0 is the start) as CSR arrays: each state's kernel (sorted items), its
    transitions (sorted by symbol) and its reduce rules (rules numbered as in the IR, the root
    last). Symbols: terminal t, $END = T, nonterminal j = T + 1 + j. `trans[s]` (symbol -> state)
    and `kernels[s]` (item tuple) are made per state on first use."""

    kernel_ptr: np.ndarray
    kernel_items: np.ndarray
    trans_ptr: np.ndarray
    trans_sym: np.ndarray
    trans_target: np.ndarray
    reduce_ptr: np.ndarray
    reduce_rule: np.ndarray

    def __post_init__(self) -> None:
        self.trans = _Rows(self.trans_ptr, self.trans_sym, self.trans_target)
        self.kernels = _Rows(self.kernel_ptr, self.kernel_items)

    @property
    def num_states(self) -> int:
        return len(self.trans_ptr) - 1

    def view(self) -> LR0View:
        return LR0View(self.trans_ptr, self.trans_sym, self.trans_target, self.reduce_ptr, self.reduce_rule)


class LRBuilder:
    """One LR construction over a Grammar (LR(0) states, then LALR(1) lookaheads, then tables),
    in numba over integer arrays; conflicts are settled or kept in Python (they are few)."""

    def __init__(self, g: Grammar, *, max_states: int = DEFAULT_MAX_LR_STATES) -> None:
        self.g = g
        self.max_states = max_states
        T = self.T = len(g.terminals)
        N = len(g.nonterminals)
        self.N = N + 1  # plus $root
        nt0 = T + 1  # symbol of nonterminal 0
        # rules in symbol space, the root rule last, read into arrays in bulk (a Python pass per
        # rule was ~3 us of a 1,000-member object's 1,000 rules)
        n_rules = self.n_rules = len(g.rhs) + 1
        self.root_rule = n_rules - 1
        lens = np.empty(n_rules, dtype=np.int64)
        lens[:-1] = np.fromiter(map(len, g.rhs), dtype=np.int64, count=n_rules - 1)
        lens[-1] = 2
        n_syms = int(lens.sum())
        flat = np.empty(n_syms, dtype=np.int64)
        flat[:-2] = np.fromiter(chain.from_iterable(g.rhs), dtype=np.int64, count=n_syms - 2)
        flat[:-2] = np.where(flat[:-2] >= 0, flat[:-2], nt0 + ~flat[:-2])
        flat[-2:] = (nt0 + g.start, T)
        lhs = np.empty(n_rules, dtype=np.int64)
        lhs[:-1] = g.lhs
        lhs[-1] = N
        self.lhs = lhs.tolist()
        self.nt0 = nt0
        base = np.zeros(n_rules, dtype=np.int64)
        np.cumsum(lens[:-1] + 1, out=base[1:])
        self.base = base.tolist()
        item_sym = np.full(n_syms + n_rules, -1, dtype=np.int32)  # one end item per rule
        item_sym[np.repeat(base, lens) + _ranks(lens)] = flat
        item_rule = np.repeat(np.arange(n_rules, dtype=np.int32), lens + 1)
        self.item_rule = item_rule.tolist()
        rof_ptr = np.zeros(self.N + 1, dtype=np.int64)  # each nonterminal's rules (CSR)
        np.cumsum(np.bincount(lhs, minlength=self.N), out=rof_ptr[1:])
        rof_rules = np.argsort(lhs, kind="stable").astype(np.int32)
        self.rules = RulesView(item_sym, item_rule, base, lens, rof_ptr, rof_rules, np.int64(nt0))
        self._lhs = lhs
        self.automaton: Automaton | None = None  # the LR(0) states, once built

    @cached_property
    def rhs(self) -> list[tuple[int, ...]]:
        """Each rule's right side in symbol space (for naming rules in conflicts; made on first use)."""
        r = self.rules
        return [tuple(r.item_sym[b:b + n].tolist()) for b, n in zip(self.base, r.rule_len.tolist())]

    # --- LR(0) ---------------------------------------------------------------------------

    def lr0(self) -> Automaton:
        """The LR(0) states (numba; the state limit is checked as they are made)."""
        check_budget("the LR(0) states")
        n, *arrays = _lr0_states(self.rules, np.int64(self.base[self.root_rule]), np.int64(self.max_states))
        if n < 0:
            raise LimitExceeded(f"the grammar's LR automaton needs more than {self.max_states} states "
                                "(the max_lr_states limit)")
        return Automaton(*arrays)

    # --- LALR(1) lookaheads ----------------------------------------------------------------

    def lookaheads(self, a: Automaton) -> np.ndarray:
        """LA(q, r) for every reduce entry (a.reduce_rule's rows) as bitset rows over the terminals
        (uint64 words; bit T is $END)."""
        check_budget("the LALR(1) lookaheads")
        return _lalr_lookaheads(a.view(), self.rules, np.int64(self.T), self._lhs, np.int64(self.N))

    # --- tables ----------------------------------------------------------------------------

    def tables(self, *, prefer_shift: bool = False, max_cells: int = DEFAULT_MAX_TABLE_CELLS, glr: bool = False):
        """(ParserTables, unresolved conflicts, resolved conflicts). With `glr`, an unresolved conflict
        cell keeps every action: it holds fork k (see ParserTables.fork_ptr) for the GLR runtime."""
        from .parser import ParserTables, sparse_table

        a = self.automaton = self.lr0()
        g, T, nt0 = self.g, self.T, self.nt0
        S = a.num_states
        if S * (T + 1) > max_cells:
            raise LimitExceeded(f"the parser tables need {S} states x {T + 1} terminals, more than {max_cells} "
                                "cells (the max_table_cells limit)")
        la = self.lookaheads(a)
        check_budget("the parser tables")
        # a big table on its own mapping, zero-filled by the OS as touched: rows added later
        # (ObjectStates) grow it in place (ParserTables.reserve), with no copy of the table
        buf = None
        if S * (T + 1) >= MAPPED_TABLE_CELLS:
            action, buf = mapped_array((S, T + 1), np.int32)
        if buf is None:
            action = np.zeros((S, T + 1), dtype=np.int32)
        conflict_cells, row_ptr, row_terms = _action_cells(a.view(), la, np.int64(nt0), action)
        unresolved: list[Conflict] = []
        resolved: list[Conflict] = []
        prio = list(g.priority) + [0]
        forks: list[list[int]] = []  # the actions of each kept conflict (glr), shift first
        n_rules = self.n_rules
        for p, t in conflict_cells.tolist():
            tr = a.trans[p]
            rows = range(int(a.reduce_ptr[p]), int(a.reduce_ptr[p + 1]))
            rules = [int(a.reduce_rule[e]) for e in rows if int(la[e, t >> 6]) >> (t & 63) & 1]
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
                action[p, t] = acts[0]
                continue
            action[p, t] = -(n_rules + 1 + len(forks))
            forks.append(acts)
        fork_ptr = np.zeros(len(forks) + 1, dtype=np.int32)
        np.cumsum([len(f) for f in forks], out=fork_ptr[1:])
        fork_acts = np.array([x for f in forks for x in f], dtype=np.int32)
        src = np.repeat(np.arange(S, dtype=np.int64), np.diff(a.trans_ptr))
        is_goto = a.trans_sym >= nt0
        K = self.N + n_rules  # goto keys: state * K + nonterminal (see ParserTables)
        goto_keys, goto_vals = sparse_table(src[is_goto] * K + (a.trans_sym[is_goto] - nt0), a.trans_target[is_goto])
        rule_len = self.rules.rule_len.astype(np.int32)
        rule_lhs = np.array(self.lhs, dtype=np.int32)
        x = a.trans[0][nt0 + g.start]
        end_state = a.trans[x][T]
        tables = ParserTables(
            terminal_names=[t.name for t in g.terminals], nonterminal_names=list(g.nonterminals) + ["$root"],
            action=action, goto_keys=goto_keys, goto_vals=goto_vals, rule_len=rule_len, rule_lhs=rule_lhs,
            row_ptr=row_ptr, row_terms=row_terms,
            start_state=0, end_state=int(end_state), conflicts=[str(c) for c in resolved + (unresolved if glr else [])],
            fork_ptr=fork_ptr, fork_acts=fork_acts, _maps={} if buf is None else {"action": buf})
        if any(t < T and action[p, t] == 0 for p, t in conflict_cells.tolist()):
            tables.rebuild_rows()  # a reduce/reduce cell left unsettled: no action there
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


def _ranks(lens: np.ndarray) -> np.ndarray:
    """0, 1, ..., len - 1 for each length in turn."""
    total = int(lens.sum())
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    return np.arange(total, dtype=np.int64) - starts


def deriving(n: int, lhs: list[int], needs: list[list[int] | None]) -> list[bool]:
    """Which of n nonterminals have a rule r whose `needs[r]` nonterminals all have one too (None:
    rule r never counts): nullable and productive nonterminals alike (lr_passes._derivable, the
    worklist the LR construction and IR pruning run too)."""
    n_rules = len(needs)
    blocked = np.fromiter((x is None for x in needs), dtype=np.bool_, count=n_rules)
    ptr = np.zeros(n_rules + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(x) if x is not None else 0 for x in needs), dtype=np.int64, count=n_rules),
              out=ptr[1:])
    nts = np.fromiter(chain.from_iterable(x for x in needs if x is not None), dtype=np.int64, count=int(ptr[-1]))
    return _derivable(np.asarray(lhs, dtype=np.int64), ptr, nts, blocked, np.int64(n))[0].tolist()
