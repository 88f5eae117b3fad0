"""The small model protocol the decoding algorithms use, and its adapters.

A decoding algorithm only needs the next-token logits after ``prompt_ids + prefix_ids``.
Adapters keep the prompt's KV cache and evaluate the whole prefix against it in one batch on
every call, so a prefix's logits never depend on which calls came before (reproducibility
under a seed, and a saved trie that continues identically).

* :class:`NextTokenModel` — the protocol.
* :class:`TableModel` — an explicit table of next-token probabilities (toy models for tests).
* :class:`TransformersModel` — any transformers causal LM (e.g. SmolLM2 via
  :func:`structgen.models.load_default_model`).
* :class:`LlamaCppModel` — a ``llama_cpp.Llama`` (e.g. :func:`structgen.models.load_default_llama`).
* :class:`MemoModel` — memoizes another model's logits (benchmarks that revisit prefixes).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from structgen.errors import StructgenError

__all__ = ["NextTokenModel", "TableModel", "TransformersModel", "LlamaCppModel", "MemoModel"]


@runtime_checkable
class NextTokenModel(Protocol):
    """Anything that gives next-token logits (float array of the model's logits width)."""

    def next_token_logits(self, prompt_ids: Sequence[int], prefix_ids: Sequence[int]) -> np.ndarray:
        """Logits for the token after ``prompt_ids + prefix_ids``; deterministic per input."""
        ...


class TableModel:
    """A toy model: ``probs(prefix)`` gives the next-token probabilities (a mapping or callable).

    With a mapping, keys are prefix tuples and missing prefixes get ``default`` (uniform when
    None).  Probabilities of 0 become logits of -inf.  The prompt is ignored.
    """

    def __init__(self, vocab_size: int,
                 probs: Mapping[tuple[int, ...], Sequence[float]] | Callable[[tuple[int, ...]], Sequence[float]],
                 default: Sequence[float] | None = None) -> None:
        self.vocab_size = int(vocab_size)
        self._probs = probs
        self._default = np.full(vocab_size, 1.0 / vocab_size) if default is None else np.asarray(default, float)
        self.calls = 0

    def next_token_logits(self, prompt_ids: Sequence[int], prefix_ids: Sequence[int]) -> np.ndarray:
        """Log of the table's probabilities for ``prefix_ids``."""
        self.calls += 1
        key = tuple(int(t) for t in prefix_ids)
        if callable(self._probs):
            p = np.asarray(self._probs(key), dtype=np.float64)
        else:
            got = self._probs.get(key)
            p = self._default if got is None else np.asarray(got, dtype=np.float64)
        if p.shape != (self.vocab_size,):
            raise StructgenError(f"TableModel: prefix {key} has {p.shape} probabilities, expected ({self.vocab_size},)")
        with np.errstate(divide="ignore"):
            return np.log(p)


class TransformersModel:
    """A transformers causal LM; the prompt's KV cache is kept and cropped back after each call."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._prompt: tuple[int, ...] | None = None
        self._cache: Any = None
        self._prompt_logits: np.ndarray | None = None
        self.calls = 0
        # transformers 5.2x renamed forward's past_key_values to cache (the old name warns)
        params = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    def _set_prompt(self, prompt: tuple[int, ...]) -> None:
        import torch
        from transformers import DynamicCache

        if not prompt:
            raise StructgenError("TransformersModel needs a non-empty prompt")
        cache = DynamicCache()
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([prompt], device=self.model.device), use_cache=True,
                             **{self._cache_kwarg: cache})
        self._cache = cache  # filled in place
        self._prompt_logits = out.logits[0, -1].float().cpu().numpy().copy()
        self._prompt = prompt

    def next_token_logits(self, prompt_ids: Sequence[int], prefix_ids: Sequence[int]) -> np.ndarray:
        """Logits after prompt + prefix: the prefix is run in one batch on the cached prompt."""
        import torch

        self.calls += 1
        prompt = tuple(int(t) for t in prompt_ids)
        if prompt != self._prompt:
            self._set_prompt(prompt)
        if not prefix_ids:
            return self._prompt_logits.copy()
        n = len(prompt)
        ids = torch.tensor([[int(t) for t in prefix_ids]], device=self.model.device)
        try:  # positions continue from the cache's length (n), in transformers 4 and 5 alike
            with torch.no_grad():
                out = self.model(input_ids=ids, use_cache=True, **{self._cache_kwarg: self._cache})
            return out.logits[0, -1].float().cpu().numpy().copy()
        finally:
            extra = self._cache.get_seq_length() - n
            if extra > 0:  # a negative crop removes tokens in transformers 4.x and 5.x alike
                self._cache.crop(-extra)


class LlamaCppModel:
    """A ``llama_cpp.Llama``: the prompt is evaluated once, each prefix in one batch after it.

    Evaluating the prefix as one batch on the same prompt KV every time keeps a prefix's logits
    independent of the call history (llama.cpp's logits depend slightly on batch shapes).
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._prompt: tuple[int, ...] | None = None
        self._prompt_logits: np.ndarray | None = None
        self.calls = 0

    def _last_logits(self) -> np.ndarray:
        n_vocab = int(self.llm.n_vocab())
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(n_vocab,)).astype(np.float32, copy=True)

    def next_token_logits(self, prompt_ids: Sequence[int], prefix_ids: Sequence[int]) -> np.ndarray:
        """Logits after prompt + prefix (the prompt's KV is reused, the prefix re-evaluated)."""
        self.calls += 1
        prompt = tuple(int(t) for t in prompt_ids)
        llm = self.llm
        if len(prompt) + len(prefix_ids) > llm.n_ctx():
            raise StructgenError(f"prompt + prefix ({len(prompt) + len(prefix_ids)} tokens) exceed the context "
                                 f"window of {llm.n_ctx()} tokens")
        n = len(prompt)
        if prompt != self._prompt or llm.n_tokens < n or list(llm.input_ids[:n]) != list(prompt):
            # a new prompt, or someone else used the Llama in between: evaluate the prompt afresh
            if not prompt:
                raise StructgenError("LlamaCppModel needs a non-empty prompt")
            llm.reset()
            llm.eval(list(prompt))
            self._prompt_logits = self._last_logits()
            self._prompt = prompt
        if not prefix_ids:
            return self._prompt_logits.copy()
        llm.n_tokens = n  # eval() drops the KV cache past n_tokens first
        llm.eval([int(t) for t in prefix_ids])
        return self._last_logits()


class MemoModel:
    """Memoizes ``model``'s logits per (prompt, prefix) (float32; about 4 bytes x vocab each).

    ``calls`` counts the calls made to this wrapper, ``misses`` those the inner model served.
    """

    def __init__(self, model: NextTokenModel) -> None:
        self.model = model
        self._memo: dict[tuple[tuple[int, ...], tuple[int, ...]], np.ndarray] = {}
        self.calls = 0
        self.misses = 0

    def next_token_logits(self, prompt_ids: Sequence[int], prefix_ids: Sequence[int]) -> np.ndarray:
        """The inner model's logits, computed once per distinct input."""
        self.calls += 1
        key = (tuple(int(t) for t in prompt_ids), tuple(int(t) for t in prefix_ids))
        got = self._memo.get(key)
        if got is None:
            self.misses += 1
            got = np.asarray(self.model.next_token_logits(prompt_ids, prefix_ids), dtype=np.float32)
            got.flags.writeable = False
            self._memo[key] = got
        return got

    def __len__(self) -> int:
        return len(self._memo)
