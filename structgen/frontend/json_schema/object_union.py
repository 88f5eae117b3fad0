"""anyOf / oneOf over object schemas in any property order, written as one object whose branches are
followed side by side (ir.ObjectUnion), with the values of a shared key cut into disjoint regions."""

from __future__ import annotations

import json
from typing import Any

from ...automata.dfa import ANY_CHAR, difference, intersect
from ...automata.word_sets import literals_dfa
from ...automata.regex_dfa import json_string_dfa
from ...errors import UnsupportedFeature
from ..ir import ObjectUnion
from .expr import Expr, cat, union
from .normalize import NoValue
from .vocabulary import (ANNOTATIONS, KEYWORDS, NOT_STRINGS, NOT_VALUES, PRESENCE, TYPE_KEYWORDS, _internal_ok, _literal,
                         _pred_names, _string_only, _type_set, json_str)

OBJECT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                   "minProperties", "maxProperties", "dependentRequired", "dependencies"}


class ObjectUnionEmitter:
    """The object-union methods of objects.ObjectEmitter (which supplies object_parts, write_object,
    and through emit.Emitter schema, terminal, lit, ...)."""

    def dereference(self, x: Any, ptr: str, base: str) -> tuple[Any, str, str]:
        """(schema, pointer, base) with a schema that is only a `$ref` (and annotations) replaced by
        its target, through chains of them."""
        for _ in range(32):
            if not (isinstance(x, dict) and "$ref" in x and all(k in ANNOTATIONS or k == "$ref" for k in x)):
                break
            x, ptr, base = self.resolve(x["$ref"], base, ptr)
        return x, ptr, self._base(x, base) if isinstance(x, dict) else base

    def object_branches(self, kept: list[tuple[int, Any]], ptr: str, base: str) -> dict[int, list[tuple]]:
        """The anyOf branches that are object schemas and nothing else, as {index: [(schema, pointer,
        base), ...]} (a branch that is itself an allOf / anyOf / oneOf of objects gives several),
        when there are two or more objects in all (object_union)."""
        found = {}
        for i, x in kept:
            got = self.flat_objects(x, f"{ptr}/{i}", base, 0)
            if got:
                found[i] = got
        return found if sum(len(v) for v in found.values()) >= 2 else {}

    def flat_objects(self, x: Any, ptr: str, base: str, depth: int) -> list[tuple] | None:
        """`x` as a union of object-only schemas (through $refs, allOf merges, nested anyOf and
        oneOf made disjoint), or None if it is not one."""
        x, ptr, base = self.dereference(x, ptr, base)
        if not isinstance(x, dict) or depth > 4:
            return None
        try:
            if "allOf" in x:
                x = self.merge_all([{k: v for k, v in x.items() if k != "allOf"}] + list(x["allOf"]), ptr)
            x = self.presence(x)
            for k in ("anyOf", "oneOf"):
                if k in x:
                    rest = {kk: v for kk, v in x.items() if kk != k}
                    subs = ([self.merge_all([rest, b], ptr) for b in x[k]] if any(kk not in ANNOTATIONS for kk in rest)
                            else list(x[k]))
                    if k == "oneOf":
                        subs = self.exclusive(subs, ptr)
                    out: list[tuple] = []
                    for n, sub in enumerate(subs):
                        if sub is None:
                            continue
                        got = self.flat_objects(sub, f"{ptr}/{k}/{n}", base, depth + 1)
                        if got is None:
                            return None
                        out += got
                    return out
        except UnsupportedFeature:
            return None
        if x.get("type") not in ("object", ["object"]) or any(
                k in (NOT_VALUES, NOT_STRINGS) or (k in KEYWORDS and k not in OBJECT_KEYWORDS) for k in x):
            return None
        return [(x, ptr, base)]

    def object_union(self, items: list[tuple[dict, str, str]], ptr: str) -> Expr:
        """anyOf over object schemas in any property order as one object (ObjectUnion): its branches
        see every member, so the discriminating one may come anywhere. Each branch treats the
        names any branch declares as its own members (valued by its patternProperties or
        additionalProperties where undeclared), so keys lex alike in all branches."""
        names: dict[str, None] = {}
        for x, _, _ in items:
            deps = dict(x.get("dependentRequired") or {}) | {
                k: v for k, v in (x.get("dependencies") or {}).items() if isinstance(v, list)}
            for n in [*(x.get("properties") or {}), *(x.get("required") or []), *deps,
                      *(n for v in deps.values() for n in v),
                      *(n for pr in x.get(PRESENCE, []) for n in _pred_names(pr))]:
                names[n] = None
        parts = []
        for x, p, b in items:
            try:
                parts.append(self.object_parts(x, p, b, also=list(names)))
            except NoValue:
                continue  # a branch no object satisfies
        if not parts:
            raise NoValue("anyOf", ptr, "no branch can be satisfied")
        index: dict[tuple, list[tuple[int, int]]] = {}  # mem alternative -> (branch, member) pairs
        by_name: dict[str, list[tuple[int, int, tuple]]] = {}
        for k, (spec, members, extra) in enumerate(parts):
            for j, m in enumerate(members):
                by_name.setdefault(m[2], []).append((k, j, m[3]))
        for name, uses in by_name.items():
            for alt, pairs in self.shared_member(name, uses):
                index.setdefault(alt, []).extend(pairs)
        if len({tuple(extra) for _, _, extra in parts if extra}) > 1:
            raise _UnionRefused("additional properties")  # keys or values that differ could tie in the lexer
        for k, (spec, members, extra) in enumerate(parts):
            for alt in extra or []:
                index.setdefault(alt, []).append((k, len(spec.names)))
        union = ObjectUnion([spec for spec, _, _ in parts], list(index.values()))
        return self.write_object(union, [(alt, u) for u, alt in enumerate(index)], ptr)

    def shared_member(self, name: str, uses: list[tuple[int, int, tuple]]) -> list[tuple[tuple, list[tuple[int, int]]]]:
        """The `mem` alternatives of one key across an object union's branches, each with the
        (branch, member) pairs it stands for. Branches whose value schemas are alike share them.
        Where they differ, no two alternatives may derive the same text (the lexer would settle the
        tie blindly): the values of finite schemas (enums, consts: discriminators) go where they are
        valid, grouped by that set of branches, and are excluded from the other schemas, which must
        then be alike or of disjoint types; else _UnionRefused."""
        key = self.lit(json_str(name))
        uses = [(k, j, self.dereference(*v)) for k, j, v in uses]

        def member(vs: Any, p: str, b: str) -> Expr:
            return cat(key, self.sep(": "), self.schema(vs, p, b), self.ws)

        def text(vs: Any) -> str:
            return self.schema_text(vs)

        out: dict[tuple, list[tuple[int, int]]] = {}
        if len({text(v[0]) for _, _, v in uses}) == 1:
            for k, j, v in uses:
                for alt in member(*v):
                    out.setdefault(alt, []).append((k, j))
            return list(out.items())
        finite = [self.finite_values(v[0], v[1]) if isinstance(v[0], dict) else None for _, _, v in uses]
        values = {json.dumps(x, sort_keys=True): x for f in finite if f is not None for x in f}
        rest = [(k, j, v) for (k, j, v), f in zip(uses, finite) if f is None]
        groups: dict[tuple, list] = {}  # the uses a value is valid in -> its values
        cut = []  # finite values the other schemas accept too: cut out of those
        for x in values.values():
            where = tuple(i for i, (_, _, (vs, p, _)) in enumerate(uses) if vs is True or self.accepts_value(vs, p, x))
            if where:
                groups.setdefault(where, []).append(x)
            if any(finite[i] is None for i in where):
                if not (x is None or isinstance(x, (str, bool))):
                    raise _UnionRefused(name)  # only strings, booleans and null can be cut out of a schema
                cut.append(x)
        for where, vals in groups.items():
            for alt in cat(key, self.sep(": "), union(*(self.literal_value(x) for x in vals)), self.ws):
                out.setdefault(alt, []).extend(uses[i][:2] for i in where)
        distinct: dict[str, tuple] = {}  # the other schemas, without the finite values
        owners: dict[str, list[tuple[int, int]]] = {}
        for k, j, (vs, p, b) in rest:
            if cut:
                vs = {**(vs if isinstance(vs, dict) else {}), NOT_VALUES: [
                    *(vs.get(NOT_VALUES, []) if isinstance(vs, dict) else []), *cut]}
            distinct.setdefault(text(vs), (vs, p, b))
            owners.setdefault(text(vs), []).append((k, j))
        items = list(distinct.values())
        owner_lists = list(owners.values())
        # an array or object literal and another value of that type start alike: which member it is
        # would only show later, after a mask allowed it (a dead end where that member is forbidden)
        literal_groups = [{"array" if isinstance(x, list) else "object" for x in vals if isinstance(x, (list, dict))}
                          for vals in groups.values()]
        kinds = set().union(*literal_groups)
        if sum(map(bool, literal_groups)) > 1 or any(
                kinds & (_type_set(vs) if isinstance(vs, dict) else {"array", "object"}) for vs, _, _ in items):
            raise _UnionRefused(name)
        if len(items) == 1:
            regions = [(items[0], [0])]
        else:
            regions = self.type_regions(items, name)
        for region, where in regions:
            try:  # a region is a (schema, pointer, base) or a ready value expression (a list)
                alts = member(*region) if isinstance(region, tuple) else cat(key, self.sep(": "), region, self.ws)
            except NoValue:
                continue
            for alt in alts:
                out.setdefault(alt, []).extend(pair for i in where for pair in owner_lists[i])
        return list(out.items())

    def type_regions(self, items: list[tuple], name: str) -> list[tuple[Any, list[int]]]:
        """Value schemas `(schema, pointer, base)` cut into disjoint regions, each with the indices of
        the schemas it lies in: per JSON type, a type only one schema allows is its part of that
        schema; one several allow must be all of that type in each of them (then shared) or, for
        numbers and strings, one lexeme each (then cut by DFA set algebra). Else _UnionRefused: the
        schemas overlap in a way the union cannot tell apart. A region is a (schema, pointer, base)
        or a ready terminal expression."""
        def constrains_only(vs: Any, t: str, allowed: set) -> bool:  # keys: annotations, `allowed`, other types'
            return not isinstance(vs, dict) or all(
                k in ANNOTATIONS or k in ("type", NOT_VALUES) or k in allowed or k not in KEYWORDS and k not in (
                    NOT_STRINGS, PRESENCE) or any(k in TYPE_KEYWORDS[u] for u in TYPE_KEYWORDS if u != t) for k in vs)

        def integer(vs: Any) -> bool:
            return isinstance(vs, dict) and vs.get("type") in ("integer", ["integer"])

        def whole(vs: Any, t: str) -> bool:  # every value of type t (but the excluded finite values)
            return not (t == "number" and integer(vs)) and constrains_only(vs, t, set())

        def excluded(vs: Any) -> str:
            return json.dumps(vs.get(NOT_VALUES, []) if isinstance(vs, dict) else [], sort_keys=True)

        def part(vs: Any, t: str) -> dict:
            return {**(vs if isinstance(vs, dict) else {}), "type": "integer" if t == "number" and integer(vs) else t}

        out: list[tuple[Any, list[int]]] = []
        for t in ("null", "boolean", "number", "string", "array", "object"):
            idx = [i for i, (vs, _, _) in enumerate(items) if t in (
                _type_set(vs) if isinstance(vs, dict) else {"null", "boolean", "number", "string", "array", "object"})]
            if not idx:
                continue
            if len(idx) == 1 or all(whole(items[i][0], t) for i in idx) and len({excluded(items[i][0]) for i in idx}) == 1:
                out.append(((part(items[idx[0]][0], t), *items[idx[0]][1:]), idx))
                continue
            if len(idx) > 4 or len({excluded(items[i][0]) for i in idx}) > 1:
                raise _UnionRefused(name)
            if t == "number" and all(constrains_only(items[i][0], t, TYPE_KEYWORDS["number"]) for i in idx) and not any(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for i in idx if isinstance(items[i][0], dict)
                    for x in items[i][0].get(NOT_VALUES, [])):
                # number() gives one terminal each
                dfas = []
                for i in idx:
                    e = self.number("integer" if integer(items[i][0]) else "number", part(items[i][0], t), items[i][1])
                    dfas.append(None if e is None else self.b.terminals[e[0][0]].dfa)
                gone = None
            elif t == "string":
                strings = [part(items[i][0], t) for i in idx]
                common = [x.pop(NOT_VALUES, []) for x in strings][0]  # the finite values, cut from all alike
                if not all(_string_only(x) for x in strings):
                    raise _UnionRefused(name)
                # as DFAs of the JSON-encoded strings (as common_strings does)
                dfas = [json_string_dfa(self.string_patterns(x, items[i][1]) or [ANY_CHAR + "*"])
                        for x, i in zip(strings, idx)]
                gone = literals_dfa([_literal(v) for v in common if isinstance(v, str)]) if common else None
            else:
                raise _UnionRefused(name)
            for region, inside in _subset_regions(dfas, gone):
                out.append((self.terminal(t, dfa=region), [idx[n] for n in inside]))
        return out

    def accepts_value(self, s: Any, ptr: str, v: Any) -> bool:
        """Whether schema `s` accepts value `v` (jsonschema, formats asserted, and the internal keys)."""
        try:
            return self.validator(s, ptr).is_valid(v) and _internal_ok(s, v)
        except Exception as e:  # e.g. a ref or pattern jsonschema cannot handle
            raise UnsupportedFeature("enum", ptr, f"cannot evaluate the schema on its values: {e}") from None


def _subset_regions(dfas: list, gone=None):
    """(DFA, member indices) for each non-empty set of languages: the words in exactly those
    (none None: an empty language), less the words of `gone`."""
    for mask in range(1, 1 << len(dfas)):
        inside = [n for n in range(len(dfas)) if mask >> n & 1]
        if any(dfas[n] is None for n in inside):
            continue
        region = dfas[inside[0]]
        for n in inside[1:]:
            region = intersect(region, dfas[n])
        for n, d in enumerate(dfas):
            if not mask >> n & 1 and d is not None and region.num_states:
                region = difference(region, d)
        if region.num_states and gone is not None:
            region = difference(region, gone)
        if region.num_states and region.accept.any():
            yield region, inside


class _UnionRefused(Exception):
    """object_union cannot keep its branches apart exactly (values of one key that may overlap)."""
