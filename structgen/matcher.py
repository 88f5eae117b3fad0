"""GrammarMatcher: the per-sequence runtime state (lexer state + parser stack) and its masks.

The state is a tuple of branches (lexer state, parser stack): one for an LALR(1) grammar, and on
the GLR path (automata/glr.py) one per live parse; a token is allowed iff some branch allows it."""

from __future__ import annotations

import numpy as np

from .automata import glr
from .automata.parser import StackPool
from .automata.step import NEED_FORK, OK, advance_bytes, end_lexeme
from .compiler import CompiledGrammar
from .errors import StructgenError


def _row_view(bitmask, index: int) -> np.ndarray:
    """The uint32 view of row `index` of a numpy array or CPU torch tensor (shared memory)."""
    if hasattr(bitmask, "numpy"):  # torch tensor
        if bitmask.device.type != "cpu":
            raise StructgenError("fill_next_token_bitmask needs a CPU bitmask; copy it to the device after")
        bitmask = bitmask.numpy()
    arr = bitmask if bitmask.ndim == 1 else bitmask[index]
    if arr.dtype != np.int32:
        raise StructgenError(f"bitmask must be int32, got {arr.dtype}")
    return arr.view(np.uint32)


class GrammarMatcher:
    """Tracks one output against a CompiledGrammar: masks, token acceptance, rollback, jump-forward."""

    def __init__(self, compiled_grammar: CompiledGrammar, *, max_rollback_tokens: int = -1) -> None:
        self.compiled_grammar = compiled_grammar
        self.max_rollback_tokens = max_rollback_tokens
        self._pool = StackPool()
        tok = compiled_grammar.tokenizer_info
        self._token_bytes = tok.token_bytes
        self._special = tok.special_mask
        self._stop = set(int(t) for t in tok.stop_token_ids)
        self.reset()

    # --- state -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the empty output."""
        cg = self.compiled_grammar
        self._branches: tuple[glr.Branch, ...] = ((cg.initial_lexer_state, cg.initial_stack),)
        self._terminated = False
        self._history: list[tuple[tuple[glr.Branch, ...], bool]] = []

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
            if cg.can_end(ls, top, pool_n, self._pool):
                return True
        return False

    def _advance(self, data: np.ndarray) -> tuple[glr.Branch, ...] | None:
        """The branches after `data`, or None if it leaves the language."""
        cg = self.compiled_grammar
        if len(self._branches) == 1:
            ls, stack = self._branches[0]
            top, pool_n = self._pool.load(stack)
            status, ls2, new_top, _, _ = cg.run(self._pool, advance_bytes, data, np.int64(0), np.int32(ls),
                                                np.int32(top), np.int32(pool_n))
            if status == OK:
                return ((int(ls2), self._pool.read(int(new_top))),)
            if status != NEED_FORK:
                return None
        got = glr.advance(cg, self._pool, list(self._branches), data)
        return tuple(sorted(got)) if got else None

    def _push(self, branches: tuple[glr.Branch, ...], terminated: bool) -> None:
        self._history.append((self._branches, self._terminated))
        if self.max_rollback_tokens >= 0 and len(self._history) > self.max_rollback_tokens:
            del self._history[0]
        self._branches, self._terminated = branches, terminated

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
        self._push(got, False)
        return True

    def rollback(self, num_tokens: int = 1) -> None:
        """Undo the last `num_tokens` accepted tokens (or strings)."""
        if num_tokens > len(self._history):
            raise StructgenError(f"cannot roll back {num_tokens} tokens; only {len(self._history)} recorded")
        for _ in range(num_tokens):
            self._branches, self._terminated = self._history.pop()

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
            status, ls2, _, _ = cg.run(self._pool, end_lexeme, np.int32(term), np.int32(ls), np.int32(top),
                                       np.int32(pool_n))
            self._pool.invalidate()
            after = [int(ls2)] if status == OK else []
            if status == NEED_FORK:
                after = [cg.start_state(s) for s in glr.feed_all(cg.parser, stack, term)]
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
            return store.mask(self._ls, self._stack, self._pool)
        bits = store.mask(*self._branches[0], self._pool).copy()
        for ls, stack in self._branches[1:]:
            bits |= store.mask(ls, stack, self._pool)
        return bits

    def fill_next_token_bitmask(self, bitmask, index: int = 0) -> None:
        """Write the packed int32 mask (bit t of word t // 32) into row `index` of `bitmask`."""
        row = _row_view(bitmask, index)
        bits = self.next_token_bits()
        n = min(row.shape[0], bits.shape[0])
        row[:n] = bits[:n]
        row[n:] = 0

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
        one = np.zeros(1, dtype=np.uint8)
        try:
            while len(out) < max_bytes:
                if self.is_accepting():
                    break
                forced = None
                for b in self._candidate_bytes():
                    one[0] = b
                    got = self._advance(one)
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
