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
(``stop_token_ids``). Its `index` (a `TokenizerIndex`) owns the `trie` that arranges the allowed
tokens for numba kernels, and every cache derived from the vocabulary alone.
"""

from .index import TokenizerIndex
from .info import TokenizerInfo
from .trie import TokenTrie
from .vocab import BYTE_TO_UNICODE, UNICODE_TO_BYTE, JsonFileEncoder

__all__ = ["TokenizerIndex", "TokenizerInfo", "TokenTrie", "BYTE_TO_UNICODE", "UNICODE_TO_BYTE", "JsonFileEncoder"]
