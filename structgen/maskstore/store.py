"""The token-mask store: memoized bitsets per (lexer state, top of the parser stack).

An entry is the context-independent bitset of its lexer state (tokens that stay inside the
current lexeme, computed once per lexer state) OR'ed with the result of walking only the
boundary-crossing subtrees of the token trie with the parser. The walk records how deep into
the stack it read; the entry is keyed by the lexer state and just that many top stack states,
so the same local context at any nesting depth is a dictionary lookup (LRU-bounded).

A lexer state is a product of terminal DFA states; its context-independent part is assembled
from walks of the single terminals (`component_entry`, memoized per terminal state and, inside
that, per subtree of the root), which recur across the many terminal sets of a grammar and, in
the tokenizer-wide WalkMemo, across grammars.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from ..automata.parser import StackPool
from ..automata.step import can_end
from .walk import (boundary_walk, canonical_digest, lexeme_walk, product_boundaries, range_count, range_ids, set_ids,
                   set_ranges, subtree_walks, trie_parents)

if TYPE_CHECKING:
    from ..compiler import CompiledGrammar

DEFAULT_LRU_ENTRIES = 2048
COMPONENT_MEMO_BYTES = 256 << 20  # bound on a tokenizer's walk memo (see WalkMemo)
LOCAL_COMPONENTS = 4096  # (terminal, state) -> entry references kept per store, in front of the WalkMemo
SPARSE_BITS = 1024  # a component entry allowing fewer tokens keeps their ids, not a dense bitset
DIGEST_MAX_CELLS = 1 << 16  # states x byte classes hashed at most per canonical digest (~50 us)
_STORE_SERIALS = itertools.count(1)


def _of_trie(trie, name: str, make):
    """`make()`, computed once per TokenTrie and kept on it (shared by every grammar of a tokenizer)."""
    got = trie.__dict__.get(name)
    if got is None:
        got = trie.__dict__.setdefault(name, make())
    return got


def _root_children_of(trie) -> np.ndarray:
    """The depth-1 nodes of a TokenTrie, in node order."""
    return _of_trie(trie, "_root_children", lambda: np.flatnonzero(trie.node_depth == 1).astype(np.int64))


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _trie_parents_of(trie) -> np.ndarray:
    """trie_parents of a TokenTrie."""
    return _of_trie(trie, "_parents", lambda: _read_only(trie_parents(trie.node_depth)))


def _scratch_of(trie) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """This thread's work arrays for walks of a TokenTrie: (mark, ranges, boundary nodes, their
    states), shared by every store of the tokenizer; a store of its own would fault in ~5 MB of
    fresh pages (Llama-3) during each new grammar's first masks."""
    local = _of_trie(trie, "_scratch", threading.local)
    got = getattr(local, "arrays", None)
    if got is None:
        n = trie.num_nodes
        got = local.arrays = (np.zeros(n, dtype=np.bool_), np.empty((n, 2), dtype=np.int32),
                              np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32))
    return got


class WalkMemo:
    """The walks of terminal DFA states, shared by every grammar of one tokenizer.

    A walk depends only on the language of the state it starts from, so it is keyed by a digest
    of the state's canonical form (the sub-automaton reachable from it, renumbered breadth-first):
    the body of a JSON string, a date-time, or "at most 12 more characters" is walked once per
    tokenizer, not once per schema. Both maps are dropped whole past COMPONENT_MEMO_BYTES."""

    def __init__(self) -> None:
        self.components: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}  # digest -> component entry
        self.subtrees: dict[tuple[tuple[int, ...], int], tuple[np.ndarray, np.ndarray]] = {}  # (digest, root child)
        self.nbytes = 0

    def remember(self, memo: dict, key, value: tuple[np.ndarray, np.ndarray]) -> None:
        size = value[0].nbytes + value[1].nbytes
        if self.nbytes + size > COMPONENT_MEMO_BYTES:
            self.components.clear()
            self.subtrees.clear()
            self.nbytes = 0
        memo[key] = value
        self.nbytes += size


def _walk_memo_of(trie) -> WalkMemo:
    """The WalkMemo of a TokenTrie."""
    return _of_trie(trie, "_walk_memo", WalkMemo)


