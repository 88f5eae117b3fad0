"""Grammar-constrained generation with llama-cpp-python (an optional, torch-free backend).

Usage with llama-cpp-python's own API::

    from llama_cpp import LogitsProcessorList
    from structgen.integrations.llama_cpp import LogitsProcessor

    proc = LogitsProcessor(compiled_grammar)
    out = llm.create_completion(prompt, logits_processor=LogitsProcessorList([proc]),
                                temperature=0.0, max_tokens=256)
    proc.check()  # re-raises an error the sampler callback could not raise (see below)

or :func:`generate_llama_cpp`, which drives ``Llama.generate`` itself, streams text and
reports whether the output ended at a complete word.

llama-cpp-python calls every processor as ``proc(input_ids, scores)`` from inside its
sampler chain (before penalties, top-k/top-p and temperature): ``input_ids`` is the whole
sequence so far (the prompt on the first call, one token longer on every later call) and
``scores`` a float32 view of the ``n_vocab`` logits, modified in place.

**Errors inside the sampler.**  llama-cpp-python runs processors in a ctypes callback, and
ctypes swallows exceptions raised there (it prints them and sampling carries on
unconstrained).  So on any error the processor first restricts ``scores`` to the stop
tokens (generation then ends at once), records the error in :attr:`LogitsProcessor.error`,
and raises; :meth:`LogitsProcessor.check` re-raises it in the caller's frame.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from structgen import bitset
from structgen.errors import StructgenError
from structgen.matcher import GrammarMatcher

__all__ = ["LogitsProcessor", "RepetitionPenalty", "generate_llama_cpp"]

_BITS = 32




class LogitsProcessor:
    """A llama-cpp-python logits processor enforcing a compiled grammar on one sequence.

    One instance serves one generation; call :meth:`reset` before reusing it.  Logits past
    the tokenizer's ``vocab_size`` (a model with a padded output layer) are always disallowed.
    """

    def __init__(self, compiled_grammar: Any, *, matcher_factory: Callable[[Any], Any] | None = None) -> None:
        info = compiled_grammar.tokenizer_info
        self.compiled_grammar = compiled_grammar
        self.vocab_size = int(info.vocab_size)
        self.stop_token_ids = sorted({int(t) for t in info.stop_token_ids})
        if not self.stop_token_ids:
            raise StructgenError("the compiled grammar's tokenizer has no stop token ids")
        width = (self.vocab_size + _BITS - 1) // _BITS
        self._bitmask = np.full(width, -1, dtype=np.int32)  # the layout of structgen.allocate_token_bitmask
        self._stop_only = np.zeros(width * _BITS, dtype=np.bool_)
        self._stop_only[self.stop_token_ids] = True
        self.matcher = (matcher_factory or GrammarMatcher)(compiled_grammar)
        self.reset()

    def reset(self) -> None:
        """Forget the current generation so that the instance can serve another one."""
        self.matcher.reset()
        self.prompt_length: int | None = None
        self.terminated = False
        self.error: BaseException | None = None
        self._ids = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------ feeding

    def _feed(self, input_ids: np.ndarray) -> None:
        """Feed the tokens of ``input_ids`` past those already seen (one per sampling step)."""
        ids = np.asarray(input_ids).reshape(-1)
        if self.prompt_length is None:
            self.prompt_length = int(ids.shape[0])
            self._ids = ids.astype(np.int64, copy=True)
            return
        seen = self._ids.shape[0]
        if ids.shape[0] < seen or not np.array_equal(ids[:seen], self._ids):
            raise StructgenError(
                f"input_ids (length {ids.shape[0]}) do not continue the sequence seen so far "
                f"(length {seen}): one LogitsProcessor serves one generation; call reset() first"
            )
        for k, token in enumerate(ids[seen:].tolist()):
            if self.terminated:
                raise StructgenError(f"token {token} after the stop token: generation should have ended")
            if not self.matcher.accept_token(token):
                raise StructgenError(
                    f"the grammar does not allow token {token} at generated position "
                    f"{seen + k - self.prompt_length}; the sampler ignored the mask"
                )
            self.terminated = self.matcher.is_terminated()
        self._ids = ids.astype(np.int64, copy=True)

    def finalize(self, input_ids: Sequence[int] | np.ndarray) -> bool:
        """Feed the tokens sampled after the last call (the sampler never shows the last one).

        ``input_ids`` is the whole sequence, prompt included; returns :attr:`terminated`.
        """
        self.check()
        if self.prompt_length is None:
            raise StructgenError("finalize() before the processor was called by the sampler")
        self._feed(np.asarray(input_ids))
        return self.terminated

    def check(self) -> None:
        """Re-raise an error recorded inside the sampler callback (where it could not propagate)."""
        if self.error is not None:
            raise self.error

    # ------------------------------------------------------------------ masking

    def allowed_tokens(self) -> np.ndarray:
        """Booleans ``(32 * ceil(vocab_size / 32),)``: True for the tokens allowed next."""
        if self.terminated:
            return self._stop_only
        self.matcher.fill_next_token_bitmask(self._bitmask)
        allowed = bitset.to_bool(self._bitmask)
        if not allowed.any():
            raise StructgenError("the grammar allows no token at all here (dead end in the matcher)")
        return allowed

    @staticmethod
    def _apply(scores: np.ndarray, allowed: np.ndarray) -> None:
        n = min(scores.shape[-1], allowed.shape[0])
        np.copyto(scores[:n], -np.inf, where=~allowed[:n])  # works on llama-cpp's strided view
        scores[n:] = -np.inf

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.error is not None:  # a previous call failed: keep forcing the stop
            self._apply(scores, self._stop_only)
            return scores
        try:
            self._feed(input_ids)
            self._apply(scores, self.allowed_tokens())
        except Exception as exc:
            self.error = exc
            self._apply(scores, self._stop_only)
            raise
        return scores


class RepetitionPenalty:
    """transformers' ``repetition_penalty`` for llama-cpp-python, so both backends agree.

    Every token id present in ``input_ids`` (prompt included) gets ``logit * p`` if negative,
    else ``logit / p``.  llama.cpp's own ``repeat_penalty`` only sees the last 64 *generated*
    tokens, which gives different outputs from the same settings.
    """

    def __init__(self, penalty: float) -> None:
        if not penalty > 0:
            raise StructgenError(f"repetition_penalty must be positive, got {penalty}")
        self.penalty = float(penalty)

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        ids = np.unique(np.asarray(input_ids))
        ids = ids[(ids >= 0) & (ids < scores.shape[-1])]
        picked = scores[ids]
        scores[ids] = np.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores


def generate_llama_cpp(
    llm: Any,
    compiled_grammar: Any,
    prompt_text: str,
    *,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    repetition_penalty: float = 1.0,
    on_text: Callable[[str], Any] | None = None,
    on_token: Callable[[int], Any] | None = None,
    reuse_prompt_cache: bool = False,
    matcher_factory: Callable[[Any], Any] | None = None,
) -> tuple[str, int, bool]:
    """Generate from ``llm`` (a ``llama_cpp.Llama``) under ``compiled_grammar``.

    ``prompt_text`` is tokenized by llama with special tokens parsed (ChatML markers become
    single ids) and no BOS added.  Temperature 0 is greedy; otherwise plain sampling at that
    temperature with ``seed`` (no top-k/top-p/min-p pruning).  ``repetition_penalty`` has
    transformers' semantics (see :class:`RepetitionPenalty`).  ``on_text`` receives the
    output as it grows, whole UTF-8 characters only; ``on_token`` every sampled id.

    ``reuse_prompt_cache`` keeps the KV cache of the previous call's common prefix.  It is off
    by default because llama.cpp then re-evaluates the prompt's tail in a smaller batch, whose
    logits differ slightly from a whole-prompt evaluation: near-ties can flip, so the same call
    could give a different greedy output depending on what ran before.

    ``matcher_factory`` builds the matcher (default :class:`~structgen.matcher.GrammarMatcher`).

    Returns ``(text, n_tokens, terminated)``: the decoded output without the stop token, the
    number of sampled tokens (the stop token excluded, as in generate_transformers), and whether the output ended with a
    stop token at a complete word (False when ``max_tokens`` ran out first).
    """
    from llama_cpp import LogitsProcessorList

    if max_tokens < 0:
        raise StructgenError(f"max_tokens must be >= 0, got {max_tokens}")
    if temperature < 0:
        raise StructgenError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    info = compiled_grammar.tokenizer_info
    n_vocab = int(llm.n_vocab())
    if n_vocab < info.vocab_size:
        raise StructgenError(
            f"the model has {n_vocab} logits but the grammar's tokenizer {info.vocab_size} tokens: "
            "compile the grammar with the model's tokenizer"
        )
    prompt_ids = list(llm.tokenize(prompt_text.encode("utf-8"), add_bos=False, special=True))
    if not prompt_ids:
        raise StructgenError("the prompt is empty: llama.cpp needs at least one prompt token")
    if len(prompt_ids) + max_tokens > llm.n_ctx():
        raise StructgenError(
            f"prompt ({len(prompt_ids)} tokens) + max_tokens ({max_tokens}) exceed the context "
            f"window of {llm.n_ctx()} tokens"
        )

    proc = LogitsProcessor(compiled_grammar, matcher_factory=matcher_factory)
    processors: list[Callable[[np.ndarray, np.ndarray], np.ndarray]] = [proc]
    if repetition_penalty != 1.0:
        processors.insert(0, RepetitionPenalty(repetition_penalty))
    llm.set_seed(int(seed) & 0xFFFFFFFF)  # set_seed keeps 0 (the constructor maps 0 to "random")
    if not reuse_prompt_cache:
        llm.reset()  # generate() then evaluates the whole prompt afresh

    stops = set(proc.stop_token_ids)
    token_bytes = info.token_bytes  # not llm.detokenize: it drops tokens longer than 32 bytes
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []

    def emit(text: str) -> None:
        if text:
            pieces.append(text)
            if on_text is not None:
                on_text(text)

    generated: list[int] = []
    if max_tokens > 0:
        stream = llm.generate(
            prompt_ids, temp=float(temperature), top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0,
            repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0, reset=True,
            logits_processor=LogitsProcessorList(processors),
        )
        try:
            for token in stream:
                proc.check()  # the callback's error, if the sampler swallowed one
                token = int(token)
                generated.append(token)
                if on_token is not None:
                    on_token(token)
                if token in stops:
                    break
                emit(decoder.decode(token_bytes[token]))
                if len(generated) >= max_tokens:
                    break
        finally:
            stream.close()
    emit(decoder.decode(b"", final=True))
    terminated = proc.finalize(prompt_ids + generated) if generated else False
    return "".join(pieces), sum(t not in stops for t in generated), terminated
