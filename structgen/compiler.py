"""GrammarCompiler: grammar text + TokenizerInfo → CompiledGrammar (grammar.py), memoized in memory and
on disk; compiles run with the cyclic GC paused and their garbage collected at their end."""

from __future__ import annotations

import gc
import json
import re
import threading
import traceback
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .automata.dfa import ByteDFA, without_empty
from .automata.regex_dfa import regex_dfa
from .budget import compile_budget
from .compile_cache import CompileCache
from .errors import GrammarError, LimitExceeded, RegexError, SchemaError, StructgenError, UnsupportedFeature
from .frontend.ir import GrammarBuilder
from .grammar import CompiledGrammar
from .options import DEFAULT_OPTIONS, CompileOptions
from .tokenizer import TokenizerInfo, TokenTrie

GRAMMARS_DIR = Path(__file__).resolve().parent / "grammars"


_gc_lock = threading.Lock()
_gc_paused = 0  # compiles running with the cyclic GC paused by _gc_paused_compile
_gc_old = 1  # the size of the oldest generation after the last full collection a compile ran
_gc_moved = [0, 0]  # objects moved to it since the last full collection; young objects at a collection's start


@contextmanager
def _gc_paused_compile() -> Iterator[None]:
    """Run a compile with Python's cyclic GC paused, then do here the collections it makes due.

    A compile leaves ~10-30k objects of cyclic garbage (Lark's LR(0) item sets, the closures of
    ast.literal_eval, interegular's FSMs). Collected on the way, they are first promoted, and then
    a full collection over the whole heap (40-130 ms, and up to seconds) frees them, started by
    whichever allocation comes next: often a later mask call. Paused, they all stay in the
    youngest generation, and one collection of the young generations frees them here for a few ms
    and moves the compiled grammar's objects to the oldest one (collected in a mask call, they
    were a 5-20 ms pause). Those count toward the next full collection, which runs here too when
    it is due (_collect_after_compile). Only when the GC was enabled; nested and concurrent compiles resume
    it once, at the end of the last. A refused compile's traceback keeps file and line, not the
    locals of its finished frames."""
    global _gc_paused
    with _gc_lock:
        pause = _gc_paused > 0 or gc.isenabled()
        if pause:
            if _gc_paused == 0:
                gc.disable()
            _gc_paused += 1
    try:
        yield
    except StructgenError as e:  # a refusal: its frames' locals (a half-built Lark parser) would outlive the collection
        if pause:
            _clear_frames(e)
        raise
    finally:
        if pause:
            with _gc_lock:
                _gc_paused -= 1
                resume = _gc_paused == 0
                if resume:
                    gc.enable()
            if resume:
                _collect_after_compile()


def _collect_after_compile() -> None:
    """Collect the young generations (the compile's garbage; it moves the compiled grammar to the
    old generation), and the whole heap when CPython is about to: it starts a full collection, in
    whatever call is running then (a mask's: 7-38 ms), once generation-1 collections since the last
    exceed its threshold and the objects they moved to the old generation are a quarter of it.
    Counting those moves (_count_moves, mask calls' included), this runs it at a compile's end
    instead when it is that near (within four generation-1 collections): a little more often than
    CPython would (60 full collections over 400 MaskBench schemas; 0 left inside masks over 1,000)."""
    global _gc_old
    if _count_moves not in gc.callbacks:
        gc.callbacks.append(_count_moves)
    gc.collect(1)
    with _gc_lock:
        full = gc.get_count()[2] >= gc.get_threshold()[2] - 4 and _gc_moved[0] > _gc_old // 4
    if full:
        gc.collect(2)
        with _gc_lock:
            _gc_old = max(1, len(gc.get_objects(2)))
            _gc_moved[0] = 0


def _count_moves(phase: str, info: dict) -> None:
    """gc callback: how many objects generation-1 collections move to the old generation (the
    young objects at the start less those collected), reset by full collections."""
    gen = info["generation"]
    if gen == 2:
        _gc_moved[0] = 0
    elif gen == 1:
        if phase == "start":
            _gc_moved[1] = len(gc.get_objects(0)) + len(gc.get_objects(1))
        else:
            _gc_moved[0] += max(0, _gc_moved[1] - info["collected"])


def _clear_frames(e: BaseException) -> None:
    """Drop the locals of the finished frames in e's traceback and in those of its causes."""
    seen: set[int] = set()
    x: BaseException | None = e
    while x is not None and id(x) not in seen:
        seen.add(id(x))
        traceback.clear_frames(x.__traceback__)
        x = x.__cause__ or x.__context__


