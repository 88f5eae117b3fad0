"""Train a tiny masked-diffusion LM (issue 7) on strings of two grammars: JSON and arithmetic.

Byte-level: one token per printable ASCII byte (32..126), then MASK and EOS (both empty,
special) and two condition tokens <json>/<arith> that are prepended to the model's input (not
part of the generated positions). Each training string (at most L bytes, checked against the
grammar) is padded to L with EOS; the objective is LLaDA's: a masking ratio t ~ U(0, 1) per
sequence, each position masked with probability t, cross-entropy on the masked positions.

    python bench/train_diffusion_lm.py [--minutes 3] [--length 24] [--out bench/models/diffusion_lm.pt]

`load_model(path)` gives (a MaskedLM factory per grammar, TokenizerInfo, config).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo, builtin_grammar  # noqa: E402

CHARS = bytes(range(32, 127))
MASK_ID = len(CHARS)
EOS_ID = MASK_ID + 1
COND = {"json": EOS_ID + 1, "arithmetic": EOS_ID + 2}
VOCAB = EOS_ID + 3
DEFAULT_OUT = REPO / "bench" / "models" / "diffusion_lm.pt"


def tokenizer() -> TokenizerInfo:
    """The model's TokenizerInfo: single-byte tokens, then MASK, EOS, <json>, <arith> (special, empty)."""
    tb = [bytes([c]) for c in CHARS] + [b""] * 4
    return TokenizerInfo(tb, special_ids=[MASK_ID, EOS_ID, *COND.values()], stop_token_ids=[EOS_ID],
                         name="diffusion-byte")


# --------------------------------------------------------------------------- data

KEYS = ["a", "b", "id", "x", "name", "ok", "v", "n"]
WORDS = ["", "a", "hi", "x y", "ab", "foo", "z"]


def random_json(rng: random.Random, depth: int = 0):
    """A small random JSON value (depth <= 2)."""
    r = rng.random() * (0.6 if depth == 0 else 1.0)  # mostly containers at the top
    if depth < 2 and r < 0.35:
        return {k: random_json(rng, depth + 1) for k in rng.sample(KEYS, rng.randint(0, 3))}
    if depth < 2 and r < 0.6:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if r < 0.75:
        return rng.choice(WORDS)
    if r < 0.92:
        return rng.choice([rng.randint(-20, 200), round(rng.uniform(-9, 9), rng.randint(1, 2))])
    return rng.choice([True, False, None])


def json_text(rng: random.Random) -> str:
    """A JSON document, compact or spaced."""
    v = random_json(rng)
    if rng.random() < 0.5:
        return json.dumps(v, separators=(",", ":"))
    return json.dumps(v)


def random_expr(rng: random.Random, depth: int = 0) -> str:
    """A small random arithmetic expression."""
    r = rng.random() if depth else 0.25 + 0.75 * rng.random()  # mostly compound at the top
    if depth >= 3 or r < 0.3:
        return rng.choice([str(rng.randint(0, 99)), f"{rng.randint(0, 9)}.{rng.randint(0, 99)}",
                           rng.choice(["x", "y", "n", "ab", "foo"])])
    sp = " " if rng.random() < 0.4 else ""
    if r < 0.65:
        op = rng.choice(["+", "-", "*", "/", "%", "**", "^"])
        return f"{random_expr(rng, depth + 1)}{sp}{op}{sp}{random_expr(rng, depth + 1)}"
    if r < 0.78:
        return f"({random_expr(rng, depth + 1)})"
    if r < 0.88:
        return f"-{random_expr(rng, depth + 1)}"
    args = [random_expr(rng, depth + 1) for _ in range(rng.randint(0, 2))]
    return f"{rng.choice(['f', 'max', 'g'])}({(',' + sp).join(args)})"


GENERATORS = {"json": json_text, "arithmetic": random_expr}


