"""Adaptive weighted rejection sampling (AWRS; Lipkin et al., "Fast Controlled Generation from
Language Models with Adaptive Weighted Rejection Sampling", 2025) over a :class:`GrammarMatcher`.

One step targets the model's next-token distribution p restricted to the tokens the grammar
allows, A (a stop token is in A iff the output so far is a complete word):

    π(t) = p(t)·1[t ∈ A] / Z,      Z = Σ_{t ∈ A} p(t).

Plain constrained decoding computes the full mask to find A.  AWRS instead draws tokens from p
*without replacement* and tests each one with ``accept_token`` (then ``rollback``): the first
accepted token x is distributed exactly as π.  Rejected tokens are not in A, so removing their
mass S₀ - S (S: the mass still in play) loses nothing.  The weight is

    Ẑ = p(x) + (S - p(x))·1[y ∈ A],   y ~ p over the tokens still in play other than x,

one more ("dummy") test after the acceptance.  Given x, E[Ẑ | x] = p(x) + Σ_{t ∈ A, t ≠ x} p(t) = Z,
so Ẑ is unbiased for Z whatever token was drawn, and (x, Ẑ) is properly weighted for the
unnormalized target p·1_A; this is the paper's recursive estimator (its multiplier
Π(1 - q_j) over the rejections telescopes to the remaining mass S).  ``extra_tests`` > 1 continues
the dummy draws without replacement (lower variance, more tests).

**Mask fallback.**  After ``mask_after`` rejections in one step the full mask is computed, x is
drawn from π directly and Ẑ = Z exactly; any step may switch to exact values without breaking
unbiasedness.  So the mask is only paid for where the model keeps proposing what the grammar
refuses.  Tokens that can never be accepted (special tokens other than the stop tokens, empty
tokens, logits past the tokenizer's vocabulary) are removed up front.

**Budget.**  With ``stop_only`` (the output reached its token budget) only the stop tokens are
candidates: Z is their mass if the output is complete, else 0.

Everything is float64 over the full vocabulary: one cumulative sum per step, one more per rejection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from structgen import bitset
from structgen.errors import StructgenError
from structgen.matcher import GrammarMatcher

__all__ = ["AWRS", "AWRSStep", "AWRSStats", "allowed_flags"]

_NEG_INF = -math.inf


def allowed_flags(matcher: GrammarMatcher, vocab_size: int) -> np.ndarray:
    """Boolean (vocab_size,) flags of the tokens the matcher's full mask allows."""
    return bitset.to_bool(matcher.next_token_bits(), vocab_size)


@dataclass
class AWRSStep:
    """One AWRS draw: the token (-1 if none is allowed), log Ẑ (-inf then) and what it cost."""

    token: int
    log_weight: float
    rejections: int
    tests: int
    used_mask: bool


@dataclass
class AWRSStats:
    """Counters over many steps (for benchmarks and ``--verbose``)."""

    steps: int = 0
    mask_steps: int = 0
    rejections: int = 0
    tests: int = 0

    def add(self, step: AWRSStep) -> None:
        """Count one step."""
        self.steps += 1
        self.mask_steps += int(step.used_mask)
        self.rejections += step.rejections
        self.tests += step.tests

    def to_json(self) -> dict[str, float]:
        """The counters plus the per-step means."""
        n = max(self.steps, 1)
        return {"steps": self.steps, "mask_steps": self.mask_steps, "rejections": self.rejections,
                "tests": self.tests, "no_mask_fraction": 1.0 - self.mask_steps / n,
                "rejections_per_step": self.rejections / n, "tests_per_step": self.tests / n}


