#!/usr/bin/env python
"""How many model calls jump-forward tokens save on MaskBench instances.

Generation is replayed along each schema's first valid instance (``json.dumps``, compact, the
Llama-3 tokenizer, the default generation options: declared property order): at each position the
matcher's ``find_jump_forward_tokens()`` are appended without a model call as far as they equal the
instance's own tokens; every other token costs one call. Reported: tokens, calls, the share saved,
how often the forced tokens differ from the instance's tokenization (they are then cut there), and
the time of one ``find_jump_forward_tokens`` call.

    python bench/jump_forward.py [--limit 200]

Writes ``bench/results/jump_forward.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "jump_forward.json"))
    a = ap.parse_args()

    import numpy as np

    import structgen
    from structgen.evaluation.datasets import load_rows, sample

    tok = structgen.TokenizerInfo.from_tokenizer_json(DATA / "tokenizers" / "llama3" / "tokenizer.json")
    compiler = structgen.GrammarCompiler(tok)
    eos = tok.stop_token_ids[0]
    totals = {"schemas": 0, "tokens": 0, "calls": 0, "forced_tokens": 0, "forced_mismatch": 0}
    times: list[float] = []
    per_schema = []
    for row in sample(load_rows(DATA / "maskbench"), None, a.seed):
        if totals["schemas"] == a.limit:
            break
        valid = [t["data"] for t in row.get("tests") or [] if t["valid"]]
        if not valid:
            continue
        try:
            cg = compiler.compile_json_schema(row["schema"])
        except structgen.StructgenError:
            continue
        ids = tok.encoder(json.dumps(valid[0], ensure_ascii=False)) + [eos]
        m = structgen.GrammarMatcher(cg)
        if m.accept_tokens(ids) != len(ids):  # not in the declared order (or not in the language)
            continue
        m.reset()
        pos = calls = 0
        while pos < len(ids):
            t0 = time.perf_counter()
            forced = m.find_jump_forward_tokens()
            times.append(time.perf_counter() - t0)
            j = 0
            while j < len(forced) and pos + j < len(ids) and forced[j] == ids[pos + j]:
                j += 1
            totals["forced_tokens"] += len(forced)
            totals["forced_mismatch"] += j < len(forced)
            assert m.accept_tokens(ids[pos:pos + j]) == j
            pos += j
            if pos < len(ids):
                calls += 1
                assert m.accept_token(ids[pos])
                pos += 1
        totals["schemas"] += 1
        totals["tokens"] += len(ids)
        totals["calls"] += calls
        per_schema.append({"id": row["id"], "tokens": len(ids), "calls": calls})
    t = np.array(times) * 1e6
    out = {**totals, "saved_share": 1 - totals["calls"] / totals["tokens"],
           "find_jump_forward_tokens_us": {"p50": float(np.percentile(t, 50)), "p99": float(np.percentile(t, 99)),
                                           "mean": float(t.mean())},
           "settings": vars(a), "per_schema": per_schema}
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"{totals['schemas']} schemas, {totals['tokens']} tokens, {totals['calls']} model calls: "
          f"{100 * out['saved_share']:.1f}% saved; forced token runs cut at a tokenization difference: "
          f"{totals['forced_mismatch']}; find_jump_forward_tokens p50 / p99 "
          f"{out['find_jump_forward_tokens_us']['p50']:.0f} / {out['find_jump_forward_tokens_us']['p99']:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
