"""Grammar-constrained ``model.generate`` for Hugging Face transformers.

Usage::

    from transformers import LogitsProcessorList
    from structgen.integrations.transformers import LogitsProcessor

    proc = LogitsProcessor(compiled_grammar)
    out = model.generate(**inputs, logits_processor=LogitsProcessorList([proc]),
                         eos_token_id=compiled_grammar.tokenizer_info.stop_token_ids)

How it works: on its first call the processor records the prompt length of every row and
creates one :class:`~structgen.matcher.GrammarMatcher` per batch row (the batch size comes
from ``input_ids``, so ``num_return_sequences`` and batched prompts work).  On every later
call it feeds each row's newest token to that row's matcher, then fills the int32 bitmask
for every row and applies it to the scores with
:func:`~structgen.kernels.apply.apply_token_bitmask_inplace` (CPU or CUDA).

* A row whose matcher has terminated (it accepted a stop token at a complete word) gets a
  mask allowing only the stop tokens, so the batch can keep going while it is padded.
* A token the matcher refuses raises :class:`~structgen.errors.StructgenError`: the sampler
  ignored the mask (another processor re-enabled tokens, or beam search reordered rows).
* ``generate`` never shows the processor the last token it samples; call
  :meth:`LogitsProcessor.finalize` with the returned sequences to feed it, after which
  :attr:`LogitsProcessor.terminated` says which rows ended at a complete word.
* Greedy decoding and sampling are supported; beam search is not (beams are reordered
  between steps, which per-row matchers cannot follow; the processor raises when it
  notices).  Custom processors run before transformers' sampling warpers (temperature,
  top-k, top-p), so those only ever see allowed tokens.

**One processor instance serves one ``generate`` call.**  Call :meth:`LogitsProcessor.reset`
(or build a new processor) before reusing it; a reused processor raises instead of
silently mixing two generations.

Exact sampling (the model's distribution conditioned on the grammar, not the per-step
renormalized one) does not fit ``generate``, which cannot resample rows: :func:`smc_transformers`
runs :class:`structgen.decoding.smc.SMCSampler` (AWRS proposals) on :class:`KVBatchModel`, one
batched forward per step with a KV cache row per particle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import transformers

from structgen.errors import StructgenError
from structgen.kernels.apply import (
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    bool_mask_to_bitmask,
)

__all__ = ["LogitsProcessor", "generate_transformers", "KVBatchModel", "smc_transformers"]

MatcherFactory = Callable[[Any], Any]


def _default_matcher_factory(compiled_grammar: Any) -> Any:
    from structgen.matcher import GrammarMatcher  # imported late: the engine layer is below

    return GrammarMatcher(compiled_grammar)


class LogitsProcessor(transformers.LogitsProcessor):
    """A ``transformers`` logits processor enforcing a compiled grammar on every batch row.

    Args:
        compiled_grammar: a :class:`~structgen.grammar.CompiledGrammar`; its
            ``tokenizer_info.vocab_size`` is the logits width the mask covers and its
            ``tokenizer_info.stop_token_ids`` the tokens that end a row.
        matcher_factory: builds one matcher per row from ``compiled_grammar``; defaults to
            :class:`structgen.matcher.GrammarMatcher`.  Any object with
            ``fill_next_token_bitmask(bitmask, index)``, ``accept_token(id) -> bool`` and
            ``is_terminated()`` works.

    After (or during) generation, :attr:`matchers`, :attr:`prompt_lengths` and
    :attr:`terminated` describe every row.
    """

    # Per-row state is keyed by batch position, which continuous batching reshuffles.
    supports_continuous_batching = False

    def __init__(self, compiled_grammar: Any, *, matcher_factory: MatcherFactory | None = None) -> None:
        info = compiled_grammar.tokenizer_info
        self.compiled_grammar = compiled_grammar
        self.vocab_size = int(info.vocab_size)
        self.stop_token_ids = sorted({int(t) for t in info.stop_token_ids})
        if not self.stop_token_ids:
            raise StructgenError("the compiled grammar's tokenizer has no stop token ids")
        for t in self.stop_token_ids:
            if not 0 <= t < self.vocab_size:
                raise StructgenError(f"stop token id {t} outside the vocabulary 0..{self.vocab_size - 1}")
        self._matcher_factory = matcher_factory or _default_matcher_factory
        stop_only = torch.zeros(self.vocab_size, dtype=torch.bool)
        stop_only[self.stop_token_ids] = True
        self._stop_only_row = bool_mask_to_bitmask(stop_only)  # (W,) int32
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget the current generation so that the instance can serve another ``generate``."""
        self.matchers: list[Any] | None = None
        self.prompt_lengths: list[int] = []
        self.terminated: list[bool] = []
        self._bitmask: torch.Tensor | None = None
        self._seq_len = 0
        self._last_tokens: torch.Tensor | None = None

    def _start(self, input_ids: torch.Tensor, scores: torch.Tensor) -> None:
        batch, length = input_ids.shape
        self.matchers = [self._matcher_factory(self.compiled_grammar) for _ in range(batch)]
        self.prompt_lengths = [int(length)] * batch
        self.terminated = [False] * batch
        bitmask = allocate_token_bitmask(batch, self.vocab_size)
        if scores.is_cuda:
            bitmask = bitmask.pin_memory()
        self._bitmask = bitmask
        self._seq_len = int(length)
        self._last_tokens = input_ids[:, -1].cpu()

    def _advance(self, input_ids: torch.Tensor, *, final: bool = False) -> None:
        """Feed the tokens of ``input_ids`` past the last call's length (one, during generate)."""
        assert self.matchers is not None
        batch, length = input_ids.shape
        ok_len = length >= self._seq_len if final else length == self._seq_len + 1
        if batch != len(self.matchers) or not ok_len:
            raise StructgenError(
                f"input_ids of shape {tuple(input_ids.shape)} do not continue the previous call "
                f"({len(self.matchers)} rows of length {self._seq_len}): one LogitsProcessor "
                "serves one generate call; call reset() before reusing it"
            )
        # One device-to-host copy: the token seen last time, then the new ones.
        tail = input_ids[:, self._seq_len - 1:].cpu()
        if self._last_tokens is not None and not torch.equal(tail[:, 0], self._last_tokens):
            raise StructgenError(
                "input_ids rows were reordered or rewritten between calls (beam search is not "
                "supported); one LogitsProcessor serves one generate call"
            )
        self._last_tokens = tail[:, -1].contiguous()
        for i, row in enumerate(tail[:, 1:].tolist()):
            matcher = self.matchers[i]
            for k, token in enumerate(row):
                if self.terminated[i]:
                    break  # padding after the stop token: left alone
                if not matcher.accept_token(int(token)):
                    pos = self._seq_len + k - self.prompt_lengths[i]
                    raise StructgenError(
                        f"row {i}: the grammar does not allow token {token} at generated position "
                        f"{pos}; the sampler ignored the mask (another logits processor "
                        "re-enabled it, or rows were reordered)"
                    )
                if matcher.is_terminated():
                    self.terminated[i] = True
        self._seq_len = int(length)

    def finalize(self, sequences: torch.Tensor) -> list[bool]:
        """Feed the tokens ``generate`` sampled after its last call to the processor.

        ``generate`` never shows the processor the last token it samples (usually the stop
        token), so after generation :attr:`terminated` lags by one token.  Pass the returned
        sequences (``(B, L)``, prompt included) to bring every matcher up to date; returns
        :attr:`terminated`: True for the rows that ended with a stop token at a complete word.
        """
        if self.matchers is None:
            raise StructgenError("finalize() before the processor was called by generate")
        self._advance(sequences, final=True)
        return list(self.terminated)

    def _fill(self) -> None:
        assert self.matchers is not None and self._bitmask is not None
        bitmask = self._bitmask
        for i, matcher in enumerate(self.matchers):
            if self.terminated[i]:
                bitmask[i] = self._stop_only_row
                continue
            matcher.fill_next_token_bitmask(bitmask, i)
            if not bool(bitmask[i].any()):
                raise StructgenError(
                    f"row {i}: the grammar allows no token at all here (dead end in the matcher)"
                )

    # ------------------------------------------------------------------ call

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() != 2 or scores.dim() != 2 or input_ids.shape[0] != scores.shape[0]:
            raise StructgenError(
                f"expected input_ids (B, L) and scores (B, V); got {tuple(input_ids.shape)} "
                f"and {tuple(scores.shape)}"
            )
        if self.matchers is None:
            self._start(input_ids, scores)
        else:
            self._advance(input_ids)
        self._fill()
        apply_token_bitmask_inplace(scores, self._bitmask)
        return scores