class AWRS:
    """AWRS over a compiled grammar's matchers: :meth:`step` draws one token and its weight.

    ``temperature`` scales the logits before the softmax; ``mask_after`` is the number of
    rejections after which a step computes the full mask (0: always); ``extra_tests`` the dummy
    draws after an acceptance (1, as in the paper).
    """

    def __init__(self, compiled_grammar: object, *, temperature: float = 1.0, mask_after: int = 8,
                 extra_tests: int = 1) -> None:
        if not temperature > 0:
            raise StructgenError(f"AWRS needs a temperature > 0, got {temperature}")
        if mask_after < 0 or extra_tests < 1:
            raise StructgenError("AWRS: mask_after must be >= 0 and extra_tests >= 1")
        info = compiled_grammar.tokenizer_info
        if not info.stop_token_ids:
            raise StructgenError("the compiled grammar's tokenizer has no stop token ids")
        self.compiled_grammar = compiled_grammar
        self.temperature = float(temperature)
        self.mask_after = int(mask_after)
        self.extra_tests = int(extra_tests)
        self.vocab_size = int(info.vocab_size)
        self.stop_ids = np.array(sorted({int(t) for t in info.stop_token_ids}), dtype=np.int64)
        never = np.asarray(info.special_mask, dtype=bool).copy()
        never |= np.array([len(b) == 0 for b in info.token_bytes], dtype=bool)
        never[self.stop_ids] = False
        self._never = never  # tokens no matcher ever accepts
        self.stats = AWRSStats()

    # ------------------------------------------------------------------ distributions

    def probs(self, logits: np.ndarray) -> np.ndarray:
        """p = softmax(logits / T) in float64 over the tokenizer's vocabulary, never-accepted tokens zeroed."""
        x = np.asarray(logits, dtype=np.float64).reshape(-1)
        if x.shape[0] < self.vocab_size:
            raise StructgenError(f"the model gives {x.shape[0]} logits for a tokenizer of {self.vocab_size} tokens: "
                                 "compile the grammar with the model's tokenizer")
        if self.temperature != 1.0:
            x = x / self.temperature
        m = float(np.max(x))
        if not np.isfinite(m):
            raise StructgenError("the model returned no finite logit")
        p = np.exp(x - m)
        p /= p.sum()
        p = p[:self.vocab_size].copy()  # logits past the tokenizer's vocabulary are never accepted
        p[self._never] = 0.0
        return p

    # ------------------------------------------------------------------ one step

    def step(self, logits: np.ndarray | None, matcher: GrammarMatcher, rng: np.random.Generator, *,
             stop_only: bool = False, probs: np.ndarray | None = None) -> AWRSStep:
        """Draw a token from π and an unbiased estimate of log Z; the matcher is left unchanged.

        ``probs`` (``self.probs(logits)``, not modified) saves the softmax where many draws share logits."""
        p = self.probs(logits) if probs is None else probs.copy()
        if stop_only:
            out = self._stop_step(p, matcher, rng)
        elif self.mask_after == 0:
            out = self._mask_step(p, matcher, rng, 0, 0)
        else:
            out = self._rejection_step(p, matcher, rng)
        self.stats.add(out)
        return out

    def _test(self, matcher: GrammarMatcher, token: int) -> bool:
        """Whether the grammar allows ``token`` next (accept, then roll back)."""
        if matcher.accept_token(token):
            matcher.rollback(1)
            return True
        return False

    def _stop_step(self, p: np.ndarray, matcher: GrammarMatcher, rng: np.random.Generator) -> AWRSStep:
        """At the token budget: a stop token if the output is complete, with its exact mass."""
        w = p[self.stop_ids]
        z = float(w.sum())
        if not matcher.is_accepting() or z <= 0.0:
            return AWRSStep(-1, _NEG_INF, 0, 0, False)
        i = _draw(np.cumsum(w), rng)
        return AWRSStep(int(self.stop_ids[i]), math.log(z), 0, 0, False)

    def _mask_step(self, p: np.ndarray, matcher: GrammarMatcher, rng: np.random.Generator, rejections: int,
                   tests: int) -> AWRSStep:
        """Exact: the full mask gives A, x ~ π and Ẑ = Z."""
        w = np.where(allowed_flags(matcher, self.vocab_size), p, 0.0)
        c = np.cumsum(w)
        if c[-1] <= 0.0:
            return AWRSStep(-1, _NEG_INF, rejections, tests, True)
        return AWRSStep(_draw(c, rng), math.log(float(c[-1])), rejections, tests, True)

    def _rejection_step(self, p: np.ndarray, matcher: GrammarMatcher, rng: np.random.Generator) -> AWRSStep:
        c = np.cumsum(p)
        rejections = tests = 0
        while True:
            if c[-1] <= 0.0:  # every token with mass was refused: nothing is allowed
                return AWRSStep(-1, _NEG_INF, rejections, tests, False)
            x = _draw(c, rng)
            tests += 1
            if self._test(matcher, x):
                break
            rejections += 1
            if rejections >= self.mask_after:
                return self._mask_step(p, matcher, rng, rejections, tests)
            p[x] = 0.0  # p is this step's own copy
            c = np.cumsum(p)
        # x ~ π; estimate the allowed mass among the tokens still in play other than x
        start = float(c[x - 1]) if x > 0 else 0.0
        px = float(c[x]) - start
        rest = float(c[-1]) - px
        z_hat = px
        for k in range(self.extra_tests):
            if rest <= 0.0:
                break
            if k == 0:
                y = _draw_excluding(c, start, px, rest, rng)
            else:
                c = np.cumsum(p)
                y = _draw(c, rng)
            tests += 1
            py = float(p[y])
            if k == self.extra_tests - 1:  # the last dummy draw: a coin flip for all the mass left
                z_hat += rest if self._test(matcher, y) else 0.0
                break
            if self._test(matcher, y):
                z_hat += py
            if k == 0:
                p[x] = 0.0
            p[y] = 0.0
            rest -= py
        return AWRSStep(x, math.log(z_hat), rejections, tests, False)


def _draw(c: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn with probability proportional to the increments of the cumulative sum ``c``."""
    i = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
    return _positive_at_or_before(c, min(i, c.shape[0] - 1))


def _draw_excluding(c: np.ndarray, start: float, width: float, total: float, rng: np.random.Generator) -> int:
    """Like :func:`_draw` with the interval [start, start + width) of ``c`` taken out (``total`` is what is left)."""
    u = rng.random() * total
    if u >= start:
        u += width
    i = min(int(np.searchsorted(c, u, side="right")), c.shape[0] - 1)
    i = _positive_at_or_before(c, i)
    if (float(c[i - 1]) if i > 0 else 0.0) == start:  # rounding put u back on the excluded token
        j = i + 1 + int(np.searchsorted(c[i + 1:], c[i], side="right"))  # the next token with mass
        i = j if j < c.shape[0] else _positive_at_or_before(c, i - 1)
    return i


def _positive_at_or_before(c: np.ndarray, i: int) -> int:
    """The last index <= i whose increment is positive (rounding at the top of the range)."""
    while i > 0 and c[i] <= c[i - 1]:
        i -= 1
    return i