class MaskStore:
    """Mask bitsets (uint32 words, bit t = token t allowed) for one CompiledGrammar."""

    def __init__(self, cg: "CompiledGrammar", max_entries: int = DEFAULT_LRU_ENTRIES) -> None:
        self.cg = weakref.proxy(cg)  # no cycle: a grammar dropped from every cache is freed at once, not by the GC
        tok = cg.tokenizer_info
        trie = tok.trie
        self.trie = (trie.node_byte, trie.node_depth, trie.node_skip, trie.node_tok_start, trie.node_tok_end,
                     trie.tok_ids, np.int64(trie.max_depth))
        self.words = (tok.vocab_size + 31) // 32
        self.stop_ids = np.array(sorted(tok.stop_token_ids), dtype=np.int64)
        self.stop_bits = np.zeros(self.words, dtype=np.uint32)
        for t in self.stop_ids:
            self.stop_bits[t >> 5] |= np.uint32(1 << (int(t) & 31))
        self._lexeme: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._lru: OrderedDict[tuple[int, tuple[int, ...]], np.ndarray] = OrderedDict()
        self._depths: dict[int, list[int]] = {}  # lexer state -> stack depths its entries depend on
        self.max_entries = max_entries
        num_cfg = 256  # parser configurations memoized per walk (see boundary_walk)
        self._memo = (np.zeros(num_cfg, dtype=np.int32), np.zeros(num_cfg, dtype=np.int32),
                      np.full((num_cfg, max(1, len(cg.terminals))), -1, dtype=np.int32))
        self._parents = _trie_parents_of(trie)
        self._components: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # (term, state) -> entry
        self._digests: dict[tuple[int, int], tuple[int, ...]] = {}  # (term, state) -> canonical digest
        self._term_reps: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # term -> (class representatives, seed)
        self._shared = _walk_memo_of(trie)
        self._serial = next(_STORE_SERIALS)  # keys of this store's own walks in the shared memo
        self._root_children = _root_children_of(trie)
        self._trie_obj = trie
        self._term_accept: dict[int, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def lexeme_entry(self, ls: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(context-independent bits, boundary nodes, lexer states before them) for lexer state ls.

        A product state is alive after a byte string iff one of its terminals' own DFAs is, so
        its bits are the union of its components' bits, and every boundary is a node where some
        component, accepting, dies (then checked on the product). Components recur across the
        many terminal sets of a grammar (a JSON key string next to each set of literal keys),
        so their walks are memoized and each product state costs a few bitset ORs."""
        got = self._lexeme.get(ls)
        if got is None:
            lx = self.cg.lexer
            comps = lx.components(ls)
            bits = np.zeros(self.words, dtype=np.uint32)
            mark, _, bnodes, bstates = _scratch_of(self._trie_obj)
            if comps is None:  # a DFA restored from a cache entry without components: walk the product
                nb = lexeme_walk(np.int32(ls), self.trie, lx.trans, lx.accept_term, bits, bnodes, bstates)
            else:
                cands = []
                for t, q in comps:
                    cbits, facc = self.component_entry(t, q)
                    if cbits.dtype == np.uint32:
                        bits |= cbits
                    else:
                        set_ids(bits, cbits)
                    cands.append(facc)
                cand = np.concatenate(cands) if cands else np.zeros(0, dtype=np.int32)
                nb = product_boundaries(np.int32(ls), cand, self.trie, self._parents, lx.trans, lx.accept_term,
                                        mark, bnodes, bstates)
            got = (bits, bnodes[:nb].copy(), bstates[:nb].copy())
            self._lexeme[ls] = got
        return got

    def component_entry(self, term: int, q: int) -> tuple[np.ndarray, np.ndarray]:
        """(tokens that keep terminal `term`'s own DFA alive from its state q: uint32 bitset words,
        or int32 token ids when few; trie nodes where it dies right after accepting)."""
        key = (term, q)
        got = self._components.get(key)
        if got is not None:
            return got
        if self.cg.terminals[term].is_literal:
            got = self._walk(term, q, None)  # one path through the trie: walking costs less than digesting
        else:
            memo = self._shared
            dq = self._digest(term, q)
            got = memo.components.get(dq)
            if got is None:
                got = self._walk(term, q, memo)
                memo.remember(memo.components, dq, got)
        if len(self._components) >= LOCAL_COMPONENTS:  # a fast path only: the WalkMemo bounds the memory
            self._components.clear()
        self._components[key] = got
        return got

    def _walk(self, term: int, q: int, memo: WalkMemo | None) -> tuple[np.ndarray, np.ndarray]:
        """component_entry's walk from q, one subtree of the root at a time. With `memo`, subtrees
        are shared: a subtree entered in state s gives the same answer from every state whose
        transition leads there (the states of a key string that track the excluded keys all fall
        back to one body state), so they are memoized by (s's digest, child of the root)."""
        d = self.cg.terminals[term].dfa
        acc = self._accept(term)
        kids = self._root_children
        succ = d.trans[q, self.trie[0][kids]]
        live = succ >= 0
        cs, ss = kids[live], succ[live].astype(np.int32)
        _, w_ranges, w_nodes, w_states = _scratch_of(self._trie_obj)
        if memo is None:  # one numba call walks every subtree
            ends = np.empty(len(cs), dtype=np.int64)  # per-subtree ends: not needed here
            nr, nb = subtree_walks(cs, ss, self.trie, d.trans, acc, w_ranges, w_nodes, w_states, ends, ends)
            subs = [(w_ranges[:nr].copy(), w_nodes[:nb].copy())]
        else:
            sl = ss.tolist()
            digests = {s: self._digest(term, s) for s in set(sl)}  # a dozen successor states, not 256
            keys = [(digests[s], c) for s, c in zip(sl, cs.tolist())]
            subs = [memo.subtrees.get(k) for k in keys]
            miss = [j for j, sub in enumerate(subs) if sub is None]
            if miss:  # one numba call walks every missing subtree
                r_ends = np.empty(len(miss), dtype=np.int64)
                b_ends = np.empty(len(miss), dtype=np.int64)
                subtree_walks(cs[miss], ss[miss], self.trie, d.trans, acc, w_ranges, w_nodes, w_states, r_ends, b_ends)
                r0 = b0 = 0
                for j, r1, b1 in zip(miss, r_ends.tolist(), b_ends.tolist()):
                    subs[j] = (w_ranges[r0:r1].copy(), w_nodes[b0:b1].copy())
                    memo.remember(memo.subtrees, keys[j], subs[j])
                    r0, b0 = r1, b1
        b_parts = [sub[1] for sub in subs]
        if acc[q] >= 0:
            b_parts.append(kids[~live].astype(np.int32))
        ranges = np.concatenate([sub[0] for sub in subs]) if subs else np.zeros((0, 2), dtype=np.int32)
        facc = np.concatenate(b_parts) if b_parts else np.zeros(0, dtype=np.int32)
        tok_ids = self.trie[5]
        if range_count(ranges) <= SPARSE_BITS:
            bits = range_ids(tok_ids, ranges)
        else:
            bits = np.zeros(self.words, dtype=np.uint32)
            set_ranges(bits, tok_ids, ranges)
        return bits, facc

    def _accept(self, term: int) -> np.ndarray:
        """int32 per state of term's DFA: 0 if accepting, else -1 (the walks' accept table)."""
        acc = self._term_accept.get(term)
        if acc is None:
            acc = self._term_accept[term] = np.where(self.cg.terminals[term].dfa.accept, 0, -1).astype(np.int32)
        return acc

    def _digest(self, term: int, s: int) -> tuple[int, ...]:
        """A 128-bit digest of the canonical form of state s of term's DFA (see canonical_digest):
        the key under which the WalkMemo shares its walks."""
        key = (term, s)
        got = self._digests.get(key)
        if got is None:
            reps = self._term_reps.get(term)
            if reps is None:
                rep, cls = self.cg.lexer.term_classes(term)
                seed = np.frombuffer(hashlib.blake2b(cls.astype(np.int16).tobytes(), digest_size=16).digest(),
                                     dtype=np.uint64)
                reps = self._term_reps[term] = (rep, seed)
            h1, h2, ok = canonical_digest(self.cg.terminals[term].dfa.trans, self._accept(term), reps[0], reps[1],
                                          np.int32(s), DIGEST_MAX_CELLS)
            # past the bound hashing costs more than the walk it might save: a key of this store only
            got = self._digests[key] = (int(h1), int(h2)) if ok else (-self._serial, term, s)
        return got

    def mask(self, ls: int, stack: tuple[int, ...], pool: StackPool) -> np.ndarray:
        """The allowed-token bitset (uint32 words) for lexer state `ls` and parser `stack`."""
        for j in self._depths.get(ls, ()):
            if j <= len(stack):
                key = (ls, stack[-j:])
                got = self._lru.get(key)
                if got is not None:
                    self._lru.move_to_end(key)
                    self.hits += 1
                    return got
        self.misses += 1
        cg = self.cg
        with cg.lock:
            ci_bits, bnodes, bstates = self.lexeme_entry(ls)
            bits = ci_bits.copy()
            top, pool_n = pool.load(stack)
            pool.touched[0] = top
            cg.run(pool, boundary_walk, bnodes, bstates, np.int64(len(bnodes)), self.trie, bits, np.int32(top),
                   np.int32(pool_n), self._memo)
            if can_end(np.int32(ls), np.int32(top), np.int32(pool_n), pool.state, pool.parent, cg.P, cg.L,
                       pool.overlay, pool.touched):
                bits |= self.stop_bits
            depth = pool_n - int(pool.touched[0])
        depths = self._depths.setdefault(ls, [])
        if depth not in depths:
            depths.append(depth)
            depths.sort()
        self._lru[(ls, stack[-depth:])] = bits
        if len(self._lru) > self.max_entries:
            self._lru.popitem(last=False)
        return bits
