"""structgen.integrations.llama_cpp: the llama-cpp-python logits processor and generation loop.

The fast tests use the SmolLM2 tokenizer from ../shared/data and a scripted stand-in for
``llama_cpp.Llama``; the slow ones load the embedded GGUF in llama.cpp (and in transformers,
to check that greedy decoding agrees between the two backends).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
from llama_cpp import LogitsProcessorList  # noqa: E402

from datasets import TOKENIZERS  # noqa: E402
from structgen import GrammarCompiler, GrammarMatcher, StructgenError, TokenizerInfo  # noqa: E402
from structgen.integrations.llama_cpp import (  # noqa: E402
    LogitsProcessor,
    RepetitionPenalty,
    generate_llama_cpp,
)

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
IM_END = 2  # SmolLM2's <|im_end|>, its stop token
DASHES = 15069  # b"-" * 64: longer than the 32 bytes Llama.detokenize can return
C3, A9 = 142, 119  # the two bytes of "é", one token each
PAD_LOGITS = 64  # a model whose output layer is wider than the tokenizer


@pytest.fixture(scope="module")
def info() -> TokenizerInfo:
    return TokenizerInfo.from_tokenizer_json(TOKENIZERS / "smollm2" / "tokenizer.json")


@pytest.fixture(scope="module")
def json_grammar(info):
    return GrammarCompiler(info).compile_json_schema(SCHEMA)


@pytest.fixture(scope="module")
def dash_grammar(info):
    return GrammarCompiler(info).compile_regex("-+é")


def expected_allowed(matcher: GrammarMatcher, vocab: int) -> np.ndarray:
    bitmask = np.zeros((vocab + 31) // 32, dtype=np.int32)
    matcher.fill_next_token_bitmask(bitmask)
    bits = bitmask.view(np.uint32)
    ids = np.arange(vocab)
    return ((bits[ids // 32] >> (ids % 32).astype(np.uint32)) & 1).astype(bool)


def llama_scores(values: np.ndarray) -> np.ndarray:
    """A strided float32 view, like the ``logit`` field llama-cpp-python hands to processors."""
    data = np.zeros(values.shape[0], dtype=[("id", np.intc), ("logit", np.single), ("p", np.single)])
    data["id"] = np.arange(values.shape[0])
    data["logit"] = values
    return data["logit"]


# ---------------------------------------------------------------------------- the processor


def test_processor_masks_like_the_matcher(info, json_grammar) -> None:
    rng = np.random.default_rng(0)
    width = info.vocab_size + PAD_LOGITS
    proc = LogitsProcessor(json_grammar)
    reference = GrammarMatcher(json_grammar)
    prompt = np.array([1, 9690, 198, 2], dtype=np.intc)  # any ids: the prompt is not fed to the matcher
    ids = prompt
    for text in ['{"', "name", '":', ' "', "John"]:
        token = info.token_bytes.index(text.encode())
        values = rng.standard_normal(width).astype(np.float32)
        scores = llama_scores(values)
        assert not scores.flags.c_contiguous
        out = proc(ids, scores)
        assert out is scores
        allowed = expected_allowed(reference, info.vocab_size)
        assert 0 < allowed.sum() < info.vocab_size
        np.testing.assert_array_equal(scores[: info.vocab_size][allowed], values[: info.vocab_size][allowed])
        assert np.isneginf(scores[: info.vocab_size][~allowed]).all()
        assert np.isneginf(scores[info.vocab_size:]).all()  # past the tokenizer: never allowed
        assert allowed[token]
        assert reference.accept_token(token)
        ids = np.append(ids, token).astype(np.intc)
    assert proc.prompt_length == len(prompt)


def test_processor_stop_token_only_at_a_complete_word(info, json_grammar) -> None:
    proc = LogitsProcessor(json_grammar)
    tokens = [info.token_bytes.index(t.encode()) for t in '{"|name|":| "|John|",| "|age|":| |3'.split("|")]
    ids = [5]
    for token in tokens:
        scores = np.zeros(info.vocab_size, dtype=np.float32)
        proc(np.array(ids), scores)
        ids.append(token)
    scores = np.zeros(info.vocab_size, dtype=np.float32)
    proc(np.array(ids), scores)
    assert np.isneginf(scores[IM_END])  # `{"name": "John", "age": 3` is not a complete word
    brace = info.token_bytes.index(b"}")
    assert scores[brace] == 0
    ids.append(brace)
    scores = np.zeros(info.vocab_size, dtype=np.float32)
    proc(np.array(ids), scores)
    assert scores[IM_END] == 0 and not proc.terminated
    assert proc.finalize(ids + [IM_END]) is True
    assert proc.terminated


def test_processor_raises_on_a_disallowed_token_and_forces_the_stop(info, json_grammar) -> None:
    proc = LogitsProcessor(json_grammar)
    proc(np.array([5]), np.zeros(info.vocab_size, dtype=np.float32))
    bad = info.token_bytes.index(b"hello")
    scores = np.zeros(info.vocab_size, dtype=np.float32)
    with pytest.raises(StructgenError, match=f"does not allow token {bad}"):
        proc(np.array([5, bad]), scores)
    # Inside llama.cpp's sampler the exception is swallowed by ctypes: the scores it leaves
    # behind allow only the stop tokens, so generation ends, and check() re-raises it.
    assert np.flatnonzero(np.isfinite(scores)).tolist() == [IM_END]
    assert isinstance(proc.error, StructgenError)
    with pytest.raises(StructgenError):
        proc.check()
    scores = np.zeros(info.vocab_size, dtype=np.float32)
    proc(np.array([5, bad, 7]), scores)
    assert np.flatnonzero(np.isfinite(scores)).tolist() == [IM_END]


def test_processor_refuses_another_sequence_until_reset(info, json_grammar) -> None:
    proc = LogitsProcessor(json_grammar)
    proc(np.array([5, 6, 7]), np.zeros(info.vocab_size, dtype=np.float32))
    with pytest.raises(StructgenError, match="call reset"):
        proc(np.array([5, 8, 7, 9]), np.zeros(info.vocab_size, dtype=np.float32))
    proc.reset()
    scores = np.zeros(info.vocab_size, dtype=np.float32)
    proc(np.array([5, 8, 7, 9]), scores)
    assert proc.error is None and np.isfinite(scores).sum() > 1


def test_repetition_penalty_matches_transformers() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    rng = np.random.default_rng(1)
    ids = np.array([3, 7, 7, 11, 40, 3], dtype=np.intc)
    values = (rng.standard_normal(50) * 5).astype(np.float32)
    expected = transformers.RepetitionPenaltyLogitsProcessor(1.15)(
        torch.tensor(ids, dtype=torch.long)[None], torch.tensor(values)[None]
    )[0].numpy()
    got = RepetitionPenalty(1.15)(ids, llama_scores(values))
    np.testing.assert_array_equal(np.asarray(got), expected)


# ---------------------------------------------------------------------------- generate_llama_cpp


class ScriptedLlama:
    """Stands in for ``llama_cpp.Llama``: its "model" prefers the scripted tokens in turn,
    while a disallowed token always has the highest raw logit (so only the mask saves it)."""

    def __init__(self, script: list[int], n_vocab: int, distractor: int) -> None:
        self.script, self._n_vocab, self.distractor = script, n_vocab, distractor
        self.seed: int | None = None
        self.calls: list[dict] = []

    def n_vocab(self) -> int:
        return self._n_vocab

    def n_ctx(self) -> int:
        return 2048

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        assert add_bos is False and special is True
        return [1, 9690, 198]

    def set_seed(self, seed: int) -> None:
        self.seed = seed

    def reset(self) -> None:
        self.resets = getattr(self, "resets", 0) + 1

    def generate(self, tokens, **kwargs):
        self.calls.append(kwargs)
        ids = list(tokens)
        for step in range(len(self.script) + 5):
            values = np.zeros(self._n_vocab, dtype=np.float32)
            values[self.distractor] = 100.0
            values[self.script[min(step, len(self.script) - 1)]] = 10.0
            scores = llama_scores(values)
            for proc in kwargs["logits_processor"]:
                scores[:] = proc(np.array(ids, dtype=np.intc), scores)
            token = int(np.argmax(scores))
            ids.append(token)
            yield token


def test_generate_streams_whole_characters_and_long_tokens(info, dash_grammar) -> None:
    x = info.token_bytes.index(b"x")
    llm = ScriptedLlama([DASHES, C3, A9, IM_END], info.vocab_size + PAD_LOGITS, distractor=x)
    pieces: list[str] = []
    tokens: list[int] = []
    text, n, terminated = generate_llama_cpp(
        llm, dash_grammar, "prompt", max_tokens=10, temperature=0.0, seed=3,
        repetition_penalty=1.0, on_text=pieces.append, on_token=tokens.append,
    )
    assert text == "-" * 64 + "é"
    assert pieces == ["-" * 64, "é"]  # the lone 0xC3 is held back until its continuation byte
    assert tokens == [DASHES, C3, A9, IM_END] and n == 3 and terminated  # the stop is not counted
    assert llm.seed == 3 and llm.resets == 1  # no prompt-cache reuse by default
    kw = llm.calls[0]
    assert (kw["temp"], kw["top_k"], kw["top_p"], kw["min_p"], kw["repeat_penalty"]) == (0.0, 0, 1.0, 0.0, 1.0)


def test_generate_stops_at_max_tokens_unterminated(info, dash_grammar) -> None:
    llm = ScriptedLlama([DASHES], info.vocab_size, distractor=info.token_bytes.index(b"x"))
    text, n, terminated = generate_llama_cpp(
        llm, dash_grammar, "prompt", max_tokens=3, temperature=0.0, seed=0, repetition_penalty=1.0,
    )
    assert (text, n, terminated) == ("-" * 192, 3, False)


def test_generate_rejects_a_model_narrower_than_the_tokenizer(info, dash_grammar) -> None:
    llm = ScriptedLlama([DASHES], info.vocab_size - 1, distractor=0)
    with pytest.raises(StructgenError, match="logits"):
        generate_llama_cpp(llm, dash_grammar, "p", max_tokens=3, temperature=0.0, seed=0, repetition_penalty=1.0)


# ---------------------------------------------------------------------------- the real model

PROMPTS = [
    "Give a JSON object for a person called Ada who is 36.",
    "Describe a person as JSON with a name and an age.",
    "Return JSON for the user Bob, aged 7.",
]
MAX_TOKENS = 40
# llama.cpp multiplies Q4_1 weights by activations quantized to 8 bits, transformers by the
# weights dequantized to float32: the top logits differ by up to ~0.5 between them (measured
# on these prompts), so greedy decoding may only part ways where two candidates are closer.
NEAR_TIE = 0.5


@pytest.fixture(scope="module")
def llm():
    from structgen.models import load_default_llama

    return load_default_llama(n_threads=1)


@pytest.fixture(scope="module")
def hf():
    """(tokenizer, model, TokenizerInfo) of the embedded model in transformers."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from structgen.models import load_default_model, load_default_tokenizer

    torch.set_num_threads(1)
    tok = load_default_tokenizer()
    return tok, load_default_model(), TokenizerInfo.from_huggingface(tok)


