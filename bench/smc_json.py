#!/usr/bin/env python
"""SMC on MaskBench JSON schemas with the embedded SmolLM2: what expanding shared prefixes costs.

    python bench/smc_json.py                       # 20 schemas, N = 4 particles, at most 64 tokens
    python bench/smc_json.py --schemas 40 --particles 8

Each schema (the seeded shuffle of bench/awrs_smc.py speed; compact JSON, the schema in the prompt,
T = 1) gets one SMC run with particles on one prefix expanded into distinct children (SMCSampler's
default) and one with independent AWRS draws (`expand_shared=False`), same seed, through the
KV-cached KVBatchModel (one forward per step for the distinct prefixes). Reported per mode: time in
the forwards and in the sampler (masks, AWRS, resampling, matchers), forward rows, the steps' share
done without a full mask, finished particles and how many are schema-valid (jsonschema). Writes
bench/results/smc_json.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import structgen  # noqa: E402
from awrs_smc import RESULTS, maskbench_schemas, prompted_schemas  # noqa: E402
from structgen.decoding.smc import SMCSampler  # noqa: E402
from structgen.evaluation.report import machine_info  # noqa: E402


class TimedModel:
    """KVBatchModel with the time of its forwards counted."""

    def __init__(self, kv) -> None:
        self.kv, self.seconds = kv, 0.0

    def batch_next_token_logits(self, prompt_ids, prefixes):
        t0 = time.perf_counter()
        out = self.kv.batch_next_token_logits(prompt_ids, prefixes)
        self.seconds += time.perf_counter() - t0
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schemas", type=int, default=20)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--max-prompt", type=int, default=1000, help="skip schemas whose prompt is longer (tokens)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import jsonschema
    import torch

    from structgen.integrations.transformers import KVBatchModel
    from structgen.models import load_default_model, load_default_tokenizer

    torch.set_num_threads(args.threads)
    hf_tok = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(hf_tok)
    compiler = structgen.GrammarCompiler(info)
    model = TimedModel(KVBatchModel(load_default_model()))
    schemas = maskbench_schemas(args.schemas, args.seed)
    rows: list[dict] = []
    totals = {m: collections.Counter() for m in ("expand", "independent")}
    for k, sid, cg, ids in prompted_schemas(schemas, compiler, hf_tok, args, rows):
        schema = dict(schemas[k][1])
        row = {"id": sid}
        for mode in ("expand", "independent"):
            model.batch_next_token_logits(ids, [[]])  # the prompt's prefill, untimed (the same for both)
            sampler = SMCSampler(model, cg, ids, n_particles=args.particles, max_new_tokens=args.max_tokens,
                                 expand_shared=mode == "expand", seed=args.seed + k)
            model.seconds = 0.0
            t0 = time.perf_counter()
            r = sampler.run()
            total = time.perf_counter() - t0
            done = [p for p in r.particles if p.finished]
            valid = 0
            for p in done:
                try:
                    jsonschema.validate(json.loads(p.text), schema)
                    valid += 1
                except Exception:  # not JSON for the validator, or not valid: counted as invalid
                    pass
            a = r.awrs
            got = {"seconds": total, "forward_s": model.seconds, "sampler_s": total - model.seconds,
                   "steps": r.steps, "rows": r.model_calls, "particle_steps": a["steps"],
                   "mask_steps": a["mask_steps"], "finished": len(done), "valid": valid,
                   "particles": len(r.particles), "resamples": r.resamples}
            row[mode] = got
            totals[mode].update(got)
        rows.append(row)
        print(f"[smc_json] {sid}: " + " | ".join(
            f"{m} {row[m]['seconds']:.1f} s, {row[m]['rows']} rows, {row[m]['valid']}/{row[m]['finished']} valid"
            for m in ("expand", "independent")), flush=True)
    summary = {}
    for mode, t in totals.items():
        ps = max(t["particle_steps"], 1)
        summary[mode] = {"schemas": sum(1 for r in rows if mode in r), "seconds": t["seconds"],
                         "forward_s": t["forward_s"], "sampler_s": t["sampler_s"],
                         "sampler_ms_per_step": 1e3 * t["sampler_s"] / max(t["steps"], 1),
                         "forward_rows_per_step": t["rows"] / max(t["steps"], 1),
                         "no_mask_fraction": 1 - t["mask_steps"] / ps, "finished": t["finished"],
                         "valid": t["valid"], "particles": t["particles"], "resamples": t["resamples"]}
    out = {"machine": machine_info(), "settings": vars(args), "summary": summary, "rows": rows}
    (RESULTS / "smc_json.json").write_text(json.dumps(out, indent=1) + "\n")
    print("\n| SMC, N = %d | expanded shared prefixes (default) | independent AWRS draws |" % args.particles)
    print("|---|---:|---:|")
    e, i = summary["expand"], summary["independent"]
    for label, key, fmt in (("schemas", "schemas", "{:d}"), ("seconds in all (prefill not counted)", "seconds", "{:.1f}"),
                            ("of which forwards", "forward_s", "{:.1f}"), ("of which the sampler", "sampler_s", "{:.1f}"),
                            ("sampler ms per step", "sampler_ms_per_step", "{:.2f}"),
                            ("forward rows per step", "forward_rows_per_step", "{:.2f}"),
                            ("particle steps without a full mask", "no_mask_fraction", "{:.1%}"),
                            ("finished particles", "finished", "{:d}"), ("schema-valid among them", "valid", "{:d}"),
                            ("resamplings", "resamples", "{:d}")):
        print(f"| {label} | {fmt.format(e[key])} | {fmt.format(i[key])} |")


if __name__ == "__main__":
    main()
