"""`structgen` command line: `generate` (constrained generation on the embedded model), `validate`
(does an instance or text fit, by the engine and by jsonschema; which keywords compile exactly),
`compile` (what a grammar compiles to) and `bench` (engines side by side on benchmark data).

Here: the argument parser, `validate`, `compile` and `main`; `generate` is in generate.py, reading and
compiling a command's --schema / --grammar / --regex in source.py, `bench` in bench.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .generate import cmd_generate
from .source import _compile_schema, _compile_source, _compiler, _grammar_syntax, _grammar_text, _schema
from ..errors import StructgenError
from .bench import add_bench_parser

EXAMPLES = """examples:
  structgen generate --schema examples/person.json "Describe a fictional person"
  structgen generate --grammar json "Describe a fictional person as JSON"
  structgen generate --grammar sql "Write an SQL query for the names of customers from Paris."
  structgen generate --regex "[0-9]{3}-[0-9]{4}" "Make up a phone number"
  structgen generate --grammar my.lark --max-tokens 64 "..."
  structgen generate --asap 20 --regex "(yes|no|maybe)" "Will it rain tomorrow?"
  structgen generate --smc 8 --regex "(yes|no|maybe)" "Will it rain tomorrow?"
  structgen generate --awrs --temperature 1 --schema examples/person.json "Describe a fictional person"
  structgen validate --schema examples/person.json examples/ada.json
  structgen validate --schema examples/person.json --check
  structgen compile --schema examples/person.json --emit-lark
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given after the subcommand, an option must not reset what was given before it
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks for errors")
    common.add_argument("--cache-dir", default=argparse.SUPPRESS,
                        help="compile cache folder (default $STRUCTGEN_CACHE_DIR/compiled or ~/.cache/structgen/compiled)")
    common.add_argument("--no-cache", action="store_true", default=argparse.SUPPRESS,
                        help="neither read nor write the compile cache")
    p = argparse.ArgumentParser(prog="structgen", description="Exact grammar-constrained generation.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                                parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate text constrained by a grammar or regex", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--grammar", help="a .lark, .gbnf (llama.cpp) or .ebnf (XGrammar) file, or a shipped grammar "
                     "name: json, arithmetic, sql, minilang")
    src.add_argument("--regex", help="a regular expression the whole output must match")
    src.add_argument("--schema", help="a JSON Schema: a file or JSON text")
    src.add_argument("--pydantic", help="a pydantic model class as module:Class")
    _schema_options(g)
    g.add_argument("prompt", nargs="?", default="Produce an example.", help="what to ask the model")
    g.add_argument("--model", help="a transformers causal LM name or path (default: embedded SmolLM2-135M-Instruct)")
    g.add_argument("--backend", choices=("transformers", "llama-cpp"), default="transformers",
                   help="llama-cpp: the embedded model through llama-cpp-python (pip install 'structgen[llama-cpp]')")
    g.add_argument("--max-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--repetition-penalty", type=float, default=1.15,
                   help="discourages loops in small models (1.0 = off); the mask is unaffected")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object (output, terminated, valid, timings) instead of streaming")
    g.add_argument("--verbose", action="store_true", help="print timings to stderr")
    g.add_argument("--asap", type=int, metavar="N",
                   help="draw N grammar-aligned (ASAp) samples at --temperature (0 means 1) and print each "
                        "distinct output with its count")
    g.add_argument("--smc", type=int, metavar="N",
                   help="sequential Monte Carlo with N particles and AWRS proposals at --temperature (0 means 1; "
                        "particles on one prefix become distinct children of it): prints each finished output with "
                        "its posterior weight (the model conditioned on the grammar)")
    g.add_argument("--awrs", action="store_true",
                   help="sample with adaptive weighted rejection sampling (masks only when rejections pile up) at "
                        "--temperature (0 means 1); --json adds the log importance weight")
    g.add_argument("--ess-threshold", type=float, default=0.5,
                   help="with --smc: resample when the effective sample size falls below this fraction of N")
    g.set_defaults(func=cmd_generate)

    v = _source_command(sub, common, "validate", "does an instance or text fit a schema, grammar or regex")
    v.add_argument("--check", action="store_true",
                   help="with --schema: list which keywords compile exactly, are relaxed, or are unsupported")
    v.add_argument("input", nargs="?", help="the instance file (--schema), text file (--grammar) or text (--regex)")
    v.set_defaults(func=cmd_validate)

    c = _source_command(sub, common, "compile", "compile a schema, grammar or regex and report its size and time")
    c.add_argument("--tokenizer", help="a tokenizer.json path (default: the embedded model's tokenizer)")
    c.add_argument("--emit-lark", action="store_true", help="print the generated Lark grammar")
    c.set_defaults(func=cmd_compile)

    add_bench_parser(sub, common)
    return p


