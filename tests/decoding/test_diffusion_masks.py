"""Per-position masks of the infilling oracle (issue 7) against brute force, with SmolLM2's vocabulary.

Brute force tries every token at the chosen position with `is_completable`, made affordable
by two reductions that are exact for reasons independent of the mask algorithm:

* the matcher is deterministic and its mask is a superset of the viable next tokens, so the
  fillings of the masked positions before the chosen one are walked through the GrammarMatcher
  keeping one representative byte prefix per distinct matcher state (lexer state, stack), and
  at the chosen position only tokens in some state's mask are candidates;
* completability of the rest of the template depends only on the matcher state after the
  candidate token, so candidates reaching the same state share one `is_completable` call
  (made on the template with the prefix and the token fixed to real bytes).
"""

from __future__ import annotations

import os
import random
import time

import numpy as np
import pytest

from datasets import tiered
from test_diffusion import real_tokenizer_oracles
from grammar_samples import INVALID, VALID
from structgen import GrammarMatcher, StructgenError, TokenizerInfo
from structgen.decoding.diffusion import ByteGap, CompletabilityOracle, Template, TokenGap

JSON_DOCS = [
    '{"name": "Alice", "age": 30}',
    '{"a": [1, 2.5, -3e2], "b": {"c": null}}',
    '[true, false, null, "x\\"y"]',
    '{"tags": ["red", "green"], "ok": true, "n": 0}',
    '[{"id": 1}, {"id": 2, "v": "\\u00e9"}]',
    '{"k": "caf\u00e9", "list": [[], {}], "z": -0.5}',
]
MAX_STATES = 40  # brute-force budget: distinct matcher states kept per position


@pytest.fixture(scope="module")
def smollm2():
    return real_tokenizer_oracles("smollm2")


# ------------------------------------------------------------------ templates

def tokenize(tok: TokenizerInfo, data: bytes, rng: random.Random) -> list[int]:
    """A valid token sequence for `data`: longest match, sometimes a shorter random match."""
    tr = tok.trie
    out, i = [], 0
    while i < len(data):
        options = []
        node = 0
        for j in range(i, min(len(data), i + tr.max_depth)):
            node = _child(tr, node, data[j])
            if node < 0:
                break
            ids = tr.token_ids_at(node)
            if ids:
                options.append((j + 1, ids[0]))
        end, t = options[-1] if rng.random() < 0.8 else rng.choice(options)
        out.append(t)
        i = end
    return out


def _child(tr, node: int, b: int) -> int:
    c, end = node + 1, int(tr.node_skip[node])
    while c < end and tr.node_byte[c] != b:
        c = int(tr.node_skip[c])
    return c if c < end else -1


def samples(name: str) -> list[bytes]:
    texts = VALID[name] + INVALID[name] + (JSON_DOCS if name == "json" else [])
    return [t.encode("utf-8") for t in texts if 0 < len(t.encode("utf-8")) <= 60]


def random_template(tok, name: str, rng: random.Random) -> tuple[Template, int, int]:
    """(template, gap_index, position): a tokenized sample with 1..4 masked positions (runs of
    masked positions form one TokenGap; sometimes a run's length differs from what it replaced)."""
    ids = tokenize(tok, rng.choice(samples(name)), rng)
    n = len(ids)
    n_mask = min(n, rng.choice([1, 1, 2, 3, 4]))
    masked = set(rng.sample(range(n), n_mask))
    parts: list = []
    j = 0
    while j < n:
        if j in masked:
            k = 0
            while j < n and j in masked:
                k += 1
                j += 1
            if rng.random() < 0.15:
                k = max(1, k + rng.choice([-1, 1]))
            parts.append(TokenGap(k))
        else:
            parts.append(tok.token_bytes[ids[j]])
            j += 1
    if rng.random() < 0.1:
        parts.append(TokenGap(1))  # one more position at the end
    tpl = Template(parts)
    slots = [(g, i) for g, p in enumerate(tpl.gaps) for i in range(p.k)]
    g, i = rng.choice(slots)
    return tpl, g, i


