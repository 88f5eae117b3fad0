"""`structgen generate`: load the tokenizer and model, compile, then stream the constrained output, or
draw samples with --asap / --smc / --awrs; timings for --verbose / --json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .source import _compile_source, _compiler, _schema
from ..errors import StructgenError


class _Progress:
    """`with _Progress("loading the model"):` says what a slow step is doing, on a terminal only."""

    def __init__(self, what: str, quiet: bool = False) -> None:
        self.what = what
        self.show = not quiet and sys.stderr.isatty()

    def __enter__(self) -> "_Progress":
        self.t0 = time.perf_counter()
        if self.show:
            print(f"structgen: {self.what} ...", end="", file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
        if self.show:
            print(f" {'failed' if exc[0] else 'done'} ({self.seconds:.1f} s)", file=sys.stderr, flush=True)


class _TimedMatcher:
    """A GrammarMatcher that adds up the time spent filling masks (for --verbose / --json)."""

    def __init__(self, matcher, clock: list[float]) -> None:
        self._m = matcher
        self._clock = clock  # [seconds, masks after the first, first mask seconds], shared by all rows

    def fill_next_token_bitmask(self, bitmask, index: int = 0) -> None:
        t0 = time.perf_counter()
        self._m.fill_next_token_bitmask(bitmask, index)
        dt = time.perf_counter() - t0
        if self._clock[2] < 0:  # the first mask (loads the numba kernels): reported on its own
            self._clock[2] = dt
        else:
            self._clock[0] += dt
            self._clock[1] += 1

    def __getattr__(self, name: str):
        return getattr(self._m, name)


def cmd_generate(args: argparse.Namespace) -> int:
    """Load the tokenizer, compile (cached), load the model, then stream the constrained output."""
    import json

    from .. import GrammarMatcher, TokenizerInfo
    from ..models import chat_prompt, load_default_tokenizer, load_model

    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF dequantizer's tqdm bar (read when tqdm is imported)
    if args.backend == "llama-cpp" and args.model:
        raise StructgenError("--backend llama-cpp runs the embedded model only (drop --model)")
    if args.asap is not None and args.asap < 1:
        raise StructgenError(f"--asap needs a number of samples >= 1, got {args.asap}")
    if args.smc is not None and args.smc < 1:
        raise StructgenError(f"--smc needs a number of particles >= 1, got {args.smc}")
    if sum((args.asap is not None, args.smc is not None, bool(args.awrs))) > 1:
        raise StructgenError("--asap, --smc and --awrs are different samplers: give one")
    schema = _schema(args) if (args.schema or args.pydantic) else None
    quiet = args.json
    model = None
    with _Progress("loading the model" if args.model else "loading the tokenizer", quiet):
        if args.model:
            hf_tok, model = load_model(args.model)
        else:
            hf_tok = load_default_tokenizer()
        info = TokenizerInfo.from_huggingface(hf_tok)
    compiler = _compiler(args, info)
    with _Progress("compiling", quiet) as compiling:  # bad input fails here, before the slow model load
        cg, hint = _compile_source(compiler, args, schema)
    prompt = chat_prompt(hf_tok, f"{args.prompt} {hint}")
    if args.asap is not None:
        return _generate_asap(args, cg, hf_tok, prompt, model, schema)
    if args.smc is not None or args.awrs:
        return _generate_smc(args, cg, hf_tok, prompt, model, schema)
    clock = [0.0, 0, -1.0]
    on_text = None if args.json else (lambda text: print(text, end="", flush=True))
    if args.backend == "llama-cpp":
        from ..integrations.llama_cpp import generate_llama_cpp
        from ..models import load_default_llama

        with _Progress("loading the model (llama.cpp)", quiet) as loading:
            llm = load_default_llama(seed=args.seed)
        t0 = time.perf_counter()
        text, n_new, terminated = generate_llama_cpp(
            llm, cg, prompt, max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
            repetition_penalty=args.repetition_penalty, on_text=on_text,
            matcher_factory=lambda c: _TimedMatcher(GrammarMatcher(c), clock))
    else:
        from transformers.utils import logging as hf_logging

        from ..integrations.transformers import generate_transformers
        from ..models import load_default_model

        hf_logging.disable_progress_bar()  # ours (on a terminal) says the same in one line
        with _Progress("loading the model", quiet) as loading:
            model = model if model is not None else load_default_model()
        t0 = time.perf_counter()
        text, n_new, terminated = generate_transformers(
            model, hf_tok, cg, prompt, max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
            repetition_penalty=args.repetition_penalty, on_text=on_text,
            matcher_factory=lambda c: _TimedMatcher(GrammarMatcher(c), clock))
    t_gen = time.perf_counter() - t0
    stats = {
        "compile_ms": round(compiling.seconds * 1e3, 1), "compile_cached": compiler.last_from_disk,
        "load_s": round(loading.seconds, 2), "tokens": n_new, "seconds": round(t_gen, 2),
        "tokens_per_s": round(n_new / max(t_gen, 1e-9), 1),
        "first_mask_ms": round(max(clock[2], 0.0) * 1e3, 1),
        "mask_us_per_token": round(clock[0] / max(clock[1], 1) * 1e6, 1),
    }
    if args.json:
        result = {"output": text, "terminated": terminated}
        if schema is not None:
            result["valid"] = _schema_valid(schema, text)
        print(json.dumps({**result, **stats}, ensure_ascii=False))
    else:
        print()
        if not terminated:
            print(f"structgen: stopped at --max-tokens {args.max_tokens} before the output was complete",
                  file=sys.stderr)
    if args.verbose:
        print(f"[structgen] load {stats['load_s']:.1f} s, compile {stats['compile_ms']:.0f} ms"
              f"{' (from the disk cache)' if stats['compile_cached'] else ''}, {n_new} tokens in {t_gen:.1f} s "
              f"({stats['tokens_per_s']:.1f} tokens/s), first mask {stats['first_mask_ms']:.0f} ms, "
              f"then {stats['mask_us_per_token']:.0f} us/token",
              file=sys.stderr)
    return 0


def _generate_asap(args: argparse.Namespace, cg, hf_tok, prompt: str, model, schema) -> int:
    """--asap N: N grammar-aligned samples (structgen.decoding.asap), printed as count and text."""
    import json

    from ..decoding.asap import cli_samples

    quiet = args.json
    with _Progress("loading the model", quiet):
        if args.backend == "llama-cpp":
            from ..models import load_default_llama

            model = load_default_llama(seed=args.seed, n_ctx=4096)
        elif model is None:
            from transformers.utils import logging as hf_logging

            from ..models import load_default_model

            hf_logging.disable_progress_bar()
            model = load_default_model()
    stats: dict = {}
    t0 = time.perf_counter()
    with _Progress(f"drawing {args.asap} ASAp samples", quiet):
        counts = cli_samples(cg, hf_tok, prompt, args.asap, max_new_tokens=args.max_tokens,
                             temperature=args.temperature, seed=args.seed, backend=args.backend, model=model,
                             stats=stats)
    seconds = time.perf_counter() - t0
    if args.json:
        rows = [{"output": text, "count": n, **({"valid": _schema_valid(schema, text)} if schema is not None else {})}
                for text, n in counts]
        print(json.dumps({"samples": rows, "seconds": round(seconds, 2), "model_calls": stats["model_calls"],
                          "calls_saved": stats["calls_saved"], "rejected": stats["rejected"]}, ensure_ascii=False))
    else:
        for text, n in counts:
            print(f"{n}\t{text}")
    if args.verbose:
        print(f"[structgen] {stats['samples']} ASAp samples in {seconds:.1f} s, {stats['model_calls']} model calls "
              f"({stats['calls_saved']} served by the trie), {stats['rejected']} attempts hit --max-tokens, "
              f"trie {stats['nodes']} nodes / {stats['trie_bytes'] / 1024:.0f} KiB", file=sys.stderr)
    return 0


def _generate_smc(args: argparse.Namespace, cg, hf_tok, prompt: str, model, schema) -> int:
    """--smc N: N particles of SMC with AWRS proposals, printed as weight and text per output;
    --awrs: one AWRS sample (no mask unless rejections pile up) and its log importance weight."""
    import json

    from ..decoding.smc import SMCSampler

    quiet = args.json
    n = args.smc if args.smc is not None else 1
    with _Progress("loading the model", quiet):
        if args.backend == "llama-cpp":
            from ..decoding.lm import LlamaCppModel
            from ..models import load_default_llama

            lm = LlamaCppModel(load_default_llama(seed=args.seed, n_ctx=4096))
        else:
            from transformers.utils import logging as hf_logging

            from ..integrations.transformers import KVBatchModel
            from ..models import load_default_model

            hf_logging.disable_progress_bar()
            lm = KVBatchModel(model if model is not None else load_default_model())
    ids = hf_tok(prompt, add_special_tokens=False)["input_ids"]
    sampler = SMCSampler(lm, cg, ids, n_particles=n, ess_threshold=args.ess_threshold if args.smc else 0.0,
                         max_new_tokens=args.max_tokens, temperature=args.temperature if args.temperature > 0 else 1.0,
                         seed=args.seed)
    t0 = time.perf_counter()
    with _Progress(f"running SMC with {n} particles" if args.smc else "drawing an AWRS sample", quiet):
        result = sampler.run()
    seconds = time.perf_counter() - t0
    counters = {"seconds": round(seconds, 2), "log_ml": result.log_ml, "ess": round(result.ess, 3),
                "resamples": result.resamples, "model_calls": result.model_calls,
                "forward_batches": result.forward_batches, "awrs": result.awrs}
    valid = (lambda text: {"valid": _schema_valid(schema, text)}) if schema is not None else (lambda text: {})
    if args.smc:
        rows = list(result.posterior().items())
        if args.json:
            print(json.dumps({"samples": [{"output": t, "weight": w, **valid(t)} for t, w in rows], **counters},
                             ensure_ascii=False))
        else:
            for text, w in rows:
                print(f"{w:.4f}\t{text}")
        if not rows:
            print(f"structgen: no particle finished within --max-tokens {args.max_tokens}", file=sys.stderr)
    else:
        p = result.particles[0]
        if args.json:
            print(json.dumps({"output": p.text, "terminated": p.finished, "log_weight": p.log_weight,
                              **valid(p.text), **counters}, ensure_ascii=False))
        else:
            print(p.text)
            if not p.finished:
                print(f"structgen: stopped at --max-tokens {args.max_tokens} before the output was complete",
                      file=sys.stderr)
    if args.verbose:
        a = result.awrs
        print(f"[structgen] {result.steps} steps in {seconds:.1f} s, {result.forward_batches} batched forwards "
              f"({result.model_calls} prefixes), {result.resamples} resamplings, ESS {result.ess:.2f}, log Z-hat "
              f"{result.log_ml:.3f}; AWRS: {a['no_mask_fraction']:.1%} of steps without a mask, "
              f"{a['rejections_per_step']:.2f} rejections per step", file=sys.stderr)
    return 0


def _schema_valid(schema, text: str) -> bool:
    """Whether `text` parses as JSON and conforms to `schema` (jsonschema, formats checked)."""
    import json

    import jsonschema

    try:
        instance = json.loads(text)
    except json.JSONDecodeError:
        return False
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(instance)