@pytest.mark.slow
def test_llama_cpp_tokenizes_the_chat_prompt_like_transformers(llm, hf) -> None:
    from structgen.models import chat_prompt

    tok = hf[0]
    for text in PROMPTS:
        prompt = chat_prompt(tok, text)
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == tok(
            prompt, add_special_tokens=False)["input_ids"]


@pytest.mark.slow
@pytest.mark.parametrize("penalty", [1.0, 1.15])
@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_greedy_llama_cpp_matches_transformers(llm, hf, index: int, penalty: float) -> None:
    """Token-identical greedy outputs, except after a numerical near-tie (see NEAR_TIE).

    With a repetition penalty too: RepetitionPenalty gives llama.cpp transformers' semantics.
    """
    import jsonschema
    import torch
    from transformers import LogitsProcessorList as HFList

    from structgen.integrations.transformers import LogitsProcessor as HFProcessor
    from structgen.models import chat_prompt

    tok, model, info = hf
    cg = GrammarCompiler(info).compile_json_schema(SCHEMA)
    prompt = chat_prompt(tok, PROMPTS[index])

    ids_llama: list[int] = []
    text, n, terminated = generate_llama_cpp(llm, cg, prompt, max_tokens=MAX_TOKENS, temperature=0.0, seed=0,
                                             repetition_penalty=penalty, on_token=ids_llama.append)
    inputs = tok(prompt, return_tensors="pt", add_special_tokens=False)
    proc = HFProcessor(cg)
    with torch.no_grad():
        out = model.generate(**inputs, logits_processor=HFList([proc]), do_sample=False, repetition_penalty=penalty,
                             max_new_tokens=MAX_TOKENS, eos_token_id=info.stop_token_ids,
                             pad_token_id=info.stop_token_ids[0], top_k=None, top_p=None, temperature=None,
                             output_scores=True, return_dict_in_generate=True)
    ids_hf = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    hf_terminated = proc.finalize(out.sequences)[0]
    stop = set(info.stop_token_ids)
    hf_text = info.decode_bytes([t for t in ids_hf if t not in stop]).decode("utf-8")
    print(f"\nllama.cpp: {text!r}\ntransformers: {hf_text!r}")

    assert n == len(ids_llama) - terminated  # the stop token is not counted
    for output, done in ((text, terminated), (hf_text, hf_terminated)):
        if done:
            jsonschema.validate(json.loads(output), SCHEMA)
    k = next((i for i, (a, b) in enumerate(zip(ids_llama, ids_hf)) if a != b), None)
    if k is None:
        assert ids_llama == ids_hf
        assert terminated or index != 0
        assert (text, terminated) == (hf_text, hf_terminated)
        return
    scores = out.scores[k][0]  # after the penalty and the mask
    margin = float(scores[ids_hf[k]] - scores[ids_llama[k]])
    print(f"first divergence at token {k}: transformers {ids_hf[k]} vs llama.cpp {ids_llama[k]}, "
          f"transformers margin {margin:.3f}")
    assert 0 <= margin < NEAR_TIE, (k, ids_hf[k], ids_llama[k], margin)
    assert index != 0, "the first prompt has no near-tie: its greedy outputs must be identical"


