"""Fuzz: random token streams into GrammarMatcher (Llama-3 ids) on json.lark, a JSON Schema, an
ambiguous (GLR) grammar and a regex: tokens the mask allows, random ids (in range or not, special
ones), stop tokens and rollback(k), with and without max_rollback_tokens. Checked at every step:
accept_token says yes iff the mask bit is set, a refused token (or a refused rollback) leaves the
state unchanged, and after a rollback the mask, is_accepting and is_terminated equal those of a fresh
matcher fed the surviving tokens; at the end the mask agrees with accept_token on sampled tokens and
with find_jump_forward_string (every allowed token is consistent with the forced text). LimitExceeded
(GLR's bound) is typed and leaves the state as it was. Once terminated the mask holds the stop
tokens (XGrammar's convention) while accept_token refuses all.
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import examples
from fuzz.strategies import compiler, token_ops, tokenizer
from structgen import GrammarMatcher, StructgenError, builtin_grammar
from structgen.errors import LimitExceeded

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "maxItems": 3},
    "pet": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"kind": {"const": "cat"}}}]}},
    "required": ["name"]}
GRAMMARS = ("json", "schema", "glr", "regex")


@lru_cache(maxsize=None)
def grammar(name: str):
    """The compiled grammar of each stream fuzzer target (Llama-3), compiled once per process."""
    c = compiler()
    if name == "json":
        return c.compile_grammar(builtin_grammar("json"))
    if name == "schema":
        return c.compile_json_schema(SCHEMA)
    if name == "glr":
        return c.compile_grammar('start: e\ne: e "+" e | e "*" e | "(" e ")" | "a"\n')
    return c.compile_regex(r'[a-z]{2,5}(-[0-9]+)?|"[^"\n]{0,10}"|é+')


def _bit(bits: np.ndarray, t: int) -> bool:
    return 0 <= t < len(bits) * 32 and bool(bits[t >> 5] >> np.uint32(t & 31) & 1)


def _allowed(bits: np.ndarray, vocab: int) -> np.ndarray:
    return np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little")[:vocab])


def _state(m: GrammarMatcher) -> tuple[bytes, bool, bool]:
    return m.next_token_bits().tobytes(), m.is_accepting(), m.is_terminated()


def _replayed(cg, tokens: list[int]) -> tuple[bytes, bool, bool]:
    fresh = GrammarMatcher(cg)
    for t in tokens:
        assert fresh.accept_token(t), f"replay: token {t} refused after {tokens}"
    return _state(fresh)


def check_token_stream(name: str, ops: list[tuple[str, int]], max_rollback: int) -> str:
    """Run `ops` on a matcher of grammar `name` and check the invariants; AssertionError on a
    violation. Returns "checked" or "limit" (a GLR bound hit, state kept)."""
    cg = grammar(name)
    info = tokenizer()
    vocab, eos = info.vocab_size, int(info.stop_token_ids[0])
    special = np.flatnonzero(info.special_mask)
    m = GrammarMatcher(cg, max_rollback_tokens=max_rollback)
    tokens: list[int] = []  # accepted since the start, the model of the matcher's state
    history = 0  # how many of them rollback may undo
    where = f"grammar={name} max_rollback={max_rollback} ops={ops}"
    outcome = "checked"
    for step, (kind, r) in enumerate(ops):
        before = _state(m)
        bits = m.next_token_bits()
        try:
            if kind == "rollback":
                k = r % (history + 2)
                if k > history:
                    with pytest.raises(StructgenError):
                        m.rollback(k)
                    assert _state(m) == before, f"{where} step {step}: a refused rollback changed the state"
                    continue
                m.rollback(k)
                del tokens[len(tokens) - k:]
                history -= k
                assert _state(m) == _replayed(cg, tokens), f"{where} step {step}: state after rollback({k})"
                continue
            if kind == "allowed":  # stop tokens have their own op, so that streams get long
                ids = _allowed(bits, vocab)
                ids = ids[~np.isin(ids, info.stop_token_ids)] if len(ids) > len(info.stop_token_ids) else ids
                if not len(ids):
                    continue
                t = int(ids[r % len(ids)])
            elif kind == "stop":
                t = eos
            elif kind == "special":
                t = int(special[r % len(special)])
            else:
                t = r % (vocab + 4) - 2
            ok = m.accept_token(t)
        except LimitExceeded:
            assert _state(m) == before, f"{where} step {step}: LimitExceeded changed the state"
            outcome = "limit"
            continue
        if not before[2]:
            assert ok == _bit(bits, t), f"{where} step {step}: accept_token({t}) = {ok}, mask bit {_bit(bits, t)}"
        else:
            assert not ok, f"{where} step {step}: a terminated matcher accepted {t}"
        if ok:
            tokens.append(t)
            history = history + 1 if max_rollback < 0 else min(history + 1, max_rollback)
        else:
            assert _state(m) == before, f"{where} step {step}: a refused token {t} changed the state"
    try:
        assert _state(m) == _replayed(cg, tokens), f"{where}: final state differs from a fresh replay"
        _check_mask_sample(cg, tokens, vocab, random.Random(len(ops)), where)
    except LimitExceeded:
        outcome = "limit"
    return outcome


def _check_mask_sample(cg, tokens: list[int], vocab: int, rng: random.Random, where: str) -> None:
    """After `tokens`, accept_token agrees with the mask on 16 allowed and 16 random tokens (each
    rolled back)."""
    m = GrammarMatcher(cg)
    for t in tokens:
        m.accept_token(t)
    if m.is_terminated():
        return
    bits = m.next_token_bits().copy()
    ids = _allowed(bits, vocab)
    forced = m.find_jump_forward_string().encode()
    if forced:  # jump-forward: the text is accepted, and every allowed token agrees with it
        assert not m.is_accepting(), f"{where}: jump-forward {forced!r} where the output may end"
        token_bytes = m.compiled_grammar.tokenizer_info.token_bytes
        for t in ids[:: max(1, len(ids) // 64)]:
            b = token_bytes[t]
            assert forced.startswith(b) or b.startswith(forced), f"{where}: token {b!r} allowed, {forced!r} forced"
        probe = GrammarMatcher(cg)
        assert all(probe.accept_token(t) for t in tokens) and probe.accept_string(forced), f"{where}: {forced!r}"
    sample = [int(x) for x in rng.sample(list(ids), min(16, len(ids)))] + [rng.randrange(vocab) for _ in range(16)]
    for t in sample:
        ok = m.accept_token(t)
        assert ok == _bit(bits, t), f"{where}: at the end accept_token({t}) = {ok}, mask bit {_bit(bits, t)}"
        if ok:
            m.rollback(1)


# the fuzzer's arguments (bench/fuzz.py runs check_token_stream on the same strategies)
FUZZ_ARGS = dict(name=st.sampled_from(GRAMMARS), ops=token_ops(), max_rollback=st.sampled_from([-1, -1, 0, 2, 5]))


@settings(max_examples=examples(800), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(**FUZZ_ARGS)
def test_token_streams_keep_the_matcher_consistent(name: str, ops: list[tuple[str, int]], max_rollback: int) -> None:
    check_token_stream(name, ops, max_rollback)