MEMORY_CACHE_GRAMMARS = 64  # compiled grammars a GrammarCompiler keeps in memory (least recently used dropped)


class GrammarCompiler:
    """Compiles grammars for one tokenizer; identical inputs return the same CompiledGrammar while it
    is among the `max_cached` most recently used (each keeps its lexer tables and up to 2,048 masks).

    With `cache_dir` (e.g. `compile_cache.default_cache_dir()`), compiled tables also persist on
    disk across processes, keyed by the input, the tokenizer and the engine version.
    """

    def __init__(self, tokenizer_info: TokenizerInfo, cache_dir: str | Path | None = None,
                 max_cached: int = MEMORY_CACHE_GRAMMARS, options: CompileOptions = DEFAULT_OPTIONS) -> None:
        self.tokenizer_info = tokenizer_info
        self.options = options  # the default of every compile call
        self._cache: OrderedDict[tuple, CompiledGrammar] = OrderedDict()
        self.max_cached = max_cached
        self.disk_cache = CompileCache(cache_dir) if cache_dir is not None else None
        self.last_from_disk = False  # whether the latest compile call was answered by the disk cache
        if self.disk_cache is not None:
            self._load_trie()

    _TRIE_ARRAYS = ("node_byte", "node_depth", "node_skip", "node_tok_start", "node_tok_end", "tok_ids")

    def _load_trie(self) -> None:
        """Give the tokenizer its token trie from the disk cache (building it takes ~0.3 s of Python)."""
        info = self.tokenizer_info
        if info.has_index:
            return
        name = self.disk_cache.key("token_trie", info.fingerprint())
        entry = self.disk_cache.load(name)
        if entry is not None and set(entry[1]) == set(self._TRIE_ARRAYS):
            info.use_trie(TokenTrie(*(entry[1][k].astype(np.int32) for k in self._TRIE_ARRAYS)))
        else:
            self.disk_cache.store(name, {}, {k: getattr(info.trie, k) for k in self._TRIE_ARRAYS})

    def _cached(self, key: tuple[str, ...], build, opts: CompileOptions) -> CompiledGrammar:
        """The memoized CompiledGrammar for `key`: from memory, else from disk, else `build()` (then
        stored) within the compile budget of `opts`."""
        self.last_from_disk = False
        cg = self._cache.get(key)
        if cg is not None:
            self._cache.move_to_end(key)
            return cg
        disk = self.disk_cache
        if disk is not None:
            name = disk.key(self.tokenizer_info.fingerprint(), *key)
            entry = disk.load(name)
            if entry is not None and entry[0].get("input") != list(key):  # another input's entry under this name
                disk.discard(name, "holds another input")
            elif entry is not None:
                try:
                    cg = CompiledGrammar.from_arrays(*entry, self.tokenizer_info)
                    self.last_from_disk = True
                except (KeyError, ValueError, TypeError, IndexError) as e:  # a well-formed but foreign entry
                    disk.discard(name, f"does not fit ({e})")
        if cg is None:
            cg = _bounded(build, opts)
            if disk is not None:
                meta, arrays = cg.to_arrays()
                disk.store(name, {**meta, "input": list(key)}, arrays)
        self._cache[key] = cg
        if len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return cg

    def compile_grammar(self, grammar: str, start: str = "start", options: CompileOptions | None = None, *,
                        syntax: str = "lark", terminal_dfas: dict[str, ByteDFA] | None = None,
                        **changes: Any) -> CompiledGrammar:
        """Compile a grammar: Lark text (`syntax="lark"`), llama.cpp GBNF ("gbnf") or XGrammar's EBNF
        ("ebnf"; both start at `root` unless `start` names another rule). Our LR tables; a grammar
        with conflicts runs on the GLR path with every conflict kept (automata/glr.py).

        `%ignore` text is allowed before and between lexemes, and after the last one only while
        more input could still follow; `allow_trailing_ignore=True` gives Lark's exact semantics
        (ignored text after a complete output too), at the risk of a model never stopping.
        A conflict in the LALR(1) tables raises GrammarError naming it; `prefer_shift=True` resolves
        shift/reduce conflicts as shifts instead (Lark's silent default, which can reject valid words)
        and records each in `parser.conflicts`. Options are `options` (else the compiler's) with
        `changes` applied (any CompileOptions or Limits field by name). `terminal_dfas` replaces the
        patterns of the named terminals by ready byte DFAs (such compiles are not cached).
        """
        from .frontend.lark import lark_to_ir

        if not isinstance(grammar, str) or not grammar.strip():
            raise GrammarError("grammar text is empty")
        if syntax not in ("lark", "gbnf", "ebnf"):
            raise GrammarError(f"unknown grammar syntax {syntax!r}: use 'lark', 'gbnf' or 'ebnf'")
        opts = self._options(options, changes)
        if len(grammar) > opts.limits.max_grammar_bytes:
            raise LimitExceeded(f"the grammar text has {len(grammar):,} characters, more than {opts.limits.max_grammar_bytes:,}",
                                limit="max_grammar_bytes")
        if syntax == "lark":
            read = lambda: lark_to_ir(grammar, start, terminal_dfas,  # noqa: E731
                                      max_dfa_states=opts.limits.max_dfa_states)
        else:
            from .frontend.gbnf import gbnf_to_ir

            root = "root" if start == "start" else start
            read = lambda: gbnf_to_ir(grammar, root, dialect=syntax,  # noqa: E731
                                      max_dfa_states=opts.limits.max_dfa_states)
        build = lambda: CompiledGrammar.build(read(), self.tokenizer_info, opts)  # noqa: E731
        if terminal_dfas:
            return _bounded(build, opts)
        return self._cached(("grammar", syntax, grammar, start, opts.key()), build, opts)

    def compile_json_schema(self, schema: Any, options: CompileOptions | None = None, **changes: Any) -> CompiledGrammar:
        """Compile a JSON Schema (dict, JSON text, file path or pydantic model class).

        Options (see CompileOptions) are `options` (else the compiler's) with `changes` applied:
        `whitespace` ("compact": one line with the (item, key) `separators`; "flexible": runs of at
        most `max_whitespace` whitespace characters between lexemes), `strict`, `property_order`
        ("declared" or "any") and any Limits field. Unsupported keywords raise UnsupportedFeature
        (keyword + JSON pointer) unless `strict=False`; then `CompiledGrammar.relaxations` lists
        what was relaxed and how.
        """
        from .frontend.json_schema import load_schema, schema_to_grammar

        opts = self._options(options, changes)
        schema = load_schema(schema)
        try:
            canonical = json.dumps(schema, sort_keys=True)
        except RecursionError:
            raise LimitExceeded("the schema is nested too deeply to compile") from None

        def build() -> CompiledGrammar:
            # a grammar with conflicts (overlapping anyOf branches) runs on the GLR path, where lexer
            # ties fork too (automata/lexer.py); one whose objects keep their constraints as parser
            # state cannot (CompiledGrammar.build), and is written again without them first
            try:
                sg = schema_to_grammar(schema, options=opts)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
                raise _metaschema_error(schema) or e  # a keyword value of the wrong type, read as the right one
            try:
                try:
                    cg = CompiledGrammar.build(sg.ir, self.tokenizer_info, opts, glr_ok=True)
                except GrammarError as e:
                    if not (getattr(e, "conflicts", None) and sg.ir.objects):
                        raise
                    # objects whose constraints are parser state must be told apart at their first
                    # member; where anyOf branches share it, rules that defer the choice may not need to
                    try:
                        sg = schema_to_grammar(schema, options=opts, parametric=False)
                    except UnsupportedFeature as e2:
                        if opts.property_order != "any":
                            raise
                        raise UnsupportedFeature(
                            e2.keyword, e2.json_pointer, "anyOf / oneOf branches that are objects with one key of "
                            "overlapping values in two branches (two different object schemas, say) need the GLR "
                            "path, where objects cannot keep their member constraints as parser state, and "
                            "without it this schema's objects are too big in any property order; "
                            f"property_order='declared' may compile it (LALR conflict: {e.conflicts[0]}; then: {e2})"
                        ) from None
                    cg = CompiledGrammar.build(sg.ir, self.tokenizer_info, opts, glr_ok=True)
            except RecursionError:
                raise LimitExceeded("the schema's grammar is nested too deeply to compile") from None
            except GrammarError as e:
                if not getattr(e, "conflicts", None):
                    raise
                raise GrammarError("the schema's grammar is ambiguous (e.g. overlapping anyOf branches), which "
                                   f"would silently reject valid instances: {e.conflicts[0]}") from None
            cg.relaxations = list(sg.relaxations)
            return cg

        return self._cached(("json_schema", canonical, opts.key()), build, opts)

    def compile_structural_tag(self, structural_tag: Any, triggers: Any = None, options: CompileOptions | None = None,
                               **changes: Any) -> CompiledGrammar:
        """Free text with tags (tool calls) in it, in XGrammar's structural tag format: a dict, JSON
        text or pydantic StructuralTag of type "triggered_tags" (frontend/structural_tag.py), or
        the deprecated pair (tags, triggers) of items with begin / schema / end. Each tag's content
        is its JSON schema's values under the options (`whitespace`, `property_order`, ...)."""
        from .frontend.structural_tag import legacy_tags, parse_structural_tag, structural_tag_grammar

        spec = legacy_tags(structural_tag, triggers) if triggers is not None else parse_structural_tag(structural_tag)
        opts = self._options(options, changes)

        def build() -> CompiledGrammar:
            ir, relaxations = structural_tag_grammar(spec, opts)
            try:
                cg = CompiledGrammar.build(ir, self.tokenizer_info, opts, glr_ok=True)  # conflicts: GLR
            except GrammarError as e:
                if not getattr(e, "conflicts", None):
                    raise
                raise GrammarError("the structural tag's grammar has conflicts where objects keep their constraints "
                                   f"as parser state, which GLR cannot follow: {e.conflicts[0]}") from None
            cg.relaxations = list(relaxations)
            return cg

        return self._cached(("structural_tag", spec.key(), opts.key()), build, opts)

    def compile_builtin(self, name: str) -> CompiledGrammar:
        """Compile one of the grammars shipped in `grammars/` (json, arithmetic, sql, minilang)."""
        return self.compile_grammar(builtin_grammar(name))

    def compile_regex(self, pattern: str, options: CompileOptions | None = None, **changes: Any) -> CompiledGrammar:
        """Compile a regular expression (full match) as a one-terminal grammar."""
        opts = self._options(options, changes)
        try:
            re.compile(pattern)
        except re.error as e:
            raise RegexError(f"invalid regex {pattern!r}: {e}") from e

        def build() -> CompiledGrammar:
            dfa = regex_dfa(pattern, opts.limits.max_dfa_states)
            b = GrammarBuilder()
            start = b.named("start")
            if dfa.accept[0]:  # the empty output is allowed: an optional non-empty terminal
                b.rule(start, [])
            if (dfa.trans >= 0).any():  # a trimmed DFA with a transition has a non-empty word
                b.rule(start, [b.terminal("REGEX", without_empty(dfa))])
            return CompiledGrammar.build(b.build(start, source=f"start: REGEX\nREGEX: /{pattern}/\n"),
                                         self.tokenizer_info, opts)

        return self._cached(("regex", pattern, opts.key()), build, opts)

    def _options(self, options: CompileOptions | None, changes: dict[str, Any]) -> CompileOptions:
        return (options or self.options).with_(**changes)


