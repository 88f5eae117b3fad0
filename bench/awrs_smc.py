#!/usr/bin/env python
"""AWRS and SMC with the embedded SmolLM2: exactness against Q at equal model calls (``kl``), and
AWRS's speed against masked decoding on MaskBench JSON schemas (``speed``).

``kl``: the three finite grammars of bench/asap.py (skewed binary, SLIA-like, BV4-like).  The exact
target Q(w) ∝ P(w · <|im_end|> | prompt) is enumerated as bench/asap.py does (pruned best-first
search, samples outside it added exactly).  Four estimators of Q, each over `--seeds` seeds:
GCD (ASApSampler, learning off: the empirical distribution of its samples), ASAp (same, learning
on), SMC (N=`--particles`, AWRS proposals, resampling at ESS < N/2; runs combined by their Ẑ) and
AWRS-IS (the same particles, never resampled: importance sampling with the AWRS weights).
KL(estimate || Q) over token sequences is read at equal model calls, counted two ways:

* per token: every next-token distribution a method uses is one forward (a decoder with no
  cache across samples; SMC's particles on one prefix in one step share it);
* distinct prefixes: each method keeps what it has computed (ASAp's and GCD's trie; SMC with a
  prefix cache across runs), so only new prefixes cost a call (bench/asap.py's "model calls").

Model logits are memoized across the search and every method (MemoModel), so the methods see
identical logits; the counts are as if the model were called directly.

``speed``: `--schemas` MaskBench schemas (seeded shuffle), compact JSON, schema in the prompt, the
transformers model with a KV cache (KVBatchModel, one row), T=1, at most `--max-tokens` tokens.
Each step runs the forward once, then on the same state: the AWRS step (it chooses the token) and
a masked-decoding step (fill the mask, apply it to the logits, softmax, sample), each timed; the
token is accepted once (timed, added to both).  Tokens/s = tokens / (forward + that method's time).

    python bench/awrs_smc.py kl        # ~15 minutes on 2 cores
    python bench/awrs_smc.py speed     # ~10 minutes

Writes bench/results/awrs_smc.{json,md,png} and bench/results/awrs_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import importlib.util
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
from structgen.decoding.exact_target import enumerate_language, extend_enumeration, kl_divergence  # noqa: E402
from structgen.decoding.lm import MemoModel  # noqa: E402
from structgen.decoding.smc import SMCSampler, combine_runs  # noqa: E402
from structgen.evaluation.report import machine_info  # noqa: E402

RESULTS = REPO / "bench" / "results"
METHODS = ("gcd", "asap", "awrs_is", "smc")
LABELS = {"gcd": "GCD", "asap": "ASAp", "awrs_is": "AWRS-IS", "smc": "AWRS+SMC"}
COLORS = {"gcd": "tab:red", "asap": "tab:blue", "awrs_is": "tab:orange", "smc": "tab:green"}


def _bench_asap():
    """bench/asap.py as a module (its grammars and prompts)."""
    spec = importlib.util.spec_from_file_location("bench_asap", REPO / "bench" / "asap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Counting:
    """Counts a method's model calls: every call (per token) and the distinct prefixes."""

    def __init__(self, model) -> None:
        self.model = model
        self.calls = 0
        self.seen: set[tuple[int, ...]] = set()

    def next_token_logits(self, prompt_ids, prefix_ids):
        self.calls += 1
        self.seen.add(tuple(prefix_ids))
        return self.model.next_token_logits(prompt_ids, prefix_ids)


# ---------------------------------------------------------------------- kl


def _tv(est: dict, log_q: dict) -> float:
    keys = set(est) | set(log_q)
    return 0.5 * sum(abs(est.get(k, 0.0) - math.exp(log_q.get(k, -math.inf))) for k in keys)


def _kl(est: dict, log_q: dict) -> float:
    return max(0.0, kl_divergence({k: math.log(v) for k, v in est.items() if v > 0}, log_q))


