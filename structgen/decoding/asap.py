"""ASAp grammar-aligned sampling (Park et al., "Grammar-Aligned Decoding", NeurIPS 2024).

Grammar-constrained decoding (GCD) renormalizes each next-token distribution over the tokens the
grammar allows, so its outputs are grammatical but not distributed as the model conditioned on
the grammar.  The target here is

    Q(w) ∝ P(w · stop | prompt)   for token sequences w whose text is in L(G),
                                   with len(w) <= max_new_tokens,

where P is the model at ``temperature`` (logits / T before the softmax) and the stop token is one
of the tokenizer's stop ids (several stop ids for one w add up).  ASAp keeps a trie of sampled
prefixes p with an upper bound V(p) >= EFG(p) = Σ_w P(w | p)·1[p·w ∈ L(G)], samples each token
with weight P(t | p)·V(p·t) over the allowed tokens (unvisited children count 1, so the first
sample is exactly GCD), and after each sample sets, bottom-up along its path,

    V(p) = min(V(p), Σ_{t allowed} P(t | p)·V(p·t))       (stop children: 1; dead children: 0).

Bounds only decrease, stay upper bounds, and equal EFG on fully explored subtrees, so the
sampling distribution converges to Q.  ``learning=False`` is GCD with the same trie, cache and
random stream (fair comparisons).

**Budget.**  A node at depth ``max_new_tokens`` allows only the stop tokens; if the output is
not complete there it is a dead end (value 0).  An attempt that reaches a dead end is not
returned: it is counted in :attr:`SamplerStats.rejected` (ASAp learns from it: the dead node's
value 0 propagates up; GCD does not).  So samples and Q are over finished outputs only.

**Numerics.**  Everything is in log space: a node keeps log P(t | p) of its allowed tokens
(float32, from a float64 log-softmax of the full logits) and log V of its visited children
(float64, 0 = unvisited); updates are a logsumexp over the allowed tokens.

**Memory.**  A stored node costs about ``12 · |allowed| + 300`` bytes (int32 ids, float32 log-
probabilities, float64 child values once learning touches it) plus one dict entry in its parent.
The trie grows by at most one node per new prefix a sample visits (at most ``max_new_tokens``
per sample, usually far fewer once the trie fills).  Past ``max_trie_bytes`` new nodes are
transient: they serve the current sample, their value still goes into the parent's child value
(a sound bound), but they are not kept, so memory stays bounded.

**Model calls.**  Only prefixes not in the trie call the model; :attr:`SamplerStats.calls_saved`
counts the calls the trie served.  A trie saves to and loads from a ``.npz`` file (no pickle),
with the random state, so sampling continues identically after a reload.

The trie's nodes and file format are in :mod:`structgen.decoding.asap_trie`; the exact target Q (by
enumeration) and the KL metrics in :mod:`structgen.decoding.exact_target`.
"""

from __future__ import annotations

import collections
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from structgen.errors import StructgenError
from structgen.matcher import GrammarMatcher

from .asap_trie import _NEG_INF, _allowed_ids, _log_softmax_at, _logsumexp, _Node, iter_nodes, read_trie, write_trie
from .lm import LlamaCppModel, NextTokenModel, TransformersModel

__all__ = [
    "ASApSampler",
    "Sample",
    "SamplerStats",
    "cli_samples",
]


@dataclass
class Sample:
    """One finished output: token ids (stop excluded), the stop id, text and log-probabilities.

    ``logprob`` is log P(ids · stop | prompt) under the (tempered) model; ``proposal_logprob`` the
    log-probability with which the sampler drew it; ``model_calls`` the model calls its draw made
    (those of rejected attempts just before it included).
    """

    token_ids: tuple[int, ...]
    stop_id: int
    text: str
    logprob: float
    proposal_logprob: float
    model_calls: int


