"""structgen.bitset: the packed layout (bit t of word t // 32, little-endian) and its round trips."""

from __future__ import annotations

import numpy as np

from structgen import bitset


def test_round_trips_against_the_definition():
    rng = np.random.default_rng(0)
    for n in (1, 31, 32, 33, 1000, 128_256):
        ids = np.unique(rng.integers(0, n, size=min(n, 50)))
        bits = bitset.from_ids(ids, n)
        assert bits.dtype == np.uint32 and bits.shape == (bitset.words_for(n),)
        for t in ids:  # the definition, word by word
            assert (int(bits[t // 32]) >> (t % 32)) & 1
        assert bitset.to_ids(bits, n).tolist() == ids.tolist()
        flags = bitset.to_bool(bits, n)
        assert flags.shape == (n,) and np.flatnonzero(flags).tolist() == ids.tolist()
        assert np.array_equal(bitset.from_bool(flags).view(np.uint32), bits)
        assert all(bitset.has(bits.view(np.int32), int(t)) for t in ids)
        bitset.clear_ids(bits, ids[:1])
        assert not bitset.has(bits, int(ids[0])) and bitset.to_ids(bits, n).tolist() == ids[1:].tolist()


def test_rows_stay_rows():
    flags = np.zeros((3, 70), dtype=bool)
    flags[0, 0] = flags[1, 69] = flags[2, 33] = True
    words = bitset.from_bool(flags)
    assert words.dtype == np.int32 and words.shape == (3, 3)
    assert np.array_equal(bitset.to_bool(words, 70), flags)
    row = np.zeros(3, dtype=np.int32)
    bitset.set_ids(row, [31])  # the sign bit of an int32 word
    assert row[0] == np.int32(-(2 ** 31)) and bitset.to_ids(row, 70).tolist() == [31]
