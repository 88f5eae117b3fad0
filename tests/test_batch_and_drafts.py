"""BatchGrammarMatcher gives the masks of one fill per matcher, on threads; draft masks (chains and
trees) give the masks of the token-by-token loop and leave the matcher as it was."""

from __future__ import annotations

import random

import numpy as np
import pytest

from structgen import BatchGrammarMatcher, GrammarCompiler, GrammarMatcher, StructgenError

SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
     "required": ["name"]},
    {"type": "array", "items": {"enum": ["red", "green", 3, None]}, "maxItems": 5},
    {"type": "object", "properties": {f"k{i}": {"type": ["number", "boolean"]} for i in range(10)}},
    {"type": "string", "pattern": "^[a-z]{2,8}@[a-z]+\\.(com|org)$"},
]


def _allowed(row: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little"))


@pytest.fixture(scope="module")
def compiled(tokenizer_llama3):
    compiler = GrammarCompiler(tokenizer_llama3)
    return [compiler.compile_json_schema(s, property_order="any") for s in SCHEMAS]


def test_batch_masks_equal_serial_masks(tokenizer_llama3, compiled) -> None:
    rng = random.Random(0)
    words = (tokenizer_llama3.vocab_size + 31) // 32
    # 16 sequences, several per grammar (threads then share a grammar's store)
    matchers = [GrammarMatcher(compiled[i % len(compiled)]) for i in range(16)]
    batch = BatchGrammarMatcher(max_threads=4)
    got = np.zeros((20, words), dtype=np.int32)
    want = np.zeros((1, words), dtype=np.int32)
    for _ in range(40):
        live = [i for i, m in enumerate(matchers) if not m.is_terminated()]
        if not live:
            break
        rows = [i + 2 for i in live]  # not the identity: rows past the batch size are padding
        batch.batch_fill_next_token_bitmask([matchers[i] for i in live], got, rows)
        tokens = []
        for i, r in zip(live, rows):
            matchers[i].fill_next_token_bitmask(want)
            assert np.array_equal(got[r], want[0])
            ok = _allowed(want[0])
            tokens.append(int(rng.choice(ok)) if len(ok) else tokenizer_llama3.stop_token_ids[0])
        assert all(BatchGrammarMatcher.batch_accept_token([matchers[i] for i in live], tokens))
    batch.close()


def test_batch_accept_string_and_argument_checks(compiled) -> None:
    ms = [GrammarMatcher(compiled[1]), GrammarMatcher(compiled[1])]
    assert BatchGrammarMatcher.batch_accept_string(ms, ['["red"', "[4"]) == [True, False]
    with pytest.raises(StructgenError):
        BatchGrammarMatcher(max_threads=2).batch_fill_next_token_bitmask(ms, np.zeros((1, 8), np.int32))


def _loop_masks(m: GrammarMatcher, tokens: list[int], words: int) -> tuple[np.ndarray, int]:
    """The token-by-token loop: masks before each token and after the last, zero past a refusal."""
    out = np.zeros((len(tokens) + 1, words), dtype=np.int32)
    m.fill_next_token_bitmask(out, 0)
    n = 0
    for k, t in enumerate(tokens):
        if not m.accept_token(t):
            break
        n += 1
        m.fill_next_token_bitmask(out, k + 1)
    m.rollback(n)
    return out, n


def test_draft_masks_equal_the_token_loop_on_1000_drafts(tokenizer_llama3, compiled) -> None:
    rng = random.Random(1)
    words = (tokenizer_llama3.vocab_size + 31) // 32
    vocab = tokenizer_llama3.vocab_size
    drafts = 0
    for cg in compiled:
        for _ in range(250):
            m = GrammarMatcher(cg)
            row = np.zeros((1, words), dtype=np.int32)
            for _ in range(rng.randrange(6)):  # a random prefix of allowed tokens
                m.fill_next_token_bitmask(row)
                ok = _allowed(row[0])
                if not len(ok) or not m.accept_token(int(rng.choice(ok))):
                    break
            # a draft: mostly allowed tokens (drawn along the way), some random ones
            draft = [rng.randrange(vocab) for _ in range(rng.randrange(1, 8))]
            shadow = _shadow(m)
            for k in range(len(draft)):
                if rng.random() < 0.8:
                    shadow.fill_next_token_bitmask(row)
                    ok = _allowed(row[0])
                    if len(ok):
                        draft[k] = int(rng.choice(ok))
                if not shadow.accept_token(draft[k]):
                    break
            before = (m._branches, m._terminated, len(m._history))
            got = np.full((len(draft) + 1, words), -1, dtype=np.int32)
            n = m.fill_draft_masks(draft, got)
            assert (m._branches, m._terminated, len(m._history)) == before
            want, n_loop = _loop_masks(m, draft, words)
            assert n == n_loop and np.array_equal(got, want)
            drafts += 1
    assert drafts == 1000


def _shadow(m: GrammarMatcher) -> GrammarMatcher:
    """A matcher in m's state (for drawing draft tokens without touching m)."""
    s = GrammarMatcher(m.compiled_grammar)
    s._branches, s._terminated = m._branches, m._terminated
    return s


def test_draft_tree_masks_equal_each_path(tokenizer_llama3, compiled) -> None:
    rng = random.Random(2)
    words = (tokenizer_llama3.vocab_size + 31) // 32
    cg = compiled[0]
    for _ in range(50):
        m = GrammarMatcher(cg)
        tokens, parents = [], []
        for k in range(rng.randrange(1, 12)):
            p = rng.randrange(-1, k)
            path = _path(tokens, parents, p)
            s = _shadow(m)
            row = np.zeros((1, words), dtype=np.int32)
            alive = s.accept_tokens(path) == len(path)
            s.fill_next_token_bitmask(row)
            ok = _allowed(row[0])
            tokens.append(int(rng.choice(ok)) if alive and len(ok) and rng.random() < 0.85
                          else rng.randrange(tokenizer_llama3.vocab_size))
            parents.append(p)
        got = np.zeros((len(tokens) + 1, words), dtype=np.int32)
        n = m.fill_draft_tree_masks(tokens, parents, got)
        accepted = 0
        for k in range(-1, len(tokens)):
            path = _path(tokens, parents, k)
            want, n_loop = _loop_masks(m, path, words)
            if n_loop == len(path):
                accepted += k >= 0
                assert np.array_equal(got[k + 1], want[-1]), k
            else:
                assert not got[k + 1].any()
        assert n == accepted
    with pytest.raises(StructgenError):
        GrammarMatcher(cg).fill_draft_tree_masks([1, 2], [-1, 1], np.zeros((3, words), np.int32))


def _path(tokens: list[int], parents: list[int], k: int) -> list[int]:
    out = []
    while k >= 0:
        out.append(tokens[k])
        k = parents[k]
    return out[::-1]


def test_accept_tokens_stops_at_the_first_refusal(compiled) -> None:
    m = GrammarMatcher(compiled[1])
    tb = compiled[1].tokenizer_info.token_bytes  # '["red"' as one-byte tokens
    text_ids = [next(i for i, b in enumerate(tb) if b == bytes([ch])) for ch in b'["red"']
    assert m.accept_tokens(text_ids + text_ids) == len(text_ids)
    m.rollback(len(text_ids))
    assert m.accept_tokens([]) == 0


def test_jump_forward_tokens_are_the_forced_text_as_the_tokenizer_writes_it(tokenizer_llama3) -> None:
    import pickle

    schema = {"type": "object", "properties": {"name": {"type": "string"}, "kind": {"const": "person"}},
              "required": ["name", "kind"], "additionalProperties": False}
    cg = GrammarCompiler(tokenizer_llama3).compile_json_schema(schema)
    m = GrammarMatcher(cg)
    encode = tokenizer_llama3.encoder
    forced = m.find_jump_forward_string()
    ids = m.find_jump_forward_tokens()
    assert forced == '{"name": "' and ids == encode(forced)[:-1]  # the last held back: it may merge
    assert m.accept_tokens(ids) == len(ids)
    assert m.accept_string(forced[len(tokenizer_llama3.decode_bytes(ids).decode()):]) and m.accept_string('Ada"')
    rest = m.find_jump_forward_string()
    before = (m._branches, len(m._history))
    ids = m.find_jump_forward_tokens()
    assert (m._branches, len(m._history)) == before  # the state is left as it was
    assert rest == ', "kind": "person"}' and ids == encode(rest)  # the output ends there: all of it
    assert m.accept_tokens(ids) == len(ids) and m.is_accepting()
    assert GrammarMatcher(cg).find_jump_forward_tokens(encode=lambda text: []) == []
    assert pickle.loads(pickle.dumps(tokenizer_llama3.encoder))("abc") == encode("abc")
