"""structgen.integrations.vllm: per-request grammars from extra_args, checked at admission, masks
per step. The core (RequestGrammars) runs without vLLM; the processor classes are tested against
vLLM's own interface classes where vLLM is installed (its own environment, README), skipped otherwise.
The end-to-end run on vLLM's server is bench/vllm_serving.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from datasets import TOKENIZERS
from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo
from structgen.integrations.vllm import GrammarRequest, RequestGrammars, grammar_request, validate_extra_args

SMOLLM2 = TOKENIZERS / "smollm2"
IM_END = 2
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


@pytest.fixture(scope="module")
def info() -> TokenizerInfo:
    return TokenizerInfo.from_tokenizer_json(SMOLLM2 / "tokenizer.json", stop_token_ids=[IM_END])


def encode(info: TokenizerInfo, text: str) -> list[int]:
    return info.encoder(text)


# ------------------------------------------------------------------ request arguments

def test_grammar_request_reads_each_kind():
    assert grammar_request(None) is None
    assert grammar_request({"other": 1}) is None
    r = grammar_request({"structgen_json_schema": json.dumps(SCHEMA), "structgen_options": '{"whitespace": "flexible"}'})
    assert r == GrammarRequest("json_schema", SCHEMA, {"whitespace": "flexible"})
    assert grammar_request({"structgen_json_schema": SCHEMA}).grammar == SCHEMA  # a dict (offline LLM)
    assert grammar_request({"structgen_regex": "[0-9]+"}) == GrammarRequest("regex", "[0-9]+", {})
    assert grammar_request({"structgen_gbnf": 'root ::= "a"'}).kind == "gbnf"
    assert grammar_request({"structgen_lark": 'start: "a"'}).kind == "lark"


@pytest.mark.parametrize("args, words", [
    ({"structgen_regex": "a", "structgen_lark": 'start: "a"'}, "exactly one"),
    ({"structgen_options": "{}"}, "exactly one"),
    ({"structgen_shema": "{}"}, "unknown structgen argument 'structgen_shema'"),
    ({"structgen_json_schema": "{not json"}, "not valid JSON"),
    ({"structgen_regex": 5}, "expected a string"),
    ({"structgen_regex": "a", "structgen_options": "[1]"}, "structgen_options"),
])
def test_malformed_arguments_are_refused(args, words):
    with pytest.raises(ValueError, match=words):
        validate_extra_args(args)


@pytest.mark.parametrize("args, words", [
    ({"structgen_json_schema": {"type": "object", "unevaluatedProperties": {"type": "integer"},
                                "properties": {"a": {"type": "integer"}}}}, "unevaluatedProperties"),
    ({"structgen_regex": "[0-9"}, "RegexError"),
    ({"structgen_lark": "start: undefined_rule"}, "GrammarError"),
    ({"structgen_gbnf": "root ::= [a-"}, "GrammarError"),
    ({"structgen_json_schema": SCHEMA, "structgen_options": {"whitespace": "sideways"}}, "whitespace"),
])
def test_bad_grammars_are_refused_at_admission(args, words):
    """validate_params runs in vLLM's front end: the request fails with a 400 naming the problem."""
    with pytest.raises(ValueError, match=words):
        validate_extra_args(args)


def test_good_grammars_pass_admission():
    for args in ({"structgen_json_schema": SCHEMA}, {"structgen_regex": "[0-9]{3}"}, {"structgen_lark": 'start: "a"+'},
                 {"structgen_gbnf": 'root ::= "a" [0-9]*'}, {}, None):
        validate_extra_args(args)


# ------------------------------------------------------------------ the core: slots and masks

def expected_mask(cg, tokens: list[int], words: int) -> np.ndarray:
    m = GrammarMatcher(cg)
    for t in tokens:
        assert m.accept_token(t)
    row = np.zeros((1, words), dtype=np.int32)
    m.fill_next_token_bitmask(row, 0)
    return row[0]


def test_masks_follow_each_slot_through_moves(info):
    g = RequestGrammars(info)
    compiler = GrammarCompiler(info)
    schema_cg = compiler.compile_json_schema(SCHEMA)
    regex_cg = compiler.compile_regex("[0-9]{3}-[0-9]{4}")
    text = encode(info, '{"name": "Ada", "age": 36}')
    digits = encode(info, "123-45")
    out_a: list[int] = []
    out_b: list[int] = []
    assert g.add(0, grammar_request({"structgen_json_schema": SCHEMA}), out_a)
    assert not g.add(1, None, [])  # a request without a grammar: its row is left alone
    assert g.add(2, grammar_request({"structgen_regex": "[0-9]{3}-[0-9]{4}"}), out_b)
    for step in range(4):
        out_a.append(text[step])
        out_b.append(digits[step])
        rows = [(slot, slot, None) for slot in sorted(g.slots)]
        bitmask, out_rows = g.fill(rows, 3)
        assert out_rows == [0, 2]
        assert np.array_equal(bitmask[0], expected_mask(schema_cg, out_a, g.words))
        assert np.array_equal(bitmask[2], expected_mask(regex_cg, out_b, g.words))
    g.move(0, 2, swap=True)  # vLLM condenses and reorders its persistent batch
    bitmask, _ = g.fill([(s, s, None) for s in sorted(g.slots)], 3)
    assert np.array_equal(bitmask[2], expected_mask(schema_cg, out_a, g.words))
    assert np.array_equal(bitmask[0], expected_mask(regex_cg, out_b, g.words))
    g.move(2, 1, swap=False)
    assert sorted(g.slots) == [0, 1]
    g.remove(0)
    assert sorted(g.slots) == [1]
    assert g.stats["compiles"] == 2 and g.stats["rejected_tokens"] == 0


