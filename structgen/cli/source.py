"""What `structgen generate | validate | compile` compile: --schema / --pydantic / --grammar / --regex
read and compiled (through the disk cache), and the prompt hint for each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import StructgenError


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


def _grammar_syntax(args: argparse.Namespace) -> str:
    """--syntax, else by the file's extension: .gbnf (llama.cpp), .ebnf (XGrammar), else Lark."""
    if getattr(args, "syntax", None):
        return args.syntax
    suffix = Path(args.grammar).suffix.lower()
    return {".gbnf": "gbnf", ".ebnf": "ebnf"}.get(suffix, "lark")


def _grammar_text(arg: str) -> str:
    from ..compiler import builtin_grammar

    path = Path(arg)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    try:
        return builtin_grammar(arg)
    except StructgenError:
        raise StructgenError(f"--grammar {arg!r}: no such file and no shipped grammar of that name") from None


def _schema(args: argparse.Namespace):
    """The JSON Schema of --schema (file or JSON text) or --pydantic (module:Class), loaded."""
    from ..frontend.json_schema import load_schema

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


def _compiler(args: argparse.Namespace, info):
    """A GrammarCompiler with the disk cache of --cache-dir (default ~/.cache/structgen/compiled) unless --no-cache."""
    from .. import GrammarCompiler
    from ..compile_cache import default_cache_dir

    if getattr(args, "no_cache", False):
        return GrammarCompiler(info)
    return GrammarCompiler(info, cache_dir=getattr(args, "cache_dir", None) or default_cache_dir())


def _compile_source(compiler, args: argparse.Namespace, schema):
    """Compile --schema/--pydantic, --regex or --grammar; returns (compiled grammar, prompt hint)."""
    if schema is not None:
        return _compile_schema(compiler, schema, args), schema_hint(schema)
    if args.regex is not None:
        return compiler.compile_regex(args.regex), f"Answer with text matching the regular expression {args.regex}."
    return (compiler.compile_grammar(_grammar_text(args.grammar), syntax=_grammar_syntax(args)),
            HINTS.get(args.grammar, "Reply with only the output, nothing else."))
