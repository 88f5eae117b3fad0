"""Per-position mask cost of the infilling oracle (issue 7): p50/p99 ms per mask.

Templates are tokenized JSON documents (SmolLM2 vocabulary, longest-match tokenization) of
N token positions (a little more: whole array items), with a fraction of the positions masked (each masked run is one TokenGap);
masks are computed for random masked positions, each with a fresh oracle call (the token-class
memo of the oracle is warm after the first few, as in a decoding run). Prints a table; writes
nothing.

    python bench/diffusion_masks.py [--sizes 64 256] [--frac 0.25] [--templates 8] [--per 4]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

import structgen
from structgen.decoding.diffusion import CompletabilityOracle, Template, TokenGap

TOKENIZER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tokenizers" / "smollm2" / "tokenizer.json"


def random_json(rng: random.Random, depth: int = 0):
    """A random JSON value (objects, arrays, strings, numbers, literals)."""
    r = rng.random()
    if depth < 4 and r < 0.3:
        return {f"k{rng.randint(0, 99)}_{w}": random_json(rng, depth + 1)
                for w in rng.sample(["name", "id", "tags", "value", "items", "ok"], rng.randint(1, 4))}
    if depth < 4 and r < 0.5:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if r < 0.7:
        return rng.choice(["hello world", "Alice", "x\"y", "caf\u00e9", "a b c", "2024-01-01"])
    if r < 0.9:
        return rng.choice([0, 1, -3, 42, 3.25, -0.5, 1e10])
    return rng.choice([True, False, None])


def tokenize(tok, data: bytes) -> list[int]:
    """Longest-match tokenization over the token trie."""
    tr = tok.trie
    out, i = [], 0
    while i < len(data):
        best = None
        for j in range(i + 1, min(len(data), i + tr.max_depth) + 1):
            node = tr.find(data[i:j])
            if node < 0:
                break
            ids = tr.token_ids_at(node)
            if ids:
                best = (j, ids[0])
        out.append(best[1])
        i = best[0]
    return out


def template_of(tok, rng: random.Random, n: int, frac: float) -> Template:
    """A completable template: a JSON array grown until it has >= n tokens, a fraction masked."""
    items: list = []
    ids: list[int] = []
    while len(ids) < n:
        items.append(random_json(rng))
        ids = tokenize(tok, json.dumps(items).encode())
    n = len(ids)
    masked = set(rng.sample(range(n), max(1, int(frac * n))))
    parts: list = []
    j = 0
    while j < n:
        if j in masked:
            k = 0
            while j < n and j in masked:
                k += 1
                j += 1
            parts.append(TokenGap(k))
        else:
            parts.append(tok.token_bytes[ids[j]])
            j += 1
    return Template(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--frac", type=float, default=0.25)
    ap.add_argument("--templates", type=int, default=8)
    ap.add_argument("--per", type=int, default=4, help="masked positions timed per template")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tok = structgen.TokenizerInfo.from_tokenizer_json(TOKENIZER)
    cg = structgen.GrammarCompiler(tok).compile_grammar(structgen.builtin_grammar("json"))
    oracle = CompletabilityOracle(cg)
    rng = random.Random(args.seed)
    warm = template_of(tok, rng, 32, args.frac)
    for g, i in oracle.token_positions(warm)[:3]:
        oracle.position_mask(warm, g, i)  # first token-class passes (grammar-level memo)
    print(f"{'positions':>9} {'masked':>6} {'masks':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'oracle p50 ms':>13} {'classes p50':>11} {'allowed p50':>11}")
    for n in args.sizes:
        times, otimes, classes, allowed = [], [], [], []
        for _ in range(args.templates):
            tpl = template_of(tok, rng, n, args.frac)
            t0 = time.perf_counter()
            oracle.is_completable(tpl)
            otimes.append((time.perf_counter() - t0) * 1000)
            slots = oracle.token_positions(tpl)
            for g, i in rng.sample(slots, min(args.per, len(slots))):
                t0 = time.perf_counter()
                m = oracle.position_mask(tpl, g, i)
                times.append((time.perf_counter() - t0) * 1000)
                classes.append(oracle.stats["classes"])
                allowed.append(int(np.unpackbits(m.view(np.uint8)).sum()))
        masked = int(args.frac * n)
        print(f"{n:>9} {masked:>6} {len(times):>5} {np.percentile(times, 50):>8.1f} {np.percentile(times, 99):>8.1f} "
              f"{max(times):>8.1f} {np.percentile(otimes, 50):>13.1f} {np.median(classes):>11.0f} "
              f"{np.median(allowed):>11.0f}")


if __name__ == "__main__":
    main()
