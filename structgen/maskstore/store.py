"""The token-mask store: memoized bitsets per (lexer state, top of the parser stack).

An entry is the context-independent bitset of its lexer state (tokens that stay inside the
current lexeme, computed once per lexer state) OR'ed with the result of walking only the
boundary-crossing subtrees of the token trie with the parser. The walk records how deep into
the stack it read; the entry is keyed by the lexer state and just that many top stack states,
so the same local context at any nesting depth is a dictionary lookup (LRU-bounded).

A lexer state is a product of terminal DFA states; its context-independent part is assembled
from walks of the single terminals (`component_entry`, memoized per terminal state and, inside
that, per subtree of the root and per group of the trie's units by token length, see levels.py),
which recur across the many terminal sets of a grammar and, in the tokenizer-wide WalkMemo,
across grammars.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
import numpy as np

from .. import bitset
from ..automata.dfa import readonly
from ..automata.mapped import grow_mapped, mapped_array
from ..automata import glr
from ..automata.parser import StackPool
from ..automata.step import GLR_LIMIT
from ..runtime import GrammarRuntime
from ..tokenizer import TokenizerIndex, TokenizerInfo
from ..automata.views import TrieView
from .levels import LEVELS, component_walk, make_plan
from .memo import memo_rehash, state_digest
from .runs import UNKNOWN, safe_below, safe_bytes
from .views import (ConfigMemo, DFAView, DigestView, ForkTasks, IdLists, MemoView, RunsView, WalkPlan,
                    WalkScratch)
from .walk import (boundary_walk, lexeme_walk, product_boundaries, range_count, range_ids, ranges_bits, root_walk,
                   set_ids, trie_parents, walk_room, walks_from, BYTE_COLUMNS, TIE_MEMO)


DEFAULT_LRU_ENTRIES = 2048
COMPONENT_MEMO_BYTES = 256 << 20  # bound on a tokenizer's walk memo (see WalkMemo)
LOCAL_COMPONENTS = 4096  # (terminal, state) -> entry references kept per store, in front of the WalkMemo
LITERAL_IDS = 1 << 14  # token ids (and nodes) the literals' walks of one product state write at most (_literal_entries)
SPARSE_BITS = 1024  # a component entry allowing fewer tokens keeps their ids, not a dense bitset
DIGEST_MAX_CELLS = 1 << 16  # states x byte classes hashed at most per canonical digest (~100 us), and per walk
SPLIT_DEPTH, SPLIT_SIZE = 16, 256  # trie nodes with longer tokens and more nodes below are cut (walk_plan)
LEVEL_TABLE_CELLS = 1 << 17  # level digests for DFAs of at most this many states x levels (2 MB per terminal)
LEVEL_TRIES = 4  # walks of a terminal keyed by level with none of their groups found (a key's states differ
# within a few bytes: its level digests would cost ~0.2 ms per walk and never be found), or past the level
# budget (a big pattern), before it walks by root subtree alone
_STORE_SERIALS = itertools.count(1)
SAFE_BYTES = safe_bytes()


def _root_children_of(index: TokenizerIndex) -> np.ndarray:
    """The depth-1 nodes of the tokenizer's trie, in node order."""
    trie = index.trie
    return index.cached("root_children", lambda: np.flatnonzero(trie.node_depth == 1).astype(np.int64))


def _walk_plan_of(index: TokenizerIndex) -> WalkPlan:
    """walk_plan of the tokenizer's trie, and the levels of its groups (component_walk's plan)."""
    return index.cached("walk_plan", lambda: make_plan(index.trie, SPLIT_DEPTH, SPLIT_SIZE))


def _run_below_of(index: TokenizerIndex) -> np.ndarray:
    """safe_below of the tokenizer's trie (runs.py)."""
    trie = index.trie
    return index.cached("run_below", lambda: readonly(safe_below(trie.node_byte, trie.node_skip, SAFE_BYTES)))


def _trie_parents_of(index: TokenizerIndex) -> np.ndarray:
    """trie_parents of the tokenizer's trie."""
    trie = index.trie
    return index.cached("parents", lambda: readonly(trie_parents(trie.node_depth)))


