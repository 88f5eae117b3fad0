"""Reading vocabularies: the GPT-2 byte table, tokenizer.json component trees, text encoders and the
per-file cache of decoded vocabularies (TokenizerInfo's loaders use them)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from structgen.errors import TokenizerError





# --------------------------------------------------------------------------------------
# GPT-2 byte <-> unicode table
# --------------------------------------------------------------------------------------


def _gpt2_bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 table: printable Latin-1 bytes map to themselves, the other 68 bytes to
    U+0100.. in byte order, so every byte has a visible, non-space character."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return dict(sorted(table.items()))


BYTE_TO_UNICODE: dict[int, str] = _gpt2_bytes_to_unicode()
"""GPT-2 byte-level table: byte value → the vocabulary character that stands for it."""
UNICODE_TO_BYTE: dict[str, int] = {c: b for b, c in BYTE_TO_UNICODE.items()}
"""Inverse of `BYTE_TO_UNICODE`."""

# str.translate table to Latin-1 characters (one per byte) and a detector for characters
# outside the table (those would otherwise pass through translate unchanged).
_BYTELEVEL_TRANSLATE = {ord(c): chr(b) for c, b in UNICODE_TO_BYTE.items()}
_BYTELEVEL_BAD = re.compile(
    "[^" + "".join(re.escape(c) for c in sorted(UNICODE_TO_BYTE)) + "]"
)
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")

# Well-known end-of-sequence names, tried group by group when no configuration says
# which token is EOS; every present member of the first group with a hit is used.
_EOS_HEURISTIC: tuple[tuple[str, ...], ...] = (
    ("<|end_of_text|>", "<|eot_id|>"),  # Llama 3 (base EOS and chat end-of-turn)
    ("<|im_end|>",),  # ChatML models: Qwen, SmolLM2, ...
    ("<|endoftext|>",),  # GPT-2 / tiktoken / base Qwen
    ("</s>",),  # SentencePiece: Llama 2, Mistral
    ("<eos>", "<end_of_turn>"),  # Gemma
    ("<|end|>",),  # Phi-3
)


def _heuristic_eos(names: Mapping[str, int], special: set[int]) -> list[int]:
    """EOS ids from well-known names among the special tokens (see `_EOS_HEURISTIC`)."""
    for group in _EOS_HEURISTIC:
        ids = sorted({names[n] for n in group if n in names and names[n] in special})
        if ids:
            return ids
    return []



# --------------------------------------------------------------------------------------
# TokenizerInfo
# --------------------------------------------------------------------------------------


class JsonFileEncoder:
    """Encodes text with the ``tokenizers`` library from a tokenizer.json, loaded on first use
    (picklable: the path travels, not the tokenizer)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._tok: Any = None

    def __call__(self, text: str) -> list[int]:
        if self._tok is None:
            try:
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise TokenizerError("encoding text needs the `tokenizers` package") from exc
            self._tok = Tokenizer.from_file(self.path)
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def __getstate__(self) -> dict:
        return {"path": self.path, "_tok": None}


def _hf_encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


# --------------------------------------------------------------------------------------
# helpers for tokenizer.json component trees
# --------------------------------------------------------------------------------------


def _find_components(node: Any, type_name: str) -> list[dict]:
    """All component dicts of ``type_name`` in a normalizer/pre-tokenizer/decoder tree
    (``Sequence`` nests them under ``normalizers``/``pretokenizers``/``decoders``...)."""
    found: list[dict] = []
    if isinstance(node, dict):
        if node.get("type") == type_name:
            found.append(node)
        for value in node.values():
            if isinstance(value, (list, dict)):
                found.extend(_find_components(value, type_name))
    elif isinstance(node, list):
        for item in node:
            found.extend(_find_components(item, type_name))
    return found


def _pattern_str(pattern: Any) -> str | None:
    """The literal of a ``{"String": ...}`` pattern (None for regex patterns)."""
    if isinstance(pattern, dict):
        value = pattern.get("String")
        return value if isinstance(value, str) else None
    return pattern if isinstance(pattern, str) else None


def _post_processor_special_ids(post: Any) -> set[int]:
    """Ids a TemplateProcessing post-processor inserts (BOS/EOS/CLS...): control tokens."""
    ids: set[int] = set()
    for comp in _find_components(post, "TemplateProcessing"):
        specials = comp.get("special_tokens")
        if isinstance(specials, dict):
            for entry in specials.values():
                if isinstance(entry, dict):
                    ids.update(i for i in entry.get("ids", ()) if isinstance(i, int))
    return ids


# ---- the vocabulary cache of from_tokenizer_json --------------------------------------------
# Parsing a tokenizer.json (Llama-3's is 9 MB, mostly BPE merges a mask never needs) is most of a
# cold start; the decoded vocabulary is kept as one .npz per (file, size, mtime, arguments).

_VOCAB_CACHE_VERSION = 1


def _vocab_cache_file(path: Path, config_path: Path, vocab_size: int | None,
                      stop_token_ids: Iterable[int] | None) -> Path | None:
    """Where the decoded vocabulary of this file and these arguments is cached (None: no cache)."""
    from ..options import default_cache_root

    root = default_cache_root()
    try:
        st = path.stat()
        cst = config_path.stat() if config_path.is_file() else None
    except OSError:
        return None
    key = json.dumps([_VOCAB_CACHE_VERSION, str(path.resolve()), st.st_size, st.st_mtime_ns,
                      cst and (cst.st_size, cst.st_mtime_ns), vocab_size,
                      None if stop_token_ids is None else sorted(int(i) for i in stop_token_ids)])
    return root / "tokenizers" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".npz")


def _save_vocab_cache(info: Any, cache: Path | None) -> None:
    if cache is None:
        return
    lengths = np.fromiter((len(b) for b in info.token_bytes), dtype=np.int64, count=len(info.token_bytes))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, blob=np.frombuffer(b"".join(info.token_bytes), dtype=np.uint8), lengths=lengths,
                 special=info.special_ids, stops=np.array(info.stop_token_ids, dtype=np.int64),
                 meta=np.array([json.dumps({"vocab_size": info.vocab_size, "prepend_space": info.prepend_space,
                                            "name": info.name})]))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home: parse the file each time


def _load_vocab_cache(cls: type, cache: Path | None) -> Any:
    if cache is None or not cache.is_file():
        return None
    try:
        with np.load(cache) as z:
            blob, lengths = z["blob"].tobytes(), z["lengths"]
            special, stops, meta = z["special"], z["stops"], json.loads(str(z["meta"][0]))
    except Exception:  # noqa: BLE001 - a partial or foreign file: parse the tokenizer again
        return None
    ends = np.cumsum(lengths).tolist()
    starts = [0] + ends[:-1]
    token_bytes = [blob[a:b] for a, b in zip(starts, ends)]
    return cls(token_bytes, special_ids=special.tolist(), stop_token_ids=stops.tolist(),
               vocab_size=meta["vocab_size"], prepend_space=meta["prepend_space"], name=meta["name"])
