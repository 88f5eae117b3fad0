"""Paths to ../shared/data and small deterministic loaders shared by tests."""

from __future__ import annotations

import gzip
import json
import os
import random
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
# the slow tier (tests/conftest.py): also the tests marked slow, and larger samples where a test asks
SLOW = os.environ.get("STRUCTGEN_SLOW") == "1"
TOKENIZERS = DATA / "tokenizers"
MASKBENCH = DATA / "maskbench"
GRAMMARS = REPO / "grammars"


def grammar_text(name: str) -> str:
    return (GRAMMARS / f"{name}.lark").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def maskbench_documents(n: int = 200, seed: int = 0, max_chars: int = 1500) -> tuple[str, ...]:
    """`n` distinct valid MaskBench instances serialized as MaskBench does (json.dumps, raw UTF-8).

    Drawn deterministically across every dataset file, so documents vary in shape and source.
    """
    docs: list[str] = []
    for path in sorted(MASKBENCH.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                for test in row["tests"]:
                    if test["valid"]:
                        text = json.dumps(test["data"], ensure_ascii=False)
                        if len(text) <= max_chars:
                            docs.append(text)
    docs = sorted(set(docs))
    random.Random(seed).shuffle(docs)
    return tuple(docs[:n])


def tiered(values, slow, key=lambda v: v, unpack: bool = True) -> list:
    """pytest parameters: `values`, those whose key is in `slow` marked slow (they run in the CI tier only); a
    tuple value fills several argument names unless unpack=False."""
    import pytest

    out = []
    for v in values:
        marks = [pytest.mark.slow] if key(v) in slow else []
        out.append(pytest.param(*(v if unpack and isinstance(v, tuple) else (v,)), marks=marks))
    return out


def examples(n: int) -> int:
    """A property test's example count: `n` in the slow tier, a third of it (at least 5) by default."""
    return n if SLOW else max(5, n // 3)


@lru_cache(maxsize=None)
def tokenizer_info(name: str = "llama3"):
    """The TokenizerInfo of ../shared/data/tokenizers/<name>, loaded once per process and shared by every test
    module (with its TokenizerIndex: the trie and the tokenizer-wide mask caches)."""
    from structgen import TokenizerInfo

    return TokenizerInfo.from_tokenizer_json(TOKENIZERS / name / "tokenizer.json")
