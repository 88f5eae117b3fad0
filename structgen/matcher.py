"""GrammarMatcher: the per-sequence runtime state (lexer state + parser stack) and its masks.

The state is a tuple of branches (lexer state, parser stack): one for an LALR(1) grammar, and on
the GLR path (automata/glr.py) one per live parse; a token is allowed iff some branch allows it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Literal, Sequence

import numpy as np

from . import bitset
from .automata import glr
from .automata.dfa import readonly
from .automata.parser import StackPool
from .automata.step import NEED_FORK, OK, advance_bytes, end_lexeme_entry
from .grammar import CompiledGrammar
from .errors import StructgenError


def _as_array(bitmask) -> np.ndarray:
    """A numpy array or CPU torch tensor as int32 numpy (shared memory)."""
    if hasattr(bitmask, "numpy"):  # torch tensor
        if bitmask.device.type != "cpu":
            raise StructgenError("fill_next_token_bitmask needs a CPU bitmask; copy it to the device after")
        bitmask = bitmask.numpy()
    if bitmask.dtype != np.int32:
        raise StructgenError(f"bitmask must be int32, got {bitmask.dtype}")
    return bitmask


def _row_view(bitmask, index: int) -> np.ndarray:
    """The uint32 view of row `index` of a numpy array or CPU torch tensor (shared memory)."""
    arr = bitmask if type(bitmask) is np.ndarray and bitmask.dtype == np.int32 else _as_array(bitmask)
    return (arr if arr.ndim == 1 else arr[index]).view(np.uint32)


def _fill_row(row: np.ndarray, bits: np.ndarray) -> None:
    if row.shape[0] == bits.shape[0]:  # the common case in one numpy call (a memoized mask's whole cost is ~2 us)
        row[...] = bits
        return
    n = min(row.shape[0], bits.shape[0])
    row[:n] = bits[:n]
    row[n:] = 0


_ONE_BYTE = tuple(readonly(np.full(1, b, dtype=np.uint8)) for b in range(256))  # _advance's input, byte by byte

class GrammarMatcher:
    """Tracks one output against a CompiledGrammar: masks, token acceptance, rollback, jump-forward."""

    def __init__(self, compiled_grammar: CompiledGrammar, *, max_rollback_tokens: int = -1,
                 reasoning_max_tokens: int | None = None) -> None:
        """`reasoning_max_tokens`: for a grammar compiled with `reasoning=(open, close)`, the tokens
        the reasoning block may take; past them the mask allows only the way to its closing marker."""
        self.compiled_grammar = compiled_grammar
        self.max_rollback_tokens = max_rollback_tokens
        self._pool = StackPool()
        tok = compiled_grammar.tokenizer_info
        self._token_bytes = tok.token_bytes
        self._special = tok.special_mask
        self._stop = set(int(t) for t in tok.stop_token_ids)
        markers = compiled_grammar.options.reasoning
        if reasoning_max_tokens is not None and markers is None:
            raise StructgenError("reasoning_max_tokens needs a grammar compiled with reasoning=(open, close)")
        self._budget = reasoning_max_tokens
        self._markers = tuple(m.encode("utf-8") for m in markers) if markers else None
        self._closing_bits: dict[bytes, np.ndarray] = {}
        self.reset()

    # --- state -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the empty output."""
        cg = self.compiled_grammar
        self._branches: tuple[glr.Branch, ...] = ((cg.initial_lexer_state, cg.initial_stack),)
        self._terminated = False
        # the reasoning block while a budget applies: (tokens in it, its last bytes, closed, bytes read)
        self._think: tuple[int, bytes, bool, int] | None = (0, b"", False, 0) if self._budget is not None else None
        self._history: list[tuple] = []

    def _state(self) -> tuple:
        return self._branches, self._terminated, self._think

    def _set_state(self, state: tuple) -> None:
        self._branches, self._terminated, self._think = state

    @property
    def _ls(self) -> int:
        """The lexer state of the first branch (the only one of an LALR(1) grammar)."""
        return self._branches[0][0]

    @property
    def _stack(self) -> tuple[int, ...]:
        return self._branches[0][1]

    def is_terminated(self) -> bool:
        """True once a stop token was accepted at a complete word."""
        return self._terminated

    def is_accepting(self) -> bool:
        """Whether the output so far is a complete word (a stop token would be accepted)."""
        if self._terminated:
            return True
        cg = self.compiled_grammar
        for ls, stack in self._branches:
            top, pool_n = self._pool.load(stack)
            if cg.runtime.can_end(ls, top, pool_n, self._pool):
                return True
        return False

    def _advance(self, data: np.ndarray) -> tuple[glr.Branch, ...] | None:
        """The branches after `data` (read-only uint8: one kernel signature), or None if it leaves
        the language."""
        cg = self.compiled_grammar
        if len(self._branches) == 1:
            ls, stack = self._branches[0]
            top, pool_n = self._pool.load(stack)
            status, ls2, new_top, _, _ = cg.runtime.run(self._pool, advance_bytes, data, np.int32(ls), np.int32(top),
                                                        np.int32(pool_n))
            if status == OK:
                return ((int(ls2), self._pool.read(int(new_top))),)
            if status != NEED_FORK:
                return None
        got = glr.advance(cg.runtime, self._pool, list(self._branches), data)
        return tuple(sorted(got)) if got else None

    def _push(self, branches: tuple[glr.Branch, ...], terminated: bool, data: bytes = b"") -> None:
        self._history.append(self._state())
        if self.max_rollback_tokens >= 0 and len(self._history) > self.max_rollback_tokens:
            del self._history[0]
        self._branches, self._terminated = branches, terminated
        if self._think is not None and not self._think[2]:
            self._think = self._think_after(data)

    def _think_after(self, data: bytes) -> tuple[int, bytes, bool, int]:
        """The reasoning block's state after one more token (or string) of bytes `data`."""
        tokens, tail, _, seen = self._think
        opening, closing = self._markers
        buf = tail + data
        i = buf.find(closing, max(0, len(opening) - (seen - len(tail))))  # not inside the opening marker
        if i >= 0:
            return tokens + 1, b"", True, seen + len(data)
        return tokens + 1, buf[len(buf) - len(closing) + 1:] if len(closing) > 1 else b"", False, seen + len(data)

    def _closing_only(self) -> np.ndarray | None:
        """Past the reasoning budget, inside the block: the tokens on the way to its closing marker
        (the rest of the marker, a prefix of it, or it and more), else None."""
        if self._think is None or self._think[2] or self._think[0] < self._budget:
            return None
        _, tail, _, seen = self._think
        opening, closing = self._markers
        if seen < len(opening):  # the opening marker is not written yet: no budget before it
            return None
        k = next((k for k in range(min(len(tail), len(closing) - 1), 0, -1) if tail.endswith(closing[:k])), 0)
        rest = closing[k:]
        got = self._closing_bits.get(rest)
        if got is None:
            trie = self.compiled_grammar.tokenizer_info.trie
            ids: list[int] = []
            for j in range(1, len(rest)):
                node = trie.find(rest[:j])
                if node > 0:
                    ids += trie.token_ids_at(node)
            node = trie.find(rest)
            if node > 0:
                ids += trie.tok_ids[trie.node_tok_start[node]:trie.node_tok_start[trie.node_skip[node]]].tolist()
            got = bitset.from_ids(ids, self.compiled_grammar.tokenizer_info.vocab_size)
            self._closing_bits[rest] = got
        return got

    # --- tokens --------------------------------------------------------------------------

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False (state unchanged) if the grammar does not allow it."""
        token_id = int(token_id)
        if self._terminated:
            return False
        if token_id in self._stop:
            if not self.is_accepting():
                return False
            self._push(self._branches, True)
            return True
        if token_id < 0 or token_id >= len(self._token_bytes) or self._special[token_id]:
            return False
        data = self._token_bytes[token_id]
        return bool(data) and self._accept_bytes(data)

    def accept_string(self, text: str | bytes) -> bool:
        """Advance by raw text (not token-aligned); False (state unchanged) if not allowed."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if self._terminated:
            return False
        return not data or self._accept_bytes(data)

    def _accept_bytes(self, data: bytes) -> bool:
        got = self._advance(np.frombuffer(data, dtype=np.uint8))
        if got is None:
            return False
        self._push(got, False, data)
        return True

    def rollback(self, num_tokens: int = 1) -> None:
        """Undo the last `num_tokens` accepted tokens (or strings)."""
        if num_tokens > len(self._history):
            raise StructgenError(f"cannot roll back {num_tokens} tokens; only {len(self._history)} recorded")
        for _ in range(num_tokens):
            self._set_state(self._history.pop())

    def expected_terminals(self, lexeme: bytes = b"") -> list[str]:
        """Names of the terminals that could continue the output here (for error messages).

        `lexeme` is the text of the unfinished current lexeme (the caller tracks it); its live
        terminals are listed, and when it is empty or complete, those that may start next.
        """
        cg = self.compiled_grammar
        lx = cg.lexer
        names: list[str] = []
        for ls, stack in self._branches:
            for t in lx.dfa_sets[lx.state_dfa[ls]]:  # ignored text (whitespace) is not listed
                s, dfa = 0, cg.terminals[t].dfa
                for b in lexeme:
                    s = dfa.trans[s, b] if s >= 0 else -1
                if s >= 0 and (dfa.trans[s] >= 0).any():
                    names.append(cg.terminals[t].name)
            term = int(lx.accept_term[ls])
            if not (lexeme and term >= 0):
                continue
            # a complete lexeme: the terminals that may start after it
            top, pool_n = self._pool.load(stack)
            status, ls2, _, _ = cg.runtime.run(self._pool, end_lexeme_entry, np.int32(term), np.int32(ls), np.int32(top),
                                       np.int32(pool_n))
            self._pool.invalidate()
            after = [int(ls2)] if status == OK else []
            if status == NEED_FORK:
                after = [ls4 for ls4, _ in cg.runtime.after_lexeme(ls, stack)[0]]
            for ls3 in after:
                names.extend(cg.terminals[t].name for t in lx.dfa_sets[lx.state_dfa[ls3]])
        ignored = {t.name for t in cg.terminals if t.ignore}
        return sorted(set(names) - ignored)

    # --- masks ---------------------------------------------------------------------------

    def next_token_bits(self) -> np.ndarray:
        """The allowed-token bitset (uint32 words; do not modify: it may be shared)."""
        store = self.compiled_grammar.mask_store
        if self._terminated:
            return store.stop_bits
        if len(self._branches) == 1:
            bits = store.mask(self._ls, self._stack, self._pool)
        else:
            bits = store.mask(*self._branches[0], self._pool).copy()
            for ls, stack in self._branches[1:]:
                bits |= store.mask(ls, stack, self._pool)
        if self._think is None:  # no reasoning budget: nothing more on the per-token path
            return bits
        closing = self._closing_only()
        return bits if closing is None else bits & closing

    def _known_bits(self) -> np.ndarray | None:
        """next_token_bits() when it needs no walk (one branch, its mask memoized), else None."""
        if self._terminated:
            return self.compiled_grammar.mask_store.stop_bits
        if len(self._branches) != 1 or self._think is not None:
            return None
        return self.compiled_grammar.mask_store.known_mask(self._ls, self._stack)

    def fill_next_token_bitmask(self, bitmask, index: int = 0) -> None:
        """Write the packed int32 mask (bit t of word t // 32) into row `index` of `bitmask`."""
        _fill_row(_row_view(bitmask, index), self.next_token_bits())

    # --- speculative decoding --------------------------------------------------------------

    def accept_tokens(self, token_ids: Sequence[int]) -> int:
        """Accept tokens in order up to the first the grammar refuses; how many were accepted
        (each one a rollback step)."""
        for n, t in enumerate(token_ids):
            if not self.accept_token(t):
                return n
        return len(token_ids)

    def fill_draft_masks(self, draft_tokens: Sequence[int], bitmask, index: int = 0) -> int:
        """Masks for a draft: row index + i is the mask after draft_tokens[:i] (i = 0 .. len), the
        state left as it was. Rows past a draft token the grammar refuses allow nothing. Returns
        how many draft tokens the grammar accepts (a chain: fill_draft_tree_masks)."""
        parents = list(range(-1, len(draft_tokens) - 1))
        return self.fill_draft_tree_masks(draft_tokens, parents, bitmask, index)

    def fill_draft_tree_masks(self, tokens: Sequence[int], parents: Sequence[int], bitmask, index: int = 0) -> int:
        """Masks for a draft tree: node k holds tokens[k] below parents[k] (-1: the current state;
        a parent comes before its children). Row index is the mask here, row index + 1 + k the
        mask after the path to node k; it allows nothing where the grammar refuses a token on that
        path. The state is left as it was. Returns how many nodes the grammar accepts."""
        if len(parents) != len(tokens):
            raise StructgenError("fill_draft_tree_masks: one parent per token")
        arr = _as_array(bitmask)
        if arr.ndim != 2 or arr.shape[0] < index + 1 + len(tokens):
            raise StructgenError(f"the bitmask needs {index + 1 + len(tokens)} rows for {len(tokens)} draft tokens")
        saved, history = self._state(), self._history
        self._history = []
        states: list[tuple | None] = []
        try:
            _fill_row(arr[index].view(np.uint32), self.next_token_bits())
            for k, (t, p) in enumerate(zip(tokens, parents)):
                if not -1 <= p < k:
                    raise StructgenError(f"draft node {k}: its parent {p} does not come before it")
                row = arr[index + 1 + k].view(np.uint32)
                start = saved if p < 0 else states[p]
                if start is None:  # below a refused node
                    states.append(None)
                    row[:] = 0
                    continue
                self._set_state(start)
                if self.accept_token(t):
                    states.append(self._state())
                    _fill_row(row, self.next_token_bits())
                else:
                    states.append(None)
                    row[:] = 0
        finally:
            self._set_state(saved)
            self._history = history
        return sum(x is not None for x in states)

    def find_jump_forward_tokens(self, encode: Callable[[str], list[int]] | None = None,
                                 max_bytes: int = 4096) -> list[int]:
        """The forced continuation as token ids the way the model's tokenizer writes it
        (`encode`, default the TokenizerInfo's), for appending without sampling. The last token
        is held back unless nothing can follow the forced text (it might merge with what comes
        next, and tokenization would then differ), and so is any token the grammar refuses
        (a tokenization that cuts a lexeme oddly). The state is left as it was."""
        text = self.find_jump_forward_string(max_bytes)
        encode = encode or self.compiled_grammar.tokenizer_info.encoder
        if not text:
            return []
        if encode is None:
            raise StructgenError("find_jump_forward_tokens needs an encoder (TokenizerInfo.from_tokenizer_json "
                                 "or from_huggingface sets one)")
        ids = [int(t) for t in encode(text)]
        saved, history = self._state(), self._history
        self._history = []
        try:
            n = self.accept_tokens(ids)
            ends = n == len(ids) and self.is_accepting() and not self._after_end()
        finally:
            self._set_state(saved)
            self._history = history
        return ids[:n] if ends else ids[:min(n, len(ids) - 1)]

    def _after_end(self) -> bool:
        """Whether anything but the stop token may follow (at a complete word)."""
        bits = self.next_token_bits().copy()
        bitset.clear_ids(bits, self._stop)
        return bool(bits.any())

    def _candidate_bytes(self) -> np.ndarray:
        """Bytes that may come next by the lexer alone (a necessary condition): those that extend a
        branch's lexeme, or any byte where a lexeme can end."""
        lx = self.compiled_grammar.lexer
        ok = np.zeros(256, dtype=bool)
        for ls, _ in self._branches:
            if lx.accept_term[ls] >= 0:
                return np.arange(256)
            ok |= lx.trans[ls] >= 0
        return np.flatnonzero(ok)

    def find_jump_forward_string(self, max_bytes: int = 4096) -> str:
        """The longest string the grammar forces next (empty when there is a choice)."""
        if self._terminated:
            return ""
        saved = self._branches
        out = bytearray()
        try:
            while len(out) < max_bytes:
                if self.is_accepting():
                    break
                forced = None
                for b in self._candidate_bytes():
                    got = self._advance(_ONE_BYTE[b])
                    if got is not None:
                        if forced is not None:
                            forced = None
                            break
                        forced = got
                        fb = b
                if forced is None:
                    break
                out.append(fb)
                self._branches = forced
        finally:
            self._branches = saved
        # only return whole UTF-8 characters
        while out:
            try:
                return out.decode("utf-8")
            except UnicodeDecodeError:
                out = out[:-1]
        return ""


