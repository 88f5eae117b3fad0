"""The byte trie of a vocabulary's allowed tokens, as flat arrays for the numba kernels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numba import njit



# --------------------------------------------------------------------------------------
# Token trie
# --------------------------------------------------------------------------------------


class TokenTrie:
    """Byte trie of the allowed tokens, as flat int32 arrays for numba kernels.

    Layout: nodes are numbered in *preorder* (a node before its descendants), children
    in increasing byte value. Node 0 is the root (the empty string; ``node_byte[0] = -1``,
    ``node_depth[0] = 0``). For node ``i``:

    * ``node_byte[i]``  – the byte on the edge from its parent (0..255);
    * ``node_depth[i]`` – the length of the byte string the node spells;
    * ``node_skip[i]``  – the first node after ``i``'s subtree, so ``i + 1 .. skip - 1``
      are exactly its descendants. A walk that rejects byte ``node_byte[i]`` jumps to
      ``node_skip[i]``; the children of ``i`` are ``c = i + 1``, then ``c = node_skip[c]``
      while ``c < node_skip[i]``;
    * ``tok_ids[node_tok_start[i]:node_tok_end[i]]`` – the token ids whose bytes end
      exactly at ``i`` (several ids can share identical bytes, hence a range). ``tok_ids``
      is in node order, so a subtree's tokens are also one contiguous range:
      ``tok_ids[node_tok_start[i]:node_tok_start[node_skip[i]]]`` (``node_tok_start``
      has one extra sentinel entry equal to ``len(tok_ids)`` for this purpose).

    Only non-special tokens with non-empty bytes are inserted. ``max_depth`` is the longest
    token in bytes; ``num_nodes`` counts the root.
    """

    node_byte: np.ndarray
    node_depth: np.ndarray
    node_skip: np.ndarray
    node_tok_start: np.ndarray
    node_tok_end: np.ndarray
    tok_ids: np.ndarray
    max_depth: int
    num_nodes: int

    def __init__(
        self,
        node_byte: np.ndarray,
        node_depth: np.ndarray,
        node_skip: np.ndarray,
        node_tok_start: np.ndarray,
        node_tok_end: np.ndarray,
        tok_ids: np.ndarray,
    ) -> None:
        arrays = (node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids)
        for a in arrays:
            a.flags.writeable = False
        self.node_byte = node_byte
        self.node_depth = node_depth
        self.node_skip = node_skip
        self.node_tok_start = node_tok_start
        self.node_tok_end = node_tok_end
        self.tok_ids = tok_ids
        self.num_nodes = int(len(node_byte))
        self.max_depth = int(node_depth.max()) if self.num_nodes else 0

    @classmethod
    def build(cls, token_bytes: Sequence[bytes], exclude: Iterable[int] = ()) -> TokenTrie:
        """Build the trie of ``token_bytes`` (indexed by id), leaving out ``exclude`` ids
        and empty tokens. One sort of the distinct byte strings, then one pass with a stack
        of the current path emits the preorder arrays."""
        excluded = set(int(i) for i in exclude)
        ids = sorted((i for i, b in enumerate(token_bytes) if b and i not in excluded), key=token_bytes.__getitem__)
        # stable: ids of equal byte strings stay in increasing order
        lengths = np.fromiter((len(token_bytes[i]) for i in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.frombuffer(b"".join([token_bytes[i] for i in ids]), dtype=np.uint8)
        return cls(*_trie_arrays(flat, offsets), np.array(ids, dtype=np.int32))

    def find(self, data: bytes) -> int:
        """Node spelling exactly ``data`` (0 for b""), or -1 if no token starts with it."""
        node = 0
        nb, skip = self.node_byte, self.node_skip
        for byte in data:
            child, end = node + 1, int(skip[node])
            while child < end and nb[child] != byte:
                child = int(skip[child])
            if child >= end:
                return -1
            node = child
        return node

    def token_ids_at(self, node: int) -> list[int]:
        """Token ids whose bytes end exactly at ``node``."""
        return self.tok_ids[self.node_tok_start[node] : self.node_tok_end[node]].tolist()

    def children(self, node: int) -> list[int]:
        """Child nodes of ``node``, in increasing byte order."""
        out, child, end = [], node + 1, int(self.node_skip[node])
        while child < end:
            out.append(child)
            child = int(self.node_skip[child])
        return out

    def __repr__(self) -> str:
        return f"TokenTrie(num_nodes={self.num_nodes}, tokens={len(self.tok_ids)}, max_depth={self.max_depth})"


@njit(cache=True, nogil=True)
def _lcp(flat, offsets, i):
    """Length of the common prefix of sorted keys i - 1 and i (0 for the first)."""
    if i == 0:
        return 0
    a, b, p = offsets[i], offsets[i + 1], offsets[i - 1]
    limit = min(b - a, a - p)
    n = 0
    while n < limit and flat[p + n] == flat[a + n]:
        n += 1
    return n


@njit(cache=True, nogil=True)
def _trie_arrays(flat, offsets):
    """Preorder trie arrays (byte, depth, skip, token start, token end) of sorted keys
    `flat[offsets[i]:offsets[i + 1]]` (one per token; equal keys are adjacent): one pass with a
    stack of the current path; a key adds the nodes past its common prefix with the previous one."""
    k = len(offsets) - 1
    n = 1
    longest = 1
    for i in range(k):
        n += offsets[i + 1] - offsets[i] - _lcp(flat, offsets, i)
        longest = max(longest, offsets[i + 1] - offsets[i] + 1)
    node_byte = np.full(n, -1, dtype=np.int32)
    node_depth = np.zeros(n, dtype=np.int32)
    node_skip = np.zeros(n, dtype=np.int32)
    node_tok_start = np.zeros(n + 1, dtype=np.int32)
    node_tok_end = np.zeros(n, dtype=np.int32)
    stack = np.zeros(longest, dtype=np.int64)
    depth = 1  # stack[:depth] is the current path; stack[0] = root
    m = 1
    for i in range(k):
        size = offsets[i + 1] - offsets[i]
        lcp = _lcp(flat, offsets, i)
        if i > 0 and lcp == size and offsets[i] - offsets[i - 1] == size:  # the same bytes: one more token
            node_tok_end[m - 1] += 1
            continue
        while depth > lcp + 1:
            depth -= 1
            node_skip[stack[depth]] = m
        for d in range(lcp, size):
            node_byte[m] = flat[offsets[i] + d]
            node_depth[m] = d + 1
            node_tok_start[m] = i
            node_tok_end[m] = i
            stack[depth] = m
            depth += 1
            m += 1
        node_tok_end[m - 1] = i + 1
    while depth > 0:
        depth -= 1
        node_skip[stack[depth]] = m
    node_tok_start[n] = k
    return node_byte, node_depth, node_skip, node_tok_start, node_tok_end
