"""Random words of a grammar IR (frontend/ir.py), for tests: random derivations, terminals by random DFA walks."""

from __future__ import annotations

import random

import numpy as np


def _min_depths(ir) -> list[int]:
    """Per nonterminal: the least derivation height (to pick terminating alternatives when deep)."""
    inf = 1 << 30
    best = [inf] * len(ir.nonterminals)
    changed = True
    while changed:
        changed = False
        for a, seq in zip(ir.lhs, ir.rhs):
            h = 1 + max((best[~s] for s in seq if s < 0), default=0)
            if h < best[a]:
                best[a] = h
                changed = True
    return best


def dfa_word(dfa, rng: random.Random, max_len: int = 12) -> bytes:
    """A random word of a ByteDFA: a random walk that stops at an accepting state with prob 1/2
    (always past max_len, then following the shortest way to an accepting state)."""
    trans, accept = dfa.trans, dfa.accept
    n = dfa.num_states
    dist = np.full(n, 1 << 30, dtype=np.int64)  # steps to acceptance
    dist[accept] = 0
    for _ in range(n):
        nxt = np.where(trans >= 0, dist[np.maximum(trans, 0)] + 1, 1 << 30).min(axis=1)
        new = np.minimum(dist, nxt)
        if (new == dist).all():
            break
        dist = new
    out = bytearray()
    s = 0
    while True:
        live = np.flatnonzero(trans[s] >= 0)
        if accept[s] and (len(out) >= max_len or not live.size or rng.random() < 0.5):
            return bytes(out)
        if len(out) >= max_len:
            live = live[dist[trans[s, live]] < dist[s]]
        b = int(rng.choice(live.tolist()))
        out.append(b)
        s = int(trans[s, b])


def random_word(ir, rng: random.Random, max_depth: int = 12, sep: bytes = b"") -> bytes:
    """A random word of the grammar (terminals joined by `sep`: a space where %ignore needs one)."""
    by_lhs: dict[int, list[int]] = {}
    for r, a in enumerate(ir.lhs):
        by_lhs.setdefault(a, []).append(r)
    depth_of = _min_depths(ir)
    parts: list[bytes] = []

    def expand(a: int, depth: int) -> None:
        rules = by_lhs[a]
        if depth >= max_depth:  # the alternatives that finish soonest
            h = [1 + max((depth_of[~s] for s in ir.rhs[r] if s < 0), default=0) for r in rules]
            rules = [r for r, x in zip(rules, h) if x == min(h)]
        for s in ir.rhs[rng.choice(rules)]:
            if s >= 0:
                parts.append(dfa_word(ir.terminals[s].dfa, rng))
            else:
                expand(~s, depth + 1)

    expand(ir.start, 0)
    return sep.join(parts)