@dataclass
class SamplerStats:
    """Counters over the sampler's life (saved with the trie)."""

    samples: int = 0
    rejected: int = 0
    model_calls: int = 0
    calls_saved: int = 0
    nodes: int = 0
    trie_bytes: int = 0
    transient_nodes: int = 0
    calls_per_sample: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ASApSampler:
    """Grammar-aligned sampling over a trie of visited prefixes (GCD with ``learning=False``).

    ``model`` follows :class:`~structgen.decoding.lm.NextTokenModel`; ``prompt_ids`` are the
    prompt's token ids (chat template applied).  See the module docstring for the target, the
    budget, numerics and memory.
    """

    def __init__(self, model: NextTokenModel, compiled_grammar: Any, prompt_ids: Sequence[int] = (), *,
                 max_new_tokens: int = 64, temperature: float = 1.0, learning: bool = True, seed: int = 0,
                 max_trie_bytes: int = 1 << 30) -> None:
        if max_new_tokens < 1:
            raise StructgenError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not temperature > 0:
            raise StructgenError(f"temperature must be > 0 for sampling, got {temperature}")
        info = compiled_grammar.tokenizer_info
        if not info.stop_token_ids:
            raise StructgenError("the compiled grammar's tokenizer has no stop token ids")
        self.model = model
        self.compiled_grammar = compiled_grammar
        self.prompt_ids = tuple(int(t) for t in prompt_ids)
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.learning = bool(learning)
        self.max_trie_bytes = int(max_trie_bytes)
        self.stats = SamplerStats()
        self._vocab = int(info.vocab_size)
        self._stops = np.array(sorted(set(int(t) for t in info.stop_token_ids)), dtype=np.int32)
        self._stop_set = set(self._stops.tolist())
        self._token_bytes = info.token_bytes
        self._matcher = GrammarMatcher(compiled_grammar)
        self._rng = np.random.default_rng(seed)
        self.root: _Node | None = None

    # ------------------------------------------------------------------ nodes

    def _make_node(self, prefix: Sequence[int], matcher: GrammarMatcher) -> tuple[_Node, bool]:
        """A new node for ``prefix`` (the matcher is at ``prefix``); True if the model was called."""
        allowed = _allowed_ids(matcher, self._vocab)
        if len(prefix) >= self.max_new_tokens:
            allowed = allowed[np.isin(allowed, self._stops)]
        if allowed.size == 0:
            return _Node(allowed, np.zeros(0, dtype=np.float32)), False
        logits = self.model.next_token_logits(self.prompt_ids, list(prefix))
        return _Node(allowed, _log_softmax_at(logits, allowed, self.temperature)), True

    def _attach(self, parent: _Node | None, token: int, node: _Node) -> bool:
        """Keep ``node`` in the trie if the memory budget allows; False if it stays transient."""
        size = node.nbytes() + (node.allowed.size * 8 if self.learning else 0)
        if self.stats.trie_bytes + size > self.max_trie_bytes and parent is not None:
            self.stats.transient_nodes += 1
            return False
        if self.learning and node.allowed.size:
            node.lv = np.zeros(node.allowed.size, dtype=np.float64)
        if parent is None:
            self.root = node
        else:
            parent.children[token] = node
        self.stats.nodes += 1
        self.stats.trie_bytes += size
        return True

    def _ensure_root(self) -> int:
        """Create the root node if needed; the number of model calls that took (0 or 1)."""
        if self.root is not None:
            return 0
        self._matcher.reset()
        node, called = self._make_node((), self._matcher)
        self._attach(None, -1, node)
        return int(called)

    # ------------------------------------------------------------------ sampling

    def _choose(self, node: _Node, rng: np.random.Generator) -> tuple[int, float]:
        """Index drawn from the node's weights and its log-probability (-1 if all weights are 0)."""
        w = node.weights(self.learning)
        m = float(np.max(w)) if w.size else _NEG_INF
        if m == _NEG_INF:
            return -1, _NEG_INF
        p = np.exp(w - m)
        c = np.cumsum(p)
        i = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
        i = min(i, w.size - 1)
        while p[i] == 0.0:  # never pick a zero-weight token (rounding at the very top of the range)
            i -= 1
        return i, float(w[i] - m - math.log(c[-1]))

    def _attempt(self, rng: np.random.Generator) -> tuple[list[int], int, float, float, int]:
        """One draw from the root: (tokens, stop id or -1 if dead end, log P, log proposal, calls)."""
        calls = self._ensure_root()
        node = self.root
        matcher = self._matcher
        matcher.reset()
        synced = 0
        stored = True  # whether `node` is kept in the trie (children of transient nodes are transient)
        path: list[_Node] = [node]
        picks: list[int] = []
        tokens: list[int] = []
        logp = logq = 0.0
        saved = 1 if node.allowed.size and not calls else 0
        stop = -1
        while True:
            i, lq = self._choose(node, rng)
            if i < 0:
                break  # a dead end: no allowed token (budget) or no weight left
            t = int(node.allowed[i])
            picks.append(i)
            logp += float(node.lp[i])
            logq += lq
            if t in self._stop_set:
                stop = t
                break
            tokens.append(t)
            child = node.children.get(t)
            if child is None:
                for tok in tokens[synced:]:
                    if not matcher.accept_token(tok):  # pragma: no cover - the mask said it was allowed
                        raise StructgenError(f"the matcher rejected token {tok} that its mask allowed")
                synced = len(tokens)
                child, called = self._make_node(tokens, matcher)
                calls += int(called)
                if stored:
                    stored = self._attach(node, t, child)
                else:
                    self.stats.transient_nodes += 1
            elif child.allowed.size:
                saved += 1
            path.append(child)
            node = child
        self.stats.model_calls += calls
        self.stats.calls_saved += saved
        if self.learning:
            self._backup(path, picks, stop >= 0)
        return tokens, stop, logp, logq, calls

    def _backup(self, path: list[_Node], picks: list[int], finished: bool) -> None:
        """Propagate the bounds up the sampled path (min keeps them monotone under rounding)."""
        if finished:
            v = 0.0
        else:
            path[-1].logv = _NEG_INF
            v = _NEG_INF
        for k in range(len(picks) - 1, -1, -1):
            node = path[k]
            if node.lv is None:  # a transient node (over the memory budget)
                node.lv = np.zeros(node.allowed.size, dtype=np.float64)
            i = picks[k]
            if v < node.lv[i]:
                node.lv[i] = v
            node.logv = min(node.logv, _logsumexp(node.lp.astype(np.float64) + node.lv))
            v = node.logv

    def _check_settings(self, max_new_tokens: int | None, temperature: float | None) -> None:
        changed = ((max_new_tokens is not None and int(max_new_tokens) != self.max_new_tokens)
                   or (temperature is not None and float(temperature) != self.temperature))
        if not changed:
            return
        if self.root is not None:
            raise StructgenError(
                f"this trie was built with max_new_tokens={self.max_new_tokens}, temperature={self.temperature}: "
                "its bounds and log-probabilities are for that target; use a new sampler for other settings")
        if max_new_tokens is not None:
            if max_new_tokens < 1:
                raise StructgenError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
            self.max_new_tokens = int(max_new_tokens)
        if temperature is not None:
            if not temperature > 0:
                raise StructgenError(f"temperature must be > 0 for sampling, got {temperature}")
            self.temperature = float(temperature)

    def sample(self, n: int, *, max_new_tokens: int | None = None, temperature: float | None = None,
               seed: int | None = None, max_attempts: int | None = None) -> list[Sample]:
        """Draw ``n`` finished samples (fewer, with a warning, if ``max_attempts`` run out first).

        ``seed`` starts a fresh random stream; None continues the sampler's own (saved with the
        trie).  ``max_new_tokens``/``temperature`` default to the sampler's; a trie is tied to them.
        """
        self._check_settings(max_new_tokens, temperature)
        if n < 0:
            raise StructgenError(f"n must be >= 0, got {n}")
        rng = self._rng if seed is None else np.random.default_rng(seed)
        limit = max_attempts if max_attempts is not None else 20 * n + 100
        out: list[Sample] = []
        attempts = pending_calls = 0
        while len(out) < n and attempts < limit:
            if self.learning and self.root is not None and self.root.logv == _NEG_INF:
                raise StructgenError(f"no output of at most {self.max_new_tokens} tokens is in the language "
                                     "(or the model gives them probability 0)")
            attempts += 1
            tokens, stop, logp, logq, calls = self._attempt(rng)
            pending_calls += calls
            if stop < 0:
                self.stats.rejected += 1
                continue
            text = b"".join(self._token_bytes[t] for t in tokens).decode("utf-8", errors="replace")
            out.append(Sample(tuple(tokens), stop, text, logp, logq, pending_calls))
            self.stats.samples += 1
            self.stats.calls_per_sample.append(pending_calls)
            pending_calls = 0
        if len(out) < n:
            warnings.warn(f"ASApSampler.sample: {len(out)} of {n} samples after {attempts} attempts "
                          f"({self.stats.rejected} dead ends so far: raise max_new_tokens?)", stacklevel=2)
        return out

    # ------------------------------------------------------------------ inspection

    def log_value(self, prefix: Sequence[int] = ()) -> float | None:
        """log of the EFG upper bound of ``prefix`` (None if the prefix is not in the trie)."""
        node = self.root
        for t in prefix:
            if node is None:
                return None
            node = node.children.get(int(t))
        return None if node is None else float(node.logv)
    def nodes(self) -> Iterable[tuple[tuple[int, ...], _Node]]:
        """(prefix, node) for every stored node, depth first."""
        yield from iter_nodes(self.root)

    def proposal_logprobs(self, sequences: Iterable[tuple[Sequence[int], int]]) -> np.ndarray:
        """log-probability that the next attempt draws each ``(token_ids, stop_id)``.

        Prefixes missing from the trie are evaluated (GCD there: unvisited children count 1)
        without being added; those model calls are not counted in :attr:`stats`.
        """
        self.stats.model_calls += self._ensure_root()
        extra: dict[tuple[int, ...], _Node] = {}
        norm: dict[int, float] = {}
        out = []
        matcher = GrammarMatcher(self.compiled_grammar)
        for ids, stop in sequences:
            ids = [int(t) for t in ids]
            node, total = self.root, 0.0
            for k, t in enumerate(ids + [int(stop)]):
                key = id(node)
                if key not in norm:
                    norm[key] = _logsumexp(node.weights(self.learning))
                pos = int(np.searchsorted(node.allowed, t))
                if pos >= node.allowed.size or node.allowed[pos] != t:
                    total = _NEG_INF
                    break
                lv = float(node.lv[pos]) if (self.learning and node.lv is not None) else 0.0
                total += float(node.lp[pos]) + lv - norm[key]
                if k == len(ids):
                    break
                child = node.children.get(t)
                if child is None:
                    prefix = tuple(ids[:k + 1])
                    child = extra.get(prefix)
                    if child is None:
                        matcher.reset()
                        for tok in prefix:
                            matcher.accept_token(tok)
                        child, _ = self._make_node(prefix, matcher)
                        extra[prefix] = child
                node = child
            out.append(total)
        return np.array(out, dtype=np.float64)
    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the trie, settings, counters and random state to ``path`` (.npz, no pickle)."""
        meta = {
            "prompt_ids": list(self.prompt_ids), "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature, "learning": self.learning, "stats": self.stats.to_json(),
            "rng": self._rng.bit_generator.state,
        }
        write_trie(path, self.root, self.compiled_grammar, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str], model: NextTokenModel, compiled_grammar: Any, *,
             max_trie_bytes: int = 1 << 30) -> ASApSampler:
        """A sampler continuing from a trie written by :meth:`save` (same grammar and tokenizer)."""
        meta, root = read_trie(path, compiled_grammar)
        self = cls(model, compiled_grammar, meta["prompt_ids"], max_new_tokens=meta["max_new_tokens"],
                   temperature=meta["temperature"], learning=meta["learning"], max_trie_bytes=max_trie_bytes)
        self._rng.bit_generator.state = meta["rng"]
        self.stats = SamplerStats(**meta["stats"])
        self.root = root
        return self


# ---------------------------------------------------------------------- CLI entry point


def cli_samples(compiled_grammar: Any, hf_tokenizer: Any, prompt_text: str, n: int, *, max_new_tokens: int,
                temperature: float, seed: int, backend: str, model: Any = None,
                stats: dict[str, Any] | None = None) -> list[tuple[str, int]]:
    """``n`` grammar-aligned samples of ``prompt_text`` (chat template applied) as (text, count).

    Most frequent first (ties by text).  ``backend`` is "transformers" or "llama-cpp"; ``model``
    (a transformers model or ``llama_cpp.Llama``) defaults to the embedded SmolLM2.  Temperature 0
    (the greedy default of ``generate``) means 1: ASAp samples the model's own distribution.
    ``stats``, if given, receives the sampler's counters (model calls, calls saved, trie size...).
    """
    if temperature <= 0:
        temperature = 1.0
    prompt_ids = list(hf_tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    if backend == "llama-cpp":
        if model is None:
            from structgen.models import load_default_llama

            model = load_default_llama(seed=seed, n_ctx=max(2048, len(prompt_ids) + max_new_tokens + 8))
        lm: NextTokenModel = LlamaCppModel(model)
    elif backend == "transformers":
        if model is None:
            from structgen.models import load_default_model

            model = load_default_model()
        lm = TransformersModel(model)
    else:
        raise StructgenError(f"unknown backend {backend!r} (transformers or llama-cpp)")
    sampler = ASApSampler(lm, compiled_grammar, prompt_ids, max_new_tokens=max_new_tokens,
                          temperature=temperature, seed=seed)
    counts = collections.Counter(s.text for s in sampler.sample(n))
    if stats is not None:
        stats.update(sampler.stats.to_json())
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
