"""`structgen` command line: `generate` (constrained generation on the embedded model), `validate`
(does an instance or text fit, by the engine and by jsonschema; which keywords compile exactly) and
`compile` (what a grammar compiles to). (`bench` comes with its issue.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import StructgenError

EXAMPLES = """examples:
  structgen generate --schema examples/person.json "Describe a fictional person"
  structgen generate --grammar json "Describe a fictional person as JSON"
  structgen generate --grammar sql "Write an SQL query for the names of customers from Paris."
  structgen generate --regex "[0-9]{3}-[0-9]{4}" "Make up a phone number"
  structgen generate --grammar my.lark --max-tokens 64 "..."
  structgen validate --schema examples/person.json person.json
  structgen validate --schema examples/person.json --check
  structgen compile --schema examples/person.json --emit-lark
"""


# Appended to the user's prompt so a small model answers in the grammar's format (the mask decides).
HINTS = {
    "json": "Reply with one short JSON value on a single line.",
    "sql": "Reply with only the SQL, nothing else.",
    "arithmetic": "Reply with only the arithmetic expression, nothing else.",
}


def schema_hint(schema) -> str:
    """What the prompt tells the model about a schema (as JSONSchemaBench does); the mask enforces it."""
    import json

    return f"Reply with one JSON value that follows this JSON Schema: {json.dumps(schema)}"


def _grammar_text(arg: str) -> str:
    from .compiler import builtin_grammar

    path = Path(arg)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    try:
        return builtin_grammar(arg)
    except StructgenError:
        raise StructgenError(f"--grammar {arg!r}: no such file and no shipped grammar of that name") from None


def _schema(args: argparse.Namespace):
    """The JSON Schema of --schema (file or JSON text) or --pydantic (module:Class), loaded."""
    from .frontend.json_schema import load_schema

    if getattr(args, "pydantic", None):
        import importlib

        module, _, name = args.pydantic.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as e:
            raise StructgenError(f"--pydantic {args.pydantic!r}: cannot load the class ({e})") from None
        return load_schema(cls)
    return load_schema(args.schema)


def _compile_schema(compiler, schema, args: argparse.Namespace, **kw):
    return compiler.compile_json_schema(schema, whitespace=args.whitespace, strict=not args.lenient, **kw)


def cmd_generate(args: argparse.Namespace) -> int:
    import torch
    from transformers import LogitsProcessorList, TextStreamer

    from . import GrammarCompiler, TokenizerInfo
    from .integrations.transformers import LogitsProcessor
    from .models import chat_prompt, load_default_model, load_default_tokenizer, load_model

    torch.manual_seed(args.seed)
    # bad input fails before the (slow) model load
    schema = _schema(args) if (args.schema or args.pydantic) else None
    if schema is not None:
        from .frontend.json_schema import schema_to_grammar

        schema_to_grammar(schema, whitespace=args.whitespace, strict=not args.lenient)
    grammar = None if args.regex is not None or schema is not None else _grammar_text(args.grammar)
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
    if schema is not None:
        cg = _compile_schema(compiler, schema, args)
        hint = schema_hint(schema)
    elif args.regex is not None:
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
    src.add_argument("--schema", help="a JSON Schema: a file or JSON text")
    src.add_argument("--pydantic", help="a pydantic model class as module:Class")
    _schema_options(g)
    g.add_argument("prompt", nargs="?", default="Produce an example.", help="what to ask the model")
    g.add_argument("--model", help="a transformers causal LM name or path (default: embedded SmolLM2-135M-Instruct)")
    g.add_argument("--max-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--repetition-penalty", type=float, default=1.15,
                   help="discourages loops in small models (1.0 = off); the mask is unaffected")
    g.add_argument("--verbose", action="store_true", help="print timings to stderr")
    g.set_defaults(func=cmd_generate)

    v = _source_command(sub, "validate", "does an instance or text fit a schema, grammar or regex")
    v.add_argument("--check", action="store_true",
                   help="with --schema: list which keywords compile exactly, are relaxed, or are unsupported")
    v.add_argument("input", nargs="?", help="the instance file (--schema), text file (--grammar) or text (--regex)")
    v.set_defaults(func=cmd_validate)

    c = _source_command(sub, "compile", "compile a schema, grammar or regex and report its size and time")
    c.add_argument("--tokenizer", help="a tokenizer.json path (default: the embedded model's tokenizer)")
    c.add_argument("--emit-lark", action="store_true", help="print the generated Lark grammar")
    c.set_defaults(func=cmd_compile)
    return p


def _source_command(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that takes one of --schema / --grammar / --regex, plus the schema options."""
    p = sub.add_parser(name, help=help_text, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--schema", help="a JSON Schema: a file or JSON text")
    src.add_argument("--grammar", help="a .lark file or a shipped grammar name")
    src.add_argument("--regex", help="a regular expression")
    _schema_options(p)
    return p


def _schema_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--whitespace", choices=("compact", "flexible"), default="compact",
                   help="JSON layout: compact (json.dumps one line) or flexible (bounded whitespace)")
    p.add_argument("--lenient", action="store_true",
                   help="relax unsupported JSON Schema keywords instead of failing (the relaxations are listed)")


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise StructgenError(f"cannot read {what} {path!r}: {e}") from None


