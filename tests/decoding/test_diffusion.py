"""structgen.decoding.diffusion: the exact infilling (completability) oracle against brute force.

Ground truth is the GrammarMatcher: a filled template is a word iff `accept_string` succeeds
and `is_accepting()` holds. Brute force enumerates every filling of small gaps (bounded
lengths, small alphabets, tiny vocabularies) by a depth-first walk that feeds the matcher one
byte or token at a time and rolls back, pruning prefixes the matcher already rejects (the
matcher is prefix-closed; `test_dfs_brute_force_equals_naive_enumeration` checks that the
pruned walk and plain enumeration agree). Every witness is checked by a fresh matcher.
"""

from __future__ import annotations

import itertools
import os
import random

import numpy as np
import pytest

import structgen
from datasets import TOKENIZERS
from grammar_samples import INVALID, VALID
from structgen import GrammarCompiler, GrammarMatcher, LimitExceeded, TokenizerInfo, builtin_grammar
from structgen.decoding.diffusion import (
    ByteGap,
    CompletabilityOracle,
    Template,
    TokenGap,
    example_completion,
    is_completable,
)

GRAMMARS = ("json", "arithmetic", "minilang")
# bytes that matter to each grammar (gap alphabets are drawn from these, whitespace included)
ALPHABETS = {
    "json": b' \n{}[]:,"a1-.e0tn',
    "arithmetic": b" ()+-*/,1a.^",
    "minilang": b' \n(){};=a1"+/,<i',
}
TINY_VOCAB = [b"<eos>", b"{", b"}", b"[", b"]", b'"', b"a", b'":', b" ", b"1", b",", b"1,", b'"a"', b"}]", b"",
              b"(", b")", b"+", b"1)", b"f(", b";", b"=", b"let ", b"x", b"true"]


@pytest.fixture(scope="module")
def grammars():
    """(compiled grammar, oracle) per grammar, over a tiny vocabulary (for TokenGap brute force)."""
    tok = TokenizerInfo(TINY_VOCAB, special_ids=[0], stop_token_ids=[0])
    comp = GrammarCompiler(tok)
    out = {}
    for name in GRAMMARS:
        cg = comp.compile_grammar(builtin_grammar(name))
        out[name] = (cg, CompletabilityOracle(cg))
    return out


# ------------------------------------------------------------------ ground truth

def accepts(cg, text: bytes) -> bool:
    m = GrammarMatcher(cg)
    return m.accept_string(text) and m.is_accepting()


def _vocab(cg) -> list[int]:
    tok = cg.tokenizer_info
    return [i for i, b in enumerate(tok.token_bytes) if b and not tok.special_mask[i]]


def brute_force(cg, template: Template):
    """The first filling (enumeration order) whose text the matcher accepts, or None."""
    m = GrammarMatcher(cg)
    parts = template.parts
    vocab = _vocab(cg) if any(isinstance(p, TokenGap) for p in parts) else []

    def rec(i: int, acc: list):
        if i == len(parts):
            return list(acc) if m.is_accepting() else None
        p = parts[i]
        if isinstance(p, bytes):
            if not p:
                return rec(i + 1, acc)
            if not m.accept_string(p):
                return None
            try:
                return rec(i + 1, acc)
            finally:
                m.rollback(1)
        if isinstance(p, TokenGap):
            def toks(j: int, chosen: list):
                if j == p.k:
                    return rec(i + 1, acc + [list(chosen)])
                for t in vocab:
                    if m.accept_token(t):
                        chosen.append(t)
                        got = toks(j + 1, chosen)
                        chosen.pop()
                        m.rollback(1)
                        if got is not None:
                            return got
                return None
            return toks(0, [])
        alpha = sorted(set(p.alphabet))

        def gen(buf: bytearray):
            if len(buf) >= p.min_len:
                got = rec(i + 1, acc + [bytes(buf)])
                if got is not None:
                    return got
            if len(buf) < p.max_len:
                for b in alpha:
                    if m.accept_string(bytes([b])):
                        buf.append(b)
                        got = gen(buf)
                        buf.pop()
                        m.rollback(1)
                        if got is not None:
                            return got
            return None
        return gen(bytearray())

    return rec(0, [])


