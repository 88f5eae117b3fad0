"""Test-only adapters for peer engines (oracles); never imported by the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def llguidance_matcher_factory(tokenizer_json: Path, stop_ids: list[int], n_vocab: int):
    """Returns make(grammar_text) -> LLMatcher for one tokenizer (slicer off: plain exact masks)."""
    import llguidance

    lltok = llguidance.LLTokenizer(str(tokenizer_json), n_vocab=n_vocab, eos_token=stop_ids, slices=[])

    def make(grammar: str):
        m = llguidance.LLMatcher(lltok, llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return m

    return make


def llguidance_fill(matcher, bitmask: np.ndarray, index: int = 0) -> None:
    import llguidance.numpy

    llguidance.numpy.fill_next_token_bitmask(matcher, bitmask, index)
