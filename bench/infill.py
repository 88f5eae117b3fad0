#!/usr/bin/env python
"""Multi-region infilling with SmolLM2: JSON templates with two gaps, unconstrained vs constrained.

Templates come from MaskBench's valid JSON instances (compact serialization, 30-160 bytes): two
random byte spans (2-12 bytes) are cut out and become unbounded gaps. The model is shown the
template with ___ for each gap and writes the JSON; the fixed pieces are forced, and each gap is
written greedily by `structgen.decoding.infill.infill`, with completability masks (constrained)
or without (unconstrained, the baseline). Reported: syntactic validity (the json grammar's
matcher and json.loads agree), how often every gap closed within the budget, time per sample,
and the time of each constrained step's masks (p50/p99).

    python bench/infill.py                 # 20 templates, llama-cpp backend (~5-10 minutes on 2 cores)
    python bench/infill.py --templates 10

Writes bench/results/infill.json, bench/results/infill.md and bench/results/infill.png.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

import structgen  # noqa: E402
from structgen.decoding.diffusion import ByteGap, CompletabilityOracle, Template  # noqa: E402
from structgen.decoding.infill import infill, is_word  # noqa: E402
from structgen.decoding.lm import LlamaCppModel  # noqa: E402
from structgen.evaluation.report import machine_info  # noqa: E402
from structgen.models import chat_prompt, load_default_llama, load_default_tokenizer  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "maskbench"
RESULTS = REPO / "bench" / "results"


def documents(n: int, seed: int) -> list[bytes]:
    """Compact JSON texts of MaskBench valid instances, 30-160 bytes, a seeded sample."""
    docs = []
    for path in sorted(DATA.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                for t in json.loads(line).get("tests", []):
                    if t.get("valid"):
                        text = json.dumps(t["data"], ensure_ascii=False).encode("utf-8")
                        if 30 <= len(text) <= 160 and text[:1] in b"{[":
                            docs.append(text)
    rng = random.Random(seed)
    rng.shuffle(docs)
    return docs[:n]


def cut_two_gaps(doc: bytes, rng: random.Random) -> list:
    """doc with two non-overlapping spans of 2-12 bytes replaced by unbounded gaps."""
    while True:
        a = rng.randrange(1, len(doc) - 4)
        b = min(len(doc) - 1, a + rng.randint(2, 12))
        c = rng.randrange(1, len(doc) - 4)
        d = min(len(doc) - 1, c + rng.randint(2, 12))
        if b < c or d < a:
            (a, b), (c, d) = sorted([(a, b), (c, d)])
            try:  # the pieces must stay whole UTF-8 so the prompt can show them
                [p.decode("utf-8") for p in (doc[:a], doc[b:c], doc[d:])]
            except UnicodeDecodeError:
                continue
            return [doc[:a], ByteGap(), doc[b:c], ByteGap(), doc[d:]]


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--templates", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens-per-gap", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "infill.json")
    args = ap.parse_args()

    hf_tok = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(hf_tok)
    cg = structgen.GrammarCompiler(info).compile_grammar(structgen.builtin_grammar("json"))
    oracle = CompletabilityOracle(cg)
    lm = LlamaCppModel(load_default_llama(n_threads=args.threads, n_ctx=2048))

    def encode(text: bytes) -> list[int]:
        return list(hf_tok(text.decode("utf-8", errors="replace"), add_special_tokens=False)["input_ids"])

    rng = random.Random(args.seed)
    rows = []
    for i, doc in enumerate(documents(args.templates, args.seed)):
        parts = cut_two_gaps(doc, rng)
        shown = "___".join(p.decode("utf-8") for p in parts if isinstance(p, bytes))
        prompt = chat_prompt(hf_tok, "Fill in each ___ in this JSON with short text so that the whole is valid "
                                     f"JSON.\n{shown}\nReply with the completed JSON only.")
        prompt_ids = list(hf_tok(prompt, add_special_tokens=False)["input_ids"])
        row = {"template": shown, "original": doc.decode("utf-8")}
        for mode in ("unconstrained", "constrained"):
            res = infill(lm, cg, Template(parts), prompt_ids, encode, constrained=mode == "constrained",
                         max_tokens_per_gap=args.max_tokens_per_gap, oracle=oracle)
            try:
                json.loads(res.text)
                parses = True
            except ValueError:
                parses = False
            valid = is_word(cg, res.text)
            row[mode] = {"text": res.text.decode("utf-8", errors="replace"), "valid": valid, "json_loads": parses,
                         "closed": res.closed, "witness_closes": res.witness_closes,
                         "seconds": round(res.seconds, 3), "model_calls": res.model_calls,
                         "mask_ms": [round(x, 3) for x in res.mask_ms]}
        rows.append(row)
        print(f"[{i + 1}/{args.templates}] unconstrained {'valid' if row['unconstrained']['valid'] else 'INVALID'}, "
              f"constrained {'valid' if row['constrained']['valid'] else 'INVALID'}: "
              f"{row['constrained']['text'][:70]!r}", flush=True)

    summary = {}
    for mode in ("unconstrained", "constrained"):
        rs = [r[mode] for r in rows]
        masks = [x for r in rs for x in r["mask_ms"]]
        summary[mode] = {
            "samples": len(rs), "valid": sum(r["valid"] for r in rs), "json_loads": sum(r["json_loads"] for r in rs),
            "matcher_and_json_agree": sum(r["valid"] == r["json_loads"] for r in rs),
            "closed": sum(r["closed"] for r in rs),
            "witness_closes": sum(r["witness_closes"] for r in rs),
            "seconds_p50": pct([r["seconds"] for r in rs], 50), "seconds_p90": pct([r["seconds"] for r in rs], 90),
            "mask_ms_p50": pct(masks, 50), "mask_ms_p99": pct(masks, 99), "mask_steps": len(masks),
        }
    out = {"machine": machine_info(), "settings": vars(args) | {"out": str(args.out)}, "summary": summary,
           "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    u, c = summary["unconstrained"], summary["constrained"]
    md = ["| infill, SmolLM2, 2 gaps per JSON template | unconstrained | constrained |", "|---|---:|---:|",
          f"| templates | {u['samples']} | {c['samples']} |",
          f"| valid JSON (matcher; json.loads agrees on {u['matcher_and_json_agree']} / "
          f"{c['matcher_and_json_agree']}) | {u['valid']} | {c['valid']} |",
          f"| every gap closed by the model within {args.max_tokens_per_gap} tokens | {u['closed']} | "
          f"{c['closed']} |",
          f"| gaps finished by the oracle's witness at the budget | - | {c['witness_closes']} |",
          f"| seconds per sample p50 / p90 | {u['seconds_p50']:.2f} / {u['seconds_p90']:.2f} | "
          f"{c['seconds_p50']:.2f} / {c['seconds_p90']:.2f} |",
          f"| masks per step p50 / p99 ms | - | {c['mask_ms_p50']:.1f} / {c['mask_ms_p99']:.1f} |"]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    fig, ax = plt.subplots(figsize=(5, 3.2))
    vals = [100 * u["valid"] / max(u["samples"], 1), 100 * c["valid"] / max(c["samples"], 1)]
    ax.bar(["unconstrained", "constrained"], vals, color=["tab:red", "tab:blue"])
    for x, v in enumerate(vals):
        ax.text(x, v + 1, f"{v:.0f}%", ha="center")
    ax.set_ylim(0, 110)
    ax.set_ylabel("valid JSON [%]")
    ax.set_title(f"Two-gap JSON infilling, SmolLM2-135M ({u['samples']} templates)")
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
