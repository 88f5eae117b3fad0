#!/usr/bin/env python
"""Cold start: a fresh process imports the engine, loads the Llama-3 tokenizer, compiles a small schema
and fills one mask. structgen next to llguidance, the same steps, each run 5 times in new processes.

    python bench/cold_start.py

Prints the median of each step and writes bench/results/cold_start.json. "structgen after warm_up"
is a server's start: `structgen.warm_up(tok)` (every kernel loaded) counted with the tokenizer, then the
request's compile and first mask. structgen's numba kernels
load from their on-disk cache (built by the first run after an install, which this script does first
and reports separately).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LLAMA3 = REPO.parent / "shared" / "data" / "tokenizers" / "llama3" / "tokenizer.json"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                                           "email": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
                                           "active": {"type": "boolean"}}, "required": ["name"]}

STRUCTGEN = r'''
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import structgen
t1 = time.perf_counter()
tok = structgen.TokenizerInfo.from_tokenizer_json(sys.argv[1])
t2 = time.perf_counter()
cg = structgen.GrammarCompiler(tok).compile_json_schema(json.loads(sys.argv[2]))
t3 = time.perf_counter()
mask = np.zeros((1, (tok.vocab_size + 31) // 32), dtype=np.int32)
structgen.GrammarMatcher(cg).fill_next_token_bitmask(mask, 0)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "tokenizer": t2 - t1, "compile": t3 - t2, "first mask": t4 - t3, "total": t4 - t0}))
'''

# a server's start: warm_up() loads every kernel once, then the request's compile and first mask
STRUCTGEN_WARM = STRUCTGEN.replace("t2 = time.perf_counter()\ncg =",
                                   "structgen.warm_up(tok)\nt2 = time.perf_counter()\ncg =").replace(
    '"tokenizer": t2 - t1', '"tokenizer + warm_up": t2 - t1')

LLGUIDANCE = r'''
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import llguidance
t1 = time.perf_counter()
tok = llguidance.LLTokenizer(sys.argv[1])
t2 = time.perf_counter()
grammar = llguidance.LLMatcher.grammar_from_json_schema(json.loads(sys.argv[2]),
                                                       overrides={"whitespace_flexible": False})
m = llguidance.LLMatcher(tok, grammar)
t3 = time.perf_counter()
mask = np.zeros((tok.vocab_size + 31) // 32, dtype=np.int32)
m.unsafe_compute_mask_ptr(mask.ctypes.data, mask.nbytes)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "tokenizer": t2 - t1, "compile": t3 - t2, "first mask": t4 - t3, "total": t4 - t0}))
'''


def once(code: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code, str(LLAMA3), json.dumps(SCHEMA)], cwd="/tmp",
                         capture_output=True, text=True, timeout=600)
    if res.returncode:
        raise RuntimeError(res.stderr[-500:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    first = once(STRUCTGEN)  # fills numba's cache if the install has not yet
    out = {"structgen first run after install": first}
    for name, code in (("structgen", STRUCTGEN), ("structgen after warm_up", STRUCTGEN_WARM),
                       ("llguidance", LLGUIDANCE)):
        runs = [once(code) for _ in range(5)]
        out[name] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    (REPO / "bench" / "results" / "cold_start.json").write_text(json.dumps(out, indent=1) + "\n")
    steps = list(out["structgen"])
    print("| seconds (median of 5 fresh processes) | " + " | ".join(steps) + " |")
    print("|---|" + "---:|" * len(steps))
    for name in ("structgen", "structgen after warm_up", "llguidance"):
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in out[name].values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
