"""anyOf / oneOf over object schemas in any property order (emit.object_union, ir.ObjectUnion): the
discriminating member may come anywhere, so the branches are followed side by side. Random unions
(shared keys with equal, finite, string-pattern and type-disjoint values; required sets; additional
properties) agree with jsonschema on random instances, valid and invalid, in shuffled orders."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from structgen import GrammarCompiler, GrammarMatcher, StructgenError
from structgen.frontend.ir import ObjectUnion

VALUES = [  # value schemas a shared key may take in a branch (some overlap, some do not)
    {"type": "string"}, {"type": "string", "pattern": "^a"}, {"type": "string", "maxLength": 2},
    {"const": "circle"}, {"const": "square"}, {"enum": ["circle", "tri"]}, {"type": "integer"}, {"type": "null"},
    {"type": "boolean"},
]
SAMPLES = ["circle", "square", "tri", "a", "abc", "xy", "xyz", 1, 7, None, True, "", [1], {"q": 1}]


def random_union(rng: random.Random) -> dict:
    keys = ["kind", "name", "size", "flag", "x"]
    branches = []
    for _ in range(rng.randint(2, 3)):
        props = {k: rng.choice(VALUES) for k in rng.sample(keys, rng.randint(1, 4))}
        b: dict = {"type": "object", "properties": props}
        req = [k for k in props if rng.random() < 0.5]
        if req:
            b["required"] = req
        if rng.random() < 0.5:
            b["additionalProperties"] = False
        branches.append(b)
    return {rng.choice(["anyOf", "oneOf"]): branches}


def random_instance(rng: random.Random) -> dict:
    keys = ["kind", "name", "size", "flag", "x", "other"]
    return {k: rng.choice(SAMPLES) for k in rng.sample(keys, rng.randint(0, 4))}


def accepts(cg, inst: dict) -> bool:
    m = GrammarMatcher(cg)
    return m.accept_string(json.dumps(inst)) and m.is_accepting()


def test_object_unions_agree_with_jsonschema(tokenizer_llama3) -> None:
    rng = random.Random(11)
    compiler = GrammarCompiler(tokenizer_llama3)
    unions = checked = 0
    for _ in range(150):
        schema = random_union(rng)
        try:
            cg = compiler.compile_json_schema(schema, property_order="any")
        except StructgenError:  # e.g. oneOf branches not provably disjoint: refused, loudly
            continue
        unions += any(isinstance(o, ObjectUnion) for o in cg.ir.objects)
        v = jsonschema.Draft202012Validator(schema)
        for _ in range(40):
            inst = random_instance(rng)
            assert accepts(cg, inst) == v.is_valid(inst), (schema, inst)
            checked += 1
    assert unions >= 30 and checked >= 2000


def no_dead_end(cg, text: str) -> bool:
    """Along `text` (until it is rejected), some token or the stop token is always allowed."""
    import numpy as np

    m = GrammarMatcher(cg)
    mask = np.zeros((1, (cg.tokenizer_info.vocab_size + 31) // 32), dtype=np.int32)
    for ch in text:
        m.fill_next_token_bitmask(mask, 0)
        if not mask.any():
            return False
        if not m.accept_string(ch):
            return True
    m.fill_next_token_bitmask(mask, 0)
    return bool(mask.any())


def test_object_union_masks_have_no_dead_ends(tokenizer_llama3) -> None:
    """Soundness: a member value only a dead branch could take is not allowed at its first byte (the
    reduction that would reject it comes one token later)."""
    rng = random.Random(12)
    compiler = GrammarCompiler(tokenizer_llama3)
    walked = 0
    for _ in range(60):
        schema = random_union(rng)
        try:
            cg = compiler.compile_json_schema(schema, property_order="any")
        except StructgenError:
            continue
        for _ in range(8):
            text = json.dumps(random_instance(rng))
            assert no_dead_end(cg, text), (schema, text)
            walked += 1
    assert walked >= 200


@pytest.mark.parametrize("order", [["shape", "radius"], ["radius", "shape"]])
def test_the_discriminator_may_come_last(tokenizer_llama3, order) -> None:
    circle = {"type": "object", "properties": {"shape": {"const": "circle"}, "radius": {"type": "number"}},
              "required": ["shape", "radius"], "additionalProperties": False}
    square = {"type": "object", "properties": {"shape": {"const": "square"}, "side": {"type": "number"}},
              "required": ["shape", "side"], "additionalProperties": False}
    cg = GrammarCompiler(tokenizer_llama3).compile_json_schema({"oneOf": [circle, square]}, property_order="any")
    good = {"shape": "circle", "radius": 2}
    assert accepts(cg, {k: good[k] for k in order})
    assert not accepts(cg, {k: {"shape": "square", "radius": 2}[k] for k in order})


@pytest.mark.parametrize("order", [["shape", "radius"], ["radius", "shape"]])
def test_one_of_required_sets_is_exclusive_in_any_order(tokenizer_llama3, order) -> None:
    """Glaiveai2K calculate_area: oneOf whose branches only list `required` (presence predicates)."""
    schema = {"type": "object", "properties": {"shape": {"type": "string"}, "radius": {"type": "number"},
                                               "side": {"type": "number"}},
              "required": ["shape"], "oneOf": [{"required": ["radius"]}, {"required": ["side"]}]}
    cg = GrammarCompiler(tokenizer_llama3).compile_json_schema(schema, property_order="any")
    one = {"shape": "circle", "radius": 10.5}
    assert accepts(cg, {k: one[k] for k in order})
    both = {"shape": "x", "radius": 1, "side": 2}
    for keys in (["side", "radius", "shape"], ["radius", "shape", "side"]):
        assert not accepts(cg, {k: both[k] for k in keys})
    assert not accepts(cg, {"shape": "circle"})


def test_branches_only_glr_can_follow_compile_on_glr(tokenizer_llama3) -> None:
    """Two different object schemas under one key of two big branches: the union cannot cut them
    apart and the branches are too big to write in every order, so they stay separate objects (their
    constraints as parser state) and the GLR path follows both until the discriminator comes; the
    data may come first. Exact in any order against jsonschema (this was refused before GLR)."""
    def branch(kind: str, data: dict) -> dict:
        props = {f"p{i}": {"type": "string"} for i in range(11)}
        return {"type": "object", "properties": {"kind": {"const": kind}, "data": data, **props}, "required": ["kind"]}

    schema = {"anyOf": [branch("a", {"type": "object", "properties": {"x": {"type": "string"}}}),
                        branch("b", {"type": "object", "properties": {"y": {"type": "integer"}}})]}
    cg = GrammarCompiler(tokenizer_llama3).compile_json_schema(schema, property_order="any")
    assert cg.parser.glr and cg.objects is not None
    v = jsonschema.Draft202012Validator(schema)
    rng = random.Random(5)
    for value in [{"kind": "b", "data": {"y": 1}, "p3": "s"}, {"kind": "a", "data": {"x": "s"}, "p10": ""},
                  {"kind": "a", "data": {"y": 1}}, {"kind": "a", "data": {"x": 1}}, {"kind": "b", "data": {"y": "s"}},
                  {"kind": "c", "data": {}}, {"data": {"x": "s", "y": 2}, "kind": "b"}, {"p0": "s", "kind": "a"},
                  {"kind": "a", "p0": 1}]:
        for _ in range(4):
            keys = list(value)
            rng.shuffle(keys)
            x = {k: value[k] for k in keys}
            assert accepts(cg, x) == v.is_valid(x), x
