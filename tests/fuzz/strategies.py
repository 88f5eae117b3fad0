"""Generators shared by the fuzz tests (tests/fuzz/test_fuzz_*.py) and the long runner (bench/fuzz.py).

Hypothesis strategies build the inputs (JSON Schemas, regexes, Lark grammars, token-op lists); plain
`random.Random` helpers then draw words, instances and mutations of them from a seed, so a failing
example shrinks to a small input and a seed. Nothing here judges: the oracles live in the test files.
"""

from __future__ import annotations

import json
import random
import sys
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
TOKENIZERS = REPO.parent / "shared" / "data" / "tokenizers"
if str(REPO / "tests") not in sys.path:  # tests/ir_words.py, tests/datasets.py (bench/fuzz.py imports this file)
    sys.path.insert(0, str(REPO / "tests"))


@lru_cache(maxsize=None)
def tokenizer(name: str = "llama3"):
    """A TokenizerInfo of ../shared/data/tokenizers/<name>, loaded once per process (datasets.tokenizer_info)."""
    from datasets import tokenizer_info

    return tokenizer_info(name)


@lru_cache(maxsize=None)
def compiler(name: str = "llama3"):
    """One GrammarCompiler (no disk cache) per tokenizer, shared by the fuzzers of a process."""
    from structgen import GrammarCompiler

    return GrammarCompiler(tokenizer(name))


def accepts(cg, text: str | bytes) -> bool:
    """The matcher takes `text` byte by byte and can end there (a complete word)."""
    from structgen import GrammarMatcher

    m = GrammarMatcher(cg)
    return m.accept_string(text) and m.is_accepting()


# --- JSON Schema ------------------------------------------------------------------------------

KEYS = ("a", "b", "c", "d", "e", "é", 'q"', "k y", "f\\")
EXTRA_KEYS = ("a", "x", "zz", "é")
# simple patterns that ECMA-262 and Python's re read alike (no `.`, no `\d`); `$` only because
# generated strings never hold a newline (Python's `$` also matches before a final "\n")
PATTERNS = {
    "^a": ["a", "ab", "ba", ""],
    "b": ["b", "abc", "a", ""],
    "^[a-c]*$": ["", "abc", "cab", "abx", "x"],
    "^[0-9]{2}$": ["12", "1", "123", "ab"],
    "^(ab|c)+$": ["ab", "c", "abc", "cab", "a", ""],
    "é|x": ["é", "x", "ax", "a"],
}
STRING_CHARS = "abcx01 é😀\t\"\\/"  # no "\n" (see PATTERNS)
DYADIC = (0.5, -0.5, 1.25, -2.75, 3.5)  # floats that Decimal, float and jsonschema compare exactly


def _small_json() -> st.SearchStrategy:
    leaves = (st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(DYADIC)
              | st.text(alphabet="ab é", max_size=3))

    def containers(c: st.SearchStrategy) -> st.SearchStrategy:
        return st.lists(c, max_size=2) | st.dictionaries(st.sampled_from(KEYS), c, max_size=2)

    return st.recursive(leaves, containers, max_leaves=4)


_bound = st.integers(-6, 6) | st.sampled_from(DYADIC)


def _leaf_schemas() -> st.SearchStrategy:
    integer = st.fixed_dictionaries({"type": st.just("integer")}, optional={
        "minimum": st.integers(-6, 6), "maximum": st.integers(-6, 6), "exclusiveMinimum": st.integers(-6, 6),
        "exclusiveMaximum": st.integers(-6, 6), "multipleOf": st.sampled_from([2, 3, 5])})
    number = st.fixed_dictionaries({"type": st.just("number")}, optional={
        "minimum": _bound, "maximum": _bound, "exclusiveMinimum": _bound, "exclusiveMaximum": _bound,
        "multipleOf": st.sampled_from([1, 2, 3])})
    string = st.fixed_dictionaries({"type": st.just("string")}, optional={
        "minLength": st.integers(0, 3), "maxLength": st.integers(0, 5), "pattern": st.sampled_from(sorted(PATTERNS))})
    types = st.lists(st.sampled_from(["null", "boolean", "integer", "number", "string", "array", "object"]),
                     min_size=1, max_size=3, unique=True).map(lambda t: {"type": t})
    scalar = st.none() | st.booleans() | st.integers(-3, 3) | st.text(alphabet="ab", max_size=2)
    sane_string = string  # minLength > maxLength under `not` was a bug (test_fuzz_json_schema.FIXED)
    simple_not = st.one_of(  # the `not` forms structgen compiles exactly (others are refused, typed)
        types, sane_string, st.lists(scalar, min_size=1, max_size=3).map(lambda v: {"enum": v}),
        st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True).map(lambda r: {"required": r}),
    ).map(lambda s: {"not": s})
    return st.one_of(
        st.just({}), st.just({"type": "null"}), st.just({"type": "boolean"}), integer, number, string, types,
        st.lists(_small_json(), min_size=1, max_size=4).map(lambda v: {"enum": v}),
        _small_json().map(lambda v: {"const": v}), simple_not,
    )


