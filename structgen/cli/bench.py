"""`structgen bench`: the subcommand's arguments, its default data and tokenizer, and the run of one mode
(maskbench, test-suite, coverage) through the runner.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import StructgenError

BENCH_EXAMPLES = """examples:
  structgen bench maskbench --data ../shared/data/maskbench --engines structgen,llguidance,xgrammar --limit 200
  structgen bench test-suite --data ../shared/data/json-schema-test-suite --engines structgen,llguidance
  structgen bench coverage --data ../shared/data/jsonschemabench --limit 50 --per-dataset --backend llama-cpp
"""

# the folder of each mode's data inside a data root laid out like ../shared/data
BENCH_DATA = {"maskbench": "maskbench", "test-suite": "json-schema-test-suite", "coverage": "jsonschemabench"}


def add_bench_parser(sub, common: argparse.ArgumentParser) -> None:
    """The `bench` subcommand and its modes, added to the CLI's subparsers."""
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


def _bench_tokenizer(arg: str | None) -> tuple[str, list[int]]:
    """(tokenizer.json path, stop ids) for --tokenizer, or the embedded model's tokenizer."""
    from .. import TokenizerInfo
    from ..models import cached_default_tokenizer_json, load_default_tokenizer

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


def _bench_data(args: argparse.Namespace) -> str:
    """--data, else the mode's folder under $STRUCTGEN_BENCH_DATA or ../shared/data (from here or the checkout)."""
    if args.data:
        return args.data
    roots = [os.environ.get("STRUCTGEN_BENCH_DATA"), "../shared/data",
             str(Path(__file__).resolve().parents[3] / "shared" / "data")]
    for root in filter(None, roots):
        candidate = Path(root) / BENCH_DATA[args.mode]
        if candidate.exists():
            return str(candidate)
    raise StructgenError(f"no --data given and no {BENCH_DATA[args.mode]} folder under $STRUCTGEN_BENCH_DATA or "
                         "../shared/data: pass --data DIR")


def cmd_bench(args: argparse.Namespace) -> int:
    """Run one benchmark mode for the chosen engines; writes <out>/<name>.json, .md and plots."""
    from ..evaluation import runner

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
        from ..evaluation import coverage

        settings.extra = {"backend": args.backend, "max_tokens": args.max_tokens,
                          "repetition_penalty": args.repetition_penalty}
        coverage.run_coverage_mode(settings)
    return 0
