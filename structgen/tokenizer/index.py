"""TokenizerIndex: the per-tokenizer object that owns the token trie and every tokenizer-wide cache.

Everything derived from a vocabulary alone (walk plans, trie parents, the shared walk memo, per-thread
scratch arrays) is computed once and kept here, shared by every grammar compiled for the tokenizer;
nothing is written into the trie's or the TokenizerInfo's attributes from outside.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from .trie import TokenTrie


class TokenizerIndex:
    """The trie of one vocabulary and the caches derived from it, keyed by name."""

    def __init__(self, trie: TokenTrie) -> None:
        self.trie = trie
        self._caches: dict[str, Any] = {}
        self._lock = threading.RLock()  # a `make` may itself ask for another entry

    def cached(self, name: str, make: Callable[[], Any]) -> Any:
        """The entry `name`, built by `make()` on first use (once, also under threads)."""
        got = self._caches.get(name)
        if got is None:
            with self._lock:
                got = self._caches.get(name)
                if got is None:
                    got = self._caches[name] = make()
        return got

    def __len__(self) -> int:
        return len(self._caches)
