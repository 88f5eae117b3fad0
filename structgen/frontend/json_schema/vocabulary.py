"""JSON Schema's vocabulary as the compiler reads it: keyword sets, the JSON lexeme regexes, the
internal keys merging adds, and small predicates and rewrites over schema dicts and property names."""

from __future__ import annotations

import json
import re
from typing import Any

from ..ir import presence_holds

# keywords that only annotate: they never change which instances are valid
ANNOTATIONS = {
    "$schema", "$id", "$comment", "$anchor", "$dynamicAnchor", "$vocabulary", "title", "description",
    "default", "examples", "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType",
    "contentSchema", "$defs", "definitions", "discriminator", "xml", "externalDocs", "example", "id",
    "nullable",  # OpenAPI's, not JSON Schema's: validators ignore it, so honoring it would accept invalid data
}
WS_TERMINAL = "JSON_WS"
JSON_STRING = r'"([^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'  # as in grammars/json.lark
JSON_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
JSON_INTEGER = r"-?(0|[1-9][0-9]*)"
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
# keywords that constrain instances (2020-12 and draft-07 validation/applicator vocabularies)
KEYWORDS = {
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "format", "maxItems", "minItems", "uniqueItems", "maxContains",
    "minContains", "contains", "items", "prefixItems", "additionalItems", "unevaluatedItems", "maxProperties",
    "minProperties", "required", "dependentRequired", "dependencies", "properties", "patternProperties",
    "additionalProperties", "unevaluatedProperties", "propertyNames", "dependentSchemas", "allOf", "anyOf",
    "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef",
}
PRESENCE = "__presence__"  # internal keys: predicates over which properties an object has,
NOT_VALUES = "__not_values__"  # scalar values `not` excludes,
NOT_STRINGS = "__not_strings__"  # and groups of string regexes a string must not all match


def _pred_names(p: tuple) -> list[str]:
    if p[0] == "dep":
        return [p[1], *p[2]]
    if p[0] == "if":
        return [*p[1], *p[2], *p[3]]
    if p[0] == "not":
        return list(p[1])
    return [n for branch in p[1] for n in branch]


def _internal_ok(s: dict, v: Any) -> bool:
    """Whether value v meets the constraints merging moved into internal keys (jsonschema ignores them)."""
    if any(v == x and type(v) is type(x) for x in s.get(NOT_VALUES, [])):
        return False
    if isinstance(v, str) and any(all(re.fullmatch(p, v) for p in group) for group in s.get(NOT_STRINGS, [])):
        return False
    if isinstance(v, dict):
        return all(presence_holds(p, lambda n: n in v) for p in s.get(PRESENCE, []))
    return not (s.get(PRESENCE) and any(p[0] == "not" or (p[0] == "oneOf" and len(p[1]) > 1)
                                         for p in s[PRESENCE]))


TYPE_KEYWORDS = {
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "string": {"minLength", "maxLength", "pattern", "format", NOT_STRINGS},
    "array": {"items", "prefixItems", "additionalItems", "contains", "minItems", "maxItems", "uniqueItems",
              "minContains", "maxContains", "unevaluatedItems"},
    "object": {"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
               "minProperties", "maxProperties", "dependentRequired", "dependencies", "dependentSchemas",
               "unevaluatedProperties", PRESENCE},
    "null": set(), "boolean": set(),
}
ANY_TYPE_KEYWORDS = {"enum", "const", "not", "allOf", "anyOf", "oneOf", "$ref", "if", "$dynamicRef", "$recursiveRef",
                     NOT_VALUES}


def _string_only(s: dict) -> bool:
    """Whether s constrains strings with nothing but string_patterns' keywords (and may allow other types)."""
    return all(k in ANNOTATIONS or k == "type" or k in TYPE_KEYWORDS["string"] or
               any(k in TYPE_KEYWORDS[t] for t in ("number", "array", "object")) for k in s)


def _type_set(s: dict) -> set[str]:
    """The JSON types a schema allows ("integer" folded into "number")."""
    t = s.get("type", list(TYPES))
    t = {t} if isinstance(t, str) else set(t)
    return {"number" if x == "integer" else x for x in t}


def _ptr_escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _literal(key: str) -> bytes:
    """The JSON string literal of a key, as written (json.dumps without ASCII escapes)."""
    return json_str(key).encode("utf-8", "surrogatepass")


# json.dumps(s, ensure_ascii=False) of a str, without building an encoder per call (~3 us of a
# member's emission): the function json's encoder itself calls for it
json_str = json.encoder.encode_basestring
# json.dumps(x, sort_keys=True, default=str): the key identical subschemas share (an encoder
# made once, not per call)
canonical = json.JSONEncoder(sort_keys=True, default=str).encode


_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalItems", "additionalProperties", "propertyNames", "contains", "not", "if", "then",
               "else", "unevaluatedItems", "unevaluatedProperties")


_ascii_str = json.encoder.encode_basestring_ascii  # how `canonical` writes a string


class SchemaTexts:
    """canonical(_without_annotations(s)) of the subschemas of one compile, each text built once
    from its parts' (the emitter keys every subschema by it, and dumping each one whole was
    O(size x depth): ~8% of the emitter in the slowest tenth of MaskBench compiles)."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[dict, str]] = {}  # id -> (the dict, kept so its id stays its own; its text)

    def __call__(self, s: Any) -> str:
        if not isinstance(s, dict):
            return canonical(s)
        got = self._memo.get(id(s))
        if got is not None and got[0] is s:
            return got[1]
        if not all(isinstance(k, str) for k in s):  # json's own rules for other keys
            return canonical(_without_annotations(s))
        parts = []
        for k in sorted(s):
            if k in ANNOTATIONS:
                continue
            v = s[k]
            holds = _holds(k, v)
            if holds == "map":
                if all(isinstance(n, str) for n in v):
                    t = "{" + ", ".join(f"{_ascii_str(n)}: {self(v[n])}" for n in sorted(v)) + "}"
                else:
                    t = canonical({n: _without_annotations(x) for n, x in v.items()})
            elif holds == "list":
                t = "[" + ", ".join(self(x) for x in v) + "]"
            elif holds == "one":
                t = self(v)
            else:
                t = canonical(v)
            parts.append(f"{_ascii_str(k)}: {t}")
        text = "{" + ", ".join(parts) + "}"
        self._memo[id(s)] = (s, text)
        return text


def _holds(k: str, v: Any) -> str | None:
    """What keyword k's value v holds: "map" (names to schemas), "list" (schemas), "one" (a schema),
    or None (a value that is no schema)."""
    if k in _SCHEMA_MAPS and isinstance(v, dict):
        return "map"
    if (k in _SCHEMA_LISTS or k == "items") and isinstance(v, list):
        return "list"
    return "one" if k in _SCHEMA_ONE else None


def _without_annotations(s: Any) -> Any:
    """A schema without its annotations (title, description, ...) at every schema position: what
    its language depends on, so that schemas differing only in prose share one rule (two rules for
    one language collide in the LR tables wherever both are possible)."""
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in ANNOTATIONS:
            continue
        holds = _holds(k, v)
        if holds == "map":
            v = {name: _without_annotations(x) for name, x in v.items()}
        elif holds == "list":
            v = [_without_annotations(x) for x in v]
        elif holds == "one":
            v = _without_annotations(v)
        out[k] = v
    return out
