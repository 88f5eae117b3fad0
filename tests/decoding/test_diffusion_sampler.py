"""structgen.decoding.diffusion.sampler: masked-diffusion unmasking under the infilling oracle (issue 7).

A toy MaskedLM (random logits seeded by the ids) over small byte-level vocabularies: the
constrained modes must always end in a word of the grammar, the unconstrained mode must not.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from structgen import GrammarCompiler, GrammarMatcher, LimitExceeded, StructgenError, TokenizerInfo, builtin_grammar
from structgen.decoding.diffusion import ByteGap, Template, TokenGap
from structgen.decoding.diffusion.sampler import DiffusionConstraint, diffusion_generate

CHARS = {
    "json": b' {}[]:,"a1-.0etrufalsn',
    "arithmetic": b" ()+-*/,1a.^x2",
}


def byte_tokenizer(chars: bytes) -> TokenizerInfo:
    """One token per byte, then MASK and EOS (both empty, special)."""
    tb = [bytes([c]) for c in sorted(set(chars))] + [b"", b""]
    return TokenizerInfo(tb, special_ids=[len(tb) - 2, len(tb) - 1], stop_token_ids=[len(tb) - 1])


class RandomLM:
    """Random logits, a deterministic function of (seed, ids)."""

    def __init__(self, vocab: int, seed: int = 0, scale: float = 2.0) -> None:
        self.vocab, self.seed, self.scale = vocab, seed, scale

    def logits(self, ids: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(np.asarray(ids, dtype=np.int64).tobytes()) + 7919 * self.seed)
        return rng.normal(size=(len(ids), self.vocab)) * self.scale


@pytest.fixture(scope="module")
def setups():
    out = {}
    for name, chars in CHARS.items():
        tok = byte_tokenizer(chars)
        cg = GrammarCompiler(tok).compile_grammar(builtin_grammar(name))
        v = tok.vocab_size
        out[name] = (tok, cg, DiffusionConstraint(cg, mask_id=v - 2, eos_id=v - 1))
    return out


def valid(name: str, cg, text: bytes) -> bool:
    m = GrammarMatcher(cg)
    ok = m.accept_string(text) and m.is_accepting()
    if ok and name == "json":
        json.loads(text)  # the grammar is RFC 8259: anything it accepts must parse
    return ok


# ------------------------------------------------------------------ templates from ids

def test_template_from_ids(setups):
    tok, cg, c = setups["json"]
    M, E = c.mask_id, c.eos_id
    b = {t[0]: i for i, t in enumerate(tok.token_bytes) if t}
    alpha = c.alphabet
    assert c.byte_level and alpha == bytes(sorted(set(CHARS["json"])))
    # interior masked run -> TokenGap(k); trailing run -> 0..k tokens = ByteGap(0, k, alphabet)
    ids = [b[ord("{")], M, M, b[ord(":")], M, M, M]
    assert c.template(ids) == Template([b"{", TokenGap(2), b":", ByteGap(0, 3, alpha)])
    # the first EOS cuts; what follows is ignored
    ids = [M, b[ord("[")], M, E, E, b[ord("1")]]
    assert c.template(ids) == Template([TokenGap(1), b"[", ByteGap(0, 1, alpha)])
    assert c.template([b[ord("1")], E, E]) == Template([b"1"])
    assert c.text([b[ord("1")], b[ord("0")], E, b[ord("a")]]) == b"10"
    # fixed prefix / suffix around the generated positions
    c2 = DiffusionConstraint(cg, mask_id=M, eos_id=E, prefix=b'{"a":', suffix="}", oracle=c.oracle)
    assert c2.template([M, M]) == Template([b'{"a":', ByteGap(0, 2, alpha), b"}"])
    # without an end token every position is one real token
    c3 = DiffusionConstraint(cg, mask_id=M, oracle=c.oracle)
    assert c3.template([M, M, b[ord("a")], M]) == Template([TokenGap(2), b"a", TokenGap(1)])


def test_multibyte_vocab_tail_is_a_union():
    tb = [b"{", b"}", b'"a"', b":", b"1", b",", b"", b""]
    tok = TokenizerInfo(tb, special_ids=[6, 7], stop_token_ids=[7])
    cg = GrammarCompiler(tok).compile_grammar(builtin_grammar("json"))
    c = DiffusionConstraint(cg, mask_id=6, eos_id=7)
    assert not c.byte_level
    assert c.templates([0, 6, 6]) == [Template([b"{", TokenGap(2)]), Template([b"{", TokenGap(1)]),
                                      Template([b"{"])]
    assert c.is_completable([0, 6, 6])          # {}
    assert not c.is_completable([0, 2, 6, 7])   # {"a" + at most one token
    assert c.is_completable([0, 2, 6, 6, 6])    # {"a":1}
    assert not c.is_completable([0, 2, 3, 7])
    # masks agree with trying every token
    for ids in ([0, 6, 6, 6, 6], [6, 2, 6, 6, 6], [0, 2, 3, 6, 6, 6, 6]):
        for pos in [i for i, t in enumerate(ids) if t == 6]:
            got = c.allowed(ids, pos)
            want = np.zeros(tok.vocab_size, dtype=bool)
            for t in range(tok.vocab_size):
                if t == 6 or (t == 7 and not c.eos_ok(ids, pos)):
                    continue
                want[t] = c.is_completable(c.with_choice(np.array(ids), pos, t))
            assert (got == want).all(), (ids, pos, got, want)


@pytest.mark.parametrize("name", ["json", "arithmetic"])
def test_allowed_matches_brute_force(setups, name):
    tok, cg, c = setups[name]
    rng = np.random.default_rng(1)
    M = c.mask_id
    # partially unmasked ids taken from a constrained run, then re-masked at random
    r = diffusion_generate(RandomLM(tok.vocab_size, 3), 8, constraint=c, mode="mask", seed=3)
    for _ in range(3):
        ids = r.ids.copy()
        ids[rng.random(8) < 0.6] = M
        if not c.is_completable(ids):
            continue
        for pos in np.flatnonzero(ids == M)[:3]:
            got = c.allowed(ids, int(pos))
            for t in range(tok.vocab_size):
                if t == M:
                    continue
                if t == c.eos_id and not c.eos_ok(ids, int(pos)):
                    assert not got[t]
                    continue
                assert got[t] == c.is_completable(c.with_choice(ids, int(pos), t)), (ids, pos, t)


@pytest.mark.parametrize("name", ["json", "arithmetic"])
def test_choice_ok_is_the_oracle_answer(setups, name):
    """The witness and window shortcuts of choice_ok never change an answer (window 2: most
    checks relax something; the multi-byte vocabulary exercises TokenGaps and tail unions)."""
    tok, cg, c0 = setups[name]
    c = DiffusionConstraint(cg, mask_id=c0.mask_id, eos_id=c0.eos_id, oracle=c0.oracle, window=2)
    plain = DiffusionConstraint(cg, mask_id=c0.mask_id, eos_id=c0.eos_id, oracle=c0.oracle, window=0)
    rng = np.random.default_rng(5)
    M, L = c.mask_id, 12
    checked = 0
    for seed in range(3):
        r = diffusion_generate(RandomLM(tok.vocab_size, seed), L, constraint=c, mode="rejection", seed=seed)
        ids = r.ids.copy()
        ids[rng.random(L) < 0.7] = M
        if not c.is_completable(ids):
            continue
        for pos in np.flatnonzero(ids == M)[:4]:
            for t in rng.choice(tok.vocab_size, 8, replace=False):
                if t == M:
                    continue
                want = bool(t != c.eos_id or c.eos_ok(ids, int(pos))) and \
                    plain.is_completable(plain.with_choice(ids, int(pos), int(t)))
                assert c.choice_ok(ids, int(pos), int(t)) == want, (ids, pos, t)
                checked += 1
    assert checked >= 40 and c.witness_hits > 0 and c.window_rejections > 0


def test_choice_ok_multibyte_vocab():
    tb = [b"{", b"}", b'"a"', b":", b"1", b",", b'":', b"[", b"]", b"", b""]
    tok = TokenizerInfo(tb, special_ids=[9, 10], stop_token_ids=[10])
    cg = GrammarCompiler(tok).compile_grammar(builtin_grammar("json"))
    c = DiffusionConstraint(cg, mask_id=9, eos_id=10, window=1)
    plain = DiffusionConstraint(cg, mask_id=9, eos_id=10, oracle=c.oracle, window=0)
    rng = np.random.default_rng(0)
    for _ in range(12):
        ids = rng.choice(9, 7)
        ids[rng.random(7) < 0.6] = 9
        if not plain.is_completable(ids):
            continue
        c.is_completable(ids)  # a witness to start from
        for pos in np.flatnonzero(ids == 9):
            for t in range(11):
                if t == 9:
                    continue
                want = bool(t != 10 or plain.eos_ok(ids, int(pos))) and \
                    plain.is_completable(plain.with_choice(ids, int(pos), t))
                assert c.choice_ok(ids, int(pos), t) == want, (ids, pos, t)


# ------------------------------------------------------------------ the sampler

@pytest.mark.parametrize("name", ["json", "arithmetic"])
@pytest.mark.parametrize("mode", ["rejection", "mask"])
def test_constrained_always_valid(setups, name, mode):
    tok, cg, c = setups[name]
    configs = [dict(length=8), dict(length=12, block_length=4), dict(length=16, tokens_per_step=2),
               dict(length=10, temperature=0.0)]
    for seed in range(3):
        for cfg in configs:
            r = diffusion_generate(RandomLM(tok.vocab_size, seed), constraint=c, mode=mode, seed=seed, **cfg)
            assert valid(name, cg, r.text), (mode, cfg, seed, r.text)
            assert not (r.ids == c.mask_id).any()
            e = np.flatnonzero(r.ids == c.eos_id)
            assert (e == np.arange(len(r.ids) - len(e), len(r.ids))).all()  # EOS only as a suffix


def test_mask_all_positions_valid(setups):
    tok, cg, c = setups["json"]
    for seed in range(2):
        r = diffusion_generate(RandomLM(tok.vocab_size, seed), 8, constraint=c, mode="mask",
                               mask_positions="all", seed=seed)
        assert valid("json", cg, r.text)


def test_no_eos_fills_every_position(setups):
    tok, cg, c = setups["arithmetic"]
    c3 = DiffusionConstraint(cg, mask_id=c.mask_id, oracle=c.oracle)
    lm = RandomLM(tok.vocab_size, 5)
    for mode in ("rejection", "mask"):
        r = diffusion_generate(lm, 9, constraint=c3, mode=mode, seed=1)
        assert len(r.text) == 9 and valid("arithmetic", cg, r.text)


@pytest.mark.parametrize("name", ["json", "arithmetic"])
def test_unconstrained_can_be_invalid(setups, name):
    tok, cg, c = setups[name]
    texts = [diffusion_generate(RandomLM(tok.vocab_size, s), 10, constraint=c, mode="none", seed=s).text
             for s in range(10)]
    assert sum(not valid(name, cg, t) for t in texts) >= 5


def test_deterministic_under_seed(setups):
    tok, cg, c = setups["json"]
    lm = RandomLM(tok.vocab_size, 2)
    for mode in ("none", "rejection", "mask"):
        a = diffusion_generate(lm, 12, constraint=c, mode=mode, seed=11, block_length=6)
        b = diffusion_generate(lm, 12, constraint=c, mode=mode, seed=11, block_length=6)
        assert (a.ids == b.ids).all() and a.text == b.text
    outs = {diffusion_generate(lm, 12, constraint=c, mode="rejection", seed=s).text for s in range(4)}
    assert len(outs) > 1


def test_errors(setups):
    tok, cg, c = setups["json"]
    lm = RandomLM(tok.vocab_size)
    with pytest.raises(StructgenError):
        diffusion_generate(lm, 4, mode="mask", mask_id=c.mask_id)  # no constraint
    c3 = DiffusionConstraint(cg, mask_id=c.mask_id, eos_id=c.eos_id, prefix=b"{", suffix=b"]", oracle=c.oracle)
    with pytest.raises(StructgenError):  # nothing fits between '{' and ']'
        diffusion_generate(lm, 3, constraint=c3, mode="rejection")


def test_mask_limit_fallback_stays_valid(setups, monkeypatch):
    """A mask past the oracle's limit is replaced by verifying candidates in Gumbel order."""
    tok, cg, c = setups["arithmetic"]
    c4 = DiffusionConstraint(cg, mask_id=c.mask_id, eos_id=c.eos_id, oracle=c.oracle)

    def too_big(ids, pos):
        raise LimitExceeded("test")

    monkeypatch.setattr(c4, "allowed", too_big)
    for seed in range(3):
        r = diffusion_generate(RandomLM(tok.vocab_size, seed), 10, constraint=c4, mode="mask", seed=seed)
        assert valid("arithmetic", cg, r.text) and r.limit_hits > 0


