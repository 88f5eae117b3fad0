"""The incremental lexer: one product DFA per set of terminals the parser can accept next.

Lexing is greedy (longest match) without backtracking, as in llguidance: a lexeme ends when the
next byte cannot extend it, and then it must be in an accepting state. When several terminals
accept the same lexeme, the highest Lark priority wins, then a literal over a regex (Lark's
keyword rule), then declaration order; with `fork_ties` (grammars whose language is exactly their
rules', as JSON Schema's), the terminals of the best priority that accept a lexeme alike are a tie
set instead, which the parser follows as a fork (automata/glr.py: one branch per terminal, an ignored
one skipped), so no reading of the text is lost. `%ignore` terminals are in every set, except (unless
`trailing_ignore`) the empty set: once only the end of input can follow, no ignored text may
either (as in llguidance), so a model cannot loop on whitespace after a complete output.

All product DFAs live in one growing table so numba kernels index a single array; a set's DFA
is built the first time a parser configuration needs it (sets are keyed in an open-addressing
hash table that numba can probe).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..errors import LimitExceeded
from .dfa import ByteDFA, byte_classes, readonly
from .mapped import grow_mapped, mapped_array, prefault, unadvised_array
from .lexer_index import insert_set, known_insert, lookup_set
from .product import column_classes, product_bfs
from .views import LexerView, ProductParts

DEFAULT_MAX_LEXER_STATES = 500_000
COLLAPSE_MIN_STATES = 8  # terminals this small are not collapsed into (their copy would cost more than it saves)
PREFAULT_MIN_ROWS = 512  # single copies this big fault in their table pages in one call (mapped.prefault)
HEAP_TABLE_BYTES = 1 << 18  # per-state tables smaller than this start on the heap (see LexerTables._rows)
INSTALL_BATCH_ROWS = 256  # single copies are installed in batches of this many rows (see _install_singles)
EAGER_COPY_STATES = 1024  # terminals this big get their byte classes at compile time (see LexerTables.__init__)
BYTES = np.arange(256, dtype=np.int64)  # the byte -> column map of a table over all 256 bytes
_TABLES = ("trans", "accept_term", "is_start", "is_final", "state_dfa", "tie")  # the per-state rows, grown together
_VIEWED = frozenset(LexerView._fields)  # the attributes LexerTables.view() reads: assigning one drops the kept view


@dataclass(frozen=True)
class Terminal:
    """A grammar terminal: its byte DFA and how it ranks against others matching the same text."""

    name: str
    dfa: ByteDFA
    priority: int
    is_literal: bool
    ignore: bool


class LexerTables:
    """Product DFAs of terminal sets, concatenated into one table (state ids are global)."""

    _view: LexerView | None = None

    def __setattr__(self, name: str, value) -> None:
        if name in _VIEWED:  # a table replaced (grown, or a new DFA's start): the kept view is stale
            object.__setattr__(self, "_view", None)
        object.__setattr__(self, name, value)

    def view(self) -> LexerView:
        """The tables as the numba kernels read them (views.LexerView); kept until one is replaced."""
        v = self._view
        if v is None:
            v = LexerView(self.trans, self.accept_term, self.is_start, self.is_final, self.state_dfa, self.dfa_start,
                          self.is_ignore, self.ht_keys, self.ht_vals, self.tie, self.tie_ptr, self.tie_terms)
            object.__setattr__(self, "_view", v)
        return v

    def __init__(self, terminals: list[Terminal], *, trailing_ignore: bool = False,
                 max_states: int = DEFAULT_MAX_LEXER_STATES, fork_ties: bool = False) -> None:
        self.terminals = terminals
        self.fork_ties = fork_ties
        self._priority = np.array([t.priority for t in terminals], dtype=np.int64)
        self.trailing_ignore = trailing_ignore
        self.max_states = max_states
        self.num_terms = len(terminals)
        self.set_words = (self.num_terms + 1 + 63) // 64
        self.is_ignore = np.array([t.ignore for t in terminals], dtype=np.bool_)
        self._ignored = np.flatnonzero(self.is_ignore)
        self._sizes = np.fromiter((t.dfa.trans.shape[0] for t in terminals), dtype=np.int64, count=self.num_terms)
        # product states with only such a terminal alive jump into its single copy (_build): not
        # ignored terminals, nor short ones
        self._collapse = ~self.is_ignore & (self._sizes >= COLLAPSE_MIN_STATES)
        order = sorted(range(len(terminals)),
                       key=lambda i: (-terminals[i].priority, not terminals[i].is_literal, i))
        self.rank = np.empty(len(terminals), dtype=np.int32)
        self.rank[order] = np.arange(len(terminals), dtype=np.int32)
        self.num_states = 0
        # room for every terminal's single copy and the products around them, reserved up front
        # (untouched pages cost nothing) and grown in place (see _grow)
        cap = min(max(1024, 4 * int(self._sizes.sum())), max_states)
        self._maps: dict[str, mmap.mmap] = {}
        self.trans = self._rows("trans", cap, (256,), np.int32)  # rows are written by _install before use
        self.accept_term = self._rows("accept_term", cap, (), np.int32)
        self.is_start = self._rows("is_start", cap, (), np.bool_)
        self.is_final = self._rows("is_final", cap, (), np.bool_)  # accepting and cannot be extended
        self.state_dfa = self._rows("state_dfa", cap, (), np.int32)
        self.tie = self._rows("tie", cap, (), np.int32)  # 0, or 1 + the state's tie set
        self.tie_ptr, self.tie_terms = np.zeros(1, dtype=np.int32), np.zeros(0, dtype=np.int32)
        self.tie_sets: dict[tuple[int, ...], int] = {}
        self._starts = np.zeros(64, dtype=np.int32)  # dfa_start is a view of its first len(dfa_sets)
        self.dfa_start = self._starts[:0]
        self.dfa_sets: list[tuple[int, ...]] = []
        # per DFA built here (not restored): its terminals and each state's component states (-1: dead)
        self.dfa_vecs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._singles: dict[int, int] = {}  # terminal -> the DFA id of its own copy (see _build)
        self.single_start = np.full(self.num_terms, -1, dtype=np.int64)  # terminal -> its copy's first state
        self._cls_of: np.ndarray | None = None  # terminal -> the class of each byte (term_classes), for product_tables
        self._cls_known: np.ndarray | None = None
        self.ht_keys = np.zeros((64, self.set_words), dtype=np.uint64)
        self.ht_vals = np.full(64, -1, dtype=np.int32)
        self._dead = np.full(256, -1, dtype=np.int32)
        # product states shared across sets (see _build): open-addressing slots -> entries (start and
        # size of the live components' keys in the key pool, global state id), the key pool
        self.known = (np.full(256, -1, dtype=np.int32), np.empty((128, 3), dtype=np.int64), np.empty(512, dtype=np.int64))
        self.known_used = np.zeros(2, dtype=np.int64)  # entries, keys
        # every terminal's copy is installed now, in one batch, not one by one (~40 us of Python
        # each) in the masks that first reach them; a big terminal's byte classes are computed now
        self._install_singles(np.arange(self.num_terms))
        for t in np.flatnonzero(self._collapse & (self._sizes >= EAGER_COPY_STATES)).tolist():
            self.term_classes(t)

    # --- persistence (the compile cache) ---------------------------------------------------

    def snapshot(self) -> dict[str, np.ndarray]:
        """The product DFAs built so far as plain arrays (restore() puts them back)."""
        n = self.num_states
        sizes = np.array([len(s) for s in self.dfa_sets], dtype=np.int64)
        flat = np.array([t for s in self.dfa_sets for t in s], dtype=np.int32)
        has_vecs = np.array([d in self.dfa_vecs for d in range(len(self.dfa_sets))], dtype=np.bool_)
        vecs = [self.dfa_vecs[d][1].ravel() for d in range(len(self.dfa_sets)) if has_vecs[d]]
        return {"lex_trans": self.trans[:n], "lex_accept_term": self.accept_term[:n], "lex_is_start": self.is_start[:n],
                "lex_is_final": self.is_final[:n], "lex_state_dfa": self.state_dfa[:n], "lex_dfa_start": self.dfa_start,
                "lex_set_sizes": sizes, "lex_set_terms": flat, "lex_ht_keys": self.ht_keys, "lex_ht_vals": self.ht_vals,
                "lex_has_vecs": has_vecs, "lex_tie": self.tie[:n], "lex_tie_ptr": self.tie_ptr,
                "lex_tie_terms": self.tie_terms,
                "lex_vecs": np.concatenate(vecs).astype(np.int32) if vecs else np.zeros(0, dtype=np.int32)}

    def restore(self, a: dict[str, np.ndarray]) -> None:
        """Install the product DFAs of a snapshot() of the same terminals."""
        n = int(a["lex_trans"].shape[0])
        self._grow(n)
        self.num_states = n
        self.trans[:n] = a["lex_trans"]
        self.accept_term[:n] = a["lex_accept_term"]
        self.is_start[:n] = a["lex_is_start"]
        self.is_final[:n] = a["lex_is_final"]
        self.state_dfa[:n] = a["lex_state_dfa"]
        self.tie[:n] = a["lex_tie"]
        self.tie_ptr = np.array(a["lex_tie_ptr"], dtype=np.int32)
        self.tie_terms = np.array(a["lex_tie_terms"], dtype=np.int32)
        self.tie_sets = {tuple(self.tie_terms[self.tie_ptr[k]:self.tie_ptr[k + 1]].tolist()): k
                         for k in range(len(self.tie_ptr) - 1)}
        self._starts = np.array(a["lex_dfa_start"], dtype=np.int32)
        self.dfa_start = self._starts[:len(self._starts)]
        bounds = np.concatenate([[0], np.cumsum(a["lex_set_sizes"])]).astype(np.int64)
        terms = a["lex_set_terms"].tolist()
        self.dfa_sets = [tuple(terms[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)]
        if a["lex_ht_keys"].shape[1] != self.set_words or len(self.dfa_start) != len(self.dfa_sets):
            raise ValueError("lexer snapshot does not fit these terminals")
        self.ht_keys = a["lex_ht_keys"].astype(np.uint64)
        self.ht_vals = a["lex_ht_vals"].astype(np.int32)
        self.dfa_vecs = {}
        self._singles = {terms[0]: d for d, terms in enumerate(self.dfa_sets) if len(terms) == 1}
        self.single_start[:] = -1
        for t, d in self._singles.items():
            self.single_start[t] = self.dfa_start[d]
        if "lex_has_vecs" in a and len(a["lex_has_vecs"]) == len(self.dfa_sets):  # entries written before: none
            ends = np.append(self.dfa_start[1:], n).astype(np.int64)
            flat, at = a["lex_vecs"], 0
            for d in np.flatnonzero(a["lex_has_vecs"]).tolist():
                terms = self.dfa_sets[d]
                states = int(ends[d] - self.dfa_start[d])
                size = states * max(len(terms), 1)  # the empty set's DFA has one dead component
                rows = flat[at:at + size].reshape(states, -1)
                self.dfa_vecs[d] = (np.asarray(terms, dtype=np.int32), rows.astype(np.int32))
                at += size
            if at != len(flat):
                raise ValueError("lexer snapshot's component vectors do not fit its DFAs")
        self._install_singles(np.flatnonzero(self.single_start < 0))  # a snapshot from before copies were eager
        self.known = (np.full(256, -1, dtype=np.int32), self.known[1], self.known[2])
        self.known_used[:] = 0
        for d, (terms_d, vecs_d) in self.dfa_vecs.items():  # products' states, as _build enters them
            if len(terms_d) >= 2:
                self._know(terms_d, vecs_d, int(self.dfa_start[d]))

    # --- the set → DFA map -------------------------------------------------------------

    def dfa_for(self, words: np.ndarray) -> int:
        """The DFA id for a set of (non-ignore) terminals given as uint64 bit words; built lazily."""
        got = lookup_set(words, self.ht_keys, self.ht_vals)
        if got >= 0:
            return got
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")[:self.num_terms]
        if bits.any() or self.trailing_ignore:
            bits[self._ignored] = 1
        dfa_id = self._build(np.flatnonzero(bits).tolist())
        self._insert(words.copy(), dfa_id)
        return dfa_id

    def _insert(self, words: np.ndarray, value: int) -> None:
        if (len(self.dfa_sets)) * 2 >= len(self.ht_vals):
            keys = [self.ht_keys[i].copy() for i in range(len(self.ht_vals)) if self.ht_vals[i] >= 0]
            vals = [int(self.ht_vals[i]) for i in range(len(self.ht_vals)) if self.ht_vals[i] >= 0]
            cap = len(self.ht_vals) * 4
            self.ht_keys = np.zeros((cap, self.set_words), dtype=np.uint64)
            self.ht_vals = np.full(cap, -1, dtype=np.int32)
            for k, v in zip(keys, vals):
                insert_set(k, v, self.ht_keys, self.ht_vals)
        insert_set(words, value, self.ht_keys, self.ht_vals)

    # --- product construction ------------------------------------------------------------

    def _rows(self, name: str, cap: int, row: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialized array of `cap` rows for table `name`: on a mapping of its own (see
        mapped_array), or on the heap while small (a mapping is two system calls and fresh pages;
        growing copies it then, onto a mapping)."""
        if cap * int(np.prod(row, dtype=np.int64)) * np.dtype(dtype).itemsize < HEAP_TABLE_BYTES:
            return np.empty((cap,) + row, dtype=dtype)
        a, buf = mapped_array((cap,) + row, dtype)
        if buf is not None:
            self._maps[name] = buf
        return a

    def _grow(self, need: int) -> None:
        cap = self.trans.shape[0]
        if need <= cap:
            return
        if need > self.max_states:
            raise LimitExceeded(f"lexer needs more than {self.max_states} DFA states")
        new = min(max(need, cap * 4), self.max_states)
        for name in _TABLES:
            grow_mapped(self, name, self._maps, new, self.num_states)

    def _build(self, terms: list[int]) -> int:
        """Install the product DFA of `terms`; returns its id.

        A product state in which only one terminal is still alive behaves exactly like that
        terminal's own DFA, so such transitions jump into the terminal's single copy (shared by
        every set it is in) instead of duplicating its states per set: a long string terminal
        is then built, walked and masked once, not once per set of keys next to it. Excluded:
        ignored terminals (their end restarts the set's own DFA), short ones (COLLAPSE_MIN_STATES) and a
        terminal's initial state (a start state means an empty lexeme). The product is read off
        the single copies' rows of the table, in one numba call (product_tables).

        Likewise a product state is what its live components are, whatever set it was built for:
        a state whose live components (none of them ignored) an earlier set's DFA already has is
        a jump into that state (`known`). An object's optional properties give one set per
        position, each the one before minus a key; past the first bytes of a key they have the
        same states, so each set builds a few states, not the ~1,000 of its keys' trie."""
        if len(terms) == 1:
            return self._singles[terms[0]]
        if not terms:  # the empty set: one state that lexes nothing (one dead component)
            dfa_id = self._install((), np.full((1, 1), -1, dtype=np.int32), np.zeros(256, dtype=np.int64),
                                   np.full(1, -1, dtype=np.int32))
            self.dfa_vecs[dfa_id] = (np.zeros(0, dtype=np.int32), np.zeros((1, 1), dtype=np.int32))
            return dfa_id
        # every copy is installed with the first set that needs it, before the product: later
        # sets then find it (a copy installed when a jump is first used would cost one more
        # slow mask per terminal)
        t_arr = np.asarray(terms, dtype=np.int32)
        starts = self.single_start[t_arr]
        sizes = self._sizes[t_arr]
        single = np.where(self._collapse[t_arr], starts, -1).astype(np.int32)
        if self._cls_of is None:
            self._cls_of = unadvised_array((self.num_terms, 256), np.int64)[0]  # rows written before use
            self._cls_known = np.zeros(self.num_terms, dtype=np.bool_)
        need = t_arr[~self._cls_known[t_arr]]
        if len(need):  # read off the single copies' rows, in one call (1,000 keys: 10 ms one by one)
            _single_classes(readonly(self.trans), self.single_start[need], self._sizes[need], need, self._cls_of)
            self._cls_known[need] = True
        vecs, trans, byte_cls, best, n_acc = product_tables(ProductParts(t_arr, starts, sizes, single), self.view(),
                                                     self._cls_of, self.rank, self.max_states - self.num_states,
                                                     self.known)
        if vecs.shape[0] == 0:
            raise LimitExceeded(f"lexer needs more than {self.max_states} DFA states")
        dfa_id = self._install(tuple(terms), trans, byte_cls, best)
        if self.fork_ties:
            self._mark_ties(t_arr, vecs, n_acc, int(self.dfa_start[dfa_id]))
        self.dfa_vecs[dfa_id] = (t_arr, vecs)
        self._know(t_arr, vecs, int(self.dfa_start[dfa_id]))
        return dfa_id

    def _mark_ties(self, terms: np.ndarray, vecs: np.ndarray, n_acc: np.ndarray, base: int) -> None:
        """Give the states of a product DFA installed at `base` where several terminals of the best
        priority accept their tie set (`tie`, 1 + its index; sets are shared across DFAs)."""
        states = np.flatnonzero(n_acc >= 2)
        if not len(states):
            return
        new: list[int] = []  # the terms of tie sets met for the first time, appended to tie_terms once
        ends: list[int] = []
        n_terms = len(self.tie_terms)
        for s in states.tolist():
            v = vecs[s]
            live = np.flatnonzero(v >= 0).tolist()  # a few components of the (possibly 1,000) terminals
            acc = [int(terms[j]) for j in live if self.terminals[terms[j]].dfa.accept[v[j]]]
            pri = [self._priority[t] for t in acc]
            top = max(pri)
            tied = tuple(sorted(t for t, p in zip(acc, pri) if p == top))
            if len(tied) < 2:
                continue
            k = self.tie_sets.get(tied)
            if k is None:
                k = self.tie_sets[tied] = len(self.tie_sets)
                new.extend(tied)
                ends.append(n_terms + len(new))
            self.tie[base + s] = k + 1
        if new:
            self.tie_terms = np.concatenate([self.tie_terms, np.array(new, dtype=np.int32)])
            self.tie_ptr = np.concatenate([self.tie_ptr, np.array(ends, dtype=np.int32)])

    def tied_terms(self, ls: int) -> list[int]:
        """The terminals lexer state ls's lexeme ends as: its tie set, or its one accepted terminal."""
        k = int(self.tie[ls])
        return self.tie_terms[self.tie_ptr[k - 1]:self.tie_ptr[k]].tolist() if k else [int(self.accept_term[ls])]

    def _know(self, terms: np.ndarray, vecs: np.ndarray, base: int) -> None:
        """Enter the states of a product DFA installed at `base` (its terminals' own states per
        state, see product_tables) in `known`, but for its start and those with an ignored
        terminal alive."""
        slots, ent, keys = self.known
        n_ent, n_keys = self.known_used.tolist()
        n = vecs.shape[0]
        if n_ent + n > ent.shape[0]:
            grown = np.empty((max(2 * ent.shape[0], n_ent + n), 3), dtype=np.int64)
            grown[:n_ent] = ent[:n_ent]
            ent = grown
        rehash = 2 * (n_ent + n) > slots.shape[0]
        if rehash:
            cap = slots.shape[0]
            while 2 * (n_ent + n) > cap:
                cap *= 4
            slots = np.full(cap, -1, dtype=np.int32)
        keys = known_insert(terms, vecs, np.int64(base), self.is_ignore, (slots, ent, keys), self.known_used, rehash)
        self.known = (slots, ent, keys)

    def term_classes(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """byte_classes of one terminal's DFA (big ones are computed at compile time)."""
        return byte_classes(self.terminals[term].dfa)

    def _install_singles(self, terms: np.ndarray) -> None:
        """Install the own copies of `terms` (every terminal's, at compile time: DFAs 0 ..
        num_terms - 1), in a numba call per batch of rows."""
        n, base = len(terms), self.num_states
        if n == 0:
            return
        sizes = self._sizes[terms]
        total = int(sizes.sum())
        self._grow(base + total)
        if total >= PREFAULT_MIN_ROWS:
            row = self.trans.strides[0]
            prefault(self._maps.get("trans"), base * row, total * row)
        firsts = base + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        dfas = [self.terminals[t].dfa for t in terms.tolist()]
        rows_of = np.repeat(np.arange(n, dtype=np.int32), sizes)
        accept = np.where(np.concatenate([d.accept for d in dfas]), terms[rows_of], -1).astype(np.int32)
        first_dfa = len(self.dfa_sets)
        first_of_row = np.repeat(firsts, sizes)
        dfa_of_row = rows_of + np.int32(first_dfa)
        # the DFAs' rows stacked a batch at a time in one small buffer: stacked all at once (9 MB
        # for 1,000 keys) they cost fresh pages, or a huge-page fault with compaction (~20 ms)
        buf = np.empty((INSTALL_BATCH_ROWS, 256), dtype=np.int32)
        i = r0 = 0
        while i < n:
            j, rows = i, 0
            while j < n and (j == i or rows + sizes[j] <= INSTALL_BATCH_ROWS):
                rows += int(sizes[j])
                j += 1
            if j == i + 1:
                stacked = dfas[i].trans  # one DFA: its own table
            else:
                stacked = buf[:rows]
                np.concatenate([d.trans for d in dfas[i:j]], out=stacked)
            _install_rows(self.view(), np.int64(base + r0), first_of_row[r0:r0 + rows], dfa_of_row[r0:r0 + rows],
                          readonly(stacked), BYTES, accept[r0:r0 + rows])
            i, r0 = j, r0 + rows
        self.num_states = base + total
        self._starts = np.concatenate([self._starts[:first_dfa], firsts.astype(np.int32),
                                       np.zeros(first_dfa + n, dtype=np.int32)])
        self.dfa_start = self._starts[:first_dfa + n]
        column = np.arange(int(sizes.max()), dtype=np.int32).reshape(-1, 1)
        for i, t in enumerate(terms.tolist()):
            self.dfa_sets.append((t,))
            self.dfa_vecs[first_dfa + i] = (np.array([t], dtype=np.int32), column[:sizes[i]])
            self._singles[t] = first_dfa + i
        self.single_start[terms] = firsts

    def components(self, ls: int) -> list[tuple[int, int]] | None:
        """The (terminal, state of that terminal's own DFA) pairs alive in product state ls
        (None for a DFA restored from a snapshot written before components were kept)."""
        d = int(self.state_dfa[ls])
        got = self.dfa_vecs.get(d)
        if got is None:
            return None
        terms, vecs = got
        row = vecs[ls - int(self.dfa_start[d])]
        alive = row[:len(terms)] >= 0  # the empty set's DFA: one dead component, no terminal
        return list(zip(terms[alive].tolist(), row[alive].tolist()))

    def _install(self, terms: tuple[int, ...], trans: np.ndarray, byte_cls: np.ndarray,
                 accept_term: np.ndarray) -> int:
        """Append a DFA (local state ids, state 0 initial; trans over byte classes `byte_cls`) to
        the global tables; returns its id."""
        dfa_id = len(self.dfa_sets)
        self.dfa_sets.append(terms)
        base, n = self.num_states, trans.shape[0]
        self._grow(base + n)
        self.num_states += n
        _install_rows(self.view(), np.int64(base), np.full(n, base, dtype=np.int64), np.full(n, dfa_id, dtype=np.int32),
                      readonly(trans.astype(np.int32, copy=False)), byte_cls.astype(np.int64, copy=False),
                      accept_term.astype(np.int32, copy=False))
        if dfa_id == len(self._starts):
            self._starts = np.concatenate([self._starts, np.zeros(len(self._starts) + 1, dtype=np.int32)])
        self._starts[dfa_id] = base
        self.dfa_start = self._starts[:dfa_id + 1]
        return dfa_id


@njit(cache=True, nogil=True)
def _install_rows(L, base, first, dfa_of, trans, byte_cls, accept_term):
    """Rows base + s of the global tables (the per-state rows of L) from DFAs stacked in trans
    (local ids; row s's DFA has its state 0 at global id first[s] and id dfa_of[s]):
    L.trans[base + s, b] = trans[s, byte_cls[b]] shifted to global ids (a value v <= -2 is already
    the global id -2 - v: a jump into another DFA); is_final: accepting and no move on any byte;
    the accepted terminal, the DFA id and is_start (a DFA's state 0) of each row. Branch-free
    inner loops (LLVM vectorizes them): ~0.2 us a row where the branchy loop took ~0.5, page faults aside."""
    ncls = trans.shape[1]
    identity = ncls == 256
    for b in range(256):
        identity = identity and byte_cls[b] == b
    shifted = np.empty(ncls, dtype=np.int32)
    for s in range(trans.shape[0]):
        f = first[s]
        out = L.trans[base + s]
        moves = 0  # stays 0 only if every move is -1 (v + 1 == 0; no other value ORs to 0)
        if identity:
            src = trans[s]
            for b in range(256):
                v = src[b]
                moves |= v + 1
                out[b] = v + f if v >= 0 else (-2 - v if v <= -2 else -1)
        else:
            for c in range(ncls):
                v = trans[s, c]
                shifted[c] = v + f if v >= 0 else (-2 - v if v <= -2 else -1)
            for b in range(256):
                v = shifted[byte_cls[b]]
                moves |= v + 1
                out[b] = v
        L.accept_term[base + s] = accept_term[s]
        L.tie[base + s] = 0
        L.state_dfa[base + s] = dfa_of[s]
        L.is_start[base + s] = base + s == f
        L.is_final[base + s] = accept_term[s] >= 0 and moves == 0


@njit(cache=True, nogil=True)
def _winners(vecs, accept_any, rank_of, terms, offsets):
    """The accepted terminal of each product state: its accepting component of the best rank
    (rank_of[c]: component c's place, best first), or -1; and how many components accept there.
    Turns vecs' global rows into each terminal's own states on the way. A row is scanned once,
    tightly, for its few live components (rows are as wide as the terminal set)."""
    n, ncomp = vecs.shape
    best = np.full(n, -1, dtype=np.int32)
    n_acc = np.zeros(n, dtype=np.int32)
    live = np.empty(ncomp, dtype=np.int64)
    for s in range(n):
        row = vecs[s]
        m = 0
        for c in range(ncomp):
            if row[c] >= 0:
                live[m] = c
                m += 1
        top = ncomp
        for j in range(m):
            c = live[j]
            if accept_any[row[c]]:
                n_acc[s] += 1
                if rank_of[c] < top:
                    top = rank_of[c]
                    best[s] = terms[c]
            row[c] -= offsets[c]
    return best, n_acc


@njit(cache=True, nogil=True)
def _single_classes(trans, starts, sizes, terms, out):
    """out[t] = the class of each byte of terminal t's DFA (byte_classes' numbering), from the
    rows of its single copy (the DFA shifted to global ids, which keeps its columns' equalities).
    Where every state moves on at most one byte (a literal's chain), the classes are each byte
    that occurs and one class for all others: read off directly, ~3x faster than comparing columns."""
    label = np.empty(256, dtype=np.int64)
    new_id = np.empty(257, dtype=np.int64)
    for i in range(terms.shape[0]):
        a = starts[i]
        chain = True
        label[:] = 256
        for s in range(a, a + sizes[i]):
            moves = 0
            for b in range(256):
                if trans[s, b] >= 0:
                    moves += 1
                    label[b] = b
            if moves > 1:
                chain = False
                break
        if not chain:
            out[terms[i]] = column_classes(trans[a:a + sizes[i]])[1]
            continue
        new_id[:] = -1
        k = 0
        for b in range(256):  # numbered by first byte, as column_classes numbers them
            if new_id[label[b]] < 0:
                new_id[label[b]] = k
                k += 1
            out[terms[i], b] = new_id[label[b]]


@njit(cache=True, nogil=True)
def product_tables(parts, L, cls_of, rank, max_states, known):
    """The product DFA of terminals parts.terms, from their single copies installed in the lexer
    tables L (component c: rows starts[c] .. + sizes[c] of trans / accept_term, global ids). Byte
    classes: the common refinement of the terminals' own (cls_of[t]: the class of each byte).
    Returns (component states per product state: each terminal's own state or -1,
    transitions over classes (see product_bfs), the class of each byte, the accepted terminal
    per state: the best-ranked accepting component, or -1, and how many components accept
    there); empty vectors past max_states."""
    terms, starts, sizes, single = parts.terms, parts.starts, parts.sizes, parts.single
    trans, accept_term, is_ignore = L.trans, L.accept_term, L.is_ignore
    ncomp = terms.shape[0]
    stacked = np.empty((ncomp, 256), dtype=np.int64)
    for c in range(ncomp):
        stacked[c] = cls_of[terms[c]]
    rep, byte_cls = column_classes(stacked)
    k = rep.shape[0]
    offsets = np.empty(ncomp, dtype=np.int32)
    total = 0
    for c in range(ncomp):
        offsets[c] = total
        total += sizes[c]
    table = np.empty((total, k), dtype=np.int32)  # filled by product_bfs, the rows it reaches
    src_row = np.empty(total, dtype=np.int64)
    accept_any = np.empty(total, dtype=np.bool_)
    code = np.empty(total, dtype=np.int64)  # a row's key in `known` (-1: an ignored terminal's, never shared)
    for c in range(ncomp):
        for s in range(sizes[c]):
            g = starts[c] + s
            src_row[offsets[c] + s] = g
            accept_any[offsets[c] + s] = accept_term[g] >= 0
            code[offsets[c] + s] = -1 if is_ignore[terms[c]] else (np.int64(terms[c]) << 32) | s
    vecs, tr = product_bfs(table, np.zeros(total, dtype=np.bool_), (trans, src_row, rep), offsets, single, max_states,
                           code, known)
    if vecs.shape[0] == 0:
        return vecs, tr, byte_cls, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)
    order = np.argsort(rank[terms])
    rank_of = np.empty(ncomp, dtype=np.int64)
    rank_of[order] = np.arange(ncomp)
    best, n_acc = _winners(vecs, accept_any, rank_of, terms, offsets)
    return vecs, tr, byte_cls, best, n_acc
