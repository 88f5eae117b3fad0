"""JSON Schema objects → grammar IR: members, their constraints, and unions of object schemas.

`ObjectEmitter` is the part of the emitter (emit.Emitter) that writes objects: in declared order or
any order, their constraint states as rules (small objects) or as parser state (ir.ObjectSpec,
automata/objects.py), and anyOf / oneOf over object schemas in any order as one object whose branches
are followed side by side (ir.ObjectUnion), with the values of a shared key cut into disjoint regions.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from ...automata.fsm import ANY_CHAR, difference, intersect, literals_dfa
from ...automata.regex_dfa import json_string_dfa, meet, minus, quoted_dfa
from ...errors import UnsupportedFeature
from ..ir import ObjectSpec, ObjectUnion, presence_holds
from .expr import EMPTY, Expr, cat, opt, union
from .normalize import (ANNOTATIONS, JSON_STRING, KEYWORDS, NOT_STRINGS, NOT_VALUES, PRESENCE, TYPE_KEYWORDS,
                        NoValue, _internal_ok, _pred_names, _ptr_escape, _string_only, _type_set)

PARAMETRIC_MIN_OPTIONAL = 8  # objects with this many optional members keep their constraints as parser state
PARAMETRIC_MIN_UNORDERED = 4  # property_order="any": objects with this many members do (else 2^n rules)
OBJECT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                   "minProperties", "maxProperties", "dependentRequired", "dependencies"}


class ObjectEmitter:
    """The object-writing methods of emit.Emitter (which supplies lit, sep, schema, terminal, ...)."""

    def object(self, s: dict, ptr: str, base: str) -> Expr:
        """Declared properties in declared order (required ones mandatory), then any number of
        additional properties when allowed (or, with property_order="any", all in any order). Each
        separator is followed by a key that tells which member comes next, so the grammar stays
        LALR(1). Rules are indexed by a state of what was written so far: the member count
        (min/maxProperties) and which "watched" properties are present (for dependentRequired and
        anyOf/oneOf/not over `required`, see `presence`); or that state is parser state (ObjectSpec)."""
        spec, members, extra = self.object_parts(s, ptr, base)
        n_optional = sum(not r for r in spec.required)
        parametric = self.parametric and (len(members) >= PARAMETRIC_MIN_UNORDERED if self.any_order
                                          else n_optional >= PARAMETRIC_MIN_OPTIONAL)
        if parametric:
            return self.parametric_object(spec, members, extra, ptr)
        if extra is not None:
            extra = self.new_rule("extra", extra)
        return self.explicit_object(spec, members, extra, ptr)

    def object_parts(self, s: dict, ptr: str, base: str, also: Sequence[str] = ()) -> tuple[ObjectSpec, list, Expr | None]:
        """An object schema's constraints (an ObjectSpec, not yet written as rules), its members
        `(expression, required, name)` and the alternatives of one undeclared member (None: none
        allowed). `also`: names to treat as (optional) members even where undeclared, with the value
        patternProperties / additionalProperties give them (an anyOf of objects shares its names)."""
        props: dict = s.get("properties", {}) or {}
        required = list(dict.fromkeys(s.get("required", [])))
        addl = s.get("additionalProperties", True)
        patterns = self.key_patterns(s.get("patternProperties") or {}, ptr)
        names = self.key_filter(s.get("propertyNames", True), ptr + "/propertyNames")
        required, preds = self.dependencies(s, required, ptr)
        preds = preds + list(s.get(PRESENCE, []))
        watched = list(dict.fromkeys(n for p in preds for n in _pred_names(p)))
        undeclared = [n for n in required + watched + list(also) if n not in props]
        members: list[tuple[Expr, bool, str, tuple]] = []  # (member expression, required, name, (value schema, base))
        for n in list(props) + list(dict.fromkeys(undeclared)):
            subs = [props[n]] if n in props else []
            subs += [sub for _, keys, sub in patterns if keys.matches(_literal(n))]
            subs = subs or [addl]
            n_ptr = f"{ptr}/properties/{_ptr_escape(n)}"
            value = None
            if all(x is not False for x in subs) and (names is None or names.matches(_literal(n))):
                try:
                    vs = subs[0] if len(subs) == 1 else self.merge_all(subs, n_ptr)
                    value = self.schema(vs, n_ptr, base)
                except NoValue:
                    pass
            if value is None:
                if n in required:
                    raise NoValue("required", ptr + "/required", f"required {n!r} can never be present")
                continue
            members.append((cat(self.lit(json.dumps(n, ensure_ascii=False)), self.sep(": "), value, self.ws),
                            n in required, n, (vs, n_ptr, base)))
        present_names = {m[2] for m in members}
        bit_of = {n: k for k, n in enumerate(m[2] for m in members if m[2] in watched and not m[1])}
        if len(bit_of) > 10:
            raise UnsupportedFeature("dependentRequired", ptr, "constraints over more than 10 optional properties")
        extra = self.extra_members(set(props) | set(undeclared), patterns, names, addl, ptr, base)
        lo = int(s.get("minProperties", 0))
        hi = None if s.get("maxProperties") is None else int(s["maxProperties"])
        n_req = sum(m[1] for m in members)
        if lo <= n_req:
            lo = 0  # always met
        if hi is not None and extra is None and hi >= len(members):
            hi = None  # never exceeded
        if hi is not None and (hi < n_req or hi < lo):
            raise NoValue("maxProperties", ptr + "/maxProperties", "no member count satisfies the bounds")
        # what may come next after which members: the same ObjectSpec whether its states become
        # rules (explicit_object) or parser state (parametric_object)
        names_in_order = [m[2] for m in members]
        spec = ObjectSpec(names=names_in_order, required=[m[1] for m in members], extra=extra is not None, lo=lo,
                          hi=hi, watched={i: bit_of[n] for i, n in enumerate(names_in_order) if n in bit_of},
                          preds=list(preds), always=[n for n in required if n in present_names],
                          any_order=self.any_order)
        return spec, members, extra

    def explicit_object(self, spec: ObjectSpec, members: list, extra: Expr | None, ptr: str) -> Expr:
        """An object's constraint states as rules (extra: the rule of one undeclared member)."""
        lo, hi, cap = spec.lo, spec.hi, spec.cap
        bit_of = spec.watched
        if (len(members) + 1) * (cap + 1) * (1 << len(bit_of)) > 8192:
            raise UnsupportedFeature("maxProperties" if hi is not None else "minProperties", ptr,
                                     "member-count bounds too large to unroll")
        sep = self.sep(", ")
        memo: dict[tuple, Expr | None] = {}

        def more(i: int, c: int, bits: int) -> Expr | None:
            """What may follow after c members, the next one being member i or later (or extras)."""
            bits = spec.settle(i, bits)
            if bits is None:
                return None
            if i == len(members) and hi is None and c >= cap:  # only extras left, no more counting
                return EMPTY if extra is None else self.new_rule("more", self.star(cat(sep, extra)))
            key = ("more", i, c, bits)
            if key not in memo:
                memo[key] = None
                can_end = spec.can_close((i, c, bits))
                p = pick(i, c, bits)
                if p is None:
                    memo[key] = EMPTY if can_end else None
                else:
                    memo[key] = self.new_rule("more", opt(cat(sep, p)) if can_end else cat(sep, p))
            return memo[key]

        def pick(i: int, c: int, bits: int) -> Expr | None:
            """A non-empty run of members after c written: member i or later, then extras."""
            key = ("pick", i, c, bits)
            if key not in memo:
                memo[key] = None
                c1 = c + 1 if hi is not None else min(c + 1, cap)
                alts: list[Expr] = []
                if hi is None or c + 1 <= hi:
                    if i < len(members):
                        b1 = bits | (1 << spec.watched[i]) if i in spec.watched and bits >= 0 else bits
                        m = more(i + 1, c1, b1)
                        if m is not None:
                            alts.append(cat(members[i][0], m))
                    elif extra is not None:
                        m = more(i, c1, bits)
                        if m is not None:
                            alts.append(cat(extra, m))
                if i < len(members) and not members[i][1]:
                    p = pick(i + 1, c, bits)
                    if p is not None:
                        alts.append(p)
                if alts:
                    memo[key] = alts[0] if len(alts) == 1 else self.new_rule("pick", union(*alts))
            return memo[key]

        if self.any_order:
            first = self.unordered(members, extra, lo, hi, spec.preds, ptr)
        else:
            # from the last member back, so that no call recurses along the whole member list
            # (combinations never reached are pruned with the unreachable rules)
            for i in range(len(members), 0, -1):
                for c in range(cap + 1):
                    for bits in [-1] + list(range(1 << len(bit_of))):
                        more(i, c, bits)
                        pick(i, c, bits)
            first = pick(0, 0, 0)  # `more` settles the bits once no watched member can follow
        empty_ok = spec.can_close((0, 0, 0))
        if first is None and not empty_ok:
            raise NoValue("type", ptr, "no object satisfies the constraints")
        content = EMPTY if first is None else (opt(first) if empty_ok else first)
        return self.new_rule("object", cat(self.open_close("{"), content, self.open_close("}")))

    def parametric_object(self, spec: ObjectSpec, members: list, extra: Expr | None, ptr: str) -> Expr:
        """Members with the constraints kept as parser state (ObjectSpec): rules linear in the
        members, where the explicit encoding needs one per pair of optional members (declared order)
        or per subset of members (any order)."""
        alts = [(alt, j) for j, m in enumerate(members) for alt in m[0]]
        return self.write_object(spec, alts + [(alt, len(spec.names)) for alt in extra or []], ptr)

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
        key = self.lit(json.dumps(name, ensure_ascii=False))
        uses = [(k, j, self.dereference(*v)) for k, j, v in uses]

        def member(vs: Any, p: str, b: str) -> Expr:
            return cat(key, self.sep(": "), self.schema(vs, p, b), self.ws)

        def text(vs: Any) -> str:
            return json.dumps(_without_annotations(vs), sort_keys=True, default=str)

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

    def write_object(self, spec: ObjectSpec | ObjectUnion, alts: list[tuple[tuple, int]], ptr: str) -> Expr:
        """The rules of a parametric object: `obj -> "{" "}" | "{" mem rest`, `rest -> "}" | sep mem
        rest`, and `mem -> alt` for each (alternative, member index) in `alts`."""
        b = self.b
        start = spec.start()
        if not spec.live(start):
            raise NoValue("type", ptr, "no object satisfies the constraints")
        spec.obj, spec.mem, spec.rest = self.new_nt("object"), self.new_nt("member"), self.new_nt("rest")
        k = len(b.objects)
        b.objects.append(spec)
        for alt, j in alts:
            b.member[b.rule(spec.mem, alt)] = (k, j)
        if spec.can_close(start):
            self.define(spec.obj, cat(self.open_close("{"), self.open_close("}")))
        self.define(spec.obj, cat(self.open_close("{"), [(spec.mem, spec.rest)]))
        self.define(spec.rest, self.lit("}"))
        self.define(spec.rest, cat(self.sep(", "), [(spec.mem, spec.rest)]))
        return [(spec.obj,)]

    def unordered(self, members: list, extra: Expr | None, lo: int, hi: int | None, preds: list,
                  ptr: str) -> Expr | None:
        """Object members in any order (property_order="any"): rules are indexed by the set of
        members written so far (2^n of them, so n is limited) and the member count."""
        n = len(members)
        if n > self.limits.max_unordered:
            raise UnsupportedFeature("properties", ptr, f"any property order over more than {self.limits.max_unordered} "
                                     "properties (max_unordered)")
        names = [m[2] for m in members]
        need = sum(1 << i for i, m in enumerate(members) if m[1])
        cap = hi if hi is not None else lo
        sep = self.sep(", ")

        def step(c: int) -> int:
            return c + 1 if hi is not None else min(c + 1, cap)

        def can_end(mask: int, c: int) -> bool:
            return c >= lo and mask & need == need and all(
                presence_holds(p, lambda x: x in names and bool(mask >> names.index(x) & 1)) for p in preds)

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
            # an extra member that leaves the count as it is loops back to this state, which it
            # cannot make live by itself: it may come when something else completes the object
            if extra is not None and (ok(mask, step(c)) if step(c) != c else alts or can_end(mask, c)):
                alts.append((None, mask))
            return alts

        memo: dict[tuple, int] = {}

        def rule(kind: str, mask: int, c: int, body) -> Expr:
            if (kind, mask, c) not in memo:
                memo[(kind, mask, c)] = nt = self.new_nt(kind)
                self.define(nt, body())
            return [(memo[(kind, mask, c)],)]

        def more(mask: int, c: int) -> Expr:
            if not pick_alts(mask, c):
                return EMPTY
            return rule("more", mask, c, lambda: opt(cat(sep, pick(mask, c))) if can_end(mask, c)
                        else cat(sep, pick(mask, c)))

        def pick(mask: int, c: int) -> Expr:
            def body() -> Expr:
                return union(*(cat(members[j][0] if j is not None else extra, more(m2, step(c)))
                               for j, m2 in pick_alts(mask, c)))
            return rule("pick", mask, c, body)

        return pick(0, 0) if pick_alts(0, 0) else None

    def extra_members(self, declared: set[str], patterns: list, names, addl: Any, ptr: str,
                      base: str) -> Expr | None:
        """The alternatives of one undeclared member: keys split into
        regions by which patternProperties they match (values must satisfy all of those, or
        additionalProperties when none)."""
        if not patterns and names is None:
            if addl is False:
                return None
            try:
                value = self.schema(addl, ptr + "/additionalProperties", base)
            except NoValue:
                return None
            return cat(self.other_key(declared), self.sep(": "), value, self.ws)
        # key languages are DFAs of JSON string literals: one literal per string, so set algebra on
        # them is set algebra on the keys
        rest = quoted_dfa(ANY_CHAR + "*")
        if declared:
            rest = minus(rest, literals_dfa([_literal(k) for k in sorted(declared)]))
        if names is not None:
            rest = meet(rest, names)
        regions = [(rest, ())] if rest.num_states else []
        for idx, (_, keys, _) in enumerate(patterns):
            split = []
            for region, matched in regions:
                inside, outside = meet(region, keys), minus(region, keys)
                split += [(r, m) for r, m in ((inside, matched + (idx,)), (outside, matched)) if r.num_states]
            regions = split
            if len(regions) > 64:
                raise UnsupportedFeature("patternProperties", ptr + "/patternProperties",
                                         "more than 64 distinct key regions")
        alts: list[Expr] = []
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
            rkey = ("key_region", region.trans.tobytes(), region.accept.tobytes())
            if rkey not in self.memo:  # one terminal per key language (see other_key)
                self.memo[rkey] = self.terminal("key", dfa=region)
            alts.append(cat(self.memo[rkey], self.sep(": "), value, self.ws))
        return union(*alts) if alts else None

    def other_key(self, declared: set[str]) -> Expr:
        """A JSON string key that is none of the declared property names (a DFA difference)."""
        if not declared:
            return self.named_terminal("JSON_STRING", JSON_STRING)
        # on byte DFAs: a string value has one encoding (json.dumps's, the one the declared keys
        # are written with), so enc(any - names) = enc(any) - enc(names)
        key = ("other_key", tuple(sorted(declared)))
        if key not in self.memo:  # one terminal per key language: two alike would be a lexing tie
            self.memo[key] = self.terminal("key", dfa=difference(json_string_dfa([]),
                                                                literals_dfa([_literal(k) for k in declared])))
        return self.memo[key]


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


_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalItems", "additionalProperties", "propertyNames", "contains", "not", "if", "then",
               "else", "unevaluatedItems", "unevaluatedProperties")


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
        if k in _SCHEMA_MAPS and isinstance(v, dict):
            v = {name: _without_annotations(x) for name, x in v.items()}
        elif k in _SCHEMA_LISTS and isinstance(v, list) or k == "items" and isinstance(v, list):
            v = [_without_annotations(x) for x in v]
        elif k in _SCHEMA_ONE:
            v = _without_annotations(v)
        out[k] = v
    return out


def _object_const(v: dict) -> dict:
    """The schema of exactly the object v, whatever its members' order."""
    return {"type": "object", "properties": {k: {"const": x} for k, x in v.items()}, "required": list(v),
            "additionalProperties": False}


def _literal(key: str) -> bytes:
    """The JSON string literal of a key, as written (json.dumps without ASCII escapes)."""
    return json.dumps(key, ensure_ascii=False).encode("utf-8", "surrogatepass")