class BatchGrammarMatcher:
    """Masks of many matchers at once, optionally on a thread pool (XGrammar's BatchGrammarMatcher).

    The mask kernels are numba `nogil`, but a mask is also Python (the cache lookup, the steps
    between kernels), and with the GIL two threads gained little or lost on a 64-sequence MaskBench
    batch on a 2-core machine (bench/batch_masks.py: masks that need a walk 0.4-0.6x, memoized ones,
    filled on the calling thread, 0.9-1.3x): "auto" is one thread until the mask path is one GIL-free
    call; ask for more with max_threads=N."""

    def __init__(self, max_threads: int | Literal["auto"] = "auto") -> None:
        n = 1 if max_threads == "auto" else int(max_threads)
        if n < 1:
            raise StructgenError("max_threads must be at least 1")
        self.max_threads = n
        self._pool = ThreadPoolExecutor(n, thread_name_prefix="structgen-mask") if n > 1 else None

    def batch_fill_next_token_bitmask(self, matchers: Sequence[GrammarMatcher], bitmask,
                                      indices: Sequence[int] | None = None, max_threads: int | None = None) -> None:
        """Row indices[i] (default i) of `bitmask` gets matchers[i]'s mask, filled on up to
        `max_threads` threads (default: the pool's); the same bits as one fill per matcher."""
        arr = _as_array(bitmask)
        rows = list(range(len(matchers))) if indices is None else [int(i) for i in indices]
        if len(rows) != len(matchers):
            raise StructgenError("batch_fill_next_token_bitmask: one index per matcher")
        if arr.ndim != 2 or (rows and not 0 <= min(rows) <= max(rows) < arr.shape[0]):
            raise StructgenError("batch_fill_next_token_bitmask: a 2-D bitmask with a row for every index")
        n = min(self.max_threads, max_threads or self.max_threads, len(matchers))
        if n <= 1 or self._pool is None:
            for m, r in zip(matchers, rows):
                m.fill_next_token_bitmask(arr, r)
            return
        # memoized masks here, in this thread: a thread for a few microseconds of Python would cost
        # more in GIL handoffs than it saves (2 threads ran warm batches at 0.4x one thread's speed)
        cold = []
        for i, m in enumerate(matchers):
            bits = m._known_bits()
            if bits is None:
                cold.append(i)
            else:
                _fill_row(_row_view(arr, rows[i]), bits)
        if len(cold) <= 1:
            for i in cold:
                matchers[i].fill_next_token_bitmask(arr, rows[i])
            return
        todo = iter(cold)  # each thread takes the next cold matcher (next() is atomic under the GIL)

        def work() -> None:
            while (i := next(todo, None)) is not None:
                matchers[i].fill_next_token_bitmask(arr, rows[i])

        for f in [self._pool.submit(work) for _ in range(min(n, len(cold)))]:
            f.result()

    @staticmethod
    def batch_accept_token(matchers: Sequence[GrammarMatcher], tokens: Sequence[int]) -> list[bool]:
        """accept_token of tokens[i] by matchers[i], for each i."""
        if len(tokens) != len(matchers):
            raise StructgenError("batch_accept_token: one token per matcher")
        return [m.accept_token(t) for m, t in zip(matchers, tokens)]

    @staticmethod
    def batch_accept_string(matchers: Sequence[GrammarMatcher], strings: Sequence[str | bytes]) -> list[bool]:
        """accept_string of strings[i] by matchers[i], for each i."""
        if len(strings) != len(matchers):
            raise StructgenError("batch_accept_string: one string per matcher")
        return [m.accept_string(x) for m, x in zip(matchers, strings)]

    def close(self) -> None:
        """Stop the threads (also at garbage collection)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def __del__(self) -> None:
        self.close()
