#!/usr/bin/env python
"""The fixed `structgen bench` configurations whose results are committed under bench/results/.

    python bench/fixed_runs.py maskbench     # 1,000 MaskBench schemas, Llama-3 tokenizer, one worker (thread)
                                             # per engine: structgen (property_order="any"), structgen-declared
                                             # and llguidance, compact whitespace
    python bench/fixed_runs.py maskbench-flexible        # the same with flexible whitespace
    python bench/fixed_runs.py maskbench-peers           # 200 of them with every engine: also XGrammar with
    python bench/fixed_runs.py maskbench-peers-flexible  # strict_mode=False and in its default (xgrammar-strict)
    python bench/fixed_runs.py test-suite    # JSON Schema Test Suite (2020-12 + draft-07), same engines
    python bench/fixed_runs.py coverage      # JSONSchemaBench, 50 schemas per dataset, SmolLM2 through
                                             # llama-cpp, structgen and llguidance, 2 workers
    python bench/fixed_runs.py all

Each runs the `structgen bench` command printed before it starts, so a result can be reproduced by hand.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LLAMA3 = DATA / "tokenizers" / "llama3"
ENGINES = "structgen,structgen-declared,llguidance,xgrammar,xgrammar-strict"
MAIN = "structgen,structgen-declared,llguidance"  # structgen in both property orders (any, declared)

MASKBENCH = ["maskbench", "--data", str(DATA / "maskbench"), "--tokenizer", str(LLAMA3), "--workers", "1",
             "--time-limit", "10"]
CONFIGS = {
    # structgen and llguidance over all 1,000 schemas, in both whitespace modes
    "maskbench": MASKBENCH + ["--engines", MAIN, "--limit", "1000"],
    "maskbench-flexible": MASKBENCH + ["--engines", MAIN, "--limit", "1000", "--whitespace",
                                       "flexible", "--name", "maskbench_flexible"],
    # every engine, XGrammar in both configurations, on the first 200 of the same 1,000: XGrammar alone needs
    # ~35 minutes per configuration and mode for all 1,000 (compile timeouts), so this is where it is compared
    "maskbench-peers": MASKBENCH + ["--engines", ENGINES, "--limit", "200", "--name", "maskbench_peers"],
    "maskbench-peers-flexible": MASKBENCH + ["--engines", ENGINES, "--limit", "200", "--whitespace", "flexible",
                                             "--name", "maskbench_peers_flexible"],
    "test-suite": ["test-suite", "--data", str(DATA / "json-schema-test-suite"), "--engines", ENGINES,
                   "--tokenizer", str(LLAMA3), "--workers", "1", "--time-limit", "10"],
    "coverage": ["coverage", "--data", str(DATA / "jsonschemabench"), "--engines", "structgen,llguidance",
                 "--limit", "50", "--per-dataset", "--backend", "llama-cpp", "--max-tokens", "384", "--workers", "2",
                 "--time-limit", "120", "--total-timeout", "1800"],
}


def main() -> int:
    which = sys.argv[1:] or ["all"]
    names = list(CONFIGS) if which == ["all"] else which
    for name in names:
        if name not in CONFIGS:
            print(f"unknown configuration {name!r}; choose from {', '.join(CONFIGS)} or all", file=sys.stderr)
            return 2
        cmd = [sys.executable, "-m", "structgen", "bench", *CONFIGS[name], "--out", str(REPO / "bench" / "results")]
        print("$ structgen bench " + " ".join(shlex.quote(c) for c in CONFIGS[name]), flush=True)
        rc = subprocess.run(cmd, cwd=REPO).returncode
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