def dataset(rng: random.Random, n: int, length: int, tok: TokenizerInfo) -> dict[str, list[bytes]]:
    """n distinct-ish strings per grammar, each <= length bytes and accepted by the grammar."""
    comp = GrammarCompiler(tok)
    out = {}
    for name, gen in GENERATORS.items():
        cg = comp.compile_grammar(builtin_grammar(name))
        got: list[bytes] = []
        while len(got) < n:
            s = gen(rng).encode()
            if 0 < len(s) <= length:
                m = GrammarMatcher(cg)
                assert m.accept_string(s) and m.is_accepting(), s
                got.append(s)
        out[name] = got
    return out


def encode(s: bytes, length: int) -> list[int]:
    """Byte ids padded with EOS to length."""
    return [CHARS.index(b) for b in s] + [EOS_ID] * (length - len(s))


# --------------------------------------------------------------------------- model


class DiffusionLM(nn.Module):
    """A bidirectional transformer encoder over [condition token] + L positions."""

    def __init__(self, length: int, d: int = 96, layers: int = 4, heads: int = 4, ff: int = 256) -> None:
        super().__init__()
        self.length = length
        self.emb = nn.Embedding(VOCAB, d)
        self.pos = nn.Parameter(torch.randn(length + 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x) + self.pos[: x.shape[1]]
        return self.head(self.norm(self.enc(h)))


class TorchMaskedLM:
    """The MaskedLM protocol for one grammar condition: logits(ids) -> (L, V)."""

    def __init__(self, model: DiffusionLM, grammar: str) -> None:
        self.model, self.cond = model, COND[grammar]

    @torch.no_grad()
    def logits(self, ids: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.concatenate([[self.cond], np.asarray(ids, dtype=np.int64)]))[None]
        return self.model(x)[0, 1:].double().numpy()


def load_model(path: Path = DEFAULT_OUT) -> tuple[dict[str, TorchMaskedLM], TokenizerInfo, dict]:
    """({grammar: MaskedLM}, tokenizer, config) from a checkpoint written by this script."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = DiffusionLM(**ck["config"]["model"])
    model.load_state_dict(ck["state"])
    model.eval()
    return {g: TorchMaskedLM(model, g) for g in COND}, tokenizer(), ck["config"]


# --------------------------------------------------------------------------- training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--length", type=int, default=24)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)  # 2 spin-waits badly on a shared, busy 2-core box
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    tok = tokenizer()
    data = dataset(rng, 20_000, a.length, tok)
    for g, xs in data.items():
        print(f"{g}: {len(xs)} strings, {len(set(xs))} distinct, e.g. {[x.decode() for x in xs[:4]]}")
    seqs = torch.tensor([[COND[g]] + encode(s, a.length) for g, xs in data.items() for s in xs])
    cfg = {"model": {"length": a.length}, "length": a.length, "mask_id": MASK_ID, "eos_id": EOS_ID,
           "cond": COND, "chars": CHARS.decode()}
    model = DiffusionLM(a.length)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters; {len(seqs)} training sequences of {a.length + 1}")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    budget = a.minutes * 60
    t0 = time.time()
    step, ema = 0, None
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        for gr in opt.param_groups:  # short warmup, then cosine decay over the time budget
            gr["lr"] = a.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * frac))
        x = seqs[torch.randint(len(seqs), (a.batch,))]
        t = torch.rand(a.batch, 1).clamp(min=0.05)
        m = torch.rand(x.shape) < t
        m[:, 0] = False  # never mask the condition token
        inp = torch.where(m, torch.full_like(x, MASK_ID), x)
        out = model(inp)
        loss = nn.functional.cross_entropy(out[m], x[m])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 200 == 0:
            print(f"step {step}  {time.time() - t0:6.1f}s  loss {ema:.3f}", flush=True)
    cfg["train"] = {"steps": step, "seconds": round(time.time() - t0, 1), "final_loss": round(ema, 4),
                    "batch": a.batch, "params": n_params, "threads": a.threads}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": model.state_dict(), "config": cfg}, a.out)
    print(f"saved {a.out}: {cfg['train']}")


if __name__ == "__main__":
    main()