def generate_transformers(model: Any, hf_tokenizer: Any, compiled_grammar: Any, prompt: str, *, max_tokens: int = 256,
                          temperature: float = 0.0, seed: int = 0, repetition_penalty: float = 1.0,
                          on_text: Callable[[str], None] | None = None,
                          matcher_factory: MatcherFactory | None = None) -> tuple[str, int, bool]:
    """One constrained ``model.generate`` from prompt text (greedy when ``temperature`` is 0).

    Streams decoded text to ``on_text`` as it arrives; returns (output text, generated tokens
    excluding the stop token, whether it ended with a stop token at a complete word).
    """
    info = compiled_grammar.tokenizer_info
    streamer = None
    if on_text is not None:
        class Streamer(transformers.TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                on_text(text)

        streamer = Streamer(hf_tokenizer, skip_prompt=True, skip_special_tokens=True)
    torch.manual_seed(seed)
    inputs = hf_tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    proc = LogitsProcessor(compiled_grammar, matcher_factory=matcher_factory)
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=max_tokens,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=None,
            top_k=None,
            repetition_penalty=repetition_penalty,
            logits_processor=transformers.LogitsProcessorList([proc]),
            streamer=streamer,
            pad_token_id=info.stop_token_ids[0],
            eos_token_id=list(info.stop_token_ids),
        )
    terminated = proc.finalize(out)[0]
    new = [int(t) for t in out[0, inputs["input_ids"].shape[1]:] if not info.is_special(int(t))]
    return info.decode_bytes(new).decode("utf-8", errors="replace"), len(new), terminated


