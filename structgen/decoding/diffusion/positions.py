"""Per-position masks: the token classes of a lexer state (`_TokenClassifier`) and the one search
that decides every class at a masked position (`_MaskNFA`, `_MaskSearch`)."""

from __future__ import annotations

import bisect

import numpy as np

from ...errors import StructgenError
from .nfa import _BGAP, _END, _FIXED, _FORK, _TGAP, _TemplateNFA
from .search import _Search
from .template import ByteGap, Template, TokenGap
from .trie_walk import _lexer_step, no_tie


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

    def __init__(self, template: Template, gap_index: int, position: int, oracle) -> None:
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

    def __init__(self, oracle, nfa: _MaskNFA, vocab: int) -> None:
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

    def __init__(self, oracle, max_memo: int = 256) -> None:
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
        no_tie(lx.tie, [ls])
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
            ns, stop, term, fe = _lexer_step(trans, accept_term, is_ignore, reset_of, lx.tie, ps, byt)
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
