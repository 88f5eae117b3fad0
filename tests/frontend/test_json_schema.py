"""JSON Schema → grammar: instances agree with jsonschema; unsupported input is loud. (Sampled outputs:
test_json_schema_completions.py; MaskBench instances: test_maskbench.py.)"""

from __future__ import annotations

import json

import jsonschema
import pytest

from datasets import TOKENIZERS
from structgen import GrammarCompiler, GrammarMatcher, LimitExceeded, SchemaError, TokenizerInfo, UnsupportedFeature

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"

CASES = [
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
      "required": ["b"]},
     [{"b": "x"}, {"a": 1, "b": "x"}, {"a": 1, "b": "x", "c": True}, {"a": 1}, {}, {"b": "x", "zz": [1, {"q": None}]},
      {"b": 1}, {"a": 1, "b": "y", "a2": 3}]),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
     [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 2}]),
    ({"type": "object", "properties": {"a": {"type": "null"}}, "additionalProperties": {"type": "integer"}},
     [{"a": None, "x": 1}, {"x": 1, "y": 2}, {"x": "s"}, {"a": 1}]),
    ({"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
     [[], [1], [1, 2.5], [1, 2, 3], [1, 2, 3, 4], ["x"]]),
    ({"type": "array", "prefixItems": [{"type": "string"}, {"type": "null"}], "items": False},
     [[], ["a"], ["a", None], ["a", None, 1], [None]]),
    ({"$schema": "http://json-schema.org/draft-07/schema#", "type": "array", "items": [{"type": "integer"}],
      "additionalItems": {"type": "string"}}, [[1, "a", "b"], [1, 2], []]),
    ({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}},
                         "additionalProperties": False}}, "$ref": "#/$defs/node"},
     [{"v": 1, "next": {"v": 2, "next": {}}}, {"v": "x"}, {"next": {"next": {"w": 1}}}]),
    ({"definitions": {"pos": {"type": "integer", "minimum": 1}}, "type": "array", "items": {"$ref": "#/definitions/pos"}},
     [[1, 2, 30], [0], [-5], []]),
    ({"enum": ["red", 1, None, {"a": [1]}, [True]]}, ["red", 1, None, {"a": [1]}, [True], "blue", [False]]),
    ({"const": {"k": "v", "n": [1, 2]}}, [{"k": "v", "n": [1, 2]}, {"k": "v"}]),
    ({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]}, ["ab", "abc", 5, 5.5]),
    ({"oneOf": [{"type": "string"}, {"type": "null"}]}, ["x", None, 1]),
    ({"type": ["string", "null"], "minLength": 2}, ["ab", "a", None, "é😀", 'q"\\\n']),
    ({"type": "integer", "minimum": -3, "exclusiveMaximum": 250}, [-4, -3, 0, 249, 250, 1000, 1.5]),
    ({"type": "number", "minimum": 0.5, "maximum": 2}, [0.5, 0.49, 2, 2.0001, 1.25, 0]),
    ({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string"}}, "required": ["b"]}]},
     [{"a": 1, "b": "x"}, {"a": 1}, {"b": "x"}]),
    ({"type": "object", "properties": {"a": {"type": "string", "nullable": True}}}, [{"a": None}, {"a": "s"}, {"a": 1}]),
    (True, [1, "x", None, {"a": [1, {"b": False}]}]),
    ({"type": "object", "properties": {"id": {"type": "integer"}},
      "patternProperties": {"^x-": {"type": "string"}, "n$": {"type": "string", "maxLength": 2}},
      "additionalProperties": {"type": "boolean"}},
     [{"id": 1, "x-a": "s", "b": True}, {"x-n": "ab"}, {"x-n": "abc"}, {"an": "s"}, {"an": 1}, {"q": True},
      {"q": "s"}, {"x-a": 1}, {"id": 1, "in": "s"}]),
    ({"type": "object", "properties": {"id": {"type": "integer"}}, "patternProperties": {"d": {"minimum": 0}},
      "additionalProperties": False}, [{"id": 1}, {"id": -1}, {"d": -1}, {"dd": 2}, {"x": 1}]),
    ({"type": "object", "propertyNames": {"pattern": "^[a-c]+$", "maxLength": 2}, "properties": {"abc": {}, "a": {}}},
     [{}, {"a": 1}, {"ab": 1}, {"abc": 1}, {"d": 1}, {"a": 1, "cc": 2}]),
    ({"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "minProperties": 2, "maxProperties": 3,
      "required": ["a"]}, [{"a": 1}, {"a": 1, "b": 2}, {"a": 1, "c": 1, "z": 1}, {"a": 1, "b": 1, "c": 1, "z": 1}, {}]),
    ({"type": "object", "maxProperties": 1}, [{}, {"a": 1}, {"a": 1, "b": 2}]),
    ({"type": "object", "minProperties": 2, "additionalProperties": {"type": "integer"}},
     [{}, {"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}]),
    ({"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a"], "dependentRequired": {"a": ["b"]}},
     [{"a": 1}, {"a": 1, "b": 2}, {"b": 1}]),
    ({"type": "string", "format": "not-a-standard-format"}, ["x", ""]),
    ({"properties": {"a": {}, "b": {}}, "not": {"required": ["a", "b"]}}, [{"a": 1}, {"a": 1, "b": 1}, {}, 1]),
    ({"properties": {"b": {}, "a": {}}, "dependentRequired": {"a": ["b"]}, "anyOf": [{"required": ["q"]}, {"required": ["b"]}]},
     [{"a": 1}, {"b": 1}, {"b": 1, "a": 1}, {}, 1, {"q": 2}, {"a": 1, "q": 2}, {"b": 1, "q": 2}]),
    ({"type": "object", "minProperties": 1, "properties": {"a": {}, "b": {}}, "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
      "additionalProperties": {"type": "integer"}}, [{"a": 1}, {"a": 1, "z": 2}, {"z": 1}, {"a": 1, "b": 2}, 3]),
    ({"type": "object", "properties": {"x": {"type": "object", "enum": ["A"]}, "y": {}}}, [{"y": 1}, {"x": "A"}, {}]),
    ({"type": "array", "prefixItems": [{"type": "integer"}, {"not": {}}]}, [[1], [1, 2], []]),
    ({"allOf": [{"enum": [{"a": 0}, {"a": 1}]}, {"not": {"enum": [{"a": 1}]}}]}, [{"a": 0}, {"a": 1}]),
    ({"not": {"enum": ["a", None, True]}}, ["a", "b", None, True, False, []]),
    ({"not": {"pattern": "^x"}}, ["a", "xa", "", 1]),
    ({"not": {"type": "string", "maxLength": 2}}, ["a", "xa", "abc", 1]),
    ({"allOf": [{"not": {"type": "null"}}, {"not": {"const": "q"}}]}, ["a", "q", None, 1]),
    ({"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 30}, [7, 14, 21, 28, 35, 15]),
    ({"type": "number", "multipleOf": 0.01}, [0.5, 0.125, 3, 1.0, 0.25]),
    ({"type": "number", "minimum": 0}, [1e-06, -1e-06, 0.0, -0.0, 1e300, 2.5, -2]),  # MaskBench o57716
    ({"type": "number", "exclusiveMaximum": 0}, [-1e-06, 0.0, -0.0, 1e-06, -3]),
    ({"$schema": "http://json-schema.org/draft-04/schema#", "type": "number", "multipleOf": 1, "minimum": 0},
     [6000.0, 6000.5, 3, -1.0]),  # MaskBench o46322: 6000.0 is a multiple of 1
    ({"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]},
                {"type": "object", "properties": {"kind": {"enum": ["b", "c"]}}, "required": ["kind"]}]},
     [{"kind": "a"}, {"kind": "b"}, {"kind": "d"}, {"kind": "a", "x": 1}]),
    ({"oneOf": [{"type": "integer", "maximum": 0}, {"type": "integer", "minimum": 1}]}, [0, 1, -5]),
    ({"oneOf": [{"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"}]}, ["a", "b", "c"]),
    ({"oneOf": [{"type": "string", "format": "date"}, {"enum": ["x", 5]}]}, ["x", "2020-01-01", 5, "y"]),
    ({"oneOf": [{"type": "object", "properties": {"a": {}}, "additionalProperties": False},
                {"type": "object", "required": ["b"]}]}, [{}, {"a": 1}, {"b": 1}]),
    ({"not": {"const": "a"}, "anyOf": [{"enum": ["a", "b"]}, {"type": "integer"}]}, ["a", "b", 1]),
    ({"not": {"required": ["x"]}, "anyOf": [{"enum": [{"x": 1}, {"y": 1}, 3]}, {"type": "integer"}]}, [{"x": 1}, {"y": 1}, 3]),
    ({"not": {"pattern": "^a"}, "anyOf": [{"enum": ["ab", "b"]}, {"type": "integer"}]}, ["ab", "b", 1]),
    ({"enum": [f"v{i}" for i in range(40)] + [None]}, ["v0", "v39", "v40", None, "v"]),
    ({"type": "string", "oneOf": [{"pattern": "^[0-9a-f]{2}$"}, {"pattern": "^[0-9A-F]{2}$"}]}, ["ab", "AB", "00", "aB"]),
    ({"type": "string", "oneOf": [{"format": "date"}, {"enum": ["2020-01-01", "x"]}]}, ["2020-01-01", "x", "2021-01-01"]),
    ({"oneOf": [{"required": ["a"], "properties": {"a": {"const": 1}}}, {"required": ["a"], "properties": {"a": {"const": 2}}}]},
     [{"a": 1}, {"a": 2}, {"a": 3}, 5, "s"]),
    ({"oneOf": [{"type": "string"}, {"minLength": 2}]}, ["a", "ab", 1, None]),
    ({"oneOf": [{"type": "boolean"}, {"type": ["boolean", "null"]}]}, [True, None, 1]),
    ({"type": "string", "minLength": 290, "maxLength": 300}, ["a" * 289, "a" * 290, "é\n" * 150, "a" * 301, "\"" * 300]),
    ({"type": "string", "maxLength": 5000}, ["", "ab" * 2500, "x" * 5001, "😀" * 4999 + "\\"]),
    ({"type": "string", "minLength": 2000}, ["a" * 1999, "a" * 2000, "a\t" * 3000]),
    # chunked long strings (Emitter.chunked_string: 4 chunks of 125): lengths at the chunk ends, escapes
    # and multi-byte characters across them, and a minLength carried by the first chunk
    ({"type": "string", "maxLength": 500}, ["", "a" * 124 + "\n", "é" * 125 + "\"", "a" * 249 + "😀", "\\" * 250,
                                            "a" * 375 + "\u0001", "b" * 500, "b" * 499 + "\n\n", "😀" * 501]),
    ({"type": "string", "minLength": 3, "maxLength": 1024}, ["", "ab", "a\n", "abc", "x" * 128, "x" * 1024,
                                                             "x" * 1025]),
    ({"allOf": [{"properties": {"a": {"type": "integer"}}, "additionalProperties": False}, {"properties": {"b": {}}}]},
     [{"a": 1}, {"b": 1}, {}, {"a": "x"}]),
    ({"allOf": [{"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
                {"properties": {"b": {"minLength": 2}}, "required": ["b"]}]},
     [{"b": "xx"}, {"b": "x"}, {"a": 1, "b": "xy"}, {"a": 1}, {"b": "xx", "c": "s"}, {"b": "xx", "c": 1}]),
    ({"allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"anyOf": [{"minimum": 3}, {"maxLength": 2}]}]},
     [1, 5, "ab", "abc", None]),
    ({"allOf": [{"x-foo": 1, "type": "integer"}, {"x-foo": 2, "minimum": 0}]}, [1, -1]),
    ({"properties": {"a": {}, "b": {}, "c": {}}, "if": {"required": ["a"]}, "then": {"required": ["b"]},
      "else": {"required": ["c"]}}, [{"a": 1}, {"a": 1, "b": 1}, {"c": 1}, {}, {"b": 2}, 5]),
    ({"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"a": {}, "b": {}},
      "dependencies": {"a": {"required": ["b"]}, "b": ["a"]}}, [{"a": 1}, {"a": 1, "b": 1}, {"b": 1}, {}]),
    ({"if": {"type": "string"}}, ["x", 1]),
    ({"enum": [0, 1.5, -2, "a"]}, [0, 0.0, -0.0, 1.5, -2, -2.0, False, 1, "a"]),
    ({"const": [1, {"a": 0}]}, [[1, {"a": 0}], [1.0, {"a": 0.0}], [True, {"a": 0}]]),
    ({"patternProperties": {"[0-9]{2,}": {"type": "boolean"}, "X_": {"type": "string"}}},
     [{"answer 1": "42"}, {"a_x_3": 3}, {"12": True}, {"X_": "s"}, {"X_12": "s"}, {"12": 1}]),
    ({"type": "array", "uniqueItems": True, "maxItems": 1}, [[], [1], [1, 1]]),
    ({"type": "array", "uniqueItems": True, "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
     [["a", 1], ["a"], [1, 1]]),
]


def test_multiple_of_is_decimal_exact(compiler: GrammarCompiler) -> None:
    """0.07 is a multiple of 0.01 (the spec's mathematical division); jsonschema's float division
    (0.07 / 0.01 = 7.000000000000001) says otherwise, so this case is checked on its own."""
    cg = compiler.compile_json_schema({"type": "number", "multipleOf": 0.01})
    assert _accepts(cg, 0.07) and _accepts(cg, 1.1) and not _accepts(cg, 0.071)


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    return GrammarCompiler(TokenizerInfo.from_tokenizer_json(LLAMA3))


def _accepts(cg, instance) -> bool:
    m = GrammarMatcher(cg)
    return m.accept_string(json.dumps(instance, ensure_ascii=False)) and m.is_accepting()


def _validator(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize("schema, instances", CASES)
def test_instances_agree_with_jsonschema(compiler: GrammarCompiler, schema, instances) -> None:
    cg = compiler.compile_json_schema(schema)
    v = _validator(schema)
    for inst in instances:
        assert _accepts(cg, inst) == v.is_valid(inst), inst


def test_unsupported_keyword_names_keyword_and_pointer(compiler: GrammarCompiler) -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}
    with pytest.raises(UnsupportedFeature) as e:
        compiler.compile_json_schema(schema)
    assert e.value.keyword == "uniqueItems"
    assert e.value.json_pointer == "#/properties/tags/uniqueItems"


def test_lenient_mode_records_relaxations(compiler: GrammarCompiler) -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    cg = compiler.compile_json_schema(schema, strict=False)
    assert [(r.keyword, r.pointer, r.direction) for r in cg.relaxations] == [("uniqueItems", "#/uniqueItems", "more")]
    assert _accepts(cg, [1, 1])  # the relaxation is visible: duplicates are not excluded


def test_unknown_keywords_are_annotations(compiler: GrammarCompiler) -> None:
    cg = compiler.compile_json_schema({"type": "string", "x-vendor": 1, "readonly": True, "_format": "weird"})
    assert _accepts(cg, "s")


def _nested(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    "schema, error",
    [
        ({"type": "wat"}, SchemaError),
        ({"$ref": "#/definitions/missing"}, SchemaError),
        ({"$ref": "https://example.com/remote.json"}, UnsupportedFeature),
        ("{not json", SchemaError),
        (False, UnsupportedFeature),
        ({"type": "integer", "minimum": 5, "maximum": 1}, UnsupportedFeature),
        (_nested(5000), LimitExceeded),
        ({"type": "array", "items": {"type": "integer"}, "maxItems": 100_000}, UnsupportedFeature),
    ],
)
def test_bad_schemas_fail_clearly(compiler: GrammarCompiler, schema, error) -> None:
    with pytest.raises(error):
        compiler.compile_json_schema(schema)


def test_schema_from_text_and_file(compiler: GrammarCompiler, tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"type": "boolean"}')
    assert _accepts(compiler.compile_json_schema(str(path)), True)
    assert _accepts(compiler.compile_json_schema('{"type": "null"}'), None)


def test_flexible_whitespace_accepts_every_json_layout_within_the_run_bound(compiler: GrammarCompiler) -> None:
    """whitespace="flexible": json.dumps with any indent/separators fits; nothing before or after the
    value; runs longer than max_whitespace are rejected (a model cannot loop on newlines)."""
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}},
                                               "b": {"enum": [{"x": [1, 2]}, None]}, "c": {}},
              "required": ["a"], "additionalProperties": {"type": "string"}}
    cg = compiler.compile_json_schema(schema, whitespace="flexible", max_whitespace=8)
    inst = {"a": [1, 2], "b": {"x": [1, 2]}, "c": {"q": [1, {"r": None}]}, "z": "s"}
    for text in (json.dumps(inst), json.dumps(inst, indent=1), json.dumps(inst, separators=(",", ":")),
                 json.dumps(inst, indent="\t").replace(":", " :"), '{"a" :[ 1 ,2 ] }'):
        m = GrammarMatcher(cg)
        assert m.accept_string(text) and m.is_accepting(), text
    for text in (" " + json.dumps(inst), json.dumps(inst) + "\n", '{"a": [1,' + " " * 9 + "2]}", '{"a": [1, "x"]}'):
        m = GrammarMatcher(cg)
        assert not (m.accept_string(text) and m.is_accepting()), text


def test_any_property_order_agrees_with_jsonschema_on_every_permutation(compiler: GrammarCompiler) -> None:
    """property_order="any": members (declared and additional) in any order, with counts and dependencies."""
    import itertools

    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {}},
              "required": ["a"], "maxProperties": 3, "additionalProperties": {"type": "boolean"},
              "dependentRequired": {"c": ["b"]}}
    cg = compiler.compile_json_schema(schema, property_order="any")
    v = _validator(schema)
    items = [("a", 1), ("b", "x"), ("c", None), ("z", True), ("y", False), ("a", "s")]
    for r in range(5):
        for combo in itertools.permutations(items, r):
            if len({k for k, _ in combo}) == len(combo):
                assert _accepts(cg, dict(combo)) == v.is_valid(dict(combo)), combo