def naive_brute_force(cg, template: Template) -> bool:
    """Plain enumeration of every filling, each checked from scratch (ByteGaps only)."""
    options = []
    for g in template.gaps:
        alpha = sorted(set(g.alphabet))
        options.append([bytes(x) for n in range(g.min_len, g.max_len + 1) for x in itertools.product(alpha, repeat=n)])
    return any(accepts(cg, template.fill(list(f))) for f in itertools.product(*options))


def check_witness(cg, template: Template, witness) -> None:
    assert witness is not None
    text = template.fill(witness, cg.tokenizer_info.token_bytes)
    assert accepts(cg, text), (template, witness, text)
    for g, f in zip(template.gaps, witness):  # the filling fits its gap
        if isinstance(g, TokenGap):
            assert len(f) == g.k
            assert all(cg.tokenizer_info.token_bytes[t] and not cg.tokenizer_info.special_mask[t] for t in f)
        else:
            assert g.min_len <= len(f) and (g.max_len is None or len(f) <= g.max_len)
            assert g.alphabet is None or set(f) <= set(g.alphabet)

def agrees_with_brute_force(cg, oracle, tpl: Template, where) -> bool:
    """The oracle's witness exists iff brute force finds a filling, and it is accepted; True if completable."""
    want = brute_force(cg, tpl)
    got = oracle.example_completion(tpl)
    assert (got is None) == (want is None), (where, tpl, want)
    if got is not None:
        check_witness(cg, tpl, got)
    return got is not None



# ------------------------------------------------------------------ random templates

def _samples(name: str) -> list[bytes]:
    texts = [t.encode("utf-8") for t in VALID[name] + INVALID[name]]
    return [t for t in texts if 0 < len(t) <= 80]


def random_byte_template(rng: random.Random, name: str, samples: list[bytes]) -> Template:
    """Fixed pieces cut from a valid or invalid sample (or random bytes), ByteGaps of 0..3 bytes."""
    alpha_pool = ALPHABETS[name]
    if rng.random() < 0.85:
        s = rng.choice(samples)
        n_gaps = rng.randint(1, 3)
        cuts = sorted(rng.sample(range(len(s) + 1), min(len(s) + 1, 2 * n_gaps)))
        if len(cuts) % 2:
            cuts.append(len(s))
        parts: list = []
        prev = 0
        for a, b in zip(cuts[::2], cuts[1::2]):
            parts.append(s[prev:a])
            removed = s[a:b]
            hi = rng.randint(0, 3)
            lo = rng.randint(0, hi) if rng.random() < 0.3 else 0
            k = rng.randint(3, 6)
            alpha = set(rng.sample(alpha_pool, k - 1))
            if removed and rng.random() < 0.6:
                alpha |= set(rng.sample(removed, min(len(removed), 2)))
            else:
                alpha.add(rng.choice(alpha_pool))
            parts.append(ByteGap(lo, hi, bytes(sorted(alpha))[:6]))
            prev = b
        parts.append(s[prev:])
        if rng.random() < 0.1:
            parts.insert(0, b" ")
        return Template(parts)
    parts = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.5:
            parts.append(bytes(rng.choice(alpha_pool) for _ in range(rng.randint(0, 4))))
        else:
            parts.append(ByteGap(0, rng.randint(0, 3), bytes(rng.sample(alpha_pool, rng.randint(3, 5)))))
    return Template(parts)


def _run_byte_templates(grammars, name: str, count: int, seed: int) -> tuple[int, int]:
    cg, oracle = grammars[name]
    rng = random.Random(seed)
    samples = _samples(name)
    yes = 0
    for i in range(count):
        tpl = random_byte_template(rng, name, samples)
        if agrees_with_brute_force(cg, oracle, tpl, (name, i)):
            yes += 1
            assert oracle.is_completable(tpl)
    return yes, count


