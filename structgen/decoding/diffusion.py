"""Infilling constraints: can a template of fixed byte pieces and gaps still become a word?

Diffusion LMs and fill-in-the-middle models write out of order, so prefix masks do not apply;
the question is whether L(G) ∩ R is empty, where R is the regular language of all fillings of
a template (Mündler, Dekoninck, Vechev 2025). This module answers it exactly for the language
the GrammarMatcher defines (greedy contextual lexer + LR parser, `automata/step.py`).

The model. The matcher is a pushdown system: the finite control is the lexer state `ls` (its
product DFA is the one for the set S of terminals the parser can shift next), the stack holds
parser states. With canonical LR(1) tables (`automata/pushdown.py`) S is a function of the top
state alone, so pushing a state fixes the next lexeme's DFA without looking deeper. R is an NFA
over bytes (fixed pieces are byte chains, a ByteGap a bounded chain or a loop over its alphabet,
a TokenGap of k positions k copies of the vocabulary's byte trie).

The algorithm is a GLR parse of the NFA's language over a graph-structured stack (GSS) whose
nodes are keyed by (LR state, what determines the future once it is pushed):

* a node pushed by a shift is keyed by (LR state, NFA state, lexer state) right after the push;
  between two shifts the stack is untouched, so everything the lexer can do from there (bytes
  inside a lexeme, whole %ignore lexemes, where the next lexeme ends and with which terminal
  and next byte) is a "closure" memoized per (NFA state, lexer state);
* a node pushed by a goto while reducing on terminal t, triggered by byte b into NFA state r,
  is keyed by (LR state, t, b, r).

Since LR moves never look below the states they pop, every path in this finite graph is a
reachable stack, and every reachable stack is a path: the answer is exact (no false "yes",
no false "no"). Reductions pop along GSS paths and wait at nodes for edges added later.
Every derived fact keeps the first byte string (a rope of NFA steps) that justified it, so a
"yes" comes with a witness filling that the GrammarMatcher accepts.

Grammar-level work (LR(1) tables, lexer start state per LR state, lexer rows, trie children)
lives in a `CompletabilityOracle` and is reused across calls; the GSS is per call.
"""

from __future__ import annotations

import bisect
import heapq
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from .. import bitset
from ..automata.pushdown import LR1Tables, canonical_lr1
from ..errors import LimitExceeded, StructgenError

DEFAULT_MAX_FACTS = 2_000_000
DEFAULT_MAX_WITNESS_BYTES = 1_000_000



