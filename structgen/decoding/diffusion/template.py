"""Infilling templates: fixed byte pieces and gaps (`ByteGap`, `TokenGap`) in order, and how a
template is filled to text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ...errors import StructgenError


@dataclass(frozen=True)
class ByteGap:
    """A gap of `min_len..max_len` arbitrary bytes (`max_len=None`: unbounded), optionally
    restricted to the bytes in `alphabet`."""

    min_len: int = 0
    max_len: int | None = None
    alphabet: bytes | None = None

    def __post_init__(self) -> None:
        if self.min_len < 0 or (self.max_len is not None and self.max_len < self.min_len):
            raise StructgenError(f"bad ByteGap bounds {self.min_len}..{self.max_len}")


@dataclass(frozen=True)
class TokenGap:
    """A gap of exactly `k` positions, each one vocabulary token (not special, not empty)."""

    k: int

    def __post_init__(self) -> None:
        if self.k < 0:
            raise StructgenError(f"bad TokenGap length {self.k}")


Part = Union[bytes, ByteGap, TokenGap]
Filling = Union[bytes, list]  # bytes for a ByteGap, a list of token ids for a TokenGap


@dataclass(frozen=True)
class Template:
    """Fixed byte pieces and gaps, in order. `str` pieces are UTF-8 encoded."""

    parts: tuple = field(default=())

    def __init__(self, parts) -> None:
        norm = []
        for p in parts:
            if isinstance(p, str):
                p = p.encode("utf-8")
            if isinstance(p, (bytes, bytearray)):
                p = bytes(p)
            elif not isinstance(p, (ByteGap, TokenGap)):
                raise StructgenError(f"template part must be bytes, str, ByteGap or TokenGap, not {type(p).__name__}")
            norm.append(p)
        object.__setattr__(self, "parts", tuple(norm))

    @property
    def gaps(self) -> list:
        """The gaps, in order (the order of example_completion's fillings)."""
        return [p for p in self.parts if not isinstance(p, bytes)]

    def fill(self, fillings: list, token_bytes: list[bytes] | None = None) -> bytes:
        """The template's text with `fillings` (one per gap) substituted; token ids need `token_bytes`."""
        gaps = self.gaps
        if len(fillings) != len(gaps):
            raise StructgenError(f"{len(fillings)} fillings for {len(gaps)} gaps")
        out = bytearray()
        it = iter(fillings)
        for p in self.parts:
            if isinstance(p, bytes):
                out += p
                continue
            f = next(it)
            if isinstance(p, TokenGap):
                if token_bytes is None:
                    raise StructgenError("filling a TokenGap needs token_bytes")
                if len(f) != p.k:
                    raise StructgenError(f"TokenGap({p.k}) filled with {len(f)} tokens")
                for t in f:
                    out += token_bytes[t]
            else:
                if len(f) < p.min_len or (p.max_len is not None and len(f) > p.max_len):
                    raise StructgenError(f"filling of length {len(f)} does not fit {p}")
                if p.alphabet is not None and any(b not in p.alphabet for b in f):
                    raise StructgenError(f"filling {f!r} leaves the alphabet of {p}")
                out += f
        return bytes(out)
