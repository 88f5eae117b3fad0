"""Multi-region infilling with an autoregressive model: every gap written under masks that keep
the whole template completable.

A template (`structgen.decoding.diffusion.Template`) holds fixed byte pieces and unbounded
`ByteGap()`s. The model writes the output left to right; the fixed pieces are forced, and
inside a gap each step chooses between the vocabulary's tokens and CLOSE (end the gap here and
force the next fixed piece). Constrained, a token is allowed iff the template stays completable
with that token in the gap (the exact per-position mask of
`CompletabilityOracle.position_mask` on ``[done, TokenGap(1), ByteGap(), rest...]``) and CLOSE
iff ``[done, rest...]`` is completable; a gap still open after ``max_tokens_per_gap`` tokens is
finished with the oracle's witness filling, so the output is always a word of the grammar.

CLOSE is scored with the model's best logit among the tokens that start the next fixed piece
(whose bytes are a prefix of it; for the last gap with nothing after it: the best stop token),
so a model that has not been trained for fill-in-the-middle ends a gap where it would begin
writing the template's next text; when such a token is also an allowed gap token, CLOSE wins
the tie. The encoding of the fixed pieces (``encode``) is what the model is then fed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from structgen.errors import StructgenError
from structgen.matcher import GrammarMatcher

from .diffusion import ByteGap, CompletabilityOracle, Template, TokenGap
from .lm import NextTokenModel

__all__ = ["InfillResult", "infill", "is_word"]


@dataclass
class InfillResult:
    """The filled output: one filling per gap, the whole text and what it cost.

    ``closed`` is True when the model closed every gap itself within ``max_tokens_per_gap``. A
    gap that reaches the budget is cut there; constrained, if the template cannot be completed
    with the gap ending there, it is first finished with the oracle's witness bytes
    (``witness_closes`` counts them), so a constrained output is always a word. ``mask_ms``
    holds the time of each constrained step's masks (token mask + CLOSE check).
    """

    fillings: list[bytes]
    text: bytes
    closed: bool
    seconds: float
    model_calls: int
    mask_ms: list[float] = field(default_factory=list)
    witness_closes: int = 0


def is_word(compiled_grammar, text: bytes) -> bool:
    """Whether ``text`` is a complete word of the grammar (the matcher's own check)."""
    m = GrammarMatcher(compiled_grammar)
    return m.accept_string(text) and m.is_accepting()


def _single_byte_alphabet(info, plain: np.ndarray) -> bytes | None:
    """The bytes that are single-token texts, or None when every byte is (no restriction needed)."""
    got = bytes(sorted({b[0] for t, b in enumerate(info.token_bytes[:len(plain)]) if plain[t] and len(b) == 1}))
    return None if len(got) == 256 else got


def infill(model: NextTokenModel, compiled_grammar, template: Template, prompt_ids: Sequence[int],
           encode: Callable[[bytes], list[int]], *, constrained: bool = True, max_tokens_per_gap: int = 32,
           temperature: float = 0.0, seed: int = 0, oracle: CompletabilityOracle | None = None) -> InfillResult:
    """Fill every gap of ``template`` with ``model`` after ``prompt_ids`` (see the module docstring).

    ``encode`` turns fixed text into the model's token ids (e.g. the HF tokenizer without special
    tokens). Temperature 0 is greedy. Unconstrained, every non-special token and CLOSE are
    always allowed (the baseline). Raises StructgenError if a constrained template cannot be
    completed at all, or for gaps other than unbounded ``ByteGap()``.
    """
    info = compiled_grammar.tokenizer_info
    vocab = int(info.vocab_size)
    for g in template.gaps:
        if isinstance(g, TokenGap) or g.min_len or g.max_len is not None or g.alphabet is not None:
            raise StructgenError(f"infill writes unbounded ByteGap() gaps only, not {g}")
    if oracle is None:
        oracle = CompletabilityOracle(compiled_grammar)
    if constrained and not oracle.is_completable(template):
        raise StructgenError("the template cannot be completed to a word of the grammar")
    stops = sorted(int(t) for t in info.stop_token_ids)
    plain = np.ones(vocab, dtype=bool)
    plain[np.asarray(info.special_mask[:vocab], dtype=bool)] = False
    plain[stops] = False
    plain &= np.array([len(b) > 0 for b in info.token_bytes[:vocab]], dtype=bool)
    rng = np.random.default_rng(seed)
    parts = list(template.parts)
    t0 = time.perf_counter()
    done = b""
    ctx: list[int] = []
    fillings: list[bytes] = []
    closed = True
    calls = 0
    mask_ms: list[float] = []
    witness_closes = 0
    k = 0
    while k < len(parts):
        part = parts[k]
        if isinstance(part, bytes):
            done += part
            ctx += encode(part) if part else []
            k += 1
            continue
        rest = parts[k + 1:]
        nxt = next((p for p in rest if isinstance(p, bytes) and p), b"")  # the text CLOSE continues with
        close_ids = [t for t in np.flatnonzero(plain).tolist() if nxt.startswith(info.token_bytes[t])] if nxt else []
        filling = b""
        for step in range(max_tokens_per_gap + 1):
            logits = np.asarray(model.next_token_logits(prompt_ids, ctx), dtype=np.float64)[:vocab]
            calls += 1
            if constrained:
                s0 = time.perf_counter()
                allowed = oracle.position_allowed(Template([done, TokenGap(1), ByteGap(), *rest]), 0, 0)[:vocab]
                can_close = oracle.is_completable(Template([done, *rest]))
                mask_ms.append((time.perf_counter() - s0) * 1e3)
            else:
                allowed, can_close = plain, True
            if step == max_tokens_per_gap:  # the budget is spent
                closed = False
                if constrained and not can_close:
                    # finish the gap with the oracle's witness bytes (the template is completable),
                    # spelled with single-byte tokens where the vocabulary has them all
                    tail = None
                    single_bytes = _single_byte_alphabet(info, plain)
                    if single_bytes is not None:
                        fill = oracle.example_completion(Template([done, ByteGap(alphabet=single_bytes), *rest]))
                        tail = fill[0] if fill is not None else None
                    if tail is None:
                        tail = oracle.example_completion(Template([done, ByteGap(), *rest]))[0]
                    filling += tail
                    done += tail
                    ctx += encode(tail) if tail else []
                    witness_closes += 1
                break
            close_score = float(np.max(logits[close_ids if close_ids else stops]))
            scores = np.where(allowed, logits, -np.inf)
            if temperature > 0:
                cand = np.append(scores, close_score if can_close else -np.inf) / temperature
                cand = np.exp(cand - np.max(cand))
                choice = int(rng.choice(cand.size, p=cand / cand.sum()))
            else:
                best = int(np.argmax(scores))
                if not can_close and not np.isfinite(scores[best]):  # pragma: no cover - the oracle is exact
                    raise StructgenError("neither a token nor CLOSE keeps the template completable")
                choice = vocab if can_close and close_score >= scores[best] else best
            if choice == vocab:
                break
            filling += info.token_bytes[choice]
            done += info.token_bytes[choice]
            ctx.append(choice)
        fillings.append(filling)
        k += 1
    return InfillResult(fillings, done, closed, time.perf_counter() - t0, calls, mask_ms, witness_closes)
