"""structgen.warm_up loads every kernel a workload reaches: in a fresh process, after it, JSON Schema
compiles in both whitespace modes, the non-LALR grammars, GBNF files and a regex load no numba kernel
(a kernel loaded in a timed call costs ~10-20 ms: a benchmark's p99, a serving request's latency),
and no kernel has two signatures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from datasets import DATA, TOKENIZERS

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import gzip, importlib, json, pathlib, random, sys
sys.path[:0] = [sys.argv[1] + "/tests", sys.argv[1] + "/tests/automata"]
import numpy as np
import structgen
from numba.core.registry import CPUDispatcher

seconds = structgen.warm_up()
kernels = {}
root = pathlib.Path(structgen.__file__).parent
for path in sorted(root.rglob("*.py")):  # the engine's modules (not the CLI's, the integrations', ...)
    parts = path.relative_to(root).with_suffix("").parts
    skip = parts[0] in ("cli", "integrations", "decoding", "evaluation") or parts[-1] in ("__init__", "__main__")
    if skip:
        continue
    modname = ".".join(("structgen",) + parts)
    for name, obj in vars(importlib.import_module(modname)).items():
        if isinstance(obj, CPUDispatcher) and obj.__module__ == modname:
            kernels[f"{modname}.{name}"] = obj
before = {k: len(v.overloads) for k, v in kernels.items()}

from ir_words import random_word
from grammar_samples import NON_LALR
info = structgen.TokenizerInfo.from_tokenizer_json(sys.argv[2])
mask = np.zeros((1, (info.vocab_size + 31) // 32), dtype=np.int32)

def words(cg, n):
    rng = random.Random(0)
    for _ in range(n):
        m = structgen.GrammarMatcher(cg)
        n = 0
        for t in info.encoder(random_word(cg.ir, rng, max_depth=5)[:40].decode("utf-8", "ignore")):
            m.fill_next_token_bitmask(mask)
            if not m.accept_token(t):
                break
            n += 1
        m.fill_next_token_bitmask(mask)
        m.find_jump_forward_string()
        m.rollback(min(n, 1))

compiler = structgen.GrammarCompiler(info)
for _, grammar, _, _ in NON_LALR:
    words(compiler.compile_grammar(grammar), 3)
for path in sys.argv[3].split(","):
    words(compiler.compile_grammar(open(path).read(), syntax="gbnf"), 2)
words(compiler.compile_regex(r"(\d{3}-){2}\d{4}|[a-z]+@[a-z]+\.com"), 3)
for path in sys.argv[4].split(","):
    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for _, line in zip(range(5), f)]
    for row in rows:
        for ws in ("compact", "flexible"):
            try:
                cg = compiler.compile_json_schema(row["schema"], whitespace=ws, property_order="any")
            except structgen.StructgenError:
                continue
            for test in row["tests"]:
                m = structgen.GrammarMatcher(cg)
                for t in info.encoder(json.dumps(test["data"])):
                    m.fill_next_token_bitmask(mask)
                    if not m.accept_token(t):
                        break
print(json.dumps({"seconds": seconds, "loaded": sorted(k for k, v in kernels.items() if len(v.overloads) > before[k]),
                  "signatures": {k: [str(s) for s in v.signatures] for k, v in kernels.items()
                                 if len(v.signatures) > 1},
                  "kernels": len(kernels), "warm": sum(1 for v in before.values() if v)}))
'''

GBNF = ["hcl_terraform", "llama_json", "sparql_small"]
MASKBENCH = ["Github_easy", "Github_medium", "Kubernetes", "Snowplow", "WashingtonPost", "JsonSchemaStore"]


def test_warm_up_loads_every_kernel_a_workload_reaches():
    gbnf = ",".join(str(DATA / "gbnf" / f"{g}.gbnf") for g in GBNF)
    mb = ",".join(str(p) for name in MASKBENCH for p in (DATA / "maskbench").glob(f"{name}.jsonl.gz"))
    # numba's on-disk cache filled first: a kernel compiled (not loaded) in a process also records, on
    # each kernel it calls, the types of those calls, which are not signatures called from Python
    warm = subprocess.run([sys.executable, "-c", "import structgen; structgen.warm_up()"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert warm.returncode == 0, warm.stderr[-2000:]
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO), str(LLAMA3), gbnf, mb], cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["warm"] > 20  # the kernels a compile and its masks call from Python
    assert out["loaded"] == [], f"kernels loaded after warm_up: {out['loaded']}"
    # one signature per kernel (numba types a read-only array apart from a writeable one: dfa.readonly)
    assert out["signatures"] == {}
