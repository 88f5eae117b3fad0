"""Engine adapters: one interface over structgen and its peers for the JSON Schema benchmarks.

Every engine is built from the same two inputs, a Hugging Face `tokenizer.json` and the stop token
ids, and compiles a JSON Schema for the one serialization the benchmarks feed it:
`json.dumps(data, ensure_ascii=False)` (one line, ", " and ": " separators). Instances are tokenized
once, by the shared Hugging Face tokenizer (`SchemaEngine.encode`), so every engine walks the same ids.

An engine (`SchemaEngine`) has `version()`, `compile(schema)` (a designed refusal raises
`CompileError`; anything else is a crash) and `matcher(compiled) -> EngineMatcher`. An
`EngineMatcher` has `fill_mask(row)` (writes the packed int32 row of `ceil(vocab / 32)` words, bit t
of word t // 32 set iff token t is allowed: the layout structgen, XGrammar and llguidance share),
`accept_token`, `is_accepting` (a stop token would be accepted now) and `reset`. `fill_mask` does
the mask computation and nothing else, so a caller may time exactly that call. structgen's engines
say whether a compiled grammar runs on the GLR path (`needs_glr`; the peers: None). Every engine
takes a `whitespace` mode, "compact" (the default; json.dumps' one line) or "flexible" (whitespace
allowed between lexemes); instances are always written compactly, which both modes accept. Adapters:

- `structgen`: `GrammarCompiler.compile_json_schema(schema, strict=True, whitespace=...)`.
- `llguidance`: `grammar_from_json_schema` with `whitespace_flexible=False` and the compact
  separators, or (flexible) `whitespace_flexible=True` with its default separators; a non-empty
  `validate_grammar` is a compile error.
- `xgrammar`: `compile_json_schema(any_whitespace=False, separators=(", ", ": "), strict_mode=False)`, or
  (flexible) `any_whitespace=True` with its default separators, on a single compile thread (XGrammar's
  `strict_mode` forbids properties and items the schema does not declare: JSON Schema allows them); its
  vocabulary is its own decoding of the tokenizer with the special tokens blanked, as the others have.
- `xgrammar-strict`: the same with XGrammar's default `strict_mode=True`.
- `outlines-core`: the schema's regex (`build_regex_from_schema`, whitespace `[ ]?`: the regex puts
  optional whitespace around every separator, a superset of the compact form) indexed over the
  vocabulary's token bytes.

Peers are optional: building one whose package is missing raises `EngineUnavailable`;
`available_engines()` lists those that can run here.
"""

from __future__ import annotations

import importlib
import json
import signal
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import bitset

ENGINE_NAMES = ("structgen", "structgen-declared", "llguidance", "xgrammar", "xgrammar-strict", "outlines-core")
WHITESPACE_MODES = ("compact", "flexible")
KEYS = ("compile_error", "valid_accepted", "valid_rejected", "invalid_accepted", "invalid_rejected")
ITEM_SEPARATOR, KEY_SEPARATOR = ", ", ": "  # json.dumps' defaults without indent


class _Timeout(BaseException):
    """Raised by the SIGALRM handler; a BaseException so no adapter's `except Exception` swallows it."""


class CompileError(Exception):
    """A schema the engine refuses by design (the counts' `compile_error`), with the engine's reason."""


class EngineUnavailable(Exception):
    """The engine cannot run here (its package, or one it needs, is not installed)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


# ------------------------------------------------------------------------------------- shared pieces

@lru_cache(maxsize=8)
def _hf_tokenizer(tokenizer_json: str) -> Any:
    """The Hugging Face tokenizer every engine of a process encodes instances with (one per file)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(tokenizer_json)


@lru_cache(maxsize=8)
def _structgen_tokenizer(tokenizer_json: str, vocab_size: int, stop_ids: tuple[int, ...]) -> Any:
    from structgen import TokenizerInfo

    return TokenizerInfo.from_tokenizer_json(tokenizer_json, vocab_size=vocab_size, stop_token_ids=stop_ids)