def test_explicit_token_lists_and_refused_tokens(info):
    """Model Runner V2 passes each step's committed tokens; a token outside the grammar (another
    processor re-enabled it) leaves the request only the stop token, instead of failing the batch."""
    g = RequestGrammars(info)
    g.add(5, grammar_request({"structgen_regex": "[0-9]+"}))
    tokens = encode(info, "12")
    bitmask, _ = g.fill([(0, 5, tokens)], 1)
    assert np.array_equal(bitmask[0], expected_mask(GrammarCompiler(info).compile_regex("[0-9]+"), tokens, g.words))
    bitmask, _ = g.fill([(0, 5, tokens + encode(info, "x"))], 1)
    allowed = np.flatnonzero(np.unpackbits(bitmask[0].view(np.uint8), bitorder="little"))
    assert allowed.tolist() == [IM_END]
    assert g.stats["rejected_tokens"] == 1


def test_a_compile_that_fails_late_only_stops(info):
    """A limit hit at compile time (after admission) ends that request, not the server."""
    g = RequestGrammars(info)
    g.add(0, GrammarRequest("regex", "[0-9]{50}", {"max_dfa_states": 8}))
    bitmask, _ = g.fill([(0, 0, [])], 1)
    allowed = np.flatnonzero(np.unpackbits(bitmask[0].view(np.uint8), bitorder="little"))
    assert allowed.tolist() == [IM_END]
    assert g.stats["compile_errors"] == 1


# ------------------------------------------------------------------ vLLM's interface classes

def _vllm_config(vocab: int):
    model_config = SimpleNamespace(tokenizer=str(SMOLLM2), trust_remote_code=False, tokenizer_revision=None,
                                   hf_config=SimpleNamespace(eos_token_id=IM_END), get_vocab_size=lambda: vocab)
    return SimpleNamespace(model_config=model_config)


def test_v1_processor_in_vllm_batches(info):
    pytest.importorskip("vllm")
    import torch
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

    from structgen.integrations.vllm import StructgenLogitsProcessor

    vocab = info.vocab_size + 64  # a model whose output layer is wider than the tokenizer
    proc = StructgenLogitsProcessor(_vllm_config(vocab), torch.device("cpu"), False)
    assert not proc.is_argmax_invariant()
    params = SamplingParams(extra_args={"structgen_regex": "[0-9]{3}"})
    StructgenLogitsProcessor.validate_params(params)
    with pytest.raises(ValueError):
        StructgenLogitsProcessor.validate_params(SamplingParams(extra_args={"structgen_regex": "("}))
    out: list[int] = []
    proc.update_state(BatchUpdate(batch_size=2, removed=[], moved=[],
                                  added=[(0, SamplingParams(), [1], []), (1, params, [1], out)]))
    logits = torch.zeros(2, vocab)
    proc.apply(logits)
    assert torch.isfinite(logits[0]).all()  # no grammar: untouched
    allowed = torch.isfinite(logits[1]).nonzero().flatten().tolist()
    assert allowed and all(info.token_bytes[t].isdigit() for t in allowed) and vocab - 1 not in allowed
    out.extend(encode(info, "123"))
    proc.update_state(BatchUpdate(batch_size=1, removed=[0], added=[],
                                  moved=[(1, 0, MoveDirectionality.UNIDIRECTIONAL)]))
    logits = torch.zeros(1, vocab)
    proc.apply(logits)
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [IM_END]


def test_v2_processor_reads_committed_tokens_and_drafts(info):
    pytest.importorskip("vllm")
    import torch
    from vllm import SamplingParams

    from structgen.integrations.vllm import StructgenLogitsProcessorV2

    vocab = info.vocab_size
    prompt = [1, 1]
    tokens = np.zeros((4, 16), dtype=np.int64)
    done = encode(info, "12")
    tokens[3, :2] = prompt
    tokens[3, 2:2 + len(done)] = done
    buf = lambda a: SimpleNamespace(np=a)  # noqa: E731 - the runner's host-side views
    req_states = SimpleNamespace(all_token_ids=buf(tokens), prompt_len=buf(np.array([0, 0, 0, 2])),
                                 total_len=buf(np.array([0, 0, 0, 2 + len(done)])))
    proc = StructgenLogitsProcessorV2(_vllm_config(vocab), req_states)
    assert proc.add_request(3, SamplingParams(extra_args={"structgen_regex": "[0-9]{3}-[0-9]"}))
    assert not proc.add_request(1, SamplingParams())
    draft = encode(info, "4")
    # rows: slot 1 (no grammar), then slot 3 with one draft token: row 1 its committed state, row 2 after "4"
    ctx = SimpleNamespace(expanded_idx_mapping=torch.tensor([1, 3, 3]), expanded_local_pos=torch.tensor([0, 0, 1]),
                          input_ids=torch.tensor([0, done[-1], draft[0]]))
    logits = torch.zeros(3, vocab)
    proc.apply(logits, ctx)
    assert torch.isfinite(logits[0]).all()
    cg = GrammarCompiler(info).compile_regex("[0-9]{3}-[0-9]")
    for row, seen in ((1, done), (2, done + draft)):
        want = np.unpackbits(expected_mask(cg, seen, (vocab + 31) // 32).view(np.uint8), bitorder="little")[:vocab]
        assert torch.equal(torch.isfinite(logits[row]), torch.from_numpy(want.astype(bool)))
