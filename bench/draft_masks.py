#!/usr/bin/env python
"""Draft masks for speculative decoding: `fill_draft_masks` against the token-by-token loop.

1,000 drafts of 1-8 tokens on MaskBench schemas (Llama-3, compact): each draft is the next tokens of
a valid instance from a random position, with a random token swapped in for 1 in 5. Both ways write
the same rows (checked); timed per draft token: one `fill_draft_masks` call, and the loop of one
`fill_next_token_bitmask` + `accept_token` per token then `rollback`. Each draft is timed cold once
(first visit of its positions; both orders alternate) and then warm.

    python bench/draft_masks.py [--drafts 1000]

Writes ``bench/results/draft_masks.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--drafts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "draft_masks.json"))
    a = ap.parse_args()

    import numpy as np

    import structgen
    from structgen.evaluation.datasets import load_rows, sample

    tok = structgen.TokenizerInfo.from_tokenizer_json(DATA / "tokenizers" / "llama3" / "tokenizer.json")
    compiler = structgen.GrammarCompiler(tok)
    rng = random.Random(a.seed)
    words = (tok.vocab_size + 31) // 32
    times = {"draft_cold": 0.0, "loop_cold": 0.0, "draft_warm": 0.0, "loop_warm": 0.0}
    tokens = drafts = 0
    for row in sample(load_rows(DATA / "maskbench"), None, a.seed):
        if drafts >= a.drafts:
            break
        valid = [t["data"] for t in row.get("tests") or [] if t["valid"]]
        if not valid:
            continue
        try:
            cg = compiler.compile_json_schema(row["schema"], property_order="any")
        except structgen.StructgenError:
            continue
        ids = tok.encoder(json.dumps(valid[0], ensure_ascii=False)) + [tok.stop_token_ids[0]]
        for _ in range(5):
            k = rng.randrange(len(ids))
            draft = ids[k:k + rng.randint(1, 8)]
            draft = [rng.randrange(tok.vocab_size) if rng.random() < 0.2 else t for t in draft]
            m = structgen.GrammarMatcher(cg)
            if m.accept_tokens(ids[:k]) != k:
                break
            got = np.zeros((len(draft) + 1, words), dtype=np.int32)
            want = np.zeros_like(got)
            for phase in ("cold", "warm"):
                order = ("draft", "loop") if drafts % 2 else ("loop", "draft")
                for way in order:
                    t0 = time.perf_counter()
                    if way == "draft":
                        m.fill_draft_masks(draft, got)
                    else:
                        want[:] = 0
                        n = 0
                        m.fill_next_token_bitmask(want, 0)
                        for j, t in enumerate(draft):
                            if not m.accept_token(t):
                                break
                            n += 1
                            m.fill_next_token_bitmask(want, j + 1)
                        m.rollback(n)
                    times[f"{way}_{phase}"] += time.perf_counter() - t0
            assert np.array_equal(got, want)
            tokens += len(draft)
            drafts += 1
    out = {"drafts": drafts, "draft_tokens": tokens,
           **{f"{k}_us_per_token": 1e6 * v / tokens for k, v in times.items()}, "settings": vars(a)}
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items() if k != "settings"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
