"""The lexer run over the token trie: one vectorized byte step (`_lexer_step`) and the memoized
walk of a trie subtree from a lexer state (`_TrieWalker`)."""

from __future__ import annotations

import numpy as np

from ...errors import GrammarError


def no_tie(tie: np.ndarray, states) -> None:
    """GrammarError where a lexeme may end in a lexer tie (automata/lexer.py): the infilling oracle
    follows one terminal per lexeme, so it cannot model the fork (the matcher and masks can)."""
    if np.any(tie[states]):
        raise GrammarError("a lexeme of this grammar may be several terminals (a lexer tie, e.g. overlapping "
                           "anyOf branches); the infilling oracle cannot model that yet")


def _lexer_step(trans: np.ndarray, accept_term: np.ndarray, is_ignore: np.ndarray, reset_of: np.ndarray,
                tie: np.ndarray, ps: np.ndarray,
                byt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One byte per trie edge through the lexer, vectorized: (next states, stopped, their terminals, fed).

    A byte that cannot extend the lexeme ends it: an %ignore lexeme restarts the lexer on the byte
    (next state -1 if it cannot start one); any other accepting terminal is fed to the parser
    (``fed``, aligned with ``stopped``'s true entries; the caller continues after the parser).
    """
    ns = trans[ps, byt].astype(np.int64)
    stop = ns < 0
    no_tie(tie, ps[stop])
    term = accept_term[ps[stop]].astype(np.int64)
    ign = (term >= 0) & is_ignore[np.maximum(term, 0)]
    rs = np.full(term.shape[0], -1, dtype=np.int64)
    if ign.any():
        rs[ign] = trans[reset_of[ps[stop][ign]], byt[stop][ign]]
    ns[stop] = rs
    return ns, stop, term, (term >= 0) & ~ign


class _TrieWalker:
    """The lexer run over a subtree of the token trie, level by level in numpy.

    `walk(node, ls)` starts at trie node `node` in lexer state `ls` and follows every path
    below it while the lexer needs no parser decision: bytes inside a lexeme, and the ends of
    %ignore lexemes. It reports where tokens end (by lexer state) and where a non-ignored
    lexeme ends (the parser must be asked). Results depend on (node, ls) only, not on the
    template position or the stack, so they are memoized across calls.
    """

    def __init__(self, trie, max_memo: int = 20_000) -> None:
        self.trie = trie
        n = trie.num_nodes
        depth = trie.node_depth.astype(np.int64)
        order = np.argsort(depth, kind="stable")
        counts = np.bincount(depth, minlength=1)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        self.by_depth = [order[bounds[d]:bounds[d + 1]] for d in range(len(counts))]  # each ascending
        parent = np.full(n, -1, dtype=np.int64)
        for d in range(1, len(counts)):
            kids, above = self.by_depth[d], self.by_depth[d - 1]
            parent[kids] = above[np.searchsorted(above, kids, side="right") - 1]
        self.parent = parent
        self.byte = trie.node_byte.astype(np.int64)
        self.depth = depth
        self.skip = trie.node_skip.astype(np.int64)
        self.is_end = trie.node_tok_end[:n] > trie.node_tok_start[:n]
        self.inner = self.skip > np.arange(n) + 1
        self.max_memo = max_memo
        self.memo: dict[tuple[int, int], tuple[list, list]] = {}

    def path(self, node: int, c: int) -> list[int]:
        """Trie nodes from `node` (excluded) down to its descendant `c` (included)."""
        out = []
        while c != node:
            out.append(c)
            c = int(self.parent[c])
        out.reverse()
        return out

    def walk(self, node: int, ls: int, lx, is_ignore: np.ndarray) -> tuple[list, list]:
        """(ends, feeds): ends = [(lexer state, a trie node where a token ends in it)], one per state;
        feeds = [(terminal, node n, lexer state at n)]: a lexeme accepting the terminal ends at
        n because some child's byte cannot extend it."""
        key = (node, ls)
        got = self.memo.get(key)
        if got is not None:
            return got
        lo, hi = node, int(self.skip[node])
        st = np.full(hi - lo, -1, dtype=np.int64)
        st[0] = ls
        trans, accept_term = lx.trans, lx.accept_term
        reset_of = lx.dfa_start[lx.state_dfa[:lx.num_states]]
        ends: dict[int, int] = {}
        feeds: list[tuple[int, int, int]] = []
        fed: set[tuple[int, int]] = set()
        d = int(self.depth[node]) + 1
        while d < len(self.by_depth):
            level = self.by_depth[d]
            a, b = np.searchsorted(level, [lo + 1, hi])
            if a >= b:
                break
            idx = level[a:b]
            ps = st[self.parent[idx] - lo]
            live = ps >= 0
            if not live.any():
                break
            idx, ps = idx[live], ps[live]
            byt = self.byte[idx]
            ns, stop, term, fe = _lexer_step(trans, accept_term, is_ignore, reset_of, lx.tie, ps, byt)
            if stop.any():
                if fe.any():
                    for t, n, s in zip(term[fe].tolist(), self.parent[idx[stop][fe]].tolist(), ps[stop][fe].tolist()):
                        if (n, s) not in fed:
                            fed.add((n, s))
                            feeds.append((t, n, s))
            st[idx - lo] = ns
            ok = (ns >= 0) & self.is_end[idx]
            if ok.any():
                for s, c in zip(ns[ok].tolist(), idx[ok].tolist()):
                    if s not in ends:
                        ends[s] = c
            d += 1
        got = (list(ends.items()), feeds)
        if len(self.memo) >= self.max_memo:
            self.memo.clear()
        self.memo[key] = got
        return got
