"""Masked-diffusion sampling (LLaDA/Dream style) under a grammar, via the infilling oracle.

The model writes `L` token positions, all starting as `mask_id`; each step it scores every
position (`MaskedLM.logits`) and the sampler unmasks the most confident masked position(s),
optionally inside semi-autoregressive blocks (only the leftmost block with masked positions
is eligible). ``order="random"`` picks masked positions at random instead (LLaDA's random
remasking). Constraint modes:

* ``"none"``: the model's choice, as is.
* ``"rejection"`` (Mündler, Dekoninck, Vechev 2025): draw a token for the chosen position; if
  the template with that token is not completable (`CompletabilityOracle.is_completable`),
  forbid it and redraw; after `max_redraws` rejections sample from the position's exact mask.
* ``"mask"``: sample the chosen position from the model's distribution restricted to the
  position's exact mask (`CompletabilityOracle.position_allowed`): the token drawn when
  ranking positions is kept if the mask allows it, else a fresh draw from the restriction
  (exactly the restricted distribution). With
  ``mask_positions="all"`` every eligible masked position gets its mask first and confidence
  is measured on the masked distributions (exact LLaDA ordering, far more oracle work).

An oracle call that exceeds the oracle's `max_facts` never lets an unverified token in: in
rejection it counts as a rejection; a mask that exceeds it is replaced by verifying candidates
one by one in the order of one Gumbel perturbation (still the restricted distribution).

Either constrained mode keeps the invariant "the current ids are completable", so the final
output is a word of the grammar whenever the all-masked start is completable.

End of text: see `constraint.py` (EOS ends the text; every masked position after an unmasked EOS
becomes EOS too). Ids <-> templates and the oracle queries live in `DiffusionConstraint`
(`constraint.py`), re-exported here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol, Sequence

import numpy as np

from ...errors import LimitExceeded, StructgenError
from .constraint import DiffusionConstraint

Mode = Literal["none", "rejection", "mask"]


class MaskedLM(Protocol):
    """A masked-diffusion LM: scores every position of an id sequence (masked ones hold mask_id)."""

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """(L,) int ids -> (L, V) float logits."""
        ...


class TransformersMaskedLM:
    """A transformers model as a :class:`MaskedLM`: one forward over the whole sequence per step.

    Works for models whose output ``logits`` score every position: LLaDA-style masked-diffusion
    LMs (``trust_remote_code``) and ``AutoModelForMaskedLM`` models score position i at row i;
    Dream-style models, adapted from autoregressive LMs, score position i at row i - 1
    (``shifted=True``; position 0 then gets row 0). ``prefix_ids`` (e.g. a prompt) are prepended
    and their rows dropped.
    """

    def __init__(self, model, *, shifted: bool = False, prefix_ids: Sequence[int] = ()) -> None:
        self.model = model
        self.shifted = shifted
        self.prefix_ids = [int(t) for t in prefix_ids]

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """(L,) ids -> (L, V) float32 logits of the model (rows of the prefix dropped)."""
        import torch

        full = self.prefix_ids + [int(t) for t in ids]
        device = getattr(self.model, "device", "cpu")
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([full], device=device)).logits[0]
        if self.shifted:
            out = torch.cat([out[:1], out[:-1]], dim=0)
        return out[len(self.prefix_ids):].float().cpu().numpy()


# --------------------------------------------------------------------------- the sampler


@dataclass
class SampleResult:
    """One decoded sample and what it cost."""

    ids: np.ndarray
    text: bytes
    steps: int
    seconds: float
    model_seconds: float
    oracle_calls: int = 0
    redraws: int = 0
    fallbacks: int = 0
    init_oracle_seconds: float = 0.0  # the completability check of the all-masked start
    step_oracle_seconds: list[float] = field(default_factory=list)  # oracle time of each unmasking step
    limit_hits: int = 0  # oracle calls that exceeded the oracle's max_facts (see _try/_masked_draw)
    witness_fallbacks: int = 0  # steps that took the witness's token after MAX_VERIFY refusals (_masked_draw)


MAX_VERIFY = 64  # candidates one position's Gumbel-ordered verification tries (see _masked_draw)


def _softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - np.where(np.isfinite(m), m, 0.0))
    s = e.sum(axis=-1, keepdims=True)
    return e / np.where(s > 0, s, 1.0)


def _draw(rng: np.random.Generator, logits: np.ndarray, temperature: float) -> int:
    """A token from logits (-inf = forbidden): argmax at temperature 0, else a sample."""
    if temperature <= 0:
        return int(np.argmax(logits))
    g = rng.gumbel(size=logits.shape)
    return int(np.argmax(logits / temperature + g))


def _try(constraint: DiffusionConstraint, ids: np.ndarray, pos: int, tok: int, res: "SampleResult") -> bool:
    """Whether tok at pos keeps ids completable; a call past the oracle's limit counts as "no"
    (never accept an unverified token) and is counted in res.limit_hits."""
    if tok == constraint.eos_id and not constraint.eos_ok(ids, pos):
        return False
    try:
        return constraint.choice_ok(ids, pos, tok)
    except LimitExceeded:
        res.limit_hits += 1
        return False


def _masked_draw(constraint: DiffusionConstraint, ids: np.ndarray, pos: int, row: np.ndarray,
                 rng: np.random.Generator, temperature: float, res: "SampleResult", first: int | None = None) -> int:
    """A token from softmax(row / T) restricted to the position's exact mask.

    `first` is a token already drawn from softmax(row / T): kept if allowed, else a fresh draw
    from the restriction (together exactly the restricted distribution, and the token whose
    confidence chose the position is kept whenever it is allowed).

    If the mask computation exceeds the oracle's limit, the same distribution is sampled
    without it: one Gumbel perturbation ranks all tokens and the first that `_try` verifies is
    taken (Gumbel-max with the disallowed tokens removed = exact sampling from the restriction,
    apart from candidates whose check itself hits the limit). After `MAX_VERIFY` refused
    candidates the witness's token is taken (always completable; counted in
    res.witness_fallbacks), so a step's cost stays bounded."""
    try:
        ok = constraint.allowed(ids, pos)
    except LimitExceeded:
        res.limit_hits += 1
        keys = row / temperature + rng.gumbel(size=row.shape) if temperature > 0 else row.copy()
        keys[~np.isfinite(row)] = -np.inf
        for n, tok in enumerate(np.argsort(-keys, kind="stable")):
            if not np.isfinite(keys[tok]) or n >= MAX_VERIFY:
                break
            if _try(constraint, ids, pos, int(tok), res):
                return int(tok)
        res.witness_fallbacks += 1
        return constraint.witness_token(ids, pos)
    if not ok.any():
        raise StructgenError("empty mask on a completable template (oracle bug)")
    if first is not None and ok[first]:
        return int(first)
    r = np.where(ok, row, -np.inf)
    if np.isfinite(r).any():
        return _draw(rng, r, temperature)
    return int(rng.choice(np.flatnonzero(ok)))  # the model gives every allowed token zero weight


