"""Apply an int32 token bitmask to logits in place (torch on CPU/GPU, numpy).

The bitmask layout is the one XGrammar and llguidance use: an int32 tensor of shape
``(batch, ceil(vocab / 32))``; bit ``j`` (little-endian: ``(word >> j) & 1``) of word
``w`` says whether token id ``32 * w + j`` is allowed.  A set bit means *allowed*.

``apply_token_bitmask_inplace`` sets every disallowed logit to ``-inf``:

* columns ``j < min(V, 32 * W)`` follow their bit;
* columns ``j >= 32 * W`` (logits wider than the mask, e.g. a model whose output layer is
  padded past the tokenizer) are always set to ``-inf``;
* bits past the logits width ``V`` are ignored.

On CUDA logits a small kernel from ``csrc/apply_token_bitmask.cu`` is compiled lazily with
``torch.utils.cpp_extension.load`` the first time it is needed (this takes a while once,
then torch caches the build).  If that is impossible (no nvcc, no ninja, a compile error,
a launch error) a warning is logged once and a vectorised torch implementation is used.
``STRUCTGEN_DISABLE_CUDA_KERNEL=1`` forces the torch implementation.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from structgen import bitset
from structgen.errors import StructgenError

__all__ = [
    "BITS_PER_WORD",
    "bitmask_dtype",
    "get_bitmask_shape",
    "allocate_token_bitmask",
    "reset_token_bitmask",
    "apply_token_bitmask_inplace",
    "apply_token_bitmask_inplace_numpy",
    "bitmask_to_bool_mask",
    "bool_mask_to_bitmask",
    "is_cuda_kernel_available",
]

logger = logging.getLogger(__name__)

BITS_PER_WORD = 32
bitmask_dtype = torch.int32

_DISABLE_ENV = "STRUCTGEN_DISABLE_CUDA_KERNEL"
_EXT_NAME = "structgen_apply_token_bitmask"
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_CUDA_KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_LITTLE_ENDIAN = sys.byteorder == "little"


# --------------------------------------------------------------------------- allocation


def get_bitmask_shape(batch_size: int, vocab_size: int) -> tuple[int, int]:
    """Shape of the bitmask for ``batch_size`` rows over ``vocab_size`` tokens."""
    if batch_size < 0 or vocab_size < 0:
        raise StructgenError(f"invalid bitmask shape request ({batch_size}, {vocab_size})")
    return (batch_size, (vocab_size + BITS_PER_WORD - 1) // BITS_PER_WORD)


def allocate_token_bitmask(batch_size: int, vocab_size: int) -> torch.Tensor:
    """A CPU int32 bitmask ``(batch_size, ceil(vocab_size / 32))`` with every token allowed."""
    return torch.full(get_bitmask_shape(batch_size, vocab_size), -1, dtype=bitmask_dtype)


def reset_token_bitmask(bitmask: torch.Tensor) -> None:
    """Allow every token again (fill with -1)."""
    bitmask.fill_(-1)


# --------------------------------------------------------------------------- conversions


def bitmask_to_bool_mask(bitmask: torch.Tensor, vocab_size: int | None = None) -> torch.Tensor:
    """Unpack an int32 bitmask ``(..., W)`` to a bool tensor ``(..., vocab_size)`` (True = allowed)."""
    bitmask = _as_int32_tensor(bitmask)
    n = bitmask.shape[-1] * BITS_PER_WORD if vocab_size is None else int(vocab_size)
    if n > bitmask.shape[-1] * BITS_PER_WORD:
        raise StructgenError(f"vocab_size {n} exceeds the bitmask's {bitmask.shape[-1] * 32} bits")
    lead = bitmask.shape[:-1]
    flat = bitmask.reshape(-1, bitmask.shape[-1])
    return _unpack_disallowed(flat, n).logical_not().reshape(*lead, n)


def bool_mask_to_bitmask(mask: torch.Tensor) -> torch.Tensor:
    """Pack a bool tensor ``(..., V)`` (True = allowed) into an int32 bitmask ``(..., ceil(V/32))``."""
    return torch.from_numpy(bitset.from_bool(torch.as_tensor(mask, dtype=torch.bool).cpu().numpy()))


# --------------------------------------------------------------------------- torch apply


def apply_token_bitmask_inplace(
    logits: torch.Tensor,
    bitmask: torch.Tensor | np.ndarray,
    *,
    indices: Sequence[int] | torch.Tensor | None = None,
) -> None:
    """Set the logits of disallowed tokens to ``-inf``, in place.

    Args:
        logits: ``(B, V)`` or ``(V,)``; float32, float16, bfloat16 (or float64); CPU or CUDA.
        bitmask: int32 ``(B, W)`` or ``(W,)``; may live on another device than ``logits``
            (it is moved with ``non_blocking=True``).  A 1-D bitmask with 2-D logits applies
            to every row.  A numpy int32 array is accepted too.
        indices: the batch rows to mask; row ``k`` of the logits is masked with row ``k`` of
            the bitmask (XGrammar's semantics).  ``None`` masks every row.
    """
    if not isinstance(logits, torch.Tensor):
        raise StructgenError(
            f"logits must be a torch.Tensor, not {type(logits).__name__} "
            "(use apply_token_bitmask_inplace_numpy for numpy arrays)"
        )
    if logits.dtype not in _FLOAT_DTYPES:
        raise StructgenError(f"logits dtype must be float32, float16 or bfloat16, not {logits.dtype}")
    if logits.dim() not in (1, 2):
        raise StructgenError(f"logits must be 1-D or 2-D, got shape {tuple(logits.shape)}")
    bitmask = _as_int32_tensor(bitmask)
    if bitmask.dim() not in (1, 2):
        raise StructgenError(f"bitmask must be 1-D or 2-D, got shape {tuple(bitmask.shape)}")

    logits2d = logits.unsqueeze(0) if logits.dim() == 1 else logits
    batch = logits2d.shape[0]
    if bitmask.dim() == 2 and bitmask.shape[0] != batch and not (bitmask.shape[0] == 1):
        raise StructgenError(
            f"bitmask has {bitmask.shape[0]} rows but logits have {batch} "
            f"(shapes {tuple(bitmask.shape)} and {tuple(logits.shape)})"
        )
    bitmask2d = bitmask.reshape(1, -1) if bitmask.dim() == 1 else bitmask
    rows = _normalize_indices(indices, batch)
    if rows is not None and len(rows) == 0:
        return
    if batch == 0 or logits2d.shape[1] == 0:
        return

    if bitmask2d.device != logits2d.device:
        bitmask2d = bitmask2d.to(logits2d.device, non_blocking=True)

    if logits2d.is_cuda and _cuda_kernel_wanted():
        if _apply_cuda(logits2d, bitmask2d, rows):
            return
    _apply_torch(logits2d, bitmask2d, rows)


def _as_int32_tensor(bitmask: Any) -> torch.Tensor:
    if isinstance(bitmask, np.ndarray):
        if bitmask.dtype not in (np.int32, np.uint32):
            raise StructgenError(f"bitmask dtype must be int32, not {bitmask.dtype}")
        bitmask = torch.from_numpy(np.ascontiguousarray(bitmask).view(np.int32))
    if not isinstance(bitmask, torch.Tensor):
        raise StructgenError(f"bitmask must be a torch.Tensor, not {type(bitmask).__name__}")
    if bitmask.dtype != torch.int32:
        raise StructgenError(f"bitmask dtype must be torch.int32, not {bitmask.dtype}")
    return bitmask


def _normalize_indices(indices: Any, batch: int) -> list[int] | None:
    if indices is None:
        return None
    if isinstance(indices, torch.Tensor):
        indices = indices.flatten().tolist()
    rows = sorted({int(i) for i in indices})
    for r in rows:
        if not 0 <= r < batch:
            raise StructgenError(f"index {r} out of range for {batch} logits rows")
    return rows


_BIT_SHIFTS: dict[torch.device, torch.Tensor] = {}


def _unpack_disallowed(words: torch.Tensor, n: int) -> torch.Tensor:
    """int32 words ``(K, W)`` → bool ``(K, n)``, True where the token is *disallowed*."""
    k, w = words.shape
    if words.device.type == "cpu" and _LITTLE_ENDIAN:
        inv = np.invert(np.ascontiguousarray(words.numpy()))
        bits = np.unpackbits(inv.view(np.uint8), axis=-1, count=n, bitorder="little")
        return torch.from_numpy(bits).view(torch.bool)
    shifts = _BIT_SHIFTS.get(words.device)
    if shifts is None:
        shifts = torch.arange(BITS_PER_WORD, dtype=torch.int32, device=words.device)
        _BIT_SHIFTS[words.device] = shifts
    bits = (words.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(k, w * BITS_PER_WORD)[:, :n] == 0


def _apply_torch(logits: torch.Tensor, bitmask: torch.Tensor, rows: list[int] | None) -> None:
    """Vectorised reference implementation (any device)."""
    v = logits.shape[1]
    covered = bitmask.shape[1] * BITS_PER_WORD
    n = min(v, covered)
    neg_inf = float("-inf")
    if rows is None:
        disallowed = _unpack_disallowed(bitmask, n)  # (B or 1, n): broadcasts over rows
        logits[:, :n].masked_fill_(disallowed, neg_inf)
        if v > covered:
            logits[:, covered:] = neg_inf
        return
    idx = torch.tensor(rows, dtype=torch.long, device=logits.device)
    masks = bitmask if bitmask.shape[0] == 1 else bitmask.index_select(0, idx)
    disallowed = _unpack_disallowed(masks, n)
    sub = logits.index_select(0, idx)
    sub[:, :n].masked_fill_(disallowed, neg_inf)
    if v > covered:
        sub[:, covered:] = neg_inf
    logits.index_copy_(0, idx, sub)


# --------------------------------------------------------------------------- numpy apply


def apply_token_bitmask_inplace_numpy(
    logits: np.ndarray,
    bitmask: np.ndarray,
    *,
    indices: Sequence[int] | None = None,
) -> None:
    """The numpy twin of :func:`apply_token_bitmask_inplace` (e.g. llama-cpp's float32 logits).

    ``logits`` ``(V,)`` or ``(B, V)`` floating array, modified in place; ``bitmask`` int32 or
    uint32 ``(W,)`` or ``(B, W)`` (a torch CPU tensor is accepted too).
    """
    if not isinstance(logits, np.ndarray) or not np.issubdtype(logits.dtype, np.floating):
        raise StructgenError("logits must be a floating-point numpy array")
    if not logits.flags.writeable:
        raise StructgenError("logits array is read-only")
    if isinstance(bitmask, torch.Tensor):
        bitmask = bitmask.detach().cpu().numpy()
    bitmask = np.asarray(bitmask)
    if bitmask.dtype not in (np.int32, np.uint32):
        raise StructgenError(f"bitmask dtype must be int32, not {bitmask.dtype}")
    if logits.ndim not in (1, 2) or bitmask.ndim not in (1, 2):
        raise StructgenError(f"bad shapes: logits {logits.shape}, bitmask {bitmask.shape}")
    logits2d = logits.reshape(1, -1) if logits.ndim == 1 else logits
    if logits.ndim == 1 and not np.shares_memory(logits2d, logits):  # pragma: no cover
        raise StructgenError("cannot view logits as 2-D")
    bitmask2d = bitmask.reshape(1, -1) if bitmask.ndim == 1 else bitmask
    batch, v = logits2d.shape
    if bitmask2d.shape[0] not in (1, batch):
        raise StructgenError(f"bitmask has {bitmask2d.shape[0]} rows but logits have {batch}")
    rows = _normalize_indices(indices, batch)
    covered = bitmask2d.shape[1] * BITS_PER_WORD
    n = min(v, covered)
    # Little-endian bytes regardless of the host, inverted so that 1 = disallowed.
    words = np.ascontiguousarray(bitmask2d.astype("<u4", copy=False))
    disallowed = np.unpackbits(np.invert(words).view(np.uint8), axis=-1, count=n, bitorder="little")
    disallowed = disallowed.view(np.bool_)
    if rows is None:
        np.copyto(logits2d[:, :n], -np.inf, where=disallowed)
        if v > covered:
            logits2d[:, covered:] = -np.inf
        return
    for r in rows:  # a loop over batch rows only
        np.copyto(logits2d[r, :n], -np.inf, where=disallowed[r if disallowed.shape[0] > 1 else 0])
        if v > covered:
            logits2d[r, covered:] = -np.inf


# --------------------------------------------------------------------------- CUDA kernel

_ext_lock = threading.Lock()
_ext_state: dict[str, Any] = {"loaded": False, "module": None, "warned": False}


def _cuda_kernel_wanted() -> bool:
    return os.environ.get(_DISABLE_ENV, "").strip().lower() in ("", "0", "false", "no")


def _warn_once(msg: str) -> None:
    if not _ext_state["warned"]:
        _ext_state["warned"] = True
        logger.warning("%s; using the torch implementation of apply_token_bitmask_inplace", msg)


def _csrc_dir() -> pathlib.Path | None:
    pkg_dir = pathlib.Path(__file__).resolve().parent.parent  # .../structgen
    for cand in (pkg_dir / "csrc", pkg_dir.parent / "csrc"):
        if (cand / "apply_token_bitmask.cu").is_file() and (cand / "apply_token_bitmask.cpp").is_file():
            return cand
    return None


def _load_cuda_ext() -> Any | None:
    """Build/load the CUDA extension once; None (after one warning) when impossible."""
    if _ext_state["loaded"]:
        return _ext_state["module"]
    with _ext_lock:
        if _ext_state["loaded"]:
            return _ext_state["module"]
        module = None
        try:
            if not torch.cuda.is_available():
                raise RuntimeError("CUDA is not available")
            src = _csrc_dir()
            if src is None:
                raise RuntimeError("csrc/apply_token_bitmask.{cu,cpp} not found")
            from torch.utils import cpp_extension

            module = cpp_extension.load(
                name=_EXT_NAME,
                sources=[str(src / "apply_token_bitmask.cpp"), str(src / "apply_token_bitmask.cu")],
                extra_cflags=["-O3"],
                extra_cuda_cflags=["-O3"],
                verbose=False,
            )
        except Exception as exc:  # noqa: BLE001 - any build problem means "use the fallback"
            _warn_once(f"structgen CUDA bitmask kernel unavailable ({type(exc).__name__}: {exc})")
            module = None
        _ext_state["module"] = module
        _ext_state["loaded"] = True
        return module


def is_cuda_kernel_available() -> bool:
    """Whether the CUDA kernel is (or can be) built and loaded; builds it if needed."""
    return _cuda_kernel_wanted() and _load_cuda_ext() is not None


def _apply_cuda(logits: torch.Tensor, bitmask: torch.Tensor, rows: list[int] | None) -> bool:
    """Run the CUDA kernel; False when it cannot handle this call (caller falls back)."""
    if logits.dtype not in _CUDA_KERNEL_DTYPES or (logits.stride(1) != 1 and logits.shape[1] > 1):
        return False
    ext = _load_cuda_ext()
    if ext is None:
        return False
    try:
        if bitmask.stride(-1) != 1:
            bitmask = bitmask.contiguous()
        idx = None
        if rows is not None:
            idx = torch.tensor(rows, dtype=torch.int32).to(logits.device, non_blocking=True)
        with torch.cuda.device(logits.device):
            stream = torch.cuda.current_stream(logits.device).cuda_stream
            ext.apply_token_bitmask_inplace(logits, bitmask, idx, int(stream))
        return True
    except Exception as exc:  # noqa: BLE001
        _warn_once(f"structgen CUDA bitmask kernel failed ({type(exc).__name__}: {exc})")
        _ext_state["module"] = None
        return False
