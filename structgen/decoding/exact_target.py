"""The exact target of grammar-aligned sampling: every finished token sequence of a (finite) language
with its model log-probability (a best-first enumeration), and KL divergences against it.
"""

from __future__ import annotations

import collections
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from structgen.errors import StructgenError
from structgen.matcher import GrammarMatcher

from .asap_trie import _NEG_INF, _allowed_ids, _log_softmax_at, _logsumexp
from .lm import NextTokenModel

__all__ = ["Enumeration", "enumerate_language", "extend_enumeration", "empirical_kl", "kl_divergence"]


@dataclass
class Enumeration:
    """The exact target: every finished token sequence of the language with its model log-prob.

    ``sequences`` maps token ids (stop excluded) to log P(ids · stop) summed over stop ids;
    ``prefix_logprob`` maps every expanded prefix to log P(prefix); ``log_pruned`` is the log
    of an upper bound on the unnormalized mass left out by pruning (-inf when exact).
    """

    sequences: dict[tuple[int, ...], float]
    prefix_logprob: dict[tuple[int, ...], float]
    log_pruned: float
    model_calls: int

    @property
    def log_z(self) -> float:
        """log Σ_w P(w · stop): the grammar's probability mass under the model."""
        return _logsumexp(np.fromiter(self.sequences.values(), dtype=np.float64))

    def log_q(self) -> dict[tuple[int, ...], float]:
        """log Q(w) for every enumerated w."""
        z = self.log_z
        return {w: lp - z for w, lp in self.sequences.items()}

    def log_efg(self, prefix: Sequence[int]) -> float:
        """log EFG(prefix) = log Σ_{w extends prefix} P(w · stop | prefix) (exact when nothing was pruned)."""
        prefix = tuple(int(t) for t in prefix)
        k = len(prefix)
        vals = [lp for w, lp in self.sequences.items() if w[:k] == prefix]
        if prefix not in self.prefix_logprob:
            return _NEG_INF
        return _logsumexp(np.array(vals, dtype=np.float64)) - self.prefix_logprob[prefix]


def enumerate_language(model: NextTokenModel, compiled_grammar: Any, prompt_ids: Sequence[int] = (), *,
                       max_new_tokens: int, temperature: float = 1.0, min_logprob: float = -math.inf,
                       min_relative_logprob: float = -math.inf, max_nodes: int = 1_000_000) -> Enumeration:
    """Every token sequence of the language with its probability: a matcher-guided best-first search.

    Uses the same log-probabilities (float32 per token) and budget as :class:`ASApSampler`, so a
    fully explored sampler converges to exactly this Q.  Prefixes are expanded most probable
    first; the search stops at the first prefix with log P < ``min_logprob`` or < log Z (found
    so far) + ``min_relative_logprob``, or after ``max_nodes`` model calls.  What is left
    unexpanded bounds the missing mass (:attr:`Enumeration.log_pruned`; -inf when exact).
    """
    info = compiled_grammar.tokenizer_info
    vocab = int(info.vocab_size)
    stops = np.array(sorted(set(int(t) for t in info.stop_token_ids)), dtype=np.int32)
    prompt = [int(t) for t in prompt_ids]
    matcher = GrammarMatcher(compiled_grammar)
    seqs: dict[tuple[int, ...], float] = {}
    prefix_lp: dict[tuple[int, ...], float] = {}
    log_z = _NEG_INF
    calls = 0
    heap: list[tuple[float, int, tuple[int, ...]]] = [(-0.0, 0, ())]
    pushed = 1
    while heap:
        neg, _, prefix = heap[0]
        logp = -neg
        if logp < min_logprob or logp < log_z + min_relative_logprob or calls >= max_nodes:
            break
        heapq.heappop(heap)
        prefix_lp[prefix] = logp
        matcher.reset()
        for t in prefix:
            if not matcher.accept_token(t):  # pragma: no cover - the mask said it was allowed
                raise StructgenError(f"the matcher rejected token {t} that its mask allowed")
        allowed = _allowed_ids(matcher, vocab)
        if len(prefix) >= max_new_tokens:
            allowed = allowed[np.isin(allowed, stops)]
        if allowed.size == 0:
            continue
        lp = _log_softmax_at(model.next_token_logits(prompt, list(prefix)), allowed, temperature).astype(np.float64)
        calls += 1
        is_stop = np.isin(allowed, stops)
        if is_stop.any():
            mass = _logsumexp(logp + lp[is_stop])
            seqs[prefix] = mass
            log_z = float(np.logaddexp(log_z, mass))
        for t, l in zip(allowed[~is_stop].tolist(), lp[~is_stop].tolist()):
            heapq.heappush(heap, (-(logp + l), pushed, prefix + (t,)))
            pushed += 1
    left = np.array([-h[0] for h in heap], dtype=np.float64)
    return Enumeration(seqs, prefix_lp, _logsumexp(left), calls)


def extend_enumeration(e: Enumeration, model: NextTokenModel, compiled_grammar: Any, prompt_ids: Sequence[int],
                       sequences: Iterable[Sequence[int]], *, temperature: float = 1.0) -> int:
    """Add finished sequences (e.g. samples the pruned search missed) with their exact log-probability.

    Their mass was part of :attr:`Enumeration.log_pruned`, which stays a valid bound.  Returns
    how many sequences were new.
    """
    stops = np.array(sorted(set(int(t) for t in compiled_grammar.tokenizer_info.stop_token_ids)), dtype=np.int32)
    prompt = [int(t) for t in prompt_ids]
    added = 0
    for seq in sequences:
        seq = tuple(int(t) for t in seq)
        if seq in e.sequences:
            continue
        total = 0.0
        for k in range(len(seq) + 1):
            ids = stops if k == len(seq) else np.array([seq[k]], dtype=np.int32)
            lp = _log_softmax_at(model.next_token_logits(prompt, list(seq[:k])), ids, temperature)
            total += _logsumexp(lp.astype(np.float64))
            if k < len(seq):
                e.prefix_logprob.setdefault(seq[:k + 1], total)
        e.sequences[seq] = total
        added += 1
    return added


# ---------------------------------------------------------------------- metrics


def kl_divergence(log_p: Mapping[Any, float], log_q: Mapping[Any, float]) -> float:
    """KL(P || Q) in nats for distributions given as log-probabilities (inf if P leaves Q's support)."""
    total = 0.0
    for k, lp in log_p.items():
        if lp == _NEG_INF:
            continue
        lq = log_q.get(k, _NEG_INF)
        if lq == _NEG_INF:
            return math.inf
        total += math.exp(lp) * (lp - lq)
    return total


def empirical_kl(samples: Iterable[Sequence[int]], log_q: Mapping[tuple[int, ...], float]) -> tuple[float, int]:
    """KL(empirical || Q) over the samples inside Q's support, and how many samples fell outside."""
    counts = collections.Counter(tuple(int(t) for t in s) for s in samples)
    outside = sum(c for k, c in counts.items() if k not in log_q)
    inside = {k: c for k, c in counts.items() if k in log_q}
    n = sum(inside.values())
    if n == 0:
        return math.nan, outside
    return kl_divergence({k: math.log(c / n) for k, c in inside.items()}, log_q), outside
