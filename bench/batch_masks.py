#!/usr/bin/env python
"""Batched masks on threads: a 64-sequence batch of MaskBench instances, each with its own schema.

Every sequence replays one valid instance of its schema (``json.dumps``, compact separators, the
Llama-3 tokenizer) token by token; each step fills one bitmask row per live sequence in one batch
call, then each sequence accepts its next token (outside the timer). Throughput = masks per second
of batch-fill time. Each (engine, threads) configuration runs in a fresh process, warmed up on 20
other MaskBench instances (numba kernels loaded, peers' lazy setup done), over the same compiled-once
batch, for two passes: cold (the first pass over the freshly compiled grammars: a serving engine
meeting new schemas) and warm (the same instances again on fresh matchers of the same grammars). structgen's masks are checked against its one-thread run, step by step (a hash
of each batch bitmask).

Engines: structgen (``BatchGrammarMatcher``, property_order="any"), XGrammar 0.2.8
(``BatchGrammarMatcher``, strict_mode=False, the configuration of the MaskBench runs) and llguidance
(``llguidance.numpy.fill_next_token_bitmask_par`` on an ``LLExecutor``).

    python bench/batch_masks.py                       # 64 sequences, threads 1 and 2, all engines
    python bench/batch_masks.py --threads 1,2,4 --engines structgen

Writes ``bench/results/batch_masks.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LLAMA3 = DATA / "tokenizers" / "llama3" / "tokenizer.json"
STOP = [128001, 128009]


def select(n: int, seed: int) -> list[dict]:
    """The first n MaskBench rows (seeded shuffle) that every engine compiles and that have a valid
    instance; each as {id, schema, instance text}."""
    sys.path.insert(0, str(REPO))
    from structgen.evaluation.datasets import load_rows, sample
    from structgen.evaluation.engines import CompileError, make_engine

    engines = [make_engine(e, LLAMA3, STOP) for e in ("structgen", "xgrammar", "llguidance")]
    out = []
    for row in sample(load_rows(DATA / "maskbench"), None, seed)[:4 * n]:
        valid = [t["data"] for t in row.get("tests") or [] if t["valid"]]
        if not valid:
            continue
        try:
            for e in engines:
                e.compile(row["schema"])
        except CompileError:
            continue
        out.append({"id": row["id"], "schema": row["schema"], "text": json.dumps(valid[0], ensure_ascii=False)})
        if len(out) == n:
            break
    return out


def warm_up(eng, rows: list[dict], n: int = 20) -> None:
    """Walk n other MaskBench instances first: the process is then warm (numba kernels loaded from their
    cache, peers' lazy setup done), and the cold pass measures new grammars, not a new process."""
    import json as _json

    from structgen.evaluation.datasets import load_rows, sample
    from structgen.evaluation.engines import CompileError

    batch = {r["id"] for r in rows}
    mask = eng.allocate_mask()
    done = 0
    for row in sample(load_rows(DATA / "maskbench"), 1000, 1):
        valid = [t["data"] for t in row.get("tests") or [] if t["valid"]]
        if row["id"] in batch or not valid:
            continue
        try:
            m = eng.matcher(eng.compile(row["schema"]))
        except CompileError:
            continue
        for t in eng.encode(_json.dumps(valid[0], ensure_ascii=False)):
            m.fill_mask(mask)
            if not m.accept_token(t):
                break
        done += 1
        if done == n:
            break


def run(engine: str, threads: int, rows: list[dict]) -> dict:
    """One configuration in this process: compile the batch, then two timed passes."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from structgen.evaluation.engines import make_engine

    eng = make_engine(engine, LLAMA3, STOP)
    warm_up(eng, rows)
    ids = [eng.encode(r["text"]) + [STOP[1]] for r in rows]
    compiled = [eng.compile(r["schema"]) for r in rows]
    words = (eng.vocab_size + 31) // 32
    bitmask = np.zeros((len(rows), words), dtype=np.int32)
    if engine == "structgen":
        import structgen

        batch = structgen.BatchGrammarMatcher(max_threads=threads)
        new = lambda: [structgen.GrammarMatcher(cg) for cg in compiled]  # noqa: E731
        fill = lambda ms, idx: batch.batch_fill_next_token_bitmask(ms, bitmask, idx)  # noqa: E731
        accept = lambda m, t: m.accept_token(t)  # noqa: E731
    elif engine == "xgrammar":
        import xgrammar

        batch = xgrammar.BatchGrammarMatcher(max_threads=threads)
        new = lambda: [xgrammar.GrammarMatcher(c) for c in compiled]  # noqa: E731
        fill = lambda ms, idx: batch.batch_fill_next_token_bitmask(ms, bitmask, idx)  # noqa: E731
        accept = lambda m, t: m.accept_token(t)  # noqa: E731
    else:
        import llguidance
        import llguidance.numpy

        executor = llguidance.LLExecutor(threads)
        new = lambda: [llguidance.LLMatcher(eng.lltok, c, log_level=0) for c in compiled]  # noqa: E731
        fill = lambda ms, idx: llguidance.numpy.fill_next_token_bitmask_par(  # noqa: E731
            executor, list(zip(ms, idx)), bitmask)
        accept = lambda m, t: m.consume_token(t)  # noqa: E731
    out = {"engine": engine, "threads": threads, "passes": []}
    for name in ("cold", "warm"):
        matchers = new()
        pos = [0] * len(rows)
        fill_s, masks, steps, digests, refused = 0.0, 0, 0, [], 0
        live = list(range(len(rows)))
        while live:
            t0 = time.perf_counter()
            fill([matchers[i] for i in live], live)
            fill_s += time.perf_counter() - t0
            masks += len(live)
            steps += 1
            digests.append(hashlib.blake2b(bitmask[live].tobytes(), digest_size=8).hexdigest())
            nxt = []
            for i in live:
                ok = accept(matchers[i], ids[i][pos[i]])
                refused += not ok
                pos[i] += 1
                if ok and pos[i] < len(ids[i]):
                    nxt.append(i)
            live = nxt
        out["passes"].append({"pass": name, "masks": masks, "steps": steps, "fill_s": fill_s,
                              "masks_per_s": masks / fill_s, "us_per_mask": 1e6 * fill_s / masks,
                              "refused": refused, "digest": hashlib.blake2b("".join(digests).encode(),
                                                                             digest_size=8).hexdigest()})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--engines", default="structgen,xgrammar,llguidance")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "batch_masks"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # engine:threads:rows.json (one configuration)
    a = ap.parse_args()
    if a.worker:
        engine, threads, path = a.worker.split(":", 2)
        print(json.dumps(run(engine, int(threads), json.loads(Path(path).read_text()))))
        return 0
    rows = select(a.batch, a.seed)
    rows_file = Path(a.out + ".rows.json")
    rows_file.write_text(json.dumps(rows))
    results = []
    for engine in a.engines.split(","):
        for threads in [int(t) for t in a.threads.split(",")]:
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
            got = subprocess.run([sys.executable, __file__, "--worker", f"{engine}:{threads}:{rows_file}"],
                                 capture_output=True, text=True, env=env, check=True)
            res = json.loads(got.stdout.strip().splitlines()[-1])
            results.append(res)
            for p in res["passes"]:
                print(f"{engine:11s} threads={threads} {p['pass']:4s} {p['masks']} masks "
                      f"{p['masks_per_s']:9.0f} masks/s ({p['us_per_mask']:.1f} us/mask) refused={p['refused']}",
                      flush=True)
    rows_file.unlink()
    base = {(r["engine"], p["pass"]): p for r in results if r["threads"] == 1 for p in r["passes"]}
    lines = [f"| {a.batch} sequences, MaskBench (seed {a.seed}), Llama-3 | threads | pass | masks/s | "
             "us per mask | speed-up vs 1 thread | same masks as 1 thread |", "|---|---:|---|---:|---:|---:|---|"]
    for r in results:
        for p in r["passes"]:
            b = base.get((r["engine"], p["pass"]))
            same = "" if b is None or r["engine"] != "structgen" else ("yes" if b["digest"] == p["digest"] else "NO")
            lines.append(f"| {r['engine']} | {r['threads']} | {p['pass']} | {p['masks_per_s']:.0f} | "
                         f"{p['us_per_mask']:.1f} | {p['masks_per_s'] / b['masks_per_s']:.2f} | {same} |"
                         if b else "")
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    Path(a.out + ".json").write_text(json.dumps({"settings": vars(a), "ids": [r["id"] for r in rows],
                                                 "results": results}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
