"""Load every numba kernel that compiles and masks reach, before the first request needs one.

numba loads a kernel from its on-disk cache (or compiles it, on the first run after install) at the
kernel's first call: ~10-20 ms each, ~0.5 s for the ~40 kernels a JSON Schema compile and its masks
reach, and a grammar that needs GLR reaches a few more. A serving process calls `warm_up()` once at
start so that no request pays it; the benchmarks call it before timing (bench/README.md).
tests/test_warmup.py checks, in a fresh process, that a broad workload loads no kernel after it.
"""

from __future__ import annotations

import time

import numpy as np

# an object of every JSON type: keys, an enum beside another keyword, a format, numbers, an array,
# an object of 9 optional members (kept as parser state), a pattern met with a length (a DFA
# product); its instance walks each of them
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"},
                                           "b": {"enum": ["xy", "yz", 3], "minLength": 1},
                                           "g": {"type": "string", "format": "date-time"},
                                           "c": {"type": "array", "items": {"type": "integer"}},
                                           "d": {"type": "number"}, "e": {"type": "boolean"},
                                           "f": {"type": "object", "properties": {
                                               k: {"type": "integer"} for k in "ghijklmno"}},
                                           "h": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8}}}
INSTANCE = '{"a": "x", "b": "yz", "c": [1, 22], "d": -1.5e3, "e": true, "f": {"h": 1, "o": 2}, "h": "abc"}'

# (syntax, grammar, a word of it): a conflict cell (GLR) with a regex terminal and ignored text, and a
# GBNF grammar with lexer ties (one-character lexemes that end several terminals alike)
GRAMMARS = (("lark", 'start: e\ne: e "+" e | e "*" e | NUM\nNUM: /[0-9]+/\n%ignore " "\n', "1+22 * 3+4"),
            ("gbnf", 'root ::= word (" " word)* "."\nword ::= [a-z]+ | [a-z]+ "-" [a-z]+\n', "ab cd-ef g."))
REGEX = (r"[a-z]+@[a-z]+\.(com|org)", "ab@cd.org")


def _small_vocabulary():
    """Every byte, and a few multi-byte tokens, as a TokenizerInfo: kernels are typed by their
    arrays, not by the vocabulary, so this loads the same code as a real tokenizer, in less time."""
    from .maskstore.store import SPARSE_BITS
    from .tokenizer import TokenizerInfo

    extra = [b'{"', b'":', b'","', b'"}', b"12", b"ab", b"  ", b"true", b"-1", b"e3", b"+2", b"cd-", b" *"]
    # enough letter/digit pairs that a string body or a number allows more than SPARSE_BITS tokens
    alnum = b"abcdefghijklmnopqrstuvwxyz0123456789"
    pairs = [bytes([x, y]) for x in alnum for y in alnum if bytes([x, y]) not in extra]
    assert len(pairs) > SPARSE_BITS
    tokens = [bytes([b]) for b in range(256)] + extra + pairs
    return TokenizerInfo(tokens + [b""], stop_token_ids=[len(tokens)])


def _walk(matcher, text: str, ids: dict[bytes, int], bits) -> None:
    """Masks, jump-forward and rollback along `text`, a character at a time (as a token where the
    vocabulary has it), then the stop token."""
    for ch in text:
        matcher.fill_next_token_bitmask(bits)
        matcher.find_jump_forward_string()
        data = ch.encode("utf-8")
        ok = matcher.accept_token(ids[data]) if data in ids else matcher.accept_string(data)
        if not ok:
            raise AssertionError(f"warm-up text refused at {ch!r}")  # a bug in this module's inputs
    matcher.fill_next_token_bitmask(bits)
    matcher.rollback(2)
    matcher.fill_next_token_bitmask(bits)
    matcher.accept_string(text[-2:])
    stop = matcher.compiled_grammar.tokenizer_info.stop_token_ids
    if matcher.is_accepting() and stop and not matcher.accept_token(stop[0]):
        raise AssertionError("warm-up text: the stop token refused")


_loaded = False  # whether this process has warmed up already


def warm_up(tokenizer=None) -> float:
    """Load the kernels (see the module's docstring); returns the seconds it took. With a
    `tokenizer` (TokenizerInfo), its token trie and indexes are built too; without one, a process
    that has warmed up already returns 0 at once (engines call it whenever they are built)."""
    global _loaded
    if tokenizer is None and _loaded:
        return 0.0
    from .compiler import GrammarCompiler
    from .maskstore.memo import memo_rehash
    from .matcher import GrammarMatcher

    t0 = time.perf_counter()
    info = tokenizer if tokenizer is not None else _small_vocabulary()
    compiler = GrammarCompiler(info)
    bits = np.zeros((1, (info.vocab_size + 31) // 32), dtype=np.int32)
    ids = {b: i for i, b in enumerate(info.token_bytes) if len(b) == 1}
    for ws, order in (("compact", "any"), ("flexible", "declared")):  # each object encoding
        cg = compiler.compile_json_schema(SCHEMA, whitespace=ws, property_order=order)
        _walk(GrammarMatcher(cg), INSTANCE, ids, bits)
    for syntax, text, word in GRAMMARS:
        _walk(GrammarMatcher(compiler.compile_grammar(text, syntax=syntax)), word, ids, bits)
    _walk(GrammarMatcher(compiler.compile_regex(REGEX[0])), REGEX[1], ids, bits)
    # reached only when a table grows (a workload's size, not its kind): called once on empty tables
    memo_rehash(np.zeros((1, 3), dtype=np.uint64), np.full(1, -1, dtype=np.int32),
                np.zeros((2, 3), dtype=np.uint64), np.full(2, -1, dtype=np.int32))
    _loaded = True
    return time.perf_counter() - t0
