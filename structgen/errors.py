"""One exception hierarchy for everything structgen raises on purpose."""

from __future__ import annotations


class StructgenError(Exception):
    """Base class of every error structgen raises deliberately."""


class SchemaError(StructgenError):
    """The JSON Schema itself is invalid; `json_pointer` says where (None: the schema could not
    be read at all, a missing file or bad JSON, where a pointer says nothing)."""

    def __init__(self, message: str, json_pointer: str | None = "") -> None:
        self.json_pointer = json_pointer
        super().__init__(message if json_pointer is None else f"{message} (at {json_pointer or '#'})")


class UnsupportedFeature(StructgenError):
    """A schema keyword cannot be compiled exactly; names the keyword and its JSON pointer."""

    def __init__(self, keyword: str, json_pointer: str, detail: str = "") -> None:
        self.keyword = keyword
        self.json_pointer = json_pointer
        msg = f"unsupported keyword {keyword!r} at {json_pointer or '#'}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class GrammarError(StructgenError):
    """A grammar cannot be compiled (syntax error, LALR conflict, unproductive rule, ...)."""


class RegexError(StructgenError):
    """A regular expression cannot be compiled to a byte-level DFA."""


class TokenizerError(StructgenError):
    """A tokenizer or vocabulary cannot be read or is inconsistent."""


def shown(text: str, width: int = 80) -> str:
    """`text` as repr for a message, cut in the middle past `width` characters (a 20,000-word regex)."""
    if len(text) <= width:
        return repr(text)
    return f"{text[:width // 2]!r}...{text[-width // 4:]!r} ({len(text):,} characters)"


class LimitExceeded(StructgenError):
    """A resource limit (DFA states, grammar size, recursion, time) was hit. `limit` names the
    Limits field (or other bound) that was hit, `where` the place in the input (JSON pointer, rule)."""

    def __init__(self, message: str, limit: str = "", where: str = "") -> None:
        self.message, self.limit, self.where = message, limit, where
        super().__init__(message)

    def __str__(self) -> str:
        tail = f" (the {self.limit} limit)" if self.limit and self.limit not in self.message else ""
        return f"{self.message}{tail}" + (f", at {self.where}" if self.where else "")

    def __reduce__(self):  # keep limit and where across processes (isolated workers)
        return (type(self), (self.message, self.limit, self.where))

    def locate(self, where: str) -> "LimitExceeded":
        """Record where in the input the limit was hit, unless a deeper place already is."""
        if not self.where:
            self.where = where
        return self
