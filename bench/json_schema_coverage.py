#!/usr/bin/env python
"""JSONSchemaBench declared coverage: how many schemas each engine compiles, per dataset.

For every ``../shared/data/jsonschemabench/<Dataset>.jsonl.gz`` (rows ``{"id", "schema"}``), each schema
is compiled by structgen in strict mode (``compile_json_schema(schema, strict=True)``; a
``StructgenError`` is a designed refusal) and by llguidance with its default JSON options (compiled iff
``LLMatcher.validate_grammar`` returns no error). Nothing is generated or matched: this is what each
engine *claims* to support exactly, not whether the claim holds (MaskBench checks that:
``tests/frontend/maskbench_runner.py``).

Every schema is one task of the isolated worker pool of ``tests/frontend/maskbench_runner.py`` (2 worker
processes, each engine built once per process; a 10 s CPU-time limit per schema, over which the worker
is killed and the schema counts as not compiled, reason ``timeout``; a worker that dies or an exception
other than a designed refusal is a crash, also not compiled).

    python bench/json_schema_coverage.py                          # every schema (~7,100)
    python bench/json_schema_coverage.py --limit-per-dataset 200  # the first 200 of each dataset after
                                                                  # a random.Random(0) shuffle

Prints a table per dataset and writes ``bench/results/json_schema_coverage.json`` (machine, settings,
per-dataset counts, structgen's timeouts and crashes, the ids only one engine compiles, and the most
common refusal reasons per engine).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from datasets import DATA  # noqa: E402  (tests/datasets.py)
from frontend.maskbench_runner import (  # noqa: E402
    TIME_LIMIT_S,
    WORKERS,
    load_rows,
    row_key,
    run_engine,
)
from frontend.suite_runner import ENGINE_NAMES, engine_names  # noqa: E402
from structgen.evaluation.report import machine_info  # noqa: E402

JSONSCHEMABENCH = DATA / "jsonschemabench"
RESULTS = REPO / "bench" / "results"
SEED = 0
TOP_REASONS = 15
REASON_CHARS = 70


def select_rows(limit_per_dataset: int | None = None, seed: int = SEED) -> list[dict]:
    """All JSONSCHEMABENCH rows, or per dataset the first `limit_per_dataset` after a seeded shuffle."""
    by_dataset: dict[str, list[dict]] = {}
    for row in load_rows(JSONSCHEMABENCH):
        by_dataset.setdefault(row["dataset"], []).append(row)
    out = []
    for rows in by_dataset.values():
        if limit_per_dataset is not None:
            random.Random(seed).shuffle(rows)
            rows = rows[:limit_per_dataset]
        out.extend(rows)
    return out


def _reason(r: dict) -> str:
    """A refusal reason without its schema location, cut short, so that alike reasons count together."""
    return re.sub(r" at #\S*?(?=:\s|$)", "", " ".join(str(r["reason"]).split()))[:REASON_CHARS]


def coverage(rows: list[dict], runs: dict[str, dict[str, dict]]) -> dict:
    """Per dataset: n, and per engine compiled / timeouts / crashes; ids only one engine compiles."""
    datasets: dict[str, dict] = {}
    for row in rows:
        d = datasets.setdefault(row["dataset"], {"n": 0, **{n: {"compiled": 0, "timeouts": [], "crashes": []}
                                                                for n in runs}})
        d["n"] += 1
        for name, results in runs.items():
            r = results[row_key(row)]
            d[name]["compiled"] += r["outcome"] != "compile_error"
            if r["timeout"]:
                d[name]["timeouts"].append(row["id"])
            if r["crash"]:
                d[name]["crashes"].append({"id": row["id"], "crash": r["crash"][:500]})
        if len(runs) == 2:
            ok = {n: runs[n][row_key(row)]["outcome"] != "compile_error" for n in runs}
            for n in runs:
                if ok[n] and not any(ok[m] for m in runs if m != n):
                    d.setdefault(f"only_{n}", []).append(row["id"])
    total = {"n": sum(d["n"] for d in datasets.values())}
    for name in runs:
        total[name] = {
            "compiled": sum(d[name]["compiled"] for d in datasets.values()),
            "timeouts": sum(len(d[name]["timeouts"]) for d in datasets.values()),
            "crashes": sum(len(d[name]["crashes"]) for d in datasets.values()),
            "top_reasons": Counter(_reason(r) for r in runs[name].values()
                                   if r["outcome"] == "compile_error").most_common(TOP_REASONS),
        }
    return {"datasets": dict(sorted(datasets.items())), "total": total}


def table(cov: dict, names: tuple[str, ...]) -> str:
    """Markdown table: dataset, n, compiled (%) per engine, structgen timeouts / crashes."""
    head = ["dataset", "n"] + [f"{n} compiled" for n in names]
    extra = "structgen" in names
    if extra:
        head += ["sg timeouts", "sg crashes"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]

    def row(label: str, d: dict, timeouts: int, crashes: int) -> str:
        cells = [label, f"{d['n']:,}"] + [f"{d[n]['compiled']:,} ({100 * d[n]['compiled'] / max(d['n'], 1):.1f}%)"
                                         for n in names]
        if extra:
            cells += [str(timeouts), str(crashes)]
        return "| " + " | ".join(cells) + " |"

    for name, d in cov["datasets"].items():
        sg = d.get("structgen", {})
        lines.append(row(name, d, len(sg.get("timeouts", [])), len(sg.get("crashes", []))))
    t = cov["total"]
    sg = t.get("structgen", {})
    lines.append(row("**total**", t, sg.get("timeouts", 0), sg.get("crashes", 0)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit-per-dataset", type=int, default=None, help="schemas per dataset (default: all)")
    ap.add_argument("--engine", choices=ENGINE_NAMES + ("both",), default="both")
    ap.add_argument("--time-limit", type=float, default=TIME_LIMIT_S, help="per-schema CPU-time limit (s)")
    ap.add_argument("--workers", type=int, default=WORKERS)
    ap.add_argument("--out", type=Path, default=RESULTS / "json_schema_coverage.json")
    args = ap.parse_args(argv)
    names = engine_names(args.engine)

    machine = machine_info()
    rows = select_rows(args.limit_per_dataset)
    runs, seconds = {}, {}
    for name in names:
        t0 = time.perf_counter()
        runs[name] = run_engine(name, rows, workers=args.workers, time_limit_s=args.time_limit, progress=True)
        seconds[name] = round(time.perf_counter() - t0, 1)
    cov = coverage(rows, runs)

    print(f"JSONSchemaBench coverage, {len(rows):,} schemas, strict structgen vs llguidance defaults "
          f"({', '.join(f'{n} {s}s' for n, s in seconds.items())})")
    print(table(cov, names))
    for name in names:
        for ds, d in cov["datasets"].items():
            for sid in d[name]["timeouts"]:
                print(f"TIMEOUT  {name} {ds}/{sid}")
            for c in d[name]["crashes"]:
                print(f"CRASH  {name} {ds}/{c['id']} | {c['crash'][:300]}")

    payload = {
        "machine": machine,
        "settings": {"limit_per_dataset": args.limit_per_dataset, "seed": SEED, "engines": list(names),
                     "structgen": "compile_json_schema(schema, strict=True)",
                     "llguidance": "grammar_from_json_schema defaults; compiled iff validate_grammar is empty",
                     "time_limit_s_cpu": args.time_limit, "workers": args.workers},
        "seconds": seconds,
        **cov,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