# ------------------------------------------------------------------ brute force

def _split(tpl: Template, gap_index: int, position: int) -> tuple[list, list]:
    """The parts before and after the chosen position (token positions of the same gap stay gaps)."""
    before, after, gi = [], [], 0
    for p in tpl.parts:
        if isinstance(p, bytes):
            (before if gi <= gap_index else after).append(p)
            continue
        if gi == gap_index:
            before += [TokenGap(1)] * position
            if p.k - position - 1:
                after.append(TokenGap(p.k - position - 1))
        elif gi < gap_index:
            before += [TokenGap(1)] * p.k if isinstance(p, TokenGap) else [p]
        else:
            after.append(p)
        gi += 1
    return before, after


def _candidates(cg, m: GrammarMatcher) -> list[int]:
    tok = cg.tokenizer_info
    bits = np.unpackbits(m.next_token_bits().view(np.uint8), bitorder="little")[:tok.vocab_size].astype(bool)
    bits &= ~tok.special_mask
    bits[list(tok.stop_token_ids)] = False
    return [t for t in np.nonzero(bits)[0].tolist() if tok.token_bytes[t]]


def _state(m: GrammarMatcher) -> tuple:
    return (m._ls, m._stack, m._terminated)


def brute_force_allowed(cg, oracle: CompletabilityOracle, tpl: Template, gap_index: int,
                        position: int) -> np.ndarray | None:
    """bool[vocab]: every candidate token tried (see the module docstring); None if the matcher
    states before the position exceed MAX_STATES (the template is then not used)."""
    tok = cg.tokenizer_info
    tb = tok.token_bytes
    before, after = _split(tpl, gap_index, position)
    states: dict[tuple, bytes] = {_state(GrammarMatcher(cg)): b""}
    for p in before:
        nxt: dict[tuple, bytes] = {}
        for prefix in states.values():
            m = GrammarMatcher(cg)
            assert m.accept_string(prefix)
            if isinstance(p, bytes):
                if m.accept_string(p):
                    nxt.setdefault(_state(m), prefix + p)
                continue
            assert isinstance(p, TokenGap) and p.k == 1
            for t in _candidates(cg, m):
                if m.accept_token(t):
                    nxt.setdefault(_state(m), prefix + tb[t])
                    m.rollback(1)
        states = nxt
        if len(states) > MAX_STATES:
            return None
    allowed = np.zeros(tok.vocab_size, dtype=np.bool_)
    verdict: dict[tuple, bool] = {}
    for prefix in states.values():
        m = GrammarMatcher(cg)
        assert m.accept_string(prefix)
        for t in _candidates(cg, m):
            if not m.accept_token(t):
                continue
            key = _state(m)
            m.rollback(1)
            got = verdict.get(key)
            if got is None:
                got = verdict[key] = oracle.is_completable(Template([prefix + tb[t]] + after))
            if got:
                allowed[t] = True
    return allowed