@pytest.mark.parametrize("name", GRAMMARS)
def test_byte_gaps_agree_with_brute_force(grammars, name) -> None:
    """400 random templates per grammar (1200 in all): same answer as brute force, witnesses accepted."""
    yes, n = _run_byte_templates(grammars, name, 400, seed=7)
    assert 0.1 * n < yes < 0.9 * n  # both answers are well represented


# CI runs a bounded sample; the full check: STRUCTGEN_DIFFUSION_TEMPLATES=3000 pytest -m slow tests/decoding
MANY = int(os.environ.get("STRUCTGEN_DIFFUSION_TEMPLATES", "300"))


@pytest.mark.slow
@pytest.mark.parametrize("name", GRAMMARS)
def test_byte_gaps_agree_with_brute_force_many(grammars, name) -> None:
    _run_byte_templates(grammars, name, MANY, seed=1234)


def test_dfs_brute_force_equals_naive_enumeration(grammars) -> None:
    """The pruned brute force (incremental matcher, rollback) is plain enumeration, faster."""
    for name in GRAMMARS:
        cg, _ = grammars[name]
        rng = random.Random(3)
        samples = _samples(name)
        for _ in range(40):
            tpl = random_byte_template(rng, name, samples)
            sizes = [sum(len(set(g.alphabet)) ** n for n in range(g.min_len, g.max_len + 1)) for g in tpl.gaps]
            if np.prod(sizes) > 300:
                continue
            assert (brute_force(cg, tpl) is not None) == naive_brute_force(cg, tpl), tpl


@pytest.mark.parametrize("name", GRAMMARS)
def test_token_gaps_tiny_vocabulary_agree_with_brute_force(grammars, name) -> None:
    cg, oracle = grammars[name]
    rng = random.Random(11)
    samples = _samples(name)
    yes = 0
    for i in range(120):
        s = rng.choice(samples)
        a = rng.randint(0, len(s))
        b = rng.randint(a, min(len(s), a + 4))
        parts = [s[:a], TokenGap(rng.choice([0, 1, 1, 2, 2])), s[b:]]
        if rng.random() < 0.3:  # a second gap, sometimes a byte gap
            c = rng.randint(0, len(parts[2]))
            gap = TokenGap(1) if rng.random() < 0.5 else ByteGap(0, 2, bytes(rng.sample(ALPHABETS[name], 3)))
            parts[2:] = [parts[2][:c], gap, parts[2][c:]]
        tpl = Template(parts)
        yes += agrees_with_brute_force(cg, oracle, tpl, (name, i))
    assert 10 < yes < 110


# ------------------------------------------------------------------ unbounded gaps, by hand