def test_pydantic_model_class_is_a_schema(compiler: GrammarCompiler) -> None:
    """A pydantic model class compiles through its model_json_schema(); its dumped instances fit."""
    from typing import Literal, Optional

    from pydantic import BaseModel, Field

    class Pet(BaseModel):
        kind: Literal["cat", "dog"]
        name: str = Field(min_length=1, max_length=20)

    class Owner(BaseModel):
        id: int = Field(ge=1)
        pets: list[Pet]
        note: Optional[str] = None

    cg = compiler.compile_json_schema(Owner)
    good = Owner(id=3, pets=[Pet(kind="cat", name="Tom")], note=None)
    assert _accepts(cg, json.loads(good.model_dump_json()))
    assert not _accepts(cg, {"id": 0, "pets": []})
    assert not _accepts(cg, {"id": 1, "pets": [{"kind": "cow", "name": "x"}]})


def test_compact_separators_are_configurable(compiler: GrammarCompiler) -> None:
    cg = compiler.compile_json_schema({"type": "object", "properties": {"a": {"type": "array", "items": {}}}},
                                      separators=(",", ":"))
    m = GrammarMatcher(cg)
    assert m.accept_string(json.dumps({"a": [1, {"b": 2}]}, separators=(",", ":"))) and m.is_accepting()
    assert not GrammarMatcher(cg).accept_string('{"a": [1]}')
    with pytest.raises(ValueError):
        compiler.compile_json_schema({"type": "object"}, separators=(";", ":"))
