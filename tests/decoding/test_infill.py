"""structgen.decoding.infill: multi-region infilling under completability masks, on toy models."""

from __future__ import annotations

import numpy as np
import pytest

import structgen
from structgen.decoding.diffusion import ByteGap, CompletabilityOracle, Template, TokenGap
from structgen.decoding.infill import infill, is_word
from structgen.decoding.lm import TableModel
from structgen.errors import StructgenError

VOCAB = [b"<eos>", b"{", b"}", b"[", b"]", b'"', b"a", b":", b",", b"1", b" ", b'"a"', b"null", b"]]"]
ID = {b: i for i, b in enumerate(VOCAB)}


def encode(text: bytes) -> list[int]:
    """Byte by byte: every fixed piece in these tests is made of one-byte tokens."""
    return [ID[bytes([c])] for c in text]


@pytest.fixture(scope="module")
def json_cg():
    tok = structgen.TokenizerInfo(VOCAB, special_ids=[0], stop_token_ids=[0])
    cg = structgen.GrammarCompiler(tok).compile_grammar(structgen.builtin_grammar("json"))
    return cg, CompletabilityOracle(cg)


TEMPLATES = [
    [b'{"a": ', ByteGap(), b"}"],
    [b"[", ByteGap(), b", ", ByteGap(), b"]"],
    [ByteGap(), b', "a": 1}'],
    [b'{"a": [', ByteGap()],
]


@pytest.mark.parametrize("parts", TEMPLATES)
def test_constrained_outputs_are_words_and_keep_the_fixed_pieces(json_cg, parts) -> None:
    cg, oracle = json_cg
    tpl = Template(parts)
    model = TableModel(len(VOCAB), {})  # uniform: every allowed choice is likely
    by_model = 0
    for seed in range(16):
        res = infill(model, cg, tpl, [0], encode, temperature=1.0, seed=seed, max_tokens_per_gap=12, oracle=oracle)
        assert res.text == tpl.fill(res.fillings)
        assert is_word(cg, res.text), res.text
        by_model += res.closed
    assert by_model >= 4  # the rest ran out of max_tokens_per_gap (uniform choices wander): witness-finished


def test_unconstrained_outputs_are_often_not_words(json_cg) -> None:
    cg, oracle = json_cg
    tpl = Template(TEMPLATES[1])
    model = TableModel(len(VOCAB), {})
    bad = sum(not is_word(cg, infill(model, cg, tpl, [0], encode, constrained=False, temperature=1.0, seed=s,
                                     max_tokens_per_gap=6, oracle=oracle).text) for s in range(12))
    assert bad >= 6


def test_greedy_closes_where_the_model_continues_with_the_next_piece(json_cg) -> None:
    cg, oracle = json_cg

    def probs(prefix: tuple[int, ...]) -> list[float]:
        p = np.full(len(VOCAB), 0.01)
        p[ID[b"}"] if prefix.count(ID[b"1"]) else ID[b"1"]] = 1.0  # "1", then the template's "}"
        return p / p.sum()

    res = infill(TableModel(len(VOCAB), probs), cg, Template(TEMPLATES[0]), [0], encode, oracle=oracle)
    assert res.fillings == [b"1"] and res.text == b'{"a": 1}' and res.closed


def test_masks_forbid_what_the_model_prefers_when_it_cannot_complete(json_cg) -> None:
    cg, oracle = json_cg
    likes_colon = lambda prefix: [0.01] * 7 + [0.9] + [0.01] * 6  # noqa: E731  ":" everywhere
    res = infill(TableModel(len(VOCAB), likes_colon), cg, Template([b"[", ByteGap(), b"]"]), [0], encode,
                 oracle=oracle, max_tokens_per_gap=4)
    assert b":" not in res.fillings[0] and is_word(cg, res.text) and len(res.mask_ms) >= 1
    res = infill(TableModel(len(VOCAB), likes_colon), cg, Template([b"[", ByteGap(), b"]"]), [0], encode,
                 constrained=False, max_tokens_per_gap=3)
    assert res.text == b"[:::]" and not is_word(cg, res.text)


def test_bad_templates_are_clear_errors(json_cg) -> None:
    cg, oracle = json_cg
    model = TableModel(len(VOCAB), {})
    with pytest.raises(StructgenError, match="cannot be completed"):
        infill(model, cg, Template([b"}", ByteGap()]), [0], encode, oracle=oracle)
    for gap in (TokenGap(2), ByteGap(1, None), ByteGap(0, 4), ByteGap(alphabet=b"1")):
        with pytest.raises(StructgenError, match="unbounded ByteGap"):
            infill(model, cg, Template([b"[", gap, b"]"]), [0], encode, oracle=oracle)


def test_a_gap_out_of_budget_is_finished_by_the_witness(json_cg) -> None:
    cg, oracle = json_cg
    likes_bracket = lambda prefix: [0.01] * 3 + [0.9] + [0.01] * 10  # noqa: E731  "[" forever
    tpl = Template([b"[", ByteGap(), b", 1, ", ByteGap(), b"]"])
    res = infill(TableModel(len(VOCAB), likes_bracket), cg, tpl, [0], encode, oracle=oracle, max_tokens_per_gap=3)
    assert not res.closed and res.witness_closes >= 1 and res.fillings[0].startswith(b"[[[")
    assert res.text == tpl.fill(res.fillings) and is_word(cg, res.text)
    # unconstrained, the gap is cut at the budget and reported
    res = infill(TableModel(len(VOCAB), likes_bracket), cg, tpl, [0], encode, oracle=oracle, max_tokens_per_gap=3,
                 constrained=False)
    assert not res.closed and res.fillings[0] == b"[[[" and res.text == tpl.fill(res.fillings)
