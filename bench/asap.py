#!/usr/bin/env python
"""ASAp vs GCD against the exact grammar-conditioned distribution Q, with the embedded SmolLM2.

For three finite-language grammars in the spirit of the GAD paper (a skewed binary-string grammar,
a small SLIA-like string-expression grammar, a BV4-like bit-vector grammar), each with a prompt
that makes the constraint bite:

1. Exact target.  A matcher-guided best-first search enumerates the token sequences whose text is
   in the language, most probable prefix first, until the next prefix has P < Z_found · e^-REL
   (`--rel-floor`); what is left bounds the missing mass (reported).  Samples the search missed
   are added with their exact probability afterwards, so every sample has its exact Q.
   Q(w) ∝ P(w · <|im_end|> | prompt) at temperature 1.
2. Sampling.  ASAp and GCD (the same sampler with learning off: same trie, cache and random
   stream) draw `--samples` finished samples per seed (`--seeds` seeds).  Model logits are
   memoized across the search and all samplers (MemoModel), so sampling costs no extra model
   compute here; "model calls" are the calls each sampler makes, as if the model were direct.
3. Metrics at 10 ... N samples: KL(empirical || Q) (mean over seeds), the exact KL of the
   sampler's current distribution to Q, and the mean model log-likelihood of the samples; model
   calls per sample over the run.  Timing: a direct (unmemoized) run of both samplers.

    python bench/asap.py                       # ~10-20 minutes on 2 cores (llama.cpp backend)
    python bench/asap.py --grammars skewed_binary --samples 500 --seeds 1

Writes bench/results/asap.json, bench/results/asap.md and bench/results/asap_<grammar>.png.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

import structgen  # noqa: E402
from structgen.decoding.asap import ASApSampler  # noqa: E402
from structgen.decoding.exact_target import (  # noqa: E402
    empirical_kl,
    enumerate_language,
    extend_enumeration,
    kl_divergence,
)
from structgen.decoding.lm import LlamaCppModel, MemoModel, TransformersModel  # noqa: E402
from structgen.evaluation.report import machine_info  # noqa: E402

RESULTS = REPO / "bench" / "results"

GRAMMARS = {
    # GAD paper's skewed example: 00000 or 1 followed by any 4 bits; GCD over-weights the forced 0 branch
    "skewed_binary": {
        "lark": 'start: "00000" | /1[01]{4}/',
        "prompt": "Write a random binary string of five bits.",
        "max_new_tokens": 8,
    },
    # SLIA-like: one string operation over name and " " (10 programs, thousands of tokenizations)
    "slia": {
        "lark": '\n'.join([
            'start: e0 | "(str.++ " e0 " " e0 ")" | "(str.at " e0 " " N ")"',
            'e0: "name" | "\\" \\""',
            'N: "0" | "1"',
        ]),
        "prompt": ("In SyGuS string theory (SLIA), write an expression over the string variable name "
                   "that returns its first character."),
        "max_new_tokens": 16,
    },
    # BV4-like: one bit-vector operation over x, y and the 4-bit constant #b0001 (33 programs)
    "bv4": {
        "lark": '\n'.join([
            'start: a | "(" OP1 " " a ")" | "(" OP2 " " a " " a ")"',
            'a: "x" | "y" | "#b0001"',
            'OP1: "bvnot"',
            'OP2: "bvand" | "bvor" | "bvadd"',
        ]),
        "prompt": "In SyGuS bit-vector theory (4-bit), write an expression over x and y that computes x + 1.",
        "max_new_tokens": 16,
    },
}

CHECKPOINTS = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000]


def log_mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def proposal_kl(sampler: ASApSampler, support: list[tuple[int, ...]], log_q: dict, stop: int) -> tuple[float, float]:
    """KL(sampler's next-sample distribution over finished outputs || Q) and its finished mass."""
    lp = sampler.proposal_logprobs([(w, stop) for w in support])
    mass = float(np.exp(lp).sum())
    lp = lp - math.log(mass)
    # a KL of 0 computes as -1e-9 or so in float64 rounding: report it as 0
    return max(0.0, kl_divergence(dict(zip(support, lp.tolist())), log_q)), mass


def run_grammar(name: str, spec: dict, lm, hf_tok, info, args) -> dict:
    from structgen.models import chat_prompt

    cg = structgen.GrammarCompiler(info).compile_grammar(spec["lark"])
    prompt_ids = list(hf_tok(chat_prompt(hf_tok, spec["prompt"]), add_special_tokens=False)["input_ids"])
    stop = info.stop_token_ids[0]
    budget = spec["max_new_tokens"]
    memo = MemoModel(lm)
    t0 = time.perf_counter()
    e = enumerate_language(memo, cg, prompt_ids, max_new_tokens=budget, min_relative_logprob=-args.rel_floor,
                           max_nodes=args.max_nodes)
    t_enum = time.perf_counter() - t0
    enum_info = {"sequences": len(e.sequences), "texts": len({info.decode_bytes(w) for w in e.sequences}),
                 "expanded_prefixes": len(e.prefix_logprob), "model_calls": e.model_calls,
                 "seconds": round(t_enum, 1), "log_z": e.log_z,
                 "pruned_mass_bound_relative": math.exp(e.log_pruned - e.log_z) if e.log_pruned > -math.inf else 0.0}
    print(f"[{name}] enumerated {enum_info['sequences']} sequences ({enum_info['texts']} texts), "
          f"{e.model_calls} model calls, {t_enum:.1f} s, log Z = {e.log_z:.3f}, "
          f"pruned mass <= {enum_info['pruned_mass_bound_relative']:.2e} Z", flush=True)

    checkpoints = [c for c in CHECKPOINTS if c <= args.samples]
    if checkpoints[-1] != args.samples:
        checkpoints.append(args.samples)

    def draw(learning: bool, seed: int, q_support=None, log_q=None) -> tuple[list, list, list]:
        sampler = ASApSampler(memo, cg, prompt_ids, max_new_tokens=budget, learning=learning, seed=seed)
        samples, exact = [], []
        for c in checkpoints:
            samples += sampler.sample(c - len(samples))
            if q_support is not None and (learning or c == checkpoints[0]):
                exact.append(proposal_kl(sampler, q_support, log_q, stop))
        return samples, exact, sampler.stats.calls_per_sample

    # pass 1: sample, then add every sampled sequence the pruned search missed
    runs = {m: [draw(m == "asap", seed)[0] for seed in range(args.seeds)] for m in ("asap", "gcd")}
    added = extend_enumeration(e, memo, cg, prompt_ids,
                               [s.token_ids for m in runs for r in runs[m] for s in r])
    log_q = e.log_q()
    support = sorted(log_q)
    print(f"[{name}] {added} sampled sequences were outside the pruned enumeration (added exactly)", flush=True)

    # pass 2 (same seeds, so the same samples): the exact KL of each sampler's distribution at the checkpoints
    out: dict = {"grammar": spec["lark"], "prompt": spec["prompt"], "max_new_tokens": budget,
                 "enumeration": {**enum_info, "added_from_samples": added, "final_sequences": len(support),
                                 "final_log_z": e.log_z},
                 "checkpoints": checkpoints, "methods": {}}
    q = np.array([log_q[w] for w in support])
    logp = np.array([e.sequences[w] for w in support])
    out["exact_expected_loglik_Q"] = float(np.sum(np.exp(q) * logp))
    for method in ("asap", "gcd"):
        kls, exact, lls, calls = [], [], [], []
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            samples, ex, per = draw(method == "asap", seed, support, log_q)
            assert [s.token_ids for s in samples] == [s.token_ids for s in runs[method][seed]]
            kls.append([empirical_kl([s.token_ids for s in samples[:c]], log_q)[0] for c in checkpoints])
            lls.append([log_mean([s.logprob for s in samples[:c]]) for c in checkpoints])
            exact.append([k for k, _ in ex])
            calls.append(per)
        t_sample = time.perf_counter() - t0
        kls_a = np.array(kls)
        per = np.array(calls[0], dtype=float)
        windows = [(1, 10), (11, 100), (101, 1000), (1001, args.samples)]
        out["methods"][method] = {
            "kl_empirical_mean": kls_a.mean(0).tolist(), "kl_empirical_min": kls_a.min(0).tolist(),
            "kl_empirical_max": kls_a.max(0).tolist(),
            "kl_exact_sampler": np.array(exact).mean(0).tolist() if method == "asap" else
            [float(np.mean([x[0] for x in exact]))] * len(checkpoints),
            "mean_loglik": np.array(lls).mean(0).tolist(),
            "model_calls_per_sample": {f"{a}-{b}": float(per[a - 1:b].mean()) for a, b in windows if a <= per.size},
            "model_calls_total_seed0": int(per.sum()),
            "sampling_seconds_all_seeds_memoized": round(t_sample, 2),
        }
        m = out["methods"][method]
        print(f"[{name}] {method}: KL " + " ".join(f"{c}:{k:.4f}" for c, k in zip(checkpoints, m["kl_empirical_mean"]))
              + f" | exact {m['kl_exact_sampler'][-1]:.4f} | calls/sample {m['model_calls_per_sample']}", flush=True)
    return out


def timing(lm, hf_tok, info, n: int) -> dict:
    """Direct (unmemoized) sampling on the skewed binary grammar: seconds and model calls per sample."""
    from structgen.models import chat_prompt

    spec = GRAMMARS["skewed_binary"]
    cg = structgen.GrammarCompiler(info).compile_grammar(spec["lark"])
    ids = list(hf_tok(chat_prompt(hf_tok, spec["prompt"]), add_special_tokens=False)["input_ids"])
    out = {}
    for method in ("asap", "gcd"):
        s = ASApSampler(lm, cg, ids, max_new_tokens=spec["max_new_tokens"], learning=method == "asap", seed=0)
        t0 = time.perf_counter()
        first = s.sample(1)
        t1 = time.perf_counter()
        s.sample(n - 1)
        t2 = time.perf_counter()
        out[method] = {"samples": n, "seconds": round(t2 - t0, 2), "first_sample_s": round(t1 - t0, 3),
                       "ms_per_sample_after_first": round((t2 - t1) / max(n - 1, 1) * 1e3, 2),
                       "model_calls": s.stats.model_calls, "calls_saved": s.stats.calls_saved,
                       "trie_nodes": s.stats.nodes, "trie_bytes": s.stats.trie_bytes,
                       "first_sample_calls": first[0].model_calls}
        print(f"[timing] {method}: {out[method]}", flush=True)
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, r in results["grammars"].items():
        fig, ax = plt.subplots(figsize=(6, 4))
        x = r["checkpoints"]
        for method, color in (("asap", "tab:blue"), ("gcd", "tab:red")):
            m = r["methods"][method]
            floor = lambda v: [max(float(t), 1e-6) for t in v]  # noqa: E731  (log axis)
            ax.plot(x, floor(m["kl_empirical_mean"]), "o-", color=color, label=f"{method.upper()} (empirical, mean)")
            ax.fill_between(x, floor(m["kl_empirical_min"]), floor(m["kl_empirical_max"]), color=color, alpha=0.15)
            ax.plot(x, floor(m["kl_exact_sampler"]), "--", color=color,
                    label=f"{method.upper()} sampler's own distribution (exact)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("samples")
        ax.set_ylabel("KL(· || Q) [nats]")
        ax.set_title(f"{name}: KL to Q = P(· | grammar), SmolLM2-135M", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path.parent / f"asap_{name}.png", dpi=120)
        plt.close(fig)


def markdown(results: dict) -> str:
    lines = []
    for name, r in results["grammars"].items():
        e = r["enumeration"]
        lines.append(f"### {name}\n\n`{r['grammar']}` — {e['final_sequences']} token sequences ({e['texts']} texts), "
                     f"pruned mass ≤ {e['pruned_mass_bound_relative']:.1e}·Z; E_Q[log P] = "
                     f"{r['exact_expected_loglik_Q']:.3f}\n")
        lines.append("| samples | KL ASAp | KL GCD | exact KL ASAp sampler | exact KL GCD | mean log P ASAp | mean log P GCD |")
        lines.append("|---:|---:|---:|---:|---:|---:|---:|")
        a, g = r["methods"]["asap"], r["methods"]["gcd"]
        for i, c in enumerate(r["checkpoints"]):
            lines.append(f"| {c} | {a['kl_empirical_mean'][i]:.4f} | {g['kl_empirical_mean'][i]:.4f} | "
                         f"{a['kl_exact_sampler'][i]:.4f} | {g['kl_exact_sampler'][i]:.4f} | "
                         f"{a['mean_loglik'][i]:.3f} | {g['mean_loglik'][i]:.3f} |")
        lines.append(f"\nModel calls per sample (ASAp, seed 0): {a['model_calls_per_sample']}; "
                     f"GCD: {g['model_calls_per_sample']}\n")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grammars", default=",".join(GRAMMARS))
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rel-floor", type=float, default=12.0, help="prune prefixes with P < Z_found * e^-REL")
    ap.add_argument("--max-nodes", type=int, default=4000, help="model calls at most in the exact search")
    ap.add_argument("--backend", choices=("llama-cpp", "transformers"), default="llama-cpp")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timing-samples", type=int, default=200)
    ap.add_argument("--out", type=Path, default=RESULTS / "asap.json")
    ap.add_argument("--merge", action="store_true", help="update the grammars run here in an existing --out")
    args = ap.parse_args()

    from structgen.models import load_default_tokenizer

    hf_tok = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(hf_tok)
    if args.backend == "llama-cpp":
        from structgen.models import load_default_llama

        lm = LlamaCppModel(load_default_llama(n_threads=args.threads))
    else:
        import torch

        from structgen.models import load_default_model

        torch.set_num_threads(args.threads)
        lm = TransformersModel(load_default_model())
    results = {"machine": machine_info(), "backend": args.backend, "settings": vars(args) | {"out": str(args.out)},
               "grammars": {}}
    if args.merge and args.out.exists():
        old = json.loads(args.out.read_text())
        results["grammars"] = old["grammars"]
        if "timing_direct" in old:
            results["timing_direct"] = old["timing_direct"]
    for name in args.grammars.split(","):
        results["grammars"][name] = run_grammar(name, GRAMMARS[name], lm, hf_tok, info, args)
    if args.timing_samples:
        results["timing_direct"] = timing(lm, hf_tok, info, args.timing_samples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    md = markdown(results)
    args.out.with_suffix(".md").write_text(md + "\n")
    print(md)
    try:
        plot(results, args.out)
    except ImportError:
        print("matplotlib is missing: no plots")


if __name__ == "__main__":
    main()
