"""Worker side of test_shuffled_instances.py: one MaskBench schema, its instances with shuffled keys.

An instance the grammar decides wrongly in its own order (a value it gets wrong, whatever the order)
is reported apart (`original`); the rest must be decided right in every shuffled order (`bad`).

    python tests/frontend/shuffle_check.py [--n N]     # N schemas of the fixed sample (default: all)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from datasets import DATA  # noqa: E402

ORDERS = 3  # shuffled copies of each instance
_STATE: dict = {}


def shuffled(x: Any, rng: random.Random) -> Any:
    """`x` with the members of every object (at every level) in a random order."""
    if isinstance(x, dict):
        items = [(k, shuffled(v, rng)) for k, v in x.items()]
        rng.shuffle(items)
        return dict(items)
    if isinstance(x, list):
        return [shuffled(v, rng) for v in x]
    return x


def init(_: Any = None) -> None:
    from structgen import GrammarCompiler, TokenizerInfo

    _STATE["compiler"] = GrammarCompiler(TokenizerInfo.from_tokenizer_json(DATA / "tokenizers" / "llama3" /
                                                                           "tokenizer.json"))


def check(row: dict) -> dict:
    """Compile (strict, any order, compact) and walk every instance in ORDERS shuffled orders."""
    from structgen import GrammarMatcher, StructgenError

    key = f"{row['dataset']}/{row['id']}"
    try:
        cg = _STATE["compiler"].compile_json_schema(row["schema"], strict=True, property_order="any")
    except StructgenError as e:
        return {"key": key, "compiled": False, "error": f"{type(e).__name__}: {e}"[:300], "bad": [], "original": []}
    def decided_right(data: Any, valid: bool) -> bool:
        m = GrammarMatcher(cg)
        return (m.accept_string(json.dumps(data, ensure_ascii=False)) and m.is_accepting()) == valid

    rng = random.Random(zlib.crc32(key.encode()))
    bad, original = [], []
    for i, t in enumerate(row.get("tests", [])):
        if not decided_right(t["data"], t["valid"]):
            original.append(i)  # wrong whatever the order: a value the grammar decides wrongly
            continue
        for _ in range(ORDERS):
            data = shuffled(t["data"], rng)
            if not decided_right(data, t["valid"]):
                bad.append({"test": i, "valid": t["valid"], "text": json.dumps(data, ensure_ascii=False)[:300]})
                break
    return {"key": key, "compiled": True, "error": None, "bad": bad, "original": original}


def run(rows: list[dict], time_limit_s: float = 10.0, workers: int = 2) -> list[dict]:
    """check() for every row, each an isolated task (a timeout counts as not compiled)."""
    from structgen.evaluation.isolation import run_isolated

    outs = run_isolated(check, rows, init=init, workers=workers, time_limit_s=time_limit_s)
    return [o.value if o.status == "ok" else {"key": f"{r['dataset']}/{r['id']}", "compiled": False,
                                              "error": o.status, "bad": [], "original": []} for r, o in zip(rows, outs)]


def main() -> int:
    from frontend.maskbench_runner import load_rows

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=0, help="schemas of the fixed sample (0: all)")
    args = ap.parse_args()
    rows = load_rows()
    random.Random(0).shuffle(rows)
    rows = rows[: args.n or None]
    res = run(rows)
    bad = [r for r in res if r["bad"]]
    n_inst = sum(len(r.get("tests", [])) for r in rows)
    wrong = [r for r in res if r["original"]]
    print(f"{len(rows)} schemas ({n_inst} instances x {ORDERS} orders): {sum(r['compiled'] for r in res)} compiled, "
          f"{len(bad)} with a shuffled instance decided wrongly where its own order is decided right, "
          f"{len(wrong)} with an instance decided wrongly in its own order")
    for r in bad:
        print("ORDER", r["key"], r["bad"][:2])
    for r in wrong:
        print("VALUE", r["key"], "tests", r["original"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