def schema_text(schema: Any) -> str:
    """A schema as JSON text (rows may carry text already: schemas too deep for Python objects)."""
    return schema if isinstance(schema, str) else json.dumps(schema)


def _import(engine: str, module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise EngineUnavailable(engine, f"cannot import {module} ({e}); install the `peers` extra") from e


def _package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _reraise_panics(e: BaseException) -> None:
    """Rust peers (pyo3) raise `PanicException`, a BaseException: turn it into a crash, not an abort."""
    if type(e).__name__ == "PanicException":
        raise RuntimeError(f"panic: {e}") from e


class EngineMatcher:
    """Per-sequence state of one engine on one compiled schema (see the module docstring)."""

    def fill_mask(self, bitmask: np.ndarray) -> None:
        """Write the allowed-token bits into `bitmask`, a C-contiguous int32 row of ceil(vocab/32) words."""
        raise NotImplementedError

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False if the engine does not allow it (the matcher is then spent)."""
        raise NotImplementedError

    def is_accepting(self) -> bool:
        """Whether the output so far is complete: a stop token would be accepted now."""
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the empty output."""
        raise NotImplementedError


class SchemaEngine:
    """Adapter: compile a JSON Schema, then match serialized instances token by token + stop token.

    Subclasses implement `version`, `compile` (raising `CompileError` for a designed refusal; any
    other exception is a crash) and `matcher`. Tokenization is shared: the Hugging Face tokenizer of
    `tokenizer_json`, no special tokens; `vocab_size` (mask width) counts its added tokens too.
    """

    name = ""

    def __init__(self, tokenizer_json: Path, stop_ids: Sequence[int], whitespace: str = "compact") -> None:
        if not stop_ids:
            raise ValueError("stop_ids must name at least one stop token")
        if whitespace not in WHITESPACE_MODES:
            raise ValueError(f"whitespace must be one of {WHITESPACE_MODES}, not {whitespace!r}")
        self.whitespace = whitespace
        self.tokenizer_json = Path(tokenizer_json)
        self.stop_ids = tuple(int(t) for t in stop_ids)
        self.stop_id = self.stop_ids[0]  # the one `walk` ends with; every stop id is accepted
        try:
            self.tokenizer = _hf_tokenizer(str(self.tokenizer_json))
        except ImportError as e:
            raise EngineUnavailable(self.name, f"the `tokenizers` package is needed to encode instances ({e})") from e
        self.vocab_size = int(self.tokenizer.get_vocab_size(with_added_tokens=True))
        self.mask_words = (self.vocab_size + 31) // 32
        # control tokens (`<|begin_of_text|>`, reserved ones): never text, for every engine
        self.special_ids = frozenset(int(i) for i, t in self.tokenizer.get_added_tokens_decoder().items() if t.special)

    def version(self) -> str:
        raise NotImplementedError

    def compile(self, schema: Any) -> Any:
        raise NotImplementedError

    def matcher(self, compiled: Any) -> EngineMatcher:
        raise NotImplementedError

    def needs_glr(self, compiled: Any) -> bool | None:
        """Whether the compiled grammar runs on a GLR path (None: the engine does not say)."""
        return None

    def allocate_mask(self) -> np.ndarray:
        """A zeroed mask row for `EngineMatcher.fill_mask`."""
        return np.zeros(self.mask_words, dtype=np.int32)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no special tokens), the same for every engine."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def walk(self, compiled: Any, ids: list[int]) -> bool:
        """Accepted iff every token of `ids` and then the stop token are accepted."""
        m = self.matcher(compiled)
        return all(m.accept_token(t) for t in ids) and m.accept_token(self.stop_id)

    def accepts(self, compiled: Any, text: str) -> bool:
        """Accepted iff every token of `text` and then the stop token are accepted."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: no UTF-8 output can spell this instance
            return False
        return self.walk(compiled, self.encode(text))


def _check_row(bitmask: np.ndarray, words: int) -> None:
    if bitmask.dtype != np.int32 or bitmask.shape != (words,) or not bitmask.flags["C_CONTIGUOUS"]:
        raise ValueError(f"mask must be a C-contiguous int32 row of {words} words, "
                         f"got {bitmask.dtype} {bitmask.shape}")


# ------------------------------------------------------------------------------------------ structgen

class _StructgenMatcher(EngineMatcher):
    def __init__(self, matcher: Any) -> None:
        self._m = matcher

    def fill_mask(self, bitmask: np.ndarray) -> None:
        self._m.fill_next_token_bitmask(bitmask)

    def accept_token(self, token_id: int) -> bool:
        return bool(self._m.accept_token(token_id))

    def is_accepting(self) -> bool:
        return not self._m.is_terminated() and self._m.is_accepting()

    def reset(self) -> None:
        self._m.reset()


class StructgenEngine(SchemaEngine):
    """structgen, `compile_json_schema(schema, strict=True, whitespace=..., property_order="any")`:
    JSON objects are unordered, so every order of an instance's members is in the language."""

    name = "structgen"
    property_order = "any"

    def __init__(self, tokenizer_json: Path, stop_ids: Sequence[int], whitespace: str = "compact") -> None:
        super().__init__(tokenizer_json, stop_ids, whitespace)
        from structgen import GrammarCompiler, warm_up

        self.info = _structgen_tokenizer(str(self.tokenizer_json), self.vocab_size, self.stop_ids)
        self.compiler = GrammarCompiler(self.info)
        warm_up()  # every kernel loaded (GLR ones too) before anything is timed

    def version(self) -> str:
        import structgen

        return structgen.__version__

    def compile(self, schema: Any) -> Any:
        from structgen import StructgenError

        try:
            return self.compiler.compile_json_schema(schema, strict=True, whitespace=self.whitespace,
                                                     property_order=self.property_order)
        except StructgenError as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e

    def matcher(self, compiled: Any) -> EngineMatcher:
        from structgen import GrammarMatcher

        return _StructgenMatcher(GrammarMatcher(compiled))

    def needs_glr(self, compiled: Any) -> bool:
        """Conflict cells in its LR tables, or a lexer tie met (found lazily: ask after the masks)."""
        return bool(compiled.runtime.forks)


