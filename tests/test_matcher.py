"""GrammarMatcher behaviour on json.lark with the Llama-3 tokenizer: acceptance, rejection, API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import TOKENIZERS, grammar_text, maskbench_documents
from structgen import GrammarCompiler, GrammarMatcher, StructgenError, TokenizerInfo

tokenizers = pytest.importorskip("tokenizers")

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"


@pytest.fixture(scope="module")
def env():
    info = TokenizerInfo.from_tokenizer_json(LLAMA3)
    htok = tokenizers.Tokenizer.from_file(str(LLAMA3))
    cg = GrammarCompiler(info).compile_grammar(grammar_text("json"))
    return info, htok, cg


def _bits(matcher: GrammarMatcher, vocab: int) -> np.ndarray:
    mask = np.zeros((1, (vocab + 31) // 32), dtype=np.int32)
    matcher.fill_next_token_bitmask(mask)
    return np.unpackbits(mask.view(np.uint8), bitorder="little")[:vocab].astype(bool)


def test_valid_documents_accepted_token_by_token_and_terminate(env) -> None:
    info, htok, cg = env
    eos = info.stop_token_ids[0]
    for doc in maskbench_documents(200)[:100]:
        m = GrammarMatcher(cg)
        ids = htok.encode(doc, add_special_tokens=False).ids
        for k, t in enumerate(ids):
            assert not m.accept_token(eos) or False, "EOS accepted before the document is complete"
            assert m.accept_token(t), (doc, k)
        assert m.is_accepting()
        assert m.accept_token(eos)
        assert m.is_terminated()
        assert not m.accept_token(ids[0])  # nothing after termination


def _mutate(doc: str, kind: str, pos: int, byte: int) -> str:
    data = doc.encode()
    pos = pos % (len(data) + (1 if kind == "insert" else 0))
    if kind == "drop":
        out = data[:pos] + data[pos + 1:]
    elif kind == "insert":
        out = data[:pos] + bytes([byte]) + data[pos:]
    else:
        out = data[:pos] + bytes([byte]) + data[pos + 1:]
    return out.decode("utf-8", errors="strict")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc_index=st.integers(0, 199),
    kind=st.sampled_from(["drop", "insert", "replace"]),
    pos=st.integers(0, 10_000),
    byte=st.sampled_from(list(b'{}[]:,"\\0123456789-+.eEtfn ax\n\t') + [0x01, 0x7F]),
)
def test_mutated_documents_rejected_at_first_bad_token(env, doc_index, kind, pos, byte) -> None:
    """Invalid mutations are rejected, at the same token where an independent engine (llguidance)
    first rejects; if every token is viable the stop token is refused."""
    llguidance = pytest.importorskip("llguidance")
    from peers import llguidance_matcher_factory

    info, htok, cg = env
    doc = maskbench_documents(200)[doc_index]
    try:
        text = _mutate(doc, kind, pos, byte)
    except UnicodeDecodeError:
        return
    try:
        json.loads(text)
        return  # still valid JSON: not a mutation into the complement
    except ValueError:
        pass
    if not text or text[0] in " \t\n\r":
        return  # leading whitespace: llguidance differs by design (see the differential test)
    make = _ll_factory(info)
    ids = htok.encode(text, add_special_tokens=False).ids
    m, ll = GrammarMatcher(cg), make(grammar_text("json"))
    ours = theirs = None
    for k, t in enumerate(ids):
        if ours is None and not m.accept_token(t):
            ours = k
        if theirs is None and not ll.consume_token(t):
            theirs = k
        if ours is not None and theirs is not None:
            break
    assert ours == theirs, (text, ours, theirs)
    if ours is None:
        assert not m.is_accepting()
        assert not m.accept_token(info.stop_token_ids[0])
        assert not ll.is_accepting()


_LL = {}


def _ll_factory(info):
    if "make" not in _LL:
        from peers import llguidance_matcher_factory

        _LL["make"] = llguidance_matcher_factory(LLAMA3, info.stop_token_ids, info.vocab_size)
    return _LL["make"]


def test_mask_is_sound_for_sampled_tokens(env) -> None:
    """Every token the mask allows is accepted by accept_token and vice versa (sampled)."""
    info, htok, cg = env
    rng = np.random.default_rng(0)
    doc = maskbench_documents(200)[3]
    ids = htok.encode(doc, add_special_tokens=False).ids
    m = GrammarMatcher(cg)
    for t in ids[:30]:
        allowed = _bits(m, info.vocab_size)
        for cand in rng.choice(info.vocab_size, 300, replace=False):
            ok = m.accept_token(int(cand))
            if ok:
                m.rollback(1)
            assert ok == allowed[cand], (cand, info.token_bytes[cand])
        for cand in rng.choice(np.flatnonzero(allowed), min(50, int(allowed.sum())), replace=False):
            assert m.accept_token(int(cand)), info.token_bytes[cand]
            m.rollback(1)
        assert m.accept_token(t)


def test_special_and_padding_tokens_never_allowed(env) -> None:
    info, htok, cg = env
    padded = TokenizerInfo.from_tokenizer_json(LLAMA3, vocab_size=info.vocab_size + 64)
    m = GrammarMatcher(GrammarCompiler(padded).compile_grammar(grammar_text("json")))
    allowed = _bits(m, padded.vocab_size)
    assert not allowed[info.vocab_size:].any()
    specials = np.asarray(padded.special_ids)
    assert not allowed[specials].any()
    assert m.accept_string('{"a": [1, 2]}')
    allowed = _bits(m, padded.vocab_size)
    assert set(np.flatnonzero(allowed[specials])) == {
        i for i, s in enumerate(specials) if s in padded.stop_token_ids
    }


def test_every_bitmask_form_gets_the_same_row(env) -> None:
    """A row as wide as the mask, a wider one holding garbage (its tail is cleared), a 1-D array, a row
    of a batch and a CPU torch tensor all receive the same bits."""
    info, htok, cg = env
    m = GrammarMatcher(cg)
    m.accept_string('{"a": ')
    words = (info.vocab_size + 31) // 32
    exact = np.zeros((1, words), dtype=np.int32)
    m.fill_next_token_bitmask(exact)
    assert exact.any()
    wide = np.full((2, words + 3), -1, dtype=np.int32)
    m.fill_next_token_bitmask(wide, 1)
    assert (wide[1, :words] == exact[0]).all() and not wide[1, words:].any() and (wide[0] == -1).all()
    flat = np.full(words, -1, dtype=np.int32)
    m.fill_next_token_bitmask(flat)
    assert (flat == exact[0]).all()
    torch = pytest.importorskip("torch")
    t = torch.full((3, words), -1, dtype=torch.int32)
    m.fill_next_token_bitmask(t, 2)
    assert (t[2].numpy() == exact[0]).all() and (t[:2] == -1).all()
    with pytest.raises(StructgenError, match="int32"):
        m.fill_next_token_bitmask(np.zeros((1, words), dtype=np.int64))


def test_rollback_reset_and_accept_string(env) -> None:
    info, htok, cg = env
    m = GrammarMatcher(cg)
    ids = htok.encode('{"key": [true, null]}', add_special_tokens=False).ids
    masks = []
    for t in ids:
        masks.append(_bits(m, info.vocab_size))
        assert m.accept_token(t)
    m.rollback(len(ids) - 2)
    assert np.array_equal(_bits(m, info.vocab_size), masks[2])
    with pytest.raises(StructgenError):
        m.rollback(100)
    m.reset()
    assert np.array_equal(_bits(m, info.vocab_size), masks[0])
    assert m.accept_string('{"k')
    assert not m.accept_string("\x01")  # raw control characters are not allowed in strings
    assert m.accept_string('ey": 1}')
    assert m.is_accepting() and not m.is_terminated()


def test_split_utf8_across_tokens(env) -> None:
    """A multi-byte character may arrive one byte per token; partial UTF-8 is a normal state."""
    info, htok, cg = env
    byte_tokens = {info.token_bytes[i]: i for i in range(info.vocab_size) if len(info.token_bytes[i]) == 1}
    m = GrammarMatcher(cg)
    assert m.accept_string('"')
    for b in "é😀".encode():
        tid = byte_tokens[bytes([b])]
        assert _bits(m, info.vocab_size)[tid]
        assert m.accept_token(tid)
    assert not m.accept_string(b"\xff")  # never valid UTF-8
    assert m.accept_string('"')
    assert m.is_accepting()


def test_jump_forward(env) -> None:
    info, htok, cg = env
    m = GrammarMatcher(cg)
    assert m.accept_string('{"a": t')
    assert m.find_jump_forward_string() == "rue"
    assert m.accept_string("rue")
    assert m.find_jump_forward_string() == ""
    m2 = GrammarMatcher(GrammarCompiler(info).compile_grammar('start: "hello" NAME\nNAME: /[a-z]+/\n'))
    assert m2.find_jump_forward_string() == "hello"


def test_trailing_ignore_is_opt_in(env) -> None:
    """By default no ignored text may follow a complete output (generation must end, as in
    llguidance); allow_trailing_ignore=True gives Lark's semantics, where ' {} \\n' parses."""
    info, htok, cg = env
    m = GrammarMatcher(cg)
    assert m.accept_string(" {}")
    assert not m.accept_string(" ") and not m.accept_string("\n")
    assert m.is_accepting()
    lark_cg = GrammarCompiler(info).compile_grammar(grammar_text("json"), allow_trailing_ignore=True)
    m = GrammarMatcher(lark_cg)
    assert m.accept_string(" {} \n")
    assert m.is_accepting()
    m = GrammarMatcher(cg)
    assert m.accept_string("1")
    assert m.accept_string("2")  # a number may go on, so it is not complete-and-closed yet
    assert not m.accept_string(" ")
