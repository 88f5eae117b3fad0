#!/usr/bin/env python
"""The persistent compile cache: first vs second compile of the same input, in fresh processes.

For each input (examples/person.json, grammars/json.lark, and `--schemas` JSONSchemaBench schemas from
Github_easy and Glaiveai2K, a random.Random(0) sample of those structgen compiles), `structgen compile`
runs twice as a subprocess with one fresh `--cache-dir`: the first run compiles and writes the entry,
the second loads it. Reported per run: the compile time `structgen compile` prints (the compile call
alone) and the process's wall time (interpreter start, imports and tokenizer load included).

    python bench/compile_cache.py               # 20 schemas (~3 minutes on 2 cores)
    python bench/compile_cache.py --schemas 5

Writes bench/results/compile_cache.json and, with matplotlib, bench/results/compile_cache.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from datasets import DATA  # noqa: E402  (tests/datasets.py)
from structgen.evaluation.report import machine_info  # noqa: E402

RESULTS = REPO / "bench" / "results"
DATASETS = ("Github_easy", "Glaiveai2K")
TIME = re.compile(r"^(compiled|loaded from the disk cache) in ([0-9.]+) ms", re.M)


def sample_schemas(n: int) -> list[tuple[str, dict]]:
    """`n` (id, schema) pairs from DATASETS that compile in strict mode, in a seeded order."""
    import gzip

    import structgen
    from structgen.frontend.json_schema import schema_to_grammar

    rows = []
    for name in DATASETS:
        with gzip.open(DATA / "jsonschemabench" / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
            rows += [(f"{name}/{r['id']}", json.loads(r["schema"]) if isinstance(r["schema"], str) else r["schema"])
                     for r in map(json.loads, f)]
    random.Random(0).shuffle(rows)
    out = []
    for rid, schema in rows:
        try:
            schema_to_grammar(schema)
        except structgen.StructgenError:
            continue
        out.append((rid, schema))
        if len(out) == n:
            break
    return out


def compile_twice(source: list[str], cache_dir: str) -> dict:
    """Run `structgen compile SOURCE` twice on one fresh cache; the reported ms and wall seconds of each."""
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "structgen", "compile", *source, "--cache-dir", cache_dir],
                             cwd=REPO, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - t0
        m = TIME.search(res.stdout)
        if res.returncode != 0 or m is None:
            raise RuntimeError(f"structgen compile {source[:1]} failed: {res.stderr[-500:]}")
        runs.append({"from_cache": m.group(1) != "compiled", "compile_ms": float(m.group(2)), "wall_s": wall})
    assert not runs[0]["from_cache"] and runs[1]["from_cache"], runs
    return {"first": runs[0], "second": runs[1], "speedup": runs[0]["compile_ms"] / max(runs[1]["compile_ms"], 1e-3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schemas", type=int, default=20)
    args = ap.parse_args()
    inputs = [("examples/person.json", ["--schema", "examples/person.json"]), ("grammars/json.lark", ["--grammar", "json"])]
    with tempfile.TemporaryDirectory() as tmp:
        for rid, schema in sample_schemas(args.schemas):
            path = Path(tmp) / f"{len(inputs)}.json"
            path.write_text(json.dumps(schema), encoding="utf-8")
            inputs.append((rid, ["--schema", str(path)]))
        env_cache = os.environ.get("STRUCTGEN_CACHE_DIR")  # the tokenizer cache is shared, compiled entries are not
        results = []
        for i, (name, source) in enumerate(inputs):
            r = compile_twice(source, str(Path(tmp) / f"cache{i}"))
            results.append({"input": name, **r})
            print(f"{name:45s} first {r['first']['compile_ms']:8.1f} ms ({r['first']['wall_s']:.2f} s wall)   "
                  f"second {r['second']['compile_ms']:6.1f} ms ({r['second']['wall_s']:.2f} s wall)   "
                  f"x{r['speedup']:.0f}", flush=True)
    speedups = [r["speedup"] for r in results]
    summary = {
        "inputs": len(results),
        "median_first_ms": statistics.median(r["first"]["compile_ms"] for r in results),
        "median_second_ms": statistics.median(r["second"]["compile_ms"] for r in results),
        "median_speedup": statistics.median(speedups),
        "min_speedup": min(speedups),
        "median_first_wall_s": statistics.median(r["first"]["wall_s"] for r in results),
        "median_second_wall_s": statistics.median(r["second"]["wall_s"] for r in results),
    }
    print(f"\nmedian compile {summary['median_first_ms']:.1f} ms -> {summary['median_second_ms']:.1f} ms "
          f"(x{summary['median_speedup']:.0f}, min x{summary['min_speedup']:.0f}); median process wall "
          f"{summary['median_first_wall_s']:.2f} s -> {summary['median_second_wall_s']:.2f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"machine": machine_info(), "tokenizer_cache": env_cache or "default", "summary": summary,
           "results": results}
    (RESULTS / "compile_cache.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(len(results))
    ax.bar([x - 0.2 for x in xs], [r["first"]["compile_ms"] for r in results], 0.4, label="first (compile)")
    ax.bar([x + 0.2 for x in xs], [r["second"]["compile_ms"] for r in results], 0.4, label="second (disk cache)")
    ax.set_yscale("log")
    ax.set_xlabel("input (examples/person.json, json.lark, then JSONSchemaBench schemas)")
    ax.set_ylabel("structgen compile time (ms, log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "compile_cache.png", dpi=120)


if __name__ == "__main__":
    main()
