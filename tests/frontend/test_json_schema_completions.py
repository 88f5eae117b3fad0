"""Every compiled grammar's own output is valid: random-logits completions of MaskBench schemas
(strict mode) decode as UTF-8, parse as JSON and validate with jsonschema, formats checked.

The sampler and the checks live in random_completion.py (see its docstring); the full acceptance
run (500 compiled schemas x 5 completions, ~5 min on 2 cores) is

    python tests/frontend/random_completion.py --schemas 500 --per-schema 5

CI runs the first STRUCTGEN_COMPLETIONS_SCHEMAS compiled schemas of the same shuffled sample
(default 150) with STRUCTGEN_COMPLETIONS_PER_SCHEMA completions each (default 5).
"""

from __future__ import annotations

import json
import os
import random

import jsonschema
import numpy as np
import pytest

from datasets import DATA
from frontend.random_completion import (
    _EXTRA_FORMATS,
    LLAMA3,
    DeadEnd,
    Report,
    _check_one,
    _choose,
    _token_effects,
    check_maskbench,
    random_completion,
    sample_completion,
    validator,
)
from structgen import GrammarCompiler, TokenizerInfo

N_SCHEMAS = int(os.environ.get("STRUCTGEN_COMPLETIONS_SCHEMAS", "150"))
PER_SCHEMA = int(os.environ.get("STRUCTGEN_COMPLETIONS_PER_SCHEMA", "5"))
FORMAT_SUITE = DATA / "json-schema-test-suite" / "tests"


@pytest.fixture(scope="module")
def info() -> TokenizerInfo:
    return TokenizerInfo.from_tokenizer_json(LLAMA3)


@pytest.fixture(scope="module")
def compiler(info) -> GrammarCompiler:
    return GrammarCompiler(info)


# --- the sampler ---------------------------------------------------------------------------


def test_scanner_progress_of_tokens(info) -> None:
    """The termination aid's JSON scanner: state after a token and lexemes/brackets it closes."""
    next_state, gain = _token_effects(info)
    ids = {b: info.token_bytes.index(b) for b in (b'"]', b'",', b"}", b"123", b'{"', b"\\")}
    out, lit, in_str, esc = 0, 1, 2, 3
    assert (next_state[in_str, ids[b'"]']], gain[in_str, ids[b'"]']]) == (out, 2)  # closes string + array
    assert (next_state[out, ids[b'"]']], gain[out, ids[b'"]']]) == (in_str, 0)  # opens a string
    assert (next_state[esc, ids[b'",']], gain[esc, ids[b'",']]) == (in_str, 0)  # escaped quote
    assert (next_state[lit, ids[b"}"]], gain[lit, ids[b"}"]]) == (out, 2)  # ends a number and an object
    assert (next_state[out, ids[b"123"]], gain[out, ids[b"123"]]) == (lit, 0)
    assert (next_state[out, ids[b'{"']], gain[out, ids[b'{"']]) == (in_str, -1)
    assert (next_state[in_str, ids[b"\\"]], gain[in_str, ids[b"\\"]]) == (esc, 0)


@pytest.mark.parametrize("pressure", [0.0, 1.5])
@pytest.mark.parametrize("exact_logits", [True, False])
def test_choice_is_softmax_of_bias(pressure, exact_logits) -> None:
    """Both samplers (argmax of Gumbel logits + bias, and its grouped shortcut) pick token i with
    probability softmax(bias)_i: bias = pressure * gain, stop tokens stop_weight * pressure."""
    rng = np.random.default_rng(0)
    allowed = np.arange(0, 3000, 3)
    gain = rng.integers(-1, 3, size=(1, 3000))
    stop_pos = np.array([10, 500])
    bias = pressure * gain[0, allowed].astype(float)
    bias[stop_pos] = 3.0 * pressure
    want = np.exp(bias) / np.exp(bias).sum()
    g, cache, n = np.random.default_rng(1), {}, 20000
    picks = np.array([_choose(g, allowed, stop_pos, cache, 0, gain, pressure, 3.0, exact_logits) for _ in range(n)])
    is_stop = np.isin(picks, stop_pos)
    assert abs(is_stop.mean() - want[stop_pos].sum()) < 0.01
    for v in (-1, 0, 1, 2):
        in_group = (gain[0, allowed] == v) & ~np.isin(np.arange(allowed.size), stop_pos)
        assert abs(np.isin(picks, np.flatnonzero(in_group)).mean() - want[in_group].sum()) < 0.015, v


SMALL = [
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string", "format": "date-time"}},
     "required": ["a", "b"]},
    {"type": "array", "items": {"type": "array", "items": {"type": "number"}}, "minItems": 2},
    {"$defs": {"t": {"type": "object", "properties": {"v": {"type": "string", "maxLength": 3},
                                                      "kids": {"type": "array", "items": {"$ref": "#/$defs/t"}}}}},
     "$ref": "#/$defs/t"},
    {"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}, {"type": "boolean"}]},
    {"type": "object", "additionalProperties": {"type": "string", "format": "uuid"}, "minProperties": 1},
    True,
]


