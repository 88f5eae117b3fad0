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

from ..automata.fsm import ANY_CHAR, ByteDFA, char_fsm, fsm_json_string_dfa, json_string_dfa
from ..errors import RegexError, SchemaError, UnsupportedFeature

# keywords that only annotate: they never change which instances are valid
ANNOTATIONS = {
    "$schema", "$id", "$comment", "$anchor", "$dynamicAnchor", "$vocabulary", "title", "description",
    "default", "examples", "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType",
    "contentSchema", "$defs", "definitions", "discriminator", "xml", "externalDocs", "example", "id",
    "nullable",  # OpenAPI's, not JSON Schema's: validators ignore it, so honoring it would accept invalid data
}
WHITESPACE_STYLES = ("compact",)  # "flexible" (bounded whitespace between lexemes) is not built yet
JSON_STRING = r'"([^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'  # as in grammars/json.lark
JSON_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
JSON_INTEGER = r"-?(0|[1-9][0-9]*)"
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
MAX_LENGTH_BOUND = 256


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
    raise SchemaError(f"unsupported schema input of type {type(schema).__name__}")


def schema_to_grammar(schema: Any, *, whitespace: str = "compact", strict: bool = True) -> SchemaGrammar:
    """Compile a JSON Schema to a grammar. `compact` writes json.dumps' one-line style
    (separators ", " and ": ")."""
    if whitespace not in WHITESPACE_STYLES:
        raise ValueError(f"whitespace {whitespace!r} is not supported; supported: {WHITESPACE_STYLES}")
    return _Converter(load_schema(schema), strict).run()


def _ptr_escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _lark_literal(text: str) -> str:
    return json.dumps(text)  # Lark string literals take JSON/Python escapes