def _bounded(build, opts: CompileOptions) -> CompiledGrammar:
    """`build()` with the GC paused, under the compile budget of `opts`; too deep a recursion is a limit."""
    with _gc_paused_compile(), compile_budget(opts.limits.max_compile_seconds):
        try:
            return build()
        except RecursionError:
            raise LimitExceeded("the input is nested too deeply to compile", limit="recursion depth") from None


def _metaschema_error(schema: Any) -> SchemaError | None:
    """The schema's first violation of its draft's metaschema, as a SchemaError (None if it has none):
    what an invalid schema that broke the compiler midway is told instead of a TypeError. Checked
    only then, since a metaschema check costs more than most compiles."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator) \
        if isinstance(schema, dict) else jsonschema.Draft202012Validator
    err = jsonschema.exceptions.best_match(cls(cls.META_SCHEMA).iter_errors(schema))
    if err is None:
        return None
    ptr = "#" + "".join(f"/{str(p).replace('~', '~0').replace('/', '~1')}" for p in err.absolute_path)
    return SchemaError(f"invalid schema: {err.message}", ptr)


def builtin_grammar(name: str) -> str:
    """Text of a shipped grammar by name (without the .lark suffix)."""
    for base in (GRAMMARS_DIR, Path(__file__).resolve().parents[1] / "grammars"):
        path = base / f"{name}.lark"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise StructgenError(f"no shipped grammar named {name!r}")


__all__ = ["CompiledGrammar", "GrammarCompiler", "builtin_grammar"]