def _compound(children: st.SearchStrategy, refs: list[dict]) -> st.SearchStrategy:
    """Objects, arrays and combinators over `children`; `$ref`s only where a value is consumed
    (properties, items), so no reference cycle is free of input."""
    value = st.one_of(children, st.sampled_from(refs)) if refs else children
    sub = value | st.booleans()  # boolean schemas where a schema goes

    @st.composite
    def obj(draw) -> dict:
        # 4+ properties in any order, 8+ optional ones in declared order: constraints as parser state
        props = draw(st.dictionaries(st.sampled_from(KEYS), value, max_size=draw(st.sampled_from([3, 3, 5, 9]))))
        out: dict = {"type": "object"} if draw(st.booleans()) else {}
        if props:
            out["properties"] = props
        req = draw(st.lists(st.sampled_from(KEYS), max_size=2, unique=True))
        if req:
            out["required"] = req
        extra = draw(st.sampled_from(["omit", "omit", False, True, "schema"]))
        if extra == "schema":
            out["additionalProperties"] = draw(value)
        elif extra != "omit":
            out["additionalProperties"] = extra
        if draw(st.integers(0, 5)) == 0:
            out["minProperties"] = draw(st.integers(0, 2))
        if draw(st.integers(0, 5)) == 0:
            out["maxProperties"] = draw(st.integers(0, 3))
        if draw(st.integers(0, 7)) == 0:
            out["patternProperties"] = {"^x": draw(value)}
        if draw(st.integers(0, 7)) == 0:
            out["dependentRequired"] = {draw(st.sampled_from(KEYS)): draw(st.lists(st.sampled_from(KEYS), max_size=2,
                                                                                    unique=True))}
        if draw(st.integers(0, 9)) == 0:
            out["propertyNames"] = {"pattern": draw(st.sampled_from(["^[a-c]*$", "^(ab|c)+$"]))}
        return out

    @st.composite
    def arr(draw) -> dict:
        out: dict = {"type": "array"} if draw(st.booleans()) else {}
        prefix = draw(st.lists(value, max_size=2))
        if prefix:
            out["prefixItems"] = prefix
        if draw(st.booleans()):
            out["items"] = draw(sub)
        if draw(st.booleans()):
            out["minItems"] = draw(st.integers(0, 3))
        if draw(st.booleans()):
            out["maxItems"] = draw(st.integers(0, 4))
        return out

    combos = st.tuples(st.sampled_from(["anyOf", "oneOf", "allOf"]), st.lists(children, min_size=1, max_size=3))
    return st.one_of(obj(), arr(), combos.map(lambda kv: {kv[0]: kv[1]}))


@st.composite
def json_schemas(draw) -> dict:
    """A small JSON Schema (draft 2020-12): leaves, objects, arrays, combinators, optional `$defs`
    (recursive ones included) referenced from properties and items."""
    n_defs = draw(st.integers(0, 2)) if draw(st.booleans()) else 0
    refs = [{"$ref": f"#/$defs/d{i}"} for i in range(n_defs)]
    tree = st.recursive(_leaf_schemas(), lambda c: _compound(c, refs), max_leaves=6)
    root = dict(draw(tree))
    if n_defs:
        root["$defs"] = {f"d{i}": draw(tree) for i in range(n_defs)}
    return root


