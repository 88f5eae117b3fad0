"""The ASAp trie: a node per visited prefix (its allowed tokens, their log-probabilities and the
children's EFG upper bounds), the log-probability helpers it shares with exact_target.py, and its .npz format.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from structgen import bitset
from structgen.errors import StructgenError
from structgen.matcher import GrammarMatcher

_FORMAT = "structgen-asap-trie-v1"
_NODE_OVERHEAD = 300  # bytes: the node object, its dict and the parent's dict entry (approximate)
_NEG_INF = -math.inf


def _allowed_ids(matcher: GrammarMatcher, vocab_size: int) -> np.ndarray:
    """Sorted int32 ids of the tokens the matcher allows next."""
    return bitset.to_ids(matcher.next_token_bits(), vocab_size)


def _log_softmax_at(logits: np.ndarray, ids: np.ndarray, temperature: float) -> np.ndarray:
    """float32 log-softmax of ``logits / temperature`` (computed in float64) at ``ids``."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    if ids.size and int(ids[-1]) >= x.shape[0]:
        raise StructgenError(f"the model gives {x.shape[0]} logits but the grammar allows token {int(ids[-1])}: "
                             "compile the grammar with the model's tokenizer")
    if temperature != 1.0:
        x = x / temperature
    m = np.max(x)
    if not np.isfinite(m):
        raise StructgenError("the model returned no finite logit")
    log_z = m + math.log(np.sum(np.exp(x - m)))
    return (x[ids] - log_z).astype(np.float32)


def _logsumexp(w: np.ndarray) -> float:
    if w.size == 0:
        return _NEG_INF
    m = float(np.max(w))
    if m == _NEG_INF:
        return _NEG_INF
    return m + math.log(float(np.sum(np.exp(w - m))))


class _Node:
    """One trie node: a prefix's allowed tokens, their log-probabilities and child bounds."""

    __slots__ = ("allowed", "lp", "lv", "logv", "children")

    def __init__(self, allowed: np.ndarray, lp: np.ndarray) -> None:
        self.allowed = allowed  # int32, sorted
        self.lp = lp  # float32 log P(t | prefix) for t in allowed
        self.lv: np.ndarray | None = None  # float64 log V(child), aligned with allowed; None = all 0
        self.logv = 0.0 if allowed.size else _NEG_INF  # log of the EFG upper bound
        self.children: dict[int, _Node] = {}

    def nbytes(self) -> int:
        return self.allowed.nbytes + self.lp.nbytes + (0 if self.lv is None else self.lv.nbytes) + _NODE_OVERHEAD

    def weights(self, learning: bool) -> np.ndarray:
        """float64 log sampling weights over ``allowed``: log P(t|p) (+ log V(p·t) when learning)."""
        w = self.lp.astype(np.float64)
        if learning and self.lv is not None:
            w += self.lv
        return w


def _grammar_key(compiled_grammar: Any) -> str:
    """A hash identifying the grammar and tokenizer a trie was built for."""
    h = hashlib.sha256()
    h.update(compiled_grammar.grammar.encode("utf-8"))
    h.update(b"\0" + compiled_grammar.start.encode("utf-8") + b"\0")
    h.update(compiled_grammar.tokenizer_info.fingerprint().encode("ascii"))
    return h.hexdigest()


def iter_nodes(root: _Node | None) -> Iterator[tuple[tuple[int, ...], _Node]]:
    """(prefix, node) for every node under ``root``, depth first."""
    if root is None:
        return
    stack: list[tuple[tuple[int, ...], _Node]] = [((), root)]
    while stack:
        prefix, node = stack.pop()
        yield prefix, node
        for t in sorted(node.children, reverse=True):
            stack.append((prefix + (t,), node.children[t]))


def write_trie(path: str | os.PathLike[str], root: _Node | None, compiled_grammar: Any, meta: dict[str, Any]) -> None:
    """Write the trie under ``root`` and ``meta`` (settings, counters, random state) to ``path`` (.npz, no pickle)."""
    parents, tokens, logv, sizes, has_lv = [], [], [], [], []
    allowed, lps, lvs = [], [], []
    index: dict[int, int] = {}
    for prefix, node in iter_nodes(root):
        index[id(node)] = len(parents)
        if prefix:
            parent = root
            for t in prefix[:-1]:
                parent = parent.children[t]
            parents.append(index[id(parent)])
            tokens.append(prefix[-1])
        else:
            parents.append(-1)
            tokens.append(-1)
        logv.append(node.logv)
        sizes.append(node.allowed.size)
        has_lv.append(node.lv is not None)
        allowed.append(node.allowed)
        lps.append(node.lp)
        if node.lv is not None:
            lvs.append(node.lv)
    meta = {"format": _FORMAT, "grammar_key": _grammar_key(compiled_grammar), **meta}
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    buf = io.BytesIO()
    np.savez_compressed(
        buf, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        parent=np.array(parents, dtype=np.int64), token=np.array(tokens, dtype=np.int64),
        logv=np.array(logv, dtype=np.float64), size=np.array(sizes, dtype=np.int64),
        has_lv=np.array(has_lv, dtype=np.bool_), allowed=cat(allowed, np.int32), lp=cat(lps, np.float32),
        lv=cat(lvs, np.float64))
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)


def read_trie(path: str | os.PathLike[str], compiled_grammar: Any) -> tuple[dict[str, Any], _Node | None]:
    """(meta, root) of a trie written by :func:`write_trie` for the same grammar and tokenizer."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode("utf-8"))
        if meta.get("format") != _FORMAT:
            raise StructgenError(f"{path} is not a {_FORMAT} file")
        if meta["grammar_key"] != _grammar_key(compiled_grammar):
            raise StructgenError(f"{path} was built for another grammar or tokenizer")
        parent, token, logv, size, has_lv = z["parent"], z["token"], z["logv"], z["size"], z["has_lv"]
        allowed, lp, lv = z["allowed"], z["lp"], z["lv"]
    root: _Node | None = None
    nodes: list[_Node] = []
    a = b = 0
    for k in range(parent.shape[0]):
        n = int(size[k])
        node = _Node(allowed[a:a + n].copy(), lp[a:a + n].copy())
        node.logv = float(logv[k])
        if has_lv[k]:
            node.lv = lv[b:b + n].copy()
            b += n
        a += n
        if parent[k] < 0:
            root = node
        else:
            nodes[int(parent[k])].children[int(token[k])] = node
        nodes.append(node)
    return meta, root
