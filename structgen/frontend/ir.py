"""The grammar IR every input compiles to: integer-coded rules over terminals with ready byte DFAs.

A symbol in a rule's right-hand side is a terminal index `t >= 0` or a nonterminal `~j` (`-(j + 1)`,
negative). Nothing downstream (the LR construction, the lexer, the mask store) knows whether a
grammar came from Lark text, a JSON Schema or a regex. `GrammarBuilder` is how frontends write it:
terminals are interned by their DFA (or a key the frontend gives), so the same language gets one
terminal, and rules are appended as they are found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import chain
from typing import Hashable, Sequence

import numpy as np

from ..automata.dfa import ByteDFA
from ..automata.lexer import Terminal
from ..automata.lr import deriving
from ..automata.lr_passes import _live_rules
from ..errors import GrammarError, LimitExceeded

DEFAULT_MAX_RULES = 200_000


@dataclass
class Grammar:
    """Terminals (with byte DFAs), nonterminal names, and rules `lhs[r] -> rhs[r]`; `start` is a nonterminal.

    `priority[r]` is a rule's declared priority (Lark's `rule.N`), which settles reduce/reduce
    conflicts the way Lark does; 0 when none was declared. `text` is a readable rendering (Lark-like)
    for display and hashing; `source` is the text the grammar was read from, when there was one.
    """

    terminals: list[Terminal]
    nonterminals: list[str]
    lhs: list[int]
    rhs: list[tuple[int, ...]]
    start: int
    priority: list[int] = field(default_factory=list)
    source: str | None = None
    objects: list["ObjectSpec | ObjectUnion"] = field(default_factory=list)  # member constraints as parser state
    member: dict[int, tuple[int, int]] = field(default_factory=dict)  # rule -> (object, member index)
    # a lexeme several terminals accept alike is each of them (a lexer fork, automata/lexer.py), not the
    # best-ranked one (Lark's reading, for .lark grammars)
    lexer_forks: bool = False

    def __post_init__(self) -> None:
        if not self.priority:
            self.priority = [0] * len(self.lhs)

    @property
    def num_rules(self) -> int:
        return len(self.lhs)

    def symbol_name(self, s: int) -> str:
        return self.terminals[s].name if s >= 0 else self.nonterminals[~s]

    def rule_text(self, r: int) -> str:
        """`lhs: sym sym ...` of rule r (for messages)."""
        body = " ".join(self.symbol_name(s) for s in self.rhs[r]) or "<empty>"
        return f"{self.nonterminals[self.lhs[r]]}: {body}"

    @property
    def text(self) -> str:
        """The rules as Lark-like text, then one line per terminal (its literal or its DFA size)."""
        got = self.__dict__.get("_text")
        if got is None:
            by_lhs: dict[int, list[int]] = {}
            for r, a in enumerate(self.lhs):
                by_lhs.setdefault(a, []).append(r)
            lines = []
            for a in sorted(by_lhs, key=lambda j: (j != self.start, j)):
                alts = [" ".join(self.symbol_name(s) for s in self.rhs[r]) for r in by_lhs[a]]
                lines.append(f"{self.nonterminals[a]}: " + " | ".join(x or '""' for x in alts))
            for t in self.terminals:
                lit = literal_of(t.dfa) if t.is_literal else None
                desc = json.dumps(lit.decode("utf-8", "replace")) if lit is not None else f"<dfa {t.dfa.num_states} states>"
                lines.append(f"{t.name}: {desc}" + ("  // ignored" if t.ignore else ""))
            got = self.__dict__["_text"] = "\n".join(lines) + "\n"
        return got

    def check(self) -> None:
        """Every nonterminal used has a rule and derives some terminal string (no dead ends for masks)."""
        n = len(self.nonterminals)
        has_rule = [False] * n
        for a in self.lhs:
            has_rule[a] = True
        if not 0 <= self.start < n or not has_rule[self.start]:
            raise GrammarError(f"start symbol {self.nonterminals[self.start] if 0 <= self.start < n else self.start!r} "
                               "has no rules")
        for r, seq in enumerate(self.rhs):
            for s in seq:
                if s < 0 and not has_rule[~s]:
                    raise GrammarError(f"rule {self.rule_text(r)!r} uses {self.nonterminals[~s]!r}, which has no rules")
                if s >= len(self.terminals):
                    raise GrammarError(f"rule {r} uses terminal {s}, which does not exist")
        productive = productive_nonterminals(self)
        dead = sorted({self.nonterminals[a] for a in self.lhs if not productive[a]})
        if dead:
            raise GrammarError(f"rules derive no finite string (unproductive): {', '.join(dead)}")


def productive_nonterminals(g: Grammar) -> list[bool]:
    """Which nonterminals derive some terminal string (linear in the grammar)."""
    return deriving(len(g.nonterminals), g.lhs, [[~s for s in seq if s < 0] for seq in g.rhs])


def literal_of(dfa: ByteDFA) -> bytes | None:
    """The one word a DFA accepts when it is a single path (a literal), else None."""
    out = bytearray()
    s = 0
    trans, accept = dfa.trans, dfa.accept
    for _ in range(dfa.num_states):
        row = trans[s]
        nxt = row[row >= 0]
        if accept[s]:
            return bytes(out) if len(nxt) == 0 else None
        if len(nxt) == 0 or (nxt != nxt[0]).any():
            return None
        b = (row >= 0).nonzero()[0]
        if len(b) != 1:
            return None
        out.append(int(b[0]))
        s = int(nxt[0])
    return None


@dataclass
class ObjectSpec:
    """A JSON object whose members' constraints are parser state, not rules (emit.py's `object`).

    Its rules are `obj -> "{" "}" | "{" mem rest`, `rest -> "}" | sep mem rest`, and one rule
    `mem -> KEY ":" value` per member (Grammar.member maps it to (object, index); index
    len(names) is an undeclared key). That grammar allows any members in any number; the state
    `(i, count, bits)` says what may come next, as the rules of an explicit encoding would:
    members come in declared order from index i (optional ones may be skipped, required ones may
    not), then undeclared ones; `count` members were written (saturated at `cap` when there is no
    maximum); `bits` records which watched optional members are present (-1 once none can follow
    and the predicates hold). The runtime (automata/objects.py) gives each reached state its own
    LR states, so the LR automaton stays linear in the number of members.

    With `any_order`, members come in any order: the state is `(used, count, bits)`, `used` a
    bitset of the members written, and a member may come next if unused and some object can still
    be completed after it (a closed form over counts and the few watched members, see `_live_any`).
    """

    names: list[str]
    required: list[bool]
    extra: bool  # undeclared keys allowed (after the declared ones)
    lo: int
    hi: int | None
    watched: dict[int, int]  # member index -> bit
    preds: list  # presence predicates (normalize.py), over member names
    always: list[str]  # names present in every object (required members)
    any_order: bool = False  # members in any order (property_order="any"), each at most once
    obj: int = 0  # its nonterminal symbols (~j), once its rules are written (emit.parametric_object)
    mem: int = 0
    rest: int = 0

    def __post_init__(self) -> None:
        self.cap = self.hi if self.hi is not None else self.lo
        self.last_watched = max(self.watched, default=-1)
        self._live: dict[tuple, bool] = {}
        n = len(self.names)
        self._next_required = [n] * (n + 1)  # the first required member at or after i
        for i in range(n - 1, -1, -1):
            self._next_required[i] = i if self.required[i] else self._next_required[i + 1]
        # any order: bitsets over member indices (required; optional and not watched) and over bits
        self._need = sum(1 << i for i in range(n) if self.required[i])
        self._free = sum(1 << i for i in range(n) if not self.required[i] and i not in self.watched)
        self._all_bits = sum(1 << b for b in self.watched.values())

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("obj", "mem", "rest", "names", "required", "extra", "lo", "hi",
                                             "preds", "always", "any_order")} | {"watched": [[k, v] for k, v in self.watched.items()]}

    @classmethod
    def from_json(cls, d: dict) -> "ObjectSpec":
        d = dict(d)
        d["watched"] = {int(k): int(v) for k, v in d["watched"]}
        d["preds"] = [_tuples(p) for p in d["preds"]]
        return cls(**d)

    def holds(self, bits: int) -> bool:
        """Whether the presence predicates hold with the watched members of `bits` present."""
        if bits < 0:
            return True

        def present(name: str) -> bool:
            if name in self.always:
                return True
            i = self.names.index(name) if name in self.names else -1
            return i in self.watched and bool(bits >> self.watched[i] & 1)
        return all(presence_holds(p, present) for p in self.preds)

    def settle(self, i: int, bits: int) -> int | None:
        """Once no watched member can follow, the bits only matter through whether they hold."""
        if i > self.last_watched and bits >= 0 and not self.any_order:
            return -1 if self.holds(bits) else None
        return bits

    def start(self) -> tuple[int, int, int]:
        """The state before the first member (its bits settled when nothing is watched)."""
        bits = self.settle(0, 0)
        return (0, 0, 0 if bits is None else bits)  # None: the predicates fail, and live() says so

    def can_close(self, state: tuple[int, int, int]) -> bool:
        i, c, bits = state
        if self.any_order:
            return c >= self.lo and i & self._need == self._need and self.holds(bits)
        return c >= self.lo and self._next_required[i] == len(self.names) and self.holds(bits)

    def step(self, state: tuple[int, int, int], j: int) -> tuple[int, int, int] | None:
        """The state after member j (len(names): an undeclared key), or None if it may not come next
        or no object can be completed after it."""
        new = self._next(state, j)
        return new if new is not None and self.live(new) else None

    def _next(self, state: tuple[int, int, int], j: int) -> tuple[int, int, int] | None:
        """step() without the liveness check."""
        i, c, bits = state
        n = len(self.names)
        if self.any_order:
            if (self.hi is not None and c + 1 > self.hi) or (j < n and i >> j & 1) or (j == n and not self.extra):
                return None
            c1 = c + 1 if self.hi is not None else min(c + 1, self.cap)
            if j in self.watched:
                bits |= 1 << self.watched[j]
            return (i | 1 << j if j < n else i, c1, bits)
        if (self.hi is not None and c + 1 > self.hi) or j < i and j < n or self._next_required[i] < min(j, n):
            return None
        if j == n and not self.extra:
            return None
        c1 = c + 1 if self.hi is not None else min(c + 1, self.cap)
        if j < n:
            b1 = bits | (1 << self.watched[j]) if j in self.watched and bits >= 0 else bits
            nxt = self.settle(j + 1, b1)
            new = None if nxt is None else (j + 1, c1, nxt)
        else:
            nxt = self.settle(n, bits)
            new = None if nxt is None else (n, c1, nxt)
        return new

    def live(self, state: tuple[int, int, int]) -> bool:
        """Whether some object can still be completed from `state` (memoized; a depth-first search
        with its own stack: it only moves forward in i, and at the end only up in the count)."""
        if self.any_order:
            return self._live_any(state)
        got = self._live.get(state)
        if got is not None:
            return got
        live = self._live
        live[state] = False  # while open: a count that no longer grows is no way forward
        stack = [(state, self._candidates(state))]
        while stack:
            st, todo = stack[-1]
            if not live[st] and self.can_close(st):
                live[st] = True
            if not live[st]:
                descended = False
                for j in todo:
                    nxt = self._next(st, j)
                    if nxt is None:
                        continue
                    if nxt not in live:
                        live[nxt] = False
                        stack.append((nxt, self._candidates(nxt)))
                        descended = True
                        break
                    if live[nxt]:
                        live[st] = True
                        break
                if descended:
                    continue
            stack.pop()
            if stack and live[st]:
                live[stack[-1][0]] = True
        return live[state]

    def _live_any(self, state: tuple[int, int, int]) -> bool:
        """live() in any order: some set of unused watched members W makes the predicates hold, and
        the count can land in [lo, hi] with every unused required member, W, and any number of the
        unused unwatched optional members (and of undeclared ones, when allowed) added."""
        used, c, bits = state
        req = (self._need & ~used).bit_count()
        free = (self._free & ~used).bit_count()
        key = (c, req, free, bits)
        got = self._live.get(key)
        if got is not None:
            return got
        open_bits = self._all_bits & ~bits
        hi = self.hi if self.hi is not None else float("inf")
        live = False
        sub = open_bits
        while True:  # every subset of the unused watched members (at most 2^10)
            low = c + req + sub.bit_count()
            top = float("inf") if self.extra else low + free
            if low <= hi and top >= self.lo and self.holds(bits | sub):
                live = True
                break
            if sub == 0:
                break
            sub = (sub - 1) & open_bits
        self._live[key] = live
        return live

    def _candidates(self, state: tuple[int, int, int]):
        """Members that may syntactically come next (before the liveness check), lazily."""
        n = len(self.names)
        if self.any_order:
            used = state[0]
            yield from (j for j in range(n) if not used >> j & 1)
            if self.extra:
                yield n
            return
        for j in range(state[0], n):
            yield j
            if self.required[j]:
                return
        if self.extra:
            yield n

    def allowed(self, state: tuple[int, int, int]) -> list[int]:
        """The members (len(names): an undeclared key) that may come next."""
        return [j for j in self._candidates(state) if self.step(state, j) is not None]

    def can_continue(self, state: tuple[int, int, int]) -> bool:
        """Whether some member may come next (allowed() is not empty)."""
        return any(self.step(state, j) is not None for j in self._candidates(state))


@dataclass
class ObjectUnion:
    """anyOf over object schemas in any property order, as one member list (emit.object_union).

    Its rules are an ObjectSpec's, with a `mem` rule per distinct (key, value) among the branches:
    `members[u]` lists the (branch, member index) pairs that rule u is (an index len(names) is the
    branch's undeclared key). The LR tables are conflict-free only if the values of one key in two
    branches are the same rule or disjoint languages, so the reduced rule tells exactly which
    branches the member is valid in. The state is the tuple of the branches' states, None for a
    branch the members so far do not fit; the object may close when some branch may.
    """

    branches: list[ObjectSpec]
    members: list[list[tuple[int, int]]]
    obj: int = 0
    mem: int = 0
    rest: int = 0

    def to_json(self) -> dict:
        return {"obj": self.obj, "mem": self.mem, "rest": self.rest, "members": self.members,
                "branches": [b.to_json() for b in self.branches]}

    @classmethod
    def from_json(cls, d: dict) -> "ObjectUnion":
        return cls([ObjectSpec.from_json(b) for b in d["branches"]], [[tuple(x) for x in m] for m in d["members"]],
                   d["obj"], d["mem"], d["rest"])

    def start(self) -> tuple:
        return tuple(st if b.live(st) else None for b in self.branches for st in [b.start()])

    def live(self, state: tuple) -> bool:
        return any(st is not None and b.live(st) for b, st in zip(self.branches, state))

    def can_close(self, state: tuple) -> bool:
        return any(st is not None and b.can_close(st) for b, st in zip(self.branches, state))

    def can_continue(self, state: tuple) -> bool:
        return any(st is not None and b.can_continue(st) for b, st in zip(self.branches, state))

    def step(self, state: tuple, u: int) -> tuple | None:
        new: list = [None] * len(state)
        for k, j in self.members[u]:
            if state[k] is not None:
                new[k] = self.branches[k].step(state[k], j)
        return tuple(new) if any(x is not None for x in new) else None


def object_from_json(d: dict) -> "ObjectSpec | ObjectUnion":
    """An IR object (ObjectSpec or ObjectUnion) from its to_json()."""
    return ObjectUnion.from_json(d) if "branches" in d else ObjectSpec.from_json(d)


def presence_holds(p: tuple, present) -> bool:
    """Whether presence predicate `p` (normalize.py: dependentRequired, anyOf / oneOf / not / if over
    `required`) holds when `present(name)` says which members an object has."""
    if p[0] == "dep":
        return not present(p[1]) or all(present(n) for n in p[2])
    if p[0] == "if":
        return all(present(n) for n in (p[2] if all(present(n) for n in p[1]) else p[3]))
    if p[0] == "not":
        return not all(present(n) for n in p[1])
    hits = sum(all(present(n) for n in branch) for branch in p[1])
    return hits >= 1 if p[0] == "anyOf" else hits == 1


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


class GrammarBuilder:
    """Writes a Grammar incrementally: interned terminals, named nonterminals, appended rules."""

    def __init__(self, max_rules: int = DEFAULT_MAX_RULES) -> None:
        self.terminals: list[Terminal] = []
        self.nonterminals: list[str] = []
        self.lhs: list[int] = []
        self.rhs: list[tuple[int, ...]] = []
        self.priority: list[int] = []
        self.objects: list[ObjectSpec | ObjectUnion] = []
        self.member: dict[int, tuple[int, int]] = {}
        self.lexer_forks = False  # see Grammar.lexer_forks
        self.max_rules = max_rules
        self._term_keys: dict[Hashable, int] = {}
        self._nt_names: dict[str, int] = {}

    def find_terminal(self, key: Hashable) -> int | None:
        """The terminal interned under `key`, if any."""
        return self._term_keys.get(key)

    def terminal(self, name: str, dfa: ByteDFA, *, key: Hashable | None = None, priority: int = 0,
                 is_literal: bool = False, ignore: bool = False) -> int:
        """The index of the terminal for `key` (default: the DFA object), created on first use as `name`."""
        k = key if key is not None else ("dfa", id(dfa))
        got = self._term_keys.get(k)
        if got is not None:
            return got
        if dfa.accept[0]:
            raise GrammarError(f"terminal {name} matches the empty string")
        t = len(self.terminals)
        self.terminals.append(Terminal(name, dfa, priority, is_literal, ignore))
        self._term_keys[k] = t
        return t

    def nonterminal(self, name: str) -> int:
        """A new nonterminal symbol (`~j`); the name is made unique with a numeric suffix if taken."""
        if name in self._nt_names:
            name = f"{name}_{len(self.nonterminals)}"
        j = len(self.nonterminals)
        self.nonterminals.append(name)
        self._nt_names[name] = j
        return ~j

    def named(self, name: str) -> int:
        """The nonterminal called `name`, created if new (for frontends with named rules)."""
        j = self._nt_names.get(name)
        if j is None:
            return self.nonterminal(name)
        return ~j

    def rule(self, lhs: int, rhs: Sequence[int], priority: int = 0) -> int:
        """Append `lhs -> rhs` (lhs a nonterminal symbol); returns the rule's index."""
        if len(self.lhs) >= self.max_rules:
            raise LimitExceeded(f"the grammar needs more than {self.max_rules} rules (the max_rules limit)")
        self.lhs.append(~lhs)
        self.rhs.append(tuple(rhs))
        self.priority.append(priority)
        return len(self.lhs) - 1

    def build(self, start: int, source: str | None = None, *, prune: bool = False, check: bool = True) -> Grammar:
        """The Grammar with start symbol `start`. With `prune`, rules that use a nonterminal deriving
        nothing are dropped (they add no word), then rules unreachable from the start, and the
        nonterminals are renumbered; without it such rules are an error (Grammar.check, unless not `check`)."""
        g = Grammar(self.terminals, self.nonterminals, self.lhs, self.rhs, ~start, self.priority, source,
                    self.objects, self.member, self.lexer_forks)
        if prune:
            return pruned(g)  # productive and reachable by construction
        if check:
            g.check()
        return g


def pruned(g: Grammar) -> Grammar:
    """g without rules that derive nothing or cannot be reached from the start (same language)."""
    n_rules = len(g.lhs)
    lens = np.fromiter(map(len, g.rhs), dtype=np.int64, count=n_rules)
    ptr = np.zeros(n_rules + 1, dtype=np.int64)
    np.cumsum(lens, out=ptr[1:])
    syms = np.fromiter(chain.from_iterable(g.rhs), dtype=np.int64, count=int(ptr[-1]))
    productive, keep_rule, reached = _live_rules(np.array(g.lhs, dtype=np.int64), ptr, syms, np.int64(g.start),
                                                 np.int64(len(g.nonterminals)))
    if not productive[g.start]:
        raise GrammarError(f"the start symbol {g.nonterminals[g.start]!r} derives no finite string")
    if keep_rule.all() and reached.all():
        return g  # nothing to prune: the numbering stays
    rules = np.flatnonzero(keep_rule).tolist()
    keep = np.flatnonzero(reached).tolist()
    new = {a: i for i, a in enumerate(keep)}
    rhs = [tuple(s if s >= 0 else ~new[~s] for s in g.rhs[r]) for r in rules]
    objects, renumber = [], {}
    for k, o in enumerate(g.objects):  # the objects still reached, with their nonterminals renumbered
        if ~o.obj in new and ~o.mem in new and ~o.rest in new:
            renumber[k] = len(objects)
            o.obj, o.mem, o.rest = ~new[~o.obj], ~new[~o.mem], ~new[~o.rest]
            objects.append(o)
    member = {i: (renumber[g.member[r][0]], g.member[r][1]) for i, r in enumerate(rules)
              if r in g.member and g.member[r][0] in renumber}
    return Grammar(g.terminals, [g.nonterminals[a] for a in keep], [new[g.lhs[r]] for r in rules], rhs,
                   new[g.start], [g.priority[r] for r in rules], g.source, objects, member, g.lexer_forks)
