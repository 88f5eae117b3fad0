"""JSON Schema → Lark grammar (plus ready byte DFAs for constrained strings).

Each schema node becomes one rule, named after its JSON pointer. The output language is a subset
of the schema's instances written in one serialization style (declared property order, the
chosen separators) — every word is a valid instance. Keywords that cannot be expressed raise
UnsupportedFeature with their pointer; with `strict=False` they are relaxed instead and each
relaxation is recorded with its direction. Debug: `python -m structgen.frontend.json_schema FILE`.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from ..automata.fsm import (ANY_CHAR, ByteDFA, char_fsm, difference, fsm_json_string_dfa, intersect,
                            json_string_body_dfa, json_string_dfa, literals_dfa, regex_dfa)
from ..errors import LimitExceeded, RegexError, SchemaError, StructgenError, UnsupportedFeature

# keywords that only annotate: they never change which instances are valid
ANNOTATIONS = {
    "$schema", "$id", "$comment", "$anchor", "$dynamicAnchor", "$vocabulary", "title", "description",
    "default", "examples", "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType",
    "contentSchema", "$defs", "definitions", "discriminator", "xml", "externalDocs", "example", "id",
    "nullable",  # OpenAPI's, not JSON Schema's: validators ignore it, so honoring it would accept invalid data
}
WHITESPACE_STYLES = ("compact", "flexible")
WS_TERMINAL = "JSON_WS"
DEFAULT_MAX_WHITESPACE = 16
JSON_STRING = r'"([^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'  # as in grammars/json.lark
JSON_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
JSON_INTEGER = r"-?(0|[1-9][0-9]*)"
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
MAX_RULES = 20_000
MAX_ARRAY_UNROLL = 1024
MAX_UNORDERED = 10  # property_order="any" needs a rule per subset of the properties  # Lark's LALR construction time grows with the rule count
MAX_LENGTH_BOUND = 1024  # a length-counting string DFA has ~14 states per character
LONG_STRING = 256  # strings with only length bounds above this are split into block lexemes
# keywords that constrain instances (2020-12 and draft-07 validation/applicator vocabularies)
KEYWORDS = {
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "format", "maxItems", "minItems", "uniqueItems", "maxContains",
    "minContains", "contains", "items", "prefixItems", "additionalItems", "unevaluatedItems", "maxProperties",
    "minProperties", "required", "dependentRequired", "dependencies", "properties", "patternProperties",
    "additionalProperties", "unevaluatedProperties", "propertyNames", "dependentSchemas", "allOf", "anyOf",
    "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef",
}


@dataclass(frozen=True)
class Relaxation:
    """A keyword compiled inexactly in lenient mode: the grammar accepts `direction` than the schema."""

    keyword: str
    pointer: str
    direction: str  # "more" or "less"
    detail: str = ""


@dataclass
class SchemaGrammar:
    """The compiled form of a schema: Lark text, DFAs for terminals the text only names, relaxations."""

    lark: str
    terminal_dfas: dict[str, ByteDFA] = field(default_factory=dict)
    relaxations: list[Relaxation] = field(default_factory=list)


def load_schema(schema: Any) -> Any:
    """A schema given as dict/bool, JSON text, a file path, or a pydantic model class."""
    if isinstance(schema, (dict, bool)):
        return schema
    if hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    if isinstance(schema, str):
        text = schema.strip()
        if not text.startswith(("{", "t", "f")):
            try:
                with open(schema, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise SchemaError(f"cannot read schema file {schema!r}: {e}") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise SchemaError(f"schema is not valid JSON: {e}") from None
        except RecursionError:
            raise LimitExceeded("the schema is nested too deeply to read") from None
    raise SchemaError(f"unsupported schema input of type {type(schema).__name__}")


def schema_to_grammar(schema: Any, *, whitespace: str = "compact", strict: bool = True,
                      max_whitespace: int = DEFAULT_MAX_WHITESPACE, property_order: str = "declared",
                      separators: tuple[str, str] = (", ", ": ")) -> SchemaGrammar:
    """Compile a JSON Schema to a grammar. `compact` writes one line with the given (item, key)
    `separators` (default json.dumps' ", " and ": "); `flexible` allows a run of 1..max_whitespace JSON whitespace characters between
    any two lexemes (none before the value or after it), so `json.dumps(x, indent=2)` fits too.
    `property_order`: "declared" (schema order, then additional properties) or "any"."""
    if property_order not in ("declared", "any"):
        raise ValueError(f"property_order must be 'declared' or 'any', not {property_order!r}")
    if whitespace not in WHITESPACE_STYLES:
        raise ValueError(f"whitespace {whitespace!r} is not supported; supported: {WHITESPACE_STYLES}")
    if max_whitespace < 1:
        raise ValueError("max_whitespace must be at least 1")
    if len(separators) != 2 or any(x.strip(" \t\n\r") != mark for x, mark in zip(separators, ",:")):
        raise ValueError(f"separators must be (item, key) like (', ', ': '), got {separators!r}")
    try:
        conv = _Converter(load_schema(schema), strict, max_whitespace if whitespace == "flexible" else None,
                          property_order == "any")
        conv.separators = {", ": separators[0], ": ": separators[1]}
        return conv.run()
    except RecursionError:
        raise LimitExceeded("the schema is nested too deeply to compile") from None


PRESENCE = "__presence__"  # internal keys: predicates over which properties an object has,
NOT_VALUES = "__not_values__"  # scalar values `not` excludes,
NOT_STRINGS = "__not_strings__"  # and groups of string regexes a string must not all match


class NoValue(UnsupportedFeature):
    """A (sub)schema no JSON value satisfies: an optional property or an anyOf branch can be
    dropped; anywhere else this is an error."""


def _pred_names(p: tuple) -> list[str]:
    if p[0] == "dep":
        return [p[1], *p[2]]
    if p[0] == "if":
        return [*p[1], *p[2], *p[3]]
    if p[0] == "not":
        return list(p[1])
    return [n for branch in p[1] for n in branch]


def _pred_eval(p: tuple, present) -> bool:
    if p[0] == "dep":
        return not present(p[1]) or all(present(n) for n in p[2])
    if p[0] == "if":
        return all(present(n) for n in (p[2] if all(present(n) for n in p[1]) else p[3]))
    if p[0] == "not":
        return not all(present(n) for n in p[1])
    hits = sum(all(present(n) for n in branch) for branch in p[1])
    return hits >= 1 if p[0] == "anyOf" else hits == 1


def _internal_ok(s: dict, v: Any) -> bool:
    """Whether value v meets the constraints merging moved into internal keys (jsonschema ignores them)."""
    if any(v == x and type(v) is type(x) for x in s.get(NOT_VALUES, [])):
        return False
    if isinstance(v, str) and any(all(re.fullmatch(p, v) for p in group) for group in s.get(NOT_STRINGS, [])):
        return False
    if isinstance(v, dict):
        return all(_pred_eval(p, lambda n: n in v) for p in s.get(PRESENCE, []))
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


def _accepts_all_of(s: Any, t: str) -> bool:
    """Whether schema s surely accepts every value of type t ("number" includes the integers)."""
    if s is True or s == {}:
        return True
    if not isinstance(s, dict):
        return False
    types = s.get("type", list(TYPES))
    types = [types] if isinstance(types, str) else types
    return t in types and not any(k in s for k in TYPE_KEYWORDS[t] | ANY_TYPE_KEYWORDS)


def _string_only(s: dict) -> bool:
    """Whether s constrains strings with nothing but string_patterns' keywords (and may allow other types)."""
    return all(k in ANNOTATIONS or k == "type" or k in TYPE_KEYWORDS["string"] or
               any(k in TYPE_KEYWORDS[t] for t in ("number", "array", "object")) for k in s)


def _type_set(s: dict) -> set[str]:
    """The JSON types a schema allows ("integer" folded into "number")."""
    t = s.get("type", list(TYPES))
    t = {t} if isinstance(t, str) else set(t)
    return {"number" if x == "integer" else x for x in t}


def _ranges_disjoint(a: dict, b: dict) -> bool:
    """Whether two schemas' numeric bounds leave no common number (draft-06+ style bounds)."""
    def bounds(s: dict):
        lo = [(s[k], k == "exclusiveMinimum") for k in ("minimum", "exclusiveMinimum")
              if isinstance(s.get(k), (int, float)) and not isinstance(s.get(k), bool)]
        hi = [(s[k], k == "exclusiveMaximum") for k in ("maximum", "exclusiveMaximum")
              if isinstance(s.get(k), (int, float)) and not isinstance(s.get(k), bool)]
        return max(lo, default=None), min(hi, default=None, key=lambda x: (x[0], not x[1]))
    (alo, _), (blo, _) = bounds(a), bounds(b)
    _, ahi = bounds(a)
    _, bhi = bounds(b)
    for lo, hi in ((alo, bhi), (blo, ahi)):
        if lo is not None and hi is not None and (lo[0] > hi[0] or (lo[0] == hi[0] and (lo[1] or hi[1]))):
            return True
    return False


def _ptr_escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _lark_literal(text: str) -> str:
    return json.dumps(text)  # Lark string literals take JSON/Python escapes


class _Converter:
    def __init__(self, root: Any, strict: bool, max_whitespace: int | None = None, any_order: bool = False) -> None:
        self.any_order = any_order
        self.separators = {", ": ", ", ": ": ": "}
        self.root = root
        self.strict = strict
        self.max_whitespace = max_whitespace
        self.ws = "" if max_whitespace is None else f" {WS_TERMINAL}?"  # optional whitespace after a lexeme
        self.rules: dict[str, str] = {}
        self.terminals: dict[str, str] = {}
        self.dfas: dict[str, ByteDFA] = {}
        self.terminal_names: dict[tuple, str] = {}
        self.relaxations: list[Relaxation] = []
        self.memo: dict[str, str] = {}  # pointer -> rule name
        self.ids: dict[str, Any] = {}  # absolute $id / anchor URI -> schema node
        self.node_base: dict[int, str] = {}
        draft = root.get("$schema", "") if isinstance(root, dict) else ""
        self.legacy_ref = any(d in str(draft) for d in ("draft-07", "draft-06", "draft-04", "draft-03"))
        self._index(root, "", "")
        self.n = 0
        self._root_validator = None

    # --- output ------------------------------------------------------------------------

    def run(self) -> SchemaGrammar:
        top = self.schema(self.root, "#", self._base(self.root, ""))
        self.rules["start"] = top
        lines = [f"{name}: {body}" for name, body in self.rules.items()]
        lines += [f"{name}: {pat}" for name, pat in self.terminals.items()]
        if self.ws:
            lines.append(f"{WS_TERMINAL}: /[ \\t\\n\\r]{{1,{self.max_whitespace}}}/")
        return SchemaGrammar("\n".join(lines) + "\n", self.dfas, self.relaxations)

    def sep(self, text: str) -> str:
        """A separator (", " or ": "): exact in compact style; in flexible style optional
        whitespace may precede ":" and follow ":" or "," (the whitespace after a value is `self.ws`)."""
        if not self.ws:
            return _lark_literal(self.separators.get(text, text))
        mark = _lark_literal(text.strip())
        return f"{WS_TERMINAL}? {mark}{self.ws}" if mark == '":"' else f"{mark}{self.ws}"

    def open_close(self, text: str) -> str:
        """A bracket; in flexible style whitespace may follow an opening one."""
        return _lark_literal(text) + (self.ws if text in "{[" else "")

    def new_rule(self, hint: str, body: str) -> str:
        if len(self.rules) >= MAX_RULES:
            raise LimitExceeded(f"the schema needs more than {MAX_RULES} grammar rules")
        self.n += 1
        name = f"r{self.n}_{re.sub('[^a-z0-9]', '', hint.lower())[:20]}"
        self.rules[name] = body
        return name

    def terminal(self, hint: str, pattern: str | None = None, dfa: ByteDFA | None = None) -> str:
        """A terminal for a regex or a ready DFA; the same language (same cached DFA or regex) gets
        the same terminal, so the lexer builds one DFA per distinct set of terminals, not per use."""
        key = ("dfa", id(dfa)) if dfa is not None else ("re", pattern)
        if key in self.terminal_names:
            return self.terminal_names[key]
        self.terminal_names[key] = name = self._new_terminal(hint, pattern, dfa)
        return name

    def _new_terminal(self, hint: str, pattern: str | None, dfa: ByteDFA | None) -> str:
        self.n += 1
        name = f"T{self.n}_{re.sub('[^A-Z0-9]', '', hint.upper())[:20]}"
        if dfa is not None:
            self.dfas[name] = dfa
            pattern = f"/\\x00{name}\\x00/"  # placeholder; the DFA is what counts
        self.terminals[name] = f"/{pattern}/" if not pattern.startswith("/") else pattern
        return name

    def unsupported(self, keyword: str, ptr: str, detail: str, direction: str = "more") -> None:
        if self.strict:
            raise UnsupportedFeature(keyword, ptr, detail)
        self.relaxations.append(Relaxation(keyword, ptr, direction, detail))

    # --- $id / $ref -----------------------------------------------------------------------

    def _base(self, node: Any, base: str) -> str:
        if isinstance(node, dict) and "$ref" in node and getattr(self, "legacy_ref", False):
            return base
        if isinstance(node, dict) and isinstance(node.get("$id"), str) and not node["$id"].startswith("#"):
            return urljoin(base, node["$id"])
        return base

    def _index(self, node: Any, base: str, ptr: str) -> None:
        if isinstance(node, dict):
            base = self._base(node, base)
            if isinstance(node.get("$id"), str):
                self.ids.setdefault(urldefrag(base)[0], node)
            for key in ("$anchor", "$dynamicAnchor"):
                if isinstance(node.get(key), str):
                    self.ids[f"{urldefrag(base)[0]}#{node[key]}"] = node
            if isinstance(node.get("$id"), str) and node["$id"].startswith("#"):  # draft-07 anchors
                self.ids[f"{urldefrag(base)[0]}{node['$id']}"] = node
            self.node_base[id(node)] = base
            for k, v in node.items():
                if k not in ("enum", "const", "default", "examples", "example"):
                    self._index(v, base, f"{ptr}/{_ptr_escape(k)}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self._index(v, base, f"{ptr}/{i}")

    def resolve(self, ref: str, base: str, ptr: str) -> tuple[Any, str, str]:
        """(target schema, its pointer for naming, its base URI)."""
        full = urljoin(base, ref)
        doc_uri, frag = urldefrag(full)
        if frag and not frag.startswith("/"):
            target = self.ids.get(f"{doc_uri}#{frag}")
            if target is None:
                raise SchemaError(f"unresolvable $ref {ref!r}", ptr)
            return target, f"{doc_uri}#{frag}", self.node_base.get(id(target), doc_uri)
        doc = self.root if doc_uri in ("", urldefrag(self._base(self.root, ""))[0]) else self.ids.get(doc_uri)
        if doc is None:
            raise UnsupportedFeature("$ref", ptr, f"remote reference {ref!r} (only references inside the schema)")
        node = doc
        for part in frag.split("/")[1:] if frag else []:
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise SchemaError(f"unresolvable $ref {ref!r}", ptr)
        return node, f"{doc_uri}#{frag}", self.node_base.get(id(node), doc_uri)

    # --- schemas --------------------------------------------------------------------------

    def schema(self, s: Any, ptr: str, base: str) -> str:
        """Rule name (or inline expression) for the values valid under schema `s`."""
        if s is True or s == {}:
            return self.any_value()
        if s is False:
            raise NoValue("false", ptr, "a schema that accepts no value")
        if not isinstance(s, dict):
            raise SchemaError(f"a schema must be an object or a boolean, got {type(s).__name__}", ptr)
        if "$ref" in s and self.legacy_ref:  # draft-07 and earlier: siblings of $ref are ignored
            s = {"$ref": s["$ref"]}
        base = self._base(s, base)
        # identical subschemas (same text, same base URI) share one rule: two rules deriving the same
        # text would collide in the LR tables where both are possible (anyOf branches)
        key = f"{base}|{json.dumps(s, sort_keys=True, default=str)}" if "$ref" not in s else None
        if key and key in self.memo:
            return self.memo[key]
        if "$ref" in s:
            target, tptr, tbase = self.resolve(s["$ref"], base, ptr)
            siblings = {k: v for k, v in s.items() if k not in ANNOTATIONS and k != "$ref"}
            if siblings:
                return self.schema(self.merge_all([target, siblings], ptr), ptr, base)
            tkey = f"ref|{tptr}"
            if tkey not in self.memo:
                name = self.new_rule("ref", "")
                self.memo[tkey] = name  # recursion goes through the name
                try:
                    self.rules[name] = self.schema(target, tptr, tbase)
                except NoValue:
                    del self.rules[name], self.memo[tkey]
                    raise
            return self.memo[tkey]
        name = self.new_rule(ptr.split("/")[-1] or "root", "")
        self.memo[key] = name
        try:
            self.rules[name] = self.body(s, ptr, base)
        except NoValue:
            del self.rules[name], self.memo[key]
            raise
        return name

    def body(self, s: dict, ptr: str, base: str) -> str:
        # keywords outside the vocabulary are annotations by the spec: ignored, like "title"
        values = self.finite_values(s, ptr)
        if values is not None:  # a finite language: keep the values the whole schema accepts
            rest = {k: v for k, v in s.items() if k not in ("enum", "const")} if ("enum" in s or "const" in s) else s
            check = self.validator(rest, ptr).is_valid if any(k in KEYWORDS for k in rest) else (lambda v: True)
            try:
                kept = {json.dumps(v, sort_keys=True): v for v in values if check(v) and _internal_ok(s, v)}
            except Exception as e:  # e.g. a ref or pattern jsonschema cannot handle
                raise UnsupportedFeature("enum", ptr, f"cannot evaluate the schema on its values: {e}") from None
            if not kept:
                raise NoValue("enum" if "enum" in s else "const", ptr, "no value satisfies the schema")
            strings = [v for v in kept.values() if isinstance(v, str)]
            alts = [self.literal_value(v) for v in kept.values() if not isinstance(v, str) or len(strings) <= 8]
            if len(strings) > 8:  # one terminal (a trie DFA) instead of a terminal per value
                words = [json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass") for v in strings]
                alts.append(self.terminal("enum", dfa=literals_dfa(words)))
            return " | ".join(alts)
        if "allOf" in s:
            parts = [{k: v for k, v in s.items() if k != "allOf"}] + list(s["allOf"])
            return self.schema(self.merge_all(parts, ptr), ptr + "/allOf", base)
        s = self.negation(self.presence(s), ptr)
        for k in ("not", "if", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems", "contains",
                  "$dynamicRef", "$recursiveRef"):
            if k in s and not (k == "if" and "then" not in s and "else" not in s):  # a lone `if` has no effect
                self.unsupported(k, f"{ptr}/{k}", "not expressible yet", "more")
        for k in ("anyOf", "oneOf"):
            if k in s:
                rest = {kk: v for kk, v in s.items() if kk != k}
                if k == "anyOf" and any(b is True or b == {} for b in s[k]):
                    return self.schema(rest or True, ptr + "/anyOf", base)  # one branch accepts everything
                branches, schemas = [], []
                seen_branches: set[str] = set()
                subs = self.exclusive([self.merge_all([rest, b], ptr) for b in s[k]], ptr) if k == "oneOf" else s[k]
                rest = {} if k == "oneOf" else rest
                for i, sub in enumerate(subs):
                    if sub is None:
                        continue
                    canon = json.dumps(sub, sort_keys=True)
                    if k == "anyOf" and canon in seen_branches:  # identical branches would collide in LR
                        continue
                    seen_branches.add(canon)
                    merged = self.merge_all([rest, sub], ptr) if any(kk not in ANNOTATIONS for kk in rest) else sub
                    try:
                        branches.append(self.schema(merged, f"{ptr}/{k}/{i}", base))
                        schemas.append(merged)
                    except NoValue:
                        continue  # a branch no value satisfies adds nothing (and cannot overlap in oneOf)
                if not branches:
                    raise NoValue(k, ptr + "/" + k, "no branch can be satisfied")
                return " | ".join(dict.fromkeys(branches))
        types = s.get("type", list(TYPES))
        types = [types] if isinstance(types, str) else list(types)
        if "integer" in types and "number" in types:
            types.remove("integer")
        excluded = s.get(NOT_VALUES, [])
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in excluded):
            self.unsupported("not", ptr + "/not", "excluding numbers is not expressible yet", "more")
        if None in excluded and "null" in types:
            types.remove("null")
        alts = []
        for t in types:
            try:
                alts.append(self.typed(t, s, ptr, base))
            except NoValue:  # no value of this type: the others may remain
                alts.append(None)
        if "boolean" in types:
            alts[types.index("boolean")] = " | ".join(f'"{b}"' for b in ("true", "false") if
                                                       not any(v is (b == "true") for v in excluded)) or None
        alts = [a for a in alts if a]
        if not alts:
            raise NoValue("type", ptr, "no value satisfies the constraints")
        return " | ".join(alts)

    def negation(self, s: dict, ptr: str) -> dict:
        """`not` over a simple schema: a type, scalar enum/const values, or string constraints
        (recorded for `string`); other forms are unsupported."""
        if "not" not in s:
            return s
        n, n_ptr = s["not"], ptr + "/not"
        out = {k: v for k, v in s.items() if k != "not"}
        if isinstance(n, dict) and "$ref" in n:
            n = self.merge_all([n], n_ptr)
        if n is False:
            return out
        if n is True or (isinstance(n, dict) and all(k in ANNOTATIONS for k in n)):
            raise NoValue("not", n_ptr, "`not` of a schema that accepts everything")
        if not isinstance(n, dict):
            raise SchemaError("not must be a schema", n_ptr)
        keys = {k for k in n if k not in ANNOTATIONS}
        types = out.get("type", list(TYPES))
        types = [types] if isinstance(types, str) else list(types)
        n_types = n.get("type", [])
        n_types = [n_types] if isinstance(n_types, str) else list(n_types)
        if keys == {"type"}:
            if "integer" in n_types and "number" in types and "number" not in n_types:
                self.unsupported("not", n_ptr, "numbers that are not integers are not expressible yet", "more")
                return out
            gone = set(n_types) | ({"integer"} if "number" in n_types else set())
            out["type"] = [t for t in types if t not in gone]
        elif keys in ({"enum"}, {"const"}):
            values = n["enum"] if "enum" in n else [n["const"]]
            out[NOT_VALUES] = list(out.get(NOT_VALUES, [])) + list(values)
            if any(isinstance(v, (dict, list)) for v in values):
                self.unsupported("not", n_ptr, "excluding objects or arrays is not expressible yet", "more")
        elif keys <= {"type", "pattern", "minLength", "maxLength", "format"} and n_types in ([], ["string"]):
            group = self.string_patterns(n, n_ptr)
            if not n_types:  # non-strings satisfy string constraints, so `not` rules them out
                out["type"] = [t for t in types if t == "string"]
            if not group:
                out["type"] = [t for t in out.get("type", types) if t != "string"]
            else:
                out[NOT_STRINGS] = list(out.get(NOT_STRINGS, [])) + [group]
        else:
            self.unsupported("not", n_ptr, f"`not` over {sorted(keys)} is not expressible yet", "more")
        return out

    def finite_values(self, s: Any, ptr: str, depth: int = 0) -> list | None:
        """The candidate values when `s` (or a member of its allOf) is a const/enum, else None."""
        if not isinstance(s, dict) or depth > 32:
            return None
        if "const" in s:
            return [s["const"]]
        if "enum" in s:
            if not isinstance(s["enum"], list) or not s["enum"]:
                raise SchemaError("enum must be a non-empty array", ptr + "/enum")
            return list(s["enum"])
        members = list(s.get("allOf", [])) if isinstance(s.get("allOf"), list) else []
        if "$ref" in s:
            members.append(self.resolve(s["$ref"], self.node_base.get(id(s), ""), ptr)[0])
        for m in members:
            values = self.finite_values(m, ptr, depth + 1)
            if values is not None:
                return values
        return None

    def validator(self, s: dict, ptr: str):
        """A jsonschema validator (formats asserted) for subschema `s`, resolving refs in the root."""
        import jsonschema

        if self._root_validator is None:
            cls = jsonschema.validators.validator_for(self.root, default=jsonschema.Draft202012Validator)
            self._root_validator = cls(self.root, format_checker=cls.FORMAT_CHECKER)
        return self._root_validator.evolve(schema=s)

    def exclusive(self, branches: list, ptr: str) -> list:
        """oneOf branches rewritten to be pairwise disjoint, so that oneOf is their anyOf: a type
        two branches accept entirely is valid under neither (dropped from all); overlapping string
        languages are cut out of both. Overlaps it cannot remove are unsupported. None: dropped."""
        out = [dict(b) if isinstance(b, dict) else b for b in branches]
        for t in ("null", "boolean", "number", "string", "array", "object"):
            if sum(_accepts_all_of(b, t) for b in out) >= 2:
                for b in out:
                    if isinstance(b, dict):
                        b["type"] = [x for x in b.get("type", list(TYPES)) if x != t and not (
                            t == "number" and x == "integer")] if not isinstance(b.get("type"), str) else (
                            [] if b["type"] == t or (t == "number" and b["type"] == "integer") else [b["type"]])
        out = [None if isinstance(b, dict) and b.get("type") == [] else b for b in out]
        for i in range(len(out)):
            for j in range(i):
                a, b = out[i], out[j]
                if a is None or b is None or self.disjoint(a, b, ptr):
                    continue
                if _type_set(a) & _type_set(b) == {"string"} and _string_only(a) and _string_only(b):
                    pa, pb = self.string_patterns(a, ptr), self.string_patterns(b, ptr)
                    a[NOT_STRINGS] = list(a.get(NOT_STRINGS, [])) + [pb]
                    b[NOT_STRINGS] = list(b.get(NOT_STRINGS, [])) + [pa]
                    continue
                both = self.common_strings(a, b, ptr)
                if both is not None:  # a string enum against a string language: cut the shared values
                    a[NOT_VALUES] = list(a.get(NOT_VALUES, [])) + both
                    b[NOT_VALUES] = list(b.get(NOT_VALUES, [])) + both
                    continue
                self.unsupported("oneOf", ptr + "/oneOf", f"branches {j} and {i} are not provably disjoint "
                                 "(compiled as anyOf)", "more")
                return out
        return out

    def common_strings(self, a: Any, b: Any, ptr: str) -> list[str] | None:
        """When one schema is a finite set of strings and the other constrains strings only through
        string_patterns: the values both accept (by our string DFA); else None."""
        for x, y in ((a, b), (b, a)):
            values = self.finite_values(x, ptr) if isinstance(x, dict) else None
            if values is None or not isinstance(y, dict) or not _string_only(y) or "string" not in _type_set(y):
                continue
            if not all(isinstance(v, str) for v in values):
                return None
            try:
                dfa = json_string_dfa(self.string_patterns(y, ptr) or [ANY_CHAR + "*"])
                vx = self.validator(x, ptr)
                return [v for v in values if vx.is_valid(v) and _internal_ok(x, v) and _internal_ok(y, v)
                        and dfa.matches(json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))]
            except Exception:
                return None
        return None

    def disjoint(self, a: Any, b: Any, ptr: str, depth: int = 0) -> bool:
        """True only if no value satisfies both schemas (types, finite values checked with the
        other schema's validator, number ranges, string languages, object discriminators). A probe:
        relaxations its merges would record in lenient mode are not kept."""
        kept = len(self.relaxations)
        try:
            return self._disjoint(a, b, ptr, depth)
        finally:
            del self.relaxations[kept:]

    def _disjoint(self, a: Any, b: Any, ptr: str, depth: int) -> bool:
        try:
            a, b = (self.merge_all([x], ptr) if isinstance(x, dict) else x for x in (a, b))
        except StructgenError:
            return False
        if not isinstance(a, dict) or not isinstance(b, dict) or depth > 8:
            return a is False or b is False
        ta, tb = _type_set(a), _type_set(b)
        common = ta & tb
        if not common:
            return True
        if self.common_strings(a, b, ptr) == []:
            return True
        for x, y in ((a, b), (b, a)):
            values = self.finite_values(x, ptr)
            if values is not None:
                try:
                    vy, vx = self.validator(y, ptr), self.validator(x, ptr)
                    return not any(vx.is_valid(v) and vy.is_valid(v) for v in values)
                except Exception:
                    return False
        if common <= {"number"}:
            return _ranges_disjoint(a, b)
        if common == {"string"}:
            try:
                pa, pb = self.string_patterns(a, ptr), self.string_patterns(b, ptr)
                intersect(json_string_dfa(pa or [ANY_CHAR + "*"]), json_string_dfa(pb or [ANY_CHAR + "*"]))
                return False
            except RegexError:
                return True  # the intersection matches nothing
            except StructgenError:
                return False
        if common == {"object"}:
            pa, pb = a.get("properties") or {}, b.get("properties") or {}
            ra, rb = set(a.get("required", [])), set(b.get("required", []))
            for name in ra & rb:  # a discriminator: a required property whose values cannot agree
                if name in pa and name in pb and self.disjoint(pa[name], pb[name], ptr, depth + 1):
                    return True
            for x, px, ry in ((a, pa, rb), (b, pb, ra)):  # a closed object cannot have the other's required
                if x.get("additionalProperties", True) is False and not x.get("patternProperties") and ry - set(px):
                    return True
        return False

    def merge_all(self, parts: list, ptr: str) -> dict:
        """allOf as one schema: keywords combined where the combination is exact.

        additionalProperties only sees the properties of its own schema, so closed objects are
        merged member by member (exact without patternProperties); `items` likewise only sees
        its own prefixItems, so that combination stays unsupported. Two anyOf become one anyOf of
        the pairwise merged branches."""
        dicts = []
        for p in parts:
            if p is True:
                continue
            if p is False:
                raise NoValue("allOf", ptr, "contains a false schema")
            if "$ref" in p:
                target, _, _ = self.resolve(p["$ref"], self.node_base.get(id(p), ""), ptr)
                p = self.merge_all([target, {k: v for k, v in p.items() if k != "$ref"}], ptr)
            if "allOf" in p:
                p = self.merge_all([{k: v for k, v in p.items() if k != "allOf"}] + list(p["allOf"]), ptr)
            dicts.append(self.negation(self.presence(p), ptr))
        objects = self.merge_objects(dicts, ptr)
        for closed, members in (("items", ("prefixItems",)), ("additionalItems", ("items",))):
            for i, a in enumerate(dicts):
                if a.get(closed, True) is True:
                    continue
                if any(any(b.get(m) for m in members) for j, b in enumerate(dicts) if j != i):
                    self.unsupported("allOf", ptr, f"{closed} in one branch and members in another", "more")
                    break
        out: dict = {}
        for p in dicts:
            for k, v in p.items():
                if objects is not None and k in ("properties", "additionalProperties"):
                    continue
                if k in ANNOTATIONS or k not in out:
                    out.setdefault(k, v)
                elif k in (PRESENCE, NOT_VALUES, NOT_STRINGS):
                    out[k] = out[k] + v
                elif k == "type":
                    a = {out[k]} if isinstance(out[k], str) else set(out[k])
                    b = {v} if isinstance(v, str) else set(v)
                    both = a & b | ({"integer"} if ("number" in a and "integer" in b) or (
                        "integer" in a and "number" in b) else set())
                    out[k] = sorted(both)
                elif k == "properties":
                    props = dict(out[k])
                    for name, sub in v.items():
                        props[name] = {"allOf": [props[name], sub]} if name in props else sub
                    out[k] = props
                elif k == "required":
                    out[k] = list(dict.fromkeys(list(out[k]) + list(v)))
                elif k in ("minimum", "minLength", "minItems", "minProperties", "exclusiveMinimum"):
                    out[k] = max(out[k], v) if not isinstance(v, bool) else out[k]
                elif k in ("maximum", "maxLength", "maxItems", "maxProperties", "exclusiveMaximum"):
                    out[k] = min(out[k], v) if not isinstance(v, bool) else out[k]
                elif out[k] != v and k in KEYWORDS:
                    if k in ("additionalProperties", "items") and (out[k] is True or v is True):
                        out[k] = v if out[k] is True else out[k]
                    elif k == "anyOf" and len(out[k]) * len(v) <= 64:
                        out[k] = [{"allOf": [x, y]} for x in out[k] for y in v]
                    else:
                        self.unsupported("allOf", ptr, f"cannot merge two different {k!r}", "more")
        if objects is not None:
            out.update(objects)
        return out

    def merge_objects(self, dicts: list[dict], ptr: str) -> dict | None:
        """properties + additionalProperties of an allOf when some part closes its object and
        another declares members: each name gets all parts' schemas for it (their own property
        or their additionalProperties); None when no such merge is needed."""
        closing = [d for d in dicts if d.get("additionalProperties", True) is not True]
        declaring = [d for d in dicts if d.get("properties")]
        if not closing or not any(d is not c for c in closing for d in declaring + closing):
            return None
        if len(closing) == 1 and all(d is closing[0] for d in declaring):
            return None
        if any(d.get("patternProperties") for d in dicts):
            self.unsupported("allOf", ptr, "additionalProperties in one branch and patternProperties in another",
                             "more")
            return None
        names = list(dict.fromkeys(n for d in dicts for n in (d.get("properties") or {})))
        props = {}
        for n in names:
            subs = [(d.get("properties") or {}).get(n, d.get("additionalProperties", True)) for d in dicts]
            subs = [x for x in subs if x is not True]
            props[n] = False if any(x is False for x in subs) else (
                subs[0] if len(subs) == 1 else {"allOf": subs} if subs else True)
        addl = [d.get("additionalProperties", True) for d in dicts]
        addl = [x for x in addl if x is not True]
        rest = False if any(x is False for x in addl) else (addl[0] if len(addl) == 1 else {"allOf": addl})
        return {"properties": props, "additionalProperties": rest}

    # --- values ---------------------------------------------------------------------------

    def any_value(self) -> str:
        if "json_value" not in self.rules:
            self.rules["json_value"] = "json_object | json_array | JSON_STRING | JSON_NUMBER | \"true\" | \"false\" | \"null\""
            self.rules["json_object"] = (f"{self.open_close('{')} [json_member ({self.sep(', ')} json_member)*] "
                                         f"{self.open_close('}')}")
            self.rules["json_member"] = f"JSON_STRING {self.sep(': ')} json_value{self.ws}"
            self.rules["json_array"] = (f"{self.open_close('[')} [json_value{self.ws} ({self.sep(', ')} "
                                        f"json_value{self.ws})*] {self.open_close(']')}")
            self.terminals["JSON_STRING"] = f"/{JSON_STRING}/"
            self.terminals["JSON_NUMBER"] = f"/{JSON_NUMBER}/"
        return "json_value"

    def literal_value(self, v: Any) -> str:
        """An exact JSON value (const/enum), written in the grammar's style."""
        if isinstance(v, dict):
            if not v:
                return f"{self.open_close('{')} {self.open_close('}')}"
            items = [f"{_lark_literal(json.dumps(k, ensure_ascii=False))} {self.sep(': ')} {self.literal_value(x)}"
                     f"{self.ws}" for k, x in v.items()]
            return f"{self.open_close('{')} {(' ' + self.sep(', ') + ' ').join(items)} {self.open_close('}')}"
        if isinstance(v, list):
            if not v:
                return f"{self.open_close('[')} {self.open_close(']')}"
            items = [self.literal_value(x) + self.ws for x in v]
            return f"{self.open_close('[')} {(' ' + self.sep(', ') + ' ').join(items)} {self.open_close(']')}"
        if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e15:
            from .numbers import decimal_regex  # every literal of the same value: 1, 1.0, 1.00 (not 1e0)

            return self.terminal("num", decimal_regex(minimum=v, maximum=v))
        return f"({_lark_literal(json.dumps(v, ensure_ascii=False))})"

    def typed(self, t: str, s: dict, ptr: str, base: str) -> str | None:
        if t == "null":
            return '"null"'
        if t == "boolean":
            return '"true" | "false"'
        if t in ("integer", "number"):
            return self.number(t, s, ptr)
        if t == "string":
            return self.string(s, ptr)
        if t == "array":
            return self.array(s, ptr, base)
        if t == "object":
            return self.object(s, ptr, base)
        raise SchemaError(f"unknown type {t!r}", ptr + "/type")

    def number(self, t: str, s: dict, ptr: str) -> str | None:
        lo, hi = s.get("minimum"), s.get("maximum")
        xlo, xhi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
        if isinstance(xlo, bool):  # draft-04 style booleans
            xlo, lo = (lo if xlo else None), (None if xlo else lo)
        if isinstance(xhi, bool):
            xhi, hi = (hi if xhi else None), (None if xhi else hi)
        from . import numbers

        multiple = s.get("multipleOf")
        if multiple is not None and (isinstance(multiple, bool) or not isinstance(multiple, (int, float))
                                     or multiple <= 0):
            raise SchemaError("multipleOf must be a positive number", ptr + "/multipleOf")
        if multiple == 1:  # exactly the integers
            t, multiple = "integer", None
        bounded = any(b is not None for b in (lo, hi, xlo, xhi))
        if not bounded and multiple is None:
            name = "JSON_INTEGER" if t == "integer" else "JSON_NUMBER"
            self.terminals.setdefault(name, f"/{JSON_INTEGER if t == 'integer' else JSON_NUMBER}/")
            return name
        rx = None
        if bounded:
            fn = numbers.integer_regex if t == "integer" else numbers.decimal_regex
            rx = fn(minimum=lo, maximum=hi, exclusive_minimum=xlo, exclusive_maximum=xhi)
            if rx is None:
                return None
        if multiple is None:
            return self.terminal(t, rx)
        # multiples are written without exponent (as json.dumps writes numbers below 1e16)
        dfa = numbers.multiple_of_dfa(multiple, t == "integer")
        if dfa is None:
            self.unsupported("multipleOf", ptr + "/multipleOf", f"{multiple} has too many digits", "more")
            return self.terminal(t, rx) if rx else self.number(t, {k: v for k, v in s.items() if k != "multipleOf"}, ptr)
        if rx is not None:
            try:
                dfa = intersect(dfa, regex_dfa(rx))
            except RegexError:
                return None
        return self.terminal(t, dfa=dfa)

    def string(self, s: dict, ptr: str) -> str:
        only_length = not any(k in s for k in ("pattern", "format", NOT_STRINGS, NOT_VALUES))
        hi = s.get("maxLength")
        if only_length and (("maxLength" in s and hi is not None and int(hi) > LONG_STRING) or
                            int(s.get("minLength", 0)) > LONG_STRING):
            return self.long_string(int(s.get("minLength", 0)), None if hi is None else int(hi), ptr)
        patterns = self.string_patterns(s, ptr)
        exclude = list(s.get(NOT_STRINGS, []))
        literals = [v for v in s.get(NOT_VALUES, []) if isinstance(v, str)]
        if literals:
            exclude.append(["|".join(re.escape(v) for v in literals)])
        hostname = s.get("format") == "hostname"
        if hostname:  # the label structure with the 253-character limit, as a DFA
            from .formats import HOSTNAME, hostname_string_dfa

            patterns = [p for p in patterns if p != HOSTNAME]
        if not patterns and not exclude and not hostname:
            self.terminals.setdefault("JSON_STRING", f"/{JSON_STRING}/")
            return "JSON_STRING"
        try:
            if hostname:
                dfa = hostname_string_dfa()
                if patterns or exclude:
                    dfa = intersect(dfa, json_string_dfa(patterns, exclude=tuple(exclude)), max_states=100_000)
                return self.terminal("str", dfa=dfa)
            return self.terminal("str", dfa=json_string_dfa(patterns, exclude=tuple(exclude)))
        except RegexError as e:  # e.g. a pattern that can never match, or contradicts the length
            raise NoValue("type", ptr, f"no string satisfies the constraints ({e})") from None

    def long_string(self, lo: int, hi: int | None, ptr: str) -> str:
        """A string of lo..hi characters as a run of fixed-size blocks plus a shorter rest, each a
        lexeme of its own: a block is lexed as soon as it is full, so a string of length L is
        always L // B blocks and the rest, and the grammar counts blocks (a DFA counting to hi
        would need ~14 states per character)."""
        top = hi if hi is not None else lo
        block = 64 if top <= 64 * 256 else 256
        if top > block * 256:
            self.unsupported("maxLength" if hi is not None else "minLength", ptr,
                             f"length bounds above {block * 256}", "more" if hi is not None else "less")
            return self.string({k: v for k, v in {"minLength": min(lo, 1024)}.items()}, ptr)
        quote = _lark_literal('"')
        key = ("long", lo, hi)
        if key in self.memo:
            return self.memo[key]

        def body(pattern: str, hint: str) -> str:
            tkey = ("body", pattern)
            if tkey not in self.memo:
                self.memo[tkey] = self.terminal(hint, dfa=json_string_body_dfa(pattern))
            return self.memo[tkey]

        full = body(f"{ANY_CHAR}{{{block}}}", "block")
        last = top // block if hi is not None else -(-lo // block)
        nxt = ""
        for a in range(last, -1, -1):
            alts = []
            if a < last:
                alts.append(f"{full} {nxt}")
            if hi is None and a == last:  # enough blocks for minLength: any rest
                alts.append(f"{body(ANY_CHAR + '+', 'rest')} {quote}")
            else:
                r_lo, r_hi = max(1, lo - block * a), min(block - 1, (hi if hi is not None else 10 ** 9) - block * a)
                if r_lo <= r_hi:
                    alts.append(f"{body(f'{ANY_CHAR}{{{r_lo},{r_hi}}}', 'rest')} {quote}")
            if lo <= block * a and (hi is None or block * a <= hi):
                alts.append(quote)
            nxt = self.new_rule("chars", " | ".join(alts))
        self.memo[key] = self.new_rule("longstr", f"{quote} {nxt}")
        return self.memo[key]

    def string_patterns(self, s: dict, ptr: str) -> list[str]:
        """Full-match regexes (over decoded characters) that a string valid under `s` matches."""
        patterns = []
        if "minLength" in s or "maxLength" in s:
            lo = int(s.get("minLength", 0))
            hi = None if s.get("maxLength") is None else int(s["maxLength"])
            if (hi or 0) > MAX_LENGTH_BOUND:  # a length-counting DFA needs ~14 states per character
                self.unsupported("maxLength", ptr + "/maxLength", f"bounds above {MAX_LENGTH_BOUND}", "more")
                hi = None
            if lo > MAX_LENGTH_BOUND:
                self.unsupported("minLength", ptr + "/minLength", f"bounds above {MAX_LENGTH_BOUND}", "less")
                lo = MAX_LENGTH_BOUND
            patterns.append(f"{ANY_CHAR}{{{lo},{'' if hi is None else hi}}}")
        if "pattern" in s:
            from .regex import ecma_pattern_to_regex

            try:
                patterns.append(ecma_pattern_to_regex(s["pattern"], "pattern", ptr + "/pattern"))
            except UnsupportedFeature as e:
                self.unsupported("pattern", ptr + "/pattern", str(e), "more")
            except RegexError as e:
                raise SchemaError(f"invalid pattern: {e}", ptr + "/pattern") from None
        if "format" in s:
            from . import formats

            rx = formats.format_regex(s["format"])  # hostname: without its length limit (see `string`)
            if rx is not None:
                patterns.append(rx)
            elif s["format"] in formats.STANDARD_FORMATS:
                self.unsupported("format", ptr + "/format", f"format {s['format']!r} is not supported", "more")
            # other names are not formats the spec defines: validators ignore them, and so do we
        return patterns

    def array(self, s: dict, ptr: str, base: str) -> str:
        prefix = s.get("prefixItems")
        items = s.get("items", True)
        if isinstance(items, list):  # draft-07 tuple form
            prefix, items = items, s.get("additionalItems", True)
        prefix = list(prefix or [])
        lo = int(s.get("minItems", 0))
        hi = None if s.get("maxItems") is None else int(s["maxItems"])
        if s.get("uniqueItems") is True and not self.unique_by_construction(prefix, items, hi, ptr):
            self.unsupported("uniqueItems", ptr + "/uniqueItems", "not context-free", "more")
        elems, rest = [], None
        try:  # an item no value satisfies caps the length before it
            for i, p in enumerate(prefix):
                elems.append(self.schema(p, f"{ptr}/prefixItems/{i}", base))
            rest = None if items is False else self.schema(items, f"{ptr}/items", base)
        except NoValue:
            pass
        k = len(elems)
        top = k if rest is None else hi  # the longest allowed array (None: unbounded)
        if top is not None and hi is not None:
            top = min(top, hi)
        if top is not None and lo > top:
            raise NoValue("minItems", ptr + "/minItems", "no array length satisfies the bounds")
        if max(top or 0, lo) > MAX_ARRAY_UNROLL:  # one rule per position up to the bound
            raise UnsupportedFeature("maxItems" if (top or 0) >= lo else "minItems", ptr,
                                     f"array length bounds above {MAX_ARRAY_UNROLL}")
        sep = self.sep(", ")
        item = lambda j: (elems[j] if j < k else rest) + self.ws  # noqa: E731

        # after(j): what follows item j-1; optional from position lo on
        after = ""
        if top is None:
            after = f"({sep} {rest}{self.ws})*"
            last = max(lo, k)
        else:
            last = top
        for j in range(last - 1, 0, -1):
            body = f"{sep} {item(j)} {after}".strip()
            after = self.new_rule("items", f"[{body}]" if j >= lo else body)
        if top == 0:
            content = ""
        else:
            first = f"{item(0)} {after}".strip()
            content = f"[{first}]" if lo == 0 else first
        return self.new_rule("array", f"{self.open_close('[')} {content} {self.open_close(']')}".replace("  ", " "))

    def unique_by_construction(self, prefix: list, items: Any, hi: int | None, ptr: str) -> bool:
        """uniqueItems holds vacuously: at most one item, or a closed tuple of pairwise disjoint items."""
        if hi is not None and hi <= 1:
            return True
        length = len(prefix) if items is False else hi
        if length is None or length > len(prefix) and items is not False:
            return False
        slots = prefix[:length]
        return all(self.disjoint(slots[i], slots[j], ptr) for i in range(len(slots)) for j in range(i))

    def object(self, s: dict, ptr: str, base: str) -> str:
        """Declared properties in declared order (required ones mandatory), then any number of
        additional properties when allowed. Each separator is followed by a key that tells which
        member comes next, so the grammar stays LALR(1). Rules are indexed by a state of what was
        written so far: the member count (min/maxProperties) and which "watched" properties are
        present (for dependentRequired and anyOf/oneOf/not over `required`, see `presence`)."""
        props: dict = s.get("properties", {}) or {}
        required = list(dict.fromkeys(s.get("required", [])))
        addl = s.get("additionalProperties", True)
        patterns = self.key_patterns(s.get("patternProperties") or {}, ptr)
        names = self.key_filter(s.get("propertyNames", True), ptr + "/propertyNames")
        required, preds = self.dependencies(s, required, ptr)
        preds = preds + list(s.get(PRESENCE, []))
        watched = list(dict.fromkeys(n for p in preds for n in _pred_names(p)))
        undeclared = [n for n in required + watched if n not in props]
        members: list[tuple[str, bool, str]] = []  # (member text, required, name)
        for n in list(props) + list(dict.fromkeys(undeclared)):
            subs = [props[n]] if n in props else []
            subs += [sub for _, fsm, sub in patterns if fsm.accepts(n)]
            subs = subs or [addl]
            n_ptr = f"{ptr}/properties/{_ptr_escape(n)}"
            value = None
            if all(x is not False for x in subs) and (names is None or names.accepts(n)):
                try:
                    value = self.schema(subs[0] if len(subs) == 1 else self.merge_all(subs, n_ptr), n_ptr, base)
                except NoValue:
                    pass
            if value is None:
                if n in required:
                    raise NoValue("required", ptr + "/required", f"required {n!r} can never be present")
                continue
            members.append((f"{_lark_literal(json.dumps(n, ensure_ascii=False))} {self.sep(': ')} {value}{self.ws}",
                            n in required, n))
        present_names = {n for _, _, n in members}
        bit_of = {n: k for k, n in enumerate(n for _, r, n in members if n in watched and not r)}
        if len(bit_of) > 10:
            raise UnsupportedFeature("dependentRequired", ptr, "constraints over more than 10 optional properties")
        last_watched = max([i for i, (_, _, n) in enumerate(members) if n in bit_of], default=-1)

        def holds(bits: int) -> bool:
            if bits < 0:
                return True
            return all(_pred_eval(p, lambda n: n in required and n in present_names or (
                n in bit_of and bool(bits >> bit_of[n] & 1))) for p in preds)

        extra = self.extra_members(set(props) | set(undeclared), patterns, names, addl, ptr, base)
        lo = int(s.get("minProperties", 0))
        hi = None if s.get("maxProperties") is None else int(s["maxProperties"])
        n_req = sum(r for _, r, _ in members)
        if lo <= n_req:
            lo = 0  # always met
        if hi is not None and extra is None and hi >= len(members):
            hi = None  # never exceeded
        if hi is not None and (hi < n_req or hi < lo):
            raise NoValue("maxProperties", ptr + "/maxProperties", "no member count satisfies the bounds")
        cap = hi if hi is not None else lo  # counts above `cap` behave alike (saturated)
        if (len(members) + 1) * (cap + 1) * (1 << len(bit_of)) > 8192:
            raise UnsupportedFeature("maxProperties" if hi is not None else "minProperties", ptr,
                                     "member-count bounds too large to unroll")
        sep = self.sep(", ")
        memo: dict[tuple, str | None] = {}

        def settle(i: int, bits: int) -> int | None:
            """Once no watched member can follow, the bits only matter through whether they hold."""
            if i > last_watched and bits >= 0:
                return -1 if holds(bits) else None
            return bits

        def more(i: int, c: int, bits: int) -> str | None:
            """What may follow after c members, the next one being member i or later (or extras)."""
            bits = settle(i, bits)
            if bits is None:
                return None
            if i == len(members) and hi is None and c >= cap:  # only extras left, no more counting
                return "" if extra is None else self.new_rule("more", f"({sep} {extra})*")
            key = ("more", i, c, bits)
            if key not in memo:
                memo[key] = None
                can_end = c >= lo and not any(r for _, r, _ in members[i:]) and holds(bits)
                p = pick(i, c, bits)
                if p is None:
                    memo[key] = "" if can_end else None
                else:
                    memo[key] = self.new_rule("more", f"[{sep} {p}]" if can_end else f"{sep} {p}")
            return memo[key]

        def pick(i: int, c: int, bits: int) -> str | None:
            """A non-empty run of members after c written: member i or later, then extras."""
            key = ("pick", i, c, bits)
            if key not in memo:
                memo[key] = None
                c1 = c + 1 if hi is not None else min(c + 1, cap)
                alts = []
                if hi is None or c + 1 <= hi:
                    if i < len(members):
                        name = members[i][2]
                        b1 = bits | (1 << bit_of[name]) if name in bit_of and bits >= 0 else bits
                        m = more(i + 1, c1, b1)
                        if m is not None:
                            alts.append(f"{members[i][0]} {m}".strip())
                    elif extra is not None:
                        m = more(i, c1, bits)
                        if m is not None:
                            alts.append(f"{extra} {m}".strip())
                if i < len(members) and not members[i][1]:
                    p = pick(i + 1, c, bits)
                    if p is not None:
                        alts.append(p)
                if alts:
                    memo[key] = alts[0] if len(alts) == 1 else self.new_rule("pick", " | ".join(alts))
            return memo[key]

        if self.any_order:
            first = self.unordered(members, extra, lo, hi, preds, ptr)
        else:
            first = pick(0, 0, 0)  # `more` settles the bits once no watched member can follow
        empty_ok = lo == 0 and n_req == 0 and holds(0)
        if first is None and not empty_ok:
            raise NoValue("type", ptr, "no object satisfies the constraints")
        content = "" if first is None else (f"[{first}]" if empty_ok else first)
        return self.new_rule("object", f"{self.open_close('{')} {content} {self.open_close('}')}".replace("  ", " "))

    def unordered(self, members: list, extra: str | None, lo: int, hi: int | None, preds: list, ptr: str) -> str | None:
        """Object members in any order (property_order="any"): rules are indexed by the set of
        members written so far (2^n of them, so n is limited) and the member count."""
        n = len(members)
        if n > MAX_UNORDERED:
            raise UnsupportedFeature("properties", ptr, f"any property order over more than {MAX_UNORDERED} properties")
        names = [m[2] for m in members]
        need = sum(1 << i for i, m in enumerate(members) if m[1])
        cap = hi if hi is not None else lo
        sep = self.sep(", ")

        def step(c: int) -> int:
            return c + 1 if hi is not None else min(c + 1, cap)

        def can_end(mask: int, c: int) -> bool:
            return c >= lo and mask & need == need and all(
                _pred_eval(p, lambda x: x in names and bool(mask >> names.index(x) & 1)) for p in preds)

        seen: dict[tuple[int, int], bool] = {}

        def ok(mask: int, c: int) -> bool:
            if (mask, c) not in seen:
                seen[(mask, c)] = False
                seen[(mask, c)] = can_end(mask, c) or bool(pick_alts(mask, c))
            return seen[(mask, c)]

        def pick_alts(mask: int, c: int) -> list[tuple[int | None, int]]:
            if hi is not None and c + 1 > hi:
                return []
            alts: list[tuple[int | None, int]] = [(j, mask | 1 << j) for j in range(n) if not mask >> j & 1
                                                  and ok(mask | 1 << j, step(c))]
            if extra is not None and (step(c) != c and ok(mask, step(c)) or step(c) == c and can_end(mask, c)):
                alts.append((None, mask))
            return alts

        memo: dict[tuple, str] = {}

        def rule(kind: str, mask: int, c: int, body) -> str:
            if (kind, mask, c) not in memo:
                memo[(kind, mask, c)] = name = self.new_rule(kind, "")
                self.rules[name] = body()
            return memo[(kind, mask, c)]

        def more(mask: int, c: int) -> str:
            if not pick_alts(mask, c):
                return ""
            return rule("more", mask, c, lambda: f"[{sep} {pick(mask, c)}]" if can_end(mask, c)
                        else f"{sep} {pick(mask, c)}")

        def pick(mask: int, c: int) -> str:
            def body() -> str:
                return " | ".join(f"{members[j][0] if j is not None else extra} {more(m2, step(c))}".strip()
                                  for j, m2 in pick_alts(mask, c))
            return rule("pick", mask, c, body)

        return pick(0, 0) if pick_alts(0, 0) else None

    def dependencies(self, s: dict, required: list[str], ptr: str) -> tuple[list[str], list[tuple]]:
        """dependentRequired (and draft-07 `dependencies` with name lists): triggers that are required
        make their names required; the others become presence predicates ("dep", trigger, names)."""
        deps = dict(s.get("dependentRequired") or {})
        for k, v in (s.get("dependencies") or {}).items():
            if isinstance(v, list):
                deps[k] = v
            elif v is not True and v != {}:
                self.unsupported("dependencies", f"{ptr}/dependencies/{_ptr_escape(k)}",
                                 "schema dependencies are not expressible yet", "more")
        required = list(required)
        changed = True
        while changed:
            changed = False
            for trigger, needed in deps.items():
                if trigger in required and any(x not in required for x in needed):
                    required += [x for x in needed if x not in required]
                    changed = True
        preds = [("dep", t, tuple(n)) for t, n in deps.items() if t not in required and any(
            x not in required for x in n)]
        return required, preds

    def presence(self, s: dict) -> dict:
        """Move anyOf / oneOf whose branches only list `required`, and `not: {required}`, into
        presence predicates that `object` compiles exactly. Non-objects satisfy any `required`, so
        oneOf of two or more such branches and `not` also restrict the type to object."""
        def only_required(x: Any) -> bool:
            return isinstance(x, dict) and "required" in x and all(k == "required" or k in ANNOTATIONS for k in x)

        preds = list(s.get(PRESENCE, []))
        out = {k: v for k, v in s.items() if k != PRESENCE}
        for k in ("anyOf", "oneOf"):
            if isinstance(s.get(k), list) and s[k] and all(only_required(b) for b in s[k]):
                preds.append((k, tuple(tuple(b["required"]) for b in s[k])))
                del out[k]
        if only_required(s.get("not")):
            preds.append(("not", tuple(s["not"]["required"])))
            del out["not"]
        if only_required(s.get("if")) and all(k not in s or s[k] is True or only_required(s[k]) for k in ("then", "else")):
            branch = {k: tuple(s[k]["required"]) if isinstance(s.get(k), dict) else () for k in ("then", "else")}
            preds.append(("if", tuple(s["if"]["required"]), branch["then"], branch["else"]))
            for k in ("if", "then", "else"):
                out.pop(k, None)
        for k, dep in list((s.get("dependentSchemas") or {}).items()) + [
                (k, v) for k, v in (s.get("dependencies") or {}).items() if isinstance(v, dict)]:
            if only_required(dep):  # a schema dependency that only requires names
                preds.append(("dep", k, tuple(dep["required"])))
        for key in ("dependentSchemas", "dependencies"):
            if isinstance(s.get(key), dict) and any(only_required(v) for v in s[key].values()):
                rest = {k: v for k, v in s[key].items() if not only_required(v)}
                if rest:
                    out[key] = rest
                else:
                    del out[key]
        if not preds:
            return s
        if any(p[0] == "not" or (p[0] == "oneOf" and len(p[1]) > 1) for p in preds):
            t = out.get("type", "object")
            if "object" not in ([t] if isinstance(t, str) else t):
                raise NoValue("type", "", "no value satisfies the constraints")
            out["type"] = "object"
        out[PRESENCE] = preds
        return out

    def key_patterns(self, pattern_props: dict, ptr: str) -> list[tuple[str, Any, Any]]:
        """patternProperties as (pattern, character FSM of the keys it matches, value schema)."""
        from .regex import ecma_pattern_to_regex

        out = []
        for pat, sub in pattern_props.items():
            p_ptr = f"{ptr}/patternProperties/{_ptr_escape(pat)}"
            try:
                out.append((pat, char_fsm(ecma_pattern_to_regex(pat, "patternProperties", p_ptr)), sub))
            except RegexError as e:
                raise SchemaError(f"invalid pattern: {e}", p_ptr) from None
        return out

    def key_filter(self, names: Any, ptr: str):
        """propertyNames as a character FSM of the allowed keys (None: any key)."""
        if names is True or names == {}:
            return None
        if names is False:
            return char_fsm("[^\\s\\S]")  # no key at all
        if not isinstance(names, dict):
            raise SchemaError("propertyNames must be a schema", ptr)
        if "$ref" in names:
            target, _, _ = self.resolve(names["$ref"], self.node_base.get(id(names), ""), ptr)
            names = self.merge_all([target, {k: v for k, v in names.items() if k != "$ref"}], ptr)
        known = {"type", "pattern", "minLength", "maxLength", "format", "enum", "const"}
        for k in names:
            if k not in known and k not in ANNOTATIONS and k in KEYWORDS:
                self.unsupported(k, f"{ptr}/{k}", "only string constraints are compiled in propertyNames", "more")
        if names.get("format") == "hostname":
            self.unsupported("format", ptr + "/format", "hostname keys are not expressible yet", "more")
        t = names.get("type", "string")
        if "string" not in ([t] if isinstance(t, str) else t):
            return char_fsm("[^\\s\\S]")
        fsm = None
        for p in self.string_patterns(names, ptr) or [ANY_CHAR + "*"]:
            f = char_fsm(p)
            fsm = f if fsm is None else fsm & f
        for k in ("enum", "const"):
            if k in names:
                values = names["enum"] if k == "enum" else [names["const"]]
                strs = [v for v in values if isinstance(v, str)]
                lit = char_fsm("|".join(re.escape(v) for v in strs) or "[^\\s\\S]")
                fsm = fsm & lit
        return fsm

    def extra_members(self, declared: set[str], patterns: list, names, addl: Any, ptr: str, base: str) -> str | None:
        """The rule for one undeclared member: keys split into regions by which patternProperties
        they match (values must satisfy all of those, or additionalProperties when none)."""
        if not patterns and names is None:
            if addl is False:
                return None
            try:
                value = self.schema(addl, ptr + "/additionalProperties", base)
            except NoValue:
                return None
            return self.new_rule("extra", f"{self.other_key(declared)} {self.sep(': ')} {value}{self.ws}")
        rest = char_fsm(ANY_CHAR + "*")
        if declared:
            rest = rest.difference(char_fsm("|".join(re.escape(k) for k in sorted(declared))))
        if names is not None:
            rest = rest & names
        regions = [(rest, ())] if not rest.empty() else []
        for idx, (_, fsm, _) in enumerate(patterns):
            split = []
            for region, matched in regions:
                inside, outside = region & fsm, region.difference(fsm)
                split += [(r, m) for r, m in ((inside, matched + (idx,)), (outside, matched)) if not r.empty()]
            regions = split
            if len(regions) > 64:
                raise UnsupportedFeature("patternProperties", ptr + "/patternProperties",
                                         "more than 64 distinct key regions")
        alts = []
        for region, matched in regions:
            subs = [patterns[i][2] for i in matched] or [addl]
            if any(x is False for x in subs):
                continue
            r_ptr = (f"{ptr}/patternProperties/{_ptr_escape(patterns[matched[0]][0])}" if matched
                     else ptr + "/additionalProperties")
            if len(matched) > 1:
                r_ptr += "/" + "+".join(str(i) for i in matched)
            try:
                value = self.schema(subs[0] if len(subs) == 1 else self.merge_all(subs, r_ptr), r_ptr, base)
            except NoValue:  # keys of this region can never be present
                continue
            key = self.terminal("key", dfa=fsm_json_string_dfa(region))
            alts.append(f"{key} {self.sep(': ')} {value}{self.ws}")
        return self.new_rule("extra", " | ".join(alts)) if alts else None

    def other_key(self, declared: set[str]) -> str:
        """A JSON string key that is none of the declared property names (a DFA difference)."""
        if not declared:
            self.terminals.setdefault("JSON_STRING", f"/{JSON_STRING}/")
            return "JSON_STRING"
        # on byte DFAs: a string value has one encoding (json.dumps's, the one the declared keys
        # are written with), so enc(any - names) = enc(any) - enc(names)
        names = literals_dfa([json.dumps(k, ensure_ascii=False).encode("utf-8", "surrogatepass") for k in declared])
        return self.terminal("key", dfa=difference(json_string_dfa([]), names))


def main(argv: list[str] | None = None) -> int:
    """Print the Lark grammar generated for a schema file (debugging aid)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m structgen.frontend.json_schema SCHEMA.json [--lenient]")
        return 2
    g = schema_to_grammar(args[0], strict="--lenient" not in args)
    print(g.lark)
    for r in g.relaxations:
        print(f"// relaxed {r.keyword} at {r.pointer}: accepts {r.direction} ({r.detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
