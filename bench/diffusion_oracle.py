"""Oracle cost per unmasking step of masked-diffusion decoding at 64, 256 and 1,024 positions (issue 7).

The sampler is the real one (`diffusion_generate`, rejection mode, SmolLM2 vocabulary, JSON
grammar); the model is a stand-in with a known answer, because no masked-diffusion LM of this
vocabulary runs on this CPU box: a "reference LM" that, at every position, puts probability
0.7 on the token of a fixed valid JSON document of exactly L tokens (random JSON values in
an array, longest-match tokenized, padded with spaces) and spreads the rest uniformly over the
document's other distinct tokens (a model that confuses positions). So every step is a choice
the oracle must check, about a third of them wrong (often rejected) and the rest right (after
accepted wrong ones, not always completable any more). Positions are unmasked in random
order (LLaDA's random remasking, the hardest case: gaps everywhere) or in semi-autoregressive
blocks of 32 (LLaDA's default style).

Per step: the oracle time the sampler spent on that step (witness check, window check, full
oracle calls); "plain" rows switch the witness and window shortcuts off (the oracle alone).
Writes bench/results/diffusion_oracle.{json,md,png}.

    python bench/diffusion_oracle.py [--sizes 64 256 1024] [--samples 2 1 1] [--max-facts 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

import structgen
from structgen.decoding.diffusion import CompletabilityOracle
from structgen.decoding.diffusion.sampler import DiffusionConstraint, diffusion_generate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diffusion_masks import TOKENIZER, random_json, tokenize  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MAX_REDRAWS = 32  # then the witness's token (diffusion_generate's fallback="witness")
INIT_FACTS = 5_000_000  # the oracle limit of the all-masked start's check


def reference_doc(tok, rng: random.Random, n: int) -> list[int]:
    """Token ids of a valid JSON array of exactly n tokens (items while they fit, then spaces)."""
    items: list = []
    ids = tokenize(tok, b"[]")
    misses = 0
    while misses < 50:
        cand = items + [random_json(rng)]
        got = tokenize(tok, json.dumps(cand).encode())
        if len(got) <= n:
            items, ids, misses = cand, got, 0
        else:
            misses += 1
    space = tokenize(tok, b" ")
    assert len(space) == 1
    return ids + space * (n - len(ids))


class ReferenceLM:
    """Logits giving the reference token probability p_true at each position and the rest to the
    document's other tokens (a model that confuses positions), uniformly; every other token
    gets a tiny weight (so a restricted distribution is never empty)."""

    def __init__(self, ref: list[int], vocab: int, p_true: float) -> None:
        self.ref = np.asarray(ref, dtype=np.int64)
        self.vocab = vocab
        self.pool = np.unique(self.ref)
        self.boost = float(np.log(p_true / (1 - p_true) * max(1, len(self.pool) - 1)))

    def logits(self, ids: np.ndarray) -> np.ndarray:
        out = np.full((len(ids), self.vocab), -30.0, dtype=np.float32)
        out[:, self.pool] = 0.0
        out[np.arange(len(ids)), self.ref] = self.boost
        return out


def run_one(cg, oracle, tok, ref, *, order: str, block: int | None, shortcuts: bool, seed: int) -> dict:
    mask_id = int(np.flatnonzero(tok.special_mask)[-1])  # a special token stands for [MASK]
    c = DiffusionConstraint(cg, mask_id=mask_id, oracle=oracle, window=8 if shortcuts else 0, use_witness=shortcuts)
    lm = ReferenceLM(ref, tok.vocab_size, 0.7)
    t0 = time.perf_counter()
    # the all-masked start, checked once with a larger limit (a long TokenGap needs more than one
    # step's limit); the sampler's own start check then reuses its witness
    ok = c.is_completable(np.full(len(ref), mask_id), max_facts=INIT_FACTS)
    assert ok
    init_ms = (time.perf_counter() - t0) * 1e3
    res = diffusion_generate(lm, len(ref), constraint=c, mode="rejection", order=order, block_length=block,
                             seed=seed, max_redraws=MAX_REDRAWS, fallback="witness")
    wall = time.perf_counter() - t0
    m = structgen.GrammarMatcher(cg)
    ok = m.accept_string(res.text) and m.is_accepting()
    json.loads(res.text)
    return {"valid": bool(ok), "steps": res.steps, "seconds": wall, "init_oracle_ms": init_ms,
            "step_oracle_ms": [s * 1e3 for s in res.step_oracle_seconds], "oracle_calls": res.oracle_calls,
            "redraws": res.redraws, "fallbacks": res.fallbacks, "limit_hits": res.limit_hits,
            "witness_fallbacks": res.witness_fallbacks,
            "witness_hits": c.witness_hits, "window_rejections": c.window_rejections}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--samples", type=int, nargs="+", default=[2, 1, 1], help="samples per size (aligned)")
    ap.add_argument("--plain-sizes", type=int, nargs="*", default=[64], help="sizes also run without shortcuts")
    ap.add_argument("--orders", nargs="+", default=["random", "blocks"])
    ap.add_argument("--random-max", type=int, default=256,
                    help="largest size also run in random order (random order at 1,024 runs for hours here)")
    ap.add_argument("--max-facts", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "diffusion_oracle")
    args = ap.parse_args()
    tok = structgen.TokenizerInfo.from_tokenizer_json(TOKENIZER)
    cg = structgen.GrammarCompiler(tok).compile_grammar(structgen.builtin_grammar("json"))
    oracle = CompletabilityOracle(cg, max_facts=args.max_facts)
    rows = []
    for n, samples in zip(args.sizes, args.samples):
        for order in [o for o in args.orders if o != "random" or n <= args.random_max]:
            for shortcuts in ([True, False] if n in args.plain_sizes else [True]):
                runs = []
                for s in range(samples):
                    ref = reference_doc(tok, random.Random(1000 * n + s + args.seed), n)
                    runs.append(run_one(cg, oracle, tok, ref, order="random" if order == "random" else "confidence",
                                        block=32 if order == "blocks" else None, shortcuts=shortcuts, seed=s))
                steps = np.array([x for r in runs for x in r["step_oracle_ms"]])
                row = {"positions": n, "order": order, "shortcuts": shortcuts, "samples": samples,
                       "valid": sum(r["valid"] for r in runs), "steps": int(len(steps)),
                       "step_p50_ms": float(np.percentile(steps, 50)), "step_p90_ms": float(np.percentile(steps, 90)),
                       "step_p99_ms": float(np.percentile(steps, 99)), "step_max_ms": float(steps.max()),
                       "step_mean_ms": float(steps.mean()),
                       "init_ms": float(np.median([r["init_oracle_ms"] for r in runs])),
                       "seconds_per_sample": float(np.median([r["seconds"] for r in runs])),
                       **{k: sum(r[k] for r in runs) for k in ("oracle_calls", "redraws", "fallbacks", "limit_hits",
                                                               "witness_hits", "window_rejections",
                                                               "witness_fallbacks")},
                       "runs": runs}
                rows.append(row)
                print(f"L={n:5d} {order:7s} {'shortcuts' if shortcuts else 'plain':9s} valid {row['valid']}/{samples} "
                      f"step p50 {row['step_p50_ms']:.2f} p90 {row['step_p90_ms']:.1f} p99 {row['step_p99_ms']:.1f} "
                      f"max {row['step_max_ms']:.0f} ms; calls {row['oracle_calls']} witness {row['witness_hits']} "
                      f"window-no {row['window_rejections']} limit {row['limit_hits']} "
                      f"witness-fallback {row['witness_fallbacks']} "
                      f"{row['seconds_per_sample']:.0f} s/sample", flush=True)
    meta = {"tokenizer": "SmolLM2", "grammar": "json", "p_true": 0.7, "max_facts": args.max_facts,
            "machine": platform.platform(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    write_md(args.out.with_suffix(".md"), meta, rows)
    plot(args.out.with_suffix(".png"), rows)


def write_md(path: Path, meta: dict, rows: list[dict]) -> None:
    lines = [
        "# Oracle cost per unmasking step (issue 7)", "",
        f"JSON grammar, SmolLM2 vocabulary, `diffusion_generate(mode=\"rejection\")` with a reference LM "
        f"(p = {meta['p_true']} on the token of a valid JSON document of exactly L tokens, the rest uniform "
        f"over the document's other distinct tokens); "
        f"oracle limit {meta['max_facts']} facts per call (a call past it counts as a rejection: 'limit'). "
        f"Orders: `random` = random remasking (gaps everywhere), `blocks` = confidence order inside "
        "semi-autoregressive blocks of 32. 'shortcuts' = witness + window checks of "
        "`DiffusionConstraint.choice_ok`; 'plain' = the oracle alone. Step time = all oracle work of "
        f"one unmasking step (redraws included; after {MAX_REDRAWS} refused redraws the step takes the "
        "witness's token: `fallback=\"witness\"`). Shared 2-core CPU box.", "",
        "| L | order | checks | samples | valid | steps | step p50 ms | p90 | p99 | max | mean | s/sample | "
        "oracle calls | witness yes | window no | redraws | limit | witness fallbacks |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['positions']} | {r['order']} | {'shortcuts' if r['shortcuts'] else 'plain'} | "
                     f"{r['samples']} | {r['valid']} | {r['steps']} | {r['step_p50_ms']:.2f} | "
                     f"{r['step_p90_ms']:.1f} | {r['step_p99_ms']:.1f} | {r['step_max_ms']:.0f} | "
                     f"{r['step_mean_ms']:.1f} | {r['seconds_per_sample']:.0f} | {r['oracle_calls']} | "
                     f"{r['witness_hits']} | {r['window_rejections']} | {r['redraws']} | {r['limit_hits']} | "
                     f"{r['witness_fallbacks']} |")
    path.write_text("\n".join(lines) + "\n")


def plot(path: Path, rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        s = np.sort([x for run in r["runs"] for x in run["step_oracle_ms"]])
        ax.plot(np.maximum(s, 1e-3), np.arange(1, len(s) + 1) / len(s),
                label=f"L={r['positions']} {r['order']} {'shortcuts' if r['shortcuts'] else 'plain'}",
                ls="-" if r["shortcuts"] else "--")
    ax.set_xscale("log")
    ax.set_xlabel("oracle ms per unmasking step")
    ax.set_ylabel("fraction of steps")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