class StructgenDeclaredEngine(StructgenEngine):
    """structgen with `property_order="declared"` (members in the schema's order, as llguidance and
    XGrammar generate them)."""

    name = "structgen-declared"
    property_order = "declared"


# ----------------------------------------------------------------------------------------- llguidance

class _LLGuidanceMatcher(EngineMatcher):
    """llguidance stops by itself once only a stop token can follow; stop tokens are handled here."""

    def __init__(self, matcher: Any, stop_ids: tuple[int, ...], words: int) -> None:
        self._m = matcher
        self._stop = stop_ids
        self._words = words
        self._bytes = words * 4
        self._done = False

    def fill_mask(self, bitmask: np.ndarray) -> None:
        _check_row(bitmask, self._words)  # the pointer write below trusts the size
        self._m.unsafe_compute_mask_ptr(bitmask.ctypes.data, self._bytes)

    def accept_token(self, token_id: int) -> bool:
        token_id = int(token_id)
        if self._done:
            return False
        if token_id in self._stop:
            self._done = bool(self._m.is_accepting())
            return self._done
        # try_consume_tokens leaves the matcher usable on a rejected token (consume_token errors it)
        return self._m.try_consume_tokens([token_id]) == 1

    def is_accepting(self) -> bool:
        return not self._done and bool(self._m.is_accepting())

    def reset(self) -> None:
        self._m.reset()
        self._done = False


