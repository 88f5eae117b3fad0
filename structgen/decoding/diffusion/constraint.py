"""`DiffusionConstraint`: masked-diffusion ids <-> infilling templates for one compiled grammar, and
the oracle queries the sampler (`sampler.py`) makes on them.

End of text (the rule). The vocabulary may have an end token `eos_id` with empty bytes. The
text of ids is ``prefix + bytes(ids[:first eos]) + suffix``; whatever follows the first EOS is
ignored. When the sampler unmasks EOS at position i, every masked position after i becomes EOS
too. The constrained modes only allow EOS where no real token follows, so there EOS is always
a suffix. Template of ids (`DiffusionConstraint.templates`): cut at the first EOS; unmasked
runs become their bytes; a masked run followed by a real token becomes `TokenGap(k)`; the
masked run that reaches the cut (the "tail run") may hold any 0..k real tokens (the rest are
EOS), i.e. the union of `TokenGap(j)`, j = 0..k. For a byte-level vocabulary (every non-special
token is one byte) that union is exactly ``ByteGap(0, k, alphabet=the token bytes)``, one
template; otherwise the union is represented by k+1 templates (completable iff any is).
Without `eos_id` every position must hold a real token (all runs are exact TokenGaps).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from ...errors import LimitExceeded, StructgenError
from .oracle import CompletabilityOracle
from .template import ByteGap, Template, TokenGap


class DiffusionConstraint:
    """Ids with masks <-> templates for one compiled grammar: completability and exact per-position sets.

    `prefix`/`suffix` are fixed bytes around the L generated positions. See the module docstring
    for the end-of-text rule.
    """

    def __init__(self, compiled_grammar, *, mask_id: int, eos_id: int | None = None, prefix: bytes | str = b"",
                 suffix: bytes | str = b"", oracle: CompletabilityOracle | None = None, window: int = 8,
                 window_facts: int = 20_000, use_witness: bool = True) -> None:
        self.cg = compiled_grammar
        self.oracle = oracle if oracle is not None else CompletabilityOracle(compiled_grammar)
        tok = compiled_grammar.tokenizer_info
        self.token_bytes: list[bytes] = tok.token_bytes
        self.vocab_size = int(tok.vocab_size)
        self.mask_id = int(mask_id)
        self.eos_id = None if eos_id is None else int(eos_id)
        self.prefix = prefix.encode() if isinstance(prefix, str) else bytes(prefix)
        self.suffix = suffix.encode() if isinstance(suffix, str) else bytes(suffix)
        special = tok.special_mask
        normal = [b for i, b in enumerate(self.token_bytes) if not special[i]]
        # byte-level: every usable token is one byte, so "0..k tokens" == ByteGap(0, k, alphabet)
        self.byte_level = all(len(b) == 1 for b in normal)
        self.alphabet = bytes(sorted({b[0] for b in normal})) if self.byte_level else None
        # special tokens other than EOS can stand for no text: never generated under a constraint
        self.forbidden = np.array(special, dtype=bool)
        if self.eos_id is not None:
            self.forbidden[self.eos_id] = False
        self.byte_token = {b[0]: i for i, b in enumerate(self.token_bytes) if not special[i] and len(b) == 1}
        self.window = int(window)  # choice_ok's window check: positions on each side (0: off)
        self.window_facts = int(window_facts)  # the window check's work limit (past it: inconclusive)
        self.use_witness = use_witness  # the witness shortcuts of is_completable and choice_ok
        self._witness: np.ndarray | None = None  # ids without masks whose text is a word; see choice_ok
        self._matcher = None
        self.oracle_calls = 0
        self.oracle_seconds = 0.0
        self.witness_hits = 0  # choices verified by the remembered witness (no search)
        self.window_rejections = 0  # choices refuted by the window check (no full search)

    # --- ids -> text / templates ----------------------------------------------------------

    def cut(self, ids: Sequence[int]) -> int:
        """Index of the first EOS (len(ids) if none)."""
        if self.eos_id is not None:
            for i, t in enumerate(ids):
                if t == self.eos_id:
                    return i
        return len(ids)

    def text(self, ids: Sequence[int]) -> bytes:
        """prefix + bytes of the tokens before the first EOS (masks contribute nothing) + suffix."""
        out = bytearray(self.prefix)
        for t in list(ids)[: self.cut(ids)]:
            if t != self.mask_id:
                out += self.token_bytes[t]
        return bytes(out + self.suffix)

    def _segments(self, ids: Sequence[int]) -> tuple[list, int]:
        """(segments of ids[:cut]: bytes or (start, end) masked runs, cut)."""
        ids = [int(t) for t in ids]
        c = self.cut(ids)
        segs: list = []
        i = 0
        while i < c:
            j = i
            if ids[i] == self.mask_id:
                while j < c and ids[j] == self.mask_id:
                    j += 1
                segs.append((i, j))
            else:
                buf = bytearray()
                while j < c and ids[j] != self.mask_id:
                    buf += self.token_bytes[ids[j]]
                    j += 1
                segs.append(bytes(buf))
            i = j
        return segs, c

    def _tail_options(self, k: int) -> list[list]:
        """The alternatives for a tail run that may hold 0..k tokens (parts lists)."""
        if k == 0:
            return [[]]
        if self.byte_level:
            return [[ByteGap(0, k, self.alphabet)]]
        return [[TokenGap(j)] if j else [] for j in range(k, -1, -1)]

    def _build(self, ids: Sequence[int], target: int | None = None) -> list[tuple[Template, int | None]]:
        """Templates (the union) for ids; with `target` (a masked position) also the gap index of a
        TokenGap(1) standing for it holding a real token (in the tail run: the positions before it
        then hold real tokens, those after it 0.. tokens)."""
        segs, c = self._segments(ids)
        has_tail = self.eos_id is not None and bool(segs) and isinstance(segs[-1], tuple) and segs[-1][1] == c
        heads: list[tuple[list, int | None]] = [([self.prefix] if self.prefix else [], None)]

        def add(parts: list, p) -> list:
            if isinstance(p, bytes):
                if p:
                    parts.append(p)
            elif isinstance(p, TokenGap):
                if p.k:
                    parts.append(p)
            else:
                parts.append(p)
            return parts

        def ngaps(parts: list) -> int:
            return sum(1 for p in parts if not isinstance(p, bytes))

        for si, s in enumerate(segs):
            if isinstance(s, bytes):
                heads = [(add(h, s), g) for h, g in heads]
                continue
            a, b = s
            tail = has_tail and si == len(segs) - 1
            inside = target is not None and a <= target < b
            new: list[tuple[list, int | None]] = []
            for h, g in heads:
                if not tail:
                    if inside:
                        h = add(h, TokenGap(target - a))
                        g = ngaps(h)
                        h = add(h, TokenGap(1))
                        h = add(h, TokenGap(b - target - 1))
                    else:
                        h = add(h, TokenGap(b - a))
                    new.append((h, g))
                elif not inside:
                    for opt in self._tail_options(b - a):
                        new.append((h + opt, g))
                else:
                    h2 = add(list(h), TokenGap(target - a))
                    g2 = ngaps(h2)
                    h2 = add(h2, TokenGap(1))
                    for opt in self._tail_options(b - target - 1):
                        new.append((h2 + opt, g2))
            heads = new
        if self.suffix:
            heads = [(add(h, self.suffix), g) for h, g in heads]
        return [(Template(h), g) for h, g in heads]

    def templates(self, ids: Sequence[int]) -> list[Template]:
        """The templates whose union is the set of completions of ids (one for a byte-level vocabulary)."""
        return [t for t, _ in self._build(ids)]

    def template(self, ids: Sequence[int]) -> Template:
        """The single template of ids (needs a byte-level vocabulary or no tail run)."""
        ts = self.templates(ids)
        if len(ts) != 1:
            raise StructgenError("ids with a tail run over a multi-byte vocabulary need several templates")
        return ts[0]

    # --- oracle queries -------------------------------------------------------------------

    def _timed(self, fn, *args, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            self.oracle_calls += 1
            self.oracle_seconds += time.perf_counter() - t0

    def is_completable(self, ids: Sequence[int], *, max_facts: int | None = None) -> bool:
        """Whether the masked positions of ids can be filled (per the end rule) to a word; a
        "yes" also remembers the oracle's witness filling for `choice_ok`, and a remembered
        witness that agrees with ids answers "yes" at once. `max_facts`: the oracle's limit for
        this call."""
        if self.use_witness and self._witness_agrees(np.asarray(ids)):
            return True
        for t in self.templates(ids):
            fill = self._timed(self.oracle.example_completion, t, max_facts=max_facts)
            if fill is not None:
                self._witness = self._witness_ids(ids, fill)
                return True
        return False

    def choice_ok(self, ids: Sequence[int], pos: int, tok: int) -> bool:
        """Whether `tok` at masked position `pos` keeps `ids` completable (exact).

        Cheap answers first, all within one decoding run (the ids change one position per step):
        (1) yes if the witness remembered from an earlier "yes" still agrees with ids and, with
        `tok` at `pos`, is still a word (one matcher pass); (2) no if the window of `window`
        positions on each side of pos, everything outside it relaxed to arbitrary bytes (a
        superset of the completions), is not completable (a search bounded by `window_facts`;
        past it the check is skipped); (3) the oracle."""
        ids = np.asarray(ids)
        if tok == self.eos_id and not self.eos_ok(ids, pos):
            return False
        new = self.with_choice(ids, pos, tok)
        if tok != self.eos_id:
            if self._witness_allows(ids, pos, tok):
                self.witness_hits += 1
                return True
            win = self._window_template(new, pos)
            if win is not None:
                try:
                    ok = self._timed(self.oracle.is_completable, win, max_facts=self.window_facts)
                except LimitExceeded:
                    ok = True  # inconclusive: ask the oracle on the whole template
                if not ok:
                    self.window_rejections += 1
                    return False
        return self.is_completable(new)

    def _witness_agrees(self, ids: np.ndarray) -> bool:
        """Whether the remembered witness fills ids: equal on every unmasked position (it never
        holds a real token after an EOS, so it is then a filling under the end rule)."""
        w = self._witness
        return w is not None and len(w) == len(ids) and bool(np.all((ids == self.mask_id) | (ids == w)))

    def witness_token(self, ids: Sequence[int], pos: int) -> int:
        """A token for masked position pos that keeps ids completable: the remembered witness's
        (refreshed by one oracle call if it no longer agrees with ids)."""
        ids = np.asarray(ids)
        if not self._witness_agrees(ids) and not self.is_completable(ids):
            raise StructgenError("the ids are not completable")
        return int(self._witness[pos])

    def _witness_allows(self, ids: np.ndarray, pos: int, tok: int) -> bool:
        w = self._witness
        if not self.use_witness or not self._witness_agrees(ids):
            return False
        if self.eos_id is not None and (w[:pos] == self.eos_id).any():
            return False  # a real token after an EOS: not a filling under the end rule
        cand = w.copy()
        cand[pos] = tok
        if self._matcher is None:
            from ...matcher import GrammarMatcher
            self._matcher = GrammarMatcher(self.cg)
        m = self._matcher
        m.reset()
        t0 = time.perf_counter()
        ok = m.accept_string(self.text(cand)) and m.is_accepting()
        self.oracle_seconds += time.perf_counter() - t0
        if ok:
            self._witness = cand
        return ok

    def _witness_ids(self, ids: Sequence[int], fillings: list) -> np.ndarray:
        """ids with every masked position filled from one template's fillings (EOS past a tail)."""
        out = np.array(ids, dtype=np.int64, copy=True)
        segs, c = self._segments(out)
        runs = [s for s in segs if isinstance(s, tuple)]
        has_tail = self.eos_id is not None and bool(segs) and isinstance(segs[-1], tuple) and segs[-1][1] == c
        it = iter(fillings)
        for i, (a, b) in enumerate(runs):
            if has_tail and i == len(runs) - 1:
                f = next(it, [])
                if isinstance(f, (bytes, bytearray)):
                    f = [self.byte_token[x] for x in f]
                out[a:a + len(f)] = f
                out[a + len(f):b] = self.eos_id
            else:
                out[a:b] = next(it)
        return out

    def _window_template(self, ids: np.ndarray, pos: int) -> Template | None:
        """The relaxation of ids to positions pos - window .. pos + window (None if that is more than
        half of the positions)."""
        c = self.cut(ids)
        lo, hi = max(0, pos - self.window), min(c, pos + self.window + 1)
        if self.window <= 0 or 2 * (hi - lo) > c:
            return None  # the window would be most of the template: its relaxation costs more than it saves
        anything = ByteGap(0, None)
        parts: list = [self.prefix] if lo == 0 else [anything]
        segs, _ = self._segments(ids)
        has_tail = self.eos_id is not None and bool(segs) and isinstance(segs[-1], tuple) and segs[-1][1] == c
        j = lo
        while j < hi:
            if ids[j] != self.mask_id:
                parts.append(self.token_bytes[int(ids[j])])
                j += 1
                continue
            k = j
            while k < c and ids[k] == self.mask_id:
                k += 1
            if has_tail and k == c:
                parts.append(anything)  # the tail run holds 0.. real tokens
            else:
                parts.append(TokenGap(min(k, hi) - j))
            j = min(k, hi)
        parts.append(anything if hi < c else self.suffix)
        return Template([p for p in parts if not isinstance(p, bytes) or p])

    def eos_ok(self, ids: Sequence[int], pos: int) -> bool:
        """Whether EOS may go at masked position pos: only in the tail run (no real token after)."""
        if self.eos_id is None:
            return False
        c = self.cut(ids)
        return pos < c and all(int(t) == self.mask_id for t in list(ids)[pos:c])

    def with_choice(self, ids: np.ndarray, pos: int, tok: int) -> np.ndarray:
        """ids with position pos set to tok (an EOS also ends every masked position after it)."""
        new = np.array(ids, copy=True)
        new[pos] = tok
        if self.eos_id is not None and tok == self.eos_id:
            after = new[pos + 1:]
            after[after == self.mask_id] = self.eos_id
        return new

    def allowed(self, ids: Sequence[int], pos: int) -> np.ndarray:
        """bool[vocab]: tokens (EOS included) that keep ids completable when put at masked position pos."""
        out = np.zeros(self.vocab_size, dtype=bool)
        if int(ids[pos]) != self.mask_id:
            raise StructgenError(f"position {pos} is not masked")
        if pos >= self.cut(ids):
            out[self.eos_id] = True  # past the end of text: only EOS means anything
            return out
        for t, g in self._build(ids, pos):
            out |= self._timed(self.oracle.position_allowed, t, g, 0)
        if self.eos_ok(ids, pos):  # the masked positions before pos become the new tail run
            out[self.eos_id] = self.is_completable(self.with_choice(np.asarray(ids), pos, self.eos_id))
        return out