def _lexer_step(trans: np.ndarray, accept_term: np.ndarray, is_ignore: np.ndarray, reset_of: np.ndarray,
                ps: np.ndarray, byt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One byte per trie edge through the lexer, vectorized: (next states, stopped, their terminals, fed).

    A byte that cannot extend the lexeme ends it: an %ignore lexeme restarts the lexer on the byte
    (next state -1 if it cannot start one); any other accepting terminal is fed to the parser
    (``fed``, aligned with ``stopped``'s true entries; the caller continues after the parser).
    """
    ns = trans[ps, byt].astype(np.int64)
    stop = ns < 0
    term = accept_term[ps[stop]].astype(np.int64)
    ign = (term >= 0) & is_ignore[np.maximum(term, 0)]
    rs = np.full(term.shape[0], -1, dtype=np.int64)
    if ign.any():
        rs[ign] = trans[reset_of[ps[stop][ign]], byt[stop][ign]]
    ns[stop] = rs
    return ns, stop, term, (term >= 0) & ~ign

# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class ByteGap:
    """A gap of `min_len..max_len` arbitrary bytes (`max_len=None`: unbounded), optionally
    restricted to the bytes in `alphabet`."""

    min_len: int = 0
    max_len: int | None = None
    alphabet: bytes | None = None

    def __post_init__(self) -> None:
        if self.min_len < 0 or (self.max_len is not None and self.max_len < self.min_len):
            raise StructgenError(f"bad ByteGap bounds {self.min_len}..{self.max_len}")


@dataclass(frozen=True)
class TokenGap:
    """A gap of exactly `k` positions, each one vocabulary token (not special, not empty)."""

    k: int

    def __post_init__(self) -> None:
        if self.k < 0:
            raise StructgenError(f"bad TokenGap length {self.k}")


Part = Union[bytes, ByteGap, TokenGap]
Filling = Union[bytes, list]  # bytes for a ByteGap, a list of token ids for a TokenGap


@dataclass(frozen=True)
class Template:
    """Fixed byte pieces and gaps, in order. `str` pieces are UTF-8 encoded."""

    parts: tuple = field(default=())

    def __init__(self, parts) -> None:
        norm = []
        for p in parts:
            if isinstance(p, str):
                p = p.encode("utf-8")
            if isinstance(p, (bytes, bytearray)):
                p = bytes(p)
            elif not isinstance(p, (ByteGap, TokenGap)):
                raise StructgenError(f"template part must be bytes, str, ByteGap or TokenGap, not {type(p).__name__}")
            norm.append(p)
        object.__setattr__(self, "parts", tuple(norm))

    @property
    def gaps(self) -> list:
        """The gaps, in order (the order of example_completion's fillings)."""
        return [p for p in self.parts if not isinstance(p, bytes)]

    def fill(self, fillings: list, token_bytes: list[bytes] | None = None) -> bytes:
        """The template's text with `fillings` (one per gap) substituted; token ids need `token_bytes`."""
        gaps = self.gaps
        if len(fillings) != len(gaps):
            raise StructgenError(f"{len(fillings)} fillings for {len(gaps)} gaps")
        out = bytearray()
        it = iter(fillings)
        for p in self.parts:
            if isinstance(p, bytes):
                out += p
                continue
            f = next(it)
            if isinstance(p, TokenGap):
                if token_bytes is None:
                    raise StructgenError("filling a TokenGap needs token_bytes")
                if len(f) != p.k:
                    raise StructgenError(f"TokenGap({p.k}) filled with {len(f)} tokens")
                for t in f:
                    out += token_bytes[t]
            else:
                if len(f) < p.min_len or (p.max_len is not None and len(f) > p.max_len):
                    raise StructgenError(f"filling of length {len(f)} does not fit {p}")
                if p.alphabet is not None and any(b not in p.alphabet for b in f):
                    raise StructgenError(f"filling {f!r} leaves the alphabet of {p}")
                out += f
        return bytes(out)


# --------------------------------------------------------------------------- the NFA of R


_FIXED, _BGAP, _TGAP, _FORK, _END = 0, 1, 2, 3, 4


class _TemplateNFA:
    """The byte NFA of a template's fillings. Segment i owns state ids [base_i, base_{i+1});
    its entry is base_i and its exit base_{i+1} (the next segment's entry); `final` is the
    exit of the last segment. Only ByteGap exits use epsilon moves."""

    def __init__(self, template: Template, oracle: "CompletabilityOracle") -> None:
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


# --------------------------------------------------------------------------- token tries


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
            ns, stop, term, fe = _lexer_step(trans, accept_term, is_ignore, reset_of, ps, byt)
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


# --------------------------------------------------------------------------- the oracle


def _cat(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return (a, b)


class _Found(Exception):
    def __init__(self, rope) -> None:
        self.rope = rope


class CompletabilityOracle:
    """Exact completability of templates for one CompiledGrammar; keeps grammar-level caches.

    `max_facts` bounds the work of one call (GSS nodes + edges + reduction walkers + closure
    states); past it a call raises LimitExceeded instead of running on.
    """

    def __init__(self, compiled_grammar, *, max_facts: int = DEFAULT_MAX_FACTS,
                 max_witness_bytes: int = DEFAULT_MAX_WITNESS_BYTES) -> None:
        self.cg = compiled_grammar
        self.lr: LR1Tables = canonical_lr1(compiled_grammar)
        self.max_facts = max_facts
        self.max_witness_bytes = max_witness_bytes
        lx = compiled_grammar.lexer
        self._is_ignore = [bool(x) for x in lx.is_ignore]
        self._start_ls: dict[int, int] = {}
        self._rows: dict[int, tuple[list[int], int, bool, int]] = {}
        self._kids: dict[int, list[tuple[int, int, bool, bool]]] = {}
        self.stats: dict[str, int] = {}

    # --- grammar-level memos ------------------------------------------------------------

    def start_lexer_state(self, lr_state: int) -> int:
        """The lexer start state of the product DFA for S(lr_state) (built on demand, shared with matchers)."""
        got = self._start_ls.get(lr_state)
        if got is None:
            lx = self.cg.lexer
            words = np.zeros(lx.set_words, dtype=np.uint64)
            for t in self.lr.shiftable[lr_state]:
                words[t >> 6] |= np.uint64(1) << np.uint64(t & 63)
            with self.cg.runtime.lock:
                d = lx.dfa_for(words)
                got = int(lx.dfa_start[d])
            self._start_ls[lr_state] = got
        return got

    def _row(self, ls: int) -> tuple[list[int], int, bool, int]:
        """(transitions on each byte, accepted terminal, is a start state, start of its DFA) for lexer state ls."""
        got = self._rows.get(ls)
        if got is None:
            lx = self.cg.lexer
            got = (lx.trans[ls].tolist(), int(lx.accept_term[ls]), bool(lx.is_start[ls]),
                   int(lx.dfa_start[lx.state_dfa[ls]]))
            self._rows[ls] = got
        return got

    def _trie(self):
        return self.cg.tokenizer_info.trie

    def _trie_nodes(self) -> int:
        return self._trie().num_nodes

    def _children(self, node: int) -> list[tuple[int, int, bool, bool]]:
        """(byte, child, child has children, a token ends at child) for each child of a trie node."""
        got = self._kids.get(node)
        if got is None:
            tr = self._trie()
            skip, nb = tr.node_skip, tr.node_byte
            ts, te = tr.node_tok_start, tr.node_tok_end
            got = []
            c, end = node + 1, int(skip[node])
            while c < end:
                sc = int(skip[c])
                got.append((int(nb[c]), c, sc > c + 1, bool(te[c] > ts[c])))
                c = sc
            self._kids[node] = got
        return got

    def _walker(self) -> _TrieWalker:
        w = self.__dict__.get("_trie_walker")
        if w is None:
            w = self._trie_walker = _TrieWalker(self._trie())
        return w

    def _token_at(self, node: int, b: int) -> int:
        for byte, child, _, is_end in self._children(node):
            if byte == b and is_end:
                tr = self._trie()
                return int(tr.tok_ids[tr.node_tok_start[child]])
        raise AssertionError("no token ends here")

    # --- public API ----------------------------------------------------------------------

    def is_completable(self, template: Template, *, max_facts: int | None = None) -> bool:
        """Whether some filling of the template's gaps gives a word of the grammar
        (`max_facts`: this call's work limit instead of the oracle's)."""
        return self._solve(template, max_facts) is not None

    def example_completion(self, template: Template, *, max_facts: int | None = None) -> list | None:
        """A witness: one filling per gap (bytes for a ByteGap, a list of token ids for a
        TokenGap) such that the filled template is a word of the grammar; None if none exists."""
        rope = self._solve(template, max_facts)
        if rope is None:
            return None
        return self._fillings(template, rope)

    def _token_classes(self, ls: int) -> list[tuple[int, np.ndarray]]:
        """[(representative token, members)] of the token classes from lexer state ls (memoized)."""
        c = self.__dict__.get("_classifier")
        if c is None:
            c = self._classifier = _TokenClassifier(self)
        return c.grouped(ls)

    def _vocab_size(self) -> int:
        return int(self.cg.tokenizer_info.vocab_size)

    # --- per-position masks (the algorithm is described above _MaskNFA) ----------------

    def position_mask(self, template: Template, gap_index: int, position: int) -> np.ndarray:
        """The packed int32 token mask (shape (ceil(vocab_size / 32),), the GrammarMatcher layout) of
        position `position` (0-based) of gap `gap_index` (an index into `template.gaps`, which must
        be a TokenGap): bit t is set iff fixing that position to token t leaves the template
        completable. Special and empty tokens are never set (a TokenGap cannot hold them). Exact."""
        allowed = np.zeros(self._vocab_size(), dtype=np.bool_)
        got = self.position_allowed(template, gap_index, position)
        allowed[:len(got)] = got
        return bitset.from_bool(allowed)

    def position_masks(self, template: Template, positions) -> np.ndarray:
        """Masks for several (gap_index, position) pairs of one template, stacked (n, words);
        token classes (per lexer state) and grammar-level memos are shared between them."""
        if not isinstance(template, Template):
            template = Template(template)
        out = np.zeros((len(positions), (self._vocab_size() + 31) // 32), dtype=np.int32)
        for j, (g, i) in enumerate(positions):
            out[j] = self.position_mask(template, g, i)
        return out

    def position_allowed(self, template: Template, gap_index: int, position: int) -> np.ndarray:
        """The same mask unpacked: bool[vocab_size]."""
        if not isinstance(template, Template):
            template = Template(template)
        nfa = _MaskNFA(template, gap_index, position, self)
        search = _MaskSearch(self, nfa, self._vocab_size())
        search.run()
        self.stats = search.stats()
        self.stats["classes"] = len(nfa.block_members)
        return search.allowed

    def token_positions(self, template: Template) -> list[tuple[int, int]]:
        """Every (gap_index, position) a mask can be asked for, in template order."""
        if not isinstance(template, Template):
            template = Template(template)
        return [(g, i) for g, p in enumerate(template.gaps) if isinstance(p, TokenGap) for i in range(p.k)]

    # --- the search ----------------------------------------------------------------------

    def _solve(self, template: Template, max_facts: int | None = None):
        """The rope of NFA steps of some accepted filling, or None."""
        if not isinstance(template, Template):
            template = Template(template)
        nfa = _TemplateNFA(template, self)
        search = _Search(self, nfa)
        if max_facts is not None:
            search.budget = search.limit = max_facts
        try:
            search.run()
        except _Found as f:
            self.stats = search.stats()
            return f.rope if f.rope is not None else ()
        self.stats = search.stats()
        return None

    def _fillings(self, template: Template, rope) -> list:
        nfa = _TemplateNFA(template, self)
        out: list = []
        for kind, p, gap in nfa.segs:
            if gap >= 0:
                out.append([] if kind == _TGAP else bytearray())
        n_nodes = self._trie_nodes() if any(k == _TGAP for k, _, _ in nfa.segs) else 0
        for r, b, r2 in self._flatten(rope):
            i = nfa.seg_of(r)
            kind, p, gap = nfa.segs[i]
            if kind == _BGAP:
                out[gap].append(b)
            elif kind == _TGAP:
                base = nfa.bases[i]
                pos, node = divmod(r - base, n_nodes)
                if r2 == base + (pos + 1) * n_nodes:  # the token ends with this byte
                    out[gap].append(self._token_at(node, b))
        return [bytes(f) if isinstance(f, bytearray) else f for f in out]


    def _flatten(self, rope) -> list[tuple[int, int, int]]:
        """The NFA steps (state, byte, state) of a rope, in order. Ropes are None (empty),
        (state, byte, state) steps, (left, right) pairs, or ("T", pos_base, node, c, r2): the
        trie path from `node` down to `c` inside one token position, its last byte going to r2."""
        limit = self.max_witness_bytes
        out: list[tuple[int, int, int]] = []
        stack = [rope]
        while stack:
            x = stack.pop()
            if x is None or x == ():
                continue
            if len(x) == 3:
                out.append(x)
            elif len(x) == 5:
                _, pb, node, c, r2 = x
                w = self._walker()
                path = w.path(node, c)
                prev = node
                for i, n in enumerate(path):
                    out.append((pb + prev, int(w.byte[n]), r2 if i == len(path) - 1 else pb + n))
                    prev = n
            else:
                stack.append(x[1])
                stack.append(x[0])
            if len(out) > limit:
                raise LimitExceeded(f"the witness is longer than {limit} bytes")
        return out


class _Search:
    """One oracle call: the GSS over the template NFA (see the module docstring)."""

    def __init__(self, oracle: CompletabilityOracle, nfa: _TemplateNFA) -> None:
        self.o = oracle
        self.nfa = nfa
        self.lr = oracle.lr
        self.end = self.lr.end
        self.budget = self.limit = oracle.max_facts
        # GSS nodes
        self.node_id: dict[tuple, int] = {}
        self.node_p: list[int] = []
        self.node_c0: list[tuple[int, int] | None] = []  # shift nodes: (NFA state, lexer state) after the push
        self.first_edge: list[tuple[int, object] | None] = []
        self.edges: list[dict[int, object]] = []
        self.waiting: list[list[tuple]] = []
        self.walk_seen: set[tuple] = set()
        self.act_seen: set[tuple] = set()
        self.closures: dict[tuple[int, int], list[tuple]] = {}
        self.work: list = []  # a heap: work further along the template first (finds "yes" early)
        self.tick = 0
        self.n_closure = 0

    def stats(self) -> dict[str, int]:
        return {"nodes": len(self.node_p), "edges": sum(len(e) for e in self.edges),
                "walkers": len(self.walk_seen), "closure_states": self.n_closure}

    def _fin(self, v: int, rope, r: int) -> None:
        """The input may end at NFA state r on the stack of node v: a word was found."""
        raise _Found(_cat(self._path(v), rope))

    def _skip(self, r: int) -> bool:
        """Whether queued work at NFA state r is no longer needed (never, for a plain call)."""
        return False

    def _push(self, r: int, item: tuple) -> None:
        """Queue work at NFA state r; larger r (later in the template) first, FIFO among equals."""
        self.tick += 1
        heapq.heappush(self.work, (-r, self.tick, item))

    def _spend(self, n: int = 1) -> None:
        self.budget -= n
        if self.budget < 0:
            raise LimitExceeded(f"infilling oracle needs more than {self.limit} facts")

    def _node(self, key: tuple, p: int, c0) -> tuple[int, bool]:
        got = self.node_id.get(key)
        if got is not None:
            return got, False
        self._spend()
        i = len(self.node_p)
        self.node_id[key] = i
        self.node_p.append(p)
        self.node_c0.append(c0)
        self.first_edge.append(None)
        self.edges.append({})
        self.waiting.append([])
        return i, True

    def _path(self, v: int):
        """Rope of the bytes that build the stack of node v along first edges (root first)."""
        ropes = []
        while True:
            fe = self.first_edge[v]
            if fe is None:
                break
            v, rope = fe
            ropes.append(rope)
        out = None
        for r in reversed(ropes):
            out = _cat(out, r)
        return out

    def run(self) -> None:
        lr = self.lr
        p0 = lr.start_state
        root, _ = self._node(("root",), p0, (0, self.o.start_lexer_state(p0)))
        self._push(0, ("node", root))
        work = self.work
        skip = self._skip
        while work:
            neg_r, _, item = heapq.heappop(work)
            if skip(-neg_r):
                continue
            kind = item[0]
            if kind == "node":
                self._expand(item[1])
            elif kind == "act":
                self._act(item[1], item[2], item[3])
            else:
                self._walk(item[1], item[2], item[3], item[4], item[5])

    # --- between shifts: the lexer alone ------------------------------------------------

    def _closure(self, c0: tuple) -> list[tuple]:
        """Events reachable from a push control without touching the stack, each with its rope.

        A push control is (NFA state, lexer state), or ("P", r, ls_old, ls_start) right after a
        shift: the NFA is at r, the next byte must be one that ends the old lexeme (no move from
        ls_old) and starts the new one (a move from ls_start). Events:
        ("feed", t, r, ls): a lexeme in state ls ends as terminal t with the NFA at r (before the
        byte that ends it, or at the end); ("fin",): the input may end here with nothing pending
        for the parser (the stack must accept $END).
        """
        got = self.closures.get(c0)
        if got is not None:
            return got
        o, nfa = self.o, self.nfa
        ignore = o._is_ignore
        seen: dict[tuple[int, int], object] = {}
        queue: deque = deque()
        events: list[tuple] = []
        ev_seen: set[tuple] = set()
        if c0[0] == "P":
            self._after_shift(c0, seen, queue, events)
        else:
            seen[c0] = None
            queue.append(c0)
        while queue:
            c = queue.popleft()
            rope = seen[c]
            r, ls = c
            self._spend()
            self.n_closure += 1
            seg = nfa.seg_of(r)
            if seg >= 0 and nfa.segs[seg][0] == _TGAP:
                self._closure_tokens(seg, r, ls, rope, seen, queue, events, ev_seen)
                continue
            row, term, is_start, reset = o._row(ls)
            re = nfa.eps(r)
            if re >= 0 and (re, ls) not in seen:
                seen[(re, ls)] = rope
                queue.append((re, ls))
            feeds = term >= 0 and not ignore[term]
            ends_here = False
            if nfa.is_final(r):
                if is_start or (term >= 0 and ignore[term]):
                    if ("fin", r) not in ev_seen:
                        ev_seen.add(("fin", r))
                        events.append(("fin", rope, r))
                ends_here = feeds
            for b, r2 in nfa.edges_from(r, ls):
                ns = row[b]
                if ns < 0 and term >= 0 and ignore[term]:  # an %ignore lexeme ends: the byte starts the next
                    ns = o._row(reset)[0][b]
                elif ns < 0:
                    ends_here = ends_here or term >= 0
                    continue
                if ns >= 0 and (r2, ns) not in seen:
                    seen[(r2, ns)] = _cat(rope, (r, b, r2))
                    queue.append((r2, ns))
            if ends_here:
                ev = ("feed", term, r, ls)
                if ev not in ev_seen:
                    ev_seen.add(ev)
                    events.append(ev + (rope,))
        self.closures[c0] = events
        return events

    def _after_shift(self, c0: tuple, seen: dict, queue: deque, events: list) -> None:
        """Seed a closure from a post-shift control: the first byte of the new lexeme."""
        _, r, ls_old, st = c0
        o, nfa = self.o, self.nfa
        old, new = o._row(ls_old)[0], o._row(st)[0]
        if nfa.is_final(r):
            events.append(("fin", None, r))  # nothing pending: the new lexeme is empty
        seg = nfa.seg_of(r)
        if seg >= 0 and nfa.segs[seg][0] == _TGAP:
            n_nodes = o._trie_nodes()
            base = nfa.bases[seg]
            pos, node = divmod(r - base, n_nodes)
            pb = base + pos * n_nodes
            succ = []
            for b, child, inner, is_end in o._children(node):
                if inner:
                    succ.append((b, pb + child))
                if is_end:
                    succ.append((b, pb + n_nodes))
        else:
            succ = nfa.edges_from(r, ls_old)
        for b, r2 in succ:
            if old[b] < 0:
                ns = new[b]
                if ns >= 0 and (r2, ns) not in seen:
                    seen[(r2, ns)] = (r, b, r2)
                    queue.append((r2, ns))

    def _closure_tokens(self, seg: int, r: int, ls: int, rope, seen, queue, events, ev_seen) -> None:
        """The closure step for a state inside a TokenGap: one memoized trie walk."""
        nfa = self.nfa
        n_nodes = self.o._trie_nodes()
        base = nfa.bases[seg]
        pos, node = divmod(r - base, n_nodes)
        pb = base + pos * n_nodes
        after = pb + n_nodes  # (pos + 1, root), or the gap's exit
        lx = self.o.cg.lexer
        ends, feeds = self.o._walker().walk(node, ls, lx, lx.is_ignore)
        self._spend(1 + len(ends) + len(feeds))
        for ls_end, c in ends:
            nc = (after, ls_end)
            if nc not in seen:
                seen[nc] = _cat(rope, ("T", pb, node, c, after))
                queue.append(nc)
        for t, n, ls_n in feeds:
            ev = ("feed", t, pb + n, ls_n)
            if ev not in ev_seen:
                ev_seen.add(ev)
                events.append(ev + (_cat(rope, ("T", pb, node, n, pb + n)) if n != node else rope,))

    def _expand(self, v: int) -> None:
        """A new shift node: run every lexer event of its push control against the stack."""
        end = self.end
        for ev in self._closure(self.node_c0[v]):
            if ev[0] == "fin":
                if end in self.lr.action[self.node_p[v]]:
                    self._fin(v, ev[1], ev[2])
            else:
                _, t, r, ls, rope = ev
                self._push(r, ("act", v, (t, r, ls), rope))

    # --- feeding a terminal: reductions over the GSS, then the shift ----------------------

    def _act(self, top: int, feed: tuple[int, int, int], rope) -> None:
        """Run the parser on terminal feed[0] from node `top` (`rope`: bytes since top's push).
        `feed` = (terminal, NFA state, lexer state where the lexeme ended)."""
        key = (top, feed)
        if key in self.act_seen:
            return
        self.act_seen.add(key)
        self._spend()
        lr = self.lr
        t, r, ls_old = feed
        a = lr.action[self.node_p[top]].get(t)
        if a is None:
            return
        if a >= 0:
            v, new = self._node(("s", a, r, ls_old), a, ("P", r, ls_old, self.o.start_lexer_state(a)))
            self._add_edge(v, top, rope)
            if new:
                self._push(r, ("node", v))
            return
        rule = -a - 1
        self._walk(top, lr.rule_len[rule], lr.rule_lhs[rule], feed, rope)

    def _walk(self, x: int, m: int, lhs: int, feed: tuple, rope) -> None:
        """Pop m more states starting with node x (rope: bytes since x's push), then goto on lhs."""
        if m == 0:
            g = self.lr.goto[self.node_p[x]][lhs]
            gnode, new = self._node(("g", g, feed), g, None)
            self._add_edge(gnode, x, rope)
            if new:
                self._push(feed[1], ("act", gnode, feed, None))
            return
        key = (x, m, lhs, feed)
        if key in self.walk_seen:
            return
        self.walk_seen.add(key)
        self._spend()
        self.waiting[x].append((m, lhs, feed, rope))
        for y, e in list(self.edges[x].items()):
            self._push(feed[1], ("walk", y, m - 1, lhs, feed, _cat(e, rope)))

    def _add_edge(self, x: int, y: int, rope) -> None:
        """Edge x -> y (x was pushed directly on y; rope: bytes from y's push to x's)."""
        ex = self.edges[x]
        if y in ex:
            return
        self._spend()
        ex[y] = rope
        if self.first_edge[x] is None:
            self.first_edge[x] = (y, rope)
        for m, lhs, feed, ra in list(self.waiting[x]):
            self._push(feed[1], ("walk", y, m - 1, lhs, feed, _cat(rope, ra)))


# --------------------------------------------------------------------------- per-position masks
#
# The mask of one masked position i: every vocabulary token that keeps the template completable
# when position i holds it. Tokens are grouped into classes that are provably interchangeable,
# then ONE search decides every class at once:
#
# * Classes. Run a token's bytes through the lexer from the lexer state ls the input is in at
#   the start of position i. Either no non-ignored lexeme ends inside the token ("in", ls'): the
#   stack is untouched and only ls' matters; or a lexeme ends in state s (so terminal
#   accept_term[s] is fed to the parser) and the rest of the token starts a new lexeme in the
#   start state of whatever LR state the shift reaches: ("feed", s, (class of the rest from
#   each start state that a shift of that terminal can reach)). Two tokens with equal keys
#   turn every (stack, ls) configuration into the same set of configurations, so they are
#   completable together or not at all. Keys are interned to ints; a whole-vocabulary pass per
#   lexer state runs level by level over the token trie in numpy and is memoized.
# * One search. The template's NFA forks at the start of position i: for the lexer state ls
#   found there, one edge per class of ls leads into a private copy of the rest of the
#   template ("block") that begins with the class's representative token. The GSS below the
#   fork is shared by all blocks; a block whose copy reaches an accepting end marks its class's
#   tokens allowed, and work in blocks whose tokens are all allowed already is dropped.
#   Different lexer states at the fork get different blocks, so the union is exact.


_DEAD = 0


class _MaskNFA(_TemplateNFA):
    """The template NFA with position `position` of gap `gap_index` replaced by a fork into
    one block per (lexer state at the fork, token class); blocks are laid out lazily."""

    def __init__(self, template: Template, gap_index: int, position: int, oracle: "CompletabilityOracle") -> None:
        gaps = template.gaps
        if not 0 <= gap_index < len(gaps) or not isinstance(gaps[gap_index], TokenGap):
            raise StructgenError(f"gap {gap_index} of the template is not a TokenGap")
        k = gaps[gap_index].k
        if not 0 <= position < k:
            raise StructgenError(f"position {position} is outside TokenGap({k})")
        before, after, gi = [], [], 0
        for p in template.parts:
            if isinstance(p, bytes):
                (before if gi <= gap_index else after).append(p)
                continue
            if gi == gap_index:
                before.append(TokenGap(position))
                after.append(TokenGap(k - position - 1))
            else:
                (before if gi < gap_index else after).append(p)
            gi += 1
        # everything before the fork, numbered as a plain template
        super().__init__(Template(before), oracle)
        self.fork = self.final
        self.segs.append((_FORK, None, -1))
        self.bases.append(self.fork)
        self.after = [p for p in after if not (isinstance(p, bytes) and not p) and not (isinstance(p, TokenGap) and p.k == 0)]
        self.final = self.fork + 1  # the next free state id
        self.block_base: list[int] = []  # first state of each block (ascending)
        self.block_end: dict[int, int] = {}  # END state -> block index
        self.block_members: list[np.ndarray] = []
        self._fork_edges: dict[int, list[tuple[int, int]]] = {}

    def is_final(self, r: int) -> bool:
        return r in self.block_end

    def block_of(self, r: int) -> int:
        """The block that owns state r, or -1 (before the fork)."""
        if r <= self.fork:
            return -1
        return bisect.bisect_right(self.block_base, r) - 1

    def _add_seg(self, kind: int, part, size: int) -> None:
        self.segs.append((kind, part, -1))
        self.bases.append(self.final)
        self.final += size

    def _new_block(self, rep: bytes, members: np.ndarray) -> int:
        """Lay out [rep, the rest of the template, END]; return the block's first state."""
        base = self.final
        self.block_base.append(base)
        self._add_seg(_FIXED, rep, len(rep))
        n_nodes = None
        for p in self.after:
            if isinstance(p, bytes):
                self._add_seg(_FIXED, p, len(p))
            elif isinstance(p, ByteGap):
                self._add_seg(_BGAP, p, (p.max_len if p.max_len is not None else p.min_len) + 1)
            else:
                if n_nodes is None:
                    n_nodes = self.oracle._trie_nodes()
                self._add_seg(_TGAP, p, p.k * n_nodes)
        self.block_end[self.final] = len(self.block_members)
        self.block_members.append(members)
        self._add_seg(_END, None, 1)
        return base

    def edges_from(self, r: int, ls: int) -> list[tuple[int, int]]:
        if r != self.fork:
            return self.edges(r)
        got = self._fork_edges.get(ls)
        if got is None:
            got = []
            tb = self.oracle.cg.tokenizer_info.token_bytes
            for rep, members in self.oracle._token_classes(ls):
                data = tb[rep]
                base = self._new_block(data, members)
                got.append((data[0], base + 1))
            self._fork_edges[ls] = got
        return got

    def edges(self, r: int) -> list[tuple[int, int]]:
        if r == self.fork:
            raise AssertionError("the fork's edges depend on the lexer state")
        return super().edges(r)


class _MaskSearch(_Search):
    """One GSS search deciding every token class at a fork (see above)."""

    def __init__(self, oracle: "CompletabilityOracle", nfa: _MaskNFA, vocab: int) -> None:
        super().__init__(oracle, nfa)
        self.allowed = np.zeros(vocab, dtype=np.bool_)
        self.done: list[bool] = []

    def _fin(self, v: int, rope, r: int) -> None:
        nfa = self.nfa
        b = nfa.block_end[r]
        while len(self.done) < len(nfa.block_members):
            self.done.append(False)
        if self.done[b]:
            return
        self.allowed[nfa.block_members[b]] = True
        for j, m in enumerate(nfa.block_members):
            if not self.done[j] and self.allowed[m].all():
                self.done[j] = True

    def _skip(self, r: int) -> bool:
        b = self.nfa.block_of(r)
        return 0 <= b < len(self.done) and self.done[b]




class _TokenClassifier:
    """Token classes per lexer state (the keys described above), memoized per CompletabilityOracle."""

    def __init__(self, oracle: "CompletabilityOracle", max_memo: int = 256) -> None:
        self.o = oracle
        tok = oracle.cg.tokenizer_info
        self.vocab = int(tok.vocab_size)
        self.trie = tok.trie
        self.walker = oracle._walker()
        tr = self.trie
        n = tr.num_nodes
        # the token ids ending at each trie node, and each token's end node
        self.tok_node = np.full(self.vocab, -1, dtype=np.int64)
        starts = tr.node_tok_start[:n].astype(np.int64)
        ends = tr.node_tok_end[:n].astype(np.int64)
        cnt = ends - starts
        node_of_slot = np.repeat(np.arange(n, dtype=np.int64), cnt)
        ids = tr.tok_ids.astype(np.int64)
        slot_ids = np.concatenate([ids[a:b] for a, b in zip(starts[cnt > 0], ends[cnt > 0])]) if cnt.any() else ids[:0]
        self.tok_node[slot_ids] = node_of_slot
        self.in_trie = self.tok_node >= 0
        self.keys: dict[tuple, int] = {("dead",): _DEAD}
        self.memo: dict[int, np.ndarray] = {}
        self.sig_memo: dict[tuple[int, bytes], int] = {}
        self.starts_after: dict[int, tuple[int, ...]] = {}
        self.classes_memo: dict[int, list] = {}
        self.max_memo = max_memo

    def intern(self, key: tuple) -> int:
        got = self.keys.get(key)
        if got is None:
            got = self.keys[key] = len(self.keys)
        return got

    def starts(self, term: int) -> tuple[int, ...]:
        """Lexer start states of every LR state a shift of `term` can reach (a superset of the reachable ones)."""
        got = self.starts_after.get(term)
        if got is None:
            o = self.o
            got = tuple(sorted({o.start_lexer_state(a[term]) for a in o.lr.action if a.get(term, -1) >= 0}))
            self.starts_after[term] = got
        return got

    def sig(self, ls: int, data: bytes) -> int:
        """The class id of byte string `data` run from lexer state ls (scalar version)."""
        key = (ls, data)
        got = self.sig_memo.get(key)
        if got is not None:
            return got
        o = self.o
        ignore = o._is_ignore
        s = ls
        res = None
        for j, b in enumerate(data):
            row, term, is_start, reset = o._row(s)
            ns = row[b]
            if ns >= 0:
                s = ns
                continue
            if term < 0:
                res = _DEAD
                break
            if ignore[term]:
                ns = o._row(reset)[0][b]
                if ns < 0:
                    res = _DEAD
                    break
                s = ns
                continue
            if is_start:  # an empty lexeme cannot end (no zero-width terminals); be safe
                res = _DEAD
                break
            subs = tuple(self.sig(st, data[j:]) for st in self.starts(term))
            res = _DEAD if all(x == _DEAD for x in subs) else self.intern(("feed", s, subs))
            break
        if res is None:
            res = self.intern(("in", s))
        if len(self.sig_memo) > 500_000:
            self.sig_memo.clear()
        self.sig_memo[key] = res
        return res

    def classes(self, ls: int) -> np.ndarray:
        """int64[vocab]: the class id of every token run from lexer state ls (_DEAD: never completable)."""
        got = self.memo.get(ls)
        if got is not None:
            return got
        o = self.o
        lx = o.cg.lexer
        term0 = int(lx.accept_term[ls])
        root_feed = term0 >= 0 and not o._is_ignore[term0] and not bool(lx.is_start[ls])
        root_starts = self.starts(term0) if root_feed else ()
        sub_arrays = [self.classes(st) for st in root_starts]  # start states: no root feed, no recursion
        trans, accept_term = lx.trans, lx.accept_term  # after any DFA was built
        reset_of = lx.dfa_start[lx.state_dfa[:lx.num_states]]
        is_ignore = lx.is_ignore
        w = self.walker
        n = self.trie.num_nodes
        st = np.full(n, -1, dtype=np.int64)
        fnode = np.full(n, -1, dtype=np.int64)  # where the first non-ignored lexeme ended
        fstate = np.full(n, -1, dtype=np.int64)
        st[0] = ls
        for d in range(1, len(w.by_depth)):
            idx = w.by_depth[d]
            par = w.parent[idx]
            ps = st[par]
            pf = fnode[par]
            inherit = pf >= 0
            fnode[idx[inherit]] = pf[inherit]
            fstate[idx[inherit]] = fstate[par[inherit]]
            live = ps >= 0
            if not live.any():
                continue
            idx, par, ps = idx[live], par[live], ps[live]
            byt = w.byte[idx]
            ns, stop, term, fe = _lexer_step(trans, accept_term, is_ignore, reset_of, ps, byt)
            if stop.any():
                if fe.any():
                    sel = idx[stop][fe]
                    fnode[sel] = par[stop][fe]
                    fstate[sel] = ps[stop][fe]
            st[idx] = ns
        out = np.zeros(self.vocab, dtype=np.int64)
        toks = np.nonzero(self.in_trie)[0]
        nodes = self.tok_node[toks]
        s_end = st[nodes]
        f_end = fnode[nodes]
        inside = s_end >= 0
        if inside.any():
            u, inv = np.unique(s_end[inside], return_inverse=True)
            ids = np.array([self.intern(("in", int(x))) for x in u], dtype=np.int64)
            out[toks[inside]] = ids[inv]
        fed = f_end >= 0
        if fed.any():
            ft, fn, fs = toks[fed], f_end[fed], fstate[nodes[fed]]
            at_root = fn == 0
            if at_root.any():  # the whole token is the rest: use the start states' own classes
                rt = ft[at_root]
                mat = np.stack([a[rt] for a in sub_arrays], axis=1)
                u, inv = np.unique(mat, axis=0, return_inverse=True)
                inv = inv.reshape(-1)
                s0 = int(ls)
                ids = np.array([_DEAD if not row.any() else self.intern(("feed", s0, tuple(int(x) for x in row)))
                                for row in u], dtype=np.int64)
                out[rt] = ids[inv]
            tb = o.cg.tokenizer_info.token_bytes
            depth = w.depth
            for t, f, s in zip(ft[~at_root].tolist(), fn[~at_root].tolist(), fs[~at_root].tolist()):
                term = int(accept_term[s])
                rest = tb[t][int(depth[f]):]
                subs = tuple(self.sig(x, rest) for x in self.starts(term))
                out[t] = _DEAD if all(x == _DEAD for x in subs) else self.intern(("feed", s, subs))
        if len(self.memo) >= self.max_memo:
            self.memo.clear()
            self.classes_memo.clear()
        self.memo[ls] = out
        return out

    def grouped(self, ls: int) -> list[tuple[int, np.ndarray]]:
        """[(representative token, member token ids)] for the live classes of lexer state ls."""
        got = self.classes_memo.get(ls)
        if got is None:
            cls = self.classes(ls)
            live = np.nonzero(cls != _DEAD)[0]
            order = np.argsort(cls[live], kind="stable")
            sorted_ids = live[order]
            keys = cls[sorted_ids]
            cuts = np.nonzero(np.diff(keys))[0] + 1
            got = [(int(g[0]), g) for g in np.split(sorted_ids, cuts)] if len(sorted_ids) else []
            self.classes_memo[ls] = got
        return got




# --------------------------------------------------------------------------- functions


_ORACLES: "weakref.WeakKeyDictionary[object, CompletabilityOracle]" = weakref.WeakKeyDictionary()


def _oracle_for(compiled_grammar) -> CompletabilityOracle:
    """The shared oracle of a CompiledGrammar (its caches live as long as the grammar)."""
    o = _ORACLES.get(compiled_grammar)
    if o is None:
        o = CompletabilityOracle(compiled_grammar)
        _ORACLES[compiled_grammar] = o
    return o


def is_completable(compiled_grammar, template: Template) -> bool:
    """Whether the template's gaps can be filled to a word of the grammar (exact)."""
    return _oracle_for(compiled_grammar).is_completable(template)


def example_completion(compiled_grammar, template: Template) -> list | None:
    """One filling per gap (bytes, or token ids for a TokenGap) making a word, or None."""
    return _oracle_for(compiled_grammar).example_completion(template)


def position_mask(compiled_grammar, template: Template, gap_index: int, position: int) -> np.ndarray:
    """The packed int32 mask of the tokens allowed at one masked position (see CompletabilityOracle.position_mask)."""
    return _oracle_for(compiled_grammar).position_mask(template, gap_index, position)


__all__ = ["ByteGap", "TokenGap", "Template", "CompletabilityOracle", "is_completable", "example_completion",
           "position_mask"]
