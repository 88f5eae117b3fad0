"""JSON Schema normalization: $ref / $id resolution, allOf merging, negation, presence predicates.

`Normalizer` rewrites schema nodes into the forms the emitter (emit.py) compiles exactly, and
decides the questions the emitter asks (are two branches disjoint: disjoint.py; which values remain
of an enum, which strings a node allows). Keywords it cannot express raise UnsupportedFeature with
their pointer; with `strict=False` they are relaxed instead and each relaxation is recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from ...automata.dfa import ANY_CHAR
from ...automata.regex_dfa import meet, quoted_dfa
from ...errors import LimitExceeded, RegexError, SchemaError, UnsupportedFeature
from .disjoint import Disjointness
from .vocabulary import ANNOTATIONS, KEYWORDS, NOT_STRINGS, NOT_VALUES, PRESENCE, TYPES, _ptr_escape

NO_CHAR = r"[^\s\S]"  # no character: the pattern of an empty string set (minLength > maxLength)
MAX_LENGTH_BOUND = 1024  # a length-counting string DFA has ~14 states per character
LONG_STRING = 256  # strings with only length bounds above this are split into block lexemes


@dataclass(frozen=True)
class Relaxation:
    """A keyword compiled inexactly in lenient mode: the grammar accepts `direction` than the schema."""

    keyword: str
    pointer: str
    direction: str  # "more" or "less"
    detail: str = ""


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
                raise SchemaError(f"cannot read schema file {schema!r}: {e}", None) from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise SchemaError(f"schema is not valid JSON: {e}", None) from None
        except RecursionError:
            raise LimitExceeded("the schema is nested too deeply to read") from None
    raise SchemaError(f"unsupported schema input of type {type(schema).__name__}")


def _may_hold_ids(root: Any) -> bool:
    """Whether the schema has a key that names a base URI or an anchor ($id, $anchor,
    $dynamicAnchor) anywhere, by a look at its JSON text: one C-speed pass instead of the index's
    Python walk over every node (~2 us per node), which only such a schema needs."""
    text = json.dumps(root, default=str)
    return '"$id"' in text or '"$anchor"' in text or '"$dynamicAnchor"' in text


class NoValue(UnsupportedFeature):
    """A (sub)schema no JSON value satisfies: an optional property or an anyOf branch can be
    dropped; anywhere else this is an error."""


class Normalizer(Disjointness):
    """Schema-level rewriting shared by the emitter; holds the root, the $id index and the relaxations."""

    def __init__(self, root: Any, strict: bool) -> None:
        self.root = root
        self.strict = strict
        self.relaxations: list[Relaxation] = []
        self.ids: dict[str, Any] = {}  # absolute $id / anchor URI -> schema node
        self.node_base: dict[int, str] = {}
        draft = root.get("$schema", "") if isinstance(root, dict) else ""
        self.legacy_ref = any(d in str(draft) for d in ("draft-07", "draft-06", "draft-04", "draft-03"))
        if _may_hold_ids(root):  # else every node's base is "" and there is nothing to index
            self._index(root, "")
        self._root_validator = None

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

    def _index(self, node: Any, base: str) -> None:
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
                    self._index(v, base)
        elif isinstance(node, list):
            for v in node:
                self._index(v, base)

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
            # minLength > maxLength: no string, as a valid regex (`not` needs its complement, every string)
            patterns.append(f"{ANY_CHAR}{{{lo},{'' if hi is None else hi}}}" if hi is None or lo <= hi else NO_CHAR)
        if "pattern" in s:
            from ..regex import ecma_pattern_to_regex

            try:
                patterns.append(ecma_pattern_to_regex(s["pattern"], "pattern", ptr + "/pattern"))
            except UnsupportedFeature as e:
                self.unsupported("pattern", ptr + "/pattern", str(e), "more")
            except RegexError as e:
                raise SchemaError(f"invalid pattern: {e}", ptr + "/pattern") from None
        if "format" in s:
            from .. import formats

            rx = formats.format_regex(s["format"])  # hostname: without its length limit (see `string`)
            if rx is not None:
                patterns.append(rx)
            elif s["format"] in formats.STANDARD_FORMATS:
                self.unsupported("format", ptr + "/format", f"format {s['format']!r} is not supported", "more")
            # other names are not formats the spec defines: validators ignore them, and so do we
        return patterns

    def unique_by_construction(self, prefix: list, items: Any, hi: int | None, ptr: str) -> bool:
        """uniqueItems holds vacuously: at most one item, or a closed tuple of pairwise disjoint items."""
        if hi is not None and hi <= 1:
            return True
        length = len(prefix) if items is False else hi
        if length is None or length > len(prefix) and items is not False:
            return False
        slots = prefix[:length]
        return all(self.disjoint(slots[i], slots[j], ptr) for i in range(len(slots)) for j in range(i))

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
        """patternProperties as (pattern, DFA of the JSON string literals of the keys it matches, value schema)."""
        from ..regex import ecma_pattern_to_regex

        out = []
        for pat, sub in pattern_props.items():
            p_ptr = f"{ptr}/patternProperties/{_ptr_escape(pat)}"
            try:
                out.append((pat, quoted_dfa(ecma_pattern_to_regex(pat, "patternProperties", p_ptr)), sub))
            except RegexError as e:
                raise SchemaError(f"invalid pattern: {e}", p_ptr) from None
        return out

    def key_filter(self, names: Any, ptr: str):
        """propertyNames as a DFA of the JSON string literals of the allowed keys (None: any key)."""
        if names is True or names == {}:
            return None
        if names is False:
            return quoted_dfa("[^\\s\\S]")  # no key at all
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
            return quoted_dfa("[^\\s\\S]")
        fsm = None
        for p in self.string_patterns(names, ptr) or [ANY_CHAR + "*"]:
            f = quoted_dfa(p)
            fsm = f if fsm is None else meet(fsm, f)
        for k in ("enum", "const"):
            if k in names:
                values = names["enum"] if k == "enum" else [names["const"]]
                strs = [v for v in values if isinstance(v, str)]
                lit = quoted_dfa("|".join(re.escape(v) for v in strs) or "[^\\s\\S]")
                fsm = meet(fsm, lit)
        return fsm
