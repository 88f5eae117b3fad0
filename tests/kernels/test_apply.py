"""apply_token_bitmask_inplace: torch (CPU, CUDA kernel, CUDA fallback) and numpy variants."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from structgen.errors import StructgenError
from structgen.kernels import apply as apply_mod
from structgen.kernels.apply import (
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    apply_token_bitmask_inplace_numpy,
    bitmask_to_bool_mask,
    bool_mask_to_bitmask,
    get_bitmask_shape,
    reset_token_bitmask,
)

NEG_INF = float("-inf")
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
VOCABS = [1, 31, 32, 33, 100, 257]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


# ---------------------------------------------------------------------------- helpers


def random_bitmask(rows: int, words: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-(2**31), 2**31 - 1, (rows, words), dtype=torch.int32, generator=g)


def random_logits(rows: int, vocab: int, dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=g).to(dtype)


def naive_apply(logits: torch.Tensor, bitmask: torch.Tensor, rows=None) -> torch.Tensor:
    """Per-token reference: a copy of ``logits`` (2-D) masked with ``bitmask`` (2-D)."""
    out = logits.clone()
    words = bitmask.tolist()
    for r in range(out.shape[0]) if rows is None else rows:
        mask_row = words[r] if len(words) > 1 else words[0]
        for tok in range(out.shape[1]):
            w, j = divmod(tok, 32)
            allowed = w < len(mask_row) and (mask_row[w] >> j) & 1 == 1
            if not allowed:
                out[r, tok] = NEG_INF
    return out


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(torch.isneginf(a), torch.isneginf(b))
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------- allocation


def test_allocate_and_shape():
    assert get_bitmask_shape(3, 100) == (3, 4)
    assert get_bitmask_shape(1, 32) == (1, 1)
    assert get_bitmask_shape(2, 33) == (2, 2)
    bm = allocate_token_bitmask(3, 49152)
    assert bm.shape == (3, 1536) and bm.dtype == torch.int32 and bm.device.type == "cpu"
    assert bool((bm == -1).all())
    bm.zero_()
    reset_token_bitmask(bm)
    assert bool((bm == -1).all())


def test_bit_order_is_little_endian():
    bm = torch.zeros(1, 2, dtype=torch.int32)
    bm[0, 0] = 1 << 3  # token 3
    bm[0, 1] = -(2**31)  # bit 31 of word 1: token 63
    logits = torch.zeros(1, 64)
    apply_token_bitmask_inplace(logits, bm)
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [3, 63]


def test_all_allowed_mask_leaves_logits_untouched():
    logits = random_logits(2, 100, torch.float32)
    before = logits.clone()
    apply_token_bitmask_inplace(logits, allocate_token_bitmask(2, 100))
    assert torch.equal(logits, before)


# ---------------------------------------------------------------------------- torch CPU


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vocab", VOCABS)
def test_random_masks_2d(dtype, vocab):
    rows = 3
    bm = random_bitmask(rows, get_bitmask_shape(rows, vocab)[1], seed=vocab)
    logits = random_logits(rows, vocab, dtype)
    expected = naive_apply(logits, bm)
    apply_token_bitmask_inplace(logits, bm)
    assert_same(logits, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vocab", [1, 33, 257])
def test_random_masks_1d(dtype, vocab):
    bm = random_bitmask(1, get_bitmask_shape(1, vocab)[1], seed=vocab)
    logits = random_logits(1, vocab, dtype)
    expected = naive_apply(logits, bm)[0]
    flat = logits[0].clone()
    apply_token_bitmask_inplace(flat, bm[0])
    assert_same(flat, expected)
    # a 1-D logits row with a (1, W) bitmask works too
    flat = logits[0].clone()
    apply_token_bitmask_inplace(flat, bm)
    assert_same(flat, expected)


def test_1d_bitmask_broadcasts_over_rows():
    bm = random_bitmask(1, 4, seed=5)
    logits = random_logits(4, 100, torch.float32)
    expected = naive_apply(logits, bm)
    apply_token_bitmask_inplace(logits, bm[0])
    assert_same(logits, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_wider_than_mask(dtype):
    # a 40-token mask (2 words = 64 bits) applied to 100-wide logits: 64..99 become -inf
    bm = random_bitmask(2, 2, seed=7)
    logits = random_logits(2, 100, dtype)
    expected = naive_apply(logits, bm)
    apply_token_bitmask_inplace(logits, bm)
    assert_same(logits, expected)
    assert bool(torch.isneginf(logits[:, 64:]).all())


def test_logits_narrower_than_mask_ignores_extra_bits():
    bm = torch.zeros(1, 3, dtype=torch.int32)  # everything disallowed ...
    bm[0, 0] = 0b1010  # ... but tokens 1 and 3
    logits = torch.zeros(1, 20)
    apply_token_bitmask_inplace(logits, bm)
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [1, 3]


def test_zero_word_bitmask_disallows_everything():
    logits = torch.zeros(2, 5)
    apply_token_bitmask_inplace(logits, torch.zeros(2, 0, dtype=torch.int32))
    assert bool(torch.isneginf(logits).all())


@pytest.mark.parametrize("dtype", DTYPES)
def test_indices(dtype):
    rows, vocab = 5, 100
    bm = random_bitmask(rows, 4, seed=11)
    logits = random_logits(rows, vocab, dtype)
    expected = naive_apply(logits, bm, rows=[1, 3])
    apply_token_bitmask_inplace(logits, bm, indices=[3, 1, 3])
    assert_same(logits, expected)
    # untouched rows really are untouched
    assert bool(torch.isfinite(logits[[0, 2, 4]]).all())


def test_indices_variants():
    bm = random_bitmask(4, 2, seed=3)
    logits = random_logits(4, 50, torch.float32)
    before = logits.clone()
    apply_token_bitmask_inplace(logits, bm, indices=[])
    assert torch.equal(logits, before)
    apply_token_bitmask_inplace(logits, bm, indices=torch.tensor([2]))
    assert_same(logits, naive_apply(before, bm, rows=[2]))
    with pytest.raises(StructgenError):
        apply_token_bitmask_inplace(logits, bm, indices=[4])


def test_non_contiguous_logits_are_masked_in_place():
    base = random_logits(3, 120, torch.float32)
    view = base[:, 10:110]  # row stride 120, width 100
    bm = random_bitmask(3, 4, seed=13)
    expected = naive_apply(view, bm)
    apply_token_bitmask_inplace(view, bm)
    assert_same(base[:, 10:110], expected)


def test_numpy_bitmask_accepted_by_torch_apply():
    bm = random_bitmask(2, 4, seed=17)
    logits = random_logits(2, 128, torch.float32)
    expected = naive_apply(logits, bm)
    apply_token_bitmask_inplace(logits, bm.numpy())
    assert_same(logits, expected)


def test_large_vocab_against_vectorised_reference():
    vocab = 128_256
    bm = random_bitmask(2, get_bitmask_shape(2, vocab)[1], seed=19)
    logits = random_logits(2, vocab, torch.float32)
    words = bm.numpy().view(np.uint32)
    tok = np.arange(vocab)
    allowed = (words[:, tok // 32] >> (tok % 32).astype(np.uint32)) & 1 == 1
    expected = np.where(allowed, logits.numpy(), -np.inf)
    apply_token_bitmask_inplace(logits, bm)
    np.testing.assert_array_equal(logits.numpy(), expected)


def test_bool_mask_roundtrip():
    g = torch.Generator().manual_seed(23)
    mask = torch.rand(3, 77, generator=g) < 0.3
    bm = bool_mask_to_bitmask(mask)
    assert bm.shape == (3, 3) and bm.dtype == torch.int32
    assert torch.equal(bitmask_to_bool_mask(bm, 77), mask)
    assert not bitmask_to_bool_mask(bm).numpy()[:, 77:].any()
    logits = torch.zeros(3, 77)
    apply_token_bitmask_inplace(logits, bm)
    assert torch.equal(torch.isfinite(logits), mask)


@pytest.mark.parametrize(
    "logits, bitmask",
    [
        (torch.zeros(2, 10), torch.zeros(2, 1, dtype=torch.int64)),  # wrong mask dtype
        (torch.zeros(2, 10, dtype=torch.int32), torch.zeros(2, 1, dtype=torch.int32)),  # int logits
        (torch.zeros(3, 10), torch.zeros(2, 1, dtype=torch.int32)),  # batch mismatch
        (torch.zeros(2, 2, 10), torch.zeros(2, 1, dtype=torch.int32)),  # 3-D logits
        (np.zeros((2, 10), np.float32), torch.zeros(2, 1, dtype=torch.int32)),  # numpy logits
    ],
)
def test_bad_arguments(logits, bitmask):
    with pytest.raises(StructgenError):
        apply_token_bitmask_inplace(logits, bitmask)


# ---------------------------------------------------------------------------- numpy


@pytest.mark.parametrize("vocab", VOCABS)
def test_numpy_1d_and_2d(vocab):
    bm = random_bitmask(3, get_bitmask_shape(3, vocab)[1], seed=vocab + 1)
    logits = random_logits(3, vocab, torch.float32)
    expected = naive_apply(logits, bm).numpy()

    arr = logits.numpy().copy()
    apply_token_bitmask_inplace_numpy(arr, bm.numpy())
    np.testing.assert_array_equal(arr, expected)

    row = logits.numpy()[1].copy()
    apply_token_bitmask_inplace_numpy(row, bm.numpy()[1])
    np.testing.assert_array_equal(row, expected[1])

    arr = logits.numpy().copy()  # uint32 masks are the same bits
    apply_token_bitmask_inplace_numpy(arr, bm.numpy().view(np.uint32))
    np.testing.assert_array_equal(arr, expected)


def test_numpy_wider_logits_and_indices():
    bm = random_bitmask(3, 2, seed=29)
    logits = random_logits(3, 90, torch.float32)
    expected = naive_apply(logits, bm, rows=[0, 2]).numpy()
    arr = logits.numpy().copy()
    apply_token_bitmask_inplace_numpy(arr, bm.numpy(), indices=[2, 0])
    np.testing.assert_array_equal(arr, expected)
    assert np.isneginf(arr[0, 64:]).all() and np.isfinite(arr[1]).all()


def test_numpy_llama_cpp_style_row():
    vocab = 49152
    bm = allocate_token_bitmask(1, vocab)[0]
    bm.zero_()
    bm[0] = 1 << 2  # only token 2 (<|im_end|>)
    arr = np.random.default_rng(0).standard_normal(vocab).astype(np.float32)
    apply_token_bitmask_inplace_numpy(arr, bm)  # a torch CPU mask is accepted too
    assert int(np.argmax(arr)) == 2 and np.isfinite(arr).sum() == 1


def test_numpy_bad_arguments():
    with pytest.raises(StructgenError):
        apply_token_bitmask_inplace_numpy(np.zeros(10, np.int32), np.zeros(1, np.int32))
    with pytest.raises(StructgenError):
        apply_token_bitmask_inplace_numpy(np.zeros(10, np.float32), np.zeros(1, np.int64))
    ro = np.zeros(10, np.float32)
    ro.flags.writeable = False
    with pytest.raises(StructgenError):
        apply_token_bitmask_inplace_numpy(ro, np.zeros(1, np.int32))


# ---------------------------------------------------------------------------- fallback logic


@pytest.fixture
def fresh_ext_state(monkeypatch):
    """Isolate the module-level 'extension loaded / warned' state."""
    monkeypatch.setattr(apply_mod, "_ext_state", {"loaded": False, "module": None, "warned": False})
    return apply_mod._ext_state


def test_env_var_disables_cuda_kernel(monkeypatch, fresh_ext_state):
    def boom():
        raise AssertionError("the extension must not be loaded when disabled")

    monkeypatch.setattr(apply_mod, "_load_cuda_ext", boom)
    for value in ("1", "true", "yes"):
        monkeypatch.setenv("STRUCTGEN_DISABLE_CUDA_KERNEL", value)
        assert not apply_mod._cuda_kernel_wanted()
        assert not apply_mod.is_cuda_kernel_available()
    monkeypatch.setenv("STRUCTGEN_DISABLE_CUDA_KERNEL", "0")
    assert apply_mod._cuda_kernel_wanted()


def test_unavailable_kernel_warns_once_and_falls_back(monkeypatch, fresh_ext_state, caplog):
    monkeypatch.delenv("STRUCTGEN_DISABLE_CUDA_KERNEL", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="structgen.kernels.apply"):
        assert apply_mod._load_cuda_ext() is None
        assert apply_mod._load_cuda_ext() is None
        assert not apply_mod.is_cuda_kernel_available()
    warnings = [r for r in caplog.records if "CUDA bitmask kernel unavailable" in r.getMessage()]
    assert len(warnings) == 1


def test_csrc_is_found():
    src = apply_mod._csrc_dir()
    assert src is not None
    assert (src / "apply_token_bitmask.cu").is_file()


def test_torch_fallback_directly_matches_reference():
    bm = random_bitmask(3, 2, seed=31)
    logits = random_logits(3, 70, torch.float32)
    expected = naive_apply(logits, bm, rows=[0, 1])
    apply_mod._apply_torch(logits, bm, [0, 1])
    assert_same(logits, expected)


# ---------------------------------------------------------------------------- CUDA


def _cuda_cases():
    for dtype in DTYPES + [torch.float64]:
        for vocab in (33, 257, 49152, 128_256):
            yield dtype, vocab


@CUDA
@pytest.mark.parametrize("disable", [False, True], ids=["kernel", "fallback"])
@pytest.mark.parametrize("dtype, vocab", list(_cuda_cases()))
def test_cuda_matches_cpu(monkeypatch, disable, dtype, vocab):
    if disable:
        monkeypatch.setenv("STRUCTGEN_DISABLE_CUDA_KERNEL", "1")
    else:
        monkeypatch.delenv("STRUCTGEN_DISABLE_CUDA_KERNEL", raising=False)
    rows = 4
    bm = random_bitmask(rows, get_bitmask_shape(rows, vocab)[1], seed=vocab)
    logits = random_logits(rows, vocab, dtype)
    expected = logits.clone()
    apply_token_bitmask_inplace(expected, bm)

    gpu = logits.cuda()
    apply_token_bitmask_inplace(gpu, bm)  # CPU bitmask, CUDA logits
    assert_same(gpu.cpu(), expected)

    gpu = logits.cuda()
    apply_token_bitmask_inplace(gpu, bm.cuda(), indices=[1, 3])
    expected_idx = logits.clone()
    apply_token_bitmask_inplace(expected_idx, bm, indices=[1, 3])
    assert_same(gpu.cpu(), expected_idx)

    flat = logits[2].cuda()
    apply_token_bitmask_inplace(flat, bm[2])
    assert_same(flat.cpu(), expected[2])


@CUDA
@pytest.mark.parametrize("disable", [False, True], ids=["kernel", "fallback"])
def test_cuda_wider_logits_and_strided_rows(monkeypatch, disable):
    if disable:
        monkeypatch.setenv("STRUCTGEN_DISABLE_CUDA_KERNEL", "1")
    else:
        monkeypatch.delenv("STRUCTGEN_DISABLE_CUDA_KERNEL", raising=False)
    bm = random_bitmask(3, 2, seed=37)
    base = random_logits(3, 120, torch.bfloat16)
    expected = base.clone()
    apply_token_bitmask_inplace(expected[:, 10:110], bm)
    gpu = base.cuda()
    apply_token_bitmask_inplace(gpu[:, 10:110], bm)
    assert_same(gpu.cpu(), expected)
    # one mask row broadcast over every row
    gpu = base.cuda()
    expected = base.clone()
    apply_token_bitmask_inplace(expected, bm[0])
    apply_token_bitmask_inplace(gpu, bm[0].cuda())
    assert_same(gpu.cpu(), expected)


@CUDA
def test_cuda_kernel_builds(monkeypatch, fresh_ext_state):
    monkeypatch.delenv("STRUCTGEN_DISABLE_CUDA_KERNEL", raising=False)
    from torch.utils import cpp_extension

    if shutil.which("nvcc") is None and cpp_extension.CUDA_HOME is None:
        pytest.skip("no nvcc: the CUDA kernel cannot be built here")
    assert apply_mod.is_cuda_kernel_available()