class LLGuidanceEngine(SchemaEngine):
    """llguidance (compact separators, or flexible whitespace); a non-empty `validate_grammar` is a compile error."""

    name = "llguidance"

    def __init__(self, tokenizer_json: Path, stop_ids: Sequence[int], whitespace: str = "compact") -> None:
        super().__init__(tokenizer_json, stop_ids, whitespace)
        # flexible: llguidance's defaults, "," and ":" with any whitespace around them
        self.JSON_OPTIONS = {"whitespace_flexible": True} if whitespace == "flexible" else {
            "whitespace_flexible": False, "item_separator": ITEM_SEPARATOR, "key_separator": KEY_SEPARATOR}
        self._ll = _import(self.name, "llguidance")
        self.lltok = self._ll.LLTokenizer(str(self.tokenizer_json), n_vocab=self.vocab_size,
                                          eos_token=list(self.stop_ids))

    def version(self) -> str:
        return _package_version("llguidance")

    def compile(self, schema: Any) -> Any:
        LLMatcher = self._ll.LLMatcher
        if isinstance(schema, bool):  # options attach to an object schema; these two mean the same
            schema = {} if schema else {"not": {}}
        try:
            grammar = LLMatcher.grammar_from_json_schema(schema, overrides=self.JSON_OPTIONS)
            err = LLMatcher.validate_grammar(grammar, self.lltok)
        except Exception as e:  # malformed schema: llguidance refuses it
            raise CompileError(f"{type(e).__name__}: {e}") from e
        except BaseException as e:
            _reraise_panics(e)
            raise
        if err:
            raise CompileError(err)
        return grammar

    def matcher(self, compiled: Any) -> EngineMatcher:
        m = self._ll.LLMatcher(self.lltok, compiled, log_level=0)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return _LLGuidanceMatcher(m, self.stop_ids, self.mask_words)


# ------------------------------------------------------------------------------------------- xgrammar

class _XGrammarMatcher(EngineMatcher):
    def __init__(self, matcher: Any) -> None:
        self._m = matcher

    def fill_mask(self, bitmask: np.ndarray) -> None:
        self._m.fill_next_token_bitmask(bitmask[None, :])  # DLPack: writes into the numpy row

    def accept_token(self, token_id: int) -> bool:
        return bool(self._m.accept_token(int(token_id)))

    def is_accepting(self) -> bool:
        return not self._m.is_terminated() and bool(self._m.is_completed())

    def reset(self) -> None:
        self._m.reset()


class XGrammarEngine(SchemaEngine):
    """XGrammar: compact separators (or any whitespace), JSON Schema's open objects (`strict_mode=False`),
    one compile thread."""

    name = "xgrammar"
    strict_mode = False

    def __init__(self, tokenizer_json: Path, stop_ids: Sequence[int], whitespace: str = "compact",
                 max_threads: int = 1) -> None:
        super().__init__(tokenizer_json, stop_ids, whitespace)
        self._xgr = _import(self.name, "xgrammar")
        transformers = _import(self.name, "transformers")
        hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(self.tokenizer_json))
        decoded = self._xgr.TokenizerInfo.from_huggingface(hf, vocab_size=self.vocab_size,
                                                           stop_token_ids=list(self.stop_ids)).decoded_vocab
        # XGrammar decodes special tokens to their text (so `<|reserved_special_token_0|>` could sit in
        # a string); an empty entry is how it marks a token that is never generated
        vocab = [b"" if i in self.special_ids else data for i, data in enumerate(decoded)]
        self.info = self._xgr.TokenizerInfo(vocab, self._xgr.VocabType.RAW, vocab_size=self.vocab_size,
                                            stop_token_ids=list(self.stop_ids))
        self.compiler = self._xgr.GrammarCompiler(self.info, max_threads=max_threads)

    def version(self) -> str:
        return _package_version("xgrammar")

    def compile(self, schema: Any) -> Any:
        try:
            text = schema_text(schema)
            if self.whitespace == "flexible":  # XGrammar's "," and ":" with any whitespace around them
                return self.compiler.compile_json_schema(text, any_whitespace=True, strict_mode=self.strict_mode)
            return self.compiler.compile_json_schema(text, any_whitespace=False,
                                                      separators=(ITEM_SEPARATOR, KEY_SEPARATOR),
                                                      strict_mode=self.strict_mode)
        except Exception as e:  # unsupported or malformed schema: XGrammar refuses it
            raise CompileError(f"{type(e).__name__}: {e}") from e

    def matcher(self, compiled: Any) -> EngineMatcher:
        return _XGrammarMatcher(self._xgr.GrammarMatcher(compiled))