def _source_command(sub, common, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that takes one of --schema / --grammar / --regex, plus the schema options."""
    p = sub.add_parser(name, help=help_text, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                       parents=[common])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--schema", help="a JSON Schema: a file or JSON text")
    src.add_argument("--grammar", help="a .lark, .gbnf or .ebnf file, or a shipped grammar name")
    src.add_argument("--regex", help="a regular expression")
    _schema_options(p)
    return p


def _schema_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--syntax", choices=("lark", "gbnf", "ebnf"),
                   help="the --grammar file's syntax (default: by its extension, .gbnf / .ebnf, else lark)")
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
    from .. import TokenizerInfo

    if path:
        return TokenizerInfo.from_tokenizer_json(path)
    from ..models import cached_default_tokenizer_json, load_default_tokenizer

    cached = cached_default_tokenizer_json()
    if cached is not None:  # the same tokens, special and stop ids (tests/test_models.py checks the fingerprints)
        return TokenizerInfo.from_tokenizer_json(cached[0], stop_token_ids=[cached[1]])

    return TokenizerInfo.from_huggingface(load_default_tokenizer())


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when the input fits, 1 when it does not (or engine and jsonschema disagree), 2 on bad input."""
    import json

    from .. import GrammarMatcher

    if args.schema and args.check:
        return _check_schema(_schema(args))
    if args.input is None:
        raise StructgenError("validate needs an input (an instance file, a text file, or with --regex the text)")
    compiler = _compiler(args, _tokenizer_info(None))
    if args.schema:
        import jsonschema

        schema = _schema(args)
        try:
            instance = json.loads(_read_text(args.input, "instance file"))
        except json.JSONDecodeError as e:
            raise StructgenError(f"{args.input}: not valid JSON: {e}") from None
        try:  # any property order, as jsonschema
            cg = _compile_schema(compiler, schema, args, property_order="any")
        except StructgenError as e:  # e.g. anyOf branches only GLR could follow side by side in any order
            cg = _compile_schema(compiler, schema, args)
            print(f"note: checked in declared property order (any order: {e})")
        m = GrammarMatcher(cg)
        text = json.dumps(instance, ensure_ascii=False) if args.whitespace == "compact" else json.dumps(
            instance, ensure_ascii=False, indent=2)
        ours = m.accept_string(text) and m.is_accepting()
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = sorted(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(instance), key=str)
        theirs = not errors
        print(f"structgen: {'valid' if ours else 'invalid'}; jsonschema: {'valid' if theirs else 'invalid'}")
        if not ours:  # where the instance, as structgen writes it, leaves the schema's language
            print(f"  structgen, on {text[:60] + '...' if len(text) > 60 else text}:", end=" ")
            _report_walk(cg, text.encode("utf-8"))
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
        cg = compiler.compile_grammar(_grammar_text(args.grammar), syntax=_grammar_syntax(args),
                                      allow_trailing_ignore=True)
        data = _read_text(args.input, "text file").encode("utf-8")
    else:
        cg = compiler.compile_regex(args.regex)
        data = args.input.encode("utf-8")
    return 0 if _report_walk(cg, data) else 1


def _report_walk(cg, data: bytes) -> bool:
    """Feed `data` byte by byte; print "match", or the byte offset where it leaves the language (or
    that it ends too early) and the terminals expected there. Whether it matched."""
    from .. import GrammarMatcher

    m = GrammarMatcher(cg)
    lx = cg.lexer
    start = 0  # where the current lexeme began
    for i in range(len(data)):  # byte by byte, to name the offset where the text leaves the language
        before = m._ls
        if not m.accept_string(data[i:i + 1]):
            expected = m.expected_terminals(data[start:i])
            print(f"no match: the text leaves the language at byte {i} ({data[max(0, i - 20):i + 1]!r} <-); "
                  f"expected {_one_of(expected, m.is_accepting())}")
            return False
        if lx.is_start[before] or (lx.accept_term[before] >= 0 and lx.trans[before, data[i]] < 0):
            start = i  # greedy lexing: this byte began a new lexeme
        if lx.is_start[m._ls]:
            start = i + 1
    if not m.is_accepting():
        print(f"no match: the text ends too early (after {len(data)} bytes); "
              f"expected {_one_of(m.expected_terminals(data[start:]), False)}")
        return False
    print("match")
    return True


def _one_of(terminals: list[str], can_end: bool) -> str:
    names = terminals + (["the end of the text"] if can_end else [])
    if not names:
        return "nothing (a dead end)"
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def _check_schema(schema) -> int:
    """List what compiles exactly; with relaxations, which keywords at which pointers and how."""
    from ..frontend.json_schema import schema_to_grammar

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
    """Compile and report grammar size, terminals, states, memory and time (from the disk cache when there)."""
    info = _tokenizer_info(args.tokenizer)
    compiler = _compiler(args, info)
    schema = _schema(args) if args.schema else None
    t0 = time.perf_counter()
    cg, _ = _compile_source(compiler, args, schema)
    ms = (time.perf_counter() - t0) * 1e3
    if args.emit_lark:
        print(_lark_text(cg, schema))
    rules = cg.ir.num_rules
    dfa_states = sum(t.dfa.num_states for t in cg.terminals)
    nbytes = (sum(t.dfa.trans.nbytes + t.dfa.accept.nbytes for t in cg.terminals)
              + sum(a.nbytes for a in vars(cg.parser).values() if hasattr(a, "nbytes")))
    source = "loaded from the disk cache" if compiler.last_from_disk else "compiled"
    print(f"{source} in {ms:.1f} ms: {rules} rules, {len(cg.terminals)} terminals ({dfa_states} DFA states), "
          f"{cg.parser.num_states} parser states, {cg.lexer.num_states} lexer states built, "
          f"{nbytes / 1024:.0f} KiB of tables; mask store: {info.trie.num_nodes} trie nodes for "
          f"{info.vocab_size} tokens, entries built lazily")
    for r in cg.relaxations:
        print(f"relaxed {r.keyword} at {r.pointer}: accepts {r.direction}")
    return 0


def _lark_text(cg, schema) -> str:
    """The grammar as standalone Lark text: as read, or the IR with terminals as regexes; a schema's
    objects whose constraints are parser state are printed in the rule-based encoding instead."""
    from ..frontend.lark_text import grammar_as_lark

    if cg.ir.source is not None:
        return cg.ir.source
    ir = cg.ir
    if schema is not None and ir.objects:
        from ..frontend.json_schema import schema_to_grammar

        try:
            ir = schema_to_grammar(schema, options=cg.options, parametric=False).ir
        except StructgenError:
            pass  # too many rules (any order of many members): the header says what the rules leave out
    return grammar_as_lark(ir)


def main(argv: list[str] | None = None) -> int:
    import warnings

    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    if not debug:  # warnings as one line each (a rebuilt cache entry, ...)
        warnings.showwarning = lambda message, *rest: print(f"structgen: warning: {message}", file=sys.stderr)
    try:
        return args.func(args)
    except StructgenError as e:
        if debug:
            raise
        print(f"structgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("structgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
