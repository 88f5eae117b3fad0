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


def mask_differences(cg, ll_matcher, ids: list[int], info) -> tuple[int, list[tuple[int, str, list[int]]]]:
    """Walk token ids in a structgen GrammarMatcher of `cg` and an llguidance matcher side by side,
    comparing the full masks before each token (EOS included); returns (steps, differences), a
    difference being (step, who allows more: "ours" | "theirs" | "ours, and llguidance's own
    validate_tokens accepts them ..." (an llguidance mask that omits tokens it accepts), token ids). Stops where either
    refuses the next token (reported as a difference with step -1)."""
    from structgen import GrammarMatcher

    words = (info.vocab_size + 31) // 32
    ours = np.zeros((1, words), dtype=np.int32)
    theirs = np.zeros((1, words), dtype=np.int32)
    m = GrammarMatcher(cg)
    diffs: list[tuple[int, str, list[int]]] = []
    for k, tid in enumerate(ids):
        m.fill_next_token_bitmask(ours)
        llguidance_fill(ll_matcher, theirs)
        if not np.array_equal(ours, theirs):
            a = np.unpackbits(ours.view(np.uint8), bitorder="little")[:info.vocab_size]
            b = np.unpackbits(theirs.view(np.uint8), bitorder="little")[:info.vocab_size]
            for who, got in (("ours", np.flatnonzero(a & ~b)), ("theirs", np.flatnonzero(b & ~a))):
                if not got.size:
                    continue
                if who == "ours" and all(ll_matcher.validate_tokens([int(t)]) == 1 for t in got):
                    who = "ours, and llguidance's own validate_tokens accepts them (its mask is incomplete)"
                diffs.append((k, who, got.tolist()))
        a_ok, b_ok = m.accept_token(tid), ll_matcher.consume_token(tid)
        if not (a_ok and b_ok):
            diffs.append((-1, f"accept ours={a_ok} theirs={b_ok} at step {k}", [tid]))
            return k + 1, diffs
    return len(ids), diffs