@pytest.mark.parametrize("name, parts, expected", [
    ("json", [b'{"a": ', ByteGap(), b"}"], True),
    ("json", [b'{"a": ', ByteGap(1), b"}"], True),
    ("json", [b'{"a": ', ByteGap(alphabet=b" "), b"}"], False),  # a value is needed
    ("json", [b"[[[", ByteGap(alphabet=b"]")], True),
    ("json", [b"[[[", ByteGap(alphabet=b"] ")], True),
    ("json", [b"[[[", ByteGap(4, None, b"]")], False),  # four closing brackets are one too many
    ("json", [b"]", ByteGap()], False),
    ("json", [ByteGap(), b'"', ByteGap(alphabet=b"x"), b"\\"], False),  # an escape needs a byte after it
    ("json", [ByteGap(), b"1", ByteGap(1, None, b" ")], False),  # no trailing whitespace by default
    ("json", [ByteGap(1, None, b" "), b"1"], True),  # leading whitespace is fine
    ("json", [b'{"k": [1, ', ByteGap(), b", 2", ByteGap(), b"]", ByteGap(), b"}"], True),
    ("json", [], False),
    ("json", [ByteGap()], True),
    ("arithmetic", [b"1 +", ByteGap(), b")"], True),  # needs a "(" in the gap
    ("arithmetic", [b"1 +", ByteGap(alphabet=b"1+ "), b")"], False),
    ("arithmetic", [b"1 +", ByteGap(alphabet=b"1+ ("), b")"], True),
    ("arithmetic", [b"((((((((((1", ByteGap(alphabet=b")")], True),
    ("arithmetic", [b"((((((((((1", ByteGap(0, 9, b")")], False),
    ("arithmetic", [b"f", ByteGap(alphabet=b"(,1"), b")"], True),
    ("arithmetic", [b"2 ", ByteGap(alphabet=b"*"), b" 3"], True),  # "*" or "**"
    ("arithmetic", [b"2 ", ByteGap(3, None, b"*"), b" 3"], False),
    ("minilang", [b"function f(", ByteGap(), b"}"], True),
    ("minilang", [b"let x = ", ByteGap(alphabet=b"1+ "), b";", ByteGap(alphabet=b" ;x"), b"while (x) {"], False),
    ("minilang", [b"let x = ", ByteGap(alphabet=b"1+ "), b";", ByteGap(), b"while (x) {"], True),  # "//" comments it out
    ("minilang", [b"let x = ", ByteGap(alphabet=b"1+ "), b";", ByteGap(), b"while (x) {", ByteGap()], True),
    ("minilang", [b"if (", ByteGap(), b") {} else", ByteGap(alphabet=b" if(1){}"), b"x;"], True),
    ("minilang", [], True),
    ("minilang", [b"iffy", ByteGap(alphabet=b" =1;")], True),  # a NAME, not the keyword
    ("minilang", [b"if", ByteGap(alphabet=b" =1;")], True),  # "if1=1;": a NAME again
    ("minilang", [b"if", ByteGap(alphabet=b" =;")], False),
])
def test_unbounded_gaps(grammars, name, parts, expected) -> None:
    cg, oracle = grammars[name]
    tpl = Template(parts)
    got = oracle.example_completion(tpl)
    assert (got is not None) == expected, got
    assert oracle.is_completable(tpl) == expected
    assert is_completable(cg, tpl) == expected
    if expected:
        check_witness(cg, tpl, got)
        assert example_completion(cg, tpl) is not None


def test_witnesses_are_short_for_deep_nesting(grammars) -> None:
    cg, oracle = grammars["arithmetic"]
    tpl = Template([b"(" * 30 + b"1", ByteGap()])
    w = oracle.example_completion(tpl)
    check_witness(cg, tpl, w)
    assert w[0].rstrip() == b")" * 30
    cg, oracle = grammars["json"]
    tpl = Template([b'{"a": [[{"b": [', ByteGap()])
    w = oracle.example_completion(tpl)
    check_witness(cg, tpl, w)
    assert len(w[0]) <= 12


def test_lr1_model_matches_the_matcher_start(grammars) -> None:
    for name in GRAMMARS:
        cg, oracle = grammars[name]
        assert oracle.start_lexer_state(oracle.lr.start_state) == cg.initial_lexer_state


def test_limit_exceeded_instead_of_blowup(grammars) -> None:
    cg, _ = grammars["json"]
    small = CompletabilityOracle(cg, max_facts=50)
    with pytest.raises(LimitExceeded):
        small.is_completable(Template([b"[" * 20, ByteGap(), b"]" * 21]))


def test_template_validation() -> None:
    with pytest.raises(structgen.StructgenError):
        ByteGap(3, 2)
    with pytest.raises(structgen.StructgenError):
        TokenGap(-1)
    with pytest.raises(structgen.StructgenError):
        Template([1])
    t = Template(["ab", ByteGap(0, 2, b"x"), b"c"])
    assert t.fill([b"xx"]) == b"abxxc"
    with pytest.raises(structgen.StructgenError):
        t.fill([b"y"])


# ------------------------------------------------------------------ a real tokenizer

def real_tokenizer_oracles(tokenizer: str) -> tuple[TokenizerInfo, dict]:
    """A shipped tokenizer and, for json and arithmetic, (compiled grammar, oracle)."""
    tok = TokenizerInfo.from_tokenizer_json(TOKENIZERS / tokenizer / "tokenizer.json")
    comp = GrammarCompiler(tok)
    out = {}
    for name in ("json", "arithmetic"):
        cg = comp.compile_grammar(builtin_grammar(name))
        out[name] = (cg, CompletabilityOracle(cg))
    return tok, out