ODD_VALUES = (-1, 0, 1.5, 10 ** 30, "x", "", [], {}, None, True, [1, 1], {"type": "wat"}, "#/$defs/nope")


def _slots(node: Any, out: list) -> list:
    """Every (container, key) inside a schema, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append((node, k))
        _slots(v, out)
    return out


@st.composite
def broken_schemas(draw) -> Any:
    """A generated schema with 1-3 values replaced by odd ones (wrong types, negative bounds, bad
    refs): often not a valid schema at all, which must be refused with a typed error."""
    import copy

    schema = copy.deepcopy(draw(json_schemas()))
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(schema, [])
        if not slots:
            return copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        node, key = slots[draw(st.integers(0, len(slots) - 1))]
        node[key] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES) | _small_json()))  # never shared
    return schema


def _resolve(schema: Any, root: dict) -> Any:
    if isinstance(schema, dict) and "$ref" in schema:
        return root.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _random_string(rng: random.Random, lo: int = 0, hi: int = 4) -> str:
    lo, hi = min(lo, 8), min(max(lo, hi), 8)  # a broken schema's bounds may be huge
    return "".join(rng.choice(STRING_CHARS) for _ in range(rng.randint(lo, hi)))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value (ints, dyadic floats, short strings over STRING_CHARS, small containers)."""
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-7, 7)
    if kind == 3:
        return rng.choice(DYADIC + (10 ** 20, -(10 ** 18)))
    if kind == 4:
        return rng.choice([_random_string(rng), rng.choice(KEYS)])
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KEYS + EXTRA_KEYS): random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def sample_instance(schema: Any, root: dict, rng: random.Random, depth: int = 0) -> Any:
    """A value meant to fit `schema` (best effort: combinators and bounds may still make it invalid)."""
    schema = _resolve(schema, root)
    if schema is True or schema == {} or depth > 5:
        return random_json(rng, 2) if depth <= 5 else None
    if schema is False:
        return random_json(rng, 2)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return sample_instance(rng.choice(schema[key]), root, rng, depth + 1)
    if "not" in schema:
        return random_json(rng, 2)
    types = schema.get("type")
    if types is None:
        types = ["object"] if "properties" in schema or "required" in schema else \
            ["array"] if "items" in schema or "prefixItems" in schema else [None]
    t = rng.choice(types if isinstance(types, list) else [types])
    if t == "null":
        return None
    if t == "boolean":
        return rng.random() < 0.5
    if t in ("integer", "number"):
        return _sample_number(schema, rng, t == "integer")
    if t == "string":
        if schema.get("pattern") in PATTERNS and rng.random() < 0.7:
            return rng.choice(PATTERNS[schema["pattern"]])
        return _random_string(rng, schema.get("minLength", 0), min(schema.get("maxLength", 4), 6))
    if t == "array":
        return _sample_array(schema, root, rng, depth)
    if t == "object":
        return _sample_object(schema, root, rng, depth)
    return random_json(rng, 2)


