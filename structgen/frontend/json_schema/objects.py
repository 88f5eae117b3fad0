"""JSON Schema objects → grammar IR: members, their constraints, and unions of object schemas.

`ObjectEmitter` is the part of the emitter (emit.Emitter) that writes objects: in declared order or
any order, their constraint states as rules (small objects) or as parser state (ir.ObjectSpec,
automata/objects.py); anyOf / oneOf over object schemas in any order as one object whose branches
are followed side by side (ir.ObjectUnion) is its base class ObjectUnionEmitter (object_union.py).
"""

from __future__ import annotations

from typing import Any, Sequence

from ...automata.dfa import ANY_CHAR
from ...automata.word_sets import minus_words
from ...automata.regex_dfa import json_string_dfa, meet, minus, quoted_dfa
from ...errors import UnsupportedFeature
from ..ir import ObjectSpec, ObjectUnion, presence_holds
from .expr import EMPTY, Expr, cat, opt, union
from .normalize import NoValue
from .object_union import ObjectUnionEmitter
from .vocabulary import JSON_STRING, PRESENCE, _literal, _pred_names, _ptr_escape, json_str

PARAMETRIC_MIN_OPTIONAL = 8  # objects with this many optional members keep their constraints as parser state
PARAMETRIC_MIN_UNORDERED = 4  # property_order="any": objects with this many members do (else 2^n rules)


class ObjectEmitter(ObjectUnionEmitter):
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
            members.append((cat(self.lit(json_str(n)), self.member_value(value)),
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

    def member_value(self, value: Expr) -> Expr:
        """What follows a member's key (": ", the value, whitespace) as one nonterminal per distinct
        value: members that differ only in their key share its LR states, ~2 per member where the
        whole member rule made one per symbol (6 in flexible style). Not for object unions, whose
        member rules must stay whole (automata/objects.py reads the value's first terminal there)."""
        key = ("member_value", tuple(value))
        nt = self.memo.get(key)
        if nt is None:
            nt = self.memo[key] = self.new_nt("value")
            self.define(nt, cat(self.sep(": "), value, self.ws))
        return [(nt,)]

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
            rest = minus_words(rest, [_literal(k) for k in sorted(declared)])
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
            self.memo[key] = self.terminal("key", dfa=minus_words(json_string_dfa([]),
                                                                 [_literal(k) for k in sorted(declared)]))
        return self.memo[key]


def _object_const(v: dict) -> dict:
    """The schema of exactly the object v, whatever its members' order."""
    return {"type": "object", "properties": {k: {"const": x} for k, x in v.items()}, "required": list(v),
            "additionalProperties": False}