@pytest.mark.parametrize("schema", SMALL, ids=range(len(SMALL)))
def test_small_schemas_complete_and_validate(compiler, schema) -> None:
    cg = compiler.compile_json_schema(schema)
    v = validator(schema)
    for j in range(10):
        c = sample_completion(cg, np.random.default_rng([7, j]), exact_logits=j % 2 == 0)
        assert c.finished, c.raw[-200:]
        assert v.is_valid(json.loads(c.text)), c.text


def test_drop_in_signature(compiler) -> None:
    """test_json_schema.py calls random_completion(cg, random.Random(...)) and wants text or None."""
    cg = compiler.compile_json_schema({"type": "array", "items": {"type": "integer"}})
    texts = [random_completion(cg, random.Random(3)) for _ in range(2)]
    assert texts[0] == texts[1] and isinstance(json.loads(texts[0]), list)
    assert random_completion(cg, random.Random(3), 400) is not None
    assert random_completion(cg, np.random.default_rng(0), max_steps=0) is None  # no budget: unfinished


def test_unfinished_is_none_not_failure(compiler) -> None:
    """An endless string with a tiny budget and no termination aid ends unfinished."""
    cg = compiler.compile_json_schema({"type": "string", "minLength": 50})
    c = sample_completion(cg, np.random.default_rng(0), max_steps=3, patience=10**9)
    assert not c.finished and c.text is None and len(c.tokens) == 3


def test_dead_end_is_reported(info, monkeypatch) -> None:
    """A mask with no bit set before termination raises DeadEnd (a fake matcher)."""
    from frontend import random_completion as rc

    class Empty:
        def next_token_bits(self):
            return np.zeros((info.vocab_size + 31) // 32, dtype=np.uint32)

    monkeypatch.setattr(rc, "GrammarMatcher", lambda cg: Empty())
    cg = type("CG", (), {"tokenizer_info": info})()
    with pytest.raises(DeadEnd):
        sample_completion(cg, 0)


def test_check_reports_invalid_completions(compiler) -> None:
    """The check is not vacuous: completions of one schema checked against another are reported."""
    cg = compiler.compile_json_schema({"type": "object", "properties": {"d": {"type": "string"}}, "required": ["d"]})
    v = validator({"type": "object", "properties": {"d": {"type": "string", "format": "date"}}})
    rep = Report()
    for j in range(3):
        _check_one(rep, "mismatch", cg, v, np.random.default_rng(j), 2000, j, {})
    assert rep.finished == 3 and rep.valid + len(rep.invalid) == 3 and rep.invalid
    assert rep.invalid[0]["path"] == "d" and "date" in rep.invalid[0]["error"]


# --- the stand-in format checks --------------------------------------------------------------


@pytest.mark.parametrize("draft", ["draft2020-12", "draft7"])
def test_format_checks_agree_with_test_suite(draft) -> None:
    """The stdlib checks for formats jsonschema leaves unchecked here agree with the Test Suite's
    optional format tests, except Punycode (`xn--` labels are not decoded)."""
    checked = 0
    for name, (check, _) in _EXTRA_FORMATS.items():
        path = FORMAT_SUITE / draft / "optional" / "format" / f"{name}.json"
        if not path.exists():
            continue
        for group in json.loads(path.read_text()):
            for t in group["tests"]:
                if isinstance(t["data"], str) and "xn--" not in t["data"].lower():
                    checked += 1
                    assert check(t["data"]) == t["valid"], (name, t["data"], t["description"])
    assert checked > 200


def test_validator_checks_formats_per_draft() -> None:
    assert not validator({"type": "string", "format": "date-time"}).is_valid("2024-02-30T00:00:00Z")
    assert validator({"type": "string", "format": "date-time"}).is_valid("2024-02-29T23:59:59.5+01:00")
    assert not validator({"format": "uri"}).is_valid("no scheme")
    assert not validator({"format": "email"}).is_valid("no-at-sign")  # jsonschema's own check
    assert not validator({"format": "uuid"}).is_valid("123")
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "format": "duration"}
    assert validator(draft4).is_valid("not a duration")  # draft 4 has no duration format
    assert isinstance(validator(draft4), jsonschema.Draft4Validator)


# --- the acceptance check ---------------------------------------------------------------------


@pytest.mark.slow
def test_maskbench_random_completions_validate(info) -> None:
    """The first N_SCHEMAS MaskBench schemas that compile (all rows in sorted file order, shuffled
    with random.Random(1)), PER_SCHEMA completions each: every finished completion is valid, no dead
    ends, no crashes, and at least 90% of the completions finish."""
    rep = check_maskbench(N_SCHEMAS, PER_SCHEMA, info=info, compile_timeout=30, sample_timeout=30)
    summary = rep.summary()
    print(summary, "slow:", rep.slow)
    assert not rep.invalid, json.dumps(rep.invalid[:5], ensure_ascii=False)[:4000]
    assert not rep.not_json, rep.not_json[:5]
    assert not rep.dead_ends, rep.dead_ends[:5]
    assert not rep.crashes, rep.crashes[:5]
    assert rep.compiled == N_SCHEMAS, summary
    assert rep.finished == rep.valid
    assert rep.finished_rate >= 0.9, summary
