"""One exception hierarchy for everything structgen raises on purpose."""

from __future__ import annotations


class StructgenError(Exception):
    """Base class of every error structgen raises deliberately."""


class SchemaError(StructgenError):
    """The JSON Schema itself is invalid; `json_pointer` says where."""

    def __init__(self, message: str, json_pointer: str = "") -> None:
        self.json_pointer = json_pointer
        super().__init__(f"{message} (at {json_pointer or '#'})")


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


class LimitExceeded(StructgenError):
    """A resource limit (DFA states, grammar size, recursion, time) was hit."""
