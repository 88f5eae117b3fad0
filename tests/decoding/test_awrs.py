"""structgen.decoding.awrs: one AWRS step is properly weighted (E[Ẑ·1(x=t)] = p(t)·1[t allowed]).

Toy vocabularies small enough to know the exact allowed mass; fixed seeds, so the statistical
checks (5 standard errors) are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import structgen
from structgen.decoding.awrs import AWRS, allowed_flags
from structgen.errors import StructgenError

EOS = 0
TOKENS = [b"<eos>", b"0", b"1", b"00", b"11", b"01", b"10", b"x", b"<pad>"]


@pytest.fixture(scope="module")
def grammar():
    """Binary strings of length 1..3; "x" is never allowed, <pad> is special (pruned up front)."""
    tok = structgen.TokenizerInfo(TOKENS, special_ids=[0, 8], stop_token_ids=[EOS])
    return structgen.GrammarCompiler(tok).compile_grammar("start: /[01]{1,3}/")


def _logits(seed: int, x_boost: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, len(TOKENS))
    z[7] += x_boost
    return z


def _exact(aw: AWRS, logits: np.ndarray, matcher: structgen.GrammarMatcher) -> np.ndarray:
    """p(t)·1[t allowed] from the full mask."""
    return np.where(allowed_flags(matcher, aw.vocab_size), aw.probs(logits), 0.0)


def _check_properly_weighted(aw: AWRS, logits: np.ndarray, matcher, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vals = np.zeros((n, aw.vocab_size))
    for k in range(n):
        r = aw.step(logits, matcher, rng)
        if r.token >= 0:
            vals[k, r.token] = math.exp(r.log_weight)
    exact = _exact(aw, logits, matcher)
    mean, se = vals.mean(0), vals.std(0) / math.sqrt(n)
    assert np.all(np.abs(mean - exact) <= 5 * se + 1e-12), (mean, exact, se)
    z = vals.sum(1)
    assert abs(z.mean() - exact.sum()) <= 5 * z.std() / math.sqrt(n) + 1e-12


@pytest.mark.parametrize("prefix", [(), (2,), (3,), (1, 2, 1)])
@pytest.mark.parametrize("mask_after", [1, 2, 8])
def test_weights_are_unbiased_for_every_token(grammar, prefix, mask_after) -> None:
    m = structgen.GrammarMatcher(grammar)
    assert m.accept_tokens(prefix) == len(prefix)
    aw = AWRS(grammar, mask_after=mask_after)
    _check_properly_weighted(aw, _logits(len(prefix), x_boost=2.0), m, 4000, seed=mask_after)
    assert aw.stats.rejections > 0  # "x" and the refused tokens are proposed and rejected


def test_more_dummy_tests_stay_unbiased_with_less_variance(grammar) -> None:
    m = structgen.GrammarMatcher(grammar)
    m.accept_token(1)
    logits = _logits(3)
    spread = []
    for extra in (1, 3):
        aw = AWRS(grammar, extra_tests=extra, mask_after=50)
        _check_properly_weighted(aw, logits, m, 4000, seed=extra)
        rng = np.random.default_rng(0)
        spread.append(np.std([math.exp(aw.step(logits, m, rng).log_weight) for _ in range(2000)]))
    assert spread[1] < spread[0]


def test_the_token_is_distributed_as_the_constrained_distribution(grammar) -> None:
    m = structgen.GrammarMatcher(grammar)
    aw = AWRS(grammar)
    logits = _logits(5, x_boost=1.0)
    exact = _exact(aw, logits, m)
    rng = np.random.default_rng(1)
    n = 6000
    counts = np.bincount([aw.step(logits, m, rng).token for _ in range(n)], minlength=aw.vocab_size)
    pi = exact / exact.sum()
    assert np.all(np.abs(counts / n - pi) <= 5 * np.sqrt(pi * (1 - pi) / n) + 1e-12)


def test_mask_fallback_gives_the_exact_weight_and_leaves_the_matcher(grammar) -> None:
    m = structgen.GrammarMatcher(grammar)
    m.accept_tokens([1, 2])
    aw = AWRS(grammar, mask_after=0)
    logits = _logits(7)
    exact = _exact(aw, logits, m).sum()
    rng = np.random.default_rng(0)
    for _ in range(50):
        r = aw.step(logits, m, rng)
        assert r.used_mask and r.log_weight == pytest.approx(math.log(exact), rel=1e-12)
    assert aw.stats.to_json()["no_mask_fraction"] == 0.0
    assert m.accept_tokens([2]) == 1 and m.is_accepting()  # the state was left where it was


def test_stop_is_allowed_exactly_at_a_complete_word(grammar) -> None:
    aw = AWRS(grammar, mask_after=50)
    logits = np.full(len(TOKENS), -30.0)
    logits[EOS] = 5.0  # the model wants to stop at once
    logits[2] = 0.0
    m = structgen.GrammarMatcher(grammar)
    rng = np.random.default_rng(0)
    r = aw.step(logits, m, rng)
    assert r.token == 2 and r.rejections >= 1  # the empty output is not a word: stop refused
    m.accept_token(2)
    assert aw.step(logits, m, rng).token == EOS


def test_budget_step_draws_only_stop_tokens(grammar) -> None:
    aw = AWRS(grammar)
    logits = _logits(2)
    p = aw.probs(logits)
    m = structgen.GrammarMatcher(grammar)
    rng = np.random.default_rng(0)
    assert aw.step(logits, m, rng, stop_only=True).log_weight == -math.inf  # not complete yet
    m.accept_token(1)
    r = aw.step(logits, m, rng, stop_only=True)
    assert r.token == EOS and r.log_weight == pytest.approx(math.log(p[EOS]))


def test_nothing_allowed_gives_weight_zero(grammar) -> None:
    m = structgen.GrammarMatcher(grammar)
    m.accept_tokens([1, 2, 1])  # three characters: only stop may follow
    logits = _logits(4)
    logits[EOS] = -math.inf  # ...and the model never stops
    for mask_after in (0, 3, 50):
        r = AWRS(grammar, mask_after=mask_after).step(logits, m, np.random.default_rng(0))
        assert r.token == -1 and r.log_weight == -math.inf


def test_temperature_and_pruning(grammar) -> None:
    aw = AWRS(grammar, temperature=2.0)
    logits = _logits(0)
    p = aw.probs(logits)
    assert p[8] == 0.0 and p[EOS] > 0  # special non-stop tokens are pruned, stop tokens kept
    q = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum()
    np.testing.assert_allclose(p[:8], q[:8])
    with pytest.raises(StructgenError, match="temperature"):
        AWRS(grammar, temperature=0.0)
    with pytest.raises(StructgenError, match="logits"):
        aw.probs(np.zeros(3))
