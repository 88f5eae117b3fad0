"""A reasoning block (`<think>…</think>`) before schema-exact JSON, with Qwen3's own chat template."""

from __future__ import annotations

import json

import numpy as np
import pytest

from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo
from structgen.frontend.structural_tag import until_marker_dfa

from datasets import TOKENIZERS

QWEN3 = TOKENIZERS / "qwen3"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
          "required": ["city", "days"], "additionalProperties": False}


def test_until_marker_dfa_ends_at_the_first_closing_marker() -> None:
    d = until_marker_dfa(b"<t>", b"</t>")
    assert d.matches(b"<t></t>") and d.matches(b"<t>a</ </t/t>x</t>\n\n") and d.matches(b"<t><</t>")
    assert not d.matches(b"<t>a</t>b</t>") and not d.matches(b"<t>a</t") and not d.matches(b"x<t></t>")
    kmp = until_marker_dfa(b"[", b"aab")  # a border: "aaab" must close on its last three bytes
    assert kmp.matches(b"[aaab") and kmp.matches(b"[abaab") and not kmp.matches(b"[aaba")


@pytest.fixture(scope="module")
def qwen3():
    transformers = pytest.importorskip("transformers")
    info = TokenizerInfo.from_tokenizer_json(QWEN3 / "tokenizer.json")
    config = json.loads((QWEN3 / "tokenizer_config.json").read_text())
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(QWEN3 / "tokenizer.json"))
    hf.chat_template = config["chat_template"]
    return info, hf


def _assistant_text(hf, reasoning: str, answer: str) -> str:
    """What the model writes after the generation prompt, rendered by Qwen3's chat template."""
    messages = [{"role": "user", "content": "Plan a trip as JSON."}]
    prompt = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = hf.apply_chat_template(messages + [{"role": "assistant", "content": answer,
                                                "reasoning_content": reasoning}], tokenize=False)
    assert full.startswith(prompt)
    return full[len(prompt):].split("<|im_end|>")[0]


def _walk(cg, info, hf, text: str) -> bool:
    """Token by token with the mask checked before each token, then the stop token."""
    m = GrammarMatcher(cg)
    mask = np.zeros((1, (info.vocab_size + 31) // 32), dtype=np.int32)
    for t in hf.encode(text, add_special_tokens=False) + [info.stop_token_ids[0]]:
        m.fill_next_token_bitmask(mask)
        allowed = bool((int(mask[0, t >> 5]) >> (t & 31)) & 1)
        ok = m.accept_token(t) if t not in info.stop_token_ids else m.is_accepting() and m.accept_token(t)
        assert allowed == ok
        if not ok:
            return False
    return True


def test_think_block_then_schema_exact_json(qwen3) -> None:
    info, hf = qwen3
    cg = GrammarCompiler(info).compile_json_schema(SCHEMA, reasoning=("<think>", "</think>"))
    think = ["<think>", "</think>"]
    assert [hf.convert_tokens_to_ids(x) for x in think] == [151667, 151668]  # one token each, text to us
    good = _assistant_text(hf, "The user wants JSON. {not json} and a </thin half marker.", '{"city": "Oslo", "days": 3}')
    assert "<think>" in good and good.startswith("<think>")
    assert _walk(cg, info, hf, good)
    for bad in ('{"city": "Oslo", "days": 0}', '{"city": "Oslo"}', 'Sure! {"city": "Oslo", "days": 3}'):
        assert not _walk(cg, info, hf, _assistant_text(hf, "thinking", bad))
    # no block: the output must start with it
    assert not _walk(cg, info, hf, '{"city": "Oslo", "days": 3}')
    # inside the block any text is allowed, the closing marker token included; after it only JSON
    m = GrammarMatcher(cg)
    assert m.accept_string("<think>\nhmm")
    mask = np.zeros((1, (info.vocab_size + 31) // 32), dtype=np.int32)
    m.fill_next_token_bitmask(mask)
    bits = np.unpackbits(mask.view(np.uint8), bitorder="little")
    assert bits[151668] and bits[hf.convert_tokens_to_ids("Ġhello")] and bits[151667]
    assert m.accept_string("</think>\n\n")
    m.fill_next_token_bitmask(mask)
    bits = np.unpackbits(mask.view(np.uint8), bitorder="little")
    assert not bits[hf.convert_tokens_to_ids("Ġhello")] and not bits[151667] and bits[hf.convert_tokens_to_ids("{\"")]


def test_reasoning_wraps_any_grammar_and_is_part_of_the_cache_key(qwen3) -> None:
    info, _ = qwen3
    compiler = GrammarCompiler(info)
    plain = compiler.compile_regex("[0-9]+")
    wrapped = compiler.compile_regex("[0-9]+", reasoning=("<think>", "</think>"))
    assert plain is not wrapped
    assert not GrammarMatcher(plain).accept_string("<think>")
    m = GrammarMatcher(wrapped)
    assert m.accept_string("<think>2+2</think>\n42") and m.is_accepting()
    with pytest.raises(ValueError):
        compiler.compile_regex("[0-9]+", reasoning=("<think>",))


def test_reasoning_budget_forces_the_closing_marker(qwen3) -> None:
    info, hf = qwen3
    cg = GrammarCompiler(info).compile_json_schema(SCHEMA, reasoning=("<think>", "</think>"))
    m = GrammarMatcher(cg, reasoning_max_tokens=3)
    mask = np.zeros((1, (info.vocab_size + 31) // 32), dtype=np.int32)

    def allowed() -> set[int]:
        m.fill_next_token_bitmask(mask)
        return set(np.flatnonzero(np.unpackbits(mask.view(np.uint8), bitorder="little")).tolist())

    ids = hf.encode("<think>\nokay", add_special_tokens=False)
    assert len(ids) == 3 and m.accept_tokens(ids[:2]) == 2
    assert hf.convert_tokens_to_ids("Ġhello") in allowed()  # 2 of 3 tokens used
    assert m.accept_token(ids[2])
    closing = allowed()  # budget spent: only the way to "</think>"
    assert 151668 in closing and hf.convert_tokens_to_ids("Ġhello") not in closing
    assert all(info.token_bytes[t] and (b"</think>".startswith(info.token_bytes[t])
                                       or info.token_bytes[t].startswith(b"</think>")) for t in closing)
    assert m.accept_string("</")  # part of the marker: the rest of it
    assert {info.token_bytes[t] for t in allowed()} <= {b"t", b"th", b"thi", b"thin", b"think", b"think>"} | {
        info.token_bytes[t] for t in allowed() if info.token_bytes[t].startswith(b"think>")}
    assert m.accept_string("think>\n")
    assert hf.convert_tokens_to_ids("{\"") in allowed()  # JSON, no budget after the block
    m.rollback(2)
    assert 151668 in allowed() and hf.convert_tokens_to_ids("Ġhello") not in allowed()
    with pytest.raises(Exception):
        GrammarMatcher(GrammarCompiler(info).compile_json_schema(SCHEMA), reasoning_max_tokens=3)
