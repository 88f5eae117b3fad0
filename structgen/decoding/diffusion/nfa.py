"""The byte NFA R of a template's fillings (fixed pieces as byte chains, ByteGaps as bounded chains
or loops, TokenGaps as copies of the vocabulary's byte trie) and its segment kinds."""

from __future__ import annotations

import bisect

from .template import ByteGap, Template


_FIXED, _BGAP, _TGAP, _FORK, _END = 0, 1, 2, 3, 4


class _TemplateNFA:
    """The byte NFA of a template's fillings. Segment i owns state ids [base_i, base_{i+1});
    its entry is base_i and its exit base_{i+1} (the next segment's entry); `final` is the
    exit of the last segment. Only ByteGap exits use epsilon moves."""

    def __init__(self, template: Template, oracle) -> None:
        self.oracle = oracle
        self.segs: list[tuple] = []  # (kind, part, gap index or -1)
        self.bases: list[int] = []
        base = 0
        gi = 0
        n_nodes = 0
        for p in template.parts:
            if isinstance(p, bytes):
                if not p:
                    continue
                size, gap = len(p), -1
            elif isinstance(p, ByteGap):
                size, gap = (p.max_len if p.max_len is not None else p.min_len) + 1, gi
                gi += 1
            else:
                n_nodes = oracle._trie_nodes()
                size, gap = p.k * n_nodes, gi
                gi += 1
            self.segs.append((_FIXED if isinstance(p, bytes) else _BGAP if isinstance(p, ByteGap) else _TGAP, p, gap))
            self.bases.append(base)
            base += size
        self.final = base
        self.num_gaps = gi
        self._edges: dict[int, list[tuple[int, int]]] = {}

    def seg_of(self, r: int) -> int:
        """Index of the segment that owns state r (-1 for the final state)."""
        if r >= self.final:
            return -1
        return bisect.bisect_right(self.bases, r) - 1

    def eps(self, r: int) -> int:
        """The epsilon successor of r (a ByteGap state with enough bytes -> the gap's exit), or -1."""
        i = self.seg_of(r)
        if i < 0 or self.segs[i][0] != _BGAP:
            return -1
        p = self.segs[i][1]
        j = r - self.bases[i]
        if j >= p.min_len:
            return self.bases[i + 1] if i + 1 < len(self.bases) else self.final
        return -1

    def is_final(self, r: int) -> bool:
        """Whether the template may end at state r."""
        return r == self.final

    def edges_from(self, r: int, ls: int) -> list[tuple[int, int]]:
        """(byte, successor) pairs leaving r when the lexer is in state ls (only a fork depends on ls)."""
        return self.edges(r)

    def edges(self, r: int) -> list[tuple[int, int]]:
        """(byte, successor) pairs leaving state r."""
        got = self._edges.get(r)
        if got is not None:
            return got
        i = self.seg_of(r)
        out: list[tuple[int, int]] = []
        if i >= 0:
            kind, p, _ = self.segs[i]
            base = self.bases[i]
            j = r - base
            if kind == _FIXED:
                out = [(p[j], r + 1)]
            elif kind == _BGAP:
                if p.max_len is None and j == p.min_len:
                    nxt = r
                elif p.max_len is not None and j >= p.max_len:
                    nxt = -1
                else:
                    nxt = r + 1
                if nxt >= 0:
                    alpha = range(256) if p.alphabet is None else sorted(set(p.alphabet))
                    out = [(b, nxt) for b in alpha]
            elif kind == _END:
                out = []
            else:
                n_nodes = self.oracle._trie_nodes()
                pos, node = divmod(j, n_nodes)
                after = base + (pos + 1) * n_nodes  # (pos + 1, root), or the exit when pos + 1 == k
                for b, child, inner, is_end in self.oracle._children(node):
                    if inner:
                        out.append((b, base + pos * n_nodes + child))
                    if is_end:
                        out.append((b, after))
        self._edges[r] = out
        return out
