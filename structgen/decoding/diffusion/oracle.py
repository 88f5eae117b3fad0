"""`CompletabilityOracle`: exact completability, witnesses and per-position masks of templates for
one CompiledGrammar (grammar-level caches), and the per-grammar shared functions."""

from __future__ import annotations

import weakref

import numpy as np

from ... import bitset
from ...automata.pushdown import LR1Tables, canonical_lr1
from ...errors import LimitExceeded
from .nfa import _BGAP, _TGAP, _TemplateNFA
from .positions import _MaskNFA, _MaskSearch, _TokenClassifier
from .search import _Found, _Search
from .template import Template, TokenGap
from .trie_walk import _TrieWalker, no_tie

DEFAULT_MAX_FACTS = 2_000_000
DEFAULT_MAX_WITNESS_BYTES = 1_000_000


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
            no_tie(lx.tie, [ls])
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

    # --- per-position masks (the algorithm is described in positions.py) -------------

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
