"""Fuzz: random JSON Schemas, their instances and mutations; the matcher accepts a text iff jsonschema
(Draft 2020-12, format checking on) says the value is valid, in both whitespace modes.

Checked exactly (soundness and completeness) on canonical texts: json.dumps for "compact", any layout
of runs up to max_whitespace for "flexible"; under property_order="declared" completeness only where
every object has at most one member. Texts that are JSON but not in the output style (a mutation
that adds a space, `1E5`) are checked for soundness only. Integral floats never reach the check:
structgen writes `type: integer` as integer literals (1, not 1.0), by design.

Completeness is asserted also where two anyOf/oneOf branches may both take objects, or both arrays:
a literal key or value of one branch and the other branch's general terminal tie in the lexer, and
the parse forks there (automata/lexer.py, lexer forks). Before that, the literal won the tie and the
other branch was lost (the FIXED reproducers).
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import examples
from fuzz.strategies import (TOKENIZERS, DuplicateKey, accepts, broken_schemas, compiler, dumps_layout,
                             has_integral_float, json_instances, json_schemas, max_whitespace_run, mutate_text,
                             orderless, parse_exact, squeeze, tokenizer)
from structgen import GrammarMatcher, StructgenError

MAX_WS = 16  # CompileOptions.max_whitespace's default


def validator(schema: Any):
    """jsonschema's validator for `schema`, with format checking as the engine's own tests use it."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@lru_cache(maxsize=1)
def _hf_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(TOKENIZERS / "llama3" / "tokenizer.json"))


def _token_walk_fits(cg, text: str) -> bool:
    """The token walk of `text` (Llama-3 ids) then the stop token: each token is accepted and its bit
    is set in the mask before it (masks are complete along a valid document)."""
    m = GrammarMatcher(cg)
    for t in _hf_tokenizer().encode(text, add_special_tokens=False).ids + [tokenizer().stop_token_ids[0]]:
        bits = m.next_token_bits()
        if not (bits[t >> 5] >> (t & 31) & 1 and m.accept_token(t)):
            return False
    return True


def _in_style(text: str, value: Any, whitespace: str) -> bool:
    """`text` is how the output style writes `value` (so the grammar must take it when it is valid)."""
    if has_integral_float(value):
        return False
    plain = json.loads(text)  # floats, for the serialization the engine writes
    if whitespace == "compact":
        return text == json.dumps(plain, ensure_ascii=False)
    return (text == text.strip(" \t\n\r") and max_whitespace_run(text) <= MAX_WS
            and squeeze(text) == json.dumps(plain, ensure_ascii=False, separators=(",", ":")))