class XGrammarStrictEngine(XGrammarEngine):
    """XGrammar in its default configuration, `strict_mode=True` (no undeclared properties or items)."""

    name = "xgrammar-strict"
    strict_mode = True


# -------------------------------------------------------------------------------------- outlines-core

class _OutlinesMatcher(EngineMatcher):
    """A Guide over the token-level index; stop tokens are handled here (the index knows one EOS)."""

    def __init__(self, guide: Any, stop_ids: tuple[int, ...], words: int) -> None:
        self._g = guide
        self._stop = stop_ids
        self._words = words
        self._done = False

    def fill_mask(self, bitmask: np.ndarray) -> None:
        _check_row(bitmask, self._words)
        if self._done:
            bitmask[:] = 0
            return
        self._g.write_mask_into(bitmask.ctypes.data, self._words, 4)
        if len(self._stop) > 1 and self._g.is_finished():
            bitset.set_ids(bitmask, self._stop)

    def accept_token(self, token_id: int) -> bool:
        token_id = int(token_id)
        if self._done:
            return False
        if token_id in self._stop:
            self._done = self._g.is_finished()
            return self._done
        try:
            self._g.advance(token_id, return_tokens=False)
        except ValueError:  # no transition on this token
            return False
        return True

    def is_accepting(self) -> bool:
        return not self._done and self._g.is_finished()

    def reset(self) -> None:
        self._g.reset()
        self._done = False


class OutlinesCoreEngine(SchemaEngine):
    """outlines-core: the schema's regex, indexed over the token bytes (structgen's decoding of the vocabulary)."""

    name = "outlines-core"

    def __init__(self, tokenizer_json: Path, stop_ids: Sequence[int], whitespace: str = "compact") -> None:
        super().__init__(tokenizer_json, stop_ids, whitespace)
        self.WHITESPACE = r"[ ]?" if whitespace == "compact" else r"[ \t\n\r]*"
        self._oc = _import(self.name, "outlines_core")
        info = _structgen_tokenizer(str(self.tokenizer_json), self.vocab_size, self.stop_ids)
        skip = self.special_ids | set(self.stop_ids)
        tokens: dict[bytes, list[int]] = {}
        for i, data in enumerate(info.token_bytes):
            if data and i not in skip:
                tokens.setdefault(bytes(data), []).append(i)
        self.vocabulary = self._oc.Vocabulary(self.stop_id, tokens)

    def version(self) -> str:
        return _package_version("outlines-core")

    def compile(self, schema: Any) -> Any:
        try:
            regex = self._oc.json_schema.build_regex_from_schema(schema_text(schema), whitespace_pattern=self.WHITESPACE)
            return self._oc.Index(regex, self.vocabulary)
        except Exception as e:  # a schema feature without a regex, or a regex it cannot index
            raise CompileError(f"{type(e).__name__}: {e}") from e
        except BaseException as e:
            _reraise_panics(e)
            raise

    def matcher(self, compiled: Any) -> EngineMatcher:
        return _OutlinesMatcher(self._oc.Guide(compiled), self.stop_ids, self.mask_words)


# --------------------------------------------------------------------------------------- registry

ENGINES: dict[str, type[SchemaEngine]] = {
    e.name: e for e in (StructgenEngine, StructgenDeclaredEngine, LLGuidanceEngine, XGrammarEngine, XGrammarStrictEngine, OutlinesCoreEngine)
}
_REQUIRES = {"structgen": ("tokenizers",), "structgen-declared": ("tokenizers",), "llguidance": ("tokenizers", "llguidance"),
             "xgrammar": ("tokenizers", "transformers", "xgrammar"),
             "xgrammar-strict": ("tokenizers", "transformers", "xgrammar"), "outlines-core": ("tokenizers", "outlines_core")}


