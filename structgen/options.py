"""One documented options/limits object per compile. It is also the compile-cache key.

`CompileOptions` says how an input is turned into a grammar: whitespace style, strictness,
property order, conflict policy. `Limits` bounds what a compile may build. Passing past a limit
raises LimitExceeded, which names the limit. Both are frozen dataclasses of plain values, so an
options object is hashable and JSON-able. `GrammarCompiler` caches compiled grammars by (input,
options).
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

WHITESPACE_STYLES = ("compact", "flexible")
PROPERTY_ORDERS = ("declared", "any")


@dataclass(frozen=True)
class Limits:
    """Resource bounds of one compile. The cost of each is noted next to its default. Every one is on
    by default; past one, LimitExceeded names it (`limit`) and where in the input it was hit (`where`)."""

    max_rules: int = 200_000  # grammar IR rules: ~100 B each, plus LR items
    max_lr_states: int = 1_000_000  # LR(0) states: ~1 kB of Python objects each while building
    max_table_cells: int = 200_000_000  # action + goto cells of the parser tables (4 B each)
    max_dfa_states: int = 20_000  # per regex / string-constraint DFA: 1 kB each (256 int32 columns)
    max_lexer_states: int = 500_000  # product DFA states built for a grammar, over its lifetime (1 kB each)
    max_array_unroll: int = 1024  # JSON Schema: array length bounds (minItems/maxItems) unrolled into rules
    max_grammar_bytes: int = 262_144  # grammar text (Lark, GBNF): Lark's loader is pure Python (~100 kB/s)
    # and cannot stop midway, so its input is bounded instead
    max_compile_seconds: float = 5.0  # wall-clock budget of one compile (numba's own JIT time excluded);
    # 0 = none. Past it LimitExceeded names the place reached (JSON pointer, rule, regex)
    max_unordered: int = 10  # JSON Schema, property_order="any", objects written as rules (the fallback
    # when the parser-state encoding conflicts): properties per object (2^n rules)


@dataclass(frozen=True)
class CompileOptions:
    """How an input compiles. Fields that do not apply to an input kind are ignored, but they are
    still part of the cache key.

    JSON Schema:
    - `whitespace`: "compact" writes one line with `separators` (item, key), as json.dumps does.
      "flexible" allows 1..`max_whitespace` JSON whitespace characters between any two lexemes, and
      none before or after the value.
    - `strict`: an unsupported keyword raises UnsupportedFeature. With False, it is relaxed instead,
      and each relaxation is listed in `CompiledGrammar.relaxations`.
    - `property_order`: "declared" (the schema's order, then additional properties) or "any" (every
      order, as JSON objects are unordered; members still at most once). Both are linear in the number
      of properties; anyOf/oneOf over object schemas become one object whose branches are followed
      side by side, so a discriminating member may come anywhere.

    Grammars (Lark text):
    - `prefer_shift`: resolve shift/reduce conflicts as shifts (Lark's silent default, which can reject
      valid words) and record them. Without it, such a conflict raises GrammarError.
    - `allow_trailing_ignore`: allow %ignore text after a complete output (Lark's exact language).

    Any input:
    - `reasoning`: (opening, closing) markers, e.g. ("<think>", "</think>"): the output starts with a
      reasoning block, anything up to the first closing marker (then optional whitespace), and the
      grammar holds after it. None: no block.
    """

    whitespace: str = "compact"
    max_whitespace: int = 16
    separators: tuple[str, str] = (", ", ": ")
    strict: bool = True
    property_order: str = "declared"
    prefer_shift: bool = False
    allow_trailing_ignore: bool = False
    reasoning: tuple[str, str] | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if self.whitespace not in WHITESPACE_STYLES:
            raise ValueError(f"whitespace {self.whitespace!r} is not supported; supported: {WHITESPACE_STYLES}")
        if self.property_order not in PROPERTY_ORDERS:
            raise ValueError(f"property_order must be 'declared' or 'any', not {self.property_order!r}")
        if self.max_whitespace < 1:
            raise ValueError("max_whitespace must be at least 1")
        seps = tuple(self.separators)
        if len(seps) != 2 or any(x.strip(" \t\n\r") != mark for x, mark in zip(seps, ",:")):
            raise ValueError(f"separators must be (item, key) like (', ', ': '), got {self.separators!r}")
        object.__setattr__(self, "separators", seps)
        if self.reasoning is not None:
            markers = tuple(self.reasoning)
            if len(markers) != 2 or not all(isinstance(x, str) and x for x in markers):
                raise ValueError(f"reasoning must be (opening, closing) marker strings, got {self.reasoning!r}")
            object.__setattr__(self, "reasoning", markers)

    def with_(self, **changes: Any) -> "CompileOptions":
        """A copy with some fields changed. A key that names a Limits field changes that limit.
        The copies of the last few distinct changes are kept (a compile call makes one from its
        keyword arguments, and building and validating it was ~0.1 ms of a small compile)."""
        if not changes:
            return self
        try:
            memo = (self, tuple(sorted((k, type(v), v) for k, v in changes.items())))  # True is not 1 here
            got = _WITH.get(memo)
        except TypeError:  # an unhashable value (a list for a tuple): not kept
            memo = got = None
        if got is None:
            got = self._with(dict(changes))
            if memo is not None:
                if len(_WITH) >= _WITH_KEPT:
                    _WITH.clear()  # (atomic, where evicting one entry could race another thread's)
                _WITH[memo] = got
        return got

    def _with(self, changes: dict[str, Any]) -> "CompileOptions":
        limit_names = {f.name for f in fields(Limits)}
        limits = {k: changes.pop(k) for k in list(changes) if k in limit_names}
        if limits:
            changes["limits"] = replace(self.limits, **limits)
        return replace(self, **changes) if changes else self

    def key(self) -> str:
        """The options as canonical JSON text: the compile-cache key part (made once per object)."""
        got = self.__dict__.get("_key")
        if got is None:
            got = json.dumps(asdict(self), sort_keys=True)
            object.__setattr__(self, "_key", got)
        return got


DEFAULT_OPTIONS = CompileOptions()
_WITH: dict[tuple, CompileOptions] = {}  # (options, changes) -> CompileOptions.with_'s copy
_WITH_KEPT = 64


def options_from_json(d: dict[str, Any]) -> CompileOptions:
    """The inverse of json.loads(options.key())."""
    d = dict(d)
    limits = Limits(**d.pop("limits", {}))
    return CompileOptions(**{**d, "separators": tuple(d.get("separators", (", ", ": ")))}, limits=limits)


def default_cache_root() -> pathlib.Path:
    """Where structgen keeps its caches: ``$STRUCTGEN_CACHE_DIR`` if set, else ``~/.cache/structgen``."""
    env = os.environ.get("STRUCTGEN_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "structgen"
