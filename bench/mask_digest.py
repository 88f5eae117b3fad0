"""Behaviour fingerprint of the engine: every mask over a MaskBench sample, hashed, to prove a refactor changed nothing.

    python bench/mask_digest.py                       # writes bench/results/mask_digest.json
    python bench/mask_digest.py --check OLD.json      # recompute and compare with a saved fingerprint

For each of 200 MaskBench schemas (the `maskbench-peers` sample: fixed seed 0, Llama-3 tokenizer) and both
whitespace modes, structgen (the benchmark's configuration, `property_order="any"`) compiles the schema and walks
every test instance token by token. Recorded per schema: the outcome (pass / fail / compile error and its
reason), which valid instances it rejects and which invalid ones it accepts, and one SHA-256 over every mask row
filled on the way (the packed int32 rows, in order). Two runs agree iff every mask is bit-identical.
"""

from __future__ import annotations

import argparse
import os
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STRUCTGEN_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "bench" / "results" / "mask_digest.json"


def fingerprint(limit: int, whitespace: str) -> dict[str, dict]:
    """{"dataset/id": record} for the first `limit` schemas of the fixed sample."""
    from structgen import TokenizerInfo, bitset
    from structgen.evaluation.datasets import load_rows, sample
    from structgen.evaluation.engines import CompileError, make_engine

    tok = DATA / "tokenizers" / "llama3" / "tokenizer.json"
    stops = [int(t) for t in TokenizerInfo.from_tokenizer_json(tok).stop_token_ids]
    engine = make_engine("structgen", tok, stops, whitespace)
    stop = stops[0]
    out = {}
    for row in sample(load_rows(DATA / "maskbench"), limit, 0):
        key = f"{row['dataset']}/{row['id']}"
        try:
            compiled = engine.compile(row["schema"])
        except CompileError as e:
            out[key] = {"outcome": "compile_error", "reason": str(e)[:200]}
            continue
        h = hashlib.sha256()
        rec = {"valid_rejected": [], "invalid_accepted": []}
        for i, test in enumerate(row.get("tests") or []):
            try:
                ids = engine.encode(json.dumps(test["data"], ensure_ascii=False))
            except Exception:  # lone surrogates: no UTF-8 output spells it
                ids = None
            accepted = ids is not None
            if ids is not None:
                m = engine.matcher(compiled)
                bits = engine.allocate_mask()
                for t in ids + [stop]:
                    m.fill_mask(bits)
                    h.update(np.ascontiguousarray(bits).tobytes())
                    ok = m.is_accepting() if t == stop else m.accept_token(t)
                    if bool(ok) != bitset.has(bits, t):
                        rec.setdefault("disagreements", 0)
                        rec["disagreements"] += 1
                    if not ok:
                        accepted = False
                        break
            if test["valid"] and not accepted:
                rec["valid_rejected"].append(i)
            if not test["valid"] and accepted:
                rec["invalid_accepted"].append(i)
        bad = rec["valid_rejected"] or rec["invalid_accepted"] or rec.get("disagreements")
        rec["outcome"] = "fail" if bad else "pass"
        rec["masks_sha256"] = h.hexdigest()
        out[key] = rec
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--check", type=Path, help="a saved fingerprint to compare with (exit 1 on any difference)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    got = {ws: fingerprint(args.limit, ws) for ws in ("compact", "flexible")}
    for ws, recs in got.items():
        n = {o: sum(r["outcome"] == o for r in recs.values()) for o in ("pass", "fail", "compile_error")}
        print(f"{ws}: {len(recs)} schemas, {n}, valid rejected "
              f"{sum(len(r.get('valid_rejected', [])) for r in recs.values())}, invalid accepted "
              f"{sum(len(r.get('invalid_accepted', [])) for r in recs.values())}")
    if args.check:
        old = json.loads(args.check.read_text())
        diff = [f"{ws} {k}: {old[ws].get(k)} != {r}" for ws, recs in got.items() for k, r in recs.items()
                if old.get(ws, {}).get(k) != r]
        print(f"{len(diff)} schemas differ from {args.check}")
        for d in diff[:20]:
            print(" ", d[:400])
        return 1 if diff else 0
    args.out.write_text(json.dumps(got, indent=1, sort_keys=True))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
