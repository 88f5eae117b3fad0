"""GBNF (llama.cpp) and EBNF (XGrammar) grammar text -> grammar IR, with exact character semantics.

A GBNF grammar has no lexer: its language is a set of strings of code points. The IR's lexer is
greedy (longest match) over terminals, which would change that language if terminals overlapped or
one could extend another. So every terminal written here matches exactly ONE code point (as its
UTF-8 encoding, which is prefix-free) and terminals are pairwise disjoint: the code points are
partitioned into *atoms*, the coarsest classes such that every character set of the grammar (a
`[...]` class, a literal's character, `.`) is a union of atoms. A set of one atom is that atom's
terminal; a larger set is a nonterminal with one rule per atom; `"abc"` is the atoms of a, b, c.

Syntax (both dialects): `name ::= alternatives`; names of letters, digits, `_` and `-`; string
literals `"..."` (`""` is the empty string); classes `[...]` with ranges `a-z` and `^` negation;
`.`; groups `( ... )`; `|`; postfix `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, `{,n}` (stackable:
`x*?` is `(x*)?`); `#` comments. Escapes: `\\n \\r \\t \\\\ \\" \\[ \\]`, `\\xHH` (gbnf: exactly two
hex digits, as llama.cpp; ebnf: one or more, as XGrammar), `\\uHHHH`, `\\UHHHHHHHH`, XGrammar's
`\\' \\? \\a \\b \\f \\v \\0 \\e` and its class escapes `\\^ \\$ \\. \\* \\+ \\( \\) \\{ \\} \\| \\/ \\-`.
A rule's body runs until the next `name ::=` that starts a line, or the end of the text, so
alternatives may continue on new lines anywhere (llama.cpp only allows that after `|` or inside
parentheses; every grammar it reads means the same here).

Semantics, checked against llama.cpp's `src/llama-grammar.cpp` and XGrammar's `grammar_parser.cc`:
- `.` is any one code point, newline included (llama.cpp's CHAR_ANY matches every code point);
  `[^...]` is every code point outside the set, newline included. Code points are U+0000..U+10FFFF
  without the surrogates U+D800..U+DFFF (no UTF-8 encodes them); U+0000 is a character.
- A range `z-a` is empty in gbnf (llama.cpp) and an error in ebnf (XGrammar); a class or literal
  character that matches no code point at all (`[]`, `[z-a]`, `"\\uD800"`) is a GrammarError.
- A rule defined twice: gbnf -> the last definition replaces the earlier ones (llama.cpp's add_rule
  overwrites); ebnf -> GrammarError (XGrammar refuses).
- Names: gbnf as llama.cpp plus `_` (`a.b` is `a` then `.` then `b`, unless a rule `a.b` is
  defined); ebnf as XGrammar (`.` is a name character; a lone `.` is still any character).
- Left recursion is allowed (llama.cpp refuses it; the language is well defined). Undefined rule
  references (in any rule) are errors; rules the start rule cannot reach are not compiled.
- Refused with UnsupportedFeature: llama.cpp token literals `<...>`, `<[id]>`, `!<...>` (structgen
  grammars constrain text), XGrammar's lookahead `(= ...)`, builtins `TagDispatch(...)`, `Regex(...)`,
  `Token(...)`, `ExcludeToken(...)`, `TokenTagDispatch(...)`, and rule attributes `name[...] ::=`.

Repetitions: `x*` is R -> R x | ε (left recursion keeps LR stacks short), `x+` is R -> R x | x,
`x?` is O -> x | ε, `x{m,n}` is m copies then a chain C_k -> x C_(k-1) | ε; identical groups,
repetitions and sets share one nonterminal, and `r ::= x*` makes r itself the loop. A nullable
body under `*`/`+` loses its empty case where that is syntactic (`(a?)*` is `a*`): no ε-cycles.

The text is parsed in gbnf_syntax.py; char_classes.py makes the atoms and their terminals.
"""

from __future__ import annotations

from ..automata.dfa import DEFAULT_MAX_STATES
from ..budget import check as check_budget
from ..errors import GrammarError, LimitExceeded
from .char_classes import atoms_of, render_ranges, utf8_class_dfa
from .gbnf_syntax import _Parser
from .ir import Grammar, GrammarBuilder

MAX_EXPANSION = 100_000  # symbols that counted repetitions may write in all (x{m,n} costs about n)