def diffusion_generate(
    model: MaskedLM,
    length: int,
    *,
    mask_id: int = -1,
    eos_id: int | None = None,
    constraint: DiffusionConstraint | None = None,
    mode: Mode = "none",
    tokens_per_step: int = 1,
    block_length: int | None = None,
    temperature: float = 1.0,
    max_redraws: int = 5,
    fallback: Literal["mask", "witness"] = "mask",
    mask_positions: Literal["chosen", "all"] = "chosen",
    order: Literal["confidence", "random"] = "confidence",
    seed: int | None = 0,
) -> SampleResult:
    """Unmask `length` positions, most confident first (see the module docstring for the modes).

    `mask_id`/`eos_id` come from `constraint` when one is given (then `res.text` is its decoding;
    without one `res.text` stays empty). `temperature=0` is greedy. `seed` makes a run reproducible
    (given a deterministic model). In rejection mode, after `max_redraws` refused draws the
    position is sampled from its exact mask (``fallback="mask"``) or given the witness's token
    (``"witness"``: bounded cost for long templates, where a mask can exceed the oracle's limit;
    redraws are sampling without replacement, so until then the draw is exact)."""
    if mode not in ("none", "rejection", "mask"):
        raise StructgenError(f"unknown mode {mode!r}")
    if fallback not in ("mask", "witness"):
        raise StructgenError(f"unknown fallback {fallback!r}")
    if mode != "none" and constraint is None:
        raise StructgenError(f"mode {mode!r} needs a DiffusionConstraint")
    if constraint is not None:
        if eos_id is not None and eos_id != constraint.eos_id:
            raise StructgenError("eos_id differs from the constraint's")
        eos_id, mask_id = constraint.eos_id, constraint.mask_id
    elif mask_id < 0:
        raise StructgenError("mask_id is needed without a constraint")
    rng = np.random.default_rng(seed)
    ids = np.full(length, mask_id, dtype=np.int64)
    t_start = time.perf_counter()
    model_s = 0.0
    res = SampleResult(ids=ids, text=b"", steps=0, seconds=0.0, model_seconds=0.0)
    calls0 = constraint.oracle_calls if constraint is not None else 0
    if mode != "none":
        s0 = constraint.oracle_seconds
        if not constraint.is_completable(ids):
            raise StructgenError("no word of the grammar fits the template at all (length too small?)")
        res.init_oracle_seconds = constraint.oracle_seconds - s0

    while (ids == mask_id).any():
        masked = np.flatnonzero(ids == mask_id)
        if block_length:
            blk = masked[0] // block_length
            masked = masked[masked // block_length == blk]
        t0 = time.perf_counter()
        lg = np.asarray(model.logits(ids), dtype=np.float64)
        model_s += time.perf_counter() - t0
        if lg.shape[0] != length:
            raise StructgenError(f"model returned {lg.shape[0]} rows for {length} positions")
        lg = lg.copy()
        lg[:, mask_id] = -np.inf
        if constraint is not None:
            lg[:, constraint.forbidden] = -np.inf
        o0 = constraint.oracle_seconds if constraint is not None else 0.0

        # confidence-ordered choice of positions (LLaDA "low confidence remasking")
        rows = lg[masked]
        allowed_rows = None
        if mode == "mask" and mask_positions == "all":
            allowed_rows = np.stack([constraint.allowed(ids, int(p)) for p in masked])
            rows = np.where(allowed_rows, rows, -np.inf)
        probs = _softmax(rows / (temperature if temperature > 0 else 1.0))
        x0 = np.array([_draw(rng, r, temperature) for r in rows])
        conf = probs[np.arange(len(masked)), x0]
        if order == "random":  # LLaDA's "random remasking"
            conf = rng.random(len(masked))
        pick = np.argsort(-conf, kind="stable")[: max(1, tokens_per_step)]

        for j in pick:
            pos = int(masked[j])
            if ids[pos] != mask_id:  # filled by an EOS earlier in this step
                continue
            row = lg[pos].copy()
            if mode == "none":
                tok = int(x0[j])
            elif mode == "mask":
                if allowed_rows is not None and j == pick[0]:
                    tok = int(x0[j])  # drawn from the masked distribution on the current ids
                else:
                    tok = _masked_draw(constraint, ids, pos, row, rng, temperature, res, int(x0[j]))
            else:  # rejection
                tok = int(x0[j])
                tries = 0
                while True:
                    if _try(constraint, ids, pos, tok, res):
                        break
                    res.redraws += 1
                    row[tok] = -np.inf
                    tries += 1
                    if tries > max_redraws or not np.isfinite(row).any():
                        res.fallbacks += 1
                        if fallback == "witness":
                            res.witness_fallbacks += 1
                            tok = constraint.witness_token(ids, pos)
                        else:
                            tok = _masked_draw(constraint, ids, pos, lg[pos], rng, temperature, res)
                        break
                    tok = _draw(rng, row, temperature)
            if constraint is not None:
                ids[:] = constraint.with_choice(ids, pos, tok)
            else:
                ids[pos] = tok
                if eos_id is not None and tok == eos_id:
                    after = ids[pos + 1:]
                    after[after == mask_id] = eos_id
        res.steps += 1
        if constraint is not None and mode != "none":
            res.step_oracle_seconds.append(constraint.oracle_seconds - o0)

    res.ids = ids
    if constraint is not None:
        res.text = constraint.text(ids)
        res.oracle_calls = constraint.oracle_calls - calls0
    # without a constraint, res.text stays b"": decode res.ids with DiffusionConstraint.text rules
    res.seconds = time.perf_counter() - t_start
    res.model_seconds = model_s
    return res


__all__ = ["MaskedLM", "DiffusionConstraint", "SampleResult", "diffusion_generate"]
