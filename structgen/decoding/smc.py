"""Sequential Monte Carlo (SMC) with AWRS proposals: properly weighted samples from the model
conditioned on the grammar.

Target (as in :mod:`structgen.decoding.asap`):  Q(w) ∝ P(w · stop | prompt) for token sequences w
whose text is in L(G), len(w) <= ``max_new_tokens``, P the model at ``temperature``.  With a
``critic`` the target is Q(w)·exp(critic(w, True)) (see below).

N particles grow one token per step.  Each active particle draws its next token with
:class:`~structgen.decoding.awrs.AWRS` and multiplies its weight by the step's Ẑ (an unbiased
estimate of the allowed mass Σ_{t allowed} p(t | prefix)).  The product over a finished particle
is then an unbiased estimate of P(w · stop) / proposal(w): the particles are properly weighted
for Q.  A particle whose step finds no allowed token (a dead end, e.g. at the budget before the
output is complete) gets weight 0.

**Particles on one prefix** (``expand_shared``, on by default; every particle at the first step,
and the copies a resampling made) are one particle of their summed weight W, whose exact children
are every allowed token t with weight W·p(t) (one full mask).  :func:`pick_children` cuts them down
to as many as there were particles, unbiasedly: every child at least once where they are fewer,
the rest of the particles in proportion to p (copies share the child's weight), else Fearnhead and
Clifford's resampling without replacement.  Independent AWRS draws would often miss a child the
model dislikes but Q favours (a short word whose first token has 1% of the mass: 20 draws miss it
82% of the time), and no reweighting recovers a word no particle holds.

**Resampling.**  When the effective sample size ESS = (Σw)² / Σw² of the unfinished particles
falls below ``ess_threshold``·N, they are resampled (multinomial or systematic) up to N particles
again with the finished ones, and every weight set to the mean, which keeps Ẑ = Σw / N an unbiased
estimate of Z = Σ_w P(w · stop).  Finished particles keep their weights (resampling them adds
noise and no work), and a step that expanded a prefix does not resample: its children are weighted
by p(t), and resampling on those would drop the rare child before its next step says what it is
worth.

**Critic (twist).**  ``critic(token_ids, finished) -> float`` is a log-potential.  After every step
a particle's weight is multiplied by exp(critic(prefix, False) - previous value) (the twist
ratio), and at its end by exp(critic(w, True) - previous value), so intermediate values only
guide resampling and the final ones reweight the target.  Return 0 for finished outputs for a pure
twist that leaves Q unchanged.

**Model calls.**  Each step makes one batched call for the distinct prefixes of the active
particles (duplicates after resampling share a row): a model with
``batch_next_token_logits(prompt_ids, prefixes)`` (e.g. the KV-cached
:class:`structgen.integrations.transformers.KVBatchModel`) gets them as one forward; any
:class:`~structgen.decoding.lm.NextTokenModel` is called once per prefix.

**Matchers.**  Every particle owns a :class:`GrammarMatcher`.  After resampling, the first copy of
an ancestor keeps its matcher; further copies get a fork (the matcher's ``fork()`` if it has one,
else a fresh matcher that replays the tokens).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from structgen.errors import StructgenError
from structgen.matcher import GrammarMatcher

from .awrs import AWRS, AWRSStats, AWRSStep, allowed_flags
from .lm import NextTokenModel

__all__ = ["BatchNextTokenModel", "Particle", "SMCResult", "SMCSampler", "combine_runs", "fork_matcher", "pick_children",
           "posterior_kl"]

_NEG_INF = -math.inf
Critic = Callable[[tuple[int, ...], bool], float]


@runtime_checkable
class BatchNextTokenModel(Protocol):
    """A model that evaluates many prefixes of one prompt in one call: (len(prefixes), vocab) logits."""

    def batch_next_token_logits(self, prompt_ids: Sequence[int], prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        """Next-token logits after ``prompt_ids + prefix`` for every prefix, one row each."""
        ...


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x)) if x.size else _NEG_INF
    if m == _NEG_INF:
        return _NEG_INF
    return m + math.log(float(np.sum(np.exp(x - m))))


def fork_matcher(matcher: GrammarMatcher, token_ids: Sequence[int]) -> GrammarMatcher:
    """An independent matcher in the same state (``matcher`` has accepted exactly ``token_ids``)."""
    fork = getattr(matcher, "fork", None)
    if fork is not None:
        return fork()
    out = GrammarMatcher(matcher.compiled_grammar)
    if out.accept_tokens(token_ids) != len(token_ids):  # pragma: no cover - the original accepted them
        raise StructgenError("fork_matcher: the grammar refused a token its twin accepted")
    return out


@dataclass
class Particle:
    """One particle at the end: tokens (stop excluded), stop id (-1 if it never finished), text, log weight."""

    token_ids: tuple[int, ...]
    stop_id: int
    text: str
    log_weight: float

    @property
    def finished(self) -> bool:
        """Whether it ended with a stop token at a complete word."""
        return self.stop_id >= 0


@dataclass
class SMCResult:
    """The weighted particle set of one SMC run and its counters.

    ``log_ml`` is the log of the mean final weight, whose mean over runs is Z = Σ_w P(w · stop)
    (times the critic's factor); :meth:`posterior` the normalized weights per output.
    """

    particles: list[Particle]
    log_ml: float
    resamples: int
    steps: int
    model_calls: int
    forward_batches: int
    awrs: dict[str, float] = field(default_factory=dict)

    @property
    def ess(self) -> float:
        """Effective sample size of the final weights (0 if all are 0)."""
        w = np.array([p.log_weight for p in self.particles], dtype=np.float64)
        total = _logsumexp(w)
        if total == _NEG_INF:
            return 0.0
        return float(math.exp(-_logsumexp(2 * (w - total))))

    def posterior(self, by: str = "text") -> dict[Any, float]:
        """Normalized weight per finished output (``by``: "text" or "tokens"), most probable first."""
        if by not in ("text", "tokens"):
            raise StructgenError(f"posterior(by=...) is 'text' or 'tokens', got {by!r}")
        done = [p for p in self.particles if p.finished and p.log_weight > _NEG_INF]
        if not done:
            return {}
        w = np.array([p.log_weight for p in done], dtype=np.float64)
        w = np.exp(w - _logsumexp(w))
        out: dict[Any, float] = {}
        for p, x in zip(done, w.tolist()):
            key = p.text if by == "text" else p.token_ids
            out[key] = out.get(key, 0.0) + x
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def combine_runs(results: Sequence[SMCResult], by: str = "tokens") -> dict[Any, float]:
    """One posterior from independent runs: each run's posterior weighted by its Ẑ (``exp(log_ml)``)."""
    logs = np.array([r.log_ml for r in results], dtype=np.float64)
    total = _logsumexp(logs)
    if total == _NEG_INF:
        return {}
    out: dict[Any, float] = {}
    for r, lw in zip(results, logs.tolist()):
        if lw == _NEG_INF:
            continue
        for k, v in r.posterior(by).items():
            out[k] = out.get(k, 0.0) + v * math.exp(lw - total)
    return out


class _State:
    """A particle while it runs."""

    __slots__ = ("tokens", "matcher", "logw", "twist", "stop", "done")

    def __init__(self, matcher: GrammarMatcher | None) -> None:
        self.tokens: list[int] = []
        self.matcher = matcher
        self.logw = 0.0
        self.twist = 0.0
        self.stop = -1
        self.done = False

    def copy(self, matcher: GrammarMatcher | None) -> _State:
        out = _State(matcher)
        out.tokens = list(self.tokens)
        out.logw, out.twist, out.stop, out.done = self.logw, self.twist, self.stop, self.done
        return out


class SMCSampler:
    """SMC over token sequences with AWRS proposals (N=1 and ``ess_threshold=0``: one AWRS sample).

    ``model`` is a :class:`BatchNextTokenModel` or any :class:`NextTokenModel`; ``prompt_ids`` the
    prompt (chat template applied).  See the module docstring for the target, weights and critic.
    """

    def __init__(self, model: NextTokenModel | BatchNextTokenModel, compiled_grammar: Any,
                 prompt_ids: Sequence[int] = (), *, n_particles: int = 10, ess_threshold: float = 0.5,
                 max_new_tokens: int = 64, temperature: float = 1.0, resampling: str = "multinomial",
                 critic: Critic | None = None, mask_after: int = 8, expand_shared: bool = True,
                 seed: int = 0) -> None:
        if n_particles < 1:
            raise StructgenError(f"n_particles must be >= 1, got {n_particles}")
        if not 0.0 <= ess_threshold <= 1.0:
            raise StructgenError(f"ess_threshold is a fraction of the particles in [0, 1], got {ess_threshold}")
        if max_new_tokens < 1:
            raise StructgenError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if resampling not in ("multinomial", "systematic"):
            raise StructgenError(f"resampling is 'multinomial' or 'systematic', got {resampling!r}")
        self.model = model
        self.compiled_grammar = compiled_grammar
        self.prompt_ids = [int(t) for t in prompt_ids]
        self.n_particles = int(n_particles)
        self.ess_threshold = float(ess_threshold)
        self.max_new_tokens = int(max_new_tokens)
        self.resampling = resampling
        self.critic = critic
        self.expand_shared = bool(expand_shared)
        self.awrs = AWRS(compiled_grammar, temperature=temperature, mask_after=mask_after)
        self._stops = set(int(t) for t in self.awrs.stop_ids.tolist())
        self._info = compiled_grammar.tokenizer_info
        self._rng = np.random.default_rng(seed)
        self._batched = isinstance(model, BatchNextTokenModel)

    def _logits(self, prefixes: list[tuple[int, ...]]) -> np.ndarray:
        """(len(prefixes), vocab) logits: one batched call, or one call per prefix."""
        if self._batched:
            return np.asarray(self.model.batch_next_token_logits(self.prompt_ids, prefixes))
        return np.stack([np.asarray(self.model.next_token_logits(self.prompt_ids, list(p))) for p in prefixes])

    def run(self, seed: int | None = None) -> SMCResult:
        """One SMC run; ``seed`` starts a fresh random stream (None continues the sampler's)."""
        rng = self._rng if seed is None else np.random.default_rng(seed)
        stats_before = AWRSStats(**vars(self.awrs.stats))
        n = self.n_particles
        parts = [_State(GrammarMatcher(self.compiled_grammar)) for _ in range(n)]
        resamples = calls = batches = steps = 0
        for depth in range(self.max_new_tokens + 1):
            active = [p for p in parts if not p.done]
            if not active:
                break
            groups: dict[tuple[int, ...], list[_State]] = {}
            for p in active:
                groups.setdefault(tuple(p.tokens), []).append(p)
            logits = self._logits(list(groups))
            probs = [self.awrs.probs(row) for row in logits[:len(groups)]]  # one softmax per distinct prefix
            calls += len(groups)
            batches += 1
            steps += 1
            at_budget = depth >= self.max_new_tokens
            childless: list[_State] = []
            expanded = False
            for members, row in zip(groups.values(), probs):
                if len(members) > 1 and self.expand_shared:
                    childless += self._expand(members, row, rng, at_budget)
                    expanded = True
                else:
                    for p in members:
                        self._advance(p, row, rng, at_budget)
            if childless:
                gone = set(map(id, childless))
                parts = [p for p in parts if id(p) not in gone]
            # not right after an expansion: its children are weighted by their tokens' probabilities,
            # and resampling on those would redraw them in proportion to p, undoing it; a child's
            # next step (its Ẑ) comes in first
            active = [p for p in parts if not p.done]
            if self.ess_threshold > 0 and active and not expanded \
                    and self._ess(active) < self.ess_threshold * n:
                done = [p for p in parts if p.done]
                parts = done + self._resample(active, max(len(active), n - len(done)), rng)
                resamples += 1
        w = np.array([p.logw for p in parts], dtype=np.float64)
        out = [Particle(tuple(p.tokens), p.stop, self._text(p.tokens), float(p.logw)) for p in parts]
        awrs = self.awrs.stats
        delta = AWRSStats(awrs.steps - stats_before.steps, awrs.mask_steps - stats_before.mask_steps,
                          awrs.rejections - stats_before.rejections, awrs.tests - stats_before.tests)
        return SMCResult(out, _logsumexp(w) - math.log(n), resamples, steps, calls, batches, delta.to_json())

    def _advance(self, p: _State, probs: np.ndarray, rng: np.random.Generator, at_budget: bool) -> None:
        """One AWRS step of particle ``p`` (its weight times Ẑ, then the critic's ratio)."""
        r = self.awrs.step(None, p.matcher, rng, stop_only=at_budget, probs=probs)
        if r.token < 0:
            p.logw, p.done = _NEG_INF, True
            return
        p.logw += r.log_weight
        self._take(p, r.token)

    def _expand(self, members: list[_State], probs: np.ndarray, rng: np.random.Generator,
                at_budget: bool) -> list[_State]:
        """The next tokens of particles that share a prefix (returns the particles left without one).

        The group is one particle of their summed weight W; its exact children (every allowed token
        t, weight W·p(t)) are spread over the members by `pick_children`, unbiasedly: each child
        once at least where they are fewer than the members, else at most one particle each, a
        token with 3% of the mass kept with probability min(1, 3%/τ), not the 1 - 0.97^k of k
        independent draws.  Costs one full mask per group."""
        m = members[0].matcher
        if at_budget:  # only a stop token, if the output is complete
            w = np.zeros_like(probs)
            if m.is_accepting():
                w[self.awrs.stop_ids] = probs[self.awrs.stop_ids]
        else:
            w = np.where(allowed_flags(m, self.awrs.vocab_size), probs, 0.0)
        ids = np.flatnonzero(w > 0.0)
        if ids.size == 0:
            for p in members:
                p.logw, p.done = _NEG_INF, True
            return []
        log_total = _logsumexp(np.array([p.logw for p in members], dtype=np.float64))
        picks, weights = pick_children(w[ids], len(members), rng)
        for p, j, cw in zip(members, picks.tolist(), weights.tolist()):
            token = int(ids[j])
            p.logw = log_total + math.log(cw)
            self.awrs.stats.add(AWRSStep(token, math.log(cw), 0, 0, True))
            self._take(p, token)
        return members[len(picks):]

    def _take(self, p: _State, token: int) -> None:
        """Append ``token`` to particle ``p`` (a stop token finishes it), then the critic's ratio."""
        if not p.matcher.accept_token(token):  # pragma: no cover - AWRS or the mask tested it
            raise StructgenError(f"the matcher refused token {token} that AWRS accepted")
        if token in self._stops:
            p.stop, p.done = token, True
        else:
            p.tokens.append(token)
        if self.critic is not None and p.logw > _NEG_INF:
            value = float(self.critic(tuple(p.tokens), p.done))
            p.logw += value - p.twist if value > _NEG_INF else _NEG_INF
            p.twist = value
            if value == _NEG_INF:
                p.done = True

    @staticmethod
    def _ess(parts: list[_State]) -> float:
        w = np.array([p.logw for p in parts], dtype=np.float64)
        total = _logsumexp(w)
        if total == _NEG_INF:
            return float(len(parts))  # all dead: nothing to resample from
        return float(math.exp(-_logsumexp(2 * (w - total))))

    def _resample(self, parts: list[_State], n: int, rng: np.random.Generator) -> list[_State]:
        """Draw n ancestors among the unfinished particles `parts` (finished ones keep their weights:
        resampling them adds noise and no work; n fills the population up to N again where an
        expansion left fewer) in proportion to the weights; every weight becomes their total over n,
        so the population's total is unchanged."""
        w = np.array([p.logw for p in parts], dtype=np.float64)
        total = _logsumexp(w)
        probs = np.exp(w - total)
        c = np.cumsum(probs)
        c /= c[-1]
        u = (rng.random() + np.arange(n)) / n if self.resampling == "systematic" else np.sort(rng.random(n))
        ancestors = np.minimum(np.searchsorted(c, u, side="right"), len(parts) - 1)
        mean = total - math.log(n)
        used: set[int] = set()
        out = []
        for a in ancestors.tolist():
            src = parts[a]
            if a in used and not src.done:
                child = src.copy(fork_matcher(src.matcher, src.tokens))
            else:
                child = src if a not in used else src.copy(None)
            used.add(a)
            child.logw = mean
            out.append(child)
        return out

    def _text(self, tokens: Sequence[int]) -> str:
        return self._info.decode_bytes(list(tokens)).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ many runs

    def posterior(self, runs: int = 1, by: str = "text") -> tuple[dict[Any, float], list[SMCResult]]:
        """``runs`` independent runs combined (:func:`combine_runs`), and the runs."""
        results = [self.run() for _ in range(runs)]
        return combine_runs(results, by), results


def pick_children(w: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """k picks (indices) of the positive weights ``w`` and a weight for each, such that
    E[Σ_picks weight·f(i)] = Σ_i w_i·f(i) for every f.

    len(w) <= k: every index at least once, the other picks in proportion to w (systematic), and
    index i's copies share w_i (exact: no randomness in any index's total).  Else Fearnhead and
    Clifford's resampling: the largest, w_i >= τ, are kept as they are, and k minus their number
    of the others are drawn by systematic sampling with probabilities w_i/τ, each weighted τ."""
    n = len(w)
    w = np.asarray(w, dtype=np.float64)
    if n <= k:
        counts = np.ones(n, dtype=np.int64)
        if k > n:
            c = np.cumsum(w)
            c *= (k - n) / c[-1]
            counts += np.bincount(np.minimum(np.searchsorted(c, rng.random() + np.arange(k - n), side="right"), n - 1),
                                  minlength=n)
        return np.repeat(np.arange(n), counts), np.repeat(w / counts, counts)
    order = np.argsort(-w, kind="stable")
    s = w[order]
    rest = np.cumsum(s[::-1])[::-1]  # rest[j] = s[j] + s[j + 1] + ...
    j = 0
    while s[j] * (k - j) >= rest[j]:  # stops before k: rest[k - 1] > s[k - 1] as n > k
        j += 1
    tau = rest[j] / (k - j)
    c = np.cumsum(s[j:] / tau)
    c *= (k - j) / c[-1]
    drawn = np.unique(np.minimum(np.searchsorted(c, rng.random() + np.arange(k - j), side="right"), len(c) - 1))
    return (np.concatenate([order[:j], order[j + drawn]]),
            np.concatenate([s[:j], np.full(len(drawn), tau)]))


def posterior_kl(estimate: Mapping[Any, float], log_q: Mapping[Any, float]) -> float:
    """KL(estimate || Q) in nats for a normalized estimate (probabilities) and Q (log-probabilities)."""
    from .exact_target import kl_divergence

    return kl_divergence({k: math.log(v) for k, v in estimate.items() if v > 0}, log_q)