def _tokenizer_info(path: str | None):
    from . import TokenizerInfo

    if path:
        return TokenizerInfo.from_tokenizer_json(path)
    from .models import load_default_tokenizer

    return TokenizerInfo.from_huggingface(load_default_tokenizer())


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when the input fits, 1 when it does not (or engine and jsonschema disagree), 2 on bad input."""
    import json

    from . import GrammarCompiler, GrammarMatcher

    if args.schema and args.check:
        return _check_schema(_schema(args))
    if args.input is None:
        raise StructgenError("validate needs an input (an instance file, a text file, or with --regex the text)")
    compiler = GrammarCompiler(_tokenizer_info(None))
    if args.schema:
        import jsonschema

        schema = _schema(args)
        try:
            instance = json.loads(_read_text(args.input, "instance file"))
        except json.JSONDecodeError as e:
            raise StructgenError(f"{args.input}: not valid JSON: {e}") from None
        try:  # any property order, as jsonschema; objects with many properties only in declared order
            cg = _compile_schema(compiler, schema, args, property_order="any")
        except StructgenError:
            cg = _compile_schema(compiler, schema, args)
        m = GrammarMatcher(cg)
        text = json.dumps(instance, ensure_ascii=False) if args.whitespace == "compact" else json.dumps(
            instance, ensure_ascii=False, indent=2)
        ours = m.accept_string(text) and m.is_accepting()
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = sorted(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(instance), key=str)
        theirs = not errors
        print(f"structgen: {'valid' if ours else 'invalid'}; jsonschema: {'valid' if theirs else 'invalid'}")
        for e in errors[:5]:
            print(f"  jsonschema: {e.message} at {e.json_path}")
        if ours != theirs:
            order = " (structgen writes properties in declared order; see --check)" if theirs else ""
            print(f"structgen: DISAGREEMENT with jsonschema{order}; if the order is not the cause, please "
                  "report it with the schema and instance", file=sys.stderr)
            return 1
        return 0 if ours else 1
    if args.grammar:
        # %ignore'd text (a final newline) may end the file, as Lark allows
        cg = compiler.compile_grammar(_grammar_text(args.grammar), allow_trailing_ignore=True)
        data = _read_text(args.input, "text file").encode("utf-8")
    else:
        cg = compiler.compile_regex(args.regex)
        data = args.input.encode("utf-8")
    m = GrammarMatcher(cg)
    for i in range(len(data)):  # byte by byte, to name the offset where the text leaves the language
        if not m.accept_string(data[i:i + 1]):
            print(f"no match: the text leaves the language at byte {i} ({data[max(0, i - 20):i + 1]!r} <-)")
            return 1
    if not m.is_accepting():
        print(f"no match: the text ends too early (after {len(data)} bytes)")
        return 1
    print("match")
    return 0


def _check_schema(schema) -> int:
    """List what compiles exactly; with relaxations, which keywords at which pointers and how."""
    from .frontend.json_schema import schema_to_grammar

    try:
        schema_to_grammar(schema, strict=True)
        print("every keyword compiles exactly (strict mode)")
        return 0
    except StructgenError as e:
        print(f"strict mode: {e}")
    sg = schema_to_grammar(schema, strict=False)
    for r in sg.relaxations:
        print(f"relaxed {r.keyword} at {r.pointer}: the grammar accepts {r.direction} than the schema"
              + (f" ({r.detail})" if r.detail else ""))
    return 1


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile and report grammar size, terminals, states and time."""
    from . import GrammarCompiler
    from .frontend.json_schema import schema_to_grammar

    compiler = GrammarCompiler(_tokenizer_info(args.tokenizer))
    t0 = time.perf_counter()
    lark_text = None
    if args.schema:
        schema = _schema(args)
        sg = schema_to_grammar(schema, whitespace=args.whitespace, strict=not args.lenient)
        lark_text = sg.lark
        cg = _compile_schema(compiler, schema, args)
    elif args.grammar:
        lark_text = _grammar_text(args.grammar)
        cg = compiler.compile_grammar(lark_text)
    else:
        cg = compiler.compile_regex(args.regex)
    ms = (time.perf_counter() - t0) * 1e3
    if args.emit_lark and lark_text is not None:
        print(lark_text)
    rules = sum(1 for line in (lark_text or "").splitlines() if line[:1].islower())
    dfa_states = sum(t.dfa.num_states for t in cg.terminals)
    print(f"compiled in {ms:.0f} ms: {rules} rules, {len(cg.terminals)} terminals ({dfa_states} DFA states), "
          f"{cg.parser.action.shape[0]} parser states")
    for r in cg.relaxations:
        print(f"relaxed {r.keyword} at {r.pointer}: accepts {r.direction}")
    return 0


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
