"""The ε-free, cycle-free form of a grammar (same language), which the GLR runtime runs.

With empty rules, a conflict can fork into stacks that grow without reading input (hidden left
recursion: `s: a s "b" | "c"`, `a: ""`), and unit cycles (`a: b`, `b: a`) loop forever. Without
them every reduction pops at least one state or follows a bounded unit chain, so each fork
(automata/glr.py) and each search of parser.can_shift is finite. The textbook construction:
every rule gets a variant for each subset of its nullable symbols left out (long rules are first
split so that no rule has more than MAX_NULLABLE of them), empty rules go (a nullable start gets
`start' -> start | ε`), and the nonterminals of a cycle of unit rules become one.
"""

from __future__ import annotations

from itertools import combinations

from ..automata.lr import deriving
from ..budget import check as check_budget
from .ir import Grammar, pruned

MAX_NULLABLE = 3  # nullable symbols per rule before it is split (2^3 variants at most)


def epsilon_free(g: Grammar) -> Grammar:
    """g without empty rules (but `start' -> ε` when the start is nullable) and without unit cycles."""
    if g.objects:
        raise ValueError("object member constraints live in parser state; they cannot be rewritten")
    names = list(g.nonterminals)
    lhs: list[int] = []
    rhs: list[tuple[int, ...]] = []
    prio: list[int] = []
    nullable = deriving(len(names), g.lhs, [[~s for s in seq] if all(s < 0 for s in seq) else None for seq in g.rhs])
    work = [(g.lhs[r], g.rhs[r], g.priority[r]) for r in range(g.num_rules)]
    seen: set[tuple[int, tuple[int, ...]]] = set()
    while work:
        a, seq, p = work.pop()
        if not len(work) & 255:
            check_budget(lambda: f"the epsilon-free form of rule {names[a]}")
        holes = [i for i, s in enumerate(seq) if s < 0 and nullable[~s]]
        if len(holes) > MAX_NULLABLE:  # a -> x0 rest, rest -> x1 ... (a fresh nonterminal)
            j = len(names)
            names.append(f"{names[a]}__{j}")
            nullable.append(all(s < 0 and nullable[~s] for s in seq[1:]))
            work.append((a, (seq[0], ~j), p))
            work.append((j, seq[1:], p))
            continue
        for k in range(len(holes) + 1):
            for drop in combinations(holes, k):
                out = tuple(s for i, s in enumerate(seq) if i not in drop)
                if not out or (a, out) in seen:
                    continue
                if len(out) == 1 and out[0] == ~a:
                    continue  # a -> a
                seen.add((a, out))
                lhs.append(a)
                rhs.append(out)
                prio.append(p)
    start = g.start
    if nullable[start]:
        j = len(names)
        names.append(f"{names[start]}__opt")
        lhs += [j, j]
        rhs += [(~start,), ()]
        prio += [0, 0]
        start = j
    lhs, rhs, prio = _merge_unit_cycles(len(names), lhs, rhs, prio)
    out = Grammar(g.terminals, names, lhs, rhs, start, prio, g.source, lexer_forks=g.lexer_forks)
    return pruned(out)


def _merge_unit_cycles(n: int, lhs: list[int], rhs: list[tuple[int, ...]],
                       prio: list[int]) -> tuple[list[int], list[tuple[int, ...]], list[int]]:
    """Rename the nonterminals of each cycle of unit rules (a -> b -> ... -> a) to one, dropping a -> a."""
    edges: list[list[int]] = [[] for _ in range(n)]
    for a, seq in zip(lhs, rhs):
        if len(seq) == 1 and seq[0] < 0:
            edges[a].append(~seq[0])
    rep = _scc_representatives(n, edges)
    if all(rep[a] == a for a in range(n)):
        return lhs, rhs, prio
    out_l, out_r, out_p, seen = [], [], [], set()
    for a, seq, p in zip(lhs, rhs, prio):
        a2 = rep[a]
        seq2 = tuple(s if s >= 0 else ~rep[~s] for s in seq)
        if (len(seq2) == 1 and seq2[0] == ~a2) or (a2, seq2) in seen:
            continue
        seen.add((a2, seq2))
        out_l.append(a2)
        out_r.append(seq2)
        out_p.append(p)
    return out_l, out_r, out_p


def _scc_representatives(n: int, edges: list[list[int]]) -> list[int]:
    """For each node, the smallest node of its strongly connected component (Tarjan, iterative)."""
    index = [-1] * n
    low = [0] * n
    on = [False] * n
    stack: list[int] = []
    rep = list(range(n))
    counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        frames = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on[root] = True
        while frames:
            v, i = frames[-1]
            if i < len(edges[v]):
                frames[-1] = (v, i + 1)
                w = edges[v][i]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on[w] = True
                    frames.append((w, 0))
                elif on[w]:
                    low[v] = min(low[v], index[w])
                continue
            frames.pop()
            if frames:
                u = frames[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on[w] = False
                    comp.append(w)
                    if w == v:
                        break
                m = min(comp)
                for w in comp:
                    rep[w] = m
    return rep
