"""structgen.integrations.transformers.LogitsProcessor with model.generate.

Most tests drive a tiny randomly initialised Llama model with a fake grammar (a token-level
DFA); tests/integrations/test_smollm2_generation.py drives the real engine with SmolLM2.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList

from structgen.errors import StructgenError
from structgen.integrations.transformers import LogitsProcessor
from structgen.kernels.apply import bitmask_to_bool_mask, bool_mask_to_bitmask

REPO = pathlib.Path(__file__).resolve().parents[2]
VOCAB = 64
PAD, EOS = 0, 1
SEQUENCE = [5, 17, 42, 33]
DIGITS = list(range(10, 20))


# ---------------------------------------------------------------------------- fakes


@dataclass
class FakeTokenizerInfo:
    vocab_size: int = VOCAB
    stop_token_ids: list[int] = field(default_factory=lambda: [EOS])


@dataclass
class FakeCompiledGrammar:
    """A token-level DFA: ``transitions[state][token] = next_state``; stop tokens are
    accepted in ``accepting`` states."""

    transitions: dict[int, dict[int, int]]
    accepting: set[int]
    tokenizer_info: FakeTokenizerInfo = field(default_factory=FakeTokenizerInfo)


class FakeMatcher:
    def __init__(self, cg: FakeCompiledGrammar) -> None:
        self.cg = cg
        self.accepted: list[int] = []
        self.reset()

    def reset(self) -> None:
        self.state = 0
        self.done = False
        self.accepted = []

    def allowed(self) -> list[int]:
        if self.done:
            return list(self.cg.tokenizer_info.stop_token_ids)
        out = list(self.cg.transitions.get(self.state, {}))
        if self.state in self.cg.accepting:
            out += self.cg.tokenizer_info.stop_token_ids
        return out

    def fill_next_token_bitmask(self, bitmask: torch.Tensor, index: int = 0) -> None:
        mask = torch.zeros(self.cg.tokenizer_info.vocab_size, dtype=torch.bool)
        mask[self.allowed()] = True
        bitmask[index] = bool_mask_to_bitmask(mask)

    def accept_token(self, token_id: int) -> bool:
        if self.done:
            return False
        if token_id in self.cg.tokenizer_info.stop_token_ids:
            if self.state not in self.cg.accepting:
                return False
            self.done = True
        elif token_id in self.cg.transitions.get(self.state, {}):
            self.state = self.cg.transitions[self.state][token_id]
        else:
            return False
        self.accepted.append(token_id)
        return True

    def is_terminated(self) -> bool:
        return self.done


def sequence_grammar(tokens=SEQUENCE) -> FakeCompiledGrammar:
    """Exactly ``tokens`` then EOS."""
    return FakeCompiledGrammar({i: {t: i + 1} for i, t in enumerate(tokens)}, {len(tokens)})


def digits_grammar(max_len: int = 3) -> FakeCompiledGrammar:
    """1..max_len digit tokens then EOS."""
    trans = {k: {d: k + 1 for d in DIGITS} for k in range(max_len)}
    return FakeCompiledGrammar(trans, set(range(1, max_len + 1)))


def processor(cg: FakeCompiledGrammar) -> LogitsProcessor:
    return LogitsProcessor(cg, matcher_factory=FakeMatcher)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
        bos_token_id=2, eos_token_id=EOS, pad_token_id=PAD,
    )
    return LlamaForCausalLM(config).eval()


def prompts(batch: int = 2):
    """Left-padded prompts of different lengths (ids 20..63, never PAD/EOS)."""
    g = torch.Generator().manual_seed(1)
    lengths = [5, 3, 4, 6][:batch]
    width = max(lengths)
    ids = torch.full((batch, width), PAD, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, width - n:] = torch.randint(20, VOCAB, (n,), generator=g)
        mask[i, width - n:] = 1
    return {"input_ids": ids, "attention_mask": mask}


def new_tokens(out: torch.Tensor, inputs) -> list[list[int]]:
    return out[:, inputs["input_ids"].shape[1]:].tolist()


def split_at_eos(row: list[int]) -> tuple[list[int], list[int]]:
    """(tokens before the first EOS, tokens from the EOS on)."""
    k = row.index(EOS) if EOS in row else len(row)
    return row[:k], row[k:]


# ---------------------------------------------------------------------------- generate


def test_greedy_follows_the_sequence(tiny_model):
    inputs = prompts(2)
    proc = processor(sequence_grammar())
    with torch.no_grad():
        out = tiny_model.generate(
            **inputs, logits_processor=LogitsProcessorList([proc]), max_new_tokens=10,
            do_sample=False, eos_token_id=EOS, pad_token_id=PAD,
        )
    for row in new_tokens(out, inputs):
        assert row[: len(SEQUENCE) + 1] == SEQUENCE + [EOS]
        assert all(t == PAD for t in row[len(SEQUENCE) + 1:])
    # generate never shows the processor its last token (EOS): finalize feeds it
    assert proc.terminated == [False, False]
    assert all(m.accepted == SEQUENCE for m in proc.matchers)
    assert proc.finalize(out) == [True, True]
    assert proc.finalize(out) == [True, True]  # idempotent
    assert proc.prompt_lengths == [inputs["input_ids"].shape[1]] * 2
    assert all(m.accepted == SEQUENCE + [EOS] for m in proc.matchers)


def test_unconstrained_model_does_not_follow_it(tiny_model):
    """Sanity check that the constraint, not the random model, produces the sequence."""
    inputs = prompts(2)
    with torch.no_grad():
        out = tiny_model.generate(
            **inputs, max_new_tokens=4, do_sample=False, eos_token_id=EOS, pad_token_id=PAD
        )
    assert all(row != SEQUENCE for row in new_tokens(out, inputs))


@pytest.mark.parametrize("pad", [PAD, EOS], ids=["pad0", "pad_is_eos"])
def test_sampling_with_num_return_sequences(tiny_model, pad):
    class FavourEos:
        """Runs before the grammar: makes EOS likely so rows end at different steps."""

        def __call__(self, input_ids, scores):
            scores[:, EOS] += 2.5
            return scores

    inputs = prompts(2)
    proc = processor(digits_grammar(3))
    torch.manual_seed(1234)
    with torch.no_grad():
        out = tiny_model.generate(
            **inputs, logits_processor=LogitsProcessorList([FavourEos(), proc]),
            max_new_tokens=8, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
            num_return_sequences=6, eos_token_id=EOS, pad_token_id=pad,
        )
    rows = new_tokens(out, inputs)
    assert len(rows) == 12 and len(proc.matchers) == 12
    lengths = set()
    for row in rows:
        body, tail = split_at_eos(row)
        assert 1 <= len(body) <= 3 and all(t in DIGITS for t in body)
        assert tail and tail[0] == EOS and all(t == pad for t in tail[1:])
        lengths.add(len(body))
    assert len(lengths) > 1  # rows terminated at different steps
    assert any(proc.terminated)  # the rows that stopped early were padded while others ran
    assert all(proc.finalize(out))


def test_reset_allows_reuse(tiny_model):
    inputs = prompts(2)
    proc = processor(sequence_grammar())
    kwargs = dict(max_new_tokens=6, do_sample=False, eos_token_id=EOS, pad_token_id=PAD)
    with torch.no_grad():
        first = tiny_model.generate(**inputs, logits_processor=LogitsProcessorList([proc]), **kwargs)
        with pytest.raises(StructgenError, match="reset"):
            tiny_model.generate(**inputs, logits_processor=LogitsProcessorList([proc]), **kwargs)
        proc.reset()
        second = tiny_model.generate(**inputs, logits_processor=LogitsProcessorList([proc]), **kwargs)
    assert torch.equal(first, second)


# ---------------------------------------------------------------------------- driven by hand


def call(proc, rows: list[list[int]], vocab: int = VOCAB) -> torch.Tensor:
    scores = torch.zeros(len(rows), vocab)
    return proc(torch.tensor(rows, dtype=torch.long), scores)


def allowed(scores: torch.Tensor) -> list[list[int]]:
    return [torch.isfinite(r).nonzero().flatten().tolist() for r in scores]


def test_terminated_rows_allow_only_stop_tokens():
    cg = digits_grammar(3)
    cg.tokenizer_info.stop_token_ids = [EOS, 3]
    proc = processor(cg)
    assert allowed(call(proc, [[40, 41], [40, 41]])) == [DIGITS, DIGITS]
    assert allowed(call(proc, [[40, 41, 10], [40, 41, 11]])) == [sorted(DIGITS + [EOS, 3])] * 2
    # row 0 stops with the second stop token; row 1 goes on
    got = allowed(call(proc, [[40, 41, 10, 3], [40, 41, 11, 12]]))
    assert got == [[EOS, 3], sorted(DIGITS + [EOS, 3])]
    assert proc.terminated == [True, False]
    # whatever padding follows a terminated row is left alone
    got = allowed(call(proc, [[40, 41, 10, 3, PAD], [40, 41, 11, 12, 13]]))
    assert got == [[EOS, 3], [EOS, 3]]
    got = allowed(call(proc, [[40, 41, 10, 3, PAD, 3], [40, 41, 11, 12, 13, EOS]]))
    assert got == [[EOS, 3], [EOS, 3]]
    assert proc.terminated == [True, True]
    assert proc.matchers[0].accepted == [10, 3] and proc.matchers[1].accepted == [11, 12, 13, EOS]


def test_disallowed_token_raises():
    proc = processor(sequence_grammar())
    call(proc, [[40]])
    with pytest.raises(StructgenError, match="ignored the mask"):
        call(proc, [[40, 6]])


def test_finalize_checks_the_tail():
    proc = processor(sequence_grammar())
    with pytest.raises(StructgenError):
        proc.finalize(torch.tensor([[40]]))  # before any call
    call(proc, [[40]])
    call(proc, [[40, 5]])
    assert proc.finalize(torch.tensor([[40, 5, 17]])) == [False]
    with pytest.raises(StructgenError, match="ignored the mask"):
        proc.finalize(torch.tensor([[40, 5, 17, 3]]))


def test_reordered_rows_raise():
    proc = processor(digits_grammar(3))
    call(proc, [[40], [41]])
    call(proc, [[40, 10], [41, 11]])
    with pytest.raises(StructgenError, match="reordered"):
        call(proc, [[41, 11, 12], [40, 10, 12]])


def test_batch_change_raises():
    proc = processor(digits_grammar(3))
    call(proc, [[40], [41]])
    with pytest.raises(StructgenError):
        call(proc, [[40, 10]])


def test_dead_end_raises():
    cg = FakeCompiledGrammar({0: {5: 1}}, set())  # state 1: nothing allowed, not accepting
    proc = processor(cg)
    call(proc, [[40]])
    with pytest.raises(StructgenError, match="dead end"):
        call(proc, [[40, 5]])


def test_wider_logits_are_masked():
    """Logits wider than the tokenizer (a padded output layer): the extra columns are -inf."""
    proc = processor(sequence_grammar())
    scores = call(proc, [[40]], vocab=VOCAB + 40)
    assert allowed(scores) == [[SEQUENCE[0]]]


def test_bad_stop_tokens():
    cg = sequence_grammar()
    cg.tokenizer_info.stop_token_ids = []
    with pytest.raises(StructgenError):
        processor(cg)
    cg.tokenizer_info.stop_token_ids = [VOCAB]
    with pytest.raises(StructgenError):
        processor(cg)


def test_stop_only_row_bits():
    cg = sequence_grammar()
    cg.tokenizer_info.stop_token_ids = [EOS, 31, 63]  # bit 31: the int32 sign bit
    proc = processor(cg)
    mask = bitmask_to_bool_mask(proc._stop_only_row, VOCAB)
    assert mask.nonzero().flatten().tolist() == [EOS, 31, 63]