class _Converter:
    def __init__(self, root: Any, strict: bool) -> None:
        self.root = root
        self.strict = strict
        self.rules: dict[str, str] = {}
        self.terminals: dict[str, str] = {}
        self.dfas: dict[str, ByteDFA] = {}
        self.relaxations: list[Relaxation] = []
        self.memo: dict[str, str] = {}  # pointer -> rule name
        self.ids: dict[str, Any] = {}  # absolute $id / anchor URI -> schema node
        self.node_base: dict[int, str] = {}
        draft = root.get("$schema", "") if isinstance(root, dict) else ""
        self.legacy_ref = any(d in str(draft) for d in ("draft-07", "draft-06", "draft-04", "draft-03"))
        self._index(root, "", "")
        self.n = 0

    # --- output ------------------------------------------------------------------------

    def run(self) -> SchemaGrammar:
        top = self.schema(self.root, "#", self._base(self.root, ""))
        self.rules["start"] = top
        lines = [f"{name}: {body}" for name, body in self.rules.items()]
        lines += [f"{name}: {pat}" for name, pat in self.terminals.items()]
        return SchemaGrammar("\n".join(lines) + "\n", self.dfas, self.relaxations)

    def sep(self, text: str) -> str:
        """A separator or bracket, written exactly (compact style)."""
        return _lark_literal(text)

    open_close = sep

    def new_rule(self, hint: str, body: str) -> str:
        self.n += 1
        name = f"r{self.n}_{re.sub('[^a-z0-9]', '', hint.lower())[:20]}"
        self.rules[name] = body
        return name

    def terminal(self, hint: str, pattern: str | None = None, dfa: ByteDFA | None = None) -> str:
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
            raise UnsupportedFeature("false", ptr, "a schema that accepts no value")
        if not isinstance(s, dict):
            raise SchemaError(f"a schema must be an object or a boolean, got {type(s).__name__}", ptr)
        if "$ref" in s and self.legacy_ref:  # draft-07 and earlier: siblings of $ref are ignored
            s = {"$ref": s["$ref"]}
        base = self._base(s, base)
        key = f"{base}|{ptr}" if "$ref" not in s else None
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
                self.rules[name] = self.schema(target, tptr, tbase)
            return self.memo[tkey]
        name = self.new_rule(ptr.split("/")[-1] or "root", "")
        self.memo[key] = name
        self.rules[name] = self.body(s, ptr, base)
        return name

    def body(self, s: dict, ptr: str, base: str) -> str:
        # keywords outside the vocabulary are annotations by the spec: ignored, like "title"
        if "allOf" in s:
            parts = [{k: v for k, v in s.items() if k != "allOf"}] + list(s["allOf"])
            return self.schema(self.merge_all(parts, ptr), ptr + "/allOf", base)
        for k in ("not", "if", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems", "contains",
                  "$dynamicRef", "$recursiveRef"):
            if k in s:
                self.unsupported(k, f"{ptr}/{k}", "not expressible yet", "more")
        if "const" in s:
            return self.literal_value(s["const"])
        if "enum" in s:
            if not isinstance(s["enum"], list) or not s["enum"]:
                raise SchemaError("enum must be a non-empty array", ptr + "/enum")
            return " | ".join(self.literal_value(v) for v in s["enum"])
        for k in ("anyOf", "oneOf"):
            if k in s:
                rest = {kk: v for kk, v in s.items() if kk != k}
                if k == "anyOf" and any(b is True or b == {} for b in s[k]):
                    return self.schema(rest or True, ptr + "/anyOf", base)  # one branch accepts everything
                branches = []
                seen_branches: set[str] = set()
                for i, sub in enumerate(s[k]):
                    canon = json.dumps(sub, sort_keys=True)
                    if k == "anyOf" and canon in seen_branches:  # identical branches would collide in LR
                        continue
                    seen_branches.add(canon)
                    merged = self.merge_all([rest, sub], ptr) if any(kk not in ANNOTATIONS for kk in rest) else sub
                    branches.append(self.schema(merged, f"{ptr}/{k}/{i}", base))
                if k == "oneOf" and len(branches) > 1:
                    self.check_disjoint(s[k], ptr)
                return " | ".join(dict.fromkeys(branches))
        types = s.get("type", list(TYPES))
        types = [types] if isinstance(types, str) else list(types)
        if "integer" in types and "number" in types:
            types.remove("integer")
        alts = [self.typed(t, s, ptr, base) for t in types]
        alts = [a for a in alts if a]
        if not alts:
            raise UnsupportedFeature("type", ptr, "no value satisfies the constraints")
        return " | ".join(alts)

    def check_disjoint(self, branches: list, ptr: str) -> None:
        """oneOf is exact only when no value matches two branches; prove it from their types/consts."""
        def kinds(b: Any) -> set[str] | None:
            if not isinstance(b, dict):
                return None
            if "const" in b:
                return {"const:" + json.dumps(b["const"], sort_keys=True)}
            if "enum" in b and isinstance(b["enum"], list):
                return {"const:" + json.dumps(v, sort_keys=True) for v in b["enum"]}
            t = b.get("type")
            if t is None:
                return None
            t = {t} if isinstance(t, str) else set(t)
            return {"number" if x == "integer" else x for x in t}
        seen: set[str] = set()
        for b in branches:
            k = kinds(b)
            if k is None or k & seen:
                self.unsupported("oneOf", ptr + "/oneOf", "branches not provably disjoint (compiled as anyOf)", "more")
                return
            seen |= k

    def merge_all(self, parts: list, ptr: str) -> dict:
        """allOf as one schema: keywords combined where the combination is exact.

        additionalProperties / items only see the properties / prefixItems of their own schema,
        so merging parts where one restricts "the others" and another declares members is inexact.
        """
        out: dict = {}
        dicts = [p for p in parts if isinstance(p, dict)]
        for closed, members in (("additionalProperties", ("properties", "patternProperties")),
                                ("items", ("prefixItems",)), ("additionalItems", ("items",))):
            for i, a in enumerate(dicts):
                if a.get(closed, True) is True:
                    continue
                if any(any(b.get(m) for m in members) for j, b in enumerate(dicts) if j != i):
                    self.unsupported("allOf", ptr, f"{closed} in one branch and members in another", "more")
                    break
        for p in parts:
            if p is True:
                continue
            if p is False:
                raise UnsupportedFeature("allOf", ptr, "contains a false schema")
            if "$ref" in p:
                target, _, _ = self.resolve(p["$ref"], self.node_base.get(id(p), ""), ptr)
                p = self.merge_all([target, {k: v for k, v in p.items() if k != "$ref"}], ptr)
            if "allOf" in p:
                p = self.merge_all([{k: v for k, v in p.items() if k != "allOf"}] + list(p["allOf"]), ptr)
            for k, v in p.items():
                if k in ANNOTATIONS or k not in out:
                    out.setdefault(k, v)
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
                elif out[k] != v:
                    if k in ("additionalProperties", "items") and (out[k] is True or v is True):
                        out[k] = v if out[k] is True else out[k]
                    else:
                        self.unsupported("allOf", ptr, f"cannot merge two different {k!r}", "more")
        return out

    # --- values ---------------------------------------------------------------------------

    def any_value(self) -> str:
        if "json_value" not in self.rules:
            self.rules["json_value"] = "json_object | json_array | JSON_STRING | JSON_NUMBER | \"true\" | \"false\" | \"null\""
            self.rules["json_object"] = (f"{self.open_close('{')} [json_member ({self.sep(', ')} json_member)*] "
                                         f"{self.open_close('}')}")
            self.rules["json_member"] = f"JSON_STRING {self.sep(': ')} json_value"
            self.rules["json_array"] = (f"{self.open_close('[')} [json_value ({self.sep(', ')} json_value)*] "
                                        f"{self.open_close(']')}")
            self.terminals["JSON_STRING"] = f"/{JSON_STRING}/"
            self.terminals["JSON_NUMBER"] = f"/{JSON_NUMBER}/"
        return "json_value"

    def literal_value(self, v: Any) -> str:
        """An exact JSON value (const/enum), written in the grammar's style."""
        if isinstance(v, dict):
            if not v:
                return f"{self.open_close('{')} {self.open_close('}')}"
            items = [f"{_lark_literal(json.dumps(k, ensure_ascii=False))} {self.sep(': ')} {self.literal_value(x)}"
                     for k, x in v.items()]
            return f"{self.open_close('{')} {(' ' + self.sep(', ') + ' ').join(items)} {self.open_close('}')}"
        if isinstance(v, list):
            if not v:
                return f"{self.open_close('[')} {self.open_close(']')}"
            items = [self.literal_value(x) for x in v]
            return f"{self.open_close('[')} {(' ' + self.sep(', ') + ' ').join(items)} {self.open_close(']')}"
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
        if "multipleOf" in s:
            if s["multipleOf"] == 1:  # exactly the integers
                t = "integer"
            else:
                self.unsupported("multipleOf", ptr + "/multipleOf", "multipleOf other than 1", "more")
        bounded = any(b is not None for b in (lo, hi, xlo, xhi))
        if not bounded:
            name = "JSON_INTEGER" if t == "integer" else "JSON_NUMBER"
            self.terminals.setdefault(name, f"/{JSON_INTEGER if t == 'integer' else JSON_NUMBER}/")
            return name
        from . import numbers

        fn = numbers.integer_regex if t == "integer" else numbers.decimal_regex
        rx = fn(minimum=lo, maximum=hi, exclusive_minimum=xlo, exclusive_maximum=xhi)
        if rx is None:
            return None
        return self.terminal(t, rx)

    def string(self, s: dict, ptr: str) -> str:
        patterns = []
        if "minLength" in s or "maxLength" in s:
            lo = int(s.get("minLength", 0))
            hi = None if s.get("maxLength") is None else int(s["maxLength"])
            if max(lo, hi or 0) > MAX_LENGTH_BOUND:
                # a length-counting DFA needs ~14 states per character of the bound
                self.unsupported("maxLength" if (hi or 0) > MAX_LENGTH_BOUND else "minLength", ptr,
                                 f"length bounds above {MAX_LENGTH_BOUND} are not compiled yet",
                                 "more" if (hi or 0) > MAX_LENGTH_BOUND else "less")
                if (hi or 0) > MAX_LENGTH_BOUND:
                    hi = None
                lo = min(lo, MAX_LENGTH_BOUND)
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

            rx = formats.format_regex(s["format"])
            if rx is None:
                self.unsupported("format", ptr + "/format", f"format {s['format']!r} is not supported", "more")
            else:
                patterns.append(rx)
        if not patterns:
            self.terminals.setdefault("JSON_STRING", f"/{JSON_STRING}/")
            return "JSON_STRING"
        try:
            return self.terminal("str", dfa=json_string_dfa(patterns))
        except RegexError as e:  # e.g. a pattern that can never match, or contradicts the length
            raise UnsupportedFeature("type", ptr, f"no string satisfies the constraints ({e})") from None

    def array(self, s: dict, ptr: str, base: str) -> str:
        prefix = s.get("prefixItems")
        items = s.get("items", True)
        if isinstance(items, list):  # draft-07 tuple form
            prefix, items = items, s.get("additionalItems", True)
        prefix = list(prefix or [])
        if s.get("uniqueItems") is True:
            self.unsupported("uniqueItems", ptr + "/uniqueItems", "not context-free", "more")
        lo = int(s.get("minItems", 0))
        hi = None if s.get("maxItems") is None else int(s["maxItems"])
        k = len(prefix)
        elems = [self.schema(p, f"{ptr}/prefixItems/{i}", base) for i, p in enumerate(prefix)]
        rest = None if items is False else self.schema(items, f"{ptr}/items", base)
        top = k if rest is None else hi  # the longest allowed array (None: unbounded)
        if top is not None and hi is not None:
            top = min(top, hi)
        if top is not None and lo > top:
            raise UnsupportedFeature("minItems", ptr + "/minItems", "no array length satisfies the bounds")
        if top is not None and top - max(lo, k) > 64:
            raise UnsupportedFeature("maxItems", ptr + "/maxItems", "more than 64 optional repeated items")
        sep = self.sep(", ")
        item = lambda j: elems[j] if j < k else rest  # noqa: E731

        # after(j): what follows item j-1; optional from position lo on
        after = ""
        if top is None:
            after = f"({sep} {rest})*"
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

    def object(self, s: dict, ptr: str, base: str) -> str:
        """Declared properties in declared order (required ones mandatory), then any number of
        additional properties when allowed. Each separator is followed by a key that tells which
        member comes next, so the grammar stays LALR(1)."""
        props: dict = s.get("properties", {}) or {}
        required = list(s.get("required", []))
        addl = s.get("additionalProperties", True)
        for k in ("patternProperties", "propertyNames", "dependentRequired", "dependencies", "minProperties",
                  "maxProperties"):
            if k in s and s[k] not in ({}, None):
                self.unsupported(k, f"{ptr}/{k}", "not expressible yet", "more")
        missing = [r for r in required if r not in props]
        if missing and addl is False:
            raise UnsupportedFeature("required", ptr + "/required", f"required {missing} can never be present")
        req = set(required)
        members = []
        for n in [n for n in props if props[n] is not False] + missing:
            sub = props[n] if n in props else addl
            value = self.schema(sub, f"{ptr}/properties/{_ptr_escape(n)}", base)
            members.append((f"{_lark_literal(json.dumps(n, ensure_ascii=False))} {self.sep(': ')} {value}", n in req))
        sep = self.sep(", ")
        extra = None
        if addl is not False:
            value = self.schema(addl, ptr + "/additionalProperties", base)
            extra = self.new_rule("extra", f"{self.other_key(set(props) | set(missing))} {self.sep(': ')} {value}")
        # pick(i): a non-empty run of members starting at some member j >= i (or extras);
        # more(i): what may follow once something was written, members from i on
        more = f"({sep} {extra})*" if extra else ""
        pick = f"{extra} {more}".strip() if extra else None
        required_from = False
        for i in range(len(members) - 1, -1, -1):
            text, is_req = members[i]
            more_name = self.new_rule("more", more) if more else ""
            here = f"{text} {more_name}".strip()
            pick = here if (is_req or pick is None) else self.new_rule("pick", f"{here} | {pick}")
            required_from = required_from or is_req
            more = f"{sep} {pick}" if required_from else f"[{sep} {pick}]"
        content = "" if pick is None else (pick if required_from else f"[{pick}]")
        return self.new_rule("object", f"{self.open_close('{')} {content} {self.open_close('}')}".replace("  ", " "))

    def other_key(self, declared: set[str]) -> str:
        """A JSON string key that is none of the declared property names (a DFA difference)."""
        if not declared:
            self.terminals.setdefault("JSON_STRING", f"/{JSON_STRING}/")
            return "JSON_STRING"
        names = "|".join(re.escape(k) for k in sorted(declared))
        fsm = char_fsm(ANY_CHAR + "*").difference(char_fsm(f"({names})"))
        return self.terminal("key", dfa=fsm_json_string_dfa(fsm))


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
