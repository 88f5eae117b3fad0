"""structgen: exact grammar-constrained structured generation (public API; see DESIGN.md §3)."""

from __future__ import annotations

from .errors import (
    GrammarError,
    LimitExceeded,
    RegexError,
    SchemaError,
    StructgenError,
    TokenizerError,
    UnsupportedFeature,
)

__version__ = "0.1.0"

# Loaded on first use: `import structgen` (or a submodule, e.g. the vLLM processor's module, which
# vLLM imports in its workers before it scans their modules, a scan llvmlite's library wrapper
# breaks) does not load numba. The torch-based mask helpers stay optional the same way.
_LAZY = {
    "CompiledGrammar": "grammar", "GrammarCompiler": "compiler", "builtin_grammar": "compiler",
    "BatchGrammarMatcher": "matcher", "GrammarMatcher": "matcher", "TokenizerInfo": "tokenizer",
    "allocate_token_bitmask": "kernels.apply", "apply_token_bitmask_inplace": "kernels.apply",
    "get_bitmask_shape": "kernels.apply", "warm_up": "warmup",
}


def __getattr__(name: str):
    """The engine's classes, imported on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'structgen' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


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
    "warm_up",
    "StructgenError",
    "SchemaError",
    "UnsupportedFeature",
    "GrammarError",
    "RegexError",
    "TokenizerError",
    "LimitExceeded",
]
