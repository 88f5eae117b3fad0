"""Object member constraints as parser state: LR states built per (state, constraint state), on demand.

A grammar's ObjectSpecs (frontend/ir.py) have permissive rules (any members, any number), so the
LR automaton stays linear in the number of members. The states of an object's member list carry
its constraint state `c`:
- *static* states (before the first member) always carry the spec's start state; their rows are
  filtered once, in place, when the tables are built;
- *dynamic* states (after a member, or after a separator) carry a `c` that changes with each
  member. A (base state, c) pair gets a runtime state id the first time the parser reaches it:
  its rows are copies of the base state's, with the shifts that `c` forbids removed.
A shift is removed when every item it advances is a member rule of a member `c` does not allow,
the rule `rest -> "}"` when `c` cannot close, or the separator of `rest -> sep mem rest` when no
member may follow. The goto on the member nonterminal depends on which member rule was reduced,
so `goto` holds GOTO_BY_RULE there and the target is in a hash table keyed by (state, rule),
filled when a kernel asks for it (status NEED_LR). Reduces are left as they are: the runtime
simulates reductions down to a shift (parser.can_shift), so its terminal sets stay exact.
"""

from __future__ import annotations

import numpy as np

from ..errors import GrammarError, LimitExceeded
from .parser import GOTO_BY_RULE, ParserTables


def _first_sets(ir) -> tuple[list[set[int]], list[bool]]:
    """FIRST sets and nullability of every nonterminal of a grammar IR (a fixpoint)."""
    n = len(ir.nonterminals)
    first: list[set[int]] = [set() for _ in range(n)]
    nullable = [False] * n
    changed = True
    while changed:
        changed = False
        for a, seq in zip(ir.lhs, ir.rhs):
            before = len(first[a])
            all_null = True
            for x in seq:
                if x >= 0:
                    first[a].add(x)
                    all_null = False
                    break
                first[a] |= first[~x]
                if not nullable[~x]:
                    all_null = False
                    break
            if all_null and not nullable[a]:
                nullable[a] = changed = True
            if len(first[a]) != before:
                changed = True
    return first, nullable


