#!/usr/bin/env python
"""Where a compile's time goes: each step of compile + first mask timed by wrappers, the way the
profiles in bench/README.md ("Compile time") were taken.

    python bench/compile_phases.py maskbench 400 compact    # 400 MaskBench schemas (seed 0), each once:
                                                            # mean ms of the middle fifth and of the
                                                            # 85th-95th percentiles of time to first mask
    python bench/compile_phases.py object 1000 flexible     # one object of n optional properties

The process is set up as MaskBench's workers are (a warm-up compile, then gc.collect and gc.freeze),
so numba kernels are loaded and no collection walks the start-up heap. Steps: emit (JSON Schema ->
IR, building and pruning it included), lr (LALR tables), objects (constraints as parser state),
lexer (terminal tables), start_state, maskstore_init, gc (the collection at a compile's end), and
after the compile the matcher and the first mask.
"""

from __future__ import annotations

import collections
import gc
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]
DATA = REPO.parent / "shared" / "data"
STEPS = ("emit", "ir_build", "lr", "objects", "lexer", "start_state", "maskstore_init", "gc")


def instrument() -> dict[str, float]:
    """Wrap each step's function; returns the dict their times (s) accumulate in."""
    import structgen.compiler as compiler
    import structgen.frontend.ir as ir
    import structgen.frontend.json_schema as json_schema
    import structgen.grammar as grammar
    import structgen.runtime as runtime

    acc: dict[str, float] = collections.defaultdict(float)

    def wrap(holder, name: str, label: str) -> None:
        f = getattr(holder, name)

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                acc[label] += time.perf_counter() - t
        setattr(holder, name, timed)

    wrap(json_schema, "schema_to_grammar", "emit")
    wrap(ir.GrammarBuilder, "build", "ir_build")
    wrap(grammar, "lalr_tables", "lr")
    wrap(grammar, "ObjectStates", "objects")
    wrap(grammar, "LexerTables", "lexer")
    wrap(runtime.GrammarRuntime, "start_state", "start_state")
    wrap(grammar, "MaskStore", "maskstore_init")
    wrap(compiler, "_collect_after_compile", "gc")
    return acc


def main() -> int:
    kind, n, whitespace = sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "compact"
    acc = instrument()
    from structgen.evaluation.datasets import load_rows
    from structgen.evaluation.engines import make_engine
    from structgen.evaluation.maskbench import WARMUP_ROW

    eng = make_engine("structgen", str(DATA / "tokenizers" / "llama3" / "tokenizer.json"), [128001, 128009],
                      whitespace)
    row = eng.allocate_mask()
    eng.matcher(eng.compile(WARMUP_ROW["schema"])).fill_mask(row)
    gc.collect()
    gc.freeze()
    if kind == "object":
        kinds = ("integer", "string", "boolean", "number")
        schemas = [{"type": "object", "properties": {f"p{i}": {"type": kinds[i % 4]} for i in range(n)}}]
    else:
        rows = load_rows(DATA / "maskbench")
        random.Random(0).shuffle(rows)
        schemas = [r["schema"] for r in rows[:n]]
    res = []
    for schema in schemas:
        acc.clear()
        t0 = time.perf_counter()
        try:
            compiled = eng.compile(schema)
            t1 = time.perf_counter()
            matcher = eng.matcher(compiled)
            t2 = time.perf_counter()
            matcher.fill_mask(row)
        except Exception:  # a refusal: not a time to first mask
            continue
        t3 = time.perf_counter()
        res.append({**acc, "compile": t1 - t0, "matcher": t2 - t1, "first_mask": t3 - t2, "ttfm": t3 - t0})
    res.sort(key=lambda d: d["ttfm"])
    keys = ("ttfm", "compile") + STEPS + ("matcher", "first_mask")
    bands = [(0.0, 1.0, "all")] if len(res) < 10 else [(0.4, 0.6, "p40-60"), (0.85, 0.95, "p85-95")]
    for lo, hi, label in bands:
        part = res[int(lo * len(res)):max(int(hi * len(res)), int(lo * len(res)) + 1)]
        print(f"{label:7s}" + " ".join(f"{k} {np.mean([d.get(k, 0.0) for d in part]) * 1e3:.2f}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