def gbnf_to_ir(text: str, start: str = "root", *, dialect: str = "gbnf",
               max_dfa_states: int = DEFAULT_MAX_STATES) -> Grammar:
    """Read GBNF ("gbnf", llama.cpp) or EBNF ("ebnf", XGrammar) text into a Grammar whose
    language is exactly the grammar's set of strings (see the module docstring)."""
    if dialect not in ("gbnf", "ebnf"):
        raise GrammarError(f"unknown grammar dialect {dialect!r} (expected 'gbnf' or 'ebnf')")
    if not isinstance(text, str) or not text.strip():
        raise GrammarError("grammar text is empty")
    parser = _Parser(text, dialect)
    defs = parser.parse()
    if start not in defs:
        raise GrammarError(f"the start rule {start!r} is not defined")
    return _Lowering(defs, parser, start, max_dfa_states).build(text)


# --- lowering to the IR ---------------------------------------------------------------------------


class _Lowering:
    """AST -> rules. Nonterminals of the reachable named rules first (so synthesized names never
    shadow them), then atoms, then each body; groups, repetitions and sets are memoized."""

    def __init__(self, defs: dict[str, tuple], parser: _Parser, start: str, max_dfa_states: int) -> None:
        self.defs, self.start, self.max_dfa_states = defs, start, max_dfa_states
        undefined = sorted((pos, name) for name, pos in parser.uses.items() if name not in defs)
        if undefined:
            names = ", ".join(repr(n) for _, n in undefined)
            raise GrammarError(f"undefined rule{'s' if len(undefined) > 1 else ''} {names} "
                               f"(first used at {parser.where(undefined[0][0])})")
        rank = {name: i for i, name in enumerate(defs)}
        self.order = sorted(self._reachable(), key=rank.__getitem__)
        self.b = GrammarBuilder()
        self.nt = {name: self.b.named(name) for name in self.order}
        sets: dict[tuple, int] = {}
        for name in self.order:
            for x in _walk(defs[name]):
                if x[0] == "chars":
                    sets.setdefault(x[1], len(sets))
        self.set_index = sets
        self.atoms, self.members = atoms_of(list(sets))
        self.names: set[str] = set()
        self.atom_term: dict[int, int] = {}
        self.memo: dict[tuple, list[int]] = {}
        self.expanded = 0
        self.rule = start
        self.own: tuple[tuple, int] | None = None  # (repetition, the named rule that is its loop)

    def _reachable(self) -> set[str]:
        seen, todo = {self.start}, [self.start]
        while todo:
            for x in _walk(self.defs[todo.pop()]):
                if x[0] == "ref" and x[1] not in seen:
                    seen.add(x[1])
                    todo.append(x[1])
        return seen

    def build(self, text: str) -> Grammar:
        for name in self.order:
            check_budget(f"rule {name}")
            self.rule, nt = name, self.nt[name]
            alts = _alternatives(self.defs[name])
            only = alts[0][1][0] if len(alts) == 1 and len(alts[0][1]) == 1 else None
            if only is not None and only[0] == "rep" and only not in self.memo:
                self.own = (only, nt)  # `r ::= x*`: r itself is the loop, no unit rule
                got = self.symbols(only)
                self.own = None
                if got != [nt]:
                    self.b.rule(nt, got)
                continue
            for seq in alts:
                self.b.rule(nt, self.symbols(seq))
        return self.b.build(self.nt[self.start], source=text)

    def atom(self, a: int) -> int:
        t = self.atom_term.get(a)
        if t is None:
            ranges = self.atoms[a]
            dfa = utf8_class_dfa(ranges)
            if dfa.num_states > self.max_dfa_states:
                raise LimitExceeded(f"a character class needs {dfa.num_states} DFA states", limit="max_dfa_states",
                                    where=f"rule {self.rule}")
            name = render_ranges(ranges)
            name = f"{name}#{a}" if name in self.names else name
            self.names.add(name)
            single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
            t = self.atom_term[a] = self.b.terminal(name, dfa, key=("atom", ranges), is_literal=single)
        return t

    def symbols(self, node: tuple) -> list[int]:
        """The symbol sequence that derives exactly node's strings."""
        kind = node[0]
        if kind == "chars":
            atoms = self.members[self.set_index[node[1]]]
            if len(atoms) == 1:
                return [self.atom(atoms[0])]
            return self.memoized(node, render_ranges(node[1]),
                                 lambda nt: [self.b.rule(nt, [self.atom(a)]) for a in atoms])
        if kind == "ref":
            return [self.nt[node[1]]]
        if kind == "seq":
            return [s for item in node[1] for s in self.symbols(item)]
        if kind == "alt":
            if len(node[1]) == 1:
                return self.symbols(node[1][0])
            return self.memoized(node, "alt",
                                 lambda nt: [self.b.rule(nt, self.symbols(s)) for s in _alternatives(node)])
        return self.repeat(node)

    def memoized(self, key: tuple, name: str, fill) -> list[int]:
        got = self.memo.get(key)
        if got is None:
            if self.own is not None and self.own[0] == key:
                nt = self.own[1]
            else:
                nt = self.b.nonterminal(name if key[0] == "chars" else f"{self.rule}__{name}")
            got = self.memo[key] = [nt]
            fill(nt)
        return got

    def repeat(self, node: tuple) -> list[int]:
        _, item, m, n = node
        if n == 0:
            return []
        if n is None or n > 1:  # a nullable body under a loop: drop its empty case where easy
            stripped = _nonempty(item)
            if stripped is None:
                return []
            if stripped is not item:
                return self.repeat(("rep", stripped, 0, n))
            if item[0] == "rep" and item[2] == 1 and item[3] is None and n is None:  # (x+)* = x*, (x+)+ = x+
                return self.repeat(("rep", item[1], m, None))
        x = self.symbols(item)
        if not x or (m, n) == (1, 1):
            return x
        if n is None and m <= 1:
            return self.memoized(node, "star" if m == 0 else "plus",
                                 lambda nt: (self.b.rule(nt, [nt, *x]), self.b.rule(nt, x if m else [])))
        if (m, n) == (0, 1):
            return self.memoized(node, "opt", lambda nt: (self.b.rule(nt, x), self.b.rule(nt, [])))
        self.expanded += m + (n - m if n is not None else 1)
        if self.expanded > MAX_EXPANSION:
            raise LimitExceeded(f"rule {self.rule}: counted repetitions expand to more than {MAX_EXPANSION} symbols")
        if len(x) > 1:
            x = self.memoized(("seq-of", item), "seq", lambda nt: self.b.rule(nt, x))
        if n is None:
            return x * m + self.repeat(("rep", item, 0, None))
        tail: list[int] = []  # C_j -> x C_(j-1) | ε: up to n - m more copies, unambiguously
        for j in range(1, n - m + 1):
            tail = self.memoized(("chain", item, j), f"upto{j}",
                                 lambda nt: (self.b.rule(nt, x + tail), self.b.rule(nt, [])))
        return x * m + tail