def _scratch_of(index: TokenizerIndex) -> WalkScratch:
    """This thread's work arrays for walks of a TokenTrie: (mark, ranges, boundary nodes, their
    states, and ranges and nodes by group for component_walk), shared by every store of the
    tokenizer; a store of its own would fault in ~5 MB of fresh pages (Llama-3) during each new
    grammar's first masks."""
    local = index.cached("scratch", threading.local)
    got = getattr(local, "arrays", None)
    if got is None:
        n = index.trie.num_nodes
        got = local.arrays = WalkScratch(np.zeros(n, dtype=np.bool_), np.empty((n, 2), dtype=np.int32),
                                         np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32),
                                         np.empty((n, 2), dtype=np.int32), np.empty(n, dtype=np.int32))
    return got


class WalkMemo:
    """The walks of terminal DFA states, shared by every grammar of one tokenizer.

    A walk depends only on the language of the state it starts from, so it is keyed by a digest
    of the state's canonical form (the sub-automaton reachable from it, renumbered breadth-first):
    the body of a JSON string, a date-time, or "at most 12 more characters" is walked once per
    tokenizer, not once per schema. Whole component entries are kept in a dict; the walks of
    single subtrees of the root (root_walk), and of groups of units (component_walk, keyed by
    level digest), in flat numba tables: keys (hk, hv: digest and root child or group -> entry),
    entries (ent: their ranges of `ranges` and of `nodes`), and `used` (entries, ranges,
    nodes). All of it is dropped past COMPONENT_MEMO_BYTES."""

    def __init__(self, index: TokenizerIndex) -> None:
        self.lock = threading.Lock()  # stores of different grammars (and their locks) share this
        # one walk of the whole trie writes at most this many ranges / nodes: a subtree's, then
        # (component_walk) the same again cut into groups
        self.room = 2 * index.trie.num_nodes + len(_walk_plan_of(index).run_start)
        self.components: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # digest -> component entry
        self.hk = np.zeros((1 << 12, 3), dtype=np.uint64)
        self.hv = np.full(1 << 12, -1, dtype=np.int32)
        self.ent = np.empty((1 << 11, 4), dtype=np.int64)
        self._maps: dict = {}  # the mappings under ranges and nodes (grown in place, see grow_mapped)
        self.ranges, self._maps["ranges"] = mapped_array((2 * self.room, 2), np.int32)
        self.nodes, self._maps["nodes"] = mapped_array((2 * self.room,), np.int32)
        self.used = np.zeros(3, dtype=np.int64)
        self.nbytes = 0  # of the component entries

    def tables(self) -> MemoView:
        """component_walk's memo, with room for one more walk of the whole trie (256 subtrees)."""
        n_ent, n_r, n_b = self.used.tolist()
        if n_ent * 32 + n_r * 8 + n_b * 4 + self.nbytes > COMPONENT_MEMO_BYTES:  # entry rows, ranges, nodes
            self.clear()
            n_ent = n_r = n_b = 0
        if 2 * (n_ent + 256 + len(LEVELS)) > len(self.hv):
            cap = 4 * len(self.hv)
            hk, hv = np.zeros((cap, 3), dtype=np.uint64), np.full(cap, -1, dtype=np.int32)
            memo_rehash(self.hk, self.hv, hk, hv)
            self.hk, self.hv = hk, hv
            ent = np.empty((cap // 2, 4), dtype=np.int64)
            ent[:n_ent] = self.ent[:n_ent]
            self.ent = ent
        if n_r + self.room > len(self.ranges):
            grow_mapped(self, "ranges", self._maps, 2 * len(self.ranges), n_r)
        if n_b + self.room > len(self.nodes):
            grow_mapped(self, "nodes", self._maps, 2 * len(self.nodes), n_b)
        return MemoView(self.hk, self.hv, self.ent, self.ranges, self.nodes, self.used)

    def remember(self, key: tuple[int, int], value: tuple[np.ndarray, np.ndarray]) -> None:
        """Keep a whole component entry under its state's digest."""
        self.components[key] = value
        self.nbytes += value[0].nbytes + value[1].nbytes

    def clear(self) -> None:
        self.components.clear()
        self.nbytes = 0
        self.hv[:] = -1
        self.used[:] = 0


def _walk_memo_of(index: TokenizerIndex) -> WalkMemo:
    """The WalkMemo of a tokenizer."""
    return index.cached("walk_memo", lambda: WalkMemo(index))


def _all_tokens_of(index: TokenizerIndex, words: int) -> np.ndarray:
    """The bitset (`words` uint32 words) of every token in the tokenizer's trie."""
    trie = index.trie

    def make() -> np.ndarray:
        bits = np.zeros(words, dtype=np.uint32)
        set_ids(bits, readonly(trie.tok_ids))
        return readonly(bits)
    return index.cached(f"all_tokens_{words}", make)


# root_walk's memo and digest arguments when it walks without the WalkMemo (numba types only)
_NO_MEMO = MemoView(np.zeros((1, 3), dtype=np.uint64), np.full(1, -1, dtype=np.int32), np.zeros((1, 4), dtype=np.int64),
                    np.zeros((1, 2), dtype=np.int32), np.zeros(1, dtype=np.int32), np.zeros(3, dtype=np.int64))
_NO_DIGESTS = DigestView(np.zeros(1, dtype=np.int64), np.zeros(256, dtype=np.int64), np.int64(0),
                         np.zeros((1, 2), dtype=np.uint64), np.zeros(1, dtype=np.bool_), np.uint64(0),
                         np.zeros((0, 1, 2), dtype=np.uint64), np.zeros((0, 1), dtype=np.bool_),
                         np.zeros(2, dtype=np.uint64))


class MaskStore:
    """Mask bitsets (uint32 words, bit t = token t allowed) for one compiled grammar: its runtime
    (runtime.GrammarRuntime) and its tokenizer."""

    def __init__(self, rt: GrammarRuntime, tok: TokenizerInfo, max_entries: int = DEFAULT_LRU_ENTRIES) -> None:
        self.rt = rt  # the runtime: its tables, retry loop and lock (no cycle back to the grammar)
        index = tok.index
        trie = index.trie
        self.trie = TrieView(trie.node_byte, trie.node_depth, trie.node_skip, trie.node_tok_start, trie.node_tok_end,
                             trie.tok_ids, np.int64(trie.max_depth), _trie_parents_of(index), _root_children_of(index))
        self._trie_plain = tuple(self.trie)
        self.words = (tok.vocab_size + 31) // 32
        self.stop_ids = np.array(sorted(tok.stop_token_ids), dtype=np.int64)
        self.stop_bits = bitset.from_ids(self.stop_ids, tok.vocab_size)
        self._lexeme: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._lru: OrderedDict[tuple[int, tuple[int, ...]], np.ndarray] = OrderedDict()
        # lexer state -> stack depths its entries depend on; tuples, which the cyclic GC stops tracking
        # (one list per lexer state was a third of the objects a full collection walked)
        self._depths: dict[int, tuple[int, ...]] = {}
        self.max_entries = max_entries
        num_cfg = 4096 if rt.parser.glr else 256  # parser configurations memoized per walk (see boundary_walk)
        self._configs = ConfigMemo(np.zeros(num_cfg, dtype=np.int32), np.zeros(num_cfg, dtype=np.int32),
                                   np.full((num_cfg, len(rt.terminals) + TIE_MEMO), -1, dtype=np.int32),
                                   np.full(2 * num_cfg, -1, dtype=np.int32), np.zeros(num_cfg, dtype=np.int32))
        self._components: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # (term, state) -> entry
        self._is_literal = np.array([t.is_literal for t in rt.terminals], dtype=np.bool_)
        self._digests: dict[int, DigestView] = {}  # term -> state_digest's per-state keys of its DFA
        self._class_trans: dict[int, np.ndarray] = {}  # term -> its DFA's table over its byte classes
        # term -> (walks keyed by level, those that found groups, walks past the level budget)
        self._level_use: dict[int, tuple[int, int, int]] = {}
        self._shared = _walk_memo_of(index)
        self._serial = next(_STORE_SERIALS)  # keys of this store's own walks in the shared memo
        self._run_below = _run_below_of(index)
        self._free = np.full(0, UNKNOWN, dtype=np.int16)  # free_depth per lexer state, grown with the lexer
        self._plan = _walk_plan_of(index)
        self._index = index
        self._all_tokens = _all_tokens_of(index, self.words)
        self._term_accept: dict[int, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        # a walk's GLR work (configs.fork): tasks, the latest task at each trie node, fork results, and
        # the results of each memoized fork; a grammar without conflicts writes them only where a
        # lexeme ends in a lexer tie, and then they are made full size (_boundary)
        n = 1 << 16 if rt.parser.glr else 0
        self._tasks = ForkTasks(np.empty((n, 5), dtype=np.int32),
                                np.full(trie.num_nodes + 1 if n else 1, -1, dtype=np.int32),
                                np.empty((n, 2), dtype=np.int32), np.empty((n, 2), dtype=np.int32))
        self._runs: RunsView | None = None  # (rebuilt when the free_depth table grows)

    def lexeme_entry(self, ls: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(context-independent bits, boundary nodes, lexer states before them) for lexer state ls.

        A product state is alive after a byte string iff one of its terminals' own DFAs is, so
        its bits are the union of its components' bits, and every boundary is a node where some
        component, accepting, dies (then checked on the product). Components recur across the
        many terminal sets of a grammar (a JSON key string next to each set of literal keys),
        so their walks are memoized and each product state costs a few bitset ORs."""
        got = self._lexeme.get(ls)
        if got is None:
            lx = self.rt.lexer
            comps = lx.components(ls)
            bits = np.zeros(self.words, dtype=np.uint32)
            work = _scratch_of(self._index)
            mark, bnodes, bstates = work.mark, work.nodes, work.states
            if comps is None:  # a DFA restored from a cache entry without components: walk the product
                nb = lexeme_walk(np.int32(ls), self._trie_plain, lx.trans, lx.accept_term, bits, bnodes, bstates)
            else:
                self._literal_entries(comps)
                cands = []
                for t, q in comps:
                    cbits, facc = self.component_entry(t, q)
                    if cbits.dtype == np.uint32:
                        bits |= cbits
                    else:
                        set_ids(bits, readonly(cbits))
                    cands.append(facc)
                cand = np.concatenate(cands) if cands else np.zeros(0, dtype=np.int32)
                nb = product_boundaries(np.int32(ls), cand, self._trie_plain, lx.trans, lx.accept_term,
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
        if self._is_literal[term]:  # one path through the trie: walking costs less than digesting
            got = self._walk(term, q, None)
        else:
            memo = self._shared
            dq = self._digest(term, q)
            got = memo.components.get(dq)
            if got is None:
                got = self._walk(term, q, memo)
                memo.remember(dq, got)
        if len(self._components) >= LOCAL_COMPONENTS:  # a fast path only: the WalkMemo bounds the memory
            self._components.clear()
        self._components[key] = got
        return got

    def _walk(self, term: int, q: int, memo: WalkMemo | None) -> tuple[np.ndarray, np.ndarray]:
        """component_entry's walk from q, shared through `memo` if given (component_walk: by
        group of units under level digests, or by subtree of the root under canonical digests:
        the states of a key string that track the excluded keys all fall back to one body state,
        whose subtrees are then walked once); else one root_walk (a literal)."""
        d = self.rt.terminals[term].dfa
        work = _scratch_of(self._index)
        q, acc = np.int32(q), self._accept(term)
        if memo is None:
            nr, nf = root_walk(q, self.trie, DFAView(d.trans, BYTE_COLUMNS, acc), False, _NO_DIGESTS, _NO_MEMO, work)
        else:
            tries, found, over = self._level_use.get(term, (0, 0, 0))
            use = over < LEVEL_TRIES and (tries < LEVEL_TRIES or found > 0)
            with memo.lock:
                dig = self._digest_tables(term)
                nr, nf, got = component_walk(q, self._plan, self.trie, DFAView(self._class_trans[term], dig.cls, acc),
                                             dig, memo.tables(), work, use)
            if got != -1:
                self._level_use[term] = (tries + (got >= 0), found + (got > 0), over + (got == -2))
        ranges = work.ranges[:nr]
        tok_ids = self.trie.tok_ids
        if range_count(ranges) <= SPARSE_BITS:
            bits = range_ids(tok_ids, ranges)
        else:
            bits = np.zeros(self.words, dtype=np.uint32)
            ranges_bits(bits, tok_ids, ranges, self._all_tokens)
        return bits, work.nodes[:nf].copy()

    def _literal_entries(self, comps: list[tuple[int, int]]) -> None:
        """component_entry of the literal (terminal, state) pairs in `comps` that are not known yet,
        walked in one numba call on their single copies in the lexer table (the ~130 literal
        keys of a set are all at their second byte after a quote); those that need more room
        than LITERAL_IDS are left to component_entry."""
        todo = [(t, q) for t, q in comps if self._is_literal[t] and (t, q) not in self._components]
        if not todo:
            return
        lx = self.rt.lexer
        starts = np.array([int(lx.single_start[t]) + q for t, q in todo], dtype=np.int64)
        ids, nodes = np.empty(LITERAL_IDS, dtype=np.int32), np.empty(LITERAL_IDS, dtype=np.int32)
        ids_off, nodes_off = np.empty(len(todo) + 1, dtype=np.int64), np.empty(len(todo) + 1, dtype=np.int64)
        if not walks_from(starts, self.trie, DFAView(lx.trans, BYTE_COLUMNS, lx.accept_term), _NO_DIGESTS, _NO_MEMO,
                          _scratch_of(self._index), IdLists(ids, ids_off, nodes, nodes_off)):
            return
        ids, nodes = ids[:ids_off[-1]].copy(), nodes[:nodes_off[-1]].copy()
        if len(self._components) + len(todo) >= LOCAL_COMPONENTS:
            self._components.clear()
        for i, key in enumerate(todo):
            got = ids[ids_off[i]:ids_off[i + 1]]
            if len(got) > SPARSE_BITS:
                got = np.zeros(self.words, dtype=np.uint32)
                set_ids(got, readonly(ids[ids_off[i]:ids_off[i + 1]]))
            self._components[key] = (got, nodes[nodes_off[i]:nodes_off[i + 1]])

    def _accept(self, term: int) -> np.ndarray:
        """int32 per state of term's DFA: 0 if accepting, else -1 (the walks' accept table)."""
        acc = self._term_accept.get(term)
        if acc is None:
            acc = self._term_accept[term] = np.where(self.rt.terminals[term].dfa.accept, 0, -1).astype(np.int32)
        return acc

    def _digest_tables(self, term: int) -> DigestView:
        """The key tables of term's DFA (state_digest's, then level_digest's) for its table over
        byte classes (_class_trans[term], made here): the classes (0 .. k-1, and the class of each
        byte), the cell bound, per-state keys
        (computed on first use), this store's tag for states past the bound; keys per level and
        state (levels 0 .. LEVELS[-1]; none for a DFA too big), and a seed for the classes."""
        got = self._digests.get(term)
        if got is None:
            rep, cls = self.rt.lexer.term_classes(term)
            n = self.rt.terminals[term].dfa.num_states
            levels = int(LEVELS[-1]) + 1 if n * (int(LEVELS[-1]) + 1) <= LEVEL_TABLE_CELLS else 0
            seed = np.frombuffer(hashlib.blake2b(cls.astype(np.int16).tobytes(), digest_size=16).digest(),
                                 dtype=np.uint64).copy()
            tag = np.uint64((0xFFFF << 48) | ((self._serial & 0xFFFFFFF) << 20) | (term & 0xFFFFF))
            # a walk reads one row per trie node: 4k states x 256 bytes is 4 MB (cache misses),
            # x 21 classes 340 kB
            self._class_trans[term] = np.ascontiguousarray(self.rt.terminals[term].dfa.trans[:, rep])
            got = self._digests[term] = DigestView(np.arange(len(rep), dtype=np.int64), cls, np.int64(DIGEST_MAX_CELLS),
                                                   np.zeros((n, 2), dtype=np.uint64), np.zeros(n, dtype=np.bool_), tag,
                                                   np.zeros((levels, n, 2), dtype=np.uint64),
                                                   np.zeros((levels, n), dtype=np.bool_), seed)
        return got

    def _digest(self, term: int, s: int) -> tuple[int, int]:
        """A 128-bit digest of the canonical form of state s of term's DFA (see canonical_digest):
        the key under which the WalkMemo shares its walks (past DIGEST_MAX_CELLS, hashing costs
        more than the walk it might save: a key of this store only)."""
        dig = self._digest_tables(term)
        h1, h2 = state_digest(np.int32(s), self._class_trans[term], self._accept(term), dig,
                              np.full(1, DIGEST_MAX_CELLS, dtype=np.int64))
        return int(h1), int(h2)

    def _boundary(self, bnodes: np.ndarray, bstates: np.ndarray, stack: tuple[int, ...], bits: np.ndarray,
                  pool: StackPool) -> None:
        """boundary_walk of the entries from `stack` into `bits` (and of the forks it meets, GLR).
        Caller holds rt.lock."""
        rt = self.rt
        progress = np.zeros(7, dtype=np.int64)
        pool.reserve(walk_room(len(stack), len(self._configs.top), rt.forks))  # not one POOL_FULL per doubling
        pool.touched[0] = len(stack) - 1  # the deepest node read, over every call of a resumed walk
        while True:
            top, pool_n = pool.load(stack)
            n = rt.lexer.trans.shape[0]
            if len(self._free) < n:  # rows of built lexer states never change: known depths stay
                free = np.full(n, UNKNOWN, dtype=np.int16)
                free[:len(self._free)] = self._free
                self._free = free
                self._runs = None
            if self._runs is None:
                self._runs = RunsView(self._run_below, self._free, SAFE_BYTES, self.trie.max_depth)
            # views.BoundaryWalk, as plain tuples (what Python passes to kernels: automata/views.py)
            walk = (bnodes, bstates, bits, progress, tuple(self._configs), tuple(self._tasks), tuple(self._runs))
            status, _ = rt.run(pool, boundary_walk, self._trie_plain, np.int32(top), np.int32(pool_n), walk)
            if status != GLR_LIMIT:
                return
            table, head, fres, fmemo = self._tasks
            if len(table) == 0:  # the first fork of a grammar without conflicts (a lexer tie): full size
                n = 1 << 16
                self._tasks = ForkTasks(np.empty((n, 5), dtype=np.int32),
                                        np.full(self._index.trie.num_nodes + 1, -1, dtype=np.int32),
                                        np.empty((n, 2), dtype=np.int32), np.empty((n, 2), dtype=np.int32))
                continue
            if progress[2] + 64 < len(table) and progress[4] + 64 < len(fres):
                raise glr.too_many()
            if len(table) >= 1 << 24:
                raise glr.too_many("16M fork tasks in one mask")
            # more forks than the tables hold: 4x the room, and the walk resumes where it stopped (the
            # unit it stopped in forgot its tasks; task rows keep their numbers, and fork results with
            # their memo hold for one call)
            grown = np.empty((4 * len(table), 5), dtype=np.int32)
            grown[:len(table)] = table
            self._tasks = ForkTasks(grown, head, np.empty((4 * len(fres), 2), dtype=np.int32), fmemo)

    def known_mask(self, ls: int, stack: tuple[int, ...]) -> np.ndarray | None:
        """mask()'s bits if they are memoized (no walk needed), else None."""
        for j in self._depths.get(ls, ()):
            if j <= len(stack):
                key = (ls, stack[-j:])
                got = self._lru.get(key)
                if got is not None:
                    try:
                        self._lru.move_to_end(key)
                    except KeyError:  # evicted meanwhile by another thread's miss: still the right bits
                        pass
                    self.hits += 1
                    return got
        return None

    def forget(self) -> None:
        """Drop every memoized mask (tests compare memoized masks with fresh ones)."""
        self._lru.clear()
        self._depths.clear()

    def mask(self, ls: int, stack: tuple[int, ...], pool: StackPool) -> np.ndarray:
        """The allowed-token bitset (uint32 words) for lexer state `ls` and parser `stack`."""
        got = self.known_mask(ls, stack)
        if got is not None:
            return got
        self.misses += 1
        rt = self.rt
        with rt.lock:
            ci_bits, bnodes, bstates = self.lexeme_entry(ls)
            bits = ci_bits.copy()
            self._boundary(bnodes, bstates, stack, bits, pool)
            top, pool_n = pool.load(stack)
            if rt.can_end(ls, top, pool_n, pool):
                bits |= self.stop_bits
            depth = pool_n - int(pool.touched[0])  # how many top states of `stack` were read
            depths = self._depths.get(ls, ())
            if depth not in depths:  # replaced, not changed: other threads read it without the lock
                self._depths[ls] = tuple(sorted(depths + (depth,)))
            self._lru[(ls, stack[-depth:])] = bits
            if len(self._lru) > self.max_entries:
                self._lru.popitem(last=False)
        return bits
