"""Long strings (maxLength / minLength above 256, lexed in chunks or blocks) have llguidance's masks,
token by token, where tokens cross the chunk ends; and their lengths agree with jsonschema."""

from __future__ import annotations

import json
import random

import jsonschema
import numpy as np
import pytest

from structgen import GrammarCompiler, GrammarMatcher
from structgen.frontend.json_schema.strings import chunk_size

llguidance = pytest.importorskip("llguidance")
tokenizers = pytest.importorskip("tokenizers")

from datasets import TOKENIZERS, tiered  # noqa: E402
from peers import llguidance_fill  # noqa: E402

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"
# no control character written as \u00XX: after "\u000" llguidance also allows the escapes json.dumps never
# writes ("\u0008" for "\b"), which structgen's strings leave out (one literal per string value, README)
WORDS = ["lorem", " ipsum", " dolor", ", sit", " amet.", "\n", "\\", "\"", "é", "😀", "\t", " 12345", "ab/cd"]


DEL = b"\x7f"  # JSON allows it raw in a string (json.loads('"\x7f"')); llguidance's strings do not


def _text(rng: random.Random, n: int) -> str:
    """A string of exactly n characters from WORDS (cut at the end)."""
    out: list[str] = []
    while sum(map(len, out)) < n:
        out.append(rng.choice(WORDS))
    return "".join(out)[:n]


def test_chunk_sizes() -> None:
    assert chunk_size(0, 500) == 125 and chunk_size(1, 1024) == 128 and chunk_size(0, 32767) == 217
    assert chunk_size(200, 500) == 250 and chunk_size(300, 500) == 0  # minLength past a chunk: blocks (long_string)
    assert chunk_size(0, 257) == 0 and chunk_size(0, None) == 0  # no divisor in range; no upper bound


@pytest.mark.parametrize("bounds", tiered([(0, 500), (3, 1024), (0, 257)], {(3, 1024)}, unpack=False))
def test_long_string_masks_match_llguidance(tokenizer_llama3, bounds) -> None:
    lo, hi = bounds
    info = tokenizer_llama3
    schema = {"type": "object", "properties": {"s": {"type": "string", "minLength": lo, "maxLength": hi}},
              "required": ["s"], "additionalProperties": False}
    cg = GrammarCompiler(info).compile_json_schema(schema)
    lltok = llguidance.LLTokenizer(str(LLAMA3), n_vocab=info.vocab_size, eos_token=info.stop_token_ids, slices=[])
    grammar = llguidance.LLMatcher.grammar_from_json_schema(
        schema, overrides={"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "})
    htok = tokenizers.Tokenizer.from_file(str(LLAMA3))
    validator = jsonschema.Draft202012Validator(schema)
    words = (info.vocab_size + 31) // 32
    ours, theirs = np.zeros((1, words), np.int32), np.zeros((1, words), np.int32)
    rng = random.Random(hi)
    steps = 0
    for n in (lo, hi // 4 - 1, hi // 2 + 3, hi - 2, hi, hi + 1):
        inst = {"s": _text(rng, n)}
        text = json.dumps(inst, ensure_ascii=False)
        m = GrammarMatcher(cg)
        ll = llguidance.LLMatcher(lltok, grammar, log_level=0)
        accepted = True
        for tid in htok.encode(text, add_special_tokens=False).ids + [info.stop_token_ids[0]]:
            m.fill_next_token_bitmask(ours)
            llguidance_fill(ll, theirs)
            steps += 1
            a = np.unpackbits(ours.view(np.uint8), bitorder="little")
            b = np.unpackbits(theirs.view(np.uint8), bitorder="little")
            assert not (b & ~a).any(), (bounds, n, steps)
            # where the grammar forces text ('{"s": "', or '"}' once the string is full) llguidance allows
            # only the canonical tokens of it: ours also allows its other prefixes ('{', '"')
            forced = bytes(ll.compute_ff_bytes())
            for t in np.flatnonzero(a & ~b):
                assert info.token_bytes[t] == DEL or forced.startswith(info.token_bytes[t]), (bounds, n, steps)
            ok = m.accept_token(tid)
            assert ok == ll.consume_token(tid)
            if not ok:
                accepted = False
                break
        assert accepted == validator.is_valid(inst), (bounds, n)
    assert steps > 300