def test_witness_fallback_after_max_verify(setups, monkeypatch):
    """With no candidate verified (MAX_VERIFY = 0) every masked draw takes the witness's token:
    still a word, and every step is counted."""
    import structgen.decoding.diffusion.sampler as ds
    tok, cg, c = setups["json"]
    c5 = DiffusionConstraint(cg, mask_id=c.mask_id, eos_id=c.eos_id, oracle=c.oracle)

    def too_big(ids, pos):
        raise LimitExceeded("test")

    monkeypatch.setattr(c5, "allowed", too_big)
    monkeypatch.setattr(ds, "MAX_VERIFY", 0)
    r = diffusion_generate(RandomLM(tok.vocab_size, 1), 9, constraint=c5, mode="mask", seed=1)
    assert valid("json", cg, r.text) and r.witness_fallbacks == r.steps > 0
    # rejection with the witness as its fallback: no mask is ever computed
    r = diffusion_generate(RandomLM(tok.vocab_size, 2), 9, constraint=c5, mode="rejection", seed=2, max_redraws=0,
                           fallback="witness")
    assert valid("json", cg, r.text) and r.witness_fallbacks == r.fallbacks > 0


def test_transformers_masked_lm_adapter_with_a_tiny_random_model(setups):
    """The transformers adapter (as LLaDA/Dream users would use it), on a tiny random BERT on CPU."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from structgen.decoding.diffusion.sampler import TransformersMaskedLM

    tok, cg, c = setups["json"]
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    model = transformers.BertForMaskedLM(config).eval()
    lm = TransformersMaskedLM(model, prefix_ids=[0, 1])
    ids = np.full(10, c.mask_id)
    got = lm.logits(ids)
    assert got.shape == (10, tok.vocab_size)
    with torch.no_grad():
        full = model(input_ids=torch.tensor([[0, 1] + ids.tolist()])).logits[0, 2:].numpy()
    np.testing.assert_allclose(got, full, atol=1e-5)
    shifted = TransformersMaskedLM(model, shifted=True).logits(ids)
    np.testing.assert_allclose(shifted[1:], TransformersMaskedLM(model).logits(ids)[:-1], atol=1e-5)
    for seed in range(3):
        r = diffusion_generate(lm, 10, constraint=c, mode="rejection", seed=seed)
        assert valid("json", cg, r.text), r.text