def _sample_number(schema: dict, rng: random.Random, integer: bool) -> int | float:
    lo = max(schema.get("minimum", -8), schema.get("exclusiveMinimum", -9) + 1)
    hi = min(schema.get("maximum", 8), schema.get("exclusiveMaximum", 9) - 1)
    lo, hi = int(lo // 1), int(hi // 1)
    value = rng.randint(min(lo, hi), max(lo, hi))
    step = schema.get("multipleOf", 1)
    value -= value % step
    if not integer and rng.random() < 0.3:
        return value + rng.choice([0.5, 0.25, -0.5])
    return value


def _sample_array(schema: dict, root: dict, rng: random.Random, depth: int) -> list:
    lo, hi = min(schema.get("minItems", 0), 5), min(schema.get("maxItems", 3), 5)
    n = rng.randint(min(lo, hi), max(lo, hi))
    prefix = schema.get("prefixItems", [])
    items = schema.get("items", True)
    return [sample_instance(prefix[i] if i < len(prefix) else items, root, rng, depth + 1) for i in range(n)]


def _sample_object(schema: dict, root: dict, rng: random.Random, depth: int) -> dict:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    out = {}
    for key, sub in props.items():
        if key in required or (depth < 3 and rng.random() < 0.5):
            out[key] = sample_instance(sub, root, rng, depth + 1)
    for key in required - set(out):
        out[key] = random_json(rng, 2)
    extra = schema.get("additionalProperties", True)
    if extra is not False and rng.random() < 0.3:
        out[rng.choice(EXTRA_KEYS)] = sample_instance(extra, root, rng, depth + 1)
    return out


def normalize_numbers(value: Any) -> Any:
    """Integral floats become ints: structgen writes `type: integer` as JSON integer literals only
    (1, not 1.0), a deliberate choice, where jsonschema also takes 1.0."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, list):
        return [normalize_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize_numbers(v) for k, v in value.items()}
    return value


def mutate_value(value: Any, rng: random.Random) -> Any:
    """One small edit somewhere in `value`: a key deleted or added, a type changed, a number or a
    length off by one, a character inserted."""
    if isinstance(value, dict) and value and rng.random() < 0.6:
        key = rng.choice(list(value))
        out = dict(value)
        op = rng.randrange(3)
        if op == 0:
            del out[key]
        elif op == 1:
            out[rng.choice(EXTRA_KEYS + KEYS)] = random_json(rng, 2)
        else:
            out[key] = mutate_value(value[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.6:
        i = rng.randrange(len(value))
        op = rng.randrange(3)
        if op == 0:
            return value[:i] + value[i + 1:]
        if op == 1:
            return value + [value[i]]
        return value[:i] + [mutate_value(value[i], rng)] + value[i + 1:]
    if isinstance(value, bool) or value is None:
        return rng.choice([0, "true", None if value is not None else False, [value]])
    if isinstance(value, (int, float)):
        return normalize_numbers(rng.choice([value + 1, value - 1, value + 0.5, -value, str(value), [value]]))
    if isinstance(value, str):
        i = rng.randint(0, len(value))
        return rng.choice([value[:i] + rng.choice(STRING_CHARS) + value[i:], value[:i] + value[i + 1:], len(value)])
    return random_json(rng, 1)


def json_instances(schema: dict, rng: random.Random, n: int = 12) -> list[Any]:
    """Instances for a schema: sampled from it, random values, and mutations of the samples."""
    sampled = [normalize_numbers(sample_instance(schema, schema, rng)) for _ in range(n // 2)]
    out = sampled + [normalize_numbers(random_json(rng)) for _ in range(n // 6)]
    out += [mutate_value(rng.choice(sampled), rng) for _ in range(n - len(out))] if sampled else []
    return out


def _ws(rng: random.Random, most: int) -> str:
    return "".join(rng.choice(" \t\n\r") for _ in range(rng.randint(0, most)))


def dumps_layout(value: Any, rng: random.Random, max_ws: int = 16) -> str:
    """`value` as JSON with a random layout for whitespace="flexible": a json.dumps style, or random
    runs of 0..3 whitespace characters between lexemes (never before or after the value, never a run
    longer than `max_ws`)."""
    style = rng.randrange(5)
    if style < 4:
        kw = [{}, {"separators": (",", ":")}, {"indent": 1}, {"indent": 2}][style]
        text = json.dumps(value, ensure_ascii=False, **kw)
        if "indent" not in kw or max_whitespace_run(text) <= max_ws:
            return text
        return json.dumps(value, ensure_ascii=False)

    def emit(v: Any) -> str:
        if isinstance(v, dict):
            body = ("," + _ws(rng, 3)).join(
                json.dumps(k, ensure_ascii=False) + _ws(rng, 3) + ":" + _ws(rng, 3) + emit(x) for k, x in v.items())
            return "{" + _ws(rng, 3) + body + _ws(rng, 3) + "}"
        if isinstance(v, list):
            return "[" + _ws(rng, 3) + (_ws(rng, 3) + "," + _ws(rng, 3)).join(map(emit, v)) + _ws(rng, 3) + "]"
        return json.dumps(v, ensure_ascii=False)

    return emit(value)


def max_whitespace_run(text: str) -> int:
    """The longest run of JSON whitespace outside string literals."""
    best = run = 0
    in_str = esc = False
    for c in text:
        if in_str:
            in_str = esc or c != '"'
            esc = not esc and c == "\\"
            continue
        if c in " \t\n\r":
            run += 1
            best = max(best, run)
        else:
            run = 0
            in_str = c == '"'
    return best


def squeeze(text: str) -> str:
    """`text` without the whitespace outside string literals (to compare layouts)."""
    out, in_str, esc = [], False, False
    for c in text:
        if in_str:
            in_str = esc or c != '"'
            esc = not esc and c == "\\"
        elif c in " \t\n\r":
            continue
        else:
            in_str = c == '"'
        out.append(c)
    return "".join(out)


def mutate_text(text: str, rng: random.Random) -> str:
    """A byte-level-ish edit of serialized JSON: insert, delete, replace or duplicate characters."""
    i = rng.randint(0, len(text))
    j = min(len(text), i + rng.randint(1, 3))
    c = rng.choice('{}[]:,"\\ ab1-.e0' + "é")
    op = rng.randrange(4)
    if op == 0:
        return text[:i] + c + text[i:]
    if op == 1:
        return text[:i] + text[j:]
    if op == 2:
        return text[:i] + c + text[j:]
    return text[:j] + text[i:j] + text[j:]


class DuplicateKey(ValueError):
    """A JSON object repeats a member name (which member counts is up to the reader)."""


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise DuplicateKey(keys)
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_exact(text: str) -> tuple[bool, Any]:
    """(parsed, value): json.loads with exact decimals (Decimal for fractions) and no duplicate keys;
    (False, None) for text that is not JSON. Raises DuplicateKey when an object repeats a key."""
    try:
        return True, json.loads(text, parse_float=Decimal, parse_constant=_no_constant,
                                object_pairs_hook=_no_duplicates)
    except DuplicateKey:
        raise
    except ValueError:
        return False, None


def has_integral_float(value: Any) -> bool:
    """Whether some number in `value` is written with a fraction or exponent but is integral."""
    if isinstance(value, (float, Decimal)):
        return value == value.to_integral_value() if isinstance(value, Decimal) else value.is_integer()
    if isinstance(value, list):
        return any(map(has_integral_float, value))
    if isinstance(value, dict):
        return any(map(has_integral_float, value.values()))
    return False


def orderless(value: Any) -> bool:
    """No object in `value` has two members (so every property order is the declared one)."""
    if isinstance(value, dict):
        return len(value) <= 1 and all(map(orderless, value.values()))
    if isinstance(value, list):
        return all(map(orderless, value))
    return True


# --- regular expressions ------------------------------------------------------------------------

# code points at UTF-8 length boundaries and around them, plus a newline (which `.` excludes)
CODE_POINTS = (0x0A, 0x20, 0x2D, 0x30, 0x39, 0x41, 0x5A, 0x5F, 0x61, 0x7A, 0x7E, 0x7F, 0x80, 0xE9, 0x7FF, 0x800,
               0x4E2D, 0xFFFD, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF)
LITERALS = "ab0-.*+?()[]{}|^$\\ é€😀中\n"
SHORTHANDS = ("\\d", "\\w", "\\s", "\\D", "\\W", "\\S")


def _cp_escape(cp: int) -> str:
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


def _class_text(negated: bool, items: list[tuple[int, int]]) -> str:
    parts = [_cp_escape(lo) if lo == hi else f"{_cp_escape(lo)}-{_cp_escape(hi)}" for lo, hi in items]
    return "[" + ("^" if negated else "") + "".join(parts) + "]"


def _regex_leaf() -> st.SearchStrategy:
    """(kind, payload) leaves of the regex AST."""
    ranges = st.tuples(st.sampled_from(CODE_POINTS), st.sampled_from(CODE_POINTS)).map(lambda r: (min(r), max(r)))
    return st.one_of(
        st.sampled_from(LITERALS).map(lambda c: ("lit", c)),
        st.sampled_from(LITERALS).map(lambda c: ("lit", c)),
        st.tuples(st.booleans(), st.lists(ranges, min_size=1, max_size=3)).map(lambda c: ("class", c)),
        st.sampled_from(SHORTHANDS).map(lambda s: ("short", s)),
        st.just(("dot", None)),
        st.just(("empty", None)),
    )


def _regex_node(children: st.SearchStrategy) -> st.SearchStrategy:
    quant = st.sampled_from(["*", "+", "?", "{2}", "{0,2}", "{1,3}", "{2,}", "*?", "+?", "{0}"])
    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda xs: ("cat", xs)),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: ("alt", xs)),
        st.tuples(children, quant).map(lambda x: ("rep", x)),
        st.tuples(children, st.booleans()).map(lambda x: ("group", x)),
    )


regex_asts = st.recursive(_regex_leaf(), _regex_node, max_leaves=7)


ASCII_CLASSES = {"\\d": "[0-9]", "\\D": "[^0-9]", "\\w": "[A-Za-z0-9_]", "\\W": "[^A-Za-z0-9_]",
                 "\\s": "[\\t-\\r ]", "\\S": "[^\\t-\\r ]"}


def regex_text(node: tuple, oracle: bool = False) -> str:
    """The Python regex of an AST node (repeated and concatenated operands grouped as needed).
    `oracle` writes it for the `regex` module in Unicode mode with structgen's meaning: shorthands
    as explicit ASCII classes, lazy quantifiers greedy (the same language; regex's partial matching
    errs with lazy ones: it calls "aP]0" a viable prefix of `a\\w*?\\]\\]`)."""
    kind, x = node
    if kind == "lit":
        return "\\n" if x == "\n" else ("\\" + x if x in ".*+?()[]{}|^$\\" else x)
    if kind == "class":
        return _class_text(*x)
    if kind == "short":
        return ASCII_CLASSES[x] if oracle else x
    if kind == "dot":
        return "."
    if kind == "empty":
        return "(?:)"
    if kind == "cat":
        return "".join(f"(?:{regex_text(c, oracle)})" if c[0] == "alt" else regex_text(c, oracle) for c in x)
    if kind == "alt":
        return "|".join(regex_text(c, oracle) for c in x)
    if kind == "group":
        sub, capture = x
        return ("(" if capture else "(?:") + regex_text(sub, oracle) + ")"
    sub, q = x
    inner = regex_text(sub, oracle)
    atomic = sub[0] in ("lit", "class", "short", "dot", "group")
    return (inner if atomic else f"(?:{inner})") + (q[:-1] if oracle and len(q) == 2 and q[1] == "?" else q)


def _in_short(cp: int, s: str) -> bool:
    c = chr(cp)
    hit = {"d": c.isdigit() and cp < 128, "w": (c.isalnum() or c == "_") and cp < 128,
           "s": c in " \t\n\r\v\f"}[s[1].lower()]
    return hit != s[1].isupper()


def _char_matches(node: tuple, cp: int) -> bool:
    kind, x = node
    if kind == "class":
        negated, items = x
        return any(lo <= cp <= hi for lo, hi in items) != negated
    if kind == "short":
        return _in_short(cp, x)
    return cp != 0x0A  # dot


def sample_regex_word(node: tuple, rng: random.Random) -> str:
    """A string the AST matches (a random derivation; repetitions of 0..3)."""
    kind, x = node
    if kind == "lit":
        return x
    if kind in ("class", "short", "dot"):
        pool = [cp for cp in CODE_POINTS + tuple(range(0x20, 0x7F)) if _char_matches(node, cp)]
        return chr(rng.choice(pool)) if pool else ""
    if kind == "empty":
        return ""
    if kind == "cat":
        return "".join(sample_regex_word(c, rng) for c in x)
    if kind == "alt":
        return sample_regex_word(rng.choice(x), rng)
    if kind == "group":
        return sample_regex_word(x[0], rng)
    sub, q = x
    q = q.rstrip("?") if len(q) > 1 else q
    lo, hi = {"*": (0, 3), "+": (1, 3), "?": (0, 1)}.get(q, (None, None))
    if lo is None:
        a, comma, b = q.strip("{}").partition(",")
        lo = int(a)
        hi = lo if not comma else (int(b) if b else lo + 2)
    return "".join(sample_regex_word(sub, rng) for _ in range(rng.randint(lo, hi)))


def mutate_string(text: str, rng: random.Random, alphabet: str) -> str:
    """Insert, delete, replace or duplicate a character of `text`."""
    i = rng.randint(0, len(text))
    c = rng.choice(alphabet)
    op = rng.randrange(4)
    if op == 0:
        return text[:i] + c + text[i:]
    if op == 1:
        return text[:i] + text[i + 1:]
    if op == 2:
        return text[:i] + c + text[i + 1:]
    return text[:i] + text[i:i + 2] + text[i:]


REGEX_ALPHABET = "ab0-.*é€😀中 \n_Z" + "".join(map(chr, CODE_POINTS))
# regex syntax soup: escapes, groups, flags, lookarounds, backreferences, counted repetition
garbage_regexes = st.lists(st.sampled_from(list("ab()[]{}*+?|^$.-,019é") + [
    "\\", "\\d", "\\w", "\\b", "\\B", "\\1", "\\x4", "\\u00e9", "\\U0001F600", "\\N{DIGIT ONE}", "\\p{L}",
    "(?:", "(?P<n>", "(?=", "(?!", "(?<=", "(?i)", "(?s)", "(?x)", "(?#c)", "[^", "{2,1}", "{,3}", "{99999}",
    "\\Z", "\\A"]),
    max_size=10).map("".join)


# --- Lark grammars ------------------------------------------------------------------------------

# a prefix-free set of terminals with disjoint first characters or first-differing literals, so
# greedy lexing (structgen) and Earley's dynamic lexer always cut a word the same way
LARK_TERMINALS = ('"a"', '"b"', '"c"', '"xy"', '"xz"', '"("', '")"', "/[0-4]/", "/[5-9]/")
LARK_ALPHABET = "abcxyz()05 "


@st.composite
def lark_grammars(draw) -> str:
    """Lark text of a random CFG over LARK_TERMINALS: 1-4 rules, alternatives of 0-3 items with
    `?`, `*`, `+` and groups; ambiguous, left-recursive and non-LALR grammars included."""
    n = draw(st.integers(1, 4))
    names = [f"r{i}" for i in range(n)]
    symbol = st.sampled_from(LARK_TERMINALS) | st.sampled_from(names)
    group = st.lists(symbol, min_size=1, max_size=2).map(lambda s: "(" + " ".join(s) + ")")
    item = st.tuples(symbol | group, st.sampled_from(["", "", "", "?", "*", "+"])).map("".join)

    base = st.lists(st.sampled_from(LARK_TERMINALS), max_size=2).map(" ".join)  # keeps most rules productive
    lines = ["start: r0"]
    for name in names:
        alts = draw(st.lists(st.lists(item, max_size=3).map(" ".join), min_size=1, max_size=3, unique=True))
        extra = draw(base)
        if draw(st.integers(0, 3)) and extra not in alts:
            alts.append(extra)
        alts.sort(key=lambda a: a == "")  # an empty alternative goes last
        lines.append(f"{name}: " + " | ".join(alts))
    if draw(st.integers(0, 3)) == 0:
        lines.append('%ignore " "')
    return "\n".join(lines) + "\n"


@st.composite
def broken_grammars(draw) -> str:
    """A generated Lark grammar with 1-4 characters inserted, deleted or replaced (often no longer
    a grammar, which must be refused with a typed error)."""
    text = draw(lark_grammars())
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        c = draw(st.sampled_from(list(':|"/()[]*+?~.%\n r0_A-') + ["", "", "%import common.WS", "->", ".2"]))
        text = text[:i] + c + text[i + draw(st.integers(0, 1)):]
    return text


# --- token streams ------------------------------------------------------------------------------

TOKEN_OPS = ("allowed",) * 7 + ("random", "stop", "special", "rollback", "rollback")


def token_ops(min_size: int = 12, max_size: int = 60) -> st.SearchStrategy:
    """(kind, r) steps for a matcher: a token the mask allows (the r-th), a random id, a stop token,
    a special token, or rollback(r mod (history + 2)) (sometimes more than recorded)."""
    return st.lists(st.tuples(st.sampled_from(TOKEN_OPS), st.integers(0, 2**20)), min_size=min_size, max_size=max_size)
