"""Run the official JSON-Schema-Test-Suite through a JSON Schema engine (structgen strict, or a peer).

For every schema group of every keyword file the schema is compiled once. A designed refusal (structgen:
a `StructgenError` in strict mode; llguidance: a grammar error from `validate_grammar`; see
`structgen.evaluation.engines`) is a compile error: every test of the group counts as `compile_error`.
Every instance is serialized the one way our grammars produce (`json.dumps(data, ensure_ascii=False)`),
tokenized with the Llama-3 tokenizer and walked token by token, then the stop token; the instance is
accepted iff every step is accepted. All engines see the same schemas (draft7 groups get `"$schema":
draft-07` injected), text and token ids.

Counts per file: compile_error, valid_accepted, valid_rejected, invalid_accepted, invalid_rejected.
Anything else that goes wrong (any other exception from compile or matching) is a crash: it is counted
under `crash` and recorded in `run.crashes`. Compiles that exceed the per-group time limit count as
compile_error and are recorded in `run.timeouts`. Invalid instances that are accepted are recorded
(file, schema description, test description) in `run.invalid_accepted`.

The engine adapters and `check_schema` live in `structgen.evaluation.engines`; this module re-exports
them (with Llama-3 defaults for `make_engine`) for maskbench_runner.py and bench/json_schema_coverage.py.

    python tests/frontend/suite_runner.py                  # structgen: table per file + totals, both drafts
    python tests/frontend/suite_runner.py --engine both    # structgen vs llguidance totals side by side
    python tests/frontend/suite_runner.py --engine all     # every engine (peers need the `peers` extra)
    python tests/frontend/suite_runner.py --write          # also (re)write ratchets/json_schema_test_suite.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `python tests/frontend/suite_runner.py` from the repo root
    sys.path.insert(0, str(HERE.parent))

from datasets import DATA, TOKENIZERS  # noqa: E402

from structgen.evaluation.engines import (  # noqa: E402,F401  (re-exported for the other runners)
    ENGINE_NAMES,
    KEYS,
    CompileError,
    EngineUnavailable,
    LLGuidanceEngine,
    SchemaCheck,
    SchemaEngine,
    StructgenEngine,
    _Timeout,
    check_schema,
    compile_with_limit,
    engine_names,
)
from structgen.evaluation.engines import make_engine as _make_engine  # noqa: E402

SUITE = DATA / "json-schema-test-suite" / "tests"
RATCHET = HERE / "ratchets" / "json_schema_test_suite.json"
LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"
DRAFTS = ("draft2020-12", "draft7")
DRAFT7_URI = "http://json-schema.org/draft-07/schema#"
LLAMA3_EOS = (128001, 128009)  # <|end_of_text|>, <|eot_id|>; walks end with the first


def make_engine(name: str, tokenizer_json: Path = LLAMA3, stop_ids: tuple[int, ...] = LLAMA3_EOS) -> SchemaEngine:
    """`structgen.evaluation.engines.make_engine` with the tests' Llama-3 defaults."""
    return _make_engine(name, tokenizer_json, stop_ids)


class SuiteRun(dict):
    """`dict[file, counts]` plus the details the counts summarize."""

    def __init__(self, engine: str = "structgen") -> None:
        super().__init__()
        self.engine = engine
        self.crashes: list[tuple[str, str, str]] = []          # (file, group, message)
        self.timeouts: list[tuple[str, str]] = []              # (file, group)
        self.invalid_accepted: list[tuple[str, str, str]] = []  # (file, group, test)
        self.compile_errors: list[tuple[str, str, str]] = []   # (file, group, reason)
        self.seconds = 0.0


def suite_files(draft: str) -> list[str]:
    """Keyword files of one draft: the top-level ones plus optional/format/*, as `draft/rel/path.json`."""
    root = SUITE / draft
    paths = sorted(root.glob("*.json")) + sorted((root / "optional" / "format").glob("*.json"))
    return [f"{draft}/{p.relative_to(root).as_posix()}" for p in paths]


def _prepare_schema(draft: str, schema):
    if draft == "draft7" and isinstance(schema, dict) and "$schema" not in schema:
        schema = copy.deepcopy(schema)
        schema["$schema"] = DRAFT7_URI
    return schema


def run_suite(draft: str, engine: SchemaEngine, files=None, time_limit_s: float = 10) -> SuiteRun:
    """Counts per keyword file of `draft` (see the module docstring); `files` restricts to those keys."""
    run = SuiteRun(engine.name)
    t0 = time.perf_counter()
    wanted = suite_files(draft) if files is None else [f for f in files if f.startswith(draft + "/")]
    for key in wanted:
        counts = dict.fromkeys(KEYS, 0)
        groups = json.loads((SUITE / key).read_text(encoding="utf-8"))
        for group in groups:
            gdesc = group["description"]
            tests = group["tests"]
            check = check_schema(engine, _prepare_schema(draft, group["schema"]), tests, time_limit_s)
            check.tally(tests, counts)
            if check.compile_error is not None:
                run.compile_errors.append((key, gdesc, check.compile_error))
                if check.compile_error == "timeout":
                    run.timeouts.append((key, gdesc))
                continue
            if check.crash is not None:
                run.crashes.append((key, gdesc, f"compile: {check.crash}"))
                continue
            run.crashes.extend((key, gdesc, f"match {msg}") for msg in check.match_crashes)
            run.invalid_accepted.extend(
                (key, gdesc, test["description"])
                for test, ok in zip(tests, check.accepted) if ok and not test["valid"]
            )
        run[key] = counts
    run.seconds = time.perf_counter() - t0
    return run