def check_json_schema(schema: dict, seed: int, whitespace: str, order: str) -> str:
    """Compile `schema` and compare the matcher with jsonschema on its instances; AssertionError on a
    disagreement. Returns "invalid schema", "refused" (a typed compile error) or "checked ..."."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError:
        return "invalid schema"
    v = validator(schema)
    try:
        cg = compiler().compile_json_schema(schema, whitespace=whitespace, property_order=order)
    except StructgenError:
        return "refused"  # anything else is an untyped error: it propagates and fails
    rng = random.Random(seed)
    where = f"schema={json.dumps(schema, ensure_ascii=False)} whitespace={whitespace} order={order}"
    walked = False
    for value in json_instances(schema, rng):
        text = json.dumps(value, ensure_ascii=False) if whitespace == "compact" else dumps_layout(value, rng, MAX_WS)
        valid = v.is_valid(value)
        got = accepts(cg, text)
        if order == "any" or orderless(value):
            assert got == valid, f"{where} text={text!r}: matcher {got}, jsonschema {valid}"
        else:
            assert valid or not got, f"{where} text={text!r}: accepted but invalid"
        if got and not walked:  # one token walk per schema: the tokens and the stop token fit too
            walked = True
            assert _token_walk_fits(cg, text), f"{where} text={text!r}: bytes fit, the tokens or their masks do not"
        _check_text_mutation(cg, v, mutate_text(text, rng), whitespace, order, where)
    return "checked"


def _check_text_mutation(cg, v, text: str, whitespace: str, order: str, where: str) -> None:
    """A text edit of a serialized instance: never accepted unless JSON and valid; accepted when
    valid and written in the output style."""
    try:
        parsed, value = parse_exact(text)
    except DuplicateKey:
        return  # which member counts is up to the reader; not judged
    got = accepts(cg, text)
    if not parsed:
        assert not got, f"{where} text={text!r}: accepted but not JSON"
        return
    try:
        valid = v.is_valid(value)
    except TypeError:  # jsonschema divides a Decimal by a float multipleOf: judge the float value
        valid = v.is_valid(json.loads(text))
    assert valid or not got, f"{where} text={text!r}: accepted but invalid"
    if _in_style(text, value, whitespace) and (order == "any" or orderless(value)):
        assert got == valid, f"{where} text={text!r}: valid and in style, yet rejected"


# the fuzzer's arguments (bench/fuzz.py runs check_json_schema on the same strategies)
FUZZ_ARGS = dict(schema=json_schemas(), seed=st.integers(0, 2**32 - 1),
                 whitespace=st.sampled_from(["compact", "flexible"]), order=st.sampled_from(["any", "any", "declared"]))


@settings(max_examples=examples(300), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(**FUZZ_ARGS)
def test_matcher_agrees_with_jsonschema(schema: dict, seed: int, whitespace: str, order: str) -> None:
    check_json_schema(schema, seed, whitespace, order)


def _valid_schema(schema: Any) -> bool:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        return True
    except jsonschema.SchemaError:
        return False


def check_broken_schema(schema: Any, seed: int) -> str:
    """A schema with odd values put in: compile_json_schema succeeds or raises a StructgenError
    (nothing untyped); if it is still a valid schema and compiles, the usual agreement check."""
    try:
        compiler().compile_json_schema(schema, property_order="any")
    except StructgenError:
        return "refused"
    return check_json_schema(schema, seed, "compact", "any") if isinstance(schema, dict) else "compiled"


BROKEN_ARGS = dict(schema=broken_schemas(), seed=st.integers(0, 2**32 - 1))


@settings(max_examples=examples(200), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(**BROKEN_ARGS)
def test_broken_schemas_compile_or_are_refused_typed(schema: Any, seed: int) -> None:
    check_broken_schema(schema, seed)


# minimal reproducers of what this fuzzer found; each instance is valid under jsonschema
FIXED = [
    # anyOf lexer ties, fixed by lexer forks: a const's literal key/value (or a declared key) won over
    # the general object or array branch
    ({"anyOf": [{"const": {"a": 1}}, {"type": "object"}]}, '{"a": 2}', "any"),
    ({"anyOf": [{"const": [1]}, {"type": "array"}]}, "[1, 2]", "any"),
    ({"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"type": "object"}]},
     '{"a": "x"}', "declared"),
  # once rejected: `not` over string bounds no string meets is every string (`{1,0}` read as "none")
    ({"not": {"type": "string", "minLength": 1, "maxLength": 0}}, '"a"', "any"),
    ({"not": {"minLength": 1, "maxLength": 0}}, '"a"', "any"),
    # bench/fuzz.py seed 2: a false oneOf branch made the whole oneOf "no value" (additional members refused)
    ({"additionalProperties": {"oneOf": [False, True]}}, '{"zz": -1}', "any"),
    ({"oneOf": [False, {"type": "integer"}]}, "3", "declared"),
]
UNSOUND_FIXED = [  # bench/fuzz.py seed 2: const and enum merged from an allOf, the enum was not checked
    ({"oneOf": [{"allOf": [{"const": None}, {"enum": [[]]}]}]}, "null"),
]


@pytest.mark.parametrize("schema, text", UNSOUND_FIXED)
def test_fixed_unsound_reproducers(schema: Any, text: str) -> None:
    assert not validator(schema).is_valid(json.loads(text))
    try:
        assert not accepts(compiler().compile_json_schema(schema, property_order="any"), text)
    except StructgenError:
        pass  # refused (no value satisfies it) is sound too


@pytest.mark.parametrize("schema, text, order", FIXED)
def test_known_bug_reproducers(schema: Any, text: str, order: str) -> None:
    assert validator(schema).is_valid(json.loads(text))
    assert accepts(compiler().compile_json_schema(schema, property_order=order), text)


# schemas the metaschema rejects, on which compiling raised an untyped exception (a wrong-typed keyword
# value read as if it had the right type); now the metaschema's first complaint, as SchemaError
INVALID_SCHEMAS_UNTYPED = [
    ({"type": 0}, "TypeError in emit.body"),
    ({"not": {"type": True}}, "TypeError in normalize.negation"),
    ({"required": [0]}, "AttributeError in vocabulary._ptr_escape"),
    ({"required": ["c", {}]}, "TypeError in objects.object_parts"),
    ({"allOf": -1}, "TypeError in emit.body"),
    ({"anyOf": [{"anyOf": -1}]}, "TypeError in object_union.flat_objects"),
    ({"properties": -1, "additionalProperties": False}, "TypeError in objects.object_parts"),
    ({"maxProperties": []}, "TypeError in objects.object_parts"),
    ({"type": "array", "minItems": None}, "TypeError in emit.array"),
    ({"items": -1, "minItems": ""}, "ValueError in emit.array"),
    ({"dependentRequired": {"a": -1}}, "TypeError in normalize.dependencies"),
    ({"propertyNames": {"pattern": []}, "additionalProperties": False}, "AttributeError in frontend/regex_parse.eat"),
    ({"type": "integer", "maximum": {}}, "ValueError in numbers._to_decimal"),
    ({"items": {"$ref": {"type": "wat"}}}, "AttributeError in normalize.resolve"),
]


@pytest.mark.parametrize("schema, where", INVALID_SCHEMAS_UNTYPED)
def test_invalid_schemas_raise_typed_errors(schema: Any, where: str) -> None:
    assert not _valid_schema(schema)
    with pytest.raises(StructgenError):
        compiler().compile_json_schema(schema)
