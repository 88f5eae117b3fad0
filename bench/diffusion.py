"""End to end with the project-trained masked-diffusion LM (issue 7, acceptance 3, first form).

For JSON and arithmetic, N samples each unconstrained, with rejection-and-redraw, and with
per-position masks (`structgen.decoding.diffusion.sampler`): syntactic validity (GrammarMatcher
accepts the whole text and is accepting; JSON also `json.loads`), decoding time per sample
(p50), oracle time per unmasking step (p50/p99 ms). Needs the checkpoint written by
`bench/train_diffusion_lm.py`. Writes bench/results/diffusion.{json,md,png}.

    python bench/diffusion.py [--n 50] [--temperature 1.0] [--budget-s 480]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from structgen import GrammarCompiler, GrammarMatcher, StructgenError, builtin_grammar  # noqa: E402
from structgen.decoding.diffusion import CompletabilityOracle  # noqa: E402
from structgen.decoding.diffusion.sampler import DiffusionConstraint, diffusion_generate  # noqa: E402
from train_diffusion_lm import DEFAULT_OUT, load_model  # noqa: E402

RESULTS = REPO / "bench" / "results"
MODES = ("none", "rejection", "mask")
WEIGHT = {"none": 1, "rejection": 1, "mask": 5}  # budget shares


def valid(grammar: str, cg, text: bytes) -> bool:
    """Accepted by the grammar (and, for JSON, by json.loads)."""
    m = GrammarMatcher(cg)
    if not (m.accept_string(text) and m.is_accepting()):
        return False
    if grammar == "json":
        try:
            json.loads(text)
        except ValueError:
            return False
    return True


def pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if xs else None


def run_config(lm, cg, grammar: str, constraint: DiffusionConstraint, mode: str, order: str, n: int, length: int,
               a: argparse.Namespace, deadline: float) -> dict:
    """n samples of one (grammar, mode); stops early at the deadline (reports how many ran)."""
    oks, secs, model_secs, step_ms, init_ms, texts = [], [], [], [], [], []
    redraws = fallbacks = calls = steps = limits = 0
    for i in range(n):
        if time.time() > deadline:
            break
        r = diffusion_generate(lm, length, constraint=constraint, mode=mode, temperature=a.temperature,
                               block_length=a.block_length, order=order, max_redraws=a.max_redraws, seed=1000 + i)
        oks.append(valid(grammar, cg, r.text))
        secs.append(r.seconds)
        model_secs.append(r.model_seconds)
        step_ms += [1e3 * s for s in r.step_oracle_seconds]
        init_ms.append(1e3 * r.init_oracle_seconds)
        redraws += r.redraws
        fallbacks += r.fallbacks
        calls += r.oracle_calls
        steps += r.steps
        limits += r.limit_hits
        texts.append(r.text.decode("utf-8", "replace"))
    k = len(oks)
    return {
        "grammar": grammar, "mode": mode, "order": order, "samples": k,
        "valid": int(sum(oks)), "validity": sum(oks) / k if k else None,
        "sample_s_p50": pct(secs, 50), "sample_s_mean": float(np.mean(secs)) if k else None,
        "model_s_p50": pct(model_secs, 50),
        "oracle_step_ms_p50": pct(step_ms, 50) if mode != "none" else None,
        "oracle_step_ms_p99": pct(step_ms, 99) if mode != "none" else None,
        "oracle_init_ms_p50": pct(init_ms, 50) if mode != "none" else None,
        "steps_mean": steps / k if k else None, "oracle_calls_mean": calls / k if k else None,
        "redraws_per_sample": redraws / k if k else None, "fallbacks_per_sample": fallbacks / k if k else None,
        "limit_hits_per_sample": limits / k if k else None,
        "mean_length": float(np.mean([len(t) for t in texts])) if k else None,
        "examples": texts[:8],
        "invalid_examples": [t for t, ok in zip(texts, oks) if not ok][:8],
    }


def write_md(rows: list[dict], meta: dict, path: Path) -> None:
    def f(x, d=1, scale=1.0):
        return "–" if x is None else f"{x * scale:.{d}f}"
    lines = [
        "# Masked-diffusion decoding under the infilling oracle (issue 7)",
        "",
        f"Model: project-trained byte-level masked-diffusion LM ({meta['params']} parameters, "
        f"{meta['train_steps']} steps / {meta['train_s']} s on CPU, final loss {meta['final_loss']}), "
        f"L = {meta['length']} positions, temperature {meta['temperature']}, one position unmasked per step "
        f"(order: which masked position next, `confidence` = LLaDA low-confidence remasking, `random` = "
        f"LLaDA random remasking), block length {meta['block_length']}, rejection: at most {meta['max_redraws']} "
        f"redraws then the position mask; oracle work limit {meta['max_facts']} facts per call (a call past it: "
        f"the token counts as not verified, a mask falls back to verifying candidates in Gumbel order; "
        f"'limit hits'). EOS fills trailing positions (see structgen/decoding/diffusion/constraint.py). "
        f"Valid = GrammarMatcher accepts the whole text (JSON: and json.loads). Times are wall-clock on a "
        f"shared 2-core CPU box (1 torch thread).",
        "",
        "| order | grammar | mode | samples | valid | time/sample p50 (ms) | model p50 (ms) | oracle/step p50 (ms) "
        "| oracle/step p99 (ms) | redraws/sample | fallbacks/sample | limit hits/sample | mean length |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['order']} | {r['grammar']} | {r['mode']} | 0 | error: {r['error']} |" + " |" * 8)
            continue
        lines.append(
            f"| {r['order']} | {r['grammar']} | {r['mode']} | {r['samples']} | {r['valid']}/{r['samples']} "
            f"({f(r['validity'], 0, 100)}%) | {f(r['sample_s_p50'], 0, 1e3)} | {f(r['model_s_p50'], 0, 1e3)} "
            f"| {f(r['oracle_step_ms_p50'], 2)} | {f(r['oracle_step_ms_p99'], 1)} "
            f"| {f(r['redraws_per_sample'], 2)} | {f(r['fallbacks_per_sample'], 2)} "
            f"| {f(r['limit_hits_per_sample'], 2)} | {f(r['mean_length'], 1)} |")
    lines += ["", "Examples (first samples):", ""]
    for r in rows:
        if "error" in r:
            continue
        lines.append(f"- {r['order']} / {r['grammar']} / {r['mode']}: "
                     + ", ".join(f"`{t}`" for t in r["examples"][:5]))
        if r["invalid_examples"]:
            lines.append("  - invalid: " + ", ".join(f"`{t}`" for t in r["invalid_examples"][:5]))
    path.write_text("\n".join(lines) + "\n")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    grammars = sorted({r["grammar"] for r in rows}, key=["json", "arithmetic"].index)
    orders = list(dict.fromkeys(r["order"] for r in rows))
    fig, axes = plt.subplots(len(orders), 2, figsize=(10, 3.6 * len(orders)), squeeze=False)
    w = 0.25
    for oi, order in enumerate(orders):
        for k, mode in enumerate(MODES):
            sel = [next((r for r in rows if r["grammar"] == g and r["mode"] == mode and r["order"] == order
                         and "error" not in r), None) for g in grammars]
            xs = np.arange(len(grammars)) + (k - 1) * w
            axes[oi, 0].bar(xs, [100 * (r["validity"] or 0) if r else 0 for r in sel], w, label=mode)
            axes[oi, 1].bar(xs, [1e3 * (r["sample_s_p50"] or 0) if r else 0 for r in sel], w, label=mode)
        for ax, title in zip(axes[oi], ["syntactic validity (%)", "decoding time per sample, p50 (ms, log)"]):
            ax.set_xticks(np.arange(len(grammars)), grammars)
            ax.set_title(f"{title} [{order} order]")
            ax.legend(fontsize=8)
        axes[oi, 0].set_ylim(0, 105)
        axes[oi, 1].set_yscale("log")
    fig.suptitle("masked-diffusion LM: unconstrained vs rejection vs mask")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--max-facts", type=int, default=300_000, help="oracle work limit per call")
    ap.add_argument("--orders", nargs="+", choices=["confidence", "random"], default=["confidence", "random"])
    ap.add_argument("--max-redraws", type=int, default=5)
    ap.add_argument("--budget-s", type=float, default=480.0, help="total wall-clock budget (split per config)")
    ap.add_argument("--out", type=Path, default=RESULTS / "diffusion")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    lms, tok, cfg = load_model(a.model)
    length = cfg["length"]
    comp = GrammarCompiler(tok)
    rows = []
    t0 = time.time()
    configs = [(o, g, m) for o in a.orders for g in ("json", "arithmetic") for m in MODES]
    for ci, (order, g, mode) in enumerate(configs):
        cg = comp.compile_grammar(builtin_grammar(g))
        constraint = DiffusionConstraint(cg, mask_id=cfg["mask_id"], eos_id=cfg["eos_id"],
                                         oracle=CompletabilityOracle(cg, max_facts=a.max_facts))
        # each config gets its weighted share of what is left of the budget (masks cost the most)
        w = [WEIGHT[m] for _, _, m in configs[ci:]]
        deadline = time.time() + (a.budget_s - (time.time() - t0)) * w[0] / sum(w)
        try:
            r = run_config(lms[g], cg, g, constraint, mode, order, a.n, length, a, deadline)
        except StructgenError as e:  # report, do not hide
            r = {"grammar": g, "mode": mode, "order": order, "samples": 0, "error": str(e)}
        rows.append(r)
        print(f"{order:10s} {g:10s} {mode:9s} n={r['samples']:3d} valid={r.get('valid')} err={r.get('error')} "
              f"limit_hits={r.get('limit_hits_per_sample')} len={r.get('mean_length')} "
              f"p50={r.get('sample_s_p50')} oracle/step p50={r.get('oracle_step_ms_p50')} "
              f"p99={r.get('oracle_step_ms_p99')} redraws={r.get('redraws_per_sample')} "
              f"e.g. {r.get('examples', [])[:3]}", flush=True)
    tr = cfg.get("train", {})
    meta = {"length": length, "temperature": a.temperature, "block_length": a.block_length, "orders": a.orders,
            "max_redraws": a.max_redraws, "max_facts": a.max_facts, "params": tr.get("params"),
            "train_steps": tr.get("steps"),
            "train_s": tr.get("seconds"), "final_loss": tr.get("final_loss"), "total_s": round(time.time() - t0, 1),
            "n_requested": a.n}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    write_md(rows, meta, a.out.with_suffix(".md"))
    plot(rows, a.out.with_suffix(".png"))
    print(f"wrote {a.out}.{{json,md,png}} in {meta['total_s']} s")


if __name__ == "__main__":
    main()
