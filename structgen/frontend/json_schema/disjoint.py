"""Disjointness of schemas: whether no value satisfies two schemas, and oneOf branches rewritten to
be pairwise disjoint (so that oneOf compiles as anyOf); a mixin of normalize.Normalizer."""

from __future__ import annotations

import json
from typing import Any

from ...automata.dfa import ANY_CHAR
from ...automata.regex_dfa import json_string_dfa, meet
from ...errors import RegexError, StructgenError
from .vocabulary import (ANY_TYPE_KEYWORDS, NOT_STRINGS, NOT_VALUES, TYPE_KEYWORDS, TYPES, _internal_ok, _string_only,
                         _type_set)


def _accepts_all_of(s: Any, t: str) -> bool:
    """Whether schema s surely accepts every value of type t ("number" includes the integers)."""
    if s is True or s == {}:
        return True
    if not isinstance(s, dict):
        return False
    types = s.get("type", list(TYPES))
    types = [types] if isinstance(types, str) else types
    return t in types and not any(k in s for k in TYPE_KEYWORDS[t] | ANY_TYPE_KEYWORDS)


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


class Disjointness:
    """The disjointness questions of Normalizer (which supplies merge_all, finite_values, validator,
    string_patterns, unsupported and the relaxations)."""

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
                both = meet(json_string_dfa(pa or [ANY_CHAR + "*"]), json_string_dfa(pb or [ANY_CHAR + "*"]))
                return both.num_states == 0  # no string in both
            except RegexError:
                return True  # one side matches nothing
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
