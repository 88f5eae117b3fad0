"""`structgen` command line: `generate` (constrained generation on the embedded model), `validate`
(does an instance or text fit, by the engine and by jsonschema; which keywords compile exactly),
`compile` (what a grammar compiles to) and `bench` (engines side by side on benchmark data).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import StructgenError

EXAMPLES = """examples:
  structgen generate --schema examples/person.json "Describe a fictional person"
  structgen generate --grammar json "Describe a fictional person as JSON"
  structgen generate --grammar sql "Write an SQL query for the names of customers from Paris."
  structgen generate --regex "[0-9]{3}-[0-9]{4}" "Make up a phone number"
  structgen generate --grammar my.lark --max-tokens 64 "..."
  structgen generate --asap 20 --regex "(yes|no|maybe)" "Will it rain tomorrow?"
  structgen generate --smc 8 --regex "(yes|no|maybe)" "Will it rain tomorrow?"
  structgen generate --awrs --temperature 1 --schema examples/person.json "Describe a fictional person"
  structgen validate --schema examples/person.json examples/ada.json
  structgen validate --schema examples/person.json --check
  structgen compile --schema examples/person.json --emit-lark
"""


# Appended to the user's prompt so a small model answers in the grammar's format (the mask decides).
HINTS = {
    "json": "Reply with one short JSON value on a single line.",
    "sql": "Reply with only the SQL, nothing else.",
    "arithmetic": "Reply with only the arithmetic expression, nothing else.",
}


def schema_hint(schema) -> str:
    """What the prompt tells the model about a schema (as JSONSchemaBench does); the mask enforces it."""
    import json

    return f"Reply with one JSON value that follows this JSON Schema: {json.dumps(schema)}"


def _grammar_syntax(args: argparse.Namespace) -> str:
    """--syntax, else by the file's extension: .gbnf (llama.cpp), .ebnf (XGrammar), else Lark."""
    if getattr(args, "syntax", None):
        return args.syntax
    suffix = Path(args.grammar).suffix.lower()
    return {".gbnf": "gbnf", ".ebnf": "ebnf"}.get(suffix, "lark")


def _grammar_text(arg: str) -> str:
    from .compiler import builtin_grammar

    path = Path(arg)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    try:
        return builtin_grammar(arg)
    except StructgenError:
        raise StructgenError(f"--grammar {arg!r}: no such file and no shipped grammar of that name") from None


def _schema(args: argparse.Namespace):
    """The JSON Schema of --schema (file or JSON text) or --pydantic (module:Class), loaded."""
    from .frontend.json_schema import load_schema

    if getattr(args, "pydantic", None):
        import importlib

        module, _, name = args.pydantic.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as e:
            raise StructgenError(f"--pydantic {args.pydantic!r}: cannot load the class ({e})") from None
        return load_schema(cls)
    return load_schema(args.schema)


def _compile_schema(compiler, schema, args: argparse.Namespace, **kw):
    return compiler.compile_json_schema(schema, whitespace=args.whitespace, strict=not args.lenient, **kw)


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


def _compiler(args: argparse.Namespace, info):
    """A GrammarCompiler with the disk cache of --cache-dir (default ~/.cache/structgen/compiled) unless --no-cache."""
    from . import GrammarCompiler
    from .compile_cache import default_cache_dir

    if getattr(args, "no_cache", False):
        return GrammarCompiler(info)
    return GrammarCompiler(info, cache_dir=getattr(args, "cache_dir", None) or default_cache_dir())


def _compile_source(compiler, args: argparse.Namespace, schema):
    """Compile --schema/--pydantic, --regex or --grammar; returns (compiled grammar, prompt hint)."""
    if schema is not None:
        return _compile_schema(compiler, schema, args), schema_hint(schema)
    if args.regex is not None:
        return compiler.compile_regex(args.regex), f"Answer with text matching the regular expression {args.regex}."
    return (compiler.compile_grammar(_grammar_text(args.grammar), syntax=_grammar_syntax(args)),
            HINTS.get(args.grammar, "Reply with only the output, nothing else."))


