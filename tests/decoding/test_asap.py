"""structgen.decoding.asap: grammar-aligned sampling (ASAp) against exact targets on toy models.

The toy models are explicit next-token tables over tiny vocabularies, so the target Q, GCD's
distribution and every expected-future-grammaticality (EFG) value are computed exactly.
Tests marked slow load the embedded SmolLM2 (llama.cpp and transformers) on a tiny grammar.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import structgen
from structgen.decoding.asap import ASApSampler
from structgen.decoding.exact_target import empirical_kl, enumerate_language, extend_enumeration, kl_divergence
from structgen.decoding.lm import MemoModel, TableModel
from structgen.errors import StructgenError

EOS, A, B = 0, 1, 2


# ------------------------------------------------------------------ the hand-computed toy

@pytest.fixture(scope="module")
def ab_grammar():
    """L = {"aa", "b"} over the vocabulary <eos>, "a", "b"."""
    tok = structgen.TokenizerInfo([b"<eos>", b"a", b"b"], special_ids=[EOS], stop_token_ids=[EOS])
    return structgen.GrammarCompiler(tok).compile_grammar('start: "aa" | "b"')


#   P(.|"")  : eos .2  a .6  b .2      P(aa·eos) = .6 · .1 · .5 = .03
#   P(.|a)   : eos .4  a .1  b .5      P(b·eos)  = .2 · .8      = .16
#   P(.|aa)  : eos .5  a .3  b .2      Q(aa) = .03/.19, Q(b) = .16/.19
#   P(.|b)   : eos .8  a .1  b .1      GCD(aa) = .6/.8 = .75, GCD(b) = .25
AB_TABLE = {(): [0.2, 0.6, 0.2], (A,): [0.4, 0.1, 0.5], (A, A): [0.5, 0.3, 0.2], (B,): [0.8, 0.1, 0.1]}
AB_Q = {(A, A): 0.03 / 0.19, (B,): 0.16 / 0.19}
AB_GCD = {(A, A): 0.75, (B,): 0.25}


def ab_model() -> TableModel:
    return TableModel(3, AB_TABLE)


def test_hand_computed_target_and_gcd_bias(ab_grammar) -> None:
    e = enumerate_language(ab_model(), ab_grammar, max_new_tokens=8)
    q = {w: math.exp(v) for w, v in e.log_q().items()}
    assert q == pytest.approx(AB_Q, rel=1e-6)
    assert math.exp(e.log_z) == pytest.approx(0.19, rel=1e-6)
    assert e.log_pruned == -math.inf and e.model_calls == 4
    gcd = ASApSampler(ab_model(), ab_grammar, learning=False)
    got = np.exp(gcd.proposal_logprobs([(w, EOS) for w in AB_GCD]))
    assert got == pytest.approx(list(AB_GCD.values()), rel=1e-6)
    bias = kl_divergence({w: math.log(p) for w, p in AB_GCD.items()}, {w: math.log(p) for w, p in AB_Q.items()})
    assert bias == pytest.approx(0.75 * math.log(0.75 * 0.19 / 0.03) + 0.25 * math.log(0.25 * 0.19 / 0.16))


def test_first_asap_sample_is_distributed_as_gcd(ab_grammar) -> None:
    fresh = ASApSampler(ab_model(), ab_grammar)
    got = np.exp(fresh.proposal_logprobs([(w, EOS) for w in AB_GCD]))
    assert got == pytest.approx(list(AB_GCD.values()), rel=1e-6)
    for seed in range(20):  # same seed, same random stream: the very same first sample
        a = ASApSampler(ab_model(), ab_grammar).sample(1, seed=seed)[0]
        g = ASApSampler(ab_model(), ab_grammar, learning=False).sample(1, seed=seed)[0]
        assert (a.token_ids, a.stop_id, a.logprob) == (g.token_ids, g.stop_id, g.logprob)


def test_bounds_after_one_sample_are_the_hand_computed_ones(ab_grammar) -> None:
    s = ASApSampler(ab_model(), ab_grammar)
    seed = next(k for k in range(100) if ASApSampler(ab_model(), ab_grammar).sample(1, seed=k)[0].token_ids == (A, A))
    (x,) = s.sample(1, seed=seed)
    assert x.text == "aa" and x.logprob == pytest.approx(math.log(0.03), rel=1e-6)
    assert x.proposal_logprob == pytest.approx(math.log(0.75), rel=1e-6)
    assert math.exp(s.log_value((A, A))) == pytest.approx(0.5, rel=1e-6)    # P(eos | aa)
    assert math.exp(s.log_value((A,))) == pytest.approx(0.05, rel=1e-6)     # .1 · .5
    assert math.exp(s.log_value(())) == pytest.approx(0.6 * 0.05 + 0.2, rel=1e-6)  # "b" unvisited: 1
    # the next sample is drawn with weights .6·.05 : .2·1 at the root
    nxt = np.exp(s.proposal_logprobs([((A, A), EOS), ((B,), EOS)]))
    assert nxt == pytest.approx([0.03 / 0.23, 0.2 / 0.23], rel=1e-6)


def test_asap_converges_to_q_on_the_hand_computed_toy(ab_grammar) -> None:
    s = ASApSampler(ab_model(), ab_grammar, seed=3)
    s.sample(20)
    assert math.exp(s.log_value(())) == pytest.approx(0.19, rel=1e-6)  # both branches explored: exact
    got = np.exp(s.proposal_logprobs([((A, A), EOS), ((B,), EOS)]))
    assert got == pytest.approx([AB_Q[(A, A)], AB_Q[(B,)]], rel=1e-6)


# ------------------------------------------------------------------ a larger random toy

BIN_TOKENS = [b"<eos>", b"0", b"1", b"00", b"11", b"01", b"10", b"x"]


@pytest.fixture(scope="module")
def bin_grammar():
    """Binary strings of length 1..3, with tokens of one and two characters (several tokenizations)."""
    tok = structgen.TokenizerInfo(BIN_TOKENS, special_ids=[0], stop_token_ids=[0])
    return structgen.GrammarCompiler(tok).compile_grammar('start: /[01]{1,3}/')


@pytest.fixture(scope="module")
def long_bin_grammar():
    """Binary strings of length 3..4 (with max_new_tokens=2 only two-character tokens finish)."""
    tok = structgen.TokenizerInfo(BIN_TOKENS, special_ids=[0], stop_token_ids=[0])
    return structgen.GrammarCompiler(tok).compile_grammar('start: /[01]{3,4}/')


def bin_model() -> TableModel:
    """A fixed random table per prefix that likes "x" and stopping early (the grammar bites)."""
    def probs(prefix: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng([11, len(prefix), *prefix])
        logits = rng.normal(0.0, 1.5, len(BIN_TOKENS))
        logits[7] += 2.0  # "x" is never allowed
        logits[0] += 1.0 if prefix else -2.0
        p = np.exp(logits)
        return p / p.sum()
    return TableModel(len(BIN_TOKENS), probs)


def gcd_distribution(model, cg, e, **kw) -> dict[tuple[int, ...], float]:
    seqs = list(e.sequences)
    lp = ASApSampler(model, cg, learning=False, **kw).proposal_logprobs([(w, 0) for w in seqs])
    return dict(zip(seqs, lp.tolist()))


def test_empirical_kl_falls_below_001_for_asap_and_stays_at_the_bias_for_gcd(bin_grammar) -> None:
    e = enumerate_language(bin_model(), bin_grammar, max_new_tokens=8)
    log_q = e.log_q()
    assert len(log_q) == 34  # 14 strings, 34 tokenizations
    bias = kl_divergence(gcd_distribution(bin_model(), bin_grammar, e, max_new_tokens=8), log_q)
    assert bias > 0.1
    n = 4000
    asap = ASApSampler(bin_model(), bin_grammar, max_new_tokens=8).sample(n, seed=1)
    gcd = ASApSampler(bin_model(), bin_grammar, max_new_tokens=8, learning=False).sample(n, seed=1)
    kl_asap, out_a = empirical_kl([s.token_ids for s in asap], log_q)
    kl_gcd, out_g = empirical_kl([s.token_ids for s in gcd], log_q)
    assert out_a == out_g == 0
    assert kl_asap < 0.01
    assert kl_gcd == pytest.approx(bias, rel=0.25)


def test_bounds_never_increase_and_always_upper_bound_the_exact_efg(bin_grammar) -> None:
    e = enumerate_language(bin_model(), bin_grammar, max_new_tokens=8)
    s = ASApSampler(bin_model(), bin_grammar, max_new_tokens=8, seed=5)
    previous: dict[tuple[int, ...], float] = {}
    for _ in range(150):
        s.sample(1)
        for prefix, node in s.nodes():
            assert node.logv <= previous.get(prefix, 0.0)
            assert node.logv >= e.log_efg(prefix) - 1e-9
            previous[prefix] = node.logv
    # the root's bound converges to the exact grammatical mass
    assert s.log_value(()) == pytest.approx(e.log_z, abs=0.05)


def test_model_calls_fall_as_the_trie_fills(bin_grammar) -> None:
    model = bin_model()
    s = ASApSampler(model, bin_grammar, max_new_tokens=8, seed=2)
    s.sample(400)
    per = s.stats.calls_per_sample
    assert len(per) == 400 and sum(per) == s.stats.model_calls == model.calls
    assert s.stats.model_calls <= len(enumerate_language(bin_model(), bin_grammar, max_new_tokens=8).prefix_logprob)
    assert np.mean(per[:20]) > 5 * np.mean(per[-200:])
    assert s.stats.calls_saved > 3 * s.stats.model_calls


def test_saved_trie_reloads_and_continues_identically(bin_grammar, tmp_path) -> None:
    a = ASApSampler(bin_model(), bin_grammar, max_new_tokens=8, seed=9)
    a.sample(60)
    a.save(tmp_path / "trie.npz")
    b = ASApSampler.load(tmp_path / "trie.npz", bin_model(), bin_grammar)
    assert list(b.nodes())[0][0] == () and len(list(b.nodes())) == len(list(a.nodes()))
    for sampler in (a, b):  # continue the saved random stream, then a fresh seed
        sampler.got = [(x.token_ids, x.logprob, x.proposal_logprob) for x in sampler.sample(80)]
        sampler.got += [(x.token_ids, x.logprob, x.proposal_logprob) for x in sampler.sample(40, seed=4)]
    assert a.got == b.got
    assert a.stats == b.stats
    for (pa, na), (pb, nb) in zip(a.nodes(), b.nodes()):
        assert pa == pb and na.logv == nb.logv
        np.testing.assert_array_equal(na.lp, nb.lp)
        np.testing.assert_array_equal(na.lv, nb.lv)


def test_a_trie_refuses_another_grammar_or_other_settings(bin_grammar, ab_grammar, tmp_path) -> None:
    a = ASApSampler(bin_model(), bin_grammar, max_new_tokens=8)
    a.sample(3)
    a.save(tmp_path / "t.npz")
    with pytest.raises(StructgenError, match="another grammar"):
        ASApSampler.load(tmp_path / "t.npz", ab_model(), ab_grammar)
    with pytest.raises(StructgenError, match="max_new_tokens=8"):
        a.sample(1, temperature=0.5)
    fresh = ASApSampler(bin_model(), bin_grammar)
    fresh.sample(1, max_new_tokens=5, temperature=0.5)  # an empty trie takes new settings
    assert (fresh.max_new_tokens, fresh.temperature) == (5, 0.5)


def test_budget_dead_ends_are_rejected_and_learned(long_bin_grammar) -> None:
    """max_new_tokens=2: 3-4 characters in two tokens, so "0" then "0" is a dead end (value 0)
    that GCD keeps walking into and ASAp learns to avoid."""
    g = long_bin_grammar
    e = enumerate_language(bin_model(), g, max_new_tokens=2)
    assert all(len(w) == 2 for w in e.sequences) and len(e.sequences) == 16 + 16
    asap = ASApSampler(bin_model(), g, max_new_tokens=2, seed=0)
    gcd = ASApSampler(bin_model(), g, max_new_tokens=2, seed=0, learning=False)
    a, g = asap.sample(1500), gcd.sample(1500)
    assert all(len(x.token_ids) <= 2 for x in a + g)
    assert gcd.stats.rejected > 2 * asap.stats.rejected > 0
    assert empirical_kl([x.token_ids for x in a], e.log_q())[0] < 0.02


def test_temperature_tempers_the_model_before_the_grammar(ab_grammar) -> None:
    e = enumerate_language(ab_model(), ab_grammar, max_new_tokens=8, temperature=2.0)
    p = {w: math.prod(AB_TABLE[w[:k]][t] ** 0.5 / sum(x ** 0.5 for x in AB_TABLE[w[:k]]) for k, t in
                      enumerate(w + (EOS,))) for w in AB_Q}
    z = sum(p.values())
    assert {w: math.exp(v) for w, v in e.log_q().items()} == pytest.approx({w: v / z for w, v in p.items()}, rel=1e-6)
    s = ASApSampler(ab_model(), ab_grammar, temperature=2.0, seed=1)
    s.sample(30)
    assert s.log_value(()) == pytest.approx(e.log_z, rel=1e-6)


def test_memory_budget_keeps_the_trie_small_and_the_bounds_sound(bin_grammar) -> None:
    e = enumerate_language(bin_model(), bin_grammar, max_new_tokens=8)
    s = ASApSampler(bin_model(), bin_grammar, max_new_tokens=8, seed=0, max_trie_bytes=3000)
    s.sample(300)
    assert s.stats.trie_bytes <= 3000 and s.stats.transient_nodes > 0
    assert s.stats.nodes == len(list(s.nodes())) < len(e.prefix_logprob)
    for prefix, node in s.nodes():
        assert node.logv >= e.log_efg(prefix) - 1e-9
    unbounded = ASApSampler(bin_model(), bin_grammar, max_new_tokens=8, seed=0)
    unbounded.sample(300)
    assert s.stats.model_calls > unbounded.stats.model_calls  # transient prefixes are evaluated again


def test_enumeration_pruning_bounds_the_missing_mass(bin_grammar) -> None:
    full = enumerate_language(bin_model(), bin_grammar, max_new_tokens=8)
    pruned = enumerate_language(bin_model(), bin_grammar, max_new_tokens=8, min_logprob=-6.0)
    assert set(pruned.sequences) < set(full.sequences)
    missing = math.exp(full.log_z) - math.exp(pruned.log_z)
    assert 0 < missing <= math.exp(pruned.log_pruned)
    relative = enumerate_language(bin_model(), bin_grammar, max_new_tokens=8, min_relative_logprob=-4.0)
    assert min(relative.prefix_logprob.values()) >= relative.log_z - 4.0 > max(full.sequences.values()) - 6
    # samples the pruned search missed get their exact probability
    samples = [s.token_ids for s in ASApSampler(bin_model(), bin_grammar, max_new_tokens=8).sample(300, seed=0)]
    outside = {w for w in samples if w not in relative.sequences}
    assert extend_enumeration(relative, bin_model(), bin_grammar, (), samples) == len(outside) > 0
    for w in outside:
        assert relative.sequences[w] == pytest.approx(full.sequences[w], abs=1e-9)


def test_memo_model_serves_repeated_prefixes(bin_grammar) -> None:
    inner = bin_model()
    memo = MemoModel(inner)
    enumerate_language(memo, bin_grammar, max_new_tokens=8)
    first = inner.calls
    ASApSampler(memo, bin_grammar, max_new_tokens=8).sample(100, seed=0)
    assert inner.calls == first == memo.misses == len(memo)


def test_empirical_kl_counts_samples_outside_the_support() -> None:
    log_q = {(1,): math.log(0.5), (2,): math.log(0.5)}
    assert empirical_kl([(1,), (2,)], log_q) == (0.0, 0)
    kl, outside = empirical_kl([(1,), (1,), (3,)], log_q)
    assert kl == pytest.approx(math.log(2)) and outside == 1
    assert kl_divergence({"a": 0.0}, {"b": 0.0}) == math.inf


# ------------------------------------------------------------------ SmolLM2 (slow)

PROMPT = "Write a binary number."


@pytest.fixture(scope="module")
def smol():
    from structgen.models import chat_prompt, load_default_tokenizer

    tok = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(tok)
    cg = structgen.GrammarCompiler(info).compile_grammar('start: /[01]{1,3}/')
    ids = tok(chat_prompt(tok, PROMPT), add_special_tokens=False)["input_ids"]
    return tok, cg, ids


@pytest.mark.slow
def test_llama_cpp_adapter_is_history_independent_and_asap_beats_gcd(smol) -> None:
    pytest.importorskip("llama_cpp")
    from structgen.decoding.lm import LlamaCppModel
    from structgen.models import load_default_llama

    tok, cg, ids = smol
    lm = LlamaCppModel(load_default_llama(n_threads=2))
    one = lm.next_token_logits(ids, [tok.convert_tokens_to_ids("1")])
    lm.next_token_logits(ids, [])
    lm.next_token_logits(ids + [5], [6, 7])
    np.testing.assert_array_equal(lm.next_token_logits(ids, [tok.convert_tokens_to_ids("1")]), one)
    memo = MemoModel(lm)
    e = enumerate_language(memo, cg, ids, max_new_tokens=4)
    assert len(e.sequences) == 14 and e.log_pruned == -math.inf
    asap = ASApSampler(memo, cg, ids, max_new_tokens=4)
    gcd = ASApSampler(memo, cg, ids, max_new_tokens=4, learning=False)
    asap.sample(300, seed=0)
    gcd.sample(300, seed=0)
    seqs = sorted(e.sequences)
    stop = cg.tokenizer_info.stop_token_ids[0]
    exact = [kl_divergence(dict(zip(seqs, s.proposal_logprobs([(w, stop) for w in seqs]).tolist())), e.log_q())
             for s in (asap, gcd)]
    assert exact[0] < min(0.01, exact[1])
    assert asap.stats.model_calls <= len(e.prefix_logprob)


@pytest.mark.slow
def test_transformers_adapter_matches_a_full_forward_and_cli_samples(smol) -> None:
    torch = pytest.importorskip("torch")
    from structgen.decoding.asap import cli_samples
    from structgen.decoding.lm import TransformersModel
    from structgen.models import chat_prompt, load_default_model

    tok, cg, ids = smol
    model = load_default_model()
    lm = TransformersModel(model)
    prefix = [tok.convert_tokens_to_ids("1"), tok.convert_tokens_to_ids("0")]
    lm.next_token_logits(ids, [])
    got = lm.next_token_logits(ids, prefix)
    with torch.no_grad():
        full = model(input_ids=torch.tensor([ids + prefix])).logits[0, -1].numpy()
    np.testing.assert_allclose(got, full, atol=1e-2)  # float32: KV-cached and full forwards differ by ~3e-3
    np.testing.assert_array_equal(lm.next_token_logits(ids, prefix), got)  # the cache was cropped back
    rows = cli_samples(cg, tok, chat_prompt(tok, PROMPT), 8, max_new_tokens=4, temperature=1.0, seed=0,
                       backend="transformers", model=model)
    assert sum(c for _, c in rows) == 8 and all(set(t) <= {"0", "1"} and 1 <= len(t) <= 3 for t, _ in rows)
    assert [c for _, c in rows] == sorted((c for _, c in rows), reverse=True)


def test_cli_samples_refuses_an_unknown_backend(ab_grammar) -> None:
    from structgen.decoding.asap import cli_samples

    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1]}

    with pytest.raises(StructgenError, match="unknown backend"):
        cli_samples(ab_grammar, Tok(), "x", 1, max_new_tokens=4, temperature=1.0, seed=0, backend="vllm",
                    model=object())
