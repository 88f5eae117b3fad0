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
from typing import Hashable, Sequence

from ..automata.fsm import ByteDFA
from ..automata.lexer import Terminal
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
    """Which nonterminals derive some terminal string (a worklist over rules: linear in the grammar)."""
    n = len(g.nonterminals)
    productive = [False] * n
    waiting: list[list[int]] = [[] for _ in range(n)]  # nonterminal -> rules that wait for it
    missing = [0] * g.num_rules
    work = []
    for r, seq in enumerate(g.rhs):
        nts = {~s for s in seq if s < 0}
        missing[r] = len(nts)
        for a in nts:
            waiting[a].append(r)
        if not nts:
            work.append(r)
    while work:
        r = work.pop()
        a = g.lhs[r]
        if productive[a]:
            continue
        productive[a] = True
        for r2 in waiting[a]:
            missing[r2] -= 1
            if missing[r2] == 0:
                work.append(r2)
    return productive


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


class GrammarBuilder:
    """Writes a Grammar incrementally: interned terminals, named nonterminals, appended rules."""

    def __init__(self, max_rules: int = DEFAULT_MAX_RULES) -> None:
        self.terminals: list[Terminal] = []
        self.nonterminals: list[str] = []
        self.lhs: list[int] = []
        self.rhs: list[tuple[int, ...]] = []
        self.priority: list[int] = []
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

    def rule(self, lhs: int, rhs: Sequence[int], priority: int = 0) -> None:
        """Append `lhs -> rhs` (lhs a nonterminal symbol)."""
        if len(self.lhs) >= self.max_rules:
            raise LimitExceeded(f"the grammar needs more than {self.max_rules} rules (the max_rules limit)")
        self.lhs.append(~lhs)
        self.rhs.append(tuple(rhs))
        self.priority.append(priority)

    def alternatives(self, lhs: int, alts: Sequence[Sequence[int]]) -> int:
        for a in alts:
            self.rule(lhs, a)
        return lhs

    def build(self, start: int, source: str | None = None, *, prune: bool = False) -> Grammar:
        """The Grammar with start symbol `start`. With `prune`, rules that use a nonterminal deriving
        nothing are dropped (they add no word), then rules unreachable from the start, and the
        nonterminals are renumbered; without it such rules are an error (checked by Grammar.check)."""
        g = Grammar(self.terminals, self.nonterminals, self.lhs, self.rhs, ~start, self.priority, source)
        if prune:
            return pruned(g)  # productive and reachable by construction
        g.check()
        return g


def pruned(g: Grammar) -> Grammar:
    """g without rules that derive nothing or cannot be reached from the start (same language)."""
    productive = productive_nonterminals(g)
    if not productive[g.start]:
        raise GrammarError(f"the start symbol {g.nonterminals[g.start]!r} derives no finite string")
    live = [r for r in range(g.num_rules) if productive[g.lhs[r]] and all(s >= 0 or productive[~s] for s in g.rhs[r])]
    by_lhs: dict[int, list[int]] = {}
    for r in live:
        by_lhs.setdefault(g.lhs[r], []).append(r)
    seen = {g.start}
    work = [g.start]
    while work:
        a = work.pop()
        for r in by_lhs.get(a, ()):
            for s in g.rhs[r]:
                if s < 0 and ~s not in seen:
                    seen.add(~s)
                    work.append(~s)
    keep = sorted(seen)
    new = {a: i for i, a in enumerate(keep)}
    rules = [r for r in live if g.lhs[r] in seen]
    rhs = [tuple(s if s >= 0 else ~new[~s] for s in g.rhs[r]) for r in rules]
    return Grammar(g.terminals, [g.nonterminals[a] for a in keep], [new[g.lhs[r]] for r in rules], rhs,
                   new[g.start], [g.priority[r] for r in rules], g.source)
