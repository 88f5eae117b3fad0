"""`structgen` command line: `structgen generate` runs constrained generation on the embedded model.

(The `validate`, `compile` and `bench` commands come with their issues; `generate` already takes
Lark grammars and regexes.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import StructgenError

EXAMPLES = """examples:
  structgen generate --grammar json "Describe a fictional person as JSON"
  structgen generate --grammar sql "Write an SQL query for the names of customers from Paris."
  structgen generate --regex "[0-9]{3}-[0-9]{4}" "Make up a phone number"
  structgen generate --grammar my.lark --max-tokens 64 "..."
"""


# Appended to the user's prompt so a small model answers in the grammar's format (the mask decides).
HINTS = {
    "json": "Reply with one short JSON value on a single line.",
    "sql": "Reply with only the SQL, nothing else.",
    "arithmetic": "Reply with only the arithmetic expression, nothing else.",
}


def _grammar_text(arg: str) -> str:
    from .compiler import builtin_grammar

    path = Path(arg)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    try:
        return builtin_grammar(arg)
    except StructgenError:
        raise StructgenError(f"--grammar {arg!r}: no such file and no shipped grammar of that name") from None


def cmd_generate(args: argparse.Namespace) -> int:
    import torch
    from transformers import LogitsProcessorList, TextStreamer

    from . import GrammarCompiler, TokenizerInfo
    from .integrations.transformers import LogitsProcessor
    from .models import chat_prompt, load_default_model, load_default_tokenizer, load_model

    torch.manual_seed(args.seed)
    # bad input fails before the (slow) model load
    grammar = None if args.regex is not None else _grammar_text(args.grammar)
    if grammar is not None:
        from .automata.parser import build_lark

        build_lark(grammar, "start")
    elif args.regex is not None:
        import re

        try:
            re.compile(args.regex)
        except re.error as e:
            raise StructgenError(f"--regex: invalid regular expression: {e}") from None
    t0 = time.perf_counter()
    if args.model:
        hf_tok, model = load_model(args.model)
    else:
        hf_tok = load_default_tokenizer()
        model = load_default_model()
    t_load = time.perf_counter() - t0
    info = TokenizerInfo.from_huggingface(hf_tok)
    compiler = GrammarCompiler(info)
    t0 = time.perf_counter()
    if args.regex is not None:
        cg = compiler.compile_regex(args.regex)
        hint = f"Answer with text matching the regular expression {args.regex}."
    else:
        cg = compiler.compile_grammar(grammar)
        hint = HINTS.get(args.grammar, "Reply with only the output, nothing else.")
    t_compile = time.perf_counter() - t0
    prompt = chat_prompt(hf_tok, f"{args.prompt} {hint}")
    inputs = hf_tok(prompt, return_tensors="pt", add_special_tokens=False)
    proc = LogitsProcessor(cg)
    streamer = TextStreamer(hf_tok, skip_prompt=True, skip_special_tokens=True)
    t0 = time.perf_counter()
    out = model.generate(
        **inputs,
        max_new_tokens=args.max_tokens,
        do_sample=args.temperature > 0,
        temperature=args.temperature if args.temperature > 0 else None,
        top_p=None,
        top_k=None,
        repetition_penalty=args.repetition_penalty,
        logits_processor=LogitsProcessorList([proc]),
        streamer=streamer,
        pad_token_id=info.stop_token_ids[0],
        eos_token_id=info.stop_token_ids,
    )
    t_gen = time.perf_counter() - t0
    n_new = int(out.shape[1] - inputs["input_ids"].shape[1])
    if args.verbose:
        print(
            f"[structgen] load {t_load:.1f}s, compile {t_compile * 1e3:.0f} ms, {n_new} tokens in {t_gen:.1f}s "
            f"({n_new / max(t_gen, 1e-9):.1f} tokens/s)",
            file=sys.stderr,
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="structgen", description="Exact grammar-constrained generation.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate text constrained by a grammar or regex", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--grammar", help="a .lark file, or a shipped grammar name: json, arithmetic, sql, minilang")
    src.add_argument("--regex", help="a regular expression the whole output must match")
    g.add_argument("prompt", nargs="?", default="Produce an example.", help="what to ask the model")
    g.add_argument("--model", help="a transformers causal LM name or path (default: embedded SmolLM2-135M-Instruct)")
    g.add_argument("--max-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--repetition-penalty", type=float, default=1.15,
                   help="discourages loops in small models (1.0 = off); the mask is unaffected")
    g.add_argument("--verbose", action="store_true", help="print timings to stderr")
    g.set_defaults(func=cmd_generate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StructgenError as e:
        if args.debug:
            raise
        print(f"structgen: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