# ---------------------------------------------------------------------- SMC / AWRS plug-in


class KVBatchModel:
    """A transformers causal LM as a batched next-token model with one KV cache row per prefix.

    For :class:`structgen.decoding.smc.SMCSampler`: when every prefix of a call extends a prefix of
    the previous call by one token (SMC's steps, resampled or not), the cache rows are selected
    (``batch_select_indices``) and only the new tokens run: one forward of shape (B, 1) per step.
    Otherwise the prefixes run from the prompt's cache (equal lengths in one forward, else one
    forward per length).  Incremental logits differ from a full forward by float32 rounding only.
    """

    def __init__(self, model: Any) -> None:
        import inspect

        self.model = model
        self.calls = 0  # forwards
        self.rows = 0  # prefixes evaluated
        params = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self._prompt: tuple[int, ...] | None = None
        self._prompt_cache: Any = None
        self._prompt_logits: torch.Tensor | None = None
        self._cache: Any = None
        self._index: dict[tuple[int, ...], int] = {}
        self._length = -1

    def _forward(self, ids: torch.Tensor, cache: Any) -> torch.Tensor:
        self.calls += 1
        with torch.no_grad():
            out = self.model(input_ids=ids.to(self.model.device), use_cache=True, **{self._cache_kwarg: cache})
        return out.logits[:, -1].float()

    def _set_prompt(self, prompt: tuple[int, ...]) -> None:
        from transformers import DynamicCache

        if not prompt:
            raise StructgenError("KVBatchModel needs a non-empty prompt")
        cache = DynamicCache()
        self._prompt_logits = self._forward(torch.tensor([prompt]), cache)[0]
        self._prompt_cache, self._prompt = cache, prompt
        self._cache, self._index, self._length = None, {}, -1

    def _from_prompt(self, rows: int) -> Any:
        import copy

        cache = copy.deepcopy(self._prompt_cache)
        cache.batch_select_indices(torch.zeros(rows, dtype=torch.long, device=self.model.device))
        return cache

    def batch_next_token_logits(self, prompt_ids: Any, prefixes: Any) -> Any:
        """(len(prefixes), vocab) float32 logits after ``prompt_ids + prefix`` for each prefix."""
        import numpy as np

        prompt = tuple(int(t) for t in prompt_ids)
        if prompt != self._prompt:
            self._set_prompt(prompt)
        keys = [tuple(int(t) for t in p) for p in prefixes]
        self.rows += len(keys)
        if not keys:
            return np.zeros((0, self._prompt_logits.shape[0]), dtype=np.float32)
        length = len(keys[0])
        same = all(len(k) == length for k in keys)
        if same and length == 0:
            return self._prompt_logits.expand(len(keys), -1).cpu().numpy().copy()
        if same and length == self._length + 1 and all(k[:-1] in self._index for k in keys):
            rows = torch.tensor([self._index[k[:-1]] for k in keys], dtype=torch.long, device=self.model.device)
            self._cache.batch_select_indices(rows)
            logits = self._forward(torch.tensor([[k[-1]] for k in keys]), self._cache)
        elif same:  # a new run, or prefixes that do not continue the last call: from the prompt's cache
            self._cache = self._from_prompt(len(keys))
            logits = self._forward(torch.tensor(keys), self._cache)
        else:  # mixed lengths: one forward per length, nothing kept
            out = np.zeros((len(keys), self._prompt_logits.shape[0]), dtype=np.float32)
            for n in sorted({len(k) for k in keys}):
                pick = [i for i, k in enumerate(keys) if len(k) == n]
                out[pick] = self.batch_next_token_logits(prompt, [keys[i] for i in pick])
            self._cache, self._index, self._length = None, {}, -1
            return out
        self._index = {k: i for i, k in enumerate(keys)}
        self._length = length
        return logits.cpu().numpy()

    def next_token_logits(self, prompt_ids: Any, prefix_ids: Any) -> Any:
        """One prefix (the :class:`~structgen.decoding.lm.NextTokenModel` protocol)."""
        return self.batch_next_token_logits(prompt_ids, [prefix_ids])[0]


def smc_transformers(model: Any, hf_tokenizer: Any, compiled_grammar: Any, prompt: str, *, n_particles: int = 10,
                     max_tokens: int = 256, temperature: float = 1.0, seed: int = 0, ess_threshold: float = 0.5,
                     critic: Callable[[tuple[int, ...], bool], float] | None = None) -> Any:
    """SMC with AWRS proposals on a transformers model (one batched forward per step).

    ``prompt`` is text (chat template applied); returns a :class:`structgen.decoding.smc.SMCResult`
    whose ``posterior()`` estimates the model's distribution conditioned on the grammar.
    ``n_particles=1, ess_threshold=0`` is one AWRS sample with its importance weight.
    """
    from structgen.decoding.smc import SMCSampler

    ids = hf_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    sampler = SMCSampler(KVBatchModel(model), compiled_grammar, ids, n_particles=n_particles,
                         ess_threshold=ess_threshold, max_new_tokens=max_tokens, temperature=temperature,
                         critic=critic, seed=seed)
    return sampler.run()