def _trace_sampler(memo, cg, prompt_ids, budget, learning, seed, max_calls, max_samples):
    """GCD/ASAp samples with cumulative (per-token, distinct-prefix) calls after each."""
    counting = Counting(memo)
    s = ASApSampler(counting, cg, prompt_ids, max_new_tokens=budget, learning=learning, seed=seed)
    items, per_token, distinct = [], [], []
    total = 0
    while len(items) < max_samples and total < max_calls:
        rejected = s.stats.rejected
        (x,) = s.sample(1)
        # every token of the sample and of the dead-end attempts before it is one next-token distribution
        total += len(x.token_ids) + 1 + (s.stats.rejected - rejected) * budget
        items.append(x.token_ids)
        per_token.append(total)
        distinct.append(s.stats.model_calls)
    return items, per_token, distinct


def _trace_smc(memo, cg, prompt_ids, budget, n, ess, seed, max_calls, max_runs, expand=True):
    """SMC runs with cumulative (per-token, distinct-prefix) calls after each run (``expand``: particles
    on one prefix get distinct children, SMCSampler's default; off for AWRS-IS, plain importance sampling)."""
    counting = Counting(memo)
    s = SMCSampler(counting, cg, prompt_ids, n_particles=n, ess_threshold=ess, max_new_tokens=budget, seed=seed,
                   expand_shared=expand)
    runs, per_token, distinct = [], [], []
    total = 0
    awrs = collections.Counter()
    while len(runs) < max_runs and total < max_calls:
        r = s.run()
        total += r.model_calls
        runs.append(r)
        per_token.append(total)
        distinct.append(len(counting.seen))
        awrs.update({k: v for k, v in r.awrs.items() if k in ("steps", "mask_steps", "rejections", "tests")})
    return runs, per_token, distinct, dict(awrs)


def _estimate(method: str, items, k: int) -> dict:
    if method in ("gcd", "asap"):
        c = collections.Counter(items[:k])
        return {w: v / k for w, v in c.items()}
    return combine_runs(items[:k], by="tokens")


def _at_budgets(method, items, cum, budgets, log_q):
    """KL and TV of the estimate from the items whose cumulative calls fit in each budget."""
    kls, tvs, used = [], [], []
    for b in budgets:
        k = int(np.searchsorted(np.asarray(cum), b, side="right"))
        if k == 0:
            kls.append(math.nan)
            tvs.append(math.nan)
        else:
            est = _estimate(method, items, k)
            kls.append(_kl(est, log_q) if est else math.inf)
            tvs.append(_tv(est, log_q) if est else 1.0)
        used.append(k)
    return kls, tvs, used


