"""The GLR path (automata/glr.py): grammars that are not LALR(1) compile with their language intact.

Oracles: Lark's Earley parser for membership, llguidance for token masks (same Lark grammar, same
tokenizer), on random words of each grammar and on mutations of them.
"""

from __future__ import annotations

import random

import pytest

from datasets import SLOW, TOKENIZERS, tiered
from ir_words import random_word
from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo
from structgen.errors import LimitExceeded
from grammar_samples import NON_LALR

lark = pytest.importorskip("lark")

# the non-LALR suite (NON_LALR) lives in grammar_samples.py: benchmarks and other tests read it too


@pytest.fixture(scope="module")
def llama3(tokenizer_llama3) -> TokenizerInfo:
    return tokenizer_llama3


def earley_of(grammar: str):
    return lark.Lark(grammar, parser="earley")


def _completes(cg, prefix: str, earley) -> bool:
    """Some word of the language starts with `prefix`: a short completion found by our matcher's
    forced / allowed single characters, confirmed by Earley."""
    m = GrammarMatcher(cg)
    assert m.accept_string(prefix)
    text = prefix
    for _ in range(40):
        if m.is_accepting():
            earley.parse(text)
            return True
        for c in "abcdefghijklmnopqrstuvwxyz0123456789()+* ":
            if m.accept_string(c):
                text += c
                break
        else:
            return False
    return False


def _accepts(cg, text: str) -> bool:
    m = GrammarMatcher(cg)
    return m.accept_string(text) and m.is_accepting()


@pytest.mark.parametrize("name, grammar, good, bad", tiered(NON_LALR, {"ambiguous_expr"}, key=lambda g: g[0]),
                         ids=[g[0] for g in NON_LALR])
def test_non_lalr_grammars_keep_their_language(llama3, name: str, grammar: str, good: list[str],
                                               bad: list[str]) -> None:
    earley = lark.Lark(grammar, parser="earley")
    cg = GrammarCompiler(llama3).compile_grammar(grammar)
    for w in good:
        assert _accepts(cg, w), w
    for w in bad:
        assert not _accepts(cg, w), w
    rng = random.Random(7)
    sep = b" " if "%ignore" in grammar else b""
    for _ in range(60):
        word = random_word(cg.ir, rng, max_depth=5, sep=sep).decode()
        assert _accepts(cg, word), word  # no valid word is rejected
        for cand in {word[:i] + word[i + 1:] for i in range(len(word))} | {word + word[:1], word[1:] + "b"}:
            try:
                earley.parse(cand)
                inside = True
            except lark.exceptions.LarkError:
                inside = False
            assert _accepts(cg, cand) == inside, cand


def test_masks_and_acceptance_agree(llama3) -> None:
    """The mask (walk + forks) allows exactly the tokens accept_token takes, at every prefix."""
    cg = GrammarCompiler(llama3).compile_grammar(NON_LALR[0][1])
    m = GrammarMatcher(cg)
    word = "(12+3)*4+5" if SLOW else "(1+2)*3"
    for cut in range(len(word) + 1):
        m.reset()
        assert m.accept_string(word[:cut])
        bits = m.next_token_bits().copy()
        for t in range(llama3.vocab_size):
            allowed = bool(bits[t >> 5] >> (t & 31) & 1)
            ok = m.accept_token(t)
            if ok:
                m.rollback(1)
            assert ok == allowed, (word[:cut], llama3.token_bytes[t])


def test_rollback_and_jump_forward_on_glr(llama3) -> None:
    cg = GrammarCompiler(llama3).compile_grammar('start: a "xyz" "1" | b "xyz" "2"\na: "q"\nb: "q"\n')
    m = GrammarMatcher(cg)
    assert m.accept_string("q")
    assert m.find_jump_forward_string() == "xyz"  # both parses are forced through it
    assert m.accept_string("xyz") and len(m._branches) == 2
    m.rollback(1)
    assert len(m._branches) == 1 or m.accept_string("xyz")


def test_fork_tables_that_grow_midway_give_the_same_masks(llama3) -> None:
    """A walk whose fork tasks outgrow their table resumes on a 4x larger copy (maskstore/store.py):
    the masks equal those of a walk whose table was large enough from the start."""
    import numpy as np

    from structgen.maskstore.views import ForkTasks

    grammar = NON_LALR[0][1]
    roomy = GrammarMatcher(GrammarCompiler(llama3).compile_grammar(grammar))
    cramped_cg = GrammarCompiler(llama3).compile_grammar(grammar)
    store = cramped_cg.mask_store
    n = 8  # grows to 32, 128, ... while the walk goes on
    store._tasks = ForkTasks(np.empty((n, 5), dtype=np.int32), store._tasks.head,
                             np.empty((n, 2), dtype=np.int32), np.empty((n, 2), dtype=np.int32))
    cramped = GrammarMatcher(cramped_cg)
    for text in ["", "(", "1", "+", "(2", "*3", ")+"]:
        assert roomy.accept_string(text) and cramped.accept_string(text)
        assert np.array_equal(roomy.next_token_bits(), cramped.next_token_bits()), text
    assert len(store._tasks.table) > n


def test_ambiguity_past_the_bound_is_a_clear_error(llama3) -> None:
    # each parse of an ambiguous expression keeps its own stack (no stack sharing yet): with two
    # operators their number doubles with each one, past glr.GLR_MAX_STACKS in ~70 characters
    m = GrammarMatcher(GrammarCompiler(llama3).compile_grammar(NON_LALR[0][1]))
    with pytest.raises(LimitExceeded, match="GLR parse needs more than 1024"):
        for _ in range(200):
            assert m.accept_string("1+2*")


@pytest.mark.parametrize("tokenizer_name", ["llama3", "qwen3"])
def test_masks_match_llguidance(tokenizer_name: str) -> None:
    llguidance = pytest.importorskip("llguidance")
    tokenizers = pytest.importorskip("tokenizers")
    from peers import llguidance_matcher_factory, mask_differences

    del llguidance
    path = TOKENIZERS / tokenizer_name / "tokenizer.json"
    info = TokenizerInfo.from_tokenizer_json(path)
    htok = tokenizers.Tokenizer.from_file(str(path))
    make_ll = llguidance_matcher_factory(path, info.stop_token_ids, info.vocab_size)
    compiler = GrammarCompiler(info)
    rng = random.Random(3)
    total = 0
    for name, grammar, good, _ in NON_LALR:
        cg = compiler.compile_grammar(grammar)
        sep = b" " if "%ignore" in grammar else b""
        words = list(good) + [random_word(cg.ir, rng, max_depth=5, sep=sep).decode() for _ in range(12)]
        for w in words:
            ids = htok.encode(w, add_special_tokens=False).ids + [info.stop_token_ids[0]]
            steps, diffs = mask_differences(cg, make_ll(grammar), ids, info)
            total += steps
            for k, who, got in diffs:
                explained = who.startswith("ours, and llguidance's own validate_tokens")
                if k == 0 and who == "ours" and all(info.token_bytes[t][:1] == b" " for t in got):
                    # leading %ignore text: Lark skips ignored text before the first lexeme too (as in
                    # maskstore/test_differential_llguidance.py); llguidance does not
                    earley_of(grammar).parse(" " + good[0])
                    continue
                if explained:  # and the language agrees: each token leads on to a word (Lark confirms one)
                    prefix = info.decode_bytes(ids[:k]).decode()
                    for t in got[:4]:
                        assert _completes(cg, prefix + info.token_bytes[t].decode(), earley_of(grammar))
                assert explained, (name, w, k, who, [info.token_bytes[t] for t in got[:8]])
    assert total > 300
