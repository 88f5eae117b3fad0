"""TokenizerInfo: the exact bytes of every token id of one logits width, its special and stop ids, and
its trie; made from tokenizer.json files, transformers tokenizers and tiktoken encodings."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from structgen.errors import TokenizerError

from .index import TokenizerIndex
from .trie import TokenTrie
from .vocab import (_BYTE_FALLBACK, _BYTELEVEL_BAD, _BYTELEVEL_TRANSLATE, JsonFileEncoder, _find_components,
                    _heuristic_eos, _hf_encode, _load_vocab_cache, _pattern_str, _post_processor_special_ids,
                    _save_vocab_cache, _vocab_cache_file)


_INDEX_LOCK = threading.Lock()  # builds of a TokenizerIndex (one per TokenizerInfo)


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
        self._index: TokenizerIndex | None = None
        self._fingerprint: str | None = None

    # ---- derived data ----------------------------------------------------------------

    @cached_property
    def special_mask(self) -> np.ndarray:
        """Boolean array of length ``vocab_size``: True for ids in ``special_ids``."""
        mask = np.zeros(self.vocab_size, dtype=np.bool_)
        mask[self.special_ids] = True
        mask.flags.writeable = False
        return mask

    @property
    def index(self) -> TokenizerIndex:
        """The TokenizerIndex: the token trie and every tokenizer-wide cache (built once, on first use)."""
        got = self._index
        if got is None:
            with _INDEX_LOCK:
                if self._index is None:
                    self._index = TokenizerIndex(TokenTrie.build(self.token_bytes, self.special_ids.tolist()))
                got = self._index
        return got

    @property
    def trie(self) -> TokenTrie:
        """Trie of the non-special, non-empty tokens (the index's)."""
        return self.index.trie

    @property
    def has_index(self) -> bool:
        """Whether the index (and its trie) is built already."""
        return self._index is not None

    def use_trie(self, trie: TokenTrie) -> None:
        """Adopt a trie built elsewhere (the compile cache's copy) unless the index exists already."""
        with _INDEX_LOCK:
            if self._index is None:
                self._index = TokenizerIndex(trie)

    def is_special(self, token_id: int) -> bool:
        """True when ``token_id`` may never appear inside grammar text."""
        return bool(self.special_mask[token_id])

    def fingerprint(self) -> str:
        """sha256 hex digest of vocab size, token bytes, special ids and stop ids, a cache
        key for anything compiled against this vocabulary."""
        if self._fingerprint is not None:
            return self._fingerprint
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
        self._fingerprint = digest
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