def cmd_generate(args: argparse.Namespace) -> int:
    """Load the tokenizer, compile (cached), load the model, then stream the constrained output."""
    import json

    from . import GrammarMatcher, TokenizerInfo
    from .models import chat_prompt, load_default_tokenizer, load_model

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
        from .integrations.llama_cpp import generate_llama_cpp
        from .models import load_default_llama

        with _Progress("loading the model (llama.cpp)", quiet) as loading:
            llm = load_default_llama(seed=args.seed)
        t0 = time.perf_counter()
        text, n_new, terminated = generate_llama_cpp(
            llm, cg, prompt, max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
            repetition_penalty=args.repetition_penalty, on_text=on_text,
            matcher_factory=lambda c: _TimedMatcher(GrammarMatcher(c), clock))
    else:
        from transformers.utils import logging as hf_logging

        from .integrations.transformers import generate_transformers
        from .models import load_default_model

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

    from .decoding.asap import cli_samples

    quiet = args.json
    with _Progress("loading the model", quiet):
        if args.backend == "llama-cpp":
            from .models import load_default_llama

            model = load_default_llama(seed=args.seed, n_ctx=4096)
        elif model is None:
            from transformers.utils import logging as hf_logging

            from .models import load_default_model

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

    from .decoding.smc import SMCSampler

    quiet = args.json
    n = args.smc if args.smc is not None else 1
    with _Progress("loading the model", quiet):
        if args.backend == "llama-cpp":
            from .decoding.lm import LlamaCppModel
            from .models import load_default_llama

            lm = LlamaCppModel(load_default_llama(seed=args.seed, n_ctx=4096))
        else:
            from transformers.utils import logging as hf_logging

            from .integrations.transformers import KVBatchModel
            from .models import load_default_model

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


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given after the subcommand, an option must not reset what was given before it
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks for errors")
    common.add_argument("--cache-dir", default=argparse.SUPPRESS,
                        help="compile cache folder (default $STRUCTGEN_CACHE_DIR/compiled or ~/.cache/structgen/compiled)")
    common.add_argument("--no-cache", action="store_true", default=argparse.SUPPRESS,
                        help="neither read nor write the compile cache")
    p = argparse.ArgumentParser(prog="structgen", description="Exact grammar-constrained generation.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate text constrained by a grammar or regex", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--grammar", help="a .lark, .gbnf (llama.cpp) or .ebnf (XGrammar) file, or a shipped grammar "
                     "name: json, arithmetic, sql, minilang")
    src.add_argument("--regex", help="a regular expression the whole output must match")
    src.add_argument("--schema", help="a JSON Schema: a file or JSON text")
    src.add_argument("--pydantic", help="a pydantic model class as module:Class")
    _schema_options(g)
    g.add_argument("prompt", nargs="?", default="Produce an example.", help="what to ask the model")
    g.add_argument("--model", help="a transformers causal LM name or path (default: embedded SmolLM2-135M-Instruct)")
    g.add_argument("--backend", choices=("transformers", "llama-cpp"), default="transformers",
                   help="llama-cpp: the embedded model through llama-cpp-python (pip install 'structgen[llama-cpp]')")
    g.add_argument("--max-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--repetition-penalty", type=float, default=1.15,
                   help="discourages loops in small models (1.0 = off); the mask is unaffected")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object (output, terminated, valid, timings) instead of streaming")
    g.add_argument("--verbose", action="store_true", help="print timings to stderr")
    g.add_argument("--asap", type=int, metavar="N",
                   help="draw N grammar-aligned (ASAp) samples at --temperature (0 means 1) and print each "
                        "distinct output with its count")
    g.add_argument("--smc", type=int, metavar="N",
                   help="sequential Monte Carlo with N particles and AWRS proposals at --temperature (0 means 1): "
                        "prints each finished output with its posterior weight (the model conditioned on the grammar)")
    g.add_argument("--awrs", action="store_true",
                   help="sample with adaptive weighted rejection sampling (masks only when rejections pile up) at "
                        "--temperature (0 means 1); --json adds the log importance weight")
    g.add_argument("--ess-threshold", type=float, default=0.5,
                   help="with --smc: resample when the effective sample size falls below this fraction of N")
    g.set_defaults(func=cmd_generate)

    v = _source_command(sub, common, "validate", "does an instance or text fit a schema, grammar or regex")
    v.add_argument("--check", action="store_true",
                   help="with --schema: list which keywords compile exactly, are relaxed, or are unsupported")
    v.add_argument("input", nargs="?", help="the instance file (--schema), text file (--grammar) or text (--regex)")
    v.set_defaults(func=cmd_validate)

    c = _source_command(sub, common, "compile", "compile a schema, grammar or regex and report its size and time")
    c.add_argument("--tokenizer", help="a tokenizer.json path (default: the embedded model's tokenizer)")
    c.add_argument("--emit-lark", action="store_true", help="print the generated Lark grammar")
    c.set_defaults(func=cmd_compile)

    b = sub.add_parser("bench", help="MaskBench / JSON Schema Test Suite / JSONSchemaBench coverage, engines side by side",
                       epilog=BENCH_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    modes = b.add_subparsers(dest="mode", required=True)
    for mode, help_text in (("maskbench", "replay each schema's valid and invalid instances token by token"),
                            ("test-suite", "the official JSON Schema Test Suite, per keyword file"),
                            ("coverage", "generate with a model under each engine (JSONSchemaBench coverage)")):
        m = modes.add_parser(mode, help=help_text, epilog=BENCH_EXAMPLES, parents=[common],
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        m.add_argument("--data",
                       help="a folder or file of *.jsonl.gz / *.jsonl / *.json schemas (the test suite's root for "
                            f"test-suite); default: $STRUCTGEN_BENCH_DATA/{BENCH_DATA[mode]} or "
                            f"../shared/data/{BENCH_DATA[mode]} if there")
        m.add_argument("--engines", default="structgen,llguidance",
                       help="comma-separated: structgen (property_order=\"any\"), structgen-declared "
                            "(property_order=\"declared\"), llguidance, xgrammar (strict_mode=False), xgrammar-strict "
                            "(XGrammar's default strict_mode=True), outlines-core (default: structgen,llguidance)")
        m.add_argument("--whitespace", choices=("compact", "flexible"), default="compact",
                       help="the JSON whitespace every engine compiles for (instances are written compactly)")
        m.add_argument("--tokenizer", help="a tokenizer.json (or its folder); default: the embedded model's")
        m.add_argument("--limit", type=int, help="this many schemas, after a seeded shuffle")
        m.add_argument("--per-dataset", action="store_true", help="--limit applies to each dataset")
        m.add_argument("--seed", type=int, default=0)
        m.add_argument("--workers", type=int, default=1, help="worker processes per engine")
        m.add_argument("--time-limit", type=float, default=10.0, help="CPU seconds per schema (compile + replay)")
        m.add_argument("--total-timeout", type=float, help="seconds for the whole run of one engine")
        m.add_argument("--memory-mb", type=int, default=8192, help="address-space cap per worker")
        m.add_argument("--out", default="bench/results", help="folder for the results JSON, table and plots")
        m.add_argument("--name", help="file stem of the results (default: the mode)")
        m.add_argument("--quiet", action="store_true", help="no progress bars")
        if mode == "coverage":
            m.add_argument("--backend", choices=("transformers", "llama-cpp"), default="transformers")
            m.add_argument("--max-tokens", type=int, default=512)
            m.add_argument("--repetition-penalty", type=float, default=1.15,
                           help="as in generate: keeps the small model from looping (1.0 = off), same for every engine")
        m.set_defaults(func=cmd_bench)
    return p


BENCH_EXAMPLES = """examples:
  structgen bench maskbench --data ../shared/data/maskbench --engines structgen,llguidance,xgrammar --limit 200
  structgen bench test-suite --data ../shared/data/json-schema-test-suite --engines structgen,llguidance
  structgen bench coverage --data ../shared/data/jsonschemabench --limit 50 --per-dataset --backend llama-cpp
"""


def _bench_tokenizer(arg: str | None) -> tuple[str, list[int]]:
    """(tokenizer.json path, stop ids) for --tokenizer, or the embedded model's tokenizer."""
    from . import TokenizerInfo
    from .models import cached_default_tokenizer_json, load_default_tokenizer

    if arg:
        path = Path(arg)
        path = path / "tokenizer.json" if path.is_dir() else path
        if not path.is_file():
            raise StructgenError(f"--tokenizer {arg!r}: no tokenizer.json there")
        return str(path), [int(t) for t in TokenizerInfo.from_tokenizer_json(path).stop_token_ids]
    cached = cached_default_tokenizer_json()
    if cached is None:
        load_default_tokenizer()  # builds the cache once
        cached = cached_default_tokenizer_json()
    if cached is None:
        raise StructgenError("cannot cache the embedded model's tokenizer; pass --tokenizer PATH")
    return str(cached[0]), [cached[1]]


# the folder of each mode's data inside a data root laid out like ../shared/data
BENCH_DATA = {"maskbench": "maskbench", "test-suite": "json-schema-test-suite", "coverage": "jsonschemabench"}


def _bench_data(args: argparse.Namespace) -> str:
    """--data, else the mode's folder under $STRUCTGEN_BENCH_DATA or ../shared/data (from here or the checkout)."""
    if args.data:
        return args.data
    roots = [os.environ.get("STRUCTGEN_BENCH_DATA"), "../shared/data",
             str(Path(__file__).resolve().parents[2] / "shared" / "data")]
    for root in filter(None, roots):
        candidate = Path(root) / BENCH_DATA[args.mode]
        if candidate.exists():
            return str(candidate)
    raise StructgenError(f"no --data given and no {BENCH_DATA[args.mode]} folder under $STRUCTGEN_BENCH_DATA or "
                         "../shared/data: pass --data DIR")


def cmd_bench(args: argparse.Namespace) -> int:
    """Run one benchmark mode for the chosen engines; writes <out>/<name>.json, .md and plots."""
    from .evaluation import runner

    args.data = _bench_data(args)
    tokenizer_json, stop_ids = _bench_tokenizer(args.tokenizer)
    settings = runner.BenchSettings(
        data=args.data, engines=runner.parse_engines(args.engines), tokenizer_json=tokenizer_json,
        stop_ids=stop_ids, limit=args.limit, seed=args.seed, per_dataset=args.per_dataset, workers=args.workers,
        time_limit_s=args.time_limit, total_timeout_s=args.total_timeout, memory_limit_mb=args.memory_mb,
        out=args.out, stem=args.name or args.mode.replace("-", "_"), quiet=args.quiet, whitespace=args.whitespace)
    if args.mode == "maskbench":
        runner.run_maskbench_mode(settings)
    elif args.mode == "test-suite":
        runner.run_test_suite_mode(settings)
    else:
        from .evaluation import coverage

        settings.extra = {"backend": args.backend, "max_tokens": args.max_tokens,
                          "repetition_penalty": args.repetition_penalty}
        coverage.run_coverage_mode(settings)
    return 0


def _source_command(sub, common, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that takes one of --schema / --grammar / --regex, plus the schema options."""
    p = sub.add_parser(name, help=help_text, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                       parents=[common])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--schema", help="a JSON Schema: a file or JSON text")
    src.add_argument("--grammar", help="a .lark, .gbnf or .ebnf file, or a shipped grammar name")
    src.add_argument("--regex", help="a regular expression")
    _schema_options(p)
    return p


def _schema_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--syntax", choices=("lark", "gbnf", "ebnf"),
                   help="the --grammar file's syntax (default: by its extension, .gbnf / .ebnf, else lark)")
    p.add_argument("--whitespace", choices=("compact", "flexible"), default="compact",
                   help="JSON layout: compact (json.dumps one line) or flexible (bounded whitespace)")
    p.add_argument("--lenient", action="store_true",
                   help="relax unsupported JSON Schema keywords instead of failing (the relaxations are listed)")


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise StructgenError(f"cannot read {what} {path!r}: {e}") from None


def _tokenizer_info(path: str | None):
    from . import TokenizerInfo

    if path:
        return TokenizerInfo.from_tokenizer_json(path)
    from .models import cached_default_tokenizer_json, load_default_tokenizer

    cached = cached_default_tokenizer_json()
    if cached is not None:  # the same tokens, special and stop ids (tests/test_models.py checks the fingerprints)
        return TokenizerInfo.from_tokenizer_json(cached[0], stop_token_ids=[cached[1]])

    return TokenizerInfo.from_huggingface(load_default_tokenizer())


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when the input fits, 1 when it does not (or engine and jsonschema disagree), 2 on bad input."""
    import json

    from . import GrammarMatcher

    if args.schema and args.check:
        return _check_schema(_schema(args))
    if args.input is None:
        raise StructgenError("validate needs an input (an instance file, a text file, or with --regex the text)")
    compiler = _compiler(args, _tokenizer_info(None))
    if args.schema:
        import jsonschema

        schema = _schema(args)
        try:
            instance = json.loads(_read_text(args.input, "instance file"))
        except json.JSONDecodeError as e:
            raise StructgenError(f"{args.input}: not valid JSON: {e}") from None
        try:  # any property order, as jsonschema
            cg = _compile_schema(compiler, schema, args, property_order="any")
        except StructgenError as e:  # e.g. anyOf branches only GLR could follow side by side in any order
            cg = _compile_schema(compiler, schema, args)
            print(f"note: checked in declared property order (any order: {e})")
        m = GrammarMatcher(cg)
        text = json.dumps(instance, ensure_ascii=False) if args.whitespace == "compact" else json.dumps(
            instance, ensure_ascii=False, indent=2)
        ours = m.accept_string(text) and m.is_accepting()
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = sorted(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(instance), key=str)
        theirs = not errors
        print(f"structgen: {'valid' if ours else 'invalid'}; jsonschema: {'valid' if theirs else 'invalid'}")
        if not ours:  # where the instance, as structgen writes it, leaves the schema's language
            print(f"  structgen, on {text[:60] + '...' if len(text) > 60 else text}:", end=" ")
            _report_walk(cg, text.encode("utf-8"))
        for e in errors[:5]:
            print(f"  jsonschema: {e.message} at {e.json_path}")
        if ours != theirs:
            order = " (structgen writes properties in declared order; see --check)" if theirs else ""
            print(f"structgen: DISAGREEMENT with jsonschema{order}; if the order is not the cause, please "
                  "report it with the schema and instance", file=sys.stderr)
            return 1
        return 0 if ours else 1
    if args.grammar:
        # %ignore'd text (a final newline) may end the file, as Lark allows
        cg = compiler.compile_grammar(_grammar_text(args.grammar), syntax=_grammar_syntax(args),
                                      allow_trailing_ignore=True)
        data = _read_text(args.input, "text file").encode("utf-8")
    else:
        cg = compiler.compile_regex(args.regex)
        data = args.input.encode("utf-8")
    return 0 if _report_walk(cg, data) else 1


def _report_walk(cg, data: bytes) -> bool:
    """Feed `data` byte by byte; print "match", or the byte offset where it leaves the language (or
    that it ends too early) and the terminals expected there. Whether it matched."""
    from . import GrammarMatcher

    m = GrammarMatcher(cg)
    lx = cg.lexer
    start = 0  # where the current lexeme began
    for i in range(len(data)):  # byte by byte, to name the offset where the text leaves the language
        before = m._ls
        if not m.accept_string(data[i:i + 1]):
            expected = m.expected_terminals(data[start:i])
            print(f"no match: the text leaves the language at byte {i} ({data[max(0, i - 20):i + 1]!r} <-); "
                  f"expected {_one_of(expected, m.is_accepting())}")
            return False
        if lx.is_start[before] or (lx.accept_term[before] >= 0 and lx.trans[before, data[i]] < 0):
            start = i  # greedy lexing: this byte began a new lexeme
        if lx.is_start[m._ls]:
            start = i + 1
    if not m.is_accepting():
        print(f"no match: the text ends too early (after {len(data)} bytes); "
              f"expected {_one_of(m.expected_terminals(data[start:]), False)}")
        return False
    print("match")
    return True


def _one_of(terminals: list[str], can_end: bool) -> str:
    names = terminals + (["the end of the text"] if can_end else [])
    if not names:
        return "nothing (a dead end)"
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def _check_schema(schema) -> int:
    """List what compiles exactly; with relaxations, which keywords at which pointers and how."""
    from .frontend.json_schema import schema_to_grammar

    try:
        schema_to_grammar(schema, strict=True)
        print("every keyword compiles exactly (strict mode)")
        return 0
    except StructgenError as e:
        print(f"strict mode: {e}")
    sg = schema_to_grammar(schema, strict=False)
    for r in sg.relaxations:
        print(f"relaxed {r.keyword} at {r.pointer}: the grammar accepts {r.direction} than the schema"
              + (f" ({r.detail})" if r.detail else ""))
    return 1


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile and report grammar size, terminals, states, memory and time (from the disk cache when there)."""
    info = _tokenizer_info(args.tokenizer)
    compiler = _compiler(args, info)
    schema = _schema(args) if args.schema else None
    t0 = time.perf_counter()
    cg, _ = _compile_source(compiler, args, schema)
    ms = (time.perf_counter() - t0) * 1e3
    if args.emit_lark:
        print(_lark_text(cg, schema))
    rules = cg.ir.num_rules
    dfa_states = sum(t.dfa.num_states for t in cg.terminals)
    nbytes = (sum(t.dfa.trans.nbytes + t.dfa.accept.nbytes for t in cg.terminals)
              + sum(a.nbytes for a in vars(cg.parser).values() if hasattr(a, "nbytes")))
    source = "loaded from the disk cache" if compiler.last_from_disk else "compiled"
    print(f"{source} in {ms:.1f} ms: {rules} rules, {len(cg.terminals)} terminals ({dfa_states} DFA states), "
          f"{cg.parser.num_states} parser states, {cg.lexer.num_states} lexer states built, "
          f"{nbytes / 1024:.0f} KiB of tables; mask store: {info.trie.num_nodes} trie nodes for "
          f"{info.vocab_size} tokens, entries built lazily")
    for r in cg.relaxations:
        print(f"relaxed {r.keyword} at {r.pointer}: accepts {r.direction}")
    return 0


def _lark_text(cg, schema) -> str:
    """The grammar as standalone Lark text: as read, or the IR with terminals as regexes; a schema's
    objects whose constraints are parser state are printed in the rule-based encoding instead."""
    from .frontend.lark_text import grammar_as_lark

    if cg.ir.source is not None:
        return cg.ir.source
    ir = cg.ir
    if schema is not None and ir.objects:
        from .frontend.json_schema import schema_to_grammar

        try:
            ir = schema_to_grammar(schema, options=cg.options, parametric=False).ir
        except StructgenError:
            pass  # too many rules (any order of many members): the header says what the rules leave out
    return grammar_as_lark(ir)


def main(argv: list[str] | None = None) -> int:
    import warnings

    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    if not debug:  # warnings as one line each (a rebuilt cache entry, ...)
        warnings.showwarning = lambda message, *rest: print(f"structgen: warning: {message}", file=sys.stderr)
    try:
        return args.func(args)
    except StructgenError as e:
        if debug:
            raise
        print(f"structgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("structgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
