"""The emitter's memo key of a subschema (vocabulary.SchemaTexts, built bottom-up once per
subschema) is the text the whole-schema dump gives: canonical(_without_annotations(s))."""

from __future__ import annotations

import random

from datasets import MASKBENCH
from structgen.evaluation.datasets import load_rows
from structgen.frontend.json_schema.vocabulary import SchemaTexts, _without_annotations, canonical


def _dicts(x, out: list) -> list:
    if isinstance(x, dict):
        out.append(x)
        for v in x.values():
            _dicts(v, out)
    elif isinstance(x, list):
        for v in x:
            _dicts(v, out)
    return out


def test_texts_equal_the_whole_dump_on_maskbench_schemas() -> None:
    rows = load_rows(MASKBENCH)
    random.Random(0).shuffle(rows)
    n = 0
    for row in rows[:200]:
        texts = SchemaTexts()
        for d in _dicts(row["schema"], []):  # every dict: schemas, maps of them and plain values alike
            assert texts(d) == canonical(_without_annotations(d))
            n += 1
    assert n > 5_000


def test_edge_cases() -> None:
    texts = SchemaTexts()
    for s in ({}, {"title": "x"}, {"properties": {"title": {"type": "string", "title": "t"}, "é": True}},
              {"items": [{"description": "d"}, False], "enum": [{"title": 1}, "ü"]},
              {"properties": {1: {"title": "t"}}}, {"not": {"$comment": "c", "const": 1.5}},
              {"anyOf": "oops"}, {"additionalProperties": {"examples": [1]}, "default": {"title": 2}}):
        assert texts(s) == canonical(_without_annotations(s)), s