def make_engine(name: str, tokenizer_json: Path, stop_ids: Sequence[int], whitespace: str = "compact") -> SchemaEngine:
    """The adapter called `name` (one of ENGINE_NAMES); `EngineUnavailable` if it cannot run here."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; expected one of {ENGINE_NAMES}")
    return ENGINES[name](tokenizer_json, stop_ids, whitespace)


@lru_cache(maxsize=None)
def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def available_engines() -> tuple[str, ...]:
    """The engines whose packages import here, in ENGINE_NAMES order."""
    return tuple(n for n in ENGINE_NAMES if all(_importable(m) for m in _REQUIRES[n]))


def engine_names(choice: str) -> tuple[str, ...]:
    """`--engine` value -> engine names: a name, 'both' (structgen and llguidance) or 'all'."""
    return {"both": ("structgen", "llguidance"), "all": ENGINE_NAMES}.get(choice, (choice,))


# ------------------------------------------------------------------------------- schema + instances

def compile_with_limit(compile_fn: Callable[[Any], Any], schema: Any, time_limit_s: float) -> Any:
    """Compile under a SIGALRM-based wall-clock limit (main thread only; elsewhere unguarded)."""
    if not time_limit_s or threading.current_thread() is not threading.main_thread():
        return compile_fn(schema)

    def on_alarm(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(time_limit_s))
    try:
        return compile_fn(schema)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class SchemaCheck:
    """What one engine did with one schema and its tests."""

    compile_error: str | None = None  # designed refusal (the engine's reason), or "timeout"
    crash: str | None = None  # compile raised something else: a bug
    accepted: list[bool | None] = field(default_factory=list)  # per test; None: matching crashed
    match_crashes: list[str] = field(default_factory=list)  # "test description: message"
    compile_s: float = 0.0
    match_s: float = 0.0

    @property
    def compiled(self) -> bool:
        return self.compile_error is None and self.crash is None

    def tally(self, tests: list[dict], counts: dict[str, int] | None = None) -> dict[str, int]:
        """Add this schema's tests to `counts` (KEYS, plus `crash` when there is one)."""
        counts = dict.fromkeys(KEYS, 0) if counts is None else counts
        if not self.compiled:
            key = "compile_error" if self.crash is None else "crash"
            counts[key] = counts.get(key, 0) + len(tests)
            return counts
        for test, ok in zip(tests, self.accepted):
            if ok is None:
                key = "crash"
            elif test["valid"]:
                key = "valid_accepted" if ok else "valid_rejected"
            else:
                key = "invalid_accepted" if ok else "invalid_rejected"
            counts[key] = counts.get(key, 0) + 1
        return counts


def check_schema(engine: SchemaEngine, schema: Any, tests: list[dict], time_limit_s: float = 0.0) -> SchemaCheck:
    """Compile `schema` (under `time_limit_s` if non-zero) and walk every test's serialized `data`."""
    check = SchemaCheck()
    t0 = time.perf_counter()
    try:
        compiled = compile_with_limit(engine.compile, schema, time_limit_s)
    except _Timeout:
        check.compile_error = "timeout"
    except CompileError as e:
        check.compile_error = str(e) or "compile error"
    except Exception as e:  # a bug: not a designed compile error
        check.crash = f"{type(e).__name__}: {e}"
    check.compile_s = time.perf_counter() - t0
    if not check.compiled:
        return check
    t0 = time.perf_counter()
    for test in tests:
        text = json.dumps(test["data"], ensure_ascii=False)
        try:
            check.accepted.append(engine.accepts(compiled, text))
        except Exception as e:
            check.accepted.append(None)
            check.match_crashes.append(f"{test.get('description', '')!r}: {type(e).__name__}: {e}")
    check.match_s = time.perf_counter() - t0
    return check
