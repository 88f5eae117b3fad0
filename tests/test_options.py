"""CompileOptions / Limits: validation, the cache key, and each limit named when it is hit."""

from __future__ import annotations

import json

import pytest

from structgen import GrammarCompiler, LimitExceeded
from structgen.options import DEFAULT_OPTIONS, CompileOptions, Limits, options_from_json


def test_options_validate_and_round_trip() -> None:
    with pytest.raises(ValueError, match="whitespace"):
        CompileOptions(whitespace="pretty")
    with pytest.raises(ValueError, match="separators"):
        CompileOptions(separators=(";", ":"))
    opts = DEFAULT_OPTIONS.with_(whitespace="flexible", max_rules=500, prefer_shift=True)
    assert opts.whitespace == "flexible" and opts.limits.max_rules == 500 and opts.prefer_shift
    assert DEFAULT_OPTIONS.limits == Limits()  # with_ made a copy
    assert options_from_json(json.loads(opts.key())) == opts
    assert opts.key() != DEFAULT_OPTIONS.key()


def test_the_cache_key_is_the_options(tokenizer_llama3) -> None:
    compiler = GrammarCompiler(tokenizer_llama3)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    a = compiler.compile_json_schema(schema)
    assert compiler.compile_json_schema(schema, CompileOptions()) is a
    assert compiler.compile_json_schema(schema, whitespace="flexible") is not a
    assert compiler.compile_json_schema(schema, whitespace="flexible").options.whitespace == "flexible"


@pytest.mark.parametrize("limit, value", [("max_rules", 20), ("max_lr_states", 10), ("max_table_cells", 100),
                                          ("max_dfa_states", 5)])
def test_each_limit_is_named_when_hit(tokenizer_llama3, limit: str, value: int) -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "string", "pattern": "[a-z]{3,9}"} for i in range(12)}}
    with pytest.raises(LimitExceeded, match=limit):
        GrammarCompiler(tokenizer_llama3).compile_json_schema(schema, **{limit: value})