@pytest.fixture(scope="module")
def llama3():
    return real_tokenizer_oracles("llama3")


def _fillers(cg, prefix: bytes, suffix: bytes, max_tried: int = 3000) -> list[int] | None:
    """Every token t with prefix + t + suffix accepted, trying each token the prefix's mask allows
    (None when the mask allows more than `max_tried` tokens, to keep the test fast)."""
    base = GrammarMatcher(cg)
    if prefix and not base.accept_string(prefix):
        return []
    vocab = cg.tokenizer_info.vocab_size
    bits = np.unpackbits(base.next_token_bits().view(np.uint8), bitorder="little")[:vocab]
    if bits.sum() > max_tried:
        return None
    stop = set(cg.tokenizer_info.stop_token_ids)
    out = []
    for t in np.nonzero(bits)[0].tolist():
        if t in stop:
            continue
        assert base.accept_token(t)  # the mask is exact
        ok = True
        if suffix:
            ok = base.accept_string(suffix)
        if ok and base.is_accepting():
            out.append(t)
        base.rollback(2 if suffix and ok else 1)
    return out


def test_llama3_one_token_gaps_equal_trying_every_token(llama3) -> None:
    tok, cgs = llama3
    rng = random.Random(5)
    yes = no = 0
    for name in ("json", "arithmetic"):
        cg, oracle = cgs[name]
        samples = [s for s in _samples(name) if len(s) <= 40]
        done = 0
        while done < 15:
            s = rng.choice(samples)
            a = rng.randint(0, len(s))
            b = rng.randint(a, min(len(s), a + 3))
            prefix, suffix = s[:a], s[b:]
            tpl = Template([prefix, TokenGap(1), suffix])
            fillers = _fillers(cg, prefix, suffix)
            if fillers is None:
                continue
            done += 1
            got = oracle.example_completion(tpl)
            assert (got is not None) == bool(fillers), (tpl, fillers[:5])
            if got is not None:
                check_witness(cg, tpl, got)
                assert got[0][0] in fillers
                yes += 1
            else:
                no += 1
    assert yes >= 5 and no >= 5


@pytest.mark.parametrize("name, parts, expected", [
    ("json", [b'{"a": ', TokenGap(1), b"}"], True),
    ("json", [b'{"a": ', TokenGap(2), b"}"], True),
    ("json", [b'{"a": ', TokenGap(1), b" ]"], False),
    ("json", [b"[1, ", TokenGap(1), b", ", TokenGap(1), b"]"], True),
    ("json", [TokenGap(2), b'": 1}'], True),
    ("json", [b'{"', TokenGap(2), b'": [', ByteGap(), b"]}"], True),
    ("json", [b"[", TokenGap(0), b"]"], True),
    ("json", [b"[", TokenGap(0), b"}"], False),
    ("arithmetic", [b"1 + ", TokenGap(2), b")"], True),
    ("arithmetic", [b")", TokenGap(3)], False),
    ("arithmetic", [b"1 + ", TokenGap(1)], True),
    ("arithmetic", [TokenGap(1), b"+", TokenGap(1)], True),
])
def test_llama3_token_gap_witnesses(llama3, name, parts, expected) -> None:
    tok, cgs = llama3
    cg, oracle = cgs[name]
    tpl = Template(parts)
    got = oracle.example_completion(tpl)
    assert (got is not None) == expected
    if expected:
        check_witness(cg, tpl, got)
        m = GrammarMatcher(cg)  # token by token, as a decoder would feed them
        fills = iter(got)
        for p in tpl.parts:
            if isinstance(p, bytes):
                assert not p or m.accept_string(p)
            elif isinstance(p, TokenGap):
                assert all(m.accept_token(t) for t in next(fills))
            else:
                f = next(fills)
                assert not f or m.accept_string(f)
        assert m.is_accepting()
