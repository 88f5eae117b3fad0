"""Tokenizer vocabularies as exact byte strings: `TokenizerInfo` and its `TokenTrie`.

Everything downstream of grammar compilation works on *bytes*, never on token strings:
a token's bytes may be a fragment of a UTF-8 character, and several lexemes may share one
token. This module turns the three vocabulary families we meet into one representation:

* byte-level BPE (GPT-2 style, HF ``ByteLevel`` pre-tokenizer/decoder: Llama 3, Qwen,
  SmolLM2, ...): each vocabulary character stands for one byte via the GPT-2
  byte↔unicode table (written out below; transformers 5 no longer ships it);
* SentencePiece-style vocabularies (HF ``Metaspace``/``Prepend("▁")`` layouts, BPE or
  Unigram, Llama 2, Mistral): ``▁`` is a space and ``<0xNN>`` byte-fallback tokens are
  the single byte ``NN``;
* tiktoken encodings: ranks are already byte strings; special tokens sit beside them.

A `TokenizerInfo` records, for every id below ``vocab_size`` (the logits width), the
token's bytes, which ids may never appear inside grammar text (``special_ids``: special
tokens, holes in the id space, logits padding) and which ids end generation
(``stop_token_ids``). Its `trie` arranges the allowed tokens for numba kernels.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from structgen.errors import TokenizerError

__all__ = ["TokenizerInfo", "TokenTrie", "BYTE_TO_UNICODE", "UNICODE_TO_BYTE"]


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
# Token trie
# --------------------------------------------------------------------------------------


class TokenTrie:
    """Byte trie of the allowed tokens, as flat int32 arrays for numba kernels.

    Layout: nodes are numbered in *preorder* (a node before its descendants), children
    in increasing byte value. Node 0 is the root (the empty string; ``node_byte[0] = -1``,
    ``node_depth[0] = 0``). For node ``i``:

    * ``node_byte[i]``  – the byte on the edge from its parent (0..255);
    * ``node_depth[i]`` – the length of the byte string the node spells;
    * ``node_skip[i]``  – the first node after ``i``'s subtree, so ``i + 1 .. skip - 1``
      are exactly its descendants. A walk that rejects byte ``node_byte[i]`` jumps to
      ``node_skip[i]``; the children of ``i`` are ``c = i + 1``, then ``c = node_skip[c]``
      while ``c < node_skip[i]``;
    * ``tok_ids[node_tok_start[i]:node_tok_end[i]]`` – the token ids whose bytes end
      exactly at ``i`` (several ids can share identical bytes, hence a range). ``tok_ids``
      is in node order, so a subtree's tokens are also one contiguous range:
      ``tok_ids[node_tok_start[i]:node_tok_start[node_skip[i]]]`` (``node_tok_start``
      has one extra sentinel entry equal to ``len(tok_ids)`` for this purpose).

    Only non-special tokens with non-empty bytes are inserted. ``max_depth`` is the longest
    token in bytes; ``num_nodes`` counts the root.
    """

    node_byte: np.ndarray
    node_depth: np.ndarray
    node_skip: np.ndarray
    node_tok_start: np.ndarray
    node_tok_end: np.ndarray
    tok_ids: np.ndarray
    max_depth: int
    num_nodes: int

    def __init__(
        self,
        node_byte: np.ndarray,
        node_depth: np.ndarray,
        node_skip: np.ndarray,
        node_tok_start: np.ndarray,
        node_tok_end: np.ndarray,
        tok_ids: np.ndarray,
    ) -> None:
        arrays = (node_byte, node_depth, node_skip, node_tok_start, node_tok_end, tok_ids)
        for a in arrays:
            a.flags.writeable = False
        self.node_byte = node_byte
        self.node_depth = node_depth
        self.node_skip = node_skip
        self.node_tok_start = node_tok_start
        self.node_tok_end = node_tok_end
        self.tok_ids = tok_ids
        self.num_nodes = int(len(node_byte))
        self.max_depth = int(node_depth.max()) if self.num_nodes else 0

    @classmethod
    def build(cls, token_bytes: Sequence[bytes], exclude: Iterable[int] = ()) -> TokenTrie:
        """Build the trie of ``token_bytes`` (indexed by id), leaving out ``exclude`` ids
        and empty tokens. One sort of the distinct byte strings, then one pass with a stack
        of the current path emits the preorder arrays."""
        excluded = set(int(i) for i in exclude)
        ids = sorted((i for i, b in enumerate(token_bytes) if b and i not in excluded), key=token_bytes.__getitem__)
        # stable: ids of equal byte strings stay in increasing order
        lengths = np.fromiter((len(token_bytes[i]) for i in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.frombuffer(b"".join([token_bytes[i] for i in ids]), dtype=np.uint8)
        return cls(*_trie_arrays(flat, offsets), np.array(ids, dtype=np.int32))

    def find(self, data: bytes) -> int:
        """Node spelling exactly ``data`` (0 for b""), or -1 if no token starts with it."""
        node = 0
        nb, skip = self.node_byte, self.node_skip
        for byte in data:
            child, end = node + 1, int(skip[node])
            while child < end and nb[child] != byte:
                child = int(skip[child])
            if child >= end:
                return -1
            node = child
        return node

    def token_ids_at(self, node: int) -> list[int]:
        """Token ids whose bytes end exactly at ``node``."""
        return self.tok_ids[self.node_tok_start[node] : self.node_tok_end[node]].tolist()

    def children(self, node: int) -> list[int]:
        """Child nodes of ``node``, in increasing byte order."""
        out, child, end = [], node + 1, int(self.node_skip[node])
        while child < end:
            out.append(child)
            child = int(self.node_skip[child])
        return out

    def __repr__(self) -> str:
        return f"TokenTrie(num_nodes={self.num_nodes}, tokens={len(self.tok_ids)}, max_depth={self.max_depth})"


@njit(cache=True, nogil=True)
def _lcp(flat, offsets, i):
    """Length of the common prefix of sorted keys i - 1 and i (0 for the first)."""
    if i == 0:
        return 0
    a, b, p = offsets[i], offsets[i + 1], offsets[i - 1]
    limit = min(b - a, a - p)
    n = 0
    while n < limit and flat[p + n] == flat[a + n]:
        n += 1
    return n


@njit(cache=True, nogil=True)
def _trie_arrays(flat, offsets):
    """Preorder trie arrays (byte, depth, skip, token start, token end) of sorted keys
    `flat[offsets[i]:offsets[i + 1]]` (one per token; equal keys are adjacent): one pass with a
    stack of the current path; a key adds the nodes past its common prefix with the previous one."""
    k = len(offsets) - 1
    n = 1
    longest = 1
    for i in range(k):
        n += offsets[i + 1] - offsets[i] - _lcp(flat, offsets, i)
        longest = max(longest, offsets[i + 1] - offsets[i] + 1)
    node_byte = np.full(n, -1, dtype=np.int32)
    node_depth = np.zeros(n, dtype=np.int32)
    node_skip = np.zeros(n, dtype=np.int32)
    node_tok_start = np.zeros(n + 1, dtype=np.int32)
    node_tok_end = np.zeros(n, dtype=np.int32)
    stack = np.zeros(longest, dtype=np.int64)
    depth = 1  # stack[:depth] is the current path; stack[0] = root
    m = 1
    for i in range(k):
        size = offsets[i + 1] - offsets[i]
        lcp = _lcp(flat, offsets, i)
        if i > 0 and lcp == size and offsets[i] - offsets[i - 1] == size:  # the same bytes: one more token
            node_tok_end[m - 1] += 1
            continue
        while depth > lcp + 1:
            depth -= 1
            node_skip[stack[depth]] = m
        for d in range(lcp, size):
            node_byte[m] = flat[offsets[i] + d]
            node_depth[m] = d + 1
            node_tok_start[m] = i
            node_tok_end[m] = i
            stack[depth] = m
            depth += 1
            m += 1
        node_tok_end[m - 1] = i + 1
    while depth > 0:
        depth -= 1
        node_skip[stack[depth]] = m
    node_tok_start[n] = k
    return node_byte, node_depth, node_skip, node_tok_start, node_tok_end


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


class TokenizerInfo:
    """Exact bytes of every token id plus special/stop ids, for one logits width.

    * ``vocab_size`` – logits width; ids at or above the tokenizer's own size are padding.
    * ``token_bytes[i]`` – the bytes token ``i`` stands for in text. Special tokens keep
      their literal text (e.g. ``b"<|im_end|>"``, for display only); holes in the id
      space and padding ids are ``b""``.
    * ``special_ids`` – sorted int32 array of ids never allowed inside grammar text:
      special/control tokens, holes, padding, every id with empty bytes, and the stop ids.
    * ``stop_token_ids`` – ids that end generation (EOS); a subset of ``special_ids``.
    * ``prepend_space`` – the tokenizer inserts a dummy-prefix space when encoding the
      start of a text (SentencePiece). With a ``Prepend("▁")`` normalizer (legacy Llama 2 /
      Mistral layout) every non-empty text gets it; with a ``Metaspace`` pre-tokenizer or
      a ``ByteLevel(add_prefix_space=True)`` one only a text not already starting with a
      space gets it. Token bytes always hold the real space (``▁`` → ``b" "``).

    Treat an instance as immutable: ``trie`` and ``fingerprint()`` are computed once.
    """

    vocab_size: int
    token_bytes: list[bytes]
    special_ids: np.ndarray
    stop_token_ids: list[int]
    prepend_space: bool
    name: str

    def __init__(
        self,
        token_bytes: Sequence[bytes | None],
        *,
        special_ids: Iterable[int] = (),
        stop_token_ids: Iterable[int] = (),
        vocab_size: int | None = None,
        prepend_space: bool = False,
        name: str = "",
    ) -> None:
        """Low-level constructor: ``token_bytes[i]`` is None (or b"") for a hole."""
        n_tok = len(token_bytes)
        if vocab_size is None:
            vocab_size = n_tok
        vocab_size = int(vocab_size)
        if vocab_size < n_tok:
            raise TokenizerError(
                f"vocab_size={vocab_size} is smaller than the tokenizer's {n_tok} token ids"
            )
        tb: list[bytes] = []
        for i, b in enumerate(token_bytes):
            if b is None:
                tb.append(b"")
            elif isinstance(b, (bytes, bytearray)):
                tb.append(bytes(b))
            else:
                raise TokenizerError(f"token {i}: expected bytes, got {type(b).__name__}")
        tb.extend([b""] * (vocab_size - n_tok))

        stops = sorted(set(int(i) for i in stop_token_ids))
        special = set(int(i) for i in special_ids)
        for i in special | set(stops):
            if not 0 <= i < vocab_size:
                raise TokenizerError(f"special/stop id {i} outside 0..{vocab_size - 1}")
        special.update(stops)
        special.update(i for i, b in enumerate(tb) if not b)

        self.vocab_size = vocab_size
        self.token_bytes = tb
        self.special_ids = np.array(sorted(special), dtype=np.int32)
        self.special_ids.flags.writeable = False
        self.stop_token_ids = stops
        self.prepend_space = bool(prepend_space)
        self.name = name
        # text -> token ids as the model's tokenizer writes them (find_jump_forward_tokens); set by
        # the loaders that have the tokenizer, None for a bare vocabulary
        self.encoder: Callable[[str], list[int]] | None = None

    # ---- derived data ----------------------------------------------------------------

    @cached_property
    def special_mask(self) -> np.ndarray:
        """Boolean array of length ``vocab_size``: True for ids in ``special_ids``."""
        mask = np.zeros(self.vocab_size, dtype=np.bool_)
        mask[self.special_ids] = True
        mask.flags.writeable = False
        return mask

    @cached_property
    def trie(self) -> TokenTrie:
        """Trie of the non-special, non-empty tokens (built once, on first use)."""
        return TokenTrie.build(self.token_bytes, self.special_ids.tolist())

    def is_special(self, token_id: int) -> bool:
        """True when ``token_id`` may never appear inside grammar text."""
        return bool(self.special_mask[token_id])

    def fingerprint(self) -> str:
        """sha256 hex digest of vocab size, token bytes, special ids and stop ids, a cache
        key for anything compiled against this vocabulary."""
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        h = hashlib.sha256()
        h.update(b"structgen-tokenizer-v1\0")
        h.update(self.vocab_size.to_bytes(8, "little"))
        lengths = np.fromiter((len(b) for b in self.token_bytes), dtype="<u4", count=self.vocab_size)
        h.update(lengths.tobytes())
        h.update(b"".join(self.token_bytes))
        h.update(np.asarray(self.special_ids, dtype="<i4").tobytes())
        h.update(b"\0stop\0")
        h.update(np.asarray(self.stop_token_ids, dtype="<i4").tobytes())
        digest = h.hexdigest()
        self.__dict__["_fingerprint"] = digest
        return digest

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of ``ids`` (special tokens contribute their literal text)."""
        tb = self.token_bytes
        return b"".join(tb[int(i)] for i in ids)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"TokenizerInfo(name={self.name!r}, vocab_size={self.vocab_size}, "
            f"special={len(self.special_ids)}, stop={self.stop_token_ids}, "
            f"prepend_space={self.prepend_space})"
        )

    # ---- Hugging Face tokenizer.json ---------------------------------------------------

    @classmethod
    def from_tokenizer_json(
        cls,
        path: str | Path,
        vocab_size: int | None = None,
        stop_token_ids: Iterable[int] | None = None,
    ) -> TokenizerInfo:
        """Read a Hugging Face ``tokenizer.json`` with the ``json`` module (no ``tokenizers``
        needed). EOS comes from a sibling ``tokenizer_config.json`` when there is one,
        else from well-known token names; ``stop_token_ids`` overrides both."""
        path = Path(path)
        config_path = path.with_name("tokenizer_config.json")
        cache = _vocab_cache_file(path, config_path, vocab_size, stop_token_ids)
        got = _load_vocab_cache(cls, cache)
        if got is not None:
            got.encoder = JsonFileEncoder(path)
            return got
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise TokenizerError(f"cannot read tokenizer file {path}: {exc}") from exc
        eos_names: list[str] = []
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise TokenizerError(f"cannot read {config_path}: {exc}") from exc
            eos = config.get("eos_token") if isinstance(config, dict) else None
            if isinstance(eos, dict):
                eos = eos.get("content")
            if isinstance(eos, str):
                eos_names.append(eos)
        name = path.parent.name or path.stem
        info = cls._from_json_data(
            data,
            vocab_size=vocab_size,
            stop_token_ids=stop_token_ids,
            eos_names=eos_names,
            name=name,
        )
        _save_vocab_cache(info, cache)
        info.encoder = JsonFileEncoder(path)
        return info

    @classmethod
    def from_huggingface(
        cls,
        tokenizer: Any,
        vocab_size: int | None = None,
        stop_token_ids: Iterable[int] | None = None,
    ) -> TokenizerInfo:
        """From a transformers *fast* tokenizer: its backend ``tokenizer.json`` gives the
        vocabulary; ``all_special_ids`` and added tokens marked special are special; EOS is
        ``tokenizer.eos_token_id`` unless ``stop_token_ids`` is given."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TokenizerError(
                f"{type(tokenizer).__name__} has no backend_tokenizer; a fast tokenizer is needed"
            )
        try:
            data = json.loads(backend.to_str())
        except Exception as exc:  # noqa: BLE001 - any serialization failure
            raise TokenizerError(f"cannot serialize the backend tokenizer: {exc}") from exc
        extra_special = set(int(i) for i in (getattr(tokenizer, "all_special_ids", None) or ()))
        decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
        for tid, tok in decoder.items():
            if getattr(tok, "special", False):
                extra_special.add(int(tid))
        eos_ids: list[int] | None = None
        eos_id = getattr(tokenizer, "eos_token_id", None)
        if eos_id is not None:
            eos_ids = [int(eos_id)]
        if stop_token_ids is None:
            stop_token_ids = eos_ids
        name = str(getattr(tokenizer, "name_or_path", "") or "")
        info = cls._from_json_data(
            data,
            vocab_size=vocab_size,
            stop_token_ids=stop_token_ids,
            eos_names=[],
            name=name,
            extra_special=extra_special,
        )
        info.encoder = partial(_hf_encode, tokenizer)
        return info

    @classmethod
    def _from_json_data(
        cls,
        data: Any,
        *,
        vocab_size: int | None,
        stop_token_ids: Iterable[int] | None,
        eos_names: Sequence[str],
        name: str,
        extra_special: Iterable[int] = (),
    ) -> TokenizerInfo:
        """Shared body of the Hugging Face constructors (``data`` = parsed tokenizer.json)."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise TokenizerError("not a tokenizer.json: no 'model' object")
        model = data["model"]
        mtype = model.get("type")
        if mtype is None:  # very old files omit the type; infer it from the vocab shape
            mtype = "Unigram" if isinstance(model.get("vocab"), list) else "BPE"
        pieces: dict[int, str] = {}
        if mtype in ("BPE", "WordLevel"):
            vocab = model.get("vocab")
            if not isinstance(vocab, dict):
                raise TokenizerError(f"{mtype} model without a vocab object")
            if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
                raise TokenizerError(
                    "BPE with a continuing_subword_prefix/end_of_word_suffix is not supported"
                )
            for piece, tid in vocab.items():
                if not isinstance(tid, int) or isinstance(tid, bool) or tid < 0:
                    raise TokenizerError(f"bad id {tid!r} for token {piece!r}")
                if tid in pieces:
                    raise TokenizerError(f"id {tid} used by {pieces[tid]!r} and {piece!r}")
                pieces[tid] = piece
            if mtype == "WordLevel":
                raise TokenizerError("WordLevel models are not supported")
        elif mtype == "Unigram":
            vocab = model.get("vocab")
            if not isinstance(vocab, list):
                raise TokenizerError("Unigram model without a vocab list")
            for tid, entry in enumerate(vocab):
                if not isinstance(entry, (list, tuple)) or not entry or not isinstance(entry[0], str):
                    raise TokenizerError(f"bad Unigram vocab entry {tid}: {entry!r}")
                pieces[tid] = entry[0]
        else:
            raise TokenizerError(f"unsupported tokenizer model type {mtype!r}")

        added = data.get("added_tokens") or []
        if not isinstance(added, list):
            raise TokenizerError("added_tokens is not a list")
        added_by_id: dict[int, dict] = {}
        for tok in added:
            if not isinstance(tok, dict) or not isinstance(tok.get("id"), int) or not isinstance(
                tok.get("content"), str
            ):
                raise TokenizerError(f"bad added token {tok!r}")
            if tok["id"] < 0:
                raise TokenizerError(f"negative added token id {tok['id']}")
            added_by_id[tok["id"]] = tok

        pre = data.get("pre_tokenizer")
        norm = data.get("normalizer")
        dec = data.get("decoder")
        byte_level = bool(_find_components(pre, "ByteLevel") or _find_components(dec, "ByteLevel"))
        metaspace = _find_components(pre, "Metaspace") + _find_components(dec, "Metaspace")
        replacement = "▁"
        for comp in metaspace:
            if isinstance(comp.get("replacement"), str):
                replacement = comp["replacement"]
                break
        spm_style = bool(
            metaspace
            or any(
                c.get("prepend") == "▁" for c in _find_components(norm, "Prepend")
            )
            or any(
                _pattern_str(c.get("pattern")) == " " and c.get("content") == "▁"
                for c in _find_components(norm, "Replace")
            )
            or any(
                _pattern_str(c.get("pattern")) == "▁" and c.get("content") == " "
                for c in _find_components(dec, "Replace")
            )
        )
        if byte_level and spm_style:
            raise TokenizerError("tokenizer mixes ByteLevel and SentencePiece (▁) components")
        byte_fallback = bool(model.get("byte_fallback")) or bool(_find_components(dec, "ByteFallback"))

        prepend_space = False
        if any(c.get("prepend") == "▁" for c in _find_components(norm, "Prepend")):
            prepend_space = True
        for comp in _find_components(pre, "Metaspace"):
            scheme = comp.get("prepend_scheme")
            if scheme is None:
                scheme = "always" if comp.get("add_prefix_space", True) else "never"
            if scheme in ("always", "first"):
                prepend_space = True
        for comp in _find_components(pre, "ByteLevel"):
            if comp.get("add_prefix_space"):
                prepend_space = True

        max_id = max([-1, *pieces, *added_by_id])
        n_tok = max_id + 1
        token_bytes: list[bytes | None] = [None] * n_tok
        special: set[int] = set(int(i) for i in extra_special)

        for tid, piece in pieces.items():
            if tid in added_by_id:
                continue  # the added-token entry decides below
            if byte_level:
                if _BYTELEVEL_BAD.search(piece):
                    raise TokenizerError(
                        f"token {tid} {piece!r} has characters outside the byte-level table"
                    )
                token_bytes[tid] = piece.translate(_BYTELEVEL_TRANSLATE).encode("latin-1")
            else:
                if byte_fallback:
                    m = _BYTE_FALLBACK.fullmatch(piece)
                    if m is not None:
                        token_bytes[tid] = bytes([int(m.group(1), 16)])
                        continue
                if spm_style:
                    piece = piece.replace(replacement, " ")
                token_bytes[tid] = piece.encode("utf-8")

        for tid, tok in added_by_id.items():
            content: str = tok["content"]
            if tok.get("special", False):
                special.add(tid)
            if spm_style and tok.get("normalized", False):
                content = content.replace(replacement, " ")
            token_bytes[tid] = content.encode("utf-8")

        unk = model.get("unk_token")
        if isinstance(unk, str) and unk in model.get("vocab", {}) and mtype == "BPE":
            special.add(model["vocab"][unk])
        elif mtype == "Unigram" and isinstance(model.get("unk_id"), int):
            special.add(model["unk_id"])
        special.update(_post_processor_special_ids(data.get("post_processor")))

        if vocab_size is not None and vocab_size < n_tok:
            raise TokenizerError(
                f"vocab_size={vocab_size} is smaller than the tokenizer's {n_tok} token ids"
            )
        special = {i for i in special if 0 <= i < max(n_tok, vocab_size or 0)}

        if stop_token_ids is None:
            names = {tok["content"]: tid for tid, tok in added_by_id.items()}
            for tid, piece in pieces.items():
                names.setdefault(piece, tid)
            stops = [names[n] for n in eos_names if n in names]
            if not stops:
                stops = _heuristic_eos(names, special)
            stop_token_ids = stops
        return cls(
            token_bytes,
            special_ids=special,
            stop_token_ids=stop_token_ids,
            vocab_size=vocab_size,
            prepend_space=prepend_space,
            name=name,
        )

    # ---- tiktoken ----------------------------------------------------------------------

    @classmethod
    def from_tiktoken(
        cls,
        encoding: Any,
        vocab_size: int | None = None,
        stop_token_ids: Iterable[int] | None = None,
    ) -> TokenizerInfo:
        """From a ``tiktoken.Encoding``: ordinary ids via ``decode_single_token_bytes``,
        special tokens from ``encoding._special_tokens``; unused ids are holes. The default
        stop id is ``<|endoftext|>``."""
        try:
            n_vocab = int(encoding.n_vocab)
            specials: dict[str, int] = dict(getattr(encoding, "_special_tokens", None) or {})
        except Exception as exc:  # noqa: BLE001
            raise TokenizerError(f"not a tiktoken Encoding: {exc}") from exc
        special_ids = set(specials.values())
        token_bytes: list[bytes | None] = [None] * n_vocab
        for tid in range(n_vocab):
            if tid in special_ids:
                continue
            try:
                token_bytes[tid] = encoding.decode_single_token_bytes(tid)
            except KeyError:
                pass  # a hole in the id space
        for text, tid in specials.items():
            if not 0 <= tid < n_vocab:
                raise TokenizerError(f"special token {text!r} id {tid} outside n_vocab={n_vocab}")
            token_bytes[tid] = text.encode("utf-8")
        if stop_token_ids is None:
            stop_token_ids = _heuristic_eos(specials, special_ids)
        return cls(
            token_bytes,
            special_ids=special_ids,
            stop_token_ids=stop_token_ids,
            vocab_size=vocab_size,
            name=str(getattr(encoding, "name", "")),
        )

    @classmethod
    def from_tiktoken_file(
        cls,
        rank_file: str | Path,
        encoding_json: str | Path | None = None,
        vocab_size: int | None = None,
        stop_token_ids: Iterable[int] | None = None,
    ) -> TokenizerInfo:
        """From a tiktoken rank file (``<base64 token> <rank>`` per line) and its
        ``encoding.json`` (``special_tokens``, optional ``explicit_n_vocab``,
        ``mergeable_ranks_sha256``, ``n_mergeable_ranks``), without the tiktoken package.
        ``encoding_json`` defaults to ``encoding.json`` beside the rank file, if present."""
        rank_file = Path(rank_file)
        try:
            raw = rank_file.read_bytes()
        except OSError as exc:
            raise TokenizerError(f"cannot read rank file {rank_file}: {exc}") from exc
        meta: dict[str, Any] = {}
        if encoding_json is None:
            sibling = rank_file.with_name("encoding.json")
            encoding_json = sibling if sibling.is_file() else None
        if encoding_json is not None:
            try:
                meta = json.loads(Path(encoding_json).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise TokenizerError(f"cannot read {encoding_json}: {exc}") from exc
            if not isinstance(meta, dict):
                raise TokenizerError(f"{encoding_json}: expected a JSON object")
        expected_hash = meta.get("mergeable_ranks_sha256")
        if expected_hash and hashlib.sha256(raw).hexdigest() != expected_hash:
            raise TokenizerError(f"{rank_file}: sha256 differs from {encoding_json}")

        ranks: dict[int, bytes] = {}
        for lineno, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                tok_b64, rank_s = line.split()
                tok = base64.b64decode(tok_b64, validate=True)
                rank = int(rank_s)
            except (ValueError, TypeError) as exc:
                raise TokenizerError(f"{rank_file}:{lineno}: bad rank line {line[:60]!r}") from exc
            if rank < 0 or rank in ranks:
                raise TokenizerError(f"{rank_file}:{lineno}: bad or repeated rank {rank}")
            ranks[rank] = tok
        if not ranks:
            raise TokenizerError(f"{rank_file}: no ranks")
        if len(set(ranks.values())) != len(ranks):
            raise TokenizerError(f"{rank_file}: the same token bytes have several ranks")
        n_ranks = meta.get("n_mergeable_ranks")
        if n_ranks is not None and n_ranks != len(ranks):
            raise TokenizerError(f"{rank_file}: {len(ranks)} ranks, encoding.json says {n_ranks}")

        specials = meta.get("special_tokens") or {}
        if not isinstance(specials, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in specials.items()
        ):
            raise TokenizerError("special_tokens must map strings to non-negative ids")
        clash = set(specials.values()) & set(ranks)
        if clash:
            raise TokenizerError(f"special token ids {sorted(clash)[:5]} are also ranks")
        n_vocab = max([*ranks, *specials.values()]) + 1
        explicit = meta.get("explicit_n_vocab")
        if explicit is not None and explicit != n_vocab:
            raise TokenizerError(f"explicit_n_vocab={explicit} but the ids need {n_vocab}")

        token_bytes: list[bytes | None] = [None] * n_vocab
        for rank, tok in ranks.items():
            token_bytes[rank] = tok
        for text, tid in specials.items():
            token_bytes[tid] = text.encode("utf-8")
        special_ids = set(specials.values())
        if stop_token_ids is None:
            stop_token_ids = _heuristic_eos(specials, special_ids)
        return cls(
            token_bytes,
            special_ids=special_ids,
            stop_token_ids=stop_token_ids,
            vocab_size=vocab_size,
            name=str(meta.get("name") or rank_file.stem),
        )


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
    from .models import default_cache_root

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


def _save_vocab_cache(info: TokenizerInfo, cache: Path | None) -> None:
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


def _load_vocab_cache(cls: type, cache: Path | None) -> TokenizerInfo | None:
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