def run_kl_grammar(name: str, spec: dict, memo, hf_tok, info, args) -> dict:
    from structgen.models import chat_prompt

    cg = structgen.GrammarCompiler(info).compile_grammar(spec["lark"])
    prompt_ids = list(hf_tok(chat_prompt(hf_tok, spec["prompt"]), add_special_tokens=False)["input_ids"])
    budget = spec["max_new_tokens"]
    t0 = time.perf_counter()
    e = enumerate_language(memo, cg, prompt_ids, max_new_tokens=budget, min_relative_logprob=-args.rel_floor,
                           max_nodes=args.max_nodes)
    print(f"[{name}] enumerated {len(e.sequences)} sequences, {e.model_calls} calls, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    max_calls = max(args.budgets)
    traces: dict = {m: [] for m in METHODS}
    awrs_counts = collections.Counter()
    for seed in range(args.seeds):
        for method in METHODS:
            t1 = time.perf_counter()
            if method in ("gcd", "asap"):
                items, pt, dp = _trace_sampler(memo, cg, prompt_ids, budget, method == "asap", seed, max_calls,
                                               args.max_samples)
            else:
                items, pt, dp, aw = _trace_smc(memo, cg, prompt_ids, budget, args.particles,
                                               0.5 if method == "smc" else 0.0, seed, max_calls, args.max_runs,
                                               expand=method == "smc")
                if method == "smc":
                    awrs_counts.update(aw)
            traces[method].append((items, pt, dp))
            print(f"[{name}] seed {seed} {method}: {len(items)} {'samples' if method in ('gcd', 'asap') else 'runs'}"
                  f", {pt[-1]} per-token / {dp[-1]} distinct calls, {time.perf_counter() - t1:.1f} s", flush=True)
    # every sampled sequence gets its exact probability (the pruned search may have missed some)
    seqs = set()
    for m in METHODS:
        for items, _, _ in traces[m]:
            for it in items:
                seqs.update([it] if m in ("gcd", "asap") else [p.token_ids for p in it.particles if p.finished])
    added = extend_enumeration(e, memo, cg, prompt_ids, sorted(seqs))
    log_q = e.log_q()
    out = {"grammar": spec["lark"], "prompt": spec["prompt"], "max_new_tokens": budget,
           "enumeration": {"sequences": len(log_q), "added_from_samples": added,
                           "pruned_mass_bound_relative": math.exp(e.log_pruned - e.log_z)
                           if e.log_pruned > -math.inf else 0.0, "log_z": e.log_z},
           "budgets": args.budgets, "methods": {}}
    for m in METHODS:
        res = {}
        for acc, idx in (("per_token", 1), ("distinct", 2)):
            kls, tvs, used = zip(*[_at_budgets(m, tr[0], tr[idx], args.budgets, log_q) for tr in traces[m]])
            res[acc] = {"kl_mean": np.nanmean(np.array(kls, dtype=float), 0).tolist(),
                        "kl_min": np.nanmin(np.array(kls, dtype=float), 0).tolist(),
                        "kl_max": np.nanmax(np.array(kls, dtype=float), 0).tolist(),
                        "tv_mean": np.nanmean(np.array(tvs, dtype=float), 0).tolist(),
                        "items_used_seed0": list(used[0])}
        res["calls_at_end_seed0"] = {"per_token": traces[m][0][1][-1], "distinct": traces[m][0][2][-1],
                                     "items": len(traces[m][0][0])}
        out["methods"][m] = res
        print(f"[{name}] {m}: KL per-token " + " ".join(f"{b}:{k:.3f}" for b, k in
                                                      zip(args.budgets, res["per_token"]["kl_mean"]))
              + " | distinct " + " ".join(f"{b}:{k:.3f}" for b, k in zip(args.budgets, res["distinct"]["kl_mean"])),
              flush=True)
    steps = max(awrs_counts.get("steps", 0), 1)
    out["smc_awrs"] = {"steps": awrs_counts.get("steps", 0),
                       "no_mask_fraction": 1 - awrs_counts.get("mask_steps", 0) / steps,
                       "rejections_per_step": awrs_counts.get("rejections", 0) / steps}
    return out


def cmd_kl(args) -> None:
    import torch

    from structgen.decoding.lm import TransformersModel
    from structgen.models import load_default_model, load_default_tokenizer

    torch.set_num_threads(args.threads)
    grammars = _bench_asap().GRAMMARS
    hf_tok = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(hf_tok)
    memo = MemoModel(TransformersModel(load_default_model()))
    results = {"machine": machine_info(), "backend": "transformers", "settings": vars(args) | {"func": None},
               "grammars": {}}
    for name in args.grammars.split(","):
        results["grammars"][name] = run_kl_grammar(name, grammars[name], memo, hf_tok, info, args)
    results["model_calls_made"] = memo.misses
    out = RESULTS / "awrs_smc.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    md = kl_markdown(results)
    out.with_suffix(".md").write_text(md + "\n")
    print(md)
    kl_plot(results, out.with_suffix(".png"))


def kl_markdown(results: dict) -> str:
    lines = []
    for name, r in results["grammars"].items():
        e = r["enumeration"]
        lines.append(f"### {name}\n\n{e['sequences']} token sequences in Q (pruned mass ≤ "
                     f"{e['pruned_mass_bound_relative']:.1e}·Z); KL(estimate ‖ Q) in nats, mean over seeds\n")
        for acc, title in (("per_token", "model calls counted per token"),
                           ("distinct", "model calls counted per distinct prefix (caches kept)")):
            lines.append(f"{title}:\n")
            lines.append("| calls | " + " | ".join(LABELS[m] for m in METHODS) + " |")
            lines.append("|---:|" + "---:|" * len(METHODS))
            for i, b in enumerate(r["budgets"]):
                cells = []
                for m in METHODS:
                    v = r["methods"][m][acc]["kl_mean"][i]
                    cells.append("–" if v != v else f"{v:.4f}" if v >= 1e-3 else f"{v:.0e}")
                lines.append(f"| {b} | " + " | ".join(cells) + " |")
            lines.append("")
        a = r["smc_awrs"]
        lines.append(f"Inside SMC: {a['steps']} particle steps, {a['no_mask_fraction']:.1%} of them AWRS draws without a "
                     f"full mask (the others: children of a shared prefix, or AWRS's mask fallback), "
                     f"{a['rejections_per_step']:.2f} AWRS rejections per step.\n")
    return "\n".join(lines)


def kl_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["grammars"])
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 3.2 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        r = results["grammars"][name]
        for col, (acc, title) in enumerate((("per_token", "calls per token"), ("distinct", "distinct prefixes"))):
            ax = axes[row][col]
            for m in METHODS:
                d = r["methods"][m][acc]
                y = [max(float(v), 1e-5) if v == v else np.nan for v in d["kl_mean"]]  # below 1e-5: drawn at it
                lo = [max(float(v), 1e-5) if v == v else np.nan for v in d["kl_min"]]
                hi = [max(float(v), 1e-5) if v == v else np.nan for v in d["kl_max"]]
                ax.plot(r["budgets"], y, "o-", color=COLORS[m], label=LABELS[m], ms=3)
                ax.fill_between(r["budgets"], lo, hi, color=COLORS[m], alpha=0.12)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"model calls ({title})")
            ax.set_ylabel("KL(estimate ‖ Q) [nats]")
            ax.set_title(f"{name}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
    fig.suptitle("SmolLM2-135M, KL to the grammar-conditioned distribution at equal model calls", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------- speed


def maskbench_schemas(n: int, seed: int) -> list[tuple[str, dict]]:
    """``n`` MaskBench schemas (id, schema) after a seeded shuffle of all files' schemas."""
    folder = REPO.parent / "shared" / "data" / "maskbench"
    rows = []
    for path in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            for line in fh:
                d = json.loads(line)
                rows.append((f"{path.name.split('.')[0]}/{d['id']}", d["schema"]))
    rng = np.random.default_rng(seed)
    return [rows[i] for i in rng.permutation(len(rows))[:n]]


def prompted_schemas(schemas, compiler, hf_tok, args, rows: list):
    """(index, id, compiled grammar, prompt ids) for each schema that compiles and whose prompt fits
    args.max_prompt; the others are appended to `rows` with their reason."""
    from structgen.cli.source import schema_hint
    from structgen.models import chat_prompt

    for k, (sid, schema) in enumerate(schemas):
        try:
            cg = compiler.compile_json_schema(schema)
        except structgen.StructgenError as exc:
            rows.append({"id": sid, "error": str(exc)[:200]})
            continue
        ids = hf_tok(chat_prompt(hf_tok, f"Produce an example. {schema_hint(schema)}"),
                     add_special_tokens=False)["input_ids"]
        if len(ids) > args.max_prompt:
            rows.append({"id": sid, "error": f"prompt of {len(ids)} tokens"})
            continue
        yield k, sid, cg, ids


def cmd_speed(args) -> None:
    import torch

    from structgen import GrammarMatcher, allocate_token_bitmask, apply_token_bitmask_inplace
    from structgen.decoding.awrs import AWRS
    from structgen.integrations.transformers import KVBatchModel
    from structgen.models import load_default_model, load_default_tokenizer

    torch.set_num_threads(args.threads)
    hf_tok = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(hf_tok)
    compiler = structgen.GrammarCompiler(info)
    kv = KVBatchModel(load_default_model())
    schemas = maskbench_schemas(args.schemas, args.seed)
    bitmask = allocate_token_bitmask(1, info.vocab_size)
    rows, totals = [], collections.Counter()
    clock = time.perf_counter
    for k, sid, cg, ids in prompted_schemas(schemas, compiler, hf_tok, args, rows):
        aw = AWRS(cg, mask_after=args.mask_after)
        m = GrammarMatcher(cg)
        rng = np.random.default_rng(args.seed + k)
        gen = torch.Generator().manual_seed(args.seed + k)
        tokens: list[int] = []
        t0 = clock()
        kv.batch_next_token_logits(ids, [[]])  # the prompt's prefill: the same for both, reported apart
        t_prefill = clock() - t0
        t_fwd = t_awrs = t_mask = t_accept = 0.0
        finished = False
        for _ in range(args.max_tokens):
            t0 = clock()
            logits = kv.batch_next_token_logits(ids, [tokens])[0]
            t1 = clock()
            r = aw.step(logits, m, rng)  # AWRS first: it pays any first-visit mask cost where it needs one
            t2 = clock()
            x = torch.from_numpy(logits[None, :info.vocab_size].copy())
            m.fill_next_token_bitmask(bitmask, 0)
            apply_token_bitmask_inplace(x, bitmask)
            torch.multinomial(torch.softmax(x, dim=-1), 1, generator=gen)
            t3 = clock()
            if r.token < 0:
                break
            m.accept_token(r.token)
            t4 = clock()
            t_fwd += t1 - t0
            t_awrs += t2 - t1
            t_mask += t3 - t2
            t_accept += t4 - t3
            if m.is_terminated():
                finished = True
                break
            tokens.append(r.token)
        n = len(tokens) + int(finished)
        s = aw.stats
        rows.append({"id": sid, "tokens": n, "finished": finished, "prefill_s": t_prefill, "forward_s": t_fwd,
                     "awrs_s": t_awrs,
                     "masked_s": t_mask, "accept_s": t_accept, "steps": s.steps, "mask_steps": s.mask_steps,
                     "rejections": s.rejections, "tests": s.tests})
        totals.update({"tokens": n, "steps": s.steps, "mask_steps": s.mask_steps, "rejections": s.rejections,
                       "tests": s.tests, "finished": int(finished), "schemas": 1})
        for key, v in (("prefill_s", t_prefill), ("forward_s", t_fwd), ("awrs_s", t_awrs), ("masked_s", t_mask),
                       ("accept_s", t_accept)):
            totals[key] += v
        if (k + 1) % 10 == 0:
            print(f"[speed] {k + 1}/{len(schemas)} schemas, {totals['tokens']} tokens", flush=True)
    steps = max(totals["steps"], 1)
    per_step = [r for r in rows if "steps" in r and r["steps"]]
    summary = {
        "schemas": len(schemas), "generated": totals["schemas"], "finished": totals["finished"],
        "tokens": totals["tokens"], "steps": totals["steps"],
        "tokens_per_s_awrs": totals["tokens"] / (totals["forward_s"] + totals["awrs_s"] + totals["accept_s"]),
        "tokens_per_s_masked": totals["tokens"] / (totals["forward_s"] + totals["masked_s"] + totals["accept_s"]),
        "prefill_s_total": totals["prefill_s"], "forward_ms_per_step": 1e3 * totals["forward_s"] / steps,
        "awrs_us_per_step": 1e6 * totals["awrs_s"] / steps, "masked_us_per_step": 1e6 * totals["masked_s"] / steps,
        "accept_us_per_step": 1e6 * totals["accept_s"] / steps,
        "no_mask_fraction": 1 - totals["mask_steps"] / steps, "rejections_per_step": totals["rejections"] / steps,
        "tests_per_step": totals["tests"] / steps,
        "awrs_us_per_step_median_schema": float(np.median([1e6 * r["awrs_s"] / r["steps"] for r in per_step])),
        "masked_us_per_step_median_schema": float(np.median([1e6 * r["masked_s"] / r["steps"] for r in per_step])),
    }
    out = {"machine": machine_info(), "settings": vars(args) | {"func": None}, "summary": summary, "rows": rows}
    path = RESULTS / "awrs_speed.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    md = speed_markdown(summary, args)
    path.with_suffix(".md").write_text(md + "\n")
    print(md)


def speed_markdown(s: dict, args) -> str:
    return "\n".join([
        f"{s['generated']} of {s['schemas']} MaskBench schemas generated ({s['finished']} finished within "
        f"{args.max_tokens} tokens), {s['tokens']} tokens, T=1, SmolLM2 (transformers, KV cache):\n",
        "| | AWRS | masked decoding |",
        "|---|---:|---:|",
        f"| tokens/s (forward included, prompt prefill not) | {s['tokens_per_s_awrs']:.2f} | "
        f"{s['tokens_per_s_masked']:.2f} |",
        f"| constraint + sampling µs per step (mean) | {s['awrs_us_per_step']:.0f} | {s['masked_us_per_step']:.0f} |",
        f"| same, median over schemas | {s['awrs_us_per_step_median_schema']:.0f} | "
        f"{s['masked_us_per_step_median_schema']:.0f} |",
        f"| steps without a full mask | {s['no_mask_fraction']:.1%} | 0% |",
        f"| rejections per step (mean) | {s['rejections_per_step']:.3f} | – |",
        f"| grammar tests per step (mean) | {s['tests_per_step']:.2f} | – |",
        f"\nTokens/s without the prompts' prefill ({s['prefill_s_total']:.0f} s in all, the same for both). Forward "
        f"{s['forward_ms_per_step']:.1f} ms per step; accept_token {s['accept_us_per_step']:.0f} µs per step (both).",
    ])


def cmd_speed_genlm(args) -> None:
    """genlm-control's AWRS on the same schemas, prompts, model and grammar (our matcher as its condition).

    Run with the interpreter of a separate venv that has genlm-control (never structgen's own).
    """
    import asyncio

    import torch
    from genlm.backend.llm import AsyncTransformer
    from genlm.control import AWRS as GenlmAWRS
    from genlm.control import Potential, PromptedLLM

    from structgen import GrammarMatcher
    from structgen.integrations.transformers import KVBatchModel
    from structgen.models import load_default_model, load_default_tokenizer

    torch.set_num_threads(args.threads)
    hf_tok = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(hf_tok)
    compiler = structgen.GrammarCompiler(info)
    model = load_default_model()
    llm = AsyncTransformer(model, hf_tok, batch_size=1)
    kv = KVBatchModel(model)
    eos = [info.token_bytes[t] if info.token_bytes[t] else hf_tok.convert_ids_to_tokens(int(t)).encode()
           for t in info.stop_token_ids]

    class Grammar(Potential):
        """structgen's matcher as a Boolean genlm potential over the LLM's tokens (rollback to move)."""

        def __init__(self, cg, vocabulary) -> None:
            super().__init__(vocabulary)
            self.m = GrammarMatcher(cg)
            self.at: list[int] = []
            self.tests = self.refusals = 0

        def _goto(self, ids: list[int]) -> bool:
            k = 0
            while k < min(len(ids), len(self.at)) and ids[k] == self.at[k]:
                k += 1
            self.m.rollback(len(self.at) - k)
            del self.at[k:]
            for t in ids[k:]:
                if not self.m.accept_token(t):
                    return False
                self.at.append(t)
            return True

        async def prefix(self, context):
            self.tests += 1
            ok = self._goto([t.token_id for t in context])
            self.refusals += not ok
            return 0.0 if ok else -math.inf

        async def complete(self, context):
            self.tests += 1
            ok = self._goto([t.token_id for t in context]) and self.m.is_accepting()
            self.refusals += not ok
            return 0.0 if ok else -math.inf

    rows, totals = [], collections.Counter()
    for k, sid, cg, ids in prompted_schemas(maskbench_schemas(args.schemas, args.seed), compiler, hf_tok, args, rows):
        # ours first, in this process: the same schema, prompt, model and machine state; both prefill untimed
        kv.batch_next_token_logits(ids, [[]])
        t0 = time.perf_counter()
        ours = SMCSampler(kv, cg, ids, n_particles=1, ess_threshold=0.0, max_new_tokens=args.max_tokens,
                          seed=args.seed + k).run()
        t_ours = time.perf_counter() - t0
        p = ours.particles[0]
        n_ours = len(p.token_ids) + int(p.finished)
        totals.update({"ours_tokens": n_ours, "ours_finished": int(p.finished), "ours_steps": ours.awrs["steps"],
                       "ours_mask_steps": ours.awrs["mask_steps"], "ours_rejections": ours.awrs["rejections"],
                       "ours_tests": ours.awrs["tests"]})
        totals["ours_seconds"] += t_ours
        llm.clear_cache()
        llm.cache_kv(ids)
        lm = PromptedLLM(llm, prompt_ids=ids, eos_byte_strings=eos)
        cond = Grammar(cg, lm.vocab)
        sampler = GenlmAWRS(lm, cond, seed=args.seed + k)
        t0 = time.perf_counter()
        seqs = asyncio.run(sampler.smc(n_particles=1, ess_threshold=0.0, max_tokens=args.max_tokens))
        dt = time.perf_counter() - t0
        ctx = seqs.contexts[0]
        n = len(ctx)
        finished = bool(ctx and ctx[-1] is sampler.target.eos and seqs.log_weights[0] > -math.inf)
        rows.append({"id": sid, "tokens": n, "finished": finished, "seconds": dt, "tests": cond.tests,
                     "refusals": cond.refusals, "ours_tokens": n_ours, "ours_finished": p.finished,
                     "ours_seconds": t_ours, "ours_awrs": ours.awrs})
        totals.update({"tokens": n, "seconds": dt, "tests": cond.tests, "refusals": cond.refusals,
                       "finished": int(finished), "schemas": 1})
        if (k + 1) % 10 == 0:
            print(f"[genlm] {k + 1} schemas, {totals['tokens']} tokens, {totals['seconds']:.0f} s", flush=True)
    from importlib.metadata import version

    summary = {"genlm_control": version("genlm-control"), "schemas": args.schemas, "generated": totals["schemas"],
               "finished": totals["finished"], "tokens": totals["tokens"],
               "tokens_per_s": totals["tokens"] / max(totals["seconds"], 1e-9),
               "tests_per_token": totals["tests"] / max(totals["tokens"], 1),
               "refusals_per_token": totals["refusals"] / max(totals["tokens"], 1),
               "ours_finished": totals["ours_finished"], "ours_tokens": totals["ours_tokens"],
               "ours_tokens_per_s": totals["ours_tokens"] / max(totals["ours_seconds"], 1e-9),
               "ours_tests_per_token": totals["ours_tests"] / max(totals["ours_steps"], 1),
               "ours_rejections_per_step": totals["ours_rejections"] / max(totals["ours_steps"], 1),
               "ours_no_mask_fraction": 1 - totals["ours_mask_steps"] / max(totals["ours_steps"], 1)}
    out = {"machine": machine_info(), "settings": vars(args) | {"func": None}, "summary": summary, "rows": rows}
    (RESULTS / "awrs_speed_genlm.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kl", help="KL to the exact target at equal model calls")
    k.add_argument("--grammars", default="skewed_binary,slia,bv4")
    k.add_argument("--seeds", type=int, default=3)
    k.add_argument("--particles", type=int, default=20)
    k.add_argument("--budgets", type=lambda s: [int(x) for x in s.split(",")],
                   default=[50, 100, 200, 500, 1000, 2000, 5000])
    k.add_argument("--max-samples", type=int, default=2000, help="GCD/ASAp samples per seed at most")
    k.add_argument("--max-runs", type=int, default=400, help="SMC/AWRS-IS runs per seed at most")
    k.add_argument("--rel-floor", type=float, default=12.0)
    k.add_argument("--max-nodes", type=int, default=4000)
    k.add_argument("--threads", type=int, default=2)
    k.set_defaults(func=cmd_kl)
    s = sub.add_parser("speed", help="AWRS vs masked decoding on MaskBench JSON schemas")
    s.add_argument("--schemas", type=int, default=100)
    s.add_argument("--max-tokens", type=int, default=64)
    s.add_argument("--max-prompt", type=int, default=1500, help="skip schemas whose prompt is longer (tokens)")
    s.add_argument("--mask-after", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=cmd_speed)
    g = sub.add_parser("speed-genlm", help="genlm-control's AWRS on the same schemas (run in a venv with genlm-control)")
    for a in ("--schemas", "--max-tokens", "--max-prompt", "--seed", "--threads"):
        g.add_argument(a, type=int, default=s.get_default(a[2:].replace("-", "_")))
    g.set_defaults(func=cmd_speed_genlm)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
