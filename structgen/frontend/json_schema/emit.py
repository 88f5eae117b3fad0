"""JSON Schema → grammar IR (frontend/ir.py), with ready byte DFAs for constrained strings and numbers.

Each schema node becomes one nonterminal, named after its JSON pointer. The output language is a
subset of the schema's instances written in one serialization style (the chosen property order
and separators): every word is a valid instance. Expressions are built as lists of alternative
symbol sequences (an optional part doubles them, as Lark's EBNF expansion does, so the grammar has
the same LR(1) structure); repetition is a left-recursive nonterminal. In flexible style the
optional whitespace between lexemes is one nullable nonterminal, not a doubling of every rule.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

from ...automata.dfa import ByteDFA, intersect, literal_dfa
from ...automata.word_sets import literals_dfa
from ...automata.regex_dfa import regex_dfa
from ...budget import check as check_budget
from ...errors import GrammarError, LimitExceeded, RegexError, SchemaError, UnsupportedFeature
from ...options import DEFAULT_OPTIONS, CompileOptions
from ..ir import Grammar, GrammarBuilder, productive_nonterminals
from .expr import EMPTY, Expr, cat, opt, union
from .normalize import NoValue, Normalizer, Relaxation, load_schema
from .object_union import _UnionRefused
from .objects import ObjectEmitter, _object_const
from .strings import StringEmitter
from .vocabulary import (ANNOTATIONS, JSON_INTEGER, JSON_NUMBER, JSON_STRING, KEYWORDS, NOT_VALUES, TYPES, WS_TERMINAL,
                         SchemaTexts, _internal_ok, json_str)


@dataclass
class SchemaGrammar:
    """The compiled form of a schema: grammar IR and the relaxations made (lenient mode)."""

    ir: Grammar
    relaxations: list[Relaxation] = field(default_factory=list)

    @property
    def lark(self) -> str:
        """A readable rendering of the rules (Lark-like; DFA terminals are shown by size)."""
        return self.ir.text


def schema_to_grammar(schema: Any, options: CompileOptions | None = None, *, parametric: bool = True,
                      **changes: Any) -> SchemaGrammar:
    """Compile a JSON Schema to grammar IR under `options` (structgen/options.py) with `changes`
    applied. `whitespace="compact"` writes one line with the given (item, key) `separators`
    (default json.dumps' ", " and ": "); "flexible" allows a run of 1..max_whitespace JSON
    whitespace characters between any two lexemes (none before the value or after it), so
    `json.dumps(x, indent=2)` fits too. `property_order`: "declared" (schema order, then
    additional properties) or "any". `parametric=False` writes every object's constraints as rules
    (see Emitter.parametric_object)."""
    opts = (options or DEFAULT_OPTIONS).with_(**changes)
    try:
        return Emitter(load_schema(schema), opts, parametric).run()
    except RecursionError:
        raise LimitExceeded("the schema is nested too deeply to compile") from None


@lru_cache(maxsize=4096)
def _hint(text: str, upper: bool = False) -> str:
    """A short name part for a rule or terminal (once per text: rule names come from pointer segments, which repeat)."""
    return re.sub("[^A-Z0-9]" if upper else "[^a-z0-9]", "", text.upper() if upper else text.lower())[:20]


class Emitter(StringEmitter, ObjectEmitter, Normalizer):
    """Writes the IR of one schema: `schema()` returns the nonterminal of a node's values."""

    def __init__(self, root: Any, options: CompileOptions = DEFAULT_OPTIONS, parametric: bool = True,
                 builder: GrammarBuilder | None = None) -> None:
        """`builder`: write into this one (several schemas in one grammar: structural tags)."""
        super().__init__(root, options.strict)
        self.parametric = parametric
        self.limits = options.limits
        self.any_order = options.property_order == "any"
        self.separators = {", ": options.separators[0], ": ": options.separators[1]}
        self.max_whitespace = max_whitespace = options.max_whitespace if options.whitespace == "flexible" else None
        if builder is None:
            builder = GrammarBuilder(max_rules=options.limits.max_rules)
            builder.lexer_forks = True  # a schema's language is its rules': a lexer tie forks (automata/lexer.py)
        self.b = builder
        self.memo: dict[Any, Any] = {}  # pointer / canonical text -> nonterminal
        self.schema_text = SchemaTexts()  # the canonical text of a subschema without its annotations
        self.n = 0
        self.ws: Expr = EMPTY  # optional whitespace after a lexeme
        if max_whitespace is not None:
            t = self.b.terminal(WS_TERMINAL, regex_dfa(f"[ \\t\\n\\r]{{1,{max_whitespace}}}"), key=("ws",))
            w = self.b.nonterminal("ws")
            self.b.rule(w, [t])
            self.b.rule(w, [])
            self.ws = [(w,)]

    # --- output ------------------------------------------------------------------------

    def value(self) -> Expr:
        """The expression of the root schema's values."""
        return self.schema(self.root, "#", self._base(self.root, ""))

    def run(self) -> SchemaGrammar:
        top = self.value()
        start = self.b.nonterminal("start")
        self.define(start, top)
        try:
            return SchemaGrammar(self.b.build(start, prune=True), self.relaxations)
        except GrammarError:
            raise self.ref_cycle_error(self.b.build(start, prune=False, check=False)) from None

    def ref_cycle_error(self, g: Grammar) -> SchemaError:
        """Why the root derives no finite value: a `$ref` cycle every instance would have to nest
        through forever (`{"$ref": "#"}`); the error names the cycle's pointers."""
        productive = productive_nonterminals(g)
        refs = {~nt: k[4:] for k, nt in self.memo.items() if isinstance(k, str) and k.startswith("ref|")}
        uses: dict[int, list[int]] = {}
        for a, rhs in zip(g.lhs, g.rhs):  # every rule of a dead nonterminal uses a dead one
            uses.setdefault(a, []).extend(~x for x in rhs if x < 0 and not productive[~x])
        path, on_path, done = [g.start], {g.start}, set()
        todo = [iter(uses.get(g.start, ()))]
        while todo:  # depth first, iterative: the first back edge through a $ref closes the cycle
            b = next(todo[-1], None)
            if b is None:
                todo.pop()
                a = path.pop()
                on_path.discard(a)
                done.add(a)
            elif b in on_path:
                ptrs = [refs[x] for x in path[path.index(b):] if x in refs]
                if ptrs:
                    chain = " -> ".join(ptrs + [ptrs[0]])
                    return SchemaError(f"the $ref cycle {chain} derives no finite value (an instance would "
                                       "have to nest through it forever)", ptrs[0])
            elif b not in done:
                on_path.add(b)
                path.append(b)
                todo.append(iter(uses.get(b, ())))
        return SchemaError("the schema accepts no value (every alternative derives nothing finite)", "#")

    def lit(self, text: str) -> Expr:
        """The terminal of a literal text (one per distinct text)."""
        data = text.encode("utf-8", "surrogatepass")
        t = self.b.find_terminal(("lit", data))
        if t is None:
            t = self.b.terminal(_literal_name(text), literal_dfa(data), key=("lit", data), is_literal=True)
        return [(t,)]

    def sep(self, text: str) -> Expr:
        """A separator (", " or ": "): exact in compact style; in flexible style optional
        whitespace may precede ":" and follow ":" or "," (the whitespace after a value is `self.ws`)."""
        if self.max_whitespace is None:
            return self.lit(self.separators.get(text, text))
        mark = text.strip()
        return cat(self.ws, self.lit(mark), self.ws) if mark == ":" else cat(self.lit(mark), self.ws)

    def open_close(self, text: str) -> Expr:
        """A bracket; in flexible style whitespace may follow an opening one."""
        return cat(self.lit(text), self.ws) if text in "{[" else self.lit(text)

    def new_nt(self, hint: str) -> int:
        self.n += 1
        return self.b.nonterminal(f"r{self.n}_{_hint(hint)}")

    def new_rule(self, hint: str, body: Expr) -> Expr:
        """A nonterminal deriving `body`; the expression of it."""
        nt = self.new_nt(hint)
        self.define(nt, body)
        return [(nt,)]

    def define(self, nt: int, body: Expr) -> None:
        for alt in body:
            self.b.rule(nt, alt)

    def star(self, e: Expr) -> Expr:
        """Zero or more repetitions of e (Lark's `e*`: a left-recursive nonterminal, then optional)."""
        key = ("star", tuple(e))
        nt = self.memo.get(key)
        if nt is None:
            nt = self.memo[key] = self.new_nt("star")
            self.define(nt, union(e, cat([(nt,)], e)))
        return [(nt,), ()]

    def terminal(self, hint: str, pattern: str | None = None, dfa: ByteDFA | None = None,
                 name: str | None = None) -> Expr:
        """A terminal for a regex or a ready DFA; the same language (same cached DFA or regex) gets
        the same terminal, so the lexer builds one DFA per distinct set of terminals, not per use."""
        key = ("dfa", id(dfa)) if dfa is not None else ("re", pattern)
        got = self.b.find_terminal(key)
        if got is None:
            if dfa is None:
                try:
                    dfa = regex_dfa(pattern)
                except RegexError as e:
                    raise SchemaError(f"cannot compile {hint} pattern {pattern!r}: {e}") from None
            self.n += 1
            got = self.b.terminal(name or f"T{self.n}_{_hint(hint, True)}", dfa, key=key)
        return [(got,)]

    # --- schemas --------------------------------------------------------------------------

    def schema(self, s: Any, ptr: str, base: str) -> Expr:
        """The nonterminal (as an expression) for the values valid under schema `s`."""
        check_budget(ptr)
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
        key = f"{base}|{self.schema_text(s)}" if "$ref" not in s else None
        if key and key in self.memo:
            return [(self.memo[key],)]
        if "$ref" in s:
            target, tptr, tbase = self.resolve(s["$ref"], base, ptr)
            siblings = {k: v for k, v in s.items() if k not in ANNOTATIONS and k != "$ref"}
            if siblings:
                return self.schema(self.merge_all([target, siblings], ptr), ptr, base)
            tkey = f"ref|{tptr}"
            if tkey not in self.memo:
                nt = self.new_nt("ref")
                self.memo[tkey] = nt  # recursion goes through the name
                try:
                    self.define(nt, self.schema(target, tptr, tbase))
                except NoValue:
                    del self.memo[tkey]  # a rule-less nonterminal derives nothing: pruned at the end
                    raise
                except LimitExceeded as e:
                    raise e.locate(tptr)
            return [(self.memo[tkey],)]
        nt = self.new_nt(ptr.split("/")[-1].strip("#") or "root")
        self.memo[key] = nt
        try:
            self.define(nt, self.body(s, ptr, base))
        except NoValue:
            del self.memo[key]
            raise
        except LimitExceeded as e:
            raise e.locate(ptr)
        return [(nt,)]

    def _branch(self, rest: dict, b: Any, ptr: str) -> Any:
        """A oneOf branch merged with its siblings; None where no value satisfies it (`false`): such a
        branch matches nothing, so it neither adds values nor overlaps another ({"oneOf": [false, true]} is true)."""
        try:
            return self.merge_all([rest, b], ptr)
        except NoValue:
            return None

    def body(self, s: dict, ptr: str, base: str) -> Expr:
        # keywords outside the vocabulary are annotations by the spec: ignored, like "title"
        values = self.finite_values(s, ptr)
        if values is not None:  # a finite language: keep the values the whole schema accepts
            used = "const" if "const" in s else "enum"  # the candidates' source; the other one still checks
            rest = {k: v for k, v in s.items() if k != used}
            check = self.validator(rest, ptr).is_valid if any(k in KEYWORDS for k in rest) else (lambda v: True)
            try:
                kept = {json.dumps(v, sort_keys=True): v for v in values if check(v) and _internal_ok(s, v)}
            except Exception as e:  # e.g. a ref or pattern jsonschema cannot handle
                raise UnsupportedFeature("enum", ptr, f"cannot evaluate the schema on its values: {e}") from None
            if not kept:
                raise NoValue("enum" if "enum" in s else "const", ptr, "no value satisfies the schema")
            strings = [v for v in kept.values() if isinstance(v, str)]
            objects = [v for v in kept.values() if isinstance(v, dict) and len(v) > 1]
            if not (self.any_order and self.parametric and len(objects) > 1):
                objects = []  # else: one object whose branches are the values (their members in any order)
            alts = [self.literal_value(v) for v in kept.values() if not isinstance(v, str) or len(strings) <= 8
                    if not any(v is o for o in objects)]
            if objects:
                try:
                    alts.append(self.object_union([(_object_const(o), ptr, "") for o in objects], ptr))
                except _UnionRefused:
                    alts += [self.literal_value(o) for o in objects]
            if len(strings) > 8:  # one terminal (a trie DFA) instead of a terminal per value
                words = [json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass") for v in strings]
                alts.append(self.terminal("enum", dfa=literals_dfa(words)))
            return union(*alts)
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
                branches: list[Expr] = []
                seen_branches: set[str] = set()
                subs = self.exclusive([self._branch(rest, b, ptr) for b in s[k]], ptr) if k == "oneOf" else s[k]
                rest = {} if k == "oneOf" else rest
                kept: list[tuple[int, Any]] = []
                for i, sub in enumerate(subs):
                    if sub is None:
                        continue
                    canon = json.dumps(sub, sort_keys=True)
                    if k == "anyOf" and canon in seen_branches:  # identical branches would collide in LR
                        continue
                    seen_branches.add(canon)
                    kept.append((i, self.merge_all([rest, sub], ptr) if any(kk not in ANNOTATIONS for kk in rest)
                                 else sub))
                objects = self.object_branches(kept, f"{ptr}/{k}", base) if self.parametric and self.any_order else {}
                for i, merged in kept:
                    if i in objects:
                        continue
                    try:
                        branches.append(self.schema(merged, f"{ptr}/{k}/{i}", base))
                    except NoValue:
                        continue  # a branch no value satisfies adds nothing (and cannot overlap in oneOf)
                if objects:
                    try:
                        branches.append(self.object_union([o for v in objects.values() for o in v], f"{ptr}/{k}"))
                    except NoValue:
                        pass
                    except _UnionRefused:  # each branch its own object (LALR may still tell them apart)
                        for i, merged in kept:
                            if i in objects:
                                try:
                                    branches.append(self.schema(merged, f"{ptr}/{k}/{i}", base))
                                except NoValue:
                                    continue
                if not branches:
                    raise NoValue(k, ptr + "/" + k, "no branch can be satisfied")
                return union(*branches)
        types = s.get("type", list(TYPES))
        types = [types] if isinstance(types, str) else list(types)
        if "integer" in types and "number" in types:
            types.remove("integer")
        excluded = s.get(NOT_VALUES, [])
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in excluded):
            self.unsupported("not", ptr + "/not", "excluding numbers is not expressible yet", "more")
        if None in excluded and "null" in types:
            types.remove("null")
        alts: list[Expr | None] = []
        for t in types:
            try:
                alts.append(self.typed(t, s, ptr, base))
            except NoValue:  # no value of this type: the others may remain
                alts.append(None)
        if "boolean" in types:
            alts[types.index("boolean")] = union(*(self.lit(b) for b in ("true", "false")
                                                   if not any(v is (b == "true") for v in excluded))) or None
        kept_alts = [a for a in alts if a]
        if not kept_alts:
            raise NoValue("type", ptr, "no value satisfies the constraints")
        return union(*kept_alts)

    # --- values ---------------------------------------------------------------------------

    def named_terminal(self, name: str, pattern: str) -> Expr:
        return self.terminal(name, pattern, name=name)

    def any_value(self) -> Expr:
        got = self.memo.get("json_value")
        if got is None:
            b = self.b
            value, obj, member, arr = (b.nonterminal(n) for n in ("json_value", "json_object", "json_member",
                                                                   "json_array"))
            self.memo["json_value"] = got = [(value,)]
            string = self.named_terminal("JSON_STRING", JSON_STRING)
            self.define(value, union([(obj,)], [(arr,)], string, self.named_terminal("JSON_NUMBER", JSON_NUMBER),
                                     self.lit("true"), self.lit("false"), self.lit("null")))
            self.define(obj, cat(self.open_close("{"), opt(cat([(member,)], self.star(cat(self.sep(", "), [(member,)])))),
                                 self.open_close("}")))
            self.define(member, cat(string, self.sep(": "), got, self.ws))
            item = cat(got, self.ws)
            self.define(arr, cat(self.open_close("["), opt(cat(item, self.star(cat(self.sep(", "), item)))),
                                 self.open_close("]")))
        return got

    def literal_value(self, v: Any) -> Expr:
        """An exact JSON value (const/enum), written in the grammar's style (objects in any member
        order with property_order="any")."""
        if isinstance(v, dict):
            if self.any_order and len(v) > 1:
                return self.schema(_object_const(v), "#/const", "")
            if not v:
                return cat(self.open_close("{"), self.open_close("}"))
            parts: list[Expr] = [self.open_close("{")]
            for i, (k, x) in enumerate(v.items()):
                if i:
                    parts.append(self.sep(", "))
                parts += [self.lit(json_str(k)), self.sep(": "), self.literal_value(x), self.ws]
            return cat(*parts, self.open_close("}"))
        if isinstance(v, list):
            if not v:
                return cat(self.open_close("["), self.open_close("]"))
            parts = [self.open_close("[")]
            for i, x in enumerate(v):
                if i:
                    parts.append(self.sep(", "))
                parts += [self.literal_value(x), self.ws]
            return cat(*parts, self.open_close("]"))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e15:
            from .numbers import decimal_regex  # every literal of the same value: 1, 1.0, 1.00 (not 1e0)

            return self.terminal("num", decimal_regex(minimum=v, maximum=v))
        return self.lit(json.dumps(v, ensure_ascii=False))

    def typed(self, t: str, s: dict, ptr: str, base: str) -> Expr | None:
        if t == "null":
            return self.lit("null")
        if t == "boolean":
            return union(self.lit("true"), self.lit("false"))
        if t in ("integer", "number"):
            return self.number(t, s, ptr)
        if t == "string":
            return self.string(s, ptr)
        if t == "array":
            return self.array(s, ptr, base)
        if t == "object":
            return self.object(s, ptr, base)
        raise SchemaError(f"unknown type {t!r}", ptr + "/type")

    def number(self, t: str, s: dict, ptr: str) -> Expr | None:
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
        if multiple == 1 and t == "integer":  # no constraint (for "number", 6000.0 is a multiple of 1)
            multiple = None
        bounded = any(b is not None for b in (lo, hi, xlo, xhi))
        if not bounded and multiple is None:
            if t == "integer":
                return self.named_terminal("JSON_INTEGER", JSON_INTEGER)
            return self.named_terminal("JSON_NUMBER", JSON_NUMBER)
        rx = None
        if bounded:
            bounds = dict(minimum=lo, maximum=hi, exclusive_minimum=xlo, exclusive_maximum=xhi)
            if t == "integer":
                rx = numbers.integer_regex(**bounds)
            else:  # bounds at 0 keep exponent forms (1e-06 >= 0); others are written without exponent
                rx = (multiple is None and numbers.sign_number_regex(**bounds)) or numbers.decimal_regex(**bounds)
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

    def array(self, s: dict, ptr: str, base: str) -> Expr:
        prefix = s.get("prefixItems")
        items = s.get("items", True)
        if isinstance(items, list):  # draft-07 tuple form
            prefix, items = items, s.get("additionalItems", True)
        prefix = list(prefix or [])
        lo = int(s.get("minItems", 0))
        hi = None if s.get("maxItems") is None else int(s["maxItems"])
        if s.get("uniqueItems") is True and not self.unique_by_construction(prefix, items, hi, ptr):
            self.unsupported("uniqueItems", ptr + "/uniqueItems", "not context-free", "more")
        elems: list[Expr] = []
        rest: Expr | None = None
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
        if max(top or 0, lo) > self.limits.max_array_unroll:  # one rule per position up to the bound
            raise UnsupportedFeature("maxItems" if (top or 0) >= lo else "minItems", ptr,
                                     f"array length bounds above {self.limits.max_array_unroll} (max_array_unroll)")
        sep = self.sep(", ")

        def item(j: int) -> Expr:
            return cat(elems[j] if j < k else rest, self.ws)

        # after(j): what follows item j-1; optional from position lo on
        after: Expr = EMPTY
        if top is None:
            after = self.star(cat(sep, rest, self.ws))
            last = max(lo, k)
        else:
            last = top
        for j in range(last - 1, 0, -1):
            body = cat(sep, item(j), after)
            after = self.new_rule("items", opt(body) if j >= lo else body)
        if top == 0:
            content = EMPTY
        else:
            first = cat(item(0), after)
            content = opt(first) if lo == 0 else first
        return self.new_rule("array", cat(self.open_close("["), content, self.open_close("]")))

def _literal_name(text: str) -> str:
    """A terminal name for a literal: the text itself when it is a plain word, else a quoted form."""
    return json_str(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the grammar generated for a schema file (debugging aid)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m structgen.frontend.json_schema SCHEMA.json [--lenient] [--flexible]")
        return 2
    g = schema_to_grammar(args[0], strict="--lenient" not in args,
                          whitespace="flexible" if "--flexible" in args else "compact")
    print(g.lark)
    for r in g.relaxations:
        print(f"// relaxed {r.keyword} at {r.pointer}: accepts {r.direction} ({r.detail})")
    return 0