class ObjectStates:
    """The parametric part of one grammar's parser tables (grows the tables in place)."""

    def __init__(self, ir, builder, automaton, tables: ParserTables, max_states: int) -> None:
        self.ir = ir
        self.tables = tables
        self.max_states = max_states
        nir = ir.num_rules
        # per state on first use (lr.Automaton): tuples of ints and int dicts, which the cyclic GC untracks
        self.trans = automaton.trans
        self.kernels = automaton.kernels
        self.item_rule, self.base = tuple(builder.item_rule), tuple(builder.base)
        specs = ir.objects
        # nonterminal (LR index) -> (object, kind)
        role: dict[int, tuple[int, str]] = {}
        for k, o in enumerate(specs):
            role[~o.obj] = (k, "obj")
            role[~o.rest] = (k, "rest")
        self.mem_nt = [~o.mem for o in specs]
        self.unions = {k for k, o in enumerate(specs) if hasattr(o, "branches")}  # ir.ObjectUnion
        self._first: list[set[int]] | None = None  # FIRST sets of the IR's nonterminals (unions only)
        self._nullable: list[bool] | None = None
        self._owners: dict[int, dict[int, set[int]]] = {}  # inner union state -> terminal -> members
        self.start_c = [o.start() for o in specs]
        self.static: dict[int, set[int]] = {}  # base state -> objects (each at its start state)
        self.dynamic: dict[int, int] = {}  # base state -> its object
        for s in _states_with_items_of(automaton, builder, self._governed_rules(ir, role)):
            stat, dyn = set(), set()
            for it in self.kernels[s]:
                r = self.item_rule[it]
                if r >= nir:
                    continue
                hit = ir.member.get(r)
                if hit is not None and hit[0] in self.unions and 1 <= it - self.base[r] < len(ir.rhs[r]):
                    dyn.add(hit[0])  # inside a union's member: which rule it is decides the branches
                    continue
                got = role.get(ir.lhs[r])
                if got is None:
                    continue
                k, kind = got
                d, seq = it - self.base[r], ir.rhs[r]
                if d >= len(seq):
                    continue  # complete: reduced whatever the state
                mem_at = seq.index(specs[k].mem) if specs[k].mem in seq else len(seq)
                if kind == "obj" and d <= mem_at:
                    stat.add(k)
                else:
                    dyn.add(k)
            if dyn:
                if len(dyn | stat) > 1:
                    raise GrammarError("internal: an LR state mixes the member lists of two objects")
                self.dynamic[s] = dyn.pop()
            elif stat:
                self.static[s] = stat
        tables.reserve(2 * tables.num_states + 64)  # states are added on first reach, during masks
        self.known: dict[tuple[int, int, tuple], int] = {}  # (base state, object, c) -> runtime id
        self.info: dict[int, tuple[int, int, tuple]] = {}  # runtime id -> (base state, object, c)
        self.n_base = automaton.num_states
        for s, objs in self.static.items():
            for k in objs:
                self.tables.set_goto(s, self.mem_nt[k], GOTO_BY_RULE)
            self._filter_row(s, s, {k: self.start_c[k] for k in objs})
        self.tables.rebuild_rows()

    def _governed_rules(self, ir, role: dict[int, tuple[int, str]]) -> np.ndarray:
        """Which IR rules an object governs: an object's or its rest's rules, a union's member rules."""
        flags = np.zeros(ir.num_rules, dtype=np.bool_)
        if role:
            flags[np.isin(np.asarray(ir.lhs, dtype=np.int64), np.array(list(role), dtype=np.int64))] = True
        for r, (k, _) in ir.member.items():
            if k in self.unions:
                flags[r] = True
        return flags

    # --- rows ----------------------------------------------------------------------------

    def _keeps(self, q: int, params: dict[int, tuple]) -> bool:
        """Whether the shift into state q stays, the objects of the source state being at `params`."""
        ir = self.ir
        for it in self.kernels[q]:
            r = self.item_rule[it]
            d = it - self.base[r]
            hit = ir.member.get(r)
            if hit is not None and d >= 1 and hit[0] in params:
                k, j = hit
                if ir.objects[k].step(params[k], j) is not None:
                    return True
                continue
            if r < ir.num_rules and d == 1:
                k = self._rest_of(ir.lhs[r], params)
                if k is not None:
                    spec, c = ir.objects[k], params[k]
                    if len(ir.rhs[r]) == 1:  # rest -> "}"
                        if spec.can_close(c):
                            return True
                    elif spec.can_continue(c):  # rest -> sep mem rest
                        return True
                    continue
            return True  # an item no constraint governs
        return False

    def _rest_of(self, lhs: int, params: dict[int, tuple]) -> int | None:
        for k in params:
            if ~self.ir.objects[k].rest == lhs:
                return k
        return None

    def _filter_row(self, s: int, row: int, params: dict[int, tuple]) -> None:
        """Remove from action row `row` (a copy of base state s) the shifts `params` forbid."""
        T = self.tables.action.shape[1] - 1
        owners = self._value_owners(s) if any(k in self.unions for k in params) else {}
        for t, q in self._shifts(s):
            if t < T and not self._keeps(q, params):
                self.tables.set_shift(row, t, -1)
            elif t in owners:  # the first terminal of a value: some member it can start must be allowed
                k = next(iter(params))
                if not any(self.ir.objects[k].step(params[k], u) is not None for u in owners[t]):
                    self.tables.set_shift(row, t, -1)

    def _value_owners(self, s: int) -> dict[int, set[int]]:
        """For a state inside a union's member (every kernel item a member rule): terminal -> the
        members whose rest can start with it (FIRST of the item's suffix), so that the first terminal
        of a value that only a forbidden member can take is no shift (a value nonterminal's own items
        say nothing of the member). Empty when some kernel item is not a member rule."""
        got = self._owners.get(s)
        if got is not None:
            return got
        ir = self.ir
        out: dict[int, set[int]] = {}
        for it in self.kernels[s]:
            r = self.item_rule[it]
            hit = ir.member.get(r) if r < ir.num_rules else None
            if hit is None or hit[0] not in self.unions:
                out = {}
                break
            for t in self._first_of(ir.rhs[r][it - self.base[r]:]):
                out.setdefault(t, set()).add(hit[1])
        self._owners[s] = out
        return out

    def _first_of(self, seq: tuple) -> set[int]:
        """FIRST of a symbol sequence of the IR (terminals t >= 0, nonterminals ~j)."""
        if self._first is None:
            self._first, self._nullable = _first_sets(self.ir)
        out: set[int] = set()
        for x in seq:
            if x >= 0:
                out.add(x)
                return out
            out |= self._first[~x]
            if not self._nullable[~x]:
                return out
        return out

    def _shifts(self, s: int) -> list[tuple[int, int]]:
        nt0 = self.tables.action.shape[1]  # builder symbols: terminals and $END below this
        return [(x, q) for x, q in self.trans[s].items() if x < nt0]

    # --- runtime ---------------------------------------------------------------------------

    def state_for(self, s: int, k: int, c: tuple) -> int:
        """The runtime id of base state s with object k at constraint state c (built if new)."""
        key = (s, k, c)
        got = self.known.get(key)
        if got is not None:
            return got
        t = self.tables
        n = t.num_states
        if n >= self.max_states:
            raise LimitExceeded(f"the parser needs more than {self.max_states} states (the max_lr_states limit)")
        t.add_state(s)
        self.known[key] = n
        self.info[n] = key
        self._filter_row(s, n, {k: c})
        t.finish_row(n)  # (its successors below change shift targets, not which terminals have one)
        nt0 = t.action.shape[1]
        for x, q in self.trans[s].items():  # successors in the same member list carry c too
            if x >= nt0:  # gotos: the copy has none of its own yet
                if x - nt0 == self.mem_nt[k]:
                    t.set_goto(n, x - nt0, GOTO_BY_RULE)
                else:
                    t.set_goto(n, x - nt0, self.state_for(q, k, c) if self.dynamic.get(q) == k else q)
            elif self.dynamic.get(q) == k and t.shift_of(n, x) >= 0:
                t.set_shift(n, x, self.state_for(q, k, c))
        return n

    def resolve(self, st: int, r: int) -> None:
        """Fill the goto of runtime state st on reducing member rule r (a kernel's NEED_LR request)."""
        k, j = self.ir.member[r]
        if st in self.info:
            s, k2, c = self.info[st]
        else:
            s, k2, c = st, k, self.start_c[k]
        if k2 != k:
            raise GrammarError("internal: a member reduced in another object's state")
        c2 = self.ir.objects[k].step(c, j)
        if c2 is None:  # a member this state does not allow: the one parse the tables chose is no word
            self.tables.set_rule_goto(st, r, -1)
            return
        q = self.trans[s][self.tables.action.shape[1] + self.mem_nt[k]]
        self.tables.set_rule_goto(st, r, self.state_for(q, k, c2))


def _states_with_items_of(automaton, builder, rule_flags: np.ndarray) -> list[int]:
    """The LR(0) states whose kernel holds an item of a flagged rule (the root rule is never one)."""
    flags = np.zeros(builder.n_rules, dtype=np.bool_)
    flags[:len(rule_flags)] = rule_flags
    hit = flags[builder.rules.item_rule[automaton.kernel_items]]
    owner = np.repeat(np.arange(automaton.num_states), np.diff(automaton.kernel_ptr))
    return np.unique(owner[hit]).tolist()
