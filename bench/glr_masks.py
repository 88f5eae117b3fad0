#!/usr/bin/env python
"""Per-token mask time on grammars that need GLR (and GBNF files), structgen next to llguidance.

    python bench/glr_masks.py                  # the non-LALR suite + the GBNF data grammars, 5 words each
    python bench/glr_masks.py --words 10 --gbnf llama_json,llama_c

Both engines get the same grammar (GBNF through the test oracle's one-character-lexeme Lark
translation for llguidance, slicer off) and the Llama-3 tokenizer; words are random words of the
grammar (seeded), tokenized by the HF tokenizer; each step times one fill of the full-vocabulary
mask in each engine (one thread). Compile time is reported apart (structgen: its own compile
cache off). Writes bench/results/glr_masks.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "frontend"), str(REPO / "tests" / "automata")]
DATA = REPO.parent / "shared" / "data"
TOK = DATA / "tokenizers" / "llama3" / "tokenizer.json"


def _grammars(names: list[str] | None) -> list[tuple[str, str, str, str]]:
    """(name, syntax, structgen text, llguidance Lark text)."""
    from gbnf_oracle import gbnf_to_llguidance_lark
    from grammar_samples import NON_LALR

    out = [(name, "lark", g, g) for name, g, _, _ in NON_LALR]
    for path in sorted((DATA / "gbnf").glob("*.gbnf")):
        if names is None or path.stem in names:
            text = path.read_text(encoding="utf-8")
            out.append((path.stem, "gbnf", text, gbnf_to_llguidance_lark(text)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", type=int, default=5)
    ap.add_argument("--max-bytes", type=int, default=80)
    ap.add_argument("--gbnf", help="comma-separated data grammar names (default: all)")
    ap.add_argument("--step-limit", type=float, default=20.0, help="skip a grammar's remaining words past this many s")
    args = ap.parse_args()
    import tokenizers

    from ir_words import random_word
    from peers import llguidance_fill, llguidance_matcher_factory
    from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo, warm_up

    info = TokenizerInfo.from_tokenizer_json(TOK)
    htok = tokenizers.Tokenizer.from_file(str(TOK))
    make_ll = llguidance_matcher_factory(TOK, info.stop_token_ids, info.vocab_size)
    words = (info.vocab_size + 31) // 32
    mask = np.zeros((1, words), dtype=np.int32)
    warm_up(info)  # every kernel loaded (a process's one-time cost, not a mask's), the tokenizer's trie built
    rows = []
    for name, syntax, ours_text, ll_text in _grammars(args.gbnf.split(",") if args.gbnf else None):
        compiler = GrammarCompiler(info)
        t0 = time.perf_counter()
        cg = compiler.compile_grammar(ours_text, syntax=syntax)
        compile_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        make_ll(ll_text)
        ll_compile_ms = (time.perf_counter() - t0) * 1e3
        rng = random.Random(0)
        ours, theirs, error = [], [], ""
        start = time.perf_counter()
        for _ in range(args.words):
            word = random_word(cg.ir, rng, max_depth=6)[:args.max_bytes].decode("utf-8", "ignore")
            ids = htok.encode(word, add_special_tokens=False).ids
            m, ll = GrammarMatcher(cg), make_ll(ll_text)
            try:
                for tid in ids:
                    t = time.perf_counter()
                    m.fill_next_token_bitmask(mask)
                    ours.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    llguidance_fill(ll, mask)
                    theirs.append(time.perf_counter() - t)
                    if not (m.accept_token(tid) and ll.consume_token(tid)):
                        break
            except Exception as e:  # a LimitExceeded is a result to report
                error = f"{type(e).__name__}: {e}"[:120]
                break
            if time.perf_counter() - start > args.step_limit:
                error = error or f"stopped after {args.step_limit:.0f} s"
                break
        row = {"grammar": name, "syntax": syntax, "glr": cg.parser.glr, "lr_states": cg.parser.num_states,
               "terminals": len(cg.terminals), "steps": len(ours), "compile_ms": round(compile_ms, 2),
               "llguidance_compile_ms": round(ll_compile_ms, 2), "error": error}
        for key, xs in (("structgen", ours), ("llguidance", theirs)):
            if xs:
                us = np.array(xs) * 1e6
                row[f"{key}_p50_us"] = round(float(np.percentile(us, 50)), 1)
                row[f"{key}_p99_us"] = round(float(np.percentile(us, 99)), 1)
                row[f"{key}_max_us"] = round(float(us.max()), 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = REPO / "bench" / "results" / "glr_masks.json"
    meta = {"tokenizer": "llama3", "words": args.words, "max_bytes": args.max_bytes,
            "llguidance": "LLMatcher, grammar_from_lark, slices=[] (plain exact masks)", "threads": 1}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n", encoding="utf-8")
    print("\n| grammar | GLR | steps | structgen p50 / p99 / max µs | llguidance p50 / p99 / max µs | compile ms (ours / llg) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        a = f"{r.get('structgen_p50_us', '-')} / {r.get('structgen_p99_us', '-')} / {r.get('structgen_max_us', '-')}"
        b = f"{r.get('llguidance_p50_us', '-')} / {r.get('llguidance_p99_us', '-')} / {r.get('llguidance_max_us', '-')}"
        note = f" ({r['error']})" if r["error"] else ""
        print(f"| {r['grammar']}{note} | {'yes' if r['glr'] else 'no'} | {r['steps']} | {a} | {b} | "
              f"{r['compile_ms']} / {r['llguidance_compile_ms']} |")


if __name__ == "__main__":
    main()