@pytest.mark.slow
def test_repeated_greedy_calls_give_the_same_tokens(llm, info, json_grammar) -> None:
    """Regression: with llama's prompt-cache reuse the second call re-evaluated only the last
    prompt token, whose slightly different logits flipped a near-tie at token 24."""
    prompt = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
              "<|im_start|>user\nGive a JSON object for a person called Ada who is 36.<|im_end|>\n"
              "<|im_start|>assistant\n")  # what chat_prompt gives with SmolLM2's template
    runs = []
    for _ in range(2):
        ids: list[int] = []
        generate_llama_cpp(llm, json_grammar, prompt, max_tokens=MAX_TOKENS, temperature=0.0, seed=0,
                           repetition_penalty=1.0, on_token=ids.append)
        runs.append(ids)
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_sampling_is_reproducible_with_a_seed(llm, json_grammar) -> None:
    prompt = "<|im_start|>user\nA person as JSON.<|im_end|>\n<|im_start|>assistant\n"
    runs = [generate_llama_cpp(llm, json_grammar, prompt, max_tokens=30, temperature=0.8, seed=seed,
                               repetition_penalty=1.15) for seed in (7, 7)]
    assert runs[0] == runs[1]
    text, n, terminated = runs[0]
    assert 0 < n <= 30 and text.startswith("{")
    if terminated:
        json.loads(text)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_processor_error_inside_llama_cpp_ends_generation_and_is_reraised(llm, info, json_grammar) -> None:
    """ctypes swallows exceptions from the sampler callback; the processor still stops the run."""
    proc = LogitsProcessor(json_grammar)
    bad = info.token_bytes.index(b"hello")
    calls = []

    def reenable(input_ids, scores):  # a misbehaving processor after ours
        calls.append(len(input_ids))
        if len(calls) == 2:
            scores[bad] = 1e9
        return scores

    out = llm.create_completion("<|im_start|>user\nJSON please<|im_end|>\n<|im_start|>assistant\n",
                                max_tokens=20, temperature=0.0,
                                logits_processor=LogitsProcessorList([proc, reenable]))
    assert out["choices"][0]["finish_reason"] == "stop"
    # The third call fed the bad token to our processor, which raised (so `reenable` never ran
    # again) after restricting the scores to the stop token: the run ended there.
    assert calls == [calls[0], calls[0] + 1]
    assert out["usage"]["completion_tokens"] == 2  # a normal token, the bad one (the stop is not counted)
    with pytest.raises(StructgenError, match=f"does not allow token {bad}"):
        proc.check()


def test_load_default_llama_explains_a_missing_llama_cpp(monkeypatch) -> None:
    import sys

    from structgen.models import load_default_llama

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(StructgenError, match=r"pip install 'structgen\[llama-cpp\]'"):
        load_default_llama()
