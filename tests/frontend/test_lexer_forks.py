"""Lexer forks: where several terminals accept a lexeme alike (a const's literal and a general string
of another anyOf branch, say), a JSON Schema's parse follows each of them (automata/lexer.py,
`fork_ties`; automata/glr.py). Checked against jsonschema on valid and invalid instances in every
property order, masks against accept_token at every step (two implementations of the fork: the
mask walk's numba one and the matcher's Python one), random completions against jsonschema, and the
compile cache's round trip of the tie sets."""

from __future__ import annotations

import itertools
import json
import random

import jsonschema
import numpy as np
import pytest

from structgen import GrammarCompiler, GrammarMatcher
from structgen.errors import GrammarError
from structgen.grammar import CompiledGrammar

from datasets import TOKENIZERS, tokenizer_info
from frontend.random_completion import random_completion

# Github_hard---o6771 in small: the branches' "data" values are different objects, so the union of the
# branches is refused (emit.object_union) and each is its own object; "lumi" is then both the literal
# of one branch's "name" and a general string of the others'
MODIFIER = {"anyOf": [
    {"type": "object", "properties": {"name": {"type": "string"}, "type": {"const": "histosys"},
                                      "data": {"type": "object", "properties": {"lo": {"type": "number"}},
                                               "required": ["lo"]}},
     "required": ["name", "type", "data"], "additionalProperties": False},
    {"type": "object", "properties": {"name": {"const": "lumi"}, "type": {"const": "lumi"}, "data": {"type": "null"}},
     "required": ["name", "type", "data"], "additionalProperties": False},
    {"type": "object", "properties": {"name": {"type": "string"}, "type": {"const": "normsys"},
                                      "data": {"type": "object", "properties": {"hi": {"type": "number"}},
                                               "required": ["hi"]}},
     "required": ["name", "type", "data"], "additionalProperties": False},
]}
SCHEMA = {"type": "array", "items": MODIFIER}
INSTANCES = [
    [{"name": "lumi", "type": "histosys", "data": {"lo": 1}}],  # "lumi" as a general string
    [{"name": "lumi", "type": "lumi", "data": None}],  # as the literal
    [{"name": "x", "type": "normsys", "data": {"hi": 2.5}}, {"name": "lumi", "type": "normsys", "data": {"hi": 1}}],
    [{"name": "lumi", "type": "lumi", "data": {"lo": 1}}],  # invalid: the lumi branch's data is null
    [{"name": "x", "type": "lumi", "data": None}],  # invalid: lumi's name is "lumi"
    [{"name": "lumi", "type": "histosys", "data": None}],  # invalid
]
# the fuzzer's minimal reproducers (tests/fuzz/test_fuzz_json_schema.py FIXED): literal against general
SMALL = [({"anyOf": [{"const": {"a": 1}}, {"type": "object"}]}, [{"a": 2}, {"a": 1}, {"b": [1]}, 3]),
         ({"anyOf": [{"const": [1]}, {"type": "array"}]}, [[1, 2], [1], [], "x"]),
         ({"anyOf": [{"const": "lumi"}, {"type": "string", "maxLength": 5}]}, ["lumi", "abc", "lumixy", 1])]


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    return GrammarCompiler(tokenizer_info("llama3"))


def _orders(value, rng: random.Random, n: int = 3):
    """`value` with its objects' keys in n random orders (each level shuffled), the first as it is."""
    def shuffled(v):
        if isinstance(v, dict):
            keys = list(v)
            rng.shuffle(keys)
            return {k: shuffled(v[k]) for k in keys}
        if isinstance(v, list):
            return [shuffled(x) for x in v]
        return v
    return [value] + [shuffled(value) for _ in range(n - 1)]


def _accepts(cg: CompiledGrammar, text: str) -> bool:
    m = GrammarMatcher(cg)
    return m.accept_string(text) and m.is_accepting()


@pytest.mark.parametrize("whitespace", ["compact", "flexible"])
@pytest.mark.parametrize("order", ["any", "declared"])
def test_tied_lexemes_fork_and_agree_with_jsonschema(compiler, whitespace, order):
    cg = compiler.compile_json_schema(SCHEMA, whitespace=whitespace, property_order=order)
    v = jsonschema.Draft202012Validator(SCHEMA)
    rng = random.Random(7)
    for value in INSTANCES:
        for x in (_orders(value, rng) if order == "any" else [value]):
            text = json.dumps(x)
            assert _accepts(cg, text) == v.is_valid(x), (order, text)
    assert cg.lexer.tie_sets, "the schema should have met a lexer tie (the test would test nothing)"


