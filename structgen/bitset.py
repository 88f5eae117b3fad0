"""Token bitsets in the ecosystem's packed layout: bit t of 32-bit word t // 32 is token t (little-endian
bit order within the word), as uint32 here and viewed as int32 in masks handed to users.

One place for packing, unpacking and testing bits outside the numba kernels (which set bits inline).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

BITS = 32


def words_for(n: int) -> int:
    """Words in a bitset of n tokens: ceil(n / 32)."""
    return (int(n) + BITS - 1) // BITS


def from_ids(ids: Iterable[int], n: int) -> np.ndarray:
    """uint32 words of an n-token bitset with exactly `ids` set."""
    bits = np.zeros(words_for(n), dtype=np.uint32)
    set_ids(bits, ids)
    return bits


def set_ids(bits: np.ndarray, ids: Iterable[int]) -> None:
    """Set the bits of `ids` in `bits` (uint32 or int32 words, changed in place)."""
    words = bits.view(np.uint32)
    for t in ids:
        t = int(t)
        words[t >> 5] |= np.uint32(1 << (t & 31))


def clear_ids(bits: np.ndarray, ids: Iterable[int]) -> None:
    """Clear the bits of `ids` in `bits` (in place)."""
    words = bits.view(np.uint32)
    for t in ids:
        t = int(t)
        words[t >> 5] &= ~np.uint32(1 << (t & 31))


def has(bits: np.ndarray, t: int) -> bool:
    """Whether bit t is set."""
    return bool((int(bits.view(np.uint32)[t >> 5]) >> (t & 31)) & 1)


def to_bool(bits: np.ndarray, n: int | None = None) -> np.ndarray:
    """bool[n] (default: every bit of the words) from packed words (the last axis; rows stay rows)."""
    little = np.ascontiguousarray(bits).view(np.uint32).astype("<u4", copy=False)
    flags = np.unpackbits(little.view(np.uint8), axis=-1, bitorder="little").view(np.bool_)
    return flags if n is None else flags[..., :n]


def to_ids(bits: np.ndarray, n: int) -> np.ndarray:
    """Sorted int32 ids of the set bits below n."""
    return np.flatnonzero(to_bool(bits, n)).astype(np.int32)


def from_bool(flags: np.ndarray) -> np.ndarray:
    """int32 words (the last axis packed) from bool[..., n]: the inverse of to_bool."""
    flags = np.asarray(flags, dtype=np.bool_)
    n = flags.shape[-1]
    padded = np.zeros((*flags.shape[:-1], words_for(n) * BITS), dtype=np.bool_)
    padded[..., :n] = flags
    packed = np.packbits(padded, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u4").astype(np.uint32).view(np.int32)