def _check(tok, cgs, name: str, count: int, seed: int) -> dict:
    cg, oracle = cgs[name]
    rng = random.Random(seed)
    done = skipped = nonempty = full = multi = 0
    mask_ms = []
    while done < count:
        tpl, g, i = random_template(tok, name, rng)
        want = brute_force_allowed(cg, oracle, tpl, g, i)
        if want is None:
            skipped += 1
            continue
        t0 = time.perf_counter()
        got = oracle.position_allowed(tpl, g, i)
        mask_ms.append((time.perf_counter() - t0) * 1000)
        bad = np.nonzero(got != want)[0]
        assert not len(bad), (name, tpl, g, i, [(int(t), tok.token_bytes[t], bool(want[t])) for t in bad[:8]])
        packed = oracle.position_mask(tpl, g, i)
        assert packed.dtype == np.int32 and packed.shape == ((tok.vocab_size + 31) // 32,)
        assert np.array_equal(np.unpackbits(packed.view(np.uint8), bitorder="little")[:tok.vocab_size].astype(bool), want)
        done += 1
        nonempty += bool(want.any())
        full += int(want.sum()) > 1000
        multi += sum(p.k for p in tpl.gaps) > 1
    return {"done": done, "skipped": skipped, "nonempty": nonempty, "large": full, "multi": multi,
            "mask_ms_p50": float(np.median(mask_ms)), "mask_ms_max": float(np.max(mask_ms))}


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("name", tiered(["json", "arithmetic"], {"arithmetic"}))
def test_masks_equal_brute_force(smollm2, name) -> None:
    tok, cgs = smollm2
    got = _check(tok, cgs, name, 10, seed=11)
    assert got["nonempty"] >= 2 and got["nonempty"] < got["done"] + 1


MANY = int(os.environ.get("STRUCTGEN_DIFFUSION_MASK_TEMPLATES", "20"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["json", "arithmetic"])
def test_masks_equal_brute_force_many(smollm2, name) -> None:
    """STRUCTGEN_DIFFUSION_MASK_TEMPLATES templates in all, split between the two grammars."""
    tok, cgs = smollm2
    count = MANY // 2 + (MANY % 2 if name == "json" else 0)
    got = _check(tok, cgs, name, count, seed=2024)
    print(name, got)
    assert got["done"] == count


@pytest.mark.parametrize("name, text", [
    ("json", b'{"a": '), ("json", b'{"a": "x'), ("json", b"[1"), ("json", b""), ("json", b'{"a": 1}'),
    ("arithmetic", b"1 + "), ("arithmetic", b"(2"), ("arithmetic", b"3.1"),
])
def test_mask_with_open_end_is_the_matcher_mask(smollm2, name, text) -> None:
    """[prefix, TokenGap(1), ByteGap()]: completable iff prefix + token is a viable prefix,
    which is exactly the GrammarMatcher's mask (minus special and stop tokens)."""
    tok, cgs = smollm2
    cg, oracle = cgs[name]
    m = GrammarMatcher(cg)
    assert m.accept_string(text)
    want = np.zeros(tok.vocab_size, dtype=np.bool_)
    want[_candidates(cg, m)] = True
    got = oracle.position_allowed(Template([text, TokenGap(1), ByteGap()]), 0, 0)
    assert np.array_equal(got, want)


def test_batch_and_addressing(smollm2) -> None:
    tok, cgs = smollm2
    cg, oracle = cgs["json"]
    tb = tok.token_bytes
    tpl = Template([b'{"a": ', TokenGap(2), b", ", ByteGap(0, 3, b" 1"), b'"b": ', TokenGap(1), b"}"])
    slots = oracle.token_positions(tpl)
    assert slots == [(0, 0), (0, 1), (2, 0)]
    batch = oracle.position_masks(tpl, slots)
    assert batch.shape == (3, (tok.vocab_size + 31) // 32) and batch.dtype == np.int32
    for row, (g, i) in zip(batch, slots):
        assert np.array_equal(row, oracle.position_mask(tpl, g, i))
    # a token the witness uses at a position is in that position's mask
    wit = oracle.example_completion(tpl)
    for (g, i), row in zip(slots, batch):
        t = wit[g][i]
        assert (int(row[t // 32]) >> (t % 32)) & 1, (g, i, tb[t])
    with pytest.raises(StructgenError):
        oracle.position_mask(tpl, 1, 0)  # a ByteGap
    with pytest.raises(StructgenError):
        oracle.position_mask(tpl, 0, 2)  # past the gap


def test_uncompletable_template_has_empty_masks(smollm2) -> None:
    tok, cgs = smollm2
    cg, oracle = cgs["json"]
    tpl = Template([b'{"a": ', TokenGap(1), b" ]"])
    assert not oracle.is_completable(tpl)
    assert not oracle.position_mask(tpl, 0, 0).any()
