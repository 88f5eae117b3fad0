"""Arrays on anonymous mappings of their own: zero-filled by the OS as their pages are first
touched, without numpy's huge-page advice, and grown in place (mremap) instead of copied. The
lexer's per-state tables, the parser's action table and the mask store's pools live on them.
"""

from __future__ import annotations

import mmap
import sys

import numpy as np


def mapped_array(shape: tuple[int, ...], dtype) -> tuple[np.ndarray, mmap.mmap | None]:
    """An uninitialized array on its own private anonymous mapping (and the mapping), where the
    platform has one: its pages are zero-filled on first touch without numpy's huge-page advice
    (a huge-page fault with compaction costs milliseconds on some VMs), and the mapping can be
    grown in place (see LexerTables._grow)."""
    private = getattr(mmap, "MAP_PRIVATE", None)
    if private is None:
        return np.empty(shape, dtype=dtype), None
    count = int(np.prod(shape, dtype=np.int64))
    buf = mmap.mmap(-1, max(1, count * np.dtype(dtype).itemsize), flags=private | mmap.MAP_ANONYMOUS)
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape), buf


HUGE_PAGE_ADVICE_BYTES = 1 << 22  # numpy advises huge pages for arrays this big (see unadvised_array)


def unadvised_array(shape: tuple[int, ...], dtype) -> tuple[np.ndarray, mmap.mmap | None]:
    """An uninitialized array (and its mapping, if it has one of its own): on the heap when small,
    else on a mapping of its own (mapped_array). Numpy advises huge pages for 4 MB or more, and
    here a huge-page fault with compaction stalled a 1,000-key object's compile by ~20 ms in one
    fresh process of three."""
    if int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize < HUGE_PAGE_ADVICE_BYTES:
        return np.empty(shape, dtype=dtype), None
    return mapped_array(shape, dtype)


# Linux 5.14+ (Python names it from 3.13); elsewhere the number may mean another advice: none
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform.startswith("linux") else None)


def prefault(buf: mmap.mmap | None, start: int, length: int) -> None:
    """Have the kernel fault in the pages of bytes start .. start + length of mapping `buf` (about to
    be written) in one call: ~30% less than faulting them in one by one (3.6 MB: 1.2 -> 0.86 ms;
    MaskBench's slowest tenth of compiles: p90 ~0.5 ms lower). A no-op without a mapping, or where
    the kernel lacks MADV_POPULATE_WRITE."""
    if buf is None or length <= 0 or MADV_POPULATE_WRITE is None:
        return
    page = mmap.PAGESIZE
    lo = start // page * page
    hi = min(len(buf), start + length)
    try:
        buf.madvise(MADV_POPULATE_WRITE, lo, hi - lo)
    except (OSError, ValueError):
        pass


def grow_mapped(holder: object, name: str, maps: dict, rows: int, used: int) -> None:
    """Grow the array attribute `name` of `holder` (rows of equal width; on the mapping
    maps[name] if it has one, see mapped_array) to `rows` rows, keeping its first `used` rows:
    remapped in place (mremap, no copy) while no other view of it is alive, else copied."""
    old = getattr(holder, name)
    cap, row, dtype = old.shape[0], old.shape[1:], old.dtype
    buf = maps.get(name)
    if buf is not None:
        setattr(holder, name, None)
        del old
        try:
            buf.resize(len(buf) // cap * rows)
            setattr(holder, name, np.frombuffer(buf, dtype=dtype).reshape((rows,) + row))
            return
        except (BufferError, OSError, SystemError):
            old = np.frombuffer(buf, dtype=dtype).reshape((cap,) + row)
    fresh, fresh_buf = mapped_array((rows,) + row, dtype)
    if fresh_buf is not None:
        maps[name] = fresh_buf
    fresh[:used] = old[:used]
    setattr(holder, name, fresh)
