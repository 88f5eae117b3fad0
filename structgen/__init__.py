"""structgen: exact grammar-constrained structured generation (public API; see DESIGN.md §3)."""

from __future__ import annotations

from .compiler import CompiledGrammar, GrammarCompiler, builtin_grammar
from .errors import (
    GrammarError,
    LimitExceeded,
    RegexError,
    SchemaError,
    StructgenError,
    TokenizerError,
    UnsupportedFeature,
)
from .matcher import BatchGrammarMatcher, GrammarMatcher
from .tokenizer import TokenizerInfo

__version__ = "0.1.0"

_TORCH_API = {"allocate_token_bitmask", "apply_token_bitmask_inplace", "get_bitmask_shape"}


def __getattr__(name: str):
    """The torch-based mask helpers load torch lazily, so the core engine runs without it."""
    if name in _TORCH_API:
        from .kernels import apply

        return getattr(apply, name)
    raise AttributeError(f"module 'structgen' has no attribute {name!r}")


__all__ = [
    "BatchGrammarMatcher",
    "CompiledGrammar",
    "GrammarCompiler",
    "GrammarMatcher",
    "TokenizerInfo",
    "builtin_grammar",
    "allocate_token_bitmask",
    "apply_token_bitmask_inplace",
    "get_bitmask_shape",
    "StructgenError",
    "SchemaError",
    "UnsupportedFeature",
    "GrammarError",
    "RegexError",
    "TokenizerError",
    "LimitExceeded",
]