def _alternatives(node: tuple) -> list[tuple]:
    """An "alt" node's sequences, with alternatives that are just a group spliced in and
    duplicates dropped (the same language, fewer unit rules and no identical rules)."""
    out: list[tuple] = []
    for seq in node[1]:
        for s in (_alternatives(seq[1][0]) if len(seq[1]) == 1 and seq[1][0][0] == "alt" else [seq]):
            if s not in out:
                out.append(s)
    return out


def _nonempty(node: tuple) -> tuple | None:
    """node without the empty string, when that is syntactically easy (else node itself);
    None when node matches only the empty string."""
    kind = node[0]
    if kind == "rep" and node[2] == 0:
        return ("rep", node[1], 1, node[3]) if node[3] != 1 else node[1]
    if kind == "seq" and len(node[1]) <= 1:
        if not node[1]:
            return None
        inner = _nonempty(node[1][0])
        return node if inner is node[1][0] else inner
    if kind == "alt":
        alts = [a for a in node[1] if a != ("seq", ())]
        if not alts:
            return None
        if len(alts) < len(node[1]):
            return ("alt", tuple(alts))
        if len(alts) == 1:
            inner = _nonempty(alts[0])
            return node if inner is alts[0] else inner
    return node


def _walk(node: tuple):
    stack = [node]
    while stack:
        x = stack.pop()
        yield x
        if x[0] in ("seq", "alt"):
            stack.extend(x[1])
        elif x[0] == "rep":
            stack.append(x[1])


__all__ = ["gbnf_to_ir", "MAX_EXPANSION"]
