"""The persistent compile cache: named numpy arrays plus JSON metadata in one `.npz` file per key.

Safe by construction: only `.npz` of plain numeric arrays (read with `allow_pickle=False`) and
JSON, never pickle. Writes go to a temporary file renamed into place, so a reader sees a whole
entry or none. Each entry carries a sha256 over its contents; an entry that fails the check
(truncated, edited, bit-rotted) is reported with a warning, deleted and rebuilt by the caller.
Keys hash the input, the tokenizer and the engine's own source, so a code change invalidates
old entries instead of trusting them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 2  # 2: lexer tie sets (lexer forks)
_META = "__meta__"
_CHECKSUM = "__sha256__"


class CacheWarning(UserWarning):
    """A cache entry was unreadable or failed its checksum and is being rebuilt."""


@lru_cache(maxsize=1)
def engine_digest() -> str:
    """sha256 of the package version and every structgen source file: entries of other code are misses."""
    from . import __version__

    h = hashlib.sha256(f"structgen {__version__} format {FORMAT_VERSION}".encode())
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    """`$STRUCTGEN_CACHE_DIR/compiled`, else `~/.cache/structgen/compiled`."""
    from .options import default_cache_root

    return default_cache_root() / "compiled"


def _digest(meta_bytes: bytes, arrays: dict[str, np.ndarray]) -> np.ndarray:
    h = hashlib.sha256(meta_bytes)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


class CompileCache:
    """A folder of cache entries; `load`/`store` move (metadata, arrays) pairs under a key."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    def key(self, *parts: str) -> str:
        """The entry name for an input described by `parts` (under this engine version)."""
        h = hashlib.sha256(engine_digest().encode())
        for p in parts:
            h.update(len(p).to_bytes(8, "little"))
            h.update(p.encode("utf-8"))
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The entry's (metadata, arrays), or None when absent; a corrupt entry warns and is removed."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:  # our handle: always closed
                arrays = {name: npz[name] for name in npz.files}
            meta_bytes = arrays.pop(_META).tobytes()
            checksum = arrays.pop(_CHECKSUM)
            if not np.array_equal(checksum, _digest(meta_bytes, arrays)):
                raise ValueError("checksum mismatch")
            meta = json.loads(meta_bytes.decode("utf-8"))
        except Exception as e:  # a damaged file raises from zipfile, zlib, numpy's header parser, ...
            self.discard(key, f"is corrupt ({type(e).__name__}: {e})")
            return None
        return meta, arrays

    def discard(self, key: str, why: str) -> None:
        """Warn that entry `key` is unusable, and remove it if the folder allows."""
        path = self.path(key)
        warnings.warn(f"compile cache entry {path} {why}; rebuilding it", CacheWarning, stacklevel=4)
        try:
            path.unlink(missing_ok=True)
        except OSError:  # a read-only folder: the entry stays, and is rebuilt in memory each time
            pass

    def store(self, key: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Write an entry atomically (temporary file, then rename); an unwritable folder only warns."""
        meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
        payload = dict(arrays)
        payload[_META] = np.frombuffer(meta_bytes, dtype=np.uint8)
        payload[_CHECKSUM] = _digest(meta_bytes, arrays)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.root)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez_compressed(f, **payload)
                os.replace(tmp, self.path(key))
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as e:
            warnings.warn(f"cannot write the compile cache in {self.root}: {e}", CacheWarning, stacklevel=3)