def summary(counts: dict) -> dict[str, int]:
    """Totals over files (`counts` is `dict[file, dict[str, int]]`)."""
    total = dict.fromkeys(KEYS, 0)
    for c in counts.values():
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def ratchet_entry(counts: dict[str, int]) -> dict[str, int]:
    """What the ratchet keeps per file: the raw counts plus `correct` = valid_accepted + invalid_rejected."""
    out = {k: counts.get(k, 0) for k in KEYS}
    out["correct"] = out["valid_accepted"] + out["invalid_rejected"]
    return out


def load_ratchet() -> dict[str, dict[str, int]]:
    return json.loads(RATCHET.read_text(encoding="utf-8"))["files"]


def _table(counts: dict) -> str:
    cols = ("compile_error", "valid_accepted", "valid_rejected", "invalid_accepted", "invalid_rejected", "crash")
    short = ("cerr", "v_acc", "v_rej", "i_acc", "i_rej", "crash")
    w = max([len(k) for k in counts] + [5])
    lines = [f"{'file':<{w}} " + " ".join(f"{s:>6}" for s in short)]
    for k in sorted(counts):
        lines.append(f"{k:<{w}} " + " ".join(f"{counts[k].get(c, 0):>6}" for c in cols))
    tot = summary(counts)
    lines.append(f"{'TOTAL':<{w}} " + " ".join(f"{tot.get(c, 0):>6}" for c in cols))
    return "\n".join(lines)


def side_by_side(rows: tuple[str, ...] | list[str], columns: dict[str, dict[str, Any]], label: str = "") -> str:
    """A text table: one row per key in `rows`, one column per `columns` entry (e.g. per engine)."""
    w = max([len(r) for r in rows] + [len(label)])
    cw = max([len(c) for c in columns] + [8])
    lines = [f"{label:<{w}} " + " ".join(f"{c:>{cw}}" for c in columns)]
    for r in rows:
        lines.append(f"{r:<{w}} " + " ".join(f"{col.get(r, 0):>{cw}}" for col in columns.values()))
    return "\n".join(lines)


TOTAL_ROWS = KEYS + ("crash", "correct")


def run_totals(run: dict) -> dict[str, int]:
    """`summary` plus `crash` and `correct` = valid_accepted + invalid_rejected."""
    tot = summary(run)
    tot.setdefault("crash", 0)
    tot["correct"] = tot["valid_accepted"] + tot["invalid_rejected"]
    return tot


def _print_details(run: SuiteRun) -> None:
    for f, g, t in run.invalid_accepted:
        print(f"INVALID ACCEPTED  {f} | {g} | {t}")
    for f, g, msg in run.crashes:
        print(f"CRASH  {f} | {g} | {msg}")
    for f, g in run.timeouts:
        print(f"TIMEOUT  {f} | {g}")


def _write_ratchet(all_counts: dict[str, dict[str, int]]) -> None:
    RATCHET.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "_comment": "Per-file counts of tests/frontend/suite_runner.py (strict mode, Llama-3 tokenizer). "
                    "The ratchet: `correct` (valid_accepted + invalid_rejected) must not drop and "
                    "`invalid_accepted` must not rise. Regenerate with "
                    "`python tests/frontend/suite_runner.py --write`.",
        "files": {k: ratchet_entry(all_counts[k]) for k in sorted(all_counts)},
    }
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in payload["files"].items())
    text = f'{{\n "_comment": {json.dumps(payload["_comment"], ensure_ascii=False)},\n "files": {{\n{rows}\n }}\n}}\n'
    assert json.loads(text) == payload
    RATCHET.write_text(text, encoding="utf-8")
    print(f"wrote {RATCHET}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=ENGINE_NAMES + ("both", "all"), default="structgen",
                    help="engine to run (default structgen); 'both' (structgen and llguidance) or 'all' "
                         "prints totals side by side per draft")
    ap.add_argument("--write", action="store_true", help="write the ratchet file (structgen's counts)")
    ap.add_argument("--draft", choices=DRAFTS, action="append", help="only this draft (repeatable)")
    ap.add_argument("--time-limit", type=float, default=10.0, help="per-group compile limit in seconds")
    args = ap.parse_args(argv)
    names = engine_names(args.engine)
    if args.write and "structgen" not in names:
        ap.error("--write records structgen's counts: use --engine structgen or both")

    engines = {n: make_engine(n) for n in names}
    runs: dict[str, dict[str, SuiteRun]] = {n: {} for n in names}  # engine -> draft -> run
    failures = 0
    for draft in args.draft or DRAFTS:
        for n, engine in engines.items():
            run = runs[n][draft] = run_suite(draft, engine, time_limit_s=args.time_limit)
            if len(names) == 1:
                print(f"== {draft} {n} ({run.seconds:.1f}s)")
                print(_table(run))
            if n == "structgen" or len(names) == 1:
                _print_details(run)
            if n == "structgen":
                failures += len(run.crashes)
        if len(names) > 1:
            secs = ", ".join(f"{n} {runs[n][draft].seconds:.1f}s" for n in names)
            print(f"== {draft} totals ({secs})")
            print(side_by_side(TOTAL_ROWS, {n: run_totals(runs[n][draft]) for n in names}))
        print()
    if len(names) > 1 and len(args.draft or DRAFTS) > 1:
        merged = {n: {k: v for r in runs[n].values() for k, v in r.items()} for n in names}
        print("== all drafts totals")
        print(side_by_side(TOTAL_ROWS, {n: run_totals(merged[n]) for n in names}))
    if args.write:
        _write_ratchet({k: v for r in runs["structgen"].values() for k, v in r.items()})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
