"""structgen.decoding.smc: SMC with AWRS proposals against the exact target Q on toy models.

The toy models are explicit next-token tables, so Q = P(· | grammar) is enumerated exactly
(decoding.asap.enumerate_language).  Statistical checks use fixed seeds and 5 standard errors.
Tests marked slow run the embedded SmolLM2 through transformers (KV cache per particle).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import structgen
from structgen.decoding.asap import ASApSampler
from structgen.decoding.exact_target import enumerate_language, kl_divergence
from structgen.decoding.lm import MemoModel, TableModel
from structgen.decoding.smc import SMCSampler, combine_runs, fork_matcher, pick_children, posterior_kl
from structgen.errors import StructgenError

EOS, A, B = 0, 1, 2
BIN_TOKENS = [b"<eos>", b"0", b"1", b"00", b"11", b"01", b"10", b"x"]
AB_TABLE = {(): [0.2, 0.6, 0.2], (A,): [0.4, 0.1, 0.5], (A, A): [0.5, 0.3, 0.2], (B,): [0.8, 0.1, 0.1]}
AB_Q = {(A, A): 0.03 / 0.19, (B,): 0.16 / 0.19}  # GCD samples "aa" with probability .75


@pytest.fixture(scope="module")
def ab_grammar():
    """L = {"aa", "b"} over <eos>, "a", "b" (hand-computed in tests/decoding/test_asap.py)."""
    tok = structgen.TokenizerInfo([b"<eos>", b"a", b"b"], special_ids=[EOS], stop_token_ids=[EOS])
    return structgen.GrammarCompiler(tok).compile_grammar('start: "aa" | "b"')


@pytest.fixture(scope="module")
def bin_grammar():
    """Binary strings of length 1..3 with one- and two-character tokens (several tokenizations)."""
    tok = structgen.TokenizerInfo(BIN_TOKENS, special_ids=[0], stop_token_ids=[0])
    return structgen.GrammarCompiler(tok).compile_grammar("start: /[01]{1,3}/")


def bin_model() -> TableModel:
    """A fixed random table per prefix that likes "x" (never allowed) and stopping early."""
    def probs(prefix: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng([11, len(prefix), *prefix])
        logits = rng.normal(0.0, 1.5, len(BIN_TOKENS))
        logits[7] += 2.0
        logits[0] += 1.0 if prefix else -2.0
        p = np.exp(logits)
        return p / p.sum()
    return TableModel(len(BIN_TOKENS), probs)


def _weighted_indicators(sampler: SMCSampler, runs: int, support: list) -> np.ndarray:
    """Per run: exp(log_ml) · posterior(w) for each w in support (unbiased for P(w · stop))."""
    out = np.zeros((runs, len(support)))
    index = {w: i for i, w in enumerate(support)}
    for k in range(runs):
        r = sampler.run()
        for w, v in r.posterior("tokens").items():
            out[k, index[w]] += math.exp(r.log_ml) * v
    return out


@pytest.mark.parametrize("n_particles,ess,expand", [(1, 0.0, True), (8, 0.5, True), (8, 1.0, True), (8, 0.0, True),
                                                    (8, 0.5, False), (8, 1.0, False), (3, 0.5, True)])
def test_weighted_empirical_distribution_matches_the_exact_one(bin_grammar, n_particles, ess, expand) -> None:
    """E[Ẑ · posterior(w)] = P(w · stop) for every w (importance sampling, and SMC with resampling;
    particles on one prefix expanded into distinct children or drawn independently; 3 particles:
    fewer than the allowed tokens, so children are picked without replacement)."""
    memo = MemoModel(bin_model())
    e = enumerate_language(memo, bin_grammar, max_new_tokens=8)
    assert e.log_pruned == -math.inf
    support = sorted(e.sequences)
    exact = np.exp([e.sequences[w] for w in support])
    sampler = SMCSampler(memo, bin_grammar, n_particles=n_particles, ess_threshold=ess, max_new_tokens=8,
                         mask_after=3, expand_shared=expand, seed=n_particles)
    runs = 3000 if n_particles < 8 else 600
    vals = _weighted_indicators(sampler, runs, support)
    mean, se = vals.mean(0), vals.std(0) / math.sqrt(runs)
    # 5 standard errors; sequences too rare to be drawn at all (se = 0) get 0.1% of Z
    assert np.all(np.abs(mean - exact) <= 5 * se + 1e-3 * exact.sum())
    z = vals.sum(1)
    assert abs(z.mean() - math.exp(e.log_z)) <= 5 * z.std() / math.sqrt(runs)
    est = dict(zip(support, (mean / mean.sum()).tolist()))
    assert posterior_kl(est, e.log_q()) < 0.01


def test_smc_removes_the_gcd_bias_on_the_hand_computed_toy(ab_grammar) -> None:
    sampler = SMCSampler(TableModel(3, AB_TABLE), ab_grammar, n_particles=20, max_new_tokens=8, seed=0)
    post, runs = sampler.posterior(runs=200, by="tokens")
    assert post == pytest.approx(AB_Q, abs=0.02)
    assert np.mean([math.exp(r.log_ml) for r in runs]) == pytest.approx(0.19, abs=0.01)
    gcd = {(A, A): math.log(0.75), (B,): math.log(0.25)}
    log_q = {w: math.log(p) for w, p in AB_Q.items()}
    assert posterior_kl(post, log_q) < 0.01 < kl_divergence(gcd, log_q)


def test_resampling_forks_matchers_and_every_output_is_in_the_language(bin_grammar) -> None:
    sampler = SMCSampler(bin_model(), bin_grammar, n_particles=16, ess_threshold=1.0, max_new_tokens=8,
                         resampling="systematic", expand_shared=False, seed=3)
    for _ in range(20):
        r = sampler.run()
        assert r.resamples > 0 and r.steps <= 4
        for p in r.particles:
            assert p.finished and set(p.text) <= {"0", "1"} and 1 <= len(p.text) <= 3
            assert bin_grammar.tokenizer_info.decode_bytes(list(p.token_ids)).decode() == p.text
    m = structgen.GrammarMatcher(bin_grammar)
    m.accept_tokens([1, 2])
    f = fork_matcher(m, [1, 2])
    assert f.accept_token(1) and f.is_accepting()
    assert m.accept_token(5) is False and m.accept_token(2)  # the original did not move with the fork


@pytest.mark.parametrize("k", [3, 5, 8, 12])
def test_pick_children_is_unbiased_and_keeps_the_largest(k) -> None:
    """E[Σ weight · 1[pick = i]] = w_i (5 standard errors over fixed-seed draws); k picks when there are
    at most k weights (each index at least once), else at most k distinct ones, the largest always."""
    w = np.array([0.5, 0.2, 0.1, 0.08, 0.05, 0.04, 0.02, 0.01])
    rng = np.random.default_rng(k)
    draws = np.zeros((4000, len(w)))
    for r in range(len(draws)):
        picks, weights = pick_children(w, k, rng)
        np.add.at(draws[r], picks, weights)
        if k >= len(w):
            assert len(picks) == k and set(picks.tolist()) == set(range(len(w)))
        else:
            assert len(set(picks.tolist())) == len(picks) <= k and 0 in picks.tolist()
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert np.all(np.abs(mean - w) <= 5 * se + 1e-12)


def test_particles_on_one_prefix_keep_a_word_the_model_rarely_starts() -> None:
    """Q's favourite word "b" starts with a token the model gives 1%: independent draws of 20 particles
    miss it in ~82% of runs (0.99^20), distinct children never (every allowed first token is a child)."""
    tok = structgen.TokenizerInfo([b"<eos>", b"a", b"b"], special_ids=[EOS], stop_token_ids=[EOS])
    cg = structgen.GrammarCompiler(tok).compile_grammar('start: "b" | "a"+')

    def probs(prefix: tuple[int, ...]) -> np.ndarray:
        if prefix == (B,):
            return np.array([1.0, 0.0, 0.0])
        return np.array([0.01, 0.98, 0.01]) if not prefix else np.array([0.05, 0.95, 0.0])
    for seed in range(5):
        r = SMCSampler(TableModel(3, probs), cg, n_particles=20, max_new_tokens=6, seed=seed).run()
        assert r.posterior("tokens").get((B,), 0.0) > 0.0


def test_one_call_per_step_for_the_distinct_prefixes(bin_grammar) -> None:
    class Batched:
        def __init__(self) -> None:
            self.inner, self.calls, self.rows = bin_model(), 0, []

        def batch_next_token_logits(self, prompt_ids, prefixes):
            self.calls += 1
            self.rows.append(len(prefixes))
            assert len(set(map(tuple, prefixes))) == len(prefixes)
            return np.stack([self.inner.next_token_logits(prompt_ids, p) for p in prefixes])

    model = Batched()
    r = SMCSampler(model, bin_grammar, n_particles=12, max_new_tokens=8, seed=0).run()
    assert model.calls == r.forward_batches == r.steps and sum(model.rows) == r.model_calls
    assert model.rows[0] == 1  # twelve particles, one empty prefix


def test_critic_twist_keeps_the_target_and_a_final_critic_reweights_it(ab_grammar) -> None:
    model = TableModel(3, AB_TABLE)
    twist = lambda toks, done: 0.0 if done else (2.0 if toks[:1] == (A,) else -1.0)  # noqa: E731
    post, _ = SMCSampler(model, ab_grammar, n_particles=20, critic=twist, seed=1).posterior(runs=200, by="tokens")
    assert post == pytest.approx(AB_Q, abs=0.02)
    favour_aa = lambda toks, done: math.log(10.0) if done and toks == (A, A) else 0.0  # noqa: E731
    post, runs = SMCSampler(model, ab_grammar, n_particles=20, critic=favour_aa, seed=2).posterior(runs=200)
    assert post["aa"] == pytest.approx(0.3 / 0.46, abs=0.03)  # Q · critic: .03·10 vs .16
    assert np.mean([math.exp(r.log_ml) for r in runs]) == pytest.approx(0.46, abs=0.03)
    veto = lambda toks, done: -math.inf if toks[:1] == (B,) else 0.0  # noqa: E731
    post, _ = SMCSampler(model, ab_grammar, n_particles=8, critic=veto, seed=3).posterior(runs=5)
    assert post == {"aa": pytest.approx(1.0)}


def test_budget_dead_ends_get_weight_zero(bin_grammar) -> None:
    tok = bin_grammar.tokenizer_info
    long = structgen.GrammarCompiler(tok).compile_grammar("start: /[01]{3,4}/")
    r = SMCSampler(bin_model(), long, n_particles=30, ess_threshold=0.0, max_new_tokens=2, seed=0).run()
    for p in r.particles:  # in two tokens only two two-character tokens finish
        assert (p.log_weight > -math.inf) == (p.finished and len(p.text) in (3, 4))
    assert all(len(p.token_ids) == 2 for p in r.particles if p.finished)
    e = enumerate_language(bin_model(), long, max_new_tokens=2)
    assert set(r.posterior("tokens")) <= set(e.sequences)


def test_smc_beats_gcd_at_the_same_model_calls(bin_grammar) -> None:
    memo = MemoModel(bin_model())
    e = enumerate_language(memo, bin_grammar, max_new_tokens=8)
    log_q = e.log_q()
    gcd = ASApSampler(memo, bin_grammar, learning=False, max_new_tokens=8, seed=0)
    samples = gcd.sample(400)
    counts: dict = {}
    for s in samples:
        counts[s.token_ids] = counts.get(s.token_ids, 0) + 1
    gcd_kl = posterior_kl({k: v / len(samples) for k, v in counts.items()}, log_q)
    sampler = SMCSampler(memo, bin_grammar, n_particles=20, max_new_tokens=8, seed=0)
    runs = [sampler.run() for _ in range(20)]  # 400 particles in all
    assert posterior_kl(combine_runs(runs), log_q) < gcd_kl / 5


def test_settings_are_checked(ab_grammar) -> None:
    model = TableModel(3, AB_TABLE)
    for kw, msg in [({"n_particles": 0}, "n_particles"), ({"ess_threshold": 2.0}, "ess_threshold"),
                    ({"max_new_tokens": 0}, "max_new_tokens"), ({"resampling": "stratified"}, "resampling")]:
        with pytest.raises(StructgenError, match=msg):
            SMCSampler(model, ab_grammar, **kw)
    r = SMCSampler(model, ab_grammar, n_particles=4, seed=0).run()
    with pytest.raises(StructgenError, match="posterior"):
        r.posterior("bytes")
    assert 0 < r.ess <= 4


# ------------------------------------------------------------------ SmolLM2 (slow)


@pytest.mark.slow
def test_transformers_kv_batches_match_per_prefix_logits_and_smc_runs() -> None:
    torch = pytest.importorskip("torch")
    from structgen.decoding.lm import TransformersModel
    from structgen.integrations.transformers import KVBatchModel, smc_transformers
    from structgen.models import chat_prompt, load_default_model, load_default_tokenizer

    torch.manual_seed(0)
    tok = load_default_tokenizer()
    info = structgen.TokenizerInfo.from_huggingface(tok)
    cg = structgen.GrammarCompiler(info).compile_grammar("start: /[01]{1,3}/")
    model = load_default_model()
    prompt = chat_prompt(tok, "Write a binary number.")
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    one, zero = tok.convert_tokens_to_ids("1"), tok.convert_tokens_to_ids("0")
    kv, ref = KVBatchModel(model), TransformersModel(model)
    kv.batch_next_token_logits(ids, [[], []])
    kv.batch_next_token_logits(ids, [[one], [zero]])
    got = kv.batch_next_token_logits(ids, [[one, zero], [zero, zero], [one, one]])  # rows selected, one token run
    for row, prefix in zip(got, [[one, zero], [zero, zero], [one, one]]):
        np.testing.assert_allclose(row, ref.next_token_logits(ids, prefix), atol=1e-2)
    assert kv.calls == 3  # the prompt, then one forward per step
    r = smc_transformers(model, tok, cg, prompt, n_particles=4, max_tokens=4, seed=0)
    assert r.forward_batches == r.steps <= 5
    post = r.posterior()
    assert post and all(set(t) <= {"0", "1"} and 1 <= len(t) <= 3 for t in post)
    assert sum(post.values()) == pytest.approx(1.0)


def _cli(*args: str):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "structgen", "generate", *args], cwd=repo, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["--smc", "0", "--regex", "a"], "--smc needs a number of particles >= 1"),
    (["--smc", "2", "--asap", "2", "--regex", "a"], "different samplers"),
    (["--awrs", "--smc", "2", "--regex", "a"], "different samplers"),
])
def test_cli_refuses_bad_sampler_options(args, message) -> None:
    res = _cli(*args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_cli_smc_json_reports_weights_and_awrs_counters() -> None:
    import json

    res = _cli("--smc", "4", "--json", "--max-tokens", "8", "--regex", "(yes|no)", "Will it rain?")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert {s["output"] for s in out["samples"]} <= {"yes", "no"}
    assert sum(s["weight"] for s in out["samples"]) == pytest.approx(1.0)
    assert out["forward_batches"] <= 9 and 0.0 <= out["awrs"]["no_mask_fraction"] <= 1.0
