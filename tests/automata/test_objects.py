"""Object member constraints kept as parser state (automata/objects.py) against the explicit encoding.

The same schema compiled both ways (objects.PARAMETRIC_MIN_OPTIONAL moved) must accept the same
instances and give the same mask at every token, in both whitespace styles, with required
members, min/maxProperties, dependentRequired and additional properties.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

import structgen.frontend.json_schema.objects as emit_objects
from structgen import GrammarCompiler, GrammarMatcher, LimitExceeded
from structgen.automata.pushdown import canonical_lr1
from structgen.errors import GrammarError


@pytest.fixture(scope="module")
def hf():
    from tokenizers import Tokenizer

    from datasets import DATA

    return Tokenizer.from_file(str(DATA / "tokenizers" / "llama3" / "tokenizer.json"))


def compile_with(tok, schema, whitespace: str, parametric: bool, order: str = "declared"):
    old = emit_objects.PARAMETRIC_MIN_OPTIONAL, emit_objects.PARAMETRIC_MIN_UNORDERED
    emit_objects.PARAMETRIC_MIN_OPTIONAL = emit_objects.PARAMETRIC_MIN_UNORDERED = 1 if parametric else 10 ** 9
    try:
        return GrammarCompiler(tok).compile_json_schema(schema, whitespace=whitespace, property_order=order)
    finally:
        emit_objects.PARAMETRIC_MIN_OPTIONAL, emit_objects.PARAMETRIC_MIN_UNORDERED = old


def walk(cg, ids: list[int]) -> tuple[bool, list[np.ndarray]]:
    m = GrammarMatcher(cg)
    words = (cg.tokenizer_info.vocab_size + 31) // 32
    masks = []
    for t in ids + [None]:
        mask = np.zeros((1, words), dtype=np.int32)
        m.fill_next_token_bitmask(mask, 0)
        masks.append(mask)
        if t is not None and not m.accept_token(t):
            return False, masks
    return m.is_accepting(), masks


def random_schema(rng: random.Random, max_n: int = 11) -> dict:
    n = rng.randint(2, max_n)
    kinds = [{"type": "integer"}, {"type": "string"}, {"type": "boolean"}, {"enum": [1, "a"]}]
    props = {f"k{i}": rng.choice(kinds) for i in range(n)}
    schema: dict = {"type": "object", "properties": props}
    req = [k for k in props if rng.random() < 0.25]
    if req:
        schema["required"] = req
    r = rng.random()
    if r < 0.3:
        schema["additionalProperties"] = False
    elif r < 0.5:
        schema["additionalProperties"] = {"type": "integer"}
    if rng.random() < 0.3:
        schema["minProperties"] = rng.randint(0, 4)
    if rng.random() < 0.3:
        schema["maxProperties"] = rng.randint(1, 6)
    if rng.random() < 0.3:
        a, b = rng.sample(list(props), 2)
        schema["dependentRequired"] = {a: [b]}
    return schema


@pytest.mark.parametrize("order", ["declared", "any"])
def test_parametric_objects_equal_the_explicit_encoding(tokenizer_llama3, hf, order: str) -> None:
    """In either property order; "any" explicitly is a rule per subset of members, so objects stay small."""
    rng = random.Random(5)
    checked = 0
    while checked < 120:
        schema = random_schema(rng, 11 if order == "declared" else 7)
        ws = rng.choice(["compact", "flexible"])
        try:
            explicit = compile_with(tokenizer_llama3, schema, ws, False, order)
        except Exception:  # no object satisfies the random constraints: both refuse
            with pytest.raises(Exception):
                compile_with(tokenizer_llama3, schema, ws, True, order)
            continue
        param = compile_with(tokenizer_llama3, schema, ws, True, order)
        if not param.ir.objects:  # every member required: nothing to keep as state
            continue
        props = schema["properties"]
        for _ in range(8):
            keys = [k for k in props if rng.random() < 0.5]
            if rng.random() < (0.3 if order == "declared" else 0.8):
                rng.shuffle(keys)
            if rng.random() < 0.3:
                keys.append(f"extra{rng.randint(0, 2)}")
            obj = {k: {"integer": 1, "string": "a", "boolean": True}.get(props.get(k, {}).get("type"), 1) for k in keys}
            text = json.dumps(obj) if ws == "compact" else json.dumps(obj, indent=rng.choice([None, 2]))
            ids = hf.encode(text, add_special_tokens=False).ids
            ok_e, masks_e = walk(explicit, ids)
            ok_p, masks_p = walk(param, ids)
            assert ok_e == ok_p, (schema, text)
            for i, (x, y) in enumerate(zip(masks_e, masks_p)):
                assert (x == y).all(), (schema, text, i)
            checked += 1


def big_object(n: int) -> dict:
    kinds = ["integer", "string", "boolean", "number"]
    return {"type": "object", "properties": {f"p{i}": {"type": kinds[i % 4]} for i in range(n)}, "required": ["p7"]}


@pytest.mark.parametrize("whitespace", ["compact", "flexible"])
def test_a_thousand_optional_properties_compile_linearly(tokenizer_llama3, whitespace: str) -> None:
    cg = GrammarCompiler(tokenizer_llama3).compile_json_schema(big_object(1000), whitespace=whitespace)
    # linear, where pairs of members were not; ~2 LR states per member in both styles, as members that
    # differ only in their key share the states after it (member_value)
    assert cg.ir.num_rules < 1200 and cg.objects.n_base < 2 * 1000 + 200
    sep = ", " if whitespace == "compact" else ",\n  "
    ok = GrammarMatcher(cg)
    assert ok.accept_string(sep.join(['{"p1": "a"', '"p2": true', '"p7": 1.5', '"p998": false}'])) and ok.is_accepting()
    m = GrammarMatcher(cg)
    assert m.accept_string('{"p1": "a", "p7": 1') and not m.accept_string(', "p2"')  # declared order
    m = GrammarMatcher(cg)
    assert m.accept_string('{"p1": "a"') and not m.accept_string("}")  # p7 is required


def test_ten_thousand_properties_name_the_limit_they_hit(tokenizer_llama3) -> None:
    with pytest.raises(LimitExceeded, match="max_table_cells"):
        GrammarCompiler(tokenizer_llama3).compile_json_schema(big_object(10_000))


def test_the_infilling_oracle_refuses_parametric_grammars(tokenizer_llama3) -> None:
    cg = GrammarCompiler(tokenizer_llama3).compile_json_schema(big_object(20))
    with pytest.raises(GrammarError, match="object member constraints"):
        canonical_lr1(cg)


def test_parametric_grammars_round_trip_the_disk_cache(tokenizer_llama3, tmp_path) -> None:
    schema = big_object(30)
    first = GrammarCompiler(tokenizer_llama3, cache_dir=tmp_path).compile_json_schema(schema)
    again = GrammarCompiler(tokenizer_llama3, cache_dir=tmp_path)
    second = again.compile_json_schema(schema)
    assert again.last_from_disk and second.objects is not None
    text = '{"p1": "a", "p7": 2, "p12": 3'
    words = (tokenizer_llama3.vocab_size + 31) // 32
    for cg in (first, second):
        m = GrammarMatcher(cg)
        assert m.accept_string(text)
    a, b = np.zeros((1, words), np.int32), np.zeros((1, words), np.int32)
    ma, mb = GrammarMatcher(first), GrammarMatcher(second)
    ma.accept_string(text)
    mb.accept_string(text)
    ma.fill_next_token_bitmask(a, 0)
    mb.fill_next_token_bitmask(b, 0)
    assert (a == b).all()