@pytest.mark.parametrize("schema, values", SMALL)
def test_literal_against_general_terminal(compiler, schema, values):
    cg = compiler.compile_json_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    for x in values:
        assert _accepts(cg, json.dumps(x)) == v.is_valid(x), json.dumps(x)


def test_masks_agree_with_accept_token_at_every_step(compiler):
    """At every token of each instance, sampled allowed tokens are accepted and sampled forbidden ones
    refused; the stop token is allowed exactly where the text is complete."""
    cg = compiler.compile_json_schema(SCHEMA, property_order="any")
    info = cg.tokenizer_info
    rng = np.random.default_rng(3)
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(TOKENIZERS / "llama3" / "tokenizer.json"))
    stop = min(info.stop_token_ids)
    checked = 0
    for value in INSTANCES[:3]:
        ids = tok.encode(json.dumps(value), add_special_tokens=False).ids
        m = GrammarMatcher(cg)
        for step in range(len(ids) + 1):
            bits = np.unpackbits(m.next_token_bits().view(np.uint8), bitorder="little")[:info.vocab_size].astype(bool)
            assert bits[stop] == m.is_accepting()
            yes, no = np.flatnonzero(bits), np.flatnonzero(~bits)
            for tid in itertools.chain(rng.choice(yes, min(40, yes.size), replace=False),
                                       rng.choice(no, min(40, no.size), replace=False)):
                if int(tid) in info.stop_token_ids:
                    continue
                got = m.accept_token(int(tid))
                assert got == bool(bits[tid]), (json.dumps(value), step, info.token_bytes[tid])
                if got:
                    m.rollback(1)
                checked += 1
            if step < len(ids):
                assert bits[ids[step]] and m.accept_token(ids[step])
    assert checked > 1000


def test_random_completions_are_valid(compiler):
    cg = compiler.compile_json_schema(SCHEMA, property_order="any")
    v = jsonschema.Draft202012Validator(SCHEMA)
    rng = random.Random(11)
    done = 0
    for _ in range(12):
        text = random_completion(cg, rng)
        if text is None:
            continue
        assert v.is_valid(json.loads(text)), text
        done += 1
    assert done >= 6


def test_tie_sets_survive_the_compile_cache(compiler):
    cg = compiler.compile_json_schema(SCHEMA, property_order="any")
    text = json.dumps(INSTANCES[0])
    assert _accepts(cg, text)  # builds the DFAs with the tie
    meta, arrays = cg.to_arrays()
    back = CompiledGrammar.from_arrays(json.loads(json.dumps(meta)), arrays, cg.tokenizer_info)
    assert back.lexer.tie_sets == cg.lexer.tie_sets and back.ir.lexer_forks
    m1, m2 = GrammarMatcher(cg), GrammarMatcher(back)
    for i in range(0, len(text), 7):
        assert m1.accept_string(text[i:i + 7]) and m2.accept_string(text[i:i + 7])
        assert np.array_equal(m1.next_token_bits(), m2.next_token_bits())


def test_infilling_oracle_refuses_a_tie_cleanly(compiler):
    """The diffusion oracle follows one terminal per lexeme: a tie is a GrammarError there, never a
    wrong answer."""
    from structgen.decoding.diffusion import is_completable
    from structgen.decoding.diffusion.template import Template

    cg = compiler.compile_json_schema({"anyOf": [{"const": "lumi"}, {"type": "string", "maxLength": 5}]})
    with pytest.raises(GrammarError):
        is_completable(cg, Template(['"lumi"']))


def test_structural_tag_contents_fork_too(compiler):
    """A tag's JSON Schema inside a structural tag: the same tie forks there (the tag grammar's builder
    sets lexer_forks, as a schema's own does), and two tags with one begin and overlapping contents
    run on GLR instead of being refused."""
    lumi = {"anyOf": [{"const": {"a": 1}}, {"type": "object"}]}  # {"a": 2} was lost to the literal's tie
    tag = {"type": "structural_tag", "format": {
        "type": "triggered_tags", "triggers": ["<f>"], "at_least_one": False, "stop_after_first": False,
        "tags": [{"type": "tag", "begin": "<f>", "content": {"type": "json_schema", "json_schema": lumi}, "end": "</f>"},
                 {"type": "tag", "begin": "<f>", "end": "</f>",
                  "content": {"type": "json_schema", "json_schema": {"type": "string", "maxLength": 2}}}]}}
    cg = compiler.compile_structural_tag(tag)
    for text, ok in [('hi <f>{"a": 2}</f> and <f>{"a": 1}</f>', True), ('<f>"ab"</f>', True), ('<f>"abc"</f>', False)]:
        assert _accepts(cg, text) == ok, text
    assert cg.lexer.tie_sets
