"""Session fixtures shared across the test tree."""

from __future__ import annotations

import pytest

from datasets import DATA


@pytest.fixture(scope="session")
def tokenizer_llama3():
    """The Llama-3 TokenizerInfo (128,256 tokens), loaded once per session."""
    from structgen import TokenizerInfo

    return TokenizerInfo.from_tokenizer_json(DATA / "tokenizers" / "llama3" / "tokenizer.json")
